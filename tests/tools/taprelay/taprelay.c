/*
 * taprelay: the simplest userspace TAP-to-TAP relay, the ceiling a userspace bridge between two TAPs can
 * reach on one queue (issue 15). Not product code: tests/bench/net.sh builds and runs it beside vop.
 *
 *   taprelay TAP_A NETNS_A TAP_B NETNS_B      (NETNS "-" = the relay's own namespace)
 *
 * Each TAP is created inside its namespace (setns() to /run/netns/NAME, open /dev/net/tun, TUNSETIFF, back)
 * with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, a 12-byte virtio_net_hdr (TUNSETVNETHDRSZ, as vop uses) and the
 * CSUM/TSO offloads, so 64 KiB GSO frames cross whole with their header. One blocking thread per
 * direction reads a frame into a 128 KiB buffer and writes the same bytes to the other TAP: no epoll, no
 * batching. The TAPs are not brought up or addressed: that is the caller's (ip link / ip addr).
 * Prints "ready" on stdout once both TAPs exist; SIGTERM or SIGINT end it with exit code 0 after one line
 * of frame counts on stderr; the TAPs go with it (not persistent). Errors print one line each: a write
 * error drops that frame (printed once per errno in a row; EIO while the other TAP is still down is normal
 * at start), a read error ends the process with exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BUF_SIZE (128 * 1024)

struct dir {
    const char *from_name, *to_name;
    int from, to;
    atomic_ullong frames, bytes, write_errors;
};

static void die(const char *what, const char *name)
{
    fprintf(stderr, "taprelay: %s %s: %s\n", what, name, strerror(errno));
    exit(1);
}

static int open_tap(const char *name, const char *ns)
{
    int self = -1;
    if (strcmp(ns, "-") != 0) {
        char path[256];
        snprintf(path, sizeof path, "/run/netns/%s", ns);
        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0) die("open", "/proc/self/ns/net");
        int nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) die("open", path);
        if (setns(nsfd, CLONE_NEWNET) < 0) die("setns", path);
        close(nsfd);
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) die("open /dev/net/tun for", name);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (strlen(name) >= IFNAMSIZ) { fprintf(stderr, "taprelay: TAP name too long: %s\n", name); exit(1); }
    strcpy(ifr.ifr_name, name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF", name);
    int hdr = 12;   /* struct virtio_net_hdr_mrg_rxbuf: the 10-byte header and num_buffers */
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) die("TUNSETVNETHDRSZ", name);
    unsigned long off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd, TUNSETOFFLOAD, off) < 0) die("TUNSETOFFLOAD", name);
    if (self >= 0) {
        if (setns(self, CLONE_NEWNET) < 0) die("setns back from", ns);
        close(self);
    }
    return fd;
}

static void *pump(void *arg)
{
    struct dir *d = arg;
    unsigned char *buf = malloc(BUF_SIZE);
    if (!buf) { fprintf(stderr, "taprelay: out of memory\n"); exit(1); }
    int last_err = 0;
    for (;;) {
        ssize_t n = read(d->from, buf, BUF_SIZE);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("read", d->from_name);
        }
        ssize_t w;
        do w = write(d->to, buf, (size_t)n); while (w < 0 && errno == EINTR);
        if (w < 0) {
            atomic_fetch_add_explicit(&d->write_errors, 1, memory_order_relaxed);
            if (errno != last_err)
                fprintf(stderr, "taprelay: write %s (frame of %zd bytes from %s): %s\n", d->to_name, n,
                        d->from_name, strerror(errno));
            last_err = errno;
            continue;
        }
        last_err = 0;
        atomic_fetch_add_explicit(&d->frames, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&d->bytes, (unsigned long long)n, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: taprelay TAP_A NETNS_A TAP_B NETNS_B   (NETNS - = this namespace)\n");
        return 2;
    }
    /* SIGTERM/SIGINT/SIGHUP are blocked in every thread and taken by sigwait() in main, so the pumps never
     * see EINTR from them and exit is one place. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    int a = open_tap(argv[1], argv[2]);
    int b = open_tap(argv[3], argv[4]);
    static struct dir ab, ba;
    ab.from_name = argv[1]; ab.to_name = argv[3]; ab.from = a; ab.to = b;
    ba.from_name = argv[3]; ba.to_name = argv[1]; ba.from = b; ba.to = a;
    pthread_t t1, t2;
    if ((errno = pthread_create(&t1, NULL, pump, &ab)) != 0) die("pthread_create", argv[1]);
    if ((errno = pthread_create(&t2, NULL, pump, &ba)) != 0) die("pthread_create", argv[3]);
    printf("ready\n");
    fflush(stdout);

    int sig;
    while (sigwait(&set, &sig) != 0) { }
    fprintf(stderr, "taprelay: %s: %s->%s %llu frames %llu bytes (%llu write errors), %s->%s %llu frames %llu bytes (%llu write errors)\n",
            strsignal(sig), argv[1], argv[3], (unsigned long long)ab.frames, (unsigned long long)ab.bytes,
            (unsigned long long)ab.write_errors, argv[3], argv[1], (unsigned long long)ba.frames,
            (unsigned long long)ba.bytes, (unsigned long long)ba.write_errors);
    /* The pumps are blocked in read(); exiting the process closes both fds and removes the TAPs. */
    _exit(0);
}
