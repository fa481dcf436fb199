// MSG_ZEROCOPY vs plain send() on loopback TCP: throughput, sender CPU per GB,
// and how many completions the kernel reports as copied (on loopback: all of
// them, so zero-copy cannot pay there). The receiver is a child reading 1 MiB
// at a time. Prints one JSON line per run, like bench/streams.ts.
//
//   cc -O2 -o /tmp/stream_zerocopy bench/stream_zerocopy.c
//   for s in 16384 65536 262144 1048576; do /tmp/stream_zerocopy $s 0; /tmp/stream_zerocopy $s 1; done
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
static double now() { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu() { struct rusage r; getrusage(RUSAGE_SELF, &r); return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6; }
static long copied = 0, completions = 0;
static unsigned pending_lo = 0;
static void reap(int fd, int block) {
  for (;;) {
    char c[128]; struct msghdr m = {0}; m.msg_control = c; m.msg_controllen = sizeof c;
    if (recvmsg(fd, &m, MSG_ERRQUEUE | (block ? 0 : MSG_DONTWAIT)) < 0) { if (block && errno == EAGAIN) { struct pollfd p = {fd, 0, 0}; poll(&p, 1, 10); continue; } return; }
    struct cmsghdr* cm = CMSG_FIRSTHDR(&m); struct sock_extended_err* e = (void*)CMSG_DATA(cm);
    if (e->ee_origin == SO_EE_ORIGIN_ZEROCOPY) { completions += e->ee_data - e->ee_info + 1; if (e->ee_code & SO_EE_CODE_ZEROCOPY_COPIED) copied += e->ee_data - e->ee_info + 1; pending_lo = e->ee_data + 1; }
    block = 0;
  }
}
int main(int argc, char** argv) {
  size_t size = atoi(argv[1]); int zc = atoi(argv[2]); long long total = 1LL << 30;
  int ls = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(0x7f000001);
  bind(ls, (void*)&a, sizeof a); listen(ls, 1); socklen_t l = sizeof a; getsockname(ls, (void*)&a, &l);
  if (fork() == 0) { int c = accept(ls, 0, 0); char* b = malloc(1 << 20); while (read(c, b, 1 << 20) > 0) {} _exit(0); }
  int s = socket(AF_INET, SOCK_STREAM, 0); connect(s, (void*)&a, sizeof a);
  int one = 1; if (zc && setsockopt(s, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one)) { perror("SO_ZEROCOPY"); return 1; }
  char* buf = malloc(size); memset(buf, 1, size);
  double t0 = now(), c0 = cpu(); long long sent = 0; unsigned calls = 0;
  while (sent < total) {
    ssize_t w = send(s, buf, size, zc ? MSG_ZEROCOPY : 0);
    if (w < 0) { if (errno == ENOBUFS || errno == EAGAIN) { reap(s, 1); continue; } perror("send"); return 1; }
    sent += w; calls++;
    if (zc) { reap(s, 0); while (calls - pending_lo > 64) reap(s, 1); }
  }
  if (zc) while (pending_lo < calls) reap(s, 1);
  double t1 = now(), c1 = cpu(); close(s); wait(0);
  printf("{\"name\":\"tcp.loopback.send_%s.%zu\",\"gbps\":%.3f,\"sender_ms_per_gb\":%.0f,\"completions\":%ld,\"copied\":%ld}\n", zc ? "zerocopy" : "copy", size,
         sent / 1e9 / (t1 - t0), (c1 - c0) * 1e3 / (sent / 1e9), completions, copied);
  return 0;
}
