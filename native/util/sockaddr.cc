#include "util/sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <string.h>

namespace onbus {

int ParseAddress(const std::string& ip, int port, int family, sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof(*out));
  if (port < 0 || port > 65535) return -EINVAL;
  bool v6 = family == 6 || (family == 0 && ip.find(':') != std::string::npos);
  if (!v6) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, ip.c_str(), &sin->sin_addr) != 1) return -EINVAL;
    *len = sizeof(sockaddr_in);
    return 0;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  std::string host = ip;
  auto pct = host.find('%');
  if (pct != std::string::npos) {
    std::string scope = host.substr(pct + 1);
    host.resize(pct);
    unsigned idx = if_nametoindex(scope.c_str());
    if (idx == 0) {
      char* end = nullptr;
      unsigned long n = strtoul(scope.c_str(), &end, 10);
      if (end == scope.c_str() || *end != '\0') return -ENODEV;
      idx = static_cast<unsigned>(n);
    }
    sin6->sin6_scope_id = idx;
  }
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) return -EINVAL;
  *len = sizeof(sockaddr_in6);
  return 0;
}

std::string FormatAddress(const sockaddr* sa, int* port) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {0};
  if (sa->sa_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    *port = ntohs(sin->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    *port = ntohs(sin6->sin6_port);
    if (sin6->sin6_scope_id != 0) {
      char ifname[IF_NAMESIZE] = {0};
      size_t n = strlen(buf);
      if (if_indextoname(sin6->sin6_scope_id, ifname))
        snprintf(buf + n, sizeof(buf) - n, "%%%s", ifname);
      else
        snprintf(buf + n, sizeof(buf) - n, "%%%u", sin6->sin6_scope_id);
    }
  } else {
    *port = 0;
  }
  return buf;
}

int GroupMembership(int fd, int family, bool join, const std::string& group, unsigned ifindex, const std::string& source) {
  int level = family == 6 ? IPPROTO_IPV6 : IPPROTO_IP;
  socklen_t len;
  if (source.empty()) {
    group_req gr{};
    gr.gr_interface = ifindex;
    int r = ParseAddress(group, 0, family, &gr.gr_group, &len);
    if (r != 0) return r;
    return setsockopt(fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &gr, sizeof(gr)) == 0 ? 0 : -errno;
  }
  group_source_req gsr{};
  gsr.gsr_interface = ifindex;
  int r = ParseAddress(group, 0, family, &gsr.gsr_group, &len);
  if (r == 0) r = ParseAddress(source, 0, family, &gsr.gsr_source, &len);
  if (r != 0) return r;
  return setsockopt(fd, level, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP, &gsr, sizeof(gsr)) == 0 ? 0 : -errno;
}

}  // namespace onbus
