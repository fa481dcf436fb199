// Socket address helpers shared by the links: parse a textual IP + port into a
// sockaddr_storage and back. Kept out of the hot path: JavaScript caches the
// parsed form of a destination and passes the bytes back on every send.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <string>

namespace onbus {

// Parses "1.2.3.4" / "::1" / "fe80::1%lo" into `out`. `family` is 4, 6 or 0
// (guess from the text). Returns 0 or a negative errno (-EINVAL on bad text).
int ParseAddress(const std::string& ip, int port, int family, sockaddr_storage* out, socklen_t* len);

// Formats the address part of `sa` (no port) and returns its port.
std::string FormatAddress(const sockaddr* sa, int* port);

// Joins or leaves a multicast group on `fd` (any-source when `source` is
// empty, else source-specific), on interface `ifindex` (0 = the kernel's
// choice). Returns 0 or a negative errno.
int GroupMembership(int fd, int family, bool join, const std::string& group, unsigned ifindex, const std::string& source);

inline socklen_t SockaddrLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace onbus
