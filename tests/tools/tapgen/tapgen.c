/*
 * tapgen: floods one network interface (a TAP) with identical IPv4/UDP Ethernet frames of a given size,
 * as fast as one thread can, for tests/bench/vhostuser.sh (issue 15): the kernel hands each frame to the
 * TAP, and the process on the TAP's other side (vop or DPDK's net_tap) reads it. Not product code.
 *
 *   tapgen IFNAME FRAME_BYTES SECONDS        (run inside the interface's namespace: ip netns exec NS ...)
 *
 * A raw AF_PACKET socket bound to IFNAME with PACKET_QDISC_BYPASS (frames go straight to the driver's
 * xmit, which for a TAP queues them for the reader or drops them when its queue is full: the TAP's
 * tx_dropped), sendmmsg() of 64 frames per call. A frame the TAP drops ends that call early with ENOBUFS
 * (not counted in "sent", not an error here): what was offered is the TAP's tx_packets + tx_dropped. FRAME_BYTES counts the Ethernet header, not the FCS (as
 * testpmd's --txpkts does): 60..9000. The frame: 02:00:00:00:00:01 → 02:00:00:00:00:02, IPv4 UDP
 * 198.18.1.1:9 → 198.18.1.2:9, zero payload. Ends after SECONDS or on SIGTERM/SIGINT and prints
 * "sent=N seconds=S" on stdout (N: frames the TAP accepted).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint16_t ip_checksum(const uint8_t *p, int n)
{
    uint32_t s = 0;
    for (int i = 0; i < n; i += 2) s += (p[i] << 8) | p[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: tapgen IFNAME FRAME_BYTES SECONDS\n");
        return 2;
    }
    int size = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (size < 60 || size > 9000 || seconds <= 0) {
        fprintf(stderr, "tapgen: FRAME_BYTES must be 60..9000 and SECONDS > 0\n");
        return 2;
    }
    unsigned ifindex = if_nametoindex(argv[1]);
    if (ifindex == 0) {
        perror("tapgen: if_nametoindex");
        return 1;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, 0);   /* protocol 0: send only, receive nothing */
    if (fd < 0) {
        perror("tapgen: socket");
        return 1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
        perror("tapgen: PACKET_QDISC_BYPASS (going through the qdisc)");
    struct sockaddr_ll sa = { .sll_family = AF_PACKET, .sll_ifindex = (int)ifindex, .sll_halen = 6 };
    memcpy(sa.sll_addr, "\x02\0\0\0\0\x02", 6);

    static uint8_t frame[9000];
    memcpy(frame, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00", 14);
    uint8_t *ip = frame + 14;
    int ip_len = size - 14, udp_len = ip_len - 20;
    ip[0] = 0x45; ip[2] = ip_len >> 8; ip[3] = ip_len & 0xff; ip[6] = 0x40; ip[8] = 64; ip[9] = 17;
    memcpy(ip + 12, "\xc6\x12\x01\x01\xc6\x12\x01\x02", 8);
    uint16_t c = ip_checksum(ip, 20);
    ip[10] = c >> 8; ip[11] = c & 0xff;
    uint8_t *udp = ip + 20;
    udp[1] = 9; udp[3] = 9; udp[4] = udp_len >> 8; udp[5] = udp_len & 0xff;   /* checksum 0: none */

    struct iovec iov = { .iov_base = frame, .iov_len = (size_t)size };
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_name = &sa;
        msgs[i].msg_hdr.msg_namelen = sizeof sa;
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    unsigned long long sent = 0;
    double t0 = now(), end = t0 + seconds, t = t0;
    unsigned errors = 0;
    while (!stop) {
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0) {
            sent += (unsigned)n;
            errors = 0;
        } else if (errno != ENOBUFS && ++errors == 1) {
            perror("tapgen: sendmmsg");   /* once per run of errors (ENETDOWN ...) */
        }
        if ((sent & 0x3ff) < BATCH || n <= 0) {
            t = now();
            if (t >= end) break;
        }
    }
    t = now();
    printf("sent=%llu seconds=%.3f\n", sent, t - t0);
    return 0;
}
