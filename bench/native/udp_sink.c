/*
 * udp_sink: the benchmark's limit. A plain C receiver: non-blocking recvmmsg
 * in batches into preallocated buffers, with kernel software receive
 * timestamps on (SO_TIMESTAMPING, as onbus asks for), poll() only when the
 * socket is empty. Single thread, so getrusage(RUSAGE_SELF) is its whole cost.
 *
 *   udp_sink [--address 127.0.0.1] [--port 0] [--rcvbuf 8388608] [--batch 64]
 *            [--size 2048] [--gro] [--no-timestamps] [--latency] [--cpu CPU]
 *
 *   --gro        UDP_GRO: read coalesced super-packets and split them here
 *                (each segment still counts as one datagram)
 *   --latency    keep per-datagram latencies: sender-to-handler (the payload's
 *                bytes 0..7, CLOCK_REALTIME ns little-endian, against the
 *                clock read right after recvmmsg returns) and kernel-to-handler
 *                (the kernel receive stamp against the same clock)
 *
 * Talks JSON lines: on start prints {"ready":true,"port":N}; then reads
 * commands from stdin, one per line:
 *   reset   zero the counters (and the CPU baseline); answers {"reset":true}
 *   report  answers {"count","bytes","cpuSec","activeSec","kernelDrops",
 *           "lat":{"n","p50","p99","max"},"k2h":{...}} (latencies in us,
 *           activeSec = first to last datagram since the reset)
 *   quit    (or end of stdin) exit
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW 65
#endif
#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD 37
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

#define MAX_BATCH 1024
#define CTRL_BYTES 256
#define MAX_SAMPLES (1 << 21)

/* The NEW stamp layout is always 64-bit seconds; the OLD one uses the libc's
 * struct timespec, which on 64-bit Linux is the same. */
struct ts64 {
  int64_t sec;
  int64_t nsec;
};

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int64_t now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return (int64_t)v;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const int64_t *s, size_t n, double p) {
  if (n == 0) return -1;
  size_t k = (size_t)(p / 100.0 * (double)n);
  if (k >= n) k = n - 1;
  return (double)s[k] / 1000.0;
}

static void print_lat(const char *name, int64_t *s, size_t n) {
  qsort(s, n, sizeof(*s), cmp_i64);
  printf("\"%s\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}", name, n, pct_us(s, n, 50), pct_us(s, n, 99),
         n ? (double)s[n - 1] / 1000.0 : -1.0);
}

int main(int argc, char **argv) {
  const char *address = "127.0.0.1";
  long port = 0, rcvbuf = 8 << 20, batch = 64, size = 2048, cpu = -1;
  int gro = 0, timestamps = 1, latency = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--gro")) gro = 1;
    else if (!strcmp(a, "--no-timestamps")) timestamps = 0;
    else if (!strcmp(a, "--latency")) latency = 1;
    else if (i + 1 < argc && !strcmp(a, "--address")) address = argv[++i];
    else if (i + 1 < argc && !strcmp(a, "--port")) port = strtol(argv[++i], NULL, 10);
    else if (i + 1 < argc && !strcmp(a, "--rcvbuf")) rcvbuf = strtol(argv[++i], NULL, 10);
    else if (i + 1 < argc && !strcmp(a, "--batch")) batch = strtol(argv[++i], NULL, 10);
    else if (i + 1 < argc && !strcmp(a, "--size")) size = strtol(argv[++i], NULL, 10);
    else if (i + 1 < argc && !strcmp(a, "--cpu")) cpu = strtol(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: udp_sink [--address A] [--port N] [--rcvbuf B] [--batch M] [--size B] [--gro] [--no-timestamps] [--latency] [--cpu CPU]\n");
      return 2;
    }
  }
  if (batch < 1) batch = 1;
  if (batch > MAX_BATCH) batch = MAX_BATCH;
  if (gro) size = 65536;
  if (size < 16) size = 16;

  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) perror("udp_sink: sched_setaffinity");
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("udp_sink: socket");
    return 2;
  }
  int one = 1, rb = (int)rcvbuf;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
  if (timestamps) {
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING_NEW, &flags, sizeof(flags)) != 0 &&
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING_OLD, &flags, sizeof(flags)) != 0)
      perror("udp_sink: SO_TIMESTAMPING");
  }
  if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) != 0) {
    perror("udp_sink: UDP_GRO");
    return 2;
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &sin.sin_addr) != 1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
    perror("udp_sink: bind");
    return 2;
  }
  socklen_t sl = sizeof(sin);
  getsockname(fd, (struct sockaddr *)&sin, &sl);

  unsigned char *bufs = malloc((size_t)size * (size_t)batch);
  unsigned char *ctrl = calloc((size_t)batch, CTRL_BYTES);
  struct mmsghdr *msgs = calloc((size_t)batch, sizeof(*msgs));
  struct iovec *iov = calloc((size_t)batch, sizeof(*iov));
  int64_t *lat = latency ? malloc(sizeof(int64_t) * MAX_SAMPLES) : NULL;
  int64_t *k2h = latency ? malloc(sizeof(int64_t) * MAX_SAMPLES) : NULL;
  if (!bufs || !ctrl || !msgs || !iov || (latency && (!lat || !k2h))) return 2;
  for (long i = 0; i < batch; i++) {
    iov[i].iov_base = bufs + (size_t)i * (size_t)size;
    iov[i].iov_len = (size_t)size;
  }

  printf("{\"ready\":true,\"port\":%u}\n", ntohs(sin.sin_port));
  fflush(stdout);

  unsigned long long count = 0, bytes = 0;
  // SO_RXQ_OVFL: the kernel's cumulative drop count, sent only once nonzero.
  uint32_t drops0 = 0, drops = 0;
  size_t nlat = 0, nk2h = 0;
  int64_t t_first = 0, t_last = 0;
  double cpu0 = cpu_now();
  char line[256];
  size_t line_len = 0;
  unsigned idle_checks = 0;

  for (;;) {
    for (long i = 0; i < batch; i++) {
      struct msghdr *h = &msgs[i].msg_hdr;
      h->msg_name = NULL;
      h->msg_namelen = 0;
      h->msg_iov = &iov[i];
      h->msg_iovlen = 1;
      h->msg_control = ctrl + (size_t)i * CTRL_BYTES;
      h->msg_controllen = CTRL_BYTES;
      h->msg_flags = 0;
    }
    int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
    int check_stdin = 0;
    if (n > 0) {
      int64_t mono = now_ns(CLOCK_MONOTONIC);
      int64_t real = latency ? now_ns(CLOCK_REALTIME) : 0;
      if (t_first == 0) t_first = mono;
      t_last = mono;
      for (int i = 0; i < n; i++) {
        struct msghdr *h = &msgs[i].msg_hdr;
        unsigned len = msgs[i].msg_len;
        int seg = 0;
        int64_t kstamp = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
          if (c->cmsg_level == SOL_SOCKET && (c->cmsg_type == SO_TIMESTAMPING_NEW || c->cmsg_type == SO_TIMESTAMPING_OLD)) {
            struct ts64 t;
            memcpy(&t, CMSG_DATA(c), sizeof(t));
            kstamp = t.sec * 1000000000 + t.nsec;
          } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            memcpy(&drops, CMSG_DATA(c), sizeof(drops));
          } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            memcpy(&seg, CMSG_DATA(c), sizeof(seg));
          }
        }
        if (seg <= 0 || (unsigned)seg >= len) seg = (int)len;
        const unsigned char *p = iov[i].iov_base;
        for (unsigned off = 0; off < len; off += (unsigned)seg) {
          unsigned l = len - off < (unsigned)seg ? len - off : (unsigned)seg;
          count++;
          bytes += l;
          if (latency) {
            if (l >= 8 && nlat < MAX_SAMPLES) lat[nlat++] = real - get_le64(p + off);
            if (kstamp && nk2h < MAX_SAMPLES) k2h[nk2h++] = real - kstamp;
          }
        }
      }
      // Under saturation the socket never runs dry; look at stdin now and then.
      if (++idle_checks >= 256) {
        idle_checks = 0;
        check_stdin = 1;
      }
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      perror("udp_sink: recvmmsg");
      return 2;
    }
    if (n <= 0 || check_stdin) {
      struct pollfd pf[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
      int r = poll(pf, 2, n <= 0 ? -1 : 0);
      if (r < 0 && errno != EINTR) return 2;
      if (r > 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
        ssize_t got = read(0, line + line_len, sizeof(line) - 1 - line_len);
        if (got <= 0) break;
        line_len += (size_t)got;
        char *nl;
        int quit = 0;
        while ((nl = memchr(line, '\n', line_len)) != NULL) {
          *nl = 0;
          if (!strcmp(line, "reset")) {
            count = bytes = 0;
            nlat = nk2h = 0;
            t_first = t_last = 0;
            drops0 = drops;
            cpu0 = cpu_now();
            printf("{\"reset\":true}\n");
          } else if (!strcmp(line, "report")) {
            printf("{\"count\":%llu,\"bytes\":%llu,\"cpuSec\":%.6f,\"activeSec\":%.6f,\"kernelDrops\":%u", count, bytes, cpu_now() - cpu0,
                   (double)(t_last - t_first) / 1e9, drops - drops0);
            if (latency) {
              printf(",");
              print_lat("lat", lat, nlat);
              printf(",");
              print_lat("k2h", k2h, nk2h);
            }
            printf("}\n");
          } else if (!strcmp(line, "quit")) {
            quit = 1;
          }
          fflush(stdout);
          size_t used = (size_t)(nl - line) + 1;
          memmove(line, nl + 1, line_len - used);
          line_len -= used;
        }
        if (quit) break;
        if (line_len >= sizeof(line) - 1) line_len = 0;
      }
    }
  }
  close(fd);
  return 0;
}
