/*
 * memfdseal: an LD_PRELOAD shim that adds MFD_ALLOW_SEALING to every memfd_create() of the process, for
 * tests/bench/vhostuser.sh (issue 15). Not product code.
 *
 * Why: DPDK's EAL with --no-huge backs all its memory with memfd_create("nohuge", 0), which leaves the memfd
 * unsealable (F_SEAL_SEAL set from birth). vop, as a vhost-user back-end, refuses guest memory that its
 * owner could shrink under it (SIGBUS), unless it carries F_SEAL_SHRINK or lets vop add it
 * (docs/operations.md; vop_peer_refusals_total{reason="unsealed_memory"}); QEMU's memory-backend-memfd
 * seals by default. With the shim the memfd is sealable, vop adds F_SEAL_SHRINK|F_SEAL_GROW, and DPDK,
 * which never resizes that memfd after sizing it once at start, runs unchanged.
 *
 *   cc -O2 -shared -fPIC -o memfdseal.so memfdseal.c
 *   LD_PRELOAD=$PWD/memfdseal.so dpdk-testpmd --no-huge ... --vdev net_virtio_user0,path=SOCK ...
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int memfd_create(const char *name, unsigned int flags)
{
    return (int)syscall(SYS_memfd_create, name, flags | MFD_ALLOW_SEALING);
}
