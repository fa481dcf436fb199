// Receive helpers: kernel receive timestamps, drop counts and recvmmsg batch
// entries, shared by the UDP link (native/udp_socket.cc), the stream link
// (native/stream_socket.cc), the RTP receiver (native/rtp/) and the MAVLink
// router (native/mavlink/router.cc).
//
// SO_TIMESTAMPING_NEW is preferred (the old form breaks after 2038 on 32-bit
// ARM); SO_TIMESTAMPNS is enabled as well because right after SO_TIMESTAMPING
// is switched on the kernel enables receive stamping asynchronously, and a
// datagram that arrives in that window is stamped only when read.
#pragma once
#include <errno.h>
#include <linux/net_tstamp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

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
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

namespace onbus {

// Kernel layouts, spelled out so that 32-bit builds read 64-bit times whatever
// the libc's time_t (SO_TIMESTAMPING_NEW always uses __kernel_timespec).
struct KernelTs64 {
  int64_t sec;
  int64_t nsec;
};
struct KernelTs32 {
  int32_t sec;
  int32_t nsec;
};

// Bits returned by ReadStamps (the same values as the UDP link's MetaFlag).
enum StampBits : uint32_t { kStampSw = 2, kStampHw = 4 };

inline bool IsStampCmsg(const cmsghdr* c) {
  return c->cmsg_level == SOL_SOCKET && (c->cmsg_type == SO_TIMESTAMPING_NEW || c->cmsg_type == SO_TIMESTAMPING_OLD);
}

inline bool IsLateStampCmsg(const cmsghdr* c) {
  return c->cmsg_level == SOL_SOCKET && (c->cmsg_type == SO_TIMESTAMPNS_NEW || c->cmsg_type == SO_TIMESTAMPNS_OLD);
}

// Reads the stamps of one control message into (sec, nsec) pairs; returns the
// StampBits found. Handles the 64-bit (NEW) layout and the legacy one, whose
// size tells whether time_t is 32 or 64 bits.
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

// Reads an SO_TIMESTAMPNS stamp (taken when the datagram was read).
inline KernelTs64 ReadLateStamp(const cmsghdr* c) {
  KernelTs64 t{0, 0};
  size_t len = c->cmsg_len - CMSG_LEN(0);
  if (len >= sizeof(KernelTs64)) memcpy(&t, CMSG_DATA(c), sizeof(t));
  else if (len >= sizeof(KernelTs32)) {
    KernelTs32 s;
    memcpy(&s, CMSG_DATA(c), sizeof(s));
    t = {s.sec, s.nsec};
  }
  return t;
}

// Turns on software (and, where the NIC does it, hardware) receive stamps plus
// the read-time fallback. Returns 0 or a negative errno.
inline int EnableRxTimestamps(int fd) {
  int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RX_HARDWARE |
              SOF_TIMESTAMPING_RAW_HARDWARE;
  int r = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING_NEW, &flags, sizeof(flags)) == 0 ? 0 : -errno;
  if (r == -ENOPROTOOPT || r == -EINVAL)
    r = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING_OLD, &flags, sizeof(flags)) == 0 ? 0 : -errno;
  if (r != 0) return r;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS_NEW, &one, sizeof(one)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS_OLD, &one, sizeof(one));
  return 0;
}

// Points one recvmmsg entry at its buffer, peer-address slot and control
// buffer (the datagram readers all fill their batches this way).
inline void PrepareRecv(mmsghdr& m, iovec& iov, void* buf, size_t len, sockaddr_storage* name, void* ctrl,
                        size_t ctrl_len) {
  iov.iov_base = buf;
  iov.iov_len = len;
  msghdr& h = m.msg_hdr;
  h.msg_name = name;
  h.msg_namelen = sizeof(*name);
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = ctrl;
  h.msg_controllen = ctrl_len;
  h.msg_flags = 0;
  m.msg_len = 0;
}

// Asks for the socket's cumulative drop count (SO_RXQ_OVFL) with every datagram.
inline int EnableRxDropCount(int fd) {
  int one = 1;
  return setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) == 0 ? 0 : -errno;
}

}  // namespace onbus
