/*
 * udp_sender: the benchmark's native UDP sender, and a simulated sensor for
 * the demo. Plain C, no threads, one connected UDP socket.
 *
 *   udp_sender --port N [--address 127.0.0.1] [--size 64] [--seconds 2]
 *              [--rate 0] [--gso] [--segs K] [--batch M] [--tick-us T]
 *              [--count C] [--cpu CPU] [--sndbuf BYTES]
 *
 *   --port N       destination port (required)
 *   --address A    destination IPv4 address (default 127.0.0.1)
 *   --size B       datagram payload bytes, 8..65507 (default 64)
 *   --seconds S    stop after S seconds (default 2; 0 = until SIGINT/SIGTERM)
 *   --count C      stop after C datagrams (default 0 = no limit)
 *   --rate R       datagrams per second; 0 (default) = as fast as possible
 *   --gso          send with UDP GSO (UDP_SEGMENT): one super-packet carries
 *                  up to K datagrams of B bytes through the stack at once
 *   --segs K       datagrams per GSO super-packet (default: as many as fit in
 *                  64 KiB, at most 64)
 *   --batch M      messages (datagrams, or super-packets with --gso) per
 *                  sendmmsg call at full speed (default 8 with --gso, 64 without)
 *   --tick-us T    with --rate: wake every T us and send the datagrams due
 *                  (default 1e6/R, i.e. one datagram per wake-up, evenly
 *                  spaced; a larger tick sends small bursts like a real
 *                  sensor, using less CPU)
 *   --cpu CPU      pin the sender to this CPU (default: not pinned)
 *   --sndbuf BYTES SO_SNDBUF (default 4 MiB)
 *
 * Payload of every datagram: bytes 0..7 the CLOCK_REALTIME time of sending in
 * nanoseconds (little-endian u64), bytes 8..15 a sequence number starting at 0
 * (little-endian u64, when the datagram has room), the rest 0xa5. All
 * datagrams of one sendmmsg call carry the same send time (taken just before
 * the call).
 *
 * On exit prints one JSON line to stdout:
 *   {"sent":N,"seconds":S,"rate":N/S,"calls":C,"errors":E,"cpuSec":X}
 * `sent` counts datagrams the kernel accepted (a GSO super-packet of K
 * segments counts K). Exit status 0, or 2 on a usage or socket error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define MAX_BATCH 1024
#define MAX_UDP_PAYLOAD 65507

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static uint64_t now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void usage(void) {
  fprintf(stderr,
          "usage: udp_sender --port N [--address A] [--size B] [--seconds S] [--count C]\n"
          "                  [--rate R] [--gso] [--segs K] [--batch M] [--tick-us T] [--cpu CPU] [--sndbuf BYTES]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *address = "127.0.0.1";
  long port = -1, size = 64, segs = 0, batch = 0, cpu = -1, sndbuf = 4 << 20;
  double seconds = 2, rate = 0, tick_us = 0;
  unsigned long long count_limit = 0;
  int gso = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--gso")) {
      gso = 1;
      continue;
    }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--port")) port = strtol(v, NULL, 10);
    else if (!strcmp(a, "--address")) address = v;
    else if (!strcmp(a, "--size")) size = strtol(v, NULL, 10);
    else if (!strcmp(a, "--seconds")) seconds = strtod(v, NULL);
    else if (!strcmp(a, "--count")) count_limit = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--rate")) rate = strtod(v, NULL);
    else if (!strcmp(a, "--segs")) segs = strtol(v, NULL, 10);
    else if (!strcmp(a, "--batch")) batch = strtol(v, NULL, 10);
    else if (!strcmp(a, "--tick-us")) tick_us = strtod(v, NULL);
    else if (!strcmp(a, "--cpu")) cpu = strtol(v, NULL, 10);
    else if (!strcmp(a, "--sndbuf")) sndbuf = strtol(v, NULL, 10);
    else usage();
  }
  if (port <= 0 || port > 65535 || size < 8 || size > MAX_UDP_PAYLOAD || rate < 0 || seconds < 0) usage();
  if (segs <= 0) segs = MAX_UDP_PAYLOAD / size < 64 ? MAX_UDP_PAYLOAD / size : 64;
  if (!gso || segs < 1) segs = 1;
  if (segs * size > MAX_UDP_PAYLOAD) {
    fprintf(stderr, "udp_sender: --segs %ld x --size %ld exceeds one UDP datagram\n", segs, size);
    return 2;
  }
  if (batch <= 0) batch = gso ? 8 : 64;
  if (batch > MAX_BATCH) batch = MAX_BATCH;

  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) perror("udp_sender: sched_setaffinity");
  }
  // Paced sending sleeps to absolute deadlines; the default 50 us timer slack
  // would bunch 20,000/s into bursts.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("udp_sender: socket");
    return 2;
  }
  int sb = (int)sndbuf;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof(sb)) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof(dst));
  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &dst.sin_addr) != 1) {
    fprintf(stderr, "udp_sender: bad IPv4 address %s\n", address);
    return 2;
  }
  // Connected: the route is looked up once, not per datagram.
  if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
    perror("udp_sender: connect");
    return 2;
  }
  if (gso) {
    int seg = (int)size;
    if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) != 0) {
      perror("udp_sender: UDP_SEGMENT (GSO) not available");
      return 2;
    }
  }

  size_t msg_bytes = (size_t)(segs * size);
  unsigned char *buf = malloc(msg_bytes * (size_t)MAX_BATCH);
  struct mmsghdr *msgs = calloc(MAX_BATCH, sizeof(*msgs));
  struct iovec *iov = calloc(MAX_BATCH, sizeof(*iov));
  if (!buf || !msgs || !iov) return 2;
  memset(buf, 0xa5, msg_bytes * (size_t)MAX_BATCH);
  for (int i = 0; i < MAX_BATCH; i++) {
    iov[i].iov_base = buf + (size_t)i * msg_bytes;
    iov[i].iov_len = msg_bytes;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  uint64_t seq = 0, sent = 0, calls = 0, errors = 0;
  const uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  const uint64_t deadline = seconds > 0 ? t0 + (uint64_t)(seconds * 1e9) : UINT64_MAX;
  uint64_t tick_ns = 0;
  if (rate > 0) {
    if (tick_us <= 0) tick_us = 1e6 / rate;
    tick_ns = (uint64_t)(tick_us * 1000.0);
    if (tick_ns < 1000) tick_ns = 1000;
  }
  uint64_t next_tick = t0;

  while (!stop_flag) {
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    if (mono >= deadline) break;
    if (count_limit && sent >= count_limit) break;

    // How many datagrams go out in this call, and how they are packed.
    uint64_t want;
    if (rate > 0) {
      if (mono < next_tick) {
        struct timespec ts = {(time_t)(next_tick / 1000000000u), (long)(next_tick % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        continue;
      }
      next_tick += tick_ns;
      // Late wake-ups do not accumulate into an ever-growing backlog burst.
      if (next_tick + 100 * tick_ns < mono) next_tick = mono;
      uint64_t due = (uint64_t)((double)(mono - t0) * rate / 1e9) + 1;
      if (due <= sent) continue;
      want = due - sent;
    } else {
      want = (uint64_t)batch * (uint64_t)segs;
    }
    if (count_limit && want > count_limit - sent) want = count_limit - sent;
    if (want > (uint64_t)MAX_BATCH * (uint64_t)segs) want = (uint64_t)MAX_BATCH * (uint64_t)segs;

    // Pack `want` datagrams into messages of up to `segs` segments. The last
    // one may be shorter; a message of one segment is an ordinary datagram.
    int nmsg = 0;
    uint64_t left = want;
    const uint64_t stamp = now_ns(CLOCK_REALTIME);
    while (left > 0) {
      uint64_t k = left < (uint64_t)segs ? left : (uint64_t)segs;
      unsigned char *p = iov[nmsg].iov_base;
      for (uint64_t s = 0; s < k; s++) {
        unsigned char *d = p + s * (uint64_t)size;
        put_le64(d, stamp);
        if (size >= 16) put_le64(d + 8, seq + s);
      }
      iov[nmsg].iov_len = (size_t)(k * (uint64_t)size);
      seq += k;
      left -= k;
      nmsg++;
    }

    int done = 0;
    while (done < nmsg && !stop_flag) {
      int r = sendmmsg(fd, msgs + done, (unsigned)(nmsg - done), 0);
      calls++;
      if (r < 0) {
        if (errno == EINTR) continue;
        // ECONNREFUSED (nobody bound yet), ENOBUFS, EAGAIN: count and go on;
        // the datagram of the failing message is not counted as sent.
        errors++;
        done++;
        continue;
      }
      for (int i = done; i < done + r; i++) sent += iov[i].iov_len / (size_t)size;
      done += r;
    }
  }

  double elapsed = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_sec = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"sent\":%llu,\"seconds\":%.6f,\"rate\":%.1f,\"calls\":%llu,\"errors\":%llu,\"cpuSec\":%.6f}\n", (unsigned long long)sent, elapsed,
         elapsed > 0 ? (double)sent / elapsed : 0.0, (unsigned long long)calls, (unsigned long long)errors, cpu_sec);
  fflush(stdout);
  close(fd);
  return 0;
}
