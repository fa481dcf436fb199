/*
 * What user-mode QEMU translates, option by option (docs/ARM.md, "What QEMU
 * cannot do"). Prints one line per socket option / ioctl: "ok" or the error.
 *
 *   aarch64-linux-gnu-gcc -O2 scripts/qemu-probe.c -o /tmp/probe64
 *   qemu-aarch64 -d unimp -L /usr/aarch64-linux-gnu /tmp/probe64
 *   arm-linux-gnueabihf-gcc -O2 scripts/qemu-probe.c -o /tmp/probe32
 *   qemu-arm -L /usr/arm-linux-gnueabihf /tmp/probe32
 *   gcc -O2 scripts/qemu-probe.c -o /tmp/probe && /tmp/probe     # the host kernel
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <asm/termbits.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, int r) { printf("%-34s %s\n", what, r == 0 ? "ok" : strerror(errno)); }

static int setint(int fd, int level, int name, int v) { return setsockopt(fd, level, name, &v, sizeof v); }

int main(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
  unsigned lo = if_nametoindex("lo");

  report("SO_TIMESTAMP_OLD (29)", setint(fd, SOL_SOCKET, 29, 1));
  report("SO_TIMESTAMPNS_OLD (35)", setint(fd, SOL_SOCKET, 35, 1));
  report("SO_TIMESTAMPING_OLD (37)", setint(fd, SOL_SOCKET, 37, 0x18)); /* RX_SOFTWARE | SOFTWARE */
  report("SO_TIMESTAMPNS_NEW (64)", setint(fd, SOL_SOCKET, 64, 1));
  report("SO_TIMESTAMPING_NEW (65)", setint(fd, SOL_SOCKET, 65, 0x18));
  report("SO_RXQ_OVFL (40)", setint(fd, SOL_SOCKET, 40, 1));
  report("SO_BUSY_POLL (46)", setint(fd, SOL_SOCKET, 46, 50));
  report("SO_ZEROCOPY (60)", setint(fd, SOL_SOCKET, 60, 1));
  report("SO_RCVBUFFORCE", setint(fd, SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20));
  report("UDP_SEGMENT (103)", setint(fd, IPPROTO_UDP, 103, 1000));
  report("UDP_GRO (104)", setint(fd, IPPROTO_UDP, 104, 1));
  report("IP_RECVERR", setint(fd, IPPROTO_IP, IP_RECVERR, 1));
  report("IP_PKTINFO", setint(fd, IPPROTO_IP, IP_PKTINFO, 1));

  struct ip_mreqn mi = {0};
  mi.imr_ifindex = (int)lo;
  report("IP_MULTICAST_IF (ip_mreqn)", setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mi, sizeof mi));
  struct group_req gr = {0};
  gr.gr_interface = lo;
  struct sockaddr_in *g = (struct sockaddr_in *)&gr.gr_group;
  g->sin_family = AF_INET;
  inet_pton(AF_INET, "239.10.20.30", &g->sin_addr);
  report("MCAST_JOIN_GROUP (v4)", setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &gr, sizeof gr));
  struct ip_mreqn j = {0};
  inet_pton(AF_INET, "239.10.20.32", &j.imr_multiaddr);
  j.imr_ifindex = (int)lo;
  report("IP_ADD_MEMBERSHIP (ip_mreqn)", setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &j, sizeof j));
  struct ip_mreq_source s = {0};
  inet_pton(AF_INET, "232.1.2.3", &s.imr_multiaddr);
  inet_pton(AF_INET, "127.0.0.1", &s.imr_interface);
  inet_pton(AF_INET, "127.0.0.1", &s.imr_sourceaddr);
  report("IP_ADD_SOURCE_MEMBERSHIP", setsockopt(fd, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &s, sizeof s));
  report("IPV6_MULTICAST_IF", setint(fd6, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)lo));
  struct group_req g6 = {0};
  g6.gr_interface = lo;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&g6.gr_group;
  s6->sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff12::1234", &s6->sin6_addr);
  report("MCAST_JOIN_GROUP (v6)", setsockopt(fd6, IPPROTO_IPV6, MCAST_JOIN_GROUP, &g6, sizeof g6));
  struct ipv6_mreq m6 = {0};
  inet_pton(AF_INET6, "ff12::1235", &m6.ipv6mr_multiaddr);
  m6.ipv6mr_interface = lo;
  report("IPV6_ADD_MEMBERSHIP", setsockopt(fd6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &m6, sizeof m6));

  int pty = posix_openpt(O_RDWR | O_NOCTTY);
  struct termios2 t2;
  report("ioctl TCGETS2 (termios2, any baud)", ioctl(pty, TCGETS2, &t2));
  struct termios t1;
  report("ioctl TCGETS", ioctl(pty, TCGETS, &t1));

#ifdef __arm__
  struct { int64_t sec, nsec; } k;
  report("clock_gettime64 syscall (403)", (int)syscall(403, 0 /* CLOCK_REALTIME */, &k));
#endif
  return 0;
}
