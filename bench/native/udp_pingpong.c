/*
 * udp_pingpong: UDP round-trip floor in plain C (epoll, one datagram per
 * syscall), with an optional busy-poll: spin on a non-blocking recv for a
 * while before going to sleep in epoll_wait, which saves the cost of waking a
 * sleeping thread (~20 us on a 2-core VM).
 *
 *   udp_pingpong --role echo [--address 127.0.0.1] [--port 0] [--spin-us 0] [--cpu CPU]
 *       prints {"ready":true,"port":N}, then sends every datagram back to its
 *       source until killed (SIGTERM) or stdin closes.
 *
 *   udp_pingpong --role client --port N [--address 127.0.0.1] [--size 64]
 *                [--seconds 2] [--warmup 0.2] [--spin-us 0] [--cpu CPU]
 *       one datagram out, wait for it to come back, repeat; round-trip times
 *       on CLOCK_MONOTONIC. After warm-up + seconds prints
 *       {"n":N,"p50":us,"p99":us,"max":us,"lost":L}.
 *       A datagram not back within 1 s counts as lost and the next one goes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1 << 22)

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Waits until `fd` is readable: spins up to spin_ns on MSG_PEEK first, then
 * epoll_wait. Returns 1 when readable, 0 on timeout, -1 when stdin (the echo
 * peer's lifeline) closed. */
static int wait_readable(int ep, int fd, int64_t spin_ns, int timeout_ms) {
  char c;
  if (spin_ns > 0) {
    int64_t until = now_ns() + spin_ns;
    do {
      if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) return 1;
    } while (now_ns() < until);
  }
  struct epoll_event ev[2];
  for (;;) {
    int n = epoll_wait(ep, ev, 2, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    for (int i = 0; i < n; i++)
      if (ev[i].data.fd == 0) return -1;
    return 1;
  }
}

int main(int argc, char **argv) {
  const char *role = NULL, *address = "127.0.0.1";
  long port = 0, size = 64, cpu = -1;
  double seconds = 2, warmup = 0.2, spin_us = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--role")) role = v;
    else if (!strcmp(a, "--address")) address = v;
    else if (!strcmp(a, "--port")) port = strtol(v, NULL, 10);
    else if (!strcmp(a, "--size")) size = strtol(v, NULL, 10);
    else if (!strcmp(a, "--seconds")) seconds = strtod(v, NULL);
    else if (!strcmp(a, "--warmup")) warmup = strtod(v, NULL);
    else if (!strcmp(a, "--spin-us")) spin_us = strtod(v, NULL);
    else if (!strcmp(a, "--cpu")) cpu = strtol(v, NULL, 10);
  }
  int echo = role && !strcmp(role, "echo");
  if (!role || (!echo && strcmp(role, "client")) || (!echo && port <= 0) || size < 1 || size > 65507) {
    fprintf(stderr, "usage: udp_pingpong --role echo|client [--port N] [--address A] [--size B] [--seconds S] [--warmup S] [--spin-us U] [--cpu CPU]\n");
    return 2;
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
  }
  int64_t spin_ns = (int64_t)(spin_us * 1000);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  if (inet_pton(AF_INET, address, &sin.sin_addr) != 1) return 2;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  unsigned char buf[65536];
  memset(buf, 0x5a, sizeof(buf));

  if (echo) {
    sin.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
      perror("udp_pingpong: bind");
      return 2;
    }
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    struct epoll_event ev0 = {.events = EPOLLIN, .data.fd = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev0);
    printf("{\"ready\":true,\"port\":%u}\n", ntohs(sin.sin_port));
    fflush(stdout);
    for (;;) {
      struct sockaddr_in from;
      socklen_t fl = sizeof(from);
      ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
      if (n >= 0) {
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
        continue;
      }
      if (errno != EAGAIN && errno != EINTR) return 2;
      if (wait_readable(ep, fd, spin_ns, -1) < 0) break;
    }
    return 0;
  }

  sin.sin_port = htons((uint16_t)port);
  if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
    perror("udp_pingpong: connect");
    return 2;
  }
  int64_t *rtt = malloc(sizeof(int64_t) * MAX_SAMPLES);
  if (!rtt) return 2;
  size_t n = 0;
  unsigned long lost = 0;
  const int64_t t0 = now_ns();
  const int64_t measure_from = t0 + (int64_t)(warmup * 1e9);
  const int64_t until = measure_from + (int64_t)(seconds * 1e9);
  for (;;) {
    int64_t s = now_ns();
    if (s >= until) break;
    if (send(fd, buf, (size_t)size, 0) < 0) {
      lost++;
      continue;
    }
    for (;;) {
      ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r >= 0) {
        int64_t e = now_ns();
        if (s >= measure_from && n < MAX_SAMPLES) rtt[n++] = e - s;
        break;
      }
      if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) return 2;
      if (wait_readable(ep, fd, spin_ns, 1000) == 0) {
        lost++;
        break;
      }
    }
  }
  qsort(rtt, n, sizeof(*rtt), cmp_i64);
  double p50 = n ? (double)rtt[(size_t)(0.50 * (double)n)] / 1000.0 : -1;
  double p99 = n ? (double)rtt[(size_t)(0.99 * (double)n)] / 1000.0 : -1;
  printf("{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"lost\":%lu}\n", n, p50, p99, n ? (double)rtt[n - 1] / 1000.0 : -1.0, lost);
  return 0;
}
