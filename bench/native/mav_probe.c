/*
 * mav_probe: MAVLink traffic source and sink for the router benchmark
 * (bench/mavlink-router.ts). Plain C, no threads.
 *
 *   mav_probe send --port N [--seconds 2] [--rate 0] [--batch 64]
 *   mav_probe ptysend [--seconds 2] [--rate 0] [--delay-ms 500]
 *   mav_probe sink --port N [--seconds 3]
 *
 * Frames: MAVLink 2 SYSTEM_TIME (id 2, CRC_EXTRA 137, 12-byte payload, 24
 * bytes on the wire), valid CRC, one per datagram. time_unix_usec carries
 * the CLOCK_REALTIME time of sending in nanoseconds (not microseconds: the
 * field is only a carrier here), so the sink measures sender -> sink latency.
 *
 * send:    UDP to 127.0.0.1:N, sendmmsg batches of --batch at full speed
 *          (--rate 0) or evenly spaced at --rate frames/s.
 * ptysend: opens a PTY pair, prints {"pty":"/dev/pts/K"} on stdout, waits
 *          --delay-ms for the reader to open the slave, then writes frames
 *          into the master (blocking when the PTY buffer is full).
 * sink:    binds 127.0.0.1:N, counts frames for --seconds, prints
 *          {"received":N,"rate":R,"p50":us,"p99":us,"max":us} where rate is
 *          frames / (last - first arrival) and latencies are realtime at
 *          receipt minus the stamp.
 *
 * All print one JSON line on exit. Exit status 0, or 2 on a usage/socket error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 24 /* 10 header + 12 payload + 2 CRC */
#define MAX_SAMPLES (1 << 23)

static int64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint16_t crc_acc(uint8_t b, uint16_t crc) {
  uint8_t t = b ^ (uint8_t)(crc & 0xff);
  t ^= (uint8_t)(t << 4);
  return (uint16_t)((crc >> 8) ^ ((uint16_t)t << 8) ^ ((uint16_t)t << 3) ^ (t >> 4));
}

static void make_frame(uint8_t* f, uint8_t seq, int64_t stamp) {
  f[0] = 0xfd;
  f[1] = 12;
  f[2] = 0;
  f[3] = 0;
  f[4] = seq;
  f[5] = 1;   /* sysid */
  f[6] = 1;   /* compid */
  f[7] = 2;   /* msgid SYSTEM_TIME */
  f[8] = 0;
  f[9] = 0;
  uint64_t s = (uint64_t)stamp;
  for (int i = 0; i < 8; i++) f[10 + i] = (uint8_t)(s >> (8 * i));
  f[18] = f[19] = f[20] = f[21] = 0; /* time_boot_ms */
  uint16_t crc = 0xffff;
  for (int i = 1; i < 10 + 12; i++) crc = crc_acc(f[i], crc);
  crc = crc_acc(137, crc);
  f[22] = (uint8_t)(crc & 0xff);
  f[23] = (uint8_t)(crc >> 8);
}

static const char* arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 2; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

static void sleep_until(int64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000LL), (long)(t % 1000000000LL)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static int cmp_i64(const void* a, const void* b) {
  int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return x < y ? -1 : x > y;
}

static int do_send(int port, double seconds, double rate, int batch) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) {
    perror("socket/connect");
    return 2;
  }
  int sb = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
  if (batch < 1) batch = 1;
  if (batch > 256) batch = 256;
  uint8_t frames[256][FRAME_LEN];
  struct iovec iov[256];
  struct mmsghdr msgs[256];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < batch; i++) {
    iov[i].iov_base = frames[i];
    iov[i].iov_len = FRAME_LEN;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int64_t t0 = now_ns(CLOCK_MONOTONIC), end = t0 + (int64_t)(seconds * 1e9);
  uint64_t sent = 0, errors = 0;
  uint8_t seq = 0;
  int64_t interval = rate > 0 ? (int64_t)(1e9 / rate) : 0;
  int64_t next = t0;
  while (now_ns(CLOCK_MONOTONIC) < end) {
    int n = batch;
    if (interval) {
      sleep_until(next);
      next += interval;
      n = 1;
    }
    int64_t stamp = now_ns(CLOCK_REALTIME);
    for (int i = 0; i < n; i++) make_frame(frames[i], seq++, stamp);
    int r = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (r < 0) {
      errors++;
      continue;
    }
    sent += (uint64_t)r;
  }
  double el = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
  printf("{\"sent\":%llu,\"seconds\":%.3f,\"rate\":%.0f,\"errors\":%llu}\n", (unsigned long long)sent, el, sent / el, (unsigned long long)errors);
  return 0;
}

static int do_ptysend(double seconds, double rate, int delay_ms) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
    perror("posix_openpt");
    return 2;
  }
  struct termios tio;
  if (tcgetattr(m, &tio) == 0) {
    cfmakeraw(&tio);
    tcsetattr(m, TCSANOW, &tio);
  }
  printf("{\"pty\":\"%s\"}\n", ptsname(m));
  fflush(stdout);
  usleep((useconds_t)delay_ms * 1000);
  int64_t t0 = now_ns(CLOCK_MONOTONIC), end = t0 + (int64_t)(seconds * 1e9);
  int64_t interval = rate > 0 ? (int64_t)(1e9 / rate) : 0, next = t0;
  uint64_t sent = 0;
  uint8_t seq = 0;
  uint8_t buf[64 * FRAME_LEN];
  while (now_ns(CLOCK_MONOTONIC) < end) {
    int n = 64;
    if (interval) {
      sleep_until(next);
      next += interval;
      n = 1;
    }
    int64_t stamp = now_ns(CLOCK_REALTIME);
    for (int i = 0; i < n; i++) make_frame(buf + i * FRAME_LEN, seq++, stamp);
    size_t off = 0, len = (size_t)n * FRAME_LEN;
    while (off < len) {
      ssize_t w = write(m, buf + off, len - off);
      if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        goto done;
      }
      off += (size_t)w;
    }
    sent += (uint64_t)n;
  }
done:;
  double el = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
  printf("{\"sent\":%llu,\"seconds\":%.3f,\"rate\":%.0f}\n", (unsigned long long)sent, el, sent / el);
  fflush(stdout);
  usleep(200000); /* let the reader drain before the PTY goes */
  return 0;
}

static int do_sink(int port, double seconds) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rb = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
  if (fd < 0 || bind(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) {
    perror("socket/bind");
    return 2;
  }
  printf("{\"ready\":true}\n");
  fflush(stdout);
  int64_t* lat = malloc(sizeof(int64_t) * MAX_SAMPLES);
  size_t nlat = 0;
  uint64_t received = 0;
  int64_t first = 0, last = 0;
  int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);
  enum { B = 64 };
  static uint8_t bufs[B][2048];
  struct iovec iov[B];
  struct mmsghdr msgs[B];
  for (;;) {
    int64_t left = end - now_ns(CLOCK_MONOTONIC);
    if (left <= 0) break;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)(left / 1000000) + 1) <= 0) continue;
    for (int i = 0; i < B; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof(bufs[i]);
      memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, B, MSG_DONTWAIT, NULL);
    if (n <= 0) continue;
    int64_t rt = now_ns(CLOCK_REALTIME), mt = now_ns(CLOCK_MONOTONIC);
    if (!first) first = mt;
    last = mt;
    for (int i = 0; i < n; i++) {
      const uint8_t* d = bufs[i];
      size_t len = msgs[i].msg_len, pos = 0;
      while (pos + FRAME_LEN <= len) {
        if (d[pos] != 0xfd) {
          pos++;
          continue;
        }
        uint64_t s = 0;
        for (int k = 7; k >= 0; k--) s = (s << 8) | d[pos + 10 + k];
        if (nlat < MAX_SAMPLES) lat[nlat++] = rt - (int64_t)s;
        received++;
        pos += 10 + d[pos + 1] + 2 + ((d[pos + 2] & 1) ? 13 : 0);
      }
    }
  }
  qsort(lat, nlat, sizeof(int64_t), cmp_i64);
  double el = (last - first) / 1e9;
#define PCT(p) (nlat ? lat[(size_t)((p) / 100.0 * (nlat - 1))] / 1000.0 : -1.0)
  printf("{\"received\":%llu,\"rate\":%.0f,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}\n", (unsigned long long)received,
         el > 0 ? received / el : 0.0, PCT(50), PCT(99), nlat ? lat[nlat - 1] / 1000.0 : -1.0);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mav_probe send|ptysend|sink [options]\n");
    return 2;
  }
  int port = atoi(arg(argc, argv, "--port", "0"));
  double seconds = atof(arg(argc, argv, "--seconds", "2"));
  double rate = atof(arg(argc, argv, "--rate", "0"));
  if (strcmp(argv[1], "send") == 0) return do_send(port, seconds, rate, atoi(arg(argc, argv, "--batch", "64")));
  if (strcmp(argv[1], "ptysend") == 0) return do_ptysend(seconds, rate, atoi(arg(argc, argv, "--delay-ms", "500")));
  if (strcmp(argv[1], "sink") == 0) return do_sink(port, seconds);
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
