#include "udp_socket.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/sock_diag.h>
#include <linux/udp.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <string.h>
#include <sys/epoll.h>

#include <algorithm>
#include <string>

#include "addon.h"
#include "util/call_js.h"
#include "util/rx_stamps.h"
#include "util/sockaddr.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace onbus {

static_assert(static_cast<uint32_t>(kStampSw) == kFlagSwStamp && static_cast<uint32_t>(kStampHw) == kFlagHwStamp, "ReadStamps returns MetaFlag bits");

namespace {

constexpr unsigned kRxBatch = 64;      // messages per recvmmsg call
constexpr unsigned kRxBudget = 16;     // recvmmsg calls per wake-up: one busy
                                       // socket cannot starve the others
constexpr unsigned kTxBatch = 64;      // msghdrs per sendmmsg call
constexpr unsigned kGroMaxSegs = 64;   // UDP_GRO never coalesces more
constexpr size_t kCtrlSize = 256;      // timestamping + overflow + GRO cmsgs

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : -errno;
}

int GetInt(int fd, int level, int name, int* value) {
  socklen_t len = sizeof(*value);
  return getsockopt(fd, level, name, value, &len) == 0 ? 0 : -errno;
}

}  // namespace

struct TxStamp {
  uint32_t id;
  uint32_t kind;  // SCM_TSTAMP_SND etc.
  int64_t sec;
  int64_t nsec;
};

// The part of the socket the I/O thread touches. Everything here after
// construction is guarded by io_mu, except the ring indices (atomics with
// acquire/release, one writer each) and the counters.
struct UdpRx : IoSource {
  UniqueFd fd;
  std::shared_ptr<Reactor> reactor;
  uint32_t id = 0;
  bool receiving = false;
  bool want_write = false;
  bool gro = false;
  bool tx_stamps = false;
  std::atomic<bool> paused{false};

  // Ring geometry (fixed once receiving starts).
  uint8_t* ring = nullptr;
  uint32_t* meta = nullptr;
  uint32_t slot_size = 0, slots = 0, meta_cap = 0;
  std::atomic<uint32_t> slot_head{0}, slot_tail{0}, meta_head{0}, meta_tail{0};

  std::atomic<bool> rx_scheduled{false}, write_scheduled{false}, stamp_scheduled{false}, err_scheduled{false};
  std::vector<TxStamp> stamps;  // io_mu
  std::vector<int> errors;      // io_mu
  UdpCounters counters;

  // recvmmsg scratch (I/O thread only).
  mmsghdr msgs[kRxBatch];
  iovec iov[kRxBatch];
  sockaddr_storage names[kRxBatch];
  alignas(cmsghdr) char ctrl[kRxBatch][kCtrlSize];

  uint32_t EventsLocked() const {
    uint32_t ev = 0;
    if (receiving && !paused.load()) ev |= EPOLLIN;
    if (want_write) ev |= EPOLLOUT;
    return ev;
  }
  void ApplyEventsLocked() {
    if (id != 0 && fd.valid()) reactor->Modify(id, fd.get(), EventsLocked());
  }

  void Abandon() override { fd.Reset(); }

  void OnIo(uint32_t events) override {
    if (events & EPOLLERR) DrainErrors();
    if ((events & EPOLLIN) && receiving) Drain();
    if ((events & EPOLLOUT) && want_write) {
      want_write = false;
      ApplyEventsLocked();
      if (!write_scheduled.exchange(true)) reactor->Wake(id, kWakeWritable);
    }
  }

  void PushError(int err) {
    errors.push_back(err);
    if (!err_scheduled.exchange(true)) reactor->Wake(id, kWakeError);
  }

  void DrainErrors() {
    bool any = false;
    for (int guard = 0; guard < 256; guard++) {
      char cbuf[512];
      msghdr m{};
      m.msg_control = cbuf;
      m.msg_controllen = sizeof(cbuf);
      ssize_t r = recvmsg(fd.get(), &m, MSG_ERRQUEUE | MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        break;
      }
      any = true;
      KernelTs64 ts[3] = {};
      uint32_t have = 0;
      const sock_extended_err* ee = nullptr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (IsStampCmsg(c)) have = ReadStamps(c, ts);
        else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                 (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))
          ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
      }
      if (ee && ee->ee_origin == SO_EE_ORIGIN_TIMESTAMPING && (have & kFlagSwStamp)) {
        stamps.push_back({ee->ee_data, ee->ee_info, ts[0].sec, ts[0].nsec});
      } else if (ee && ee->ee_errno != 0 && ee->ee_origin != SO_EE_ORIGIN_TIMESTAMPING) {
        PushError(static_cast<int>(ee->ee_errno));
      }
    }
    if (!stamps.empty() && !stamp_scheduled.exchange(true)) reactor->Wake(id, kWakeTxStamp);
    // A pending socket error (ICMP unreachable on a connected socket) also
    // raises EPOLLERR; read it so a paused socket cannot spin on it.
    int soerr = 0;
    if (GetInt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr) == 0 && soerr != 0) {
      counters.rx_errors++;
      PushError(soerr);
    }
    (void)any;
  }

  // Fills the ring from the kernel until EAGAIN, the budget, or a full ring.
  void Drain() {
    const uint32_t segs_per_slot = gro ? kGroMaxSegs : 1;
    for (unsigned call = 0; call < kRxBudget; call++) {
      uint32_t sh = slot_head.load(std::memory_order_relaxed);
      uint32_t mh = meta_head.load(std::memory_order_relaxed);
      uint32_t free_slots = slots - (sh - slot_tail.load(std::memory_order_acquire));
      uint32_t free_meta = meta_cap - (mh - meta_tail.load(std::memory_order_acquire));
      if (free_slots == 0 || free_meta < segs_per_slot) {
        // Ring full. Pause, then look again: JavaScript advances the tail
        // before it reads `paused`, so one of us always sees the other.
        paused.store(true);
        free_slots = slots - (sh - slot_tail.load());
        free_meta = meta_cap - (mh - meta_tail.load());
        if (free_slots == 0 || free_meta < segs_per_slot) {
          counters.rx_pauses++;
          ApplyEventsLocked();
          return;
        }
        paused.store(false);
      }
      uint32_t first = sh & (slots - 1);
      uint32_t vlen = std::min({kRxBatch, free_slots, slots - first, free_meta / segs_per_slot});
      for (uint32_t i = 0; i < vlen; i++) {
        PrepareRecv(msgs[i], iov[i], ring + static_cast<size_t>(first + i) * slot_size, slot_size, &names[i], ctrl[i], kCtrlSize);
      }
      int n = recvmmsg(fd.get(), msgs, vlen, MSG_DONTWAIT | (gro ? 0 : MSG_TRUNC), nullptr);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) {
          call--;
          continue;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        counters.rx_errors++;
        PushError(err);
        return;
      }
      if (n == 0) return;
      uint32_t records = 0;
      for (int i = 0; i < n; i++) records += Record(msgs[i], first + i, sh + i, mh + records);
      slot_head.store(sh + n, std::memory_order_release);
      meta_head.store(mh + records, std::memory_order_release);
      counters.rx_batches++;
      if (!rx_scheduled.exchange(true)) reactor->Wake(id, kWakeRx);
      if (static_cast<uint32_t>(n) < vlen) return;  // the queue is empty
    }
  }

  // Writes the metadata record(s) of one received message; returns how many.
  uint32_t Record(const mmsghdr& mm, uint32_t slot, uint32_t slot_seq, uint32_t meta_seq) {
    const msghdr& h = mm.msg_hdr;
    uint32_t size = mm.msg_len;
    uint32_t flags = 0;
    if (h.msg_flags & MSG_TRUNC) flags |= kFlagTruncated;
    KernelTs64 ts[3] = {};
    int gro_size = 0;
    KernelTs64 late = {0, 0};
    uint32_t drops = counters.kernel_drops.load(std::memory_order_relaxed);
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (IsStampCmsg(c)) {
        flags |= ReadStamps(c, ts);
      } else if (c->cmsg_level == SOL_SOCKET && (c->cmsg_type == SO_TIMESTAMPNS_NEW || c->cmsg_type == SO_TIMESTAMPNS_OLD)) {
        size_t len = c->cmsg_len - CMSG_LEN(0);
        if (len >= sizeof(KernelTs64)) memcpy(&late, CMSG_DATA(c), sizeof(late));
        else if (len >= sizeof(KernelTs32)) {
          KernelTs32 t;
          memcpy(&t, CMSG_DATA(c), sizeof(t));
          late = {t.sec, t.nsec};
        }
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        memcpy(&drops, CMSG_DATA(c), sizeof(drops));
      } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        memcpy(&gro_size, CMSG_DATA(c), sizeof(gro_size));
      }
    }
    // Right after SO_TIMESTAMPING is enabled the kernel turns on receive
    // stamping asynchronously (a deferred static key), and datagrams that
    // arrive in that window carry no stamp. SO_TIMESTAMPNS makes the kernel
    // stamp those when they are read instead; they are flagged as such.
    if (!(flags & kFlagSwStamp) && (late.sec != 0 || late.nsec != 0)) {
      ts[0] = late;
      flags |= kFlagSwStamp | kFlagStampAtRead;
    }
    counters.kernel_drops.store(drops, std::memory_order_relaxed);
    uint32_t avail = std::min(size, slot_size);
    uint8_t addr[16] = {0};
    uint32_t port = 0, scope = 0;
    const auto* ss = reinterpret_cast<const sockaddr_storage*>(h.msg_name);
    if (ss->ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ss);
      memcpy(addr, &sin->sin_addr, 4);
      port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ss);
      memcpy(addr, &sin6->sin6_addr, 16);
      port = ntohs(sin6->sin6_port);
      scope = sin6->sin6_scope_id;
      flags |= kFlagIpv6;
    }
    if (flags & kFlagTruncated) counters.rx_truncated++;
    uint32_t base = slot * slot_size;
    uint32_t seg = (gro_size > 0 && static_cast<uint32_t>(gro_size) < avail) ? static_cast<uint32_t>(gro_size) : avail;
    uint32_t nrec = 0;
    if (seg < avail) counters.rx_gro_super++;
    for (uint32_t off = 0; off < avail || (avail == 0 && nrec == 0); off += (seg ? seg : 1)) {
      uint32_t len = std::min(seg, avail - off);
      uint32_t* r = meta + static_cast<size_t>((meta_seq + nrec) & (meta_cap - 1)) * kMetaWords;
      r[kMetaOffset] = base + off;
      r[kMetaLength] = len;
      r[kMetaFlags] = flags | (seg < avail ? static_cast<uint32_t>(kFlagGroSegment) : 0u);
      r[kMetaPort] = port;
      r[kMetaSwSec] = static_cast<uint32_t>(ts[0].sec);
      r[kMetaSwNsec] = static_cast<uint32_t>(ts[0].nsec);
      r[kMetaHwSec] = static_cast<uint32_t>(ts[2].sec);
      r[kMetaHwNsec] = static_cast<uint32_t>(ts[2].nsec);
      r[kMetaDrops] = drops;
      r[kMetaSize] = seg < avail ? len : size;
      memcpy(&r[kMetaAddr], addr, 16);
      r[kMetaScope] = scope;
      r[kMetaSlotSeq] = slot_seq;
      nrec++;
      counters.rx_datagrams++;
      counters.rx_bytes += seg < avail ? len : size;
      if (avail == 0) break;
    }
    return nrec;
  }
};

// ---------------------------------------------------------------------------

Napi::Function UdpSocket::Init(Napi::Env env) {
  return DefineClass(env, "UdpSocket",
                     {
                         InstanceMethod<&UdpSocket::Bind>("bind"),
                         InstanceMethod<&UdpSocket::Connect>("connect"),
                         InstanceMethod<&UdpSocket::Disconnect>("disconnect"),
                         InstanceMethod<&UdpSocket::LocalAddress>("localAddress"),
                         InstanceMethod<&UdpSocket::RemoteAddress>("remoteAddress"),
                         InstanceMethod<&UdpSocket::SetOption>("setOption"),
                         InstanceMethod<&UdpSocket::GetOption>("getOption"),
                         InstanceMethod<&UdpSocket::BindDevice>("bindDevice"),
                         InstanceMethod<&UdpSocket::Membership>("membership"),
                         InstanceMethod<&UdpSocket::StartReceive>("startReceive"),
                         InstanceMethod<&UdpSocket::ParseDest>("parseDest"),
                         InstanceMethod<&UdpSocket::Send>("send"),
                         InstanceMethod<&UdpSocket::WatchWritable>("watchWritable"),
                         InstanceMethod<&UdpSocket::Stats>("stats"),
                         InstanceMethod<&UdpSocket::Ref>("ref"),
                         InstanceMethod<&UdpSocket::Unref>("unref"),
                         InstanceMethod<&UdpSocket::SetBusyPoll>("setBusyPoll"),
                         InstanceMethod<&UdpSocket::Fd>("fd"),
                         InstanceMethod<&UdpSocket::Close>("close"),
                     });
}

// new UdpSocket(family: 4 | 6, onBatch(start, count), onEvent(kind, a, b, c))
UdpSocket::UdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpSocket>(info) {
  Napi::Env env = info.Env();
  family_ = info[0].As<Napi::Number>().Int32Value();
  on_batch_ = Napi::Persistent(info[1].As<Napi::Function>());
  on_event_ = Napi::Persistent(info[2].As<Napi::Function>());
  reactor_ = env.GetInstanceData<OnbusAddon>()->reactor(env);
  rx_ = std::make_shared<UdpRx>();
  rx_->reactor = reactor_;
  int fd = socket(family_ == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    Napi::Error e = Napi::Error::New(env, strerror(err));
    e.Set("errno", Napi::Number::New(env, -err));
    e.Set("syscall", Napi::String::New(env, "socket"));
    e.ThrowAsJavaScriptException();
    closed_ = true;
    return;
  }
  rx_->fd.Reset(fd);
  if (!reactor_) {
    Napi::Error::New(env, "onbus: could not start the I/O reactor").ThrowAsJavaScriptException();
    return;
  }
  int64_t id = reactor_->Add(fd, 0, rx_);
  if (id < 0) {
    Napi::Error::New(env, strerror(static_cast<int>(-id))).ThrowAsJavaScriptException();
    return;
  }
  id_ = static_cast<uint32_t>(id);
  rx_->id = id_;
  reactor_->SetTarget(id_, this);
  tx_msgs_.resize(kTxBatch);
  tx_ctrl_.resize(kTxBatch * CMSG_SPACE(sizeof(uint16_t)));
}

UdpSocket::~UdpSocket() { DoClose(); }

void UdpSocket::DoClose() {
  if (closed_ && id_ == 0) return;
  closed_ = true;
  if (reactor_) {
    if (id_ != 0) reactor_->Remove(id_, rx_ ? rx_->fd.get() : -1);
  }
  loop_ref_.Unref(reactor_.get());
  id_ = 0;
  if (rx_) {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->closed = true;
    rx_->fd.Reset();
  }
  ring_ref_.Reset();
  meta_ref_.Reset();
}

#define ONBUS_FD_OR_EBADF(env)                                        \
  int fd = (closed_ || !rx_->fd.valid()) ? -1 : rx_->fd.get();        \
  if (fd < 0) return Napi::Number::New(env, -EBADF)

Napi::Value UdpSocket::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss;
  socklen_t len;
  std::string ip = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  int r = ParseAddress(ip, port, family_, &ss, &len);
  if (r == 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) r = -errno;
  return Napi::Number::New(env, r);
}

Napi::Value UdpSocket::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss;
  socklen_t len;
  std::string ip = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  int r = ParseAddress(ip, port, family_, &ss, &len);
  if (r == 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) r = -errno;
  return Napi::Number::New(env, r);
}

Napi::Value UdpSocket::Disconnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr sa{};
  sa.sa_family = AF_UNSPEC;
  int r = ::connect(fd, &sa, sizeof(sa)) == 0 ? 0 : -errno;
  return Napi::Number::New(env, r);
}

static Napi::Value AddressArray(Napi::Env env, const sockaddr_storage& ss) {
  int port = 0;
  std::string ip = FormatAddress(reinterpret_cast<const sockaddr*>(&ss), &port);
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::String::New(env, ip));
  a.Set(1u, Napi::Number::New(env, port));
  a.Set(2u, Napi::Number::New(env, ss.ss_family == AF_INET6 ? 6 : 4));
  return a;
}

Napi::Value UdpSocket::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Napi::Number::New(env, -errno);
  return AddressArray(env, ss);
}

Napi::Value UdpSocket::RemoteAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Napi::Number::New(env, -errno);
  return AddressArray(env, ss);
}

// Buffer sizes: the forced variant where the process may (CAP_NET_ADMIN), so a
// sensor link is not capped by net.core.rmem_max; the plain one otherwise.
static int SetBufSize(int fd, int forced, int plain, int bytes) {
  if (SetInt(fd, SOL_SOCKET, forced, bytes) == 0) return 0;
  return SetInt(fd, SOL_SOCKET, plain, bytes);
}

Napi::Value UdpSocket::SetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int v = info[1].As<Napi::Number>().Int32Value();
  bool v6 = family_ == 6;
  int r = -ENOPROTOOPT;
  if (name == "reuseAddr") r = SetInt(fd, SOL_SOCKET, SO_REUSEADDR, v);
  else if (name == "reusePort") r = SetInt(fd, SOL_SOCKET, SO_REUSEPORT, v);
  else if (name == "ipv6Only") r = v6 ? SetInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v) : -EINVAL;
  else if (name == "broadcast") r = SetInt(fd, SOL_SOCKET, SO_BROADCAST, v);
  else if (name == "rcvBuf") r = SetBufSize(fd, SO_RCVBUFFORCE, SO_RCVBUF, v);
  else if (name == "sndBuf") r = SetBufSize(fd, SO_SNDBUFFORCE, SO_SNDBUF, v);
  else if (name == "ttl") r = v6 ? SetInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, v) : SetInt(fd, IPPROTO_IP, IP_TTL, v);
  else if (name == "multicastTtl")
    r = v6 ? SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, v) : SetInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, v);
  else if (name == "multicastLoop")
    r = v6 ? SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, v) : SetInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, v);
  else if (name == "dscp")
    r = v6 ? SetInt(fd, IPPROTO_IPV6, IPV6_TCLASS, v << 2) : SetInt(fd, IPPROTO_IP, IP_TOS, v << 2);
  else if (name == "rxqOvfl") r = SetInt(fd, SOL_SOCKET, SO_RXQ_OVFL, v);
  else if (name == "gro") {
    r = SetInt(fd, SOL_UDP, UDP_GRO, v);
    if (r == 0) {
      std::lock_guard<std::mutex> lk(rx_->io_mu);
      rx_->gro = v != 0;
    }
  } else if (name == "timestamping") {
    // bit 0: receive stamps; bit 1: software transmit stamps keyed by OPT_ID.
    int flags = 0;
    if (v & 1)
      flags |= SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RX_HARDWARE |
               SOF_TIMESTAMPING_RAW_HARDWARE;
    if (v & 2)
      flags |= SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
               SOF_TIMESTAMPING_OPT_TSONLY;
    r = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPING_NEW, flags);
    if (r == -ENOPROTOOPT || r == -EINVAL) r = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPING_OLD, flags);
    if (r == 0 && (v & 1)) {
      int r2 = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPNS_NEW, 1);
      if (r2 == -ENOPROTOOPT || r2 == -EINVAL) r2 = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPNS_OLD, 1);
      r = r2;
    }
    if (r == 0) {
      std::lock_guard<std::mutex> lk(rx_->io_mu);
      rx_->tx_stamps = (v & 2) != 0;
    }
  }
  return Napi::Number::New(env, r);
}

Napi::Value UdpSocket::GetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool v6 = family_ == 6;
  int v = 0, r = -ENOPROTOOPT;
  if (name == "rcvBuf") r = GetInt(fd, SOL_SOCKET, SO_RCVBUF, &v);
  else if (name == "sndBuf") r = GetInt(fd, SOL_SOCKET, SO_SNDBUF, &v);
  else if (name == "ttl") r = v6 ? GetInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v) : GetInt(fd, IPPROTO_IP, IP_TTL, &v);
  else if (name == "multicastTtl")
    r = v6 ? GetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &v) : GetInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &v);
  else if (name == "multicastLoop")
    r = v6 ? GetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &v) : GetInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &v);
  else if (name == "dscp") {
    r = v6 ? GetInt(fd, IPPROTO_IPV6, IPV6_TCLASS, &v) : GetInt(fd, IPPROTO_IP, IP_TOS, &v);
    v >>= 2;
  } else if (name == "broadcast") r = GetInt(fd, SOL_SOCKET, SO_BROADCAST, &v);
  else if (name == "reusePort") r = GetInt(fd, SOL_SOCKET, SO_REUSEPORT, &v);
  else if (name == "reuseAddr") r = GetInt(fd, SOL_SOCKET, SO_REUSEADDR, &v);
  else if (name == "gro") r = GetInt(fd, SOL_UDP, UDP_GRO, &v);
  return Napi::Number::New(env, r < 0 ? r : v);
}

Napi::Value UdpSocket::BindDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::string dev = info[0].As<Napi::String>().Utf8Value();
  int r = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev.c_str(), static_cast<socklen_t>(dev.size())) == 0 ? 0 : -errno;
  return Napi::Number::New(env, r);
}

// membership(op: 'join' | 'leave' | 'interface', group, interfaceName, source)
Napi::Value UdpSocket::Membership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::string op = info[0].As<Napi::String>().Utf8Value();
  std::string group = info[1].As<Napi::String>().Utf8Value();
  std::string iface = info[2].As<Napi::String>().Utf8Value();
  std::string source = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  unsigned ifindex = 0;
  if (!iface.empty() && (ifindex = if_nametoindex(iface.c_str())) == 0) return Napi::Number::New(env, -ENODEV);
  if (op == "interface") {
    int r;
    if (family_ == 6) {
      r = SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, static_cast<int>(ifindex));
    } else {
      ip_mreqn m{};
      m.imr_ifindex = static_cast<int>(ifindex);
      r = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)) == 0 ? 0 : -errno;
    }
    return Napi::Number::New(env, r);
  }
  int r = GroupMembership(fd, family_, op == "join", group, ifindex, source);
  return Napi::Number::New(env, r);
}

// startReceive(ring: ArrayBuffer, meta: ArrayBuffer, slotSize, slots, metaCap)
// slots and metaCap are powers of two (checked in TypeScript and here).
Napi::Value UdpSocket::StartReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  auto ring = info[0].As<Napi::ArrayBuffer>();
  auto meta = info[1].As<Napi::ArrayBuffer>();
  uint32_t slot_size = info[2].As<Napi::Number>().Uint32Value();
  uint32_t slots = info[3].As<Napi::Number>().Uint32Value();
  uint32_t meta_cap = info[4].As<Napi::Number>().Uint32Value();
  auto pow2 = [](uint32_t x) { return x != 0 && (x & (x - 1)) == 0; };
  if (!pow2(slots) || !pow2(meta_cap) || slot_size == 0 ||
      ring.ByteLength() < static_cast<size_t>(slots) * slot_size ||
      meta.ByteLength() < static_cast<size_t>(meta_cap) * kMetaWords * 4)
    return Napi::Number::New(env, -EINVAL);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  if (rx_->receiving) return Napi::Number::New(env, -EALREADY);
  ring_ref_ = Napi::Persistent(ring);
  meta_ref_ = Napi::Persistent(meta);
  rx_->ring = static_cast<uint8_t*>(ring.Data());
  rx_->meta = static_cast<uint32_t*>(meta.Data());
  rx_->slot_size = slot_size;
  rx_->slots = slots;
  rx_->meta_cap = meta_cap;
  rx_->receiving = true;
  rx_->ApplyEventsLocked();
  return Napi::Number::New(env, 0);
}

Napi::Value UdpSocket::ParseDest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_storage ss;
  socklen_t len;
  std::string ip = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  int r = ParseAddress(ip, port, family_, &ss, &len);
  if (r != 0) return Napi::Number::New(env, r);
  auto buf = Napi::Uint8Array::New(env, len);
  memcpy(buf.Data(), &ss, len);
  return buf;
}

// send(datagrams: Uint8Array | Uint8Array[], start, count, dest: Uint8Array |
//      null, gsoSize, out: Int32Array)
// out[0] datagrams sent from `start`; out[1] the errno that stopped it (0 when
// all went; EAGAIN = kernel buffer full); out[2] how many datagrams the failed
// message carried; out[3] messages (transmit-stamp ids) consumed.
Napi::Value UdpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = info[5].As<Napi::Int32Array>();
  int32_t* o = out.Data();
  o[0] = o[1] = o[2] = o[3] = 0;
  int fd = (closed_ || !rx_->fd.valid()) ? -1 : rx_->fd.get();
  if (fd < 0) {
    o[1] = EBADF;
    o[2] = 1;
    return env.Undefined();
  }
  Napi::Value list = info[0];
  bool single = list.IsTypedArray();
  Napi::Array arr = single ? Napi::Array() : list.As<Napi::Array>();
  uint32_t start = info[1].As<Napi::Number>().Uint32Value();
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  sockaddr* dest = nullptr;
  socklen_t dest_len = 0;
  if (info[3].IsTypedArray()) {
    auto d = info[3].As<Napi::Uint8Array>();
    dest = reinterpret_cast<sockaddr*>(d.Data());
    dest_len = static_cast<socklen_t>(d.ByteLength());
  }
  uint32_t gso = info[4].As<Napi::Number>().Uint32Value();
  const uint32_t max_super = family_ == 6 ? 65527 : 65507;

  // Reading the array fails only when JavaScript can no longer run (a worker
  // being terminated); then the send stops quietly instead of aborting.
  bool js_gone = false;
  auto get = [&](uint32_t k, iovec* iov) {
    Napi::Value v = list;
    if (!single) {
      Napi::MaybeOrValue<Napi::Value> mv = arr.Get(k);
      if (mv.IsNothing()) {
        js_gone = true;
        iov->iov_base = nullptr;
        iov->iov_len = 0;
        return;
      }
      v = mv.Unwrap();
    }
    auto ta = v.As<Napi::Uint8Array>();
    iov->iov_base = ta.Data();
    iov->iov_len = ta.ByteLength();
  };

  uint32_t done = 0;  // datagrams sent (relative to start)
  uint32_t groups[kTxBatch];
  while (done < count) {
    unsigned nm = 0;
    tx_iov_.clear();
    uint32_t j = done;
    // Build up to kTxBatch messages; with GSO, consecutive datagrams of the
    // segment size (the last of a run may be shorter) share one message.
    while (j < count && nm < kTxBatch) {
      size_t iov_first = tx_iov_.size();
      iovec iov;
      get(start + j, &iov);
      tx_iov_.push_back(iov);
      uint32_t k = 1;
      size_t total = iov.iov_len;
      if (gso > 0 && iov.iov_len == gso) {
        while (j + k < count && k < kGroMaxSegs) {
          iovec nx;
          get(start + j + k, &nx);
          if (nx.iov_len > gso || nx.iov_len == 0 || total + nx.iov_len > max_super) break;
          tx_iov_.push_back(nx);
          total += nx.iov_len;
          k++;
          if (nx.iov_len < gso) break;  // a short segment ends the run
        }
      }
      groups[nm] = k;
      msghdr& h = tx_msgs_[nm].msg_hdr;
      h = msghdr{};
      h.msg_name = dest;
      h.msg_namelen = dest_len;
      h.msg_iovlen = k;
      h.msg_iov = reinterpret_cast<iovec*>(iov_first);  // fixed up below
      if (k > 1) {
        char* c = tx_ctrl_.data() + nm * CMSG_SPACE(sizeof(uint16_t));
        h.msg_control = c;
        h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        cmsghdr* cm = CMSG_FIRSTHDR(&h);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = static_cast<uint16_t>(gso);
        memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
      }
      nm++;
      j += k;
    }
    if (js_gone) {
      o[0] = static_cast<int32_t>(done);
      o[1] = ECANCELED;
      return env.Undefined();
    }
    for (unsigned m = 0; m < nm; m++) {
      msghdr& h = tx_msgs_[m].msg_hdr;
      h.msg_iov = tx_iov_.data() + reinterpret_cast<size_t>(h.msg_iov);
    }
    int r = sendmmsg(fd, tx_msgs_.data(), nm, MSG_DONTWAIT);
    rx_->counters.tx_calls++;
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        rx_->counters.tx_eagain++;
        err = EAGAIN;
      } else {
        rx_->counters.tx_errors += groups[0];
      }
      o[0] = static_cast<int32_t>(done);
      o[1] = err;
      o[2] = static_cast<int32_t>(groups[0]);
      return env.Undefined();
    }
    for (int m = 0; m < r; m++) {
      done += groups[m];
      rx_->counters.tx_datagrams += groups[m];
      rx_->counters.tx_bytes += tx_msgs_[m].msg_len;
    }
    o[3] += r;
    // r < nm: the kernel stopped early; the next call either sends the rest
    // or reports the error of the first unsent message.
  }
  o[0] = static_cast<int32_t>(done);
  return env.Undefined();
}

Napi::Value UdpSocket::WatchWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  rx_->want_write = true;
  rx_->ApplyEventsLocked();
  return Napi::Number::New(env, 0);
}

// stats(out: Float64Array(16))
Napi::Value UdpSocket::Stats(const Napi::CallbackInfo& info) {
  auto out = info[0].As<Napi::Float64Array>();
  double* o = out.Data();
  const UdpCounters& c = rx_->counters;
  o[0] = static_cast<double>(c.rx_datagrams.load());
  o[1] = static_cast<double>(c.rx_bytes.load());
  o[2] = static_cast<double>(c.rx_truncated.load());
  o[3] = static_cast<double>(c.rx_errors.load());
  // SO_RXQ_OVFL reports the drop counter only with the next datagram read;
  // SO_MEMINFO reads the same counter (sk_drops) now, so stats are exact even
  // when the last datagrams of a burst were the ones dropped.
  uint32_t drops = c.kernel_drops.load();
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t mlen = sizeof(mem);
  if (!closed_ && rx_->fd.valid() && getsockopt(rx_->fd.get(), SOL_SOCKET, SO_MEMINFO, mem, &mlen) == 0 &&
      mlen > SK_MEMINFO_DROPS * sizeof(uint32_t))
    drops = std::max(drops, mem[SK_MEMINFO_DROPS]);
  o[4] = static_cast<double>(drops);
  o[5] = static_cast<double>(c.rx_batches.load());
  o[6] = static_cast<double>(c.rx_pauses.load());
  o[7] = static_cast<double>(c.tx_datagrams);
  o[8] = static_cast<double>(c.tx_bytes);
  o[9] = static_cast<double>(c.tx_errors);
  o[10] = static_cast<double>(c.tx_calls);
  o[11] = static_cast<double>(c.tx_eagain);
  o[12] = static_cast<double>(c.rx_gro_super.load());
  o[13] = static_cast<double>(rx_->slot_head.load() - rx_->slot_tail.load());  // slots in use now
  return info.Env().Undefined();
}

Napi::Value UdpSocket::Ref(const Napi::CallbackInfo& info) {
  if (!closed_) loop_ref_.Ref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value UdpSocket::Unref(const Napi::CallbackInfo& info) {
  loop_ref_.Unref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value UdpSocket::SetBusyPoll(const Napi::CallbackInfo& info) {
  if (!closed_ && reactor_ && id_ != 0) reactor_->RequestSpin(id_, info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value UdpSocket::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), closed_ ? -1 : rx_->fd.get());
}

Napi::Value UdpSocket::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

void UdpSocket::OnWake(Napi::Env env, uint32_t kind) {
  if (closed_) return;
  Napi::HandleScope scope(env);
  if (kind == kWakeRx)
    DeliverBatch(env);
  else
    DeliverQueuedEvents(env, kind);
}

void UdpSocket::DeliverBatch(Napi::Env env) {
  UdpRx& rx = *rx_;
  rx.rx_scheduled.store(false);
  uint32_t head = rx.meta_head.load(std::memory_order_acquire);
  uint32_t tail = rx.meta_tail.load(std::memory_order_relaxed);
  if (head == tail || in_batch_) return;
  // Keep the shared state alive even if the handler closes the socket.
  std::shared_ptr<UdpRx> hold = rx_;
  uint32_t last = (head - 1) & (rx.meta_cap - 1);
  uint32_t slot_next = rx.meta[static_cast<size_t>(last) * kMetaWords + kMetaSlotSeq] + 1;
  in_batch_ = true;
  CallReporting(env, on_batch_, {Napi::Number::New(env, tail & (rx.meta_cap - 1)), Napi::Number::New(env, head - tail)});
  in_batch_ = false;
  // Return the space whether or not the handler threw (its exception is
  // reported by Node as uncaught once we return).
  rx.meta_tail.store(head);
  rx.slot_tail.store(slot_next);
  if (rx.paused.load()) {
    std::lock_guard<std::mutex> lk(rx.io_mu);
    if (rx.paused.load() && !rx.closed) {
      rx.paused.store(false);
      rx.ApplyEventsLocked();
    }
  }
}

void UdpSocket::DeliverQueuedEvents(Napi::Env env, uint32_t kind) {
  std::vector<TxStamp> stamps;
  std::vector<int> errors;
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    if (kind == kWakeTxStamp) {
      rx_->stamp_scheduled.store(false);
      stamps.swap(rx_->stamps);
    } else if (kind == kWakeError) {
      rx_->err_scheduled.store(false);
      errors.swap(rx_->errors);
    } else if (kind == kWakeWritable) {
      rx_->write_scheduled.store(false);
    }
  }
  if (kind == kWakeWritable) {
    CallReporting(env, on_event_, {Napi::Number::New(env, kWakeWritable)});
    return;
  }
  for (const TxStamp& s : stamps) {
    if (closed_) return;
    CallReporting(env, on_event_, {Napi::Number::New(env, kWakeTxStamp), Napi::Number::New(env, s.id),
                    Napi::Number::New(env, static_cast<double>(s.sec)), Napi::Number::New(env, static_cast<double>(s.nsec))});
  }
  for (int e : errors) {
    if (closed_) return;
    CallReporting(env, on_event_, {Napi::Number::New(env, kWakeError), Napi::Number::New(env, -e)});
  }
}

}  // namespace onbus
