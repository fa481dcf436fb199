// Kernel receive timestamps (SO_TIMESTAMPING) as the links read them, shared
// by UdpSocket and the MAVLink router.
//
// Kernel layouts are spelled out so that 32-bit builds read 64-bit times
// whatever the libc's time_t (SO_TIMESTAMPING_NEW always uses
// __kernel_timespec); the legacy (OLD) layout is told apart by its size.
#pragma once
#include <linux/net_tstamp.h>
#include <string.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD 37
#endif
#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW 65
#endif
#ifndef SO_TIMESTAMPNS_OLD
#define SO_TIMESTAMPNS_OLD 35
#endif
#ifndef SO_TIMESTAMPNS_NEW
#define SO_TIMESTAMPNS_NEW 64
#endif

namespace onbus {

struct KernelTs64 {
  int64_t sec;
  int64_t nsec;
};
struct KernelTs32 {
  int32_t sec;
  int32_t nsec;
};

// What ReadStamps found.
enum StampFound : uint32_t { kStampSw = 2, kStampHw = 4 };

// Reads the stamps of one SO_TIMESTAMPING control message into (sec, nsec)
// pairs: software in slot 0, hardware in slot 2. Returns StampFound bits.
inline uint32_t ReadStamps(const cmsghdr* c, KernelTs64 out[3]) {
  const unsigned char* data = CMSG_DATA(c);
  size_t len = c->cmsg_len - CMSG_LEN(0);
  if (c->cmsg_type == SO_TIMESTAMPING_NEW || len >= 3 * sizeof(KernelTs64)) {
    if (len < 3 * sizeof(KernelTs64)) return 0;
    memcpy(out, data, 3 * sizeof(KernelTs64));
  } else {
    if (len < 3 * sizeof(KernelTs32)) return 0;
    KernelTs32 t[3];
    memcpy(t, data, sizeof(t));
    for (int i = 0; i < 3; i++) out[i] = {t[i].sec, t[i].nsec};
  }
  uint32_t flags = 0;
  if (out[0].sec != 0 || out[0].nsec != 0) flags |= kStampSw;
  if (out[2].sec != 0 || out[2].nsec != 0) flags |= kStampHw;
  return flags;
}

inline bool IsStampCmsg(const cmsghdr* c) {
  return c->cmsg_level == SOL_SOCKET &&
         (c->cmsg_type == SO_TIMESTAMPING_NEW || c->cmsg_type == SO_TIMESTAMPING_OLD);
}

// Reads an SO_TIMESTAMPNS control message (the stamp taken at read time).
inline bool ReadStampNs(const cmsghdr* c, KernelTs64* out) {
  if (c->cmsg_level != SOL_SOCKET || (c->cmsg_type != SO_TIMESTAMPNS_NEW && c->cmsg_type != SO_TIMESTAMPNS_OLD)) return false;
  size_t len = c->cmsg_len - CMSG_LEN(0);
  if (len >= sizeof(KernelTs64)) {
    memcpy(out, CMSG_DATA(c), sizeof(*out));
  } else if (len >= sizeof(KernelTs32)) {
    KernelTs32 t;
    memcpy(&t, CMSG_DATA(c), sizeof(t));
    *out = {t.sec, t.nsec};
  } else {
    return false;
  }
  return true;
}

// Turns on software receive stamps (with SO_TIMESTAMPNS as the fallback for
// datagrams that arrive before the kernel's stamping key is live). Returns 0
// or -errno.
inline int EnableRxSoftwareStamps(int fd) {
  int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  int r = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING_NEW, &flags, sizeof(flags)) == 0 ? 0 : -errno;
  if (r == -ENOPROTOOPT || r == -EINVAL)
    r = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING_OLD, &flags, sizeof(flags)) == 0 ? 0 : -errno;
  if (r == 0) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS_NEW, &one, sizeof(one)) != 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS_OLD, &one, sizeof(one));
  }
  return r;
}

}  // namespace onbus
