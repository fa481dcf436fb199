#include "router.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <string>
#include <vector>

#include "../addon.h"
#include "../util/call_js.h"
#include "../util/clock.h"
#include "../util/sockaddr.h"
#include "../util/rx_stamps.h"
#include "parse.h"

namespace onbus {

namespace {

using mav::FrameInfo;

constexpr unsigned kRxBatch = 64;            // datagrams per recvmmsg call
constexpr unsigned kRxBudget = 8;            // reads per endpoint per wake: one busy
                                             // endpoint cannot starve the others
constexpr uint32_t kSlotSize = 2048;         // one datagram; longer ones are cut and counted
constexpr size_t kCtrlSize = 128;            // timestamping cmsgs
constexpr size_t kStreamRx = 16384;          // stream receive buffer (> one frame, 280 bytes)
constexpr size_t kStreamTxCap = 256 * 1024;  // queued bytes per stream endpoint before dropping
constexpr size_t kJsQueueBytes = 8u << 20;   // frames waiting for JavaScript
constexpr size_t kEventQueue = 4096;         // events waiting for JavaScript
constexpr size_t kMaxPeers = 16;             // UDP server: peers replied to
constexpr uint32_t kMaxEndpoints = 4096;
constexpr uint32_t kTimerKey = 0xFFFFFFFFu;
constexpr int kSockBuf = 1 << 21;

enum Kind : uint8_t { kUdpServer = 0, kUdpClient = 1, kTcpServer = 2, kTcpClient = 3, kUart = 4, kTcpConn = 5, kLocal = 6 };

// Why a frame did not go where it would have gone. Counted per endpoint.
enum Drop : uint8_t {
  kDropFilterIn,   // refused by the endpoint's input filter (counted on the source)
  kDropFilterOut,  // refused by the endpoint's output filter (counted on the destination)
  kDropNoRoute,    // targeted at a system no other endpoint has seen (on the source)
  kDropSendError,  // the send failed (ECONNREFUSED, ENETUNREACH, ...)
  kDropEagain,     // the socket's send buffer was full
  kDropOverflow,   // the stream's queue (or JavaScript's) was full
  kDropDown,       // the endpoint is not connected / has no peer yet
  kDropTruncated,  // a datagram longer than the receive slot (cut; on the source)
  kDropCount
};
const char* const kDropNames[kDropCount] = {"filterIn", "filterOut", "noRoute", "sendError",
                                            "eagain",   "overflow",  "down",    "truncatedDatagram"};

enum EventType : uint32_t { kEvLearned = 1, kEvConnect = 2, kEvDisconnect = 3, kEvError = 4, kEvRemoved = 5 };

struct IdSet {
  bool active = false;
  std::vector<uint32_t> ids;  // sorted
  bool Has(uint32_t id) const { return std::binary_search(ids.begin(), ids.end(), id); }
};

struct ByteSet {
  bool active = false;
  std::bitset<256> bits;
};

struct Filter {
  IdSet msg_allow, msg_deny;
  ByteSet sys_allow, sys_deny, comp_allow, comp_deny;
  bool any = false;
  bool Pass(const FrameInfo& f) const {
    if (!any) return true;
    if (msg_allow.active && !msg_allow.Has(f.msgid)) return false;
    if (msg_deny.active && msg_deny.Has(f.msgid)) return false;
    if (sys_allow.active && !sys_allow.bits[f.sysid]) return false;
    if (sys_deny.active && sys_deny.bits[f.sysid]) return false;
    if (comp_allow.active && !comp_allow.bits[f.compid]) return false;
    if (comp_deny.active && comp_deny.bits[f.compid]) return false;
    return true;
  }
};

struct EpStats {
  uint64_t frames_in = 0, bytes_in = 0, frames_out = 0, bytes_out = 0;
  uint64_t drops[kDropCount] = {};
  uint64_t connects = 0, disconnects = 0, errors = 0;
  int last_error = 0;
  void Add(const EpStats& o) {
    frames_in += o.frames_in;
    bytes_in += o.bytes_in;
    frames_out += o.frames_out;
    bytes_out += o.bytes_out;
    for (int i = 0; i < kDropCount; i++) drops[i] += o.drops[i];
    errors += o.errors;
  }
};

// A UDP server's peer. Each peer learns its own (sysid, compid) pairs, so a
// server with several peers routes between them like separate endpoints
// (never back to the peer a frame came from, targeted frames to the peer
// that has the target).
struct Peer {
  sockaddr_storage addr;
  socklen_t len;
  int64_t last_ns;
  std::bitset<256> sys_seen;
  std::unique_ptr<std::bitset<65536>> comp_seen = std::make_unique<std::bitset<65536>>();
};
static_assert(kMaxPeers <= 16, "peer masks are 16 bits");

struct Endpoint {
  Kind kind = kLocal;
  uint32_t index = 0;
  uint32_t gen = 0;
  std::string name;
  int parent = -1;  // kTcpConn: the server it was accepted on
  UniqueFd fd;
  bool up = false;
  bool connecting = false;
  bool want_out = false;
  Filter in, out;
  std::bitset<256> sys_seen;
  std::bitset<65536> comp_seen;  // (sysid << 8) | compid
  std::unique_ptr<mav::Parser> parser;
  mav::Counters parser_done;  // counters of parsers replaced on reconnect / closed conns
  // streams
  std::vector<uint8_t> rx;
  size_t rx_len = 0;
  std::vector<uint8_t> tx;
  size_t tx_off = 0;
  // UDP: frames routed here during the current batch (views into receive
  // buffers), and for a server the peers each goes to (bit per peer)
  std::vector<iovec> pending;
  std::vector<uint16_t> pending_peers;
  bool dirty = false;
  // addresses: bound (servers), remote (clients)
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::vector<Peer> peers;  // UDP server
  // reconnect (TCP client, UART)
  std::string path;
  int baud = 0;
  int backoff_ms = 0, min_ms = 100, max_ms = 5000;
  int64_t retry_at = 0;  // CLOCK_MONOTONIC ns, 0 = none
  uint32_t accepted = 0;
  bool adopted = false;
  bool rtscts = false;  // UART descriptor handed over by JavaScript (serialport): reopened there
  EpStats st;
};

struct Event {
  uint32_t type;
  uint32_t ep;
  int32_t a, b;
  const char* syscall;
  std::string name;
};

int64_t MonoNs() { return ClockNs(CLOCK_MONOTONIC); }
int64_t RealNs() { return ClockNs(CLOCK_REALTIME); }

void SetBuf(int fd) {
  int v = kSockBuf;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

speed_t BaudConst(int baud) {
  switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 500000: return B500000;
    case 576000: return B576000;
    case 921600: return B921600;
    case 1000000: return B1000000;
    case 1500000: return B1500000;
    case 2000000: return B2000000;
    case 3000000: return B3000000;
    case 4000000: return B4000000;
    default: return 0;
  }
}

}  // namespace

// Everything the reactor thread touches, guarded by io_mu (see router.h).
struct RouterCore : IoSource {
  std::shared_ptr<Reactor> reactor;
  uint32_t id = 0;
  UniqueFd epfd, timerfd;
  std::shared_ptr<const mav::Dialect> dialect;
  std::vector<std::unique_ptr<Endpoint>> eps;  // index -> endpoint; null = free slot
  uint32_t next_gen = 1;
  std::vector<uint32_t> dirty;

  // Local endpoint (index 0): JavaScript's subscription.
  bool local_on = false;
  IdSet local_ids;

  // Queues for JavaScript.
  std::vector<uint8_t> js_bytes;
  std::vector<uint32_t> js_meta;  // per frame: offset, length, source endpoint, ns hi, ns lo
  std::vector<Event> events;
  uint64_t events_dropped = 0;
  std::atomic<bool> wake_scheduled{false};

  // recvmmsg scratch.
  std::vector<uint8_t> slots = std::vector<uint8_t>(static_cast<size_t>(kRxBatch) * kSlotSize);
  mmsghdr msgs[kRxBatch];
  iovec iov[kRxBatch];
  sockaddr_storage names[kRxBatch];
  alignas(cmsghdr) char ctrl[kRxBatch][kCtrlSize];
  std::vector<mmsghdr> tx_msgs;

  // ---- bookkeeping ------------------------------------------------------

  void Abandon() override { CloseAll(); }

  void CloseAll() {
    eps.clear();
    dirty.clear();
    timerfd.Reset();
    epfd.Reset();
  }

  static uint64_t Key(const Endpoint& ep) { return (static_cast<uint64_t>(ep.gen) << 32) | ep.index; }

  int Register(Endpoint& ep, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = Key(ep);
    return epoll_ctl(epfd.get(), EPOLL_CTL_ADD, ep.fd.get(), &ev) == 0 ? 0 : -errno;
  }

  void SetEvents(Endpoint& ep, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = Key(ep);
    epoll_ctl(epfd.get(), EPOLL_CTL_MOD, ep.fd.get(), &ev);
  }

  void Unregister(Endpoint& ep) {
    if (ep.fd.valid()) epoll_ctl(epfd.get(), EPOLL_CTL_DEL, ep.fd.get(), nullptr);
  }

  Endpoint* NewEndpoint(Kind kind) {
    uint32_t i = 1;
    while (i < eps.size() && eps[i]) i++;
    if (i >= kMaxEndpoints) return nullptr;
    if (i >= eps.size()) eps.resize(i + 1);
    eps[i] = std::make_unique<Endpoint>();
    Endpoint* ep = eps[i].get();
    ep->kind = kind;
    ep->index = i;
    ep->gen = next_gen++;
    if (next_gen == 0) next_gen = 1;
    ep->parser = std::make_unique<mav::Parser>(dialect);
    return ep;
  }

  void PushEvent(uint32_t type, const Endpoint& ep, int32_t a, int32_t b, const char* syscall = nullptr) {
    if (events.size() >= kEventQueue) {
      events_dropped++;
      return;
    }
    events.push_back({type, ep.index, a, b, syscall, type == kEvConnect ? ep.name : std::string()});
    ScheduleWake();
  }

  void ScheduleWake() {
    if (!wake_scheduled.exchange(true)) reactor->Wake(id, kWakeRx);
  }

  // ---- routing -----------------------------------------------------------

  void Learn(Endpoint& src, int src_peer, uint8_t sysid, uint8_t compid) {
    uint32_t key = (static_cast<uint32_t>(sysid) << 8) | compid;
    if (src_peer >= 0) {
      Peer& p = src.peers[static_cast<size_t>(src_peer)];
      p.sys_seen[sysid] = true;
      (*p.comp_seen)[key] = true;
    }
    if (src.comp_seen[key]) return;
    src.comp_seen[key] = true;
    src.sys_seen[sysid] = true;
    PushEvent(kEvLearned, src, sysid, compid);
  }

  // Which peers of UDP server `ep` get the frame (never `skip`, the peer it came from).
  uint16_t PeerMask(const Endpoint& ep, int skip, bool bcast, int ts, uint32_t tkey, bool comp_known, uint32_t src_key, bool* any) {
    uint16_t mask = 0;
    for (size_t i = 0; i < ep.peers.size(); i++) {
      if (static_cast<int>(i) == skip) continue;
      const Peer& p = ep.peers[i];
      if (!bcast && (!p.sys_seen[ts] || (comp_known && !(*p.comp_seen)[tkey]))) continue;
      *any = true;
      if ((*p.comp_seen)[src_key]) continue;  // its own traffic
      mask |= static_cast<uint16_t>(1u << i);
    }
    return mask;
  }

  void Route(Endpoint& src, const uint8_t* frame, const FrameInfo& f, int64_t rx_ns, int src_peer = -1) {
    src.st.frames_in++;
    src.st.bytes_in += f.length;
    if (!src.in.Pass(f)) {
      src.st.drops[kDropFilterIn]++;
      return;
    }
    Learn(src, src_peer, f.sysid, f.compid);
    const int ts = f.known ? f.target_system : -1;
    const int tc = f.known ? f.target_component : -1;
    const bool bcast = ts <= 0;
    const uint32_t src_key = (static_cast<uint32_t>(f.sysid) << 8) | f.compid;
    // A component that no other endpoint has seen goes to wherever its system is.
    bool comp_known = false;
    const uint32_t tkey = bcast ? 0 : ((static_cast<uint32_t>(ts) << 8) | static_cast<uint32_t>(tc > 0 ? tc : 0));
    if (!bcast && tc > 0) {
      for (auto& e : eps)
        if (e && e.get() != &src && e->comp_seen[tkey]) {
          comp_known = true;
          break;
        }
      for (size_t i = 0; !comp_known && src_peer >= 0 && i < src.peers.size(); i++)
        comp_known = static_cast<int>(i) != src_peer && (*src.peers[i].comp_seen)[tkey];
    }
    bool routed = false;
    for (auto& e : eps) {
      if (!e || e->kind == kTcpServer) continue;
      Endpoint& ep = *e;
      if (ep.kind == kUdpServer) {
        // routed per peer; the source server's other peers are destinations too
        if (&ep == &src && src_peer < 0) continue;
        if (ep.peers.empty()) {
          if (bcast) ep.st.drops[kDropDown]++;  // nobody heard yet
          continue;
        }
        uint16_t mask = PeerMask(ep, &ep == &src ? src_peer : -1, bcast, ts, tkey, comp_known, src_key, &routed);
        if (mask == 0) continue;
        if (!ep.out.Pass(f)) {
          ep.st.drops[kDropFilterOut]++;
          continue;
        }
        Enqueue(ep, frame, f.length, mask);
        continue;
      }
      if (&ep == &src) continue;
      if (ep.kind == kLocal && !local_on) continue;
      if (!bcast) {
        if (!ep.sys_seen[ts]) continue;
        if (comp_known && !ep.comp_seen[tkey]) continue;
      }
      routed = true;
      if (ep.comp_seen[src_key]) continue;  // its own traffic: never echoed back
      if (!ep.out.Pass(f)) {
        ep.st.drops[kDropFilterOut]++;
        continue;
      }
      if (ep.kind == kLocal) {
        if (!local_ids.active || local_ids.Has(f.msgid)) QueueJs(ep, src, frame, f.length, rx_ns);
        continue;
      }
      Enqueue(ep, frame, f.length);
    }
    if (!routed && !bcast) src.st.drops[kDropNoRoute]++;
  }

  void QueueJs(Endpoint& local, const Endpoint& src, const uint8_t* frame, uint32_t len, int64_t rx_ns) {
    if (js_bytes.size() + len > kJsQueueBytes) {
      local.st.drops[kDropOverflow]++;
      return;
    }
    uint32_t off = static_cast<uint32_t>(js_bytes.size());
    js_bytes.insert(js_bytes.end(), frame, frame + len);
    uint64_t ns = static_cast<uint64_t>(rx_ns);
    js_meta.insert(js_meta.end(), {off, len, src.index, static_cast<uint32_t>(ns >> 32), static_cast<uint32_t>(ns)});
    local.st.frames_out++;
    local.st.bytes_out += len;
    ScheduleWake();
  }

  void Enqueue(Endpoint& ep, const uint8_t* frame, uint32_t len, uint16_t peers = 0) {
    if (!ep.up) {
      ep.st.drops[kDropDown]++;
      return;
    }
    if (ep.kind == kUdpServer || ep.kind == kUdpClient) {
      ep.pending.push_back({const_cast<uint8_t*>(frame), len});
      if (ep.kind == kUdpServer) ep.pending_peers.push_back(peers);
    } else {
      if (ep.tx.size() - ep.tx_off + len > kStreamTxCap) {
        ep.st.drops[kDropOverflow]++;
        return;
      }
      ep.tx.insert(ep.tx.end(), frame, frame + len);
      ep.st.frames_out++;
    }
    if (!ep.dirty) {
      ep.dirty = true;
      dirty.push_back(ep.index);
    }
  }

  // Sends everything routed during this batch: one sendmmsg run per UDP
  // destination, one write per stream destination.
  void Flush() {
    for (size_t k = 0; k < dirty.size(); k++) {
      uint32_t i = dirty[k];
      if (i >= eps.size() || !eps[i]) continue;
      Endpoint& ep = *eps[i];
      ep.dirty = false;
      if (ep.kind == kUdpServer || ep.kind == kUdpClient)
        SendUdp(ep);
      else
        WriteStream(ep);
    }
    dirty.clear();
  }

  void SendUdp(Endpoint& ep) {
    const size_t nframes = ep.pending.size();
    const size_t npeers = ep.kind == kUdpServer ? ep.peers.size() : 1;
    if (tx_msgs.size() < nframes * npeers) tx_msgs.resize(nframes * npeers);
    size_t m = 0;
    for (size_t j = 0; j < nframes; j++) {
      for (size_t p = 0; p < npeers; p++) {
        if (ep.kind == kUdpServer && !(ep.pending_peers[j] & (1u << p))) continue;
        msghdr& h = tx_msgs[m++].msg_hdr;
        h = msghdr{};
        h.msg_iov = &ep.pending[j];
        h.msg_iovlen = 1;
        if (ep.kind == kUdpServer) {
          h.msg_name = &ep.peers[p].addr;
          h.msg_namelen = ep.peers[p].len;
        }
      }
    }
    const size_t n = m;
    size_t i = 0;
    while (i < n) {
      unsigned vlen = static_cast<unsigned>(std::min<size_t>(n - i, 1024));
      int r = sendmmsg(ep.fd.get(), &tx_msgs[i], vlen, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
          ep.st.drops[kDropEagain] += n - i;
          break;
        }
        ep.st.drops[kDropSendError]++;
        ep.st.errors++;
        ep.st.last_error = err;
        i++;  // sendmmsg fails on the first message only: skip it, send the rest
        continue;
      }
      for (int k = 0; k < r; k++) {
        ep.st.frames_out++;
        ep.st.bytes_out += tx_msgs[i + k].msg_len;
      }
      i += static_cast<size_t>(r);
    }
    ep.pending.clear();
    ep.pending_peers.clear();
  }

  void WriteStream(Endpoint& ep) {
    while (ep.tx_off < ep.tx.size()) {
      ssize_t w = write(ep.fd.get(), ep.tx.data() + ep.tx_off, ep.tx.size() - ep.tx_off);
      if (w > 0) {
        ep.tx_off += static_cast<size_t>(w);
        ep.st.bytes_out += static_cast<uint64_t>(w);
        continue;
      }
      int err = w < 0 ? errno : EIO;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if (!ep.want_out) {
          ep.want_out = true;
          SetEvents(ep, EPOLLIN | EPOLLOUT);
        }
        return;
      }
      Down(ep, err, "write");
      return;
    }
    ep.tx.clear();
    ep.tx_off = 0;
    if (ep.want_out) {
      ep.want_out = false;
      SetEvents(ep, EPOLLIN);
    }
  }

  // ---- endpoints going down / coming back -------------------------------

  void ForgetRoutes(Endpoint& ep) {
    ep.sys_seen.reset();
    ep.comp_seen.reset();
  }

  // The endpoint-level sets of a UDP server are the union of its peers'.
  void RebuildServerRoutes(Endpoint& ep) {
    ForgetRoutes(ep);
    for (const Peer& p : ep.peers) {
      ep.sys_seen |= p.sys_seen;
      ep.comp_seen |= *p.comp_seen;
    }
  }

  void ResetParser(Endpoint& ep) {
    const mav::Counters& c = ep.parser->counters();
    ep.parser_done.bytes_in += c.bytes_in;
    ep.parser_done.bytes_accepted += c.bytes_accepted;
    ep.parser_done.bytes_discarded += c.bytes_discarded + ep.parser->pending();
    ep.parser_done.frames += c.frames;
    ep.parser_done.unknown_id += c.unknown_id;
    for (int r = 0; r < static_cast<int>(mav::Reject::kCount); r++) ep.parser_done.rejected[r] += c.rejected[r];
    ep.parser = std::make_unique<mav::Parser>(dialect);
    ep.rx_len = 0;
  }

  // The connection of a stream endpoint ended (err 0: closed by the peer).
  void Down(Endpoint& ep, int err, const char* syscall) {
    if (err != 0) {
      ep.st.errors++;
      ep.st.last_error = err;
    }
    ep.st.disconnects++;
    Unregister(ep);
    ep.fd.Reset();
    ep.up = false;
    ep.connecting = false;
    ep.want_out = false;
    ep.tx.clear();
    ep.tx_off = 0;
    ForgetRoutes(ep);
    PushEvent(kEvDisconnect, ep, err, 0, syscall);
    if (ep.kind == kTcpConn) {
      RemoveEndpoint(ep.index);
      return;
    }
    ResetParser(ep);
    if (!ep.adopted) ScheduleRetry(ep);
  }

  // A UART descriptor opened and configured by JavaScript (serialport). The
  // router owns a duplicate; the caller keeps its own for line settings.
  int AdoptUart(Endpoint& ep, int fd) {
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return -errno;
    int fl = fcntl(own, F_GETFL);
    if (fl >= 0) fcntl(own, F_SETFL, fl | O_NONBLOCK);
    Unregister(ep);
    ep.fd.Reset(own);
    ep.adopted = true;
    int r = Register(ep, EPOLLIN);
    if (r != 0) {
      ep.fd.Reset();
      return r;
    }
    ep.up = true;
    ep.st.connects++;
    ep.st.last_error = 0;
    PushEvent(kEvConnect, ep, 0, 0);
    return 0;
  }

  void RemoveEndpoint(uint32_t index) {
    if (index == 0 || index >= eps.size() || !eps[index]) return;
    Endpoint& ep = *eps[index];
    Unregister(ep);
    if (ep.kind == kTcpServer) {
      // its connections go with it
      for (auto& e : eps)
        if (e && e->kind == kTcpConn && e->parent == static_cast<int>(index)) RemoveEndpoint(e->index);
    }
    if (ep.kind == kTcpConn && ep.parent >= 0 && static_cast<size_t>(ep.parent) < eps.size() && eps[ep.parent]) {
      Endpoint& srv = *eps[ep.parent];
      srv.st.Add(ep.st);
      ResetParser(ep);
      const mav::Counters& c = ep.parser_done;
      srv.parser_done.bytes_in += c.bytes_in;
      srv.parser_done.bytes_accepted += c.bytes_accepted;
      srv.parser_done.bytes_discarded += c.bytes_discarded;
      srv.parser_done.frames += c.frames;
      srv.parser_done.unknown_id += c.unknown_id;
      for (int r = 0; r < static_cast<int>(mav::Reject::kCount); r++) srv.parser_done.rejected[r] += c.rejected[r];
    }
    PushEvent(kEvRemoved, ep, 0, 0);
    eps[index].reset();
  }

  void ScheduleRetry(Endpoint& ep) {
    ep.backoff_ms = ep.backoff_ms == 0 ? ep.min_ms : std::min(ep.backoff_ms * 2, ep.max_ms);
    ep.retry_at = MonoNs() + static_cast<int64_t>(ep.backoff_ms) * 1000000;
    ArmTimer();
  }

  void ArmTimer() {
    int64_t next = 0;
    for (auto& e : eps)
      if (e && e->retry_at != 0 && (next == 0 || e->retry_at < next)) next = e->retry_at;
    itimerspec its{};
    if (next != 0) {
      its.it_value.tv_sec = static_cast<time_t>(next / 1000000000);
      its.it_value.tv_nsec = static_cast<long>(next % 1000000000);
    }
    timerfd_settime(timerfd.get(), TFD_TIMER_ABSTIME, &its, nullptr);
  }

  void OnTimer() {
    uint64_t expirations;
    ssize_t r = read(timerfd.get(), &expirations, sizeof(expirations));
    (void)r;
    int64_t now = MonoNs();
    for (size_t i = 0; i < eps.size(); i++) {
      Endpoint* ep = eps[i].get();
      if (!ep || ep->retry_at == 0 || ep->retry_at > now) continue;
      ep->retry_at = 0;
      if (ep->kind == kTcpClient) StartConnect(*ep);
      else if (ep->kind == kUart) OpenUart(*ep);
    }
    ArmTimer();
  }

  // ---- opening endpoints ------------------------------------------------

  // Returns 0 or -errno; *syscall names the call that failed.
  int OpenUdp(Endpoint& ep, const char** syscall) {
    int fd = socket(ep.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return *syscall = "socket", -errno;
    ep.fd.Reset(fd);
    SetBuf(fd);
    (void)EnableRxTimestamps(fd);
    if (ep.kind == kUdpServer) {
      if (::bind(fd, reinterpret_cast<sockaddr*>(&ep.addr), ep.addr_len) != 0) return *syscall = "bind", -errno;
      socklen_t len = sizeof(ep.addr);
      getsockname(fd, reinterpret_cast<sockaddr*>(&ep.addr), &len);
    } else {
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
      if (::connect(fd, reinterpret_cast<sockaddr*>(&ep.addr), ep.addr_len) != 0) return *syscall = "connect", -errno;
    }
    ep.up = true;
    int r = Register(ep, EPOLLIN);
    if (r != 0) *syscall = "epoll_ctl";
    return r;
  }

  int OpenTcpServer(Endpoint& ep, const char** syscall) {
    int fd = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return *syscall = "socket", -errno;
    ep.fd.Reset(fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ep.addr), ep.addr_len) != 0) return *syscall = "bind", -errno;
    if (::listen(fd, 16) != 0) return *syscall = "listen", -errno;
    socklen_t len = sizeof(ep.addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ep.addr), &len);
    ep.up = true;
    int r = Register(ep, EPOLLIN);
    if (r != 0) *syscall = "epoll_ctl";
    return r;
  }

  void StartConnect(Endpoint& ep) {
    int fd = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      int err = errno;
      ep.st.errors++;
      ep.st.last_error = err;
      PushEvent(kEvError, ep, err, 0, "socket");
      ScheduleRetry(ep);
      return;
    }
    ep.fd.Reset(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&ep.addr), ep.addr_len);
    if (r != 0 && errno != EINPROGRESS) {
      ConnectFailed(ep, errno);
      return;
    }
    ep.connecting = true;
    if (Register(ep, EPOLLOUT) != 0) ConnectFailed(ep, errno);
  }

  void ConnectFailed(Endpoint& ep, int err) {
    Unregister(ep);
    ep.fd.Reset();
    ep.connecting = false;
    ep.st.errors++;
    ep.st.last_error = err;
    ScheduleRetry(ep);
  }

  void Connected(Endpoint& ep) {
    ep.connecting = false;
    ep.up = true;
    ep.backoff_ms = 0;
    ep.st.connects++;
    SetEvents(ep, EPOLLIN);
    PushEvent(kEvConnect, ep, 0, 0);
  }

  void OpenUart(Endpoint& ep) {
    int fd = open(ep.path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (ep.st.last_error != err) PushEvent(kEvError, ep, err, 0, "open");
      ep.st.errors++;
      ep.st.last_error = err;
      ScheduleRetry(ep);
      return;
    }
    ep.fd.Reset(fd);
    termios tio;
    if (tcgetattr(fd, &tio) == 0) {
      // raw: no echo (a PTY echoes by default, which would loop every frame), no line discipline
      cfmakeraw(&tio);
      tio.c_cflag |= CLOCAL | CREAD;
      if (ep.rtscts) tio.c_cflag |= CRTSCTS;
      else tio.c_cflag &= ~CRTSCTS;
      tio.c_cc[VMIN] = 1;
      tio.c_cc[VTIME] = 0;
      speed_t sp = BaudConst(ep.baud);
      if (sp != 0) {
        cfsetispeed(&tio, sp);
        cfsetospeed(&tio, sp);
      }
      tcsetattr(fd, TCSANOW, &tio);
    }
    if (Register(ep, EPOLLIN) != 0) {
      ep.fd.Reset();
      ScheduleRetry(ep);
      return;
    }
    ep.up = true;
    ep.backoff_ms = 0;
    ep.st.connects++;
    ep.st.last_error = 0;
    PushEvent(kEvConnect, ep, 0, 0);
  }

  // ---- reading ------------------------------------------------------------

  void OnIo(uint32_t) override {
    epoll_event evs[64];
    int n = epoll_wait(epfd.get(), evs, 64, 0);
    for (int i = 0; i < n; i++) {
      uint64_t key = evs[i].data.u64;
      if (key == kTimerKey) {
        OnTimer();
        continue;
      }
      uint32_t index = static_cast<uint32_t>(key);
      uint32_t gen = static_cast<uint32_t>(key >> 32);
      if (index >= eps.size() || !eps[index] || eps[index]->gen != gen) continue;  // closed meanwhile
      Endpoint& ep = *eps[index];
      uint32_t e = evs[i].events;
      switch (ep.kind) {
        case kUdpServer:
        case kUdpClient: ReadUdp(ep); break;
        case kTcpServer: Accept(ep); break;
        case kTcpClient:
          if (ep.connecting) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            getsockopt(ep.fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr != 0) ConnectFailed(ep, soerr);
            else Connected(ep);
            break;
          }
          [[fallthrough]];
        default:
          if ((e & EPOLLOUT) && ep.want_out) {
            WriteStream(ep);
            if (!eps[index] || eps[index]->gen != gen || !ep.up) break;
          }
          if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadStream(ep);
      }
    }
  }

  void ReadUdp(Endpoint& ep) {
    for (unsigned call = 0; call < kRxBudget; call++) {
      for (unsigned i = 0; i < kRxBatch; i++) {
        PrepareRecv(msgs[i], iov[i], slots.data() + static_cast<size_t>(i) * kSlotSize, kSlotSize, &names[i], ctrl[i], kCtrlSize);
      }
      int n = recvmmsg(ep.fd.get(), msgs, kRxBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        // ICMP errors on a connected socket (ECONNREFUSED): counted, not fatal
        ep.st.errors++;
        ep.st.last_error = err;
        continue;
      }
      int64_t now = 0;
      for (int i = 0; i < n; i++) {
        msghdr& h = msgs[i].msg_hdr;
        if (h.msg_flags & MSG_TRUNC) ep.st.drops[kDropTruncated]++;
        int64_t rx_ns = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
          KernelTs64 ts[3] = {};
          if (IsStampCmsg(c)) {
            if (ReadStamps(c, ts) & kStampSw) rx_ns = ts[0].sec * 1000000000LL + ts[0].nsec;
          } else if (rx_ns == 0 && IsLateStampCmsg(c)) {
            ts[0] = ReadLateStamp(c);
            rx_ns = ts[0].sec * 1000000000LL + ts[0].nsec;
          }
        }
        if (rx_ns == 0) rx_ns = now ? now : (now = RealNs());
        int peer = ep.kind == kUdpServer ? NotePeer(ep, names[i], h.msg_namelen, rx_ns) : -1;
        const uint8_t* data = static_cast<const uint8_t*>(iov[i].iov_base);
        ep.parser->ParseDatagram(data, std::min<size_t>(msgs[i].msg_len, kSlotSize),
                                 [&](const uint8_t* fr, const FrameInfo& fi) { Route(ep, fr, fi, rx_ns, peer); });
      }
      Flush();
      if (static_cast<unsigned>(n) < kRxBatch) return;
    }
  }

  // Returns the peer's index in ep.peers.
  int NotePeer(Endpoint& ep, const sockaddr_storage& a, socklen_t len, int64_t now) {
    for (size_t i = 0; i < ep.peers.size(); i++) {
      Peer& p = ep.peers[i];
      if (p.len == len && memcmp(&p.addr, &a, len) == 0) {
        p.last_ns = now;
        return static_cast<int>(i);
      }
    }
    if (ep.peers.size() >= kMaxPeers) {
      // pending peer masks index ep.peers: send them before the indices change
      Flush();
      auto oldest = std::min_element(ep.peers.begin(), ep.peers.end(),
                                     [](const Peer& x, const Peer& y) { return x.last_ns < y.last_ns; });
      ep.peers.erase(oldest);
      RebuildServerRoutes(ep);
    }
    Peer p;
    memset(&p.addr, 0, sizeof(p.addr));
    memcpy(&p.addr, &a, len);
    p.len = len;
    p.last_ns = now;
    ep.peers.push_back(std::move(p));
    ep.st.connects++;
    PushEvent(kEvConnect, ep, 0, 0);
    return static_cast<int>(ep.peers.size() - 1);
  }

  void ReadStream(Endpoint& ep) {
    if (ep.rx.size() < kStreamRx) ep.rx.resize(kStreamRx);
    for (unsigned call = 0; call < kRxBudget; call++) {
      const size_t want = ep.rx.size() - ep.rx_len;
    ssize_t r = read(ep.fd.get(), ep.rx.data() + ep.rx_len, want);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        Down(ep, err, "read");
        return;
      }
      if (r == 0) {
        Down(ep, 0, "read");
        return;
      }
      ep.rx_len += static_cast<size_t>(r);
      int64_t rx_ns = RealNs();
      size_t pos = 0;
      FrameInfo fi;
      while (pos < ep.rx_len) {
        mav::Step s = ep.parser->Next(ep.rx.data() + pos, ep.rx_len - pos, &fi);
        if (s.kind == mav::Step::kNeedMore) break;
        if (s.kind == mav::Step::kFrame) Route(ep, ep.rx.data() + pos, fi, rx_ns);
        pos += s.size;
      }
      Flush();  // routed frames are views into ep.rx: send before moving it
      if (pos > 0) {
        memmove(ep.rx.data(), ep.rx.data() + pos, ep.rx_len - pos);
        ep.rx_len -= pos;
      }
      // a short read means the queue is empty (the level-triggered set calls
      // again if more came meanwhile)
      if (static_cast<size_t>(r) < want) return;
    }
  }

  void Accept(Endpoint& srv) {
    for (unsigned k = 0; k < 64; k++) {
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      int fd = accept4(srv.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EINTR || err == ECONNABORTED) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        srv.st.errors++;
        srv.st.last_error = err;
        PushEvent(kEvError, srv, err, 0, "accept");
        return;
      }
      Endpoint* ep = NewEndpoint(kTcpConn);
      if (!ep) {
        close(fd);
        srv.st.errors++;
        srv.st.last_error = EMFILE;
        continue;
      }
      ep->fd.Reset(fd);
      ep->parent = static_cast<int>(srv.index);
      ep->in = srv.in;
      ep->out = srv.out;
      int port = 0;
      std::string ip = FormatAddress(reinterpret_cast<sockaddr*>(&ss), &port);
      ep->name = srv.name + "/" + ip + ":" + std::to_string(port);
      ep->addr = ss;
      ep->addr_len = len;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (Register(*ep, EPOLLIN) != 0) {
        eps[ep->index].reset();
        continue;
      }
      ep->up = true;
      ep->st.connects++;
      srv.st.connects++;
      PushEvent(kEvConnect, *ep, static_cast<int32_t>(srv.index), 0);
    }
  }
};

// ---------------------------------------------------------------------------

Napi::Function MavRouter::Init(Napi::Env env) {
  return DefineClass(env, "MavRouter",
                     {
                         InstanceMethod<&MavRouter::AddEndpoint>("addEndpoint"),
                         InstanceMethod<&MavRouter::RemoveEndpoint>("removeEndpoint"),
                         InstanceMethod<&MavRouter::AdoptFd>("adoptFd"),
                         InstanceMethod<&MavRouter::LocalAddress>("localAddress"),
                         InstanceMethod<&MavRouter::SetLocal>("setLocal"),
                         InstanceMethod<&MavRouter::Send>("send"),
                         InstanceMethod<&MavRouter::Stats>("stats"),
                         InstanceMethod<&MavRouter::Routes>("routes"),
                         InstanceMethod<&MavRouter::SetBusyPoll>("setBusyPoll"),
                         InstanceMethod<&MavRouter::Ref>("ref"),
                         InstanceMethod<&MavRouter::Unref>("unref"),
                         InstanceMethod<&MavRouter::Close>("close"),
                     });
}

static void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, strerror(err));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}

// new MavRouter(dialect: Int32Array [msgid, crcExtra, minLen, maxLen, tsOfs, tcOfs]*,
//               onFrames(bytes: ArrayBuffer, meta: Uint32Array), onEvents(events: Array))
MavRouter::MavRouter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MavRouter>(info) {
  Napi::Env env = info.Env();
  auto dialect = std::make_shared<mav::Dialect>();
  Napi::Int32Array table = info[0].As<Napi::Int32Array>();
  for (size_t i = 0; i + 6 <= table.ElementLength(); i += 6) {
    mav::MsgInfo m;
    m.crc_extra = static_cast<uint8_t>(table[i + 1]);
    m.min_len = static_cast<uint8_t>(table[i + 2]);
    m.max_len = static_cast<uint8_t>(table[i + 3]);
    m.target_system_ofs = static_cast<int16_t>(table[i + 4]);
    m.target_component_ofs = static_cast<int16_t>(table[i + 5]);
    dialect->Set(static_cast<uint32_t>(table[i]), m);
  }
  on_frames_ = Napi::Persistent(info[1].As<Napi::Function>());
  on_events_ = Napi::Persistent(info[2].As<Napi::Function>());
  reactor_ = env.GetInstanceData<OnbusAddon>()->reactor(env);
  if (!reactor_) {
    closed_ = true;
    Napi::Error::New(env, "onbus: could not start the I/O reactor").ThrowAsJavaScriptException();
    return;
  }
  core_ = std::make_shared<RouterCore>();
  core_->reactor = reactor_;
  core_->dialect = dialect;
  core_->epfd.Reset(epoll_create1(EPOLL_CLOEXEC));
  core_->timerfd.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!core_->epfd.valid() || !core_->timerfd.valid()) {
    closed_ = true;
    ThrowErrno(env, errno, core_->epfd.valid() ? "timerfd_create" : "epoll_create1");
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTimerKey;
  epoll_ctl(core_->epfd.get(), EPOLL_CTL_ADD, core_->timerfd.get(), &ev);
  // the local endpoint (JavaScript) is index 0
  core_->eps.emplace_back(std::make_unique<Endpoint>());
  Endpoint& local = *core_->eps[0];
  local.kind = kLocal;
  local.name = "local";
  local.up = true;
  local.gen = core_->next_gen++;
  local.parser = std::make_unique<mav::Parser>(dialect);
  int64_t id = reactor_->Add(core_->epfd.get(), EPOLLIN, core_);
  if (id < 0) {
    closed_ = true;
    ThrowErrno(env, static_cast<int>(-id), "epoll_ctl");
    return;
  }
  id_ = static_cast<uint32_t>(id);
  core_->id = id_;
  reactor_->SetTarget(id_, this);
  loop_ref_.Ref(reactor_.get());
  // An open router routes without JavaScript touching it: keep the wrapper
  // alive until close() explicitly (a dropped router must not stop routing
  // when the garbage collector runs), rather than relying on the callbacks'
  // persistent references happening to keep it reachable.
  Napi::ObjectWrap<MavRouter>::Ref();
  self_ref_ = true;
}

MavRouter::~MavRouter() { DoClose(); }

void MavRouter::DoClose() {
  if (closed_ && id_ == 0) return;
  closed_ = true;
  if (reactor_ && id_ != 0) reactor_->Remove(id_, core_ ? core_->epfd.get() : -1);
  loop_ref_.Unref(reactor_.get());
  id_ = 0;
  if (core_) {
    std::lock_guard<std::mutex> lk(core_->io_mu);
    core_->closed = true;
    core_->CloseAll();
  }
}

static void ReadIdSet(Napi::Value v, IdSet* s) {
  if (!v.IsArray()) return;
  Napi::Array a = v.As<Napi::Array>();
  s->active = true;
  for (uint32_t i = 0; i < a.Length(); i++) s->ids.push_back(a.Get(i).Unwrap().As<Napi::Number>().Uint32Value());
  std::sort(s->ids.begin(), s->ids.end());
}

static void ReadByteSet(Napi::Value v, ByteSet* s) {
  if (!v.IsArray()) return;
  Napi::Array a = v.As<Napi::Array>();
  s->active = true;
  for (uint32_t i = 0; i < a.Length(); i++) s->bits[a.Get(i).Unwrap().As<Napi::Number>().Uint32Value() & 255] = true;
}

static void ReadFilter(Napi::Value v, Filter* f) {
  if (!v.IsObject()) return;
  Napi::Object o = v.As<Napi::Object>();
  ReadIdSet(o.Get("allowMsgIds").Unwrap(), &f->msg_allow);
  ReadIdSet(o.Get("denyMsgIds").Unwrap(), &f->msg_deny);
  ReadByteSet(o.Get("allowSrcSystems").Unwrap(), &f->sys_allow);
  ReadByteSet(o.Get("denySrcSystems").Unwrap(), &f->sys_deny);
  ReadByteSet(o.Get("allowSrcComponents").Unwrap(), &f->comp_allow);
  ReadByteSet(o.Get("denySrcComponents").Unwrap(), &f->comp_deny);
  f->any = f->msg_allow.active || f->msg_deny.active || f->sys_allow.active || f->sys_deny.active ||
           f->comp_allow.active || f->comp_deny.active;
}

// addEndpoint({ kind, name, ip?, port?, family?, path?, baud?, reconnectMinMs?,
//   reconnectMaxMs?, in?, out? }) -> index; throws a system error (errno, syscall).
Napi::Value MavRouter::AddEndpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    ThrowErrno(env, EBADF, "addEndpoint");
    return env.Undefined();
  }
  Napi::Object spec = info[0].As<Napi::Object>();
  Kind kind = static_cast<Kind>(spec.Get("kind").Unwrap().As<Napi::Number>().Uint32Value());
  std::lock_guard<std::mutex> lk(core_->io_mu);
  Endpoint* ep = core_->NewEndpoint(kind);
  if (!ep) {
    ThrowErrno(env, EMFILE, "addEndpoint");
    return env.Undefined();
  }
  ep->name = spec.Get("name").Unwrap().As<Napi::String>().Utf8Value();
  ReadFilter(spec.Get("in").Unwrap(), &ep->in);
  ReadFilter(spec.Get("out").Unwrap(), &ep->out);
  if (spec.Get("reconnectMinMs").Unwrap().IsNumber()) ep->min_ms = spec.Get("reconnectMinMs").Unwrap().As<Napi::Number>().Int32Value();
  if (spec.Get("reconnectMaxMs").Unwrap().IsNumber()) ep->max_ms = spec.Get("reconnectMaxMs").Unwrap().As<Napi::Number>().Int32Value();
  int r = 0;
  const char* syscall = "socket";
  if (kind == kUart) {
    ep->path = spec.Get("path").Unwrap().As<Napi::String>().Utf8Value();
    if (spec.Get("baud").Unwrap().IsNumber()) ep->baud = spec.Get("baud").Unwrap().As<Napi::Number>().Int32Value();
    ep->rtscts = spec.Get("rtscts").Unwrap().ToBoolean().Unwrap().Value();
    if (spec.Get("fd").Unwrap().IsNumber()) {
      r = core_->AdoptUart(*ep, spec.Get("fd").Unwrap().As<Napi::Number>().Int32Value());
      if (r != 0) {
        core_->eps[ep->index].reset();
        ThrowErrno(env, -r, "dup");
        return env.Undefined();
      }
    } else {
      core_->OpenUart(*ep);
    }
    return Napi::Number::New(env, ep->index);
  }
  std::string ip = spec.Get("ip").Unwrap().As<Napi::String>().Utf8Value();
  int port = spec.Get("port").Unwrap().As<Napi::Number>().Int32Value();
  int family = spec.Get("family").Unwrap().IsNumber() ? spec.Get("family").Unwrap().As<Napi::Number>().Int32Value() : 0;
  r = ParseAddress(ip, port, family, &ep->addr, &ep->addr_len);
  if (r != 0) {
    syscall = "getaddrinfo";
  } else if (kind == kUdpServer || kind == kUdpClient) {
    r = core_->OpenUdp(*ep, &syscall);
  } else if (kind == kTcpServer) {
    r = core_->OpenTcpServer(*ep, &syscall);
  } else if (kind == kTcpClient) {
    core_->StartConnect(*ep);
  } else {
    r = -EINVAL;
    syscall = "addEndpoint";
  }
  if (r != 0) {
    core_->Unregister(*ep);
    core_->eps[ep->index].reset();
    ThrowErrno(env, -r, syscall);
    return env.Undefined();
  }
  return Napi::Number::New(env, ep->index);
}

// adoptFd(index, fd) -> 0 | -errno: a reopened UART (serialport) for an endpoint that went down.
Napi::Value MavRouter::AdoptFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return Napi::Number::New(env, -EBADF);
  uint32_t i = info[0].As<Napi::Number>().Uint32Value();
  std::lock_guard<std::mutex> lk(core_->io_mu);
  if (i >= core_->eps.size() || !core_->eps[i] || core_->eps[i]->kind != kUart) return Napi::Number::New(env, -EINVAL);
  return Napi::Number::New(env, core_->AdoptUart(*core_->eps[i], info[1].As<Napi::Number>().Int32Value()));
}

Napi::Value MavRouter::RemoveEndpoint(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  std::lock_guard<std::mutex> lk(core_->io_mu);
  core_->RemoveEndpoint(info[0].As<Napi::Number>().Uint32Value());
  core_->ArmTimer();
  return info.Env().Undefined();
}

// localAddress(index) -> [ip, port, family] the endpoint's socket is bound to, or undefined.
Napi::Value MavRouter::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return env.Undefined();
  uint32_t i = info[0].As<Napi::Number>().Uint32Value();
  std::lock_guard<std::mutex> lk(core_->io_mu);
  if (i >= core_->eps.size() || !core_->eps[i] || !core_->eps[i]->fd.valid()) return env.Undefined();
  const Endpoint& ep = *core_->eps[i];
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(ep.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0 || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
    return env.Undefined();
  int port = 0;
  std::string ip = FormatAddress(reinterpret_cast<const sockaddr*>(&ss), &port);
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::String::New(env, ip));
  a.Set(1u, Napi::Number::New(env, port));
  a.Set(2u, Napi::Number::New(env, ss.ss_family == AF_INET6 ? 6 : 4));
  return a;
}

// setLocal(on: boolean, ids: number[] | null): which frames JavaScript receives.
Napi::Value MavRouter::SetLocal(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  std::lock_guard<std::mutex> lk(core_->io_mu);
  core_->local_on = info[0].As<Napi::Boolean>().Value();
  core_->local_ids = IdSet{};
  ReadIdSet(info[1], &core_->local_ids);
  return info.Env().Undefined();
}

// send(bytes: Uint8Array) -> frames accepted: frames from JavaScript, routed as
// traffic of the local endpoint.
Napi::Value MavRouter::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return Napi::Number::New(env, -EBADF);
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  std::lock_guard<std::mutex> lk(core_->io_mu);
  Endpoint& local = *core_->eps[0];
  uint64_t before = local.parser->counters().frames;
  int64_t now = RealNs();
  local.parser->ParseDatagram(a.Data(), a.ByteLength(),
                              [&](const uint8_t* fr, const FrameInfo& fi) { core_->Route(local, fr, fi, now); });
  core_->Flush();
  return Napi::Number::New(env, static_cast<double>(local.parser->counters().frames - before));
}

static Napi::Object ParserStats(Napi::Env env, const mav::Counters& c, const mav::Counters& done, uint64_t pending) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytesIn", Napi::Number::New(env, static_cast<double>(c.bytes_in + done.bytes_in)));
  o.Set("bytesAccepted", Napi::Number::New(env, static_cast<double>(c.bytes_accepted + done.bytes_accepted)));
  o.Set("bytesDiscarded", Napi::Number::New(env, static_cast<double>(c.bytes_discarded + done.bytes_discarded)));
  o.Set("pending", Napi::Number::New(env, static_cast<double>(pending)));
  o.Set("frames", Napi::Number::New(env, static_cast<double>(c.frames + done.frames)));
  o.Set("unknownId", Napi::Number::New(env, static_cast<double>(c.unknown_id + done.unknown_id)));
  Napi::Object rej = Napi::Object::New(env);
  for (int r = 0; r < static_cast<int>(mav::Reject::kCount); r++)
    rej.Set(mav::RejectName(static_cast<mav::Reject>(r)), Napi::Number::New(env, static_cast<double>(c.rejected[r] + done.rejected[r])));
  o.Set("rejected", rej);
  return o;
}

// stats() -> { endpoints: [...], eventsDropped }
Napi::Value MavRouter::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array list = Napi::Array::New(env);
  out.Set("endpoints", list);
  if (closed_) return out;
  std::lock_guard<std::mutex> lk(core_->io_mu);
  out.Set("eventsDropped", Napi::Number::New(env, static_cast<double>(core_->events_dropped)));
  uint32_t k = 0;
  for (auto& e : core_->eps) {
    if (!e) continue;
    const Endpoint& ep = *e;
    const EpStats& s = ep.st;
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", Napi::Number::New(env, ep.index));
    o.Set("name", Napi::String::New(env, ep.name));
    o.Set("kind", Napi::Number::New(env, ep.kind));
    o.Set("up", Napi::Boolean::New(env, ep.up && !(ep.kind == kUdpServer && ep.peers.empty())));
    if (ep.parent >= 0) o.Set("parent", Napi::Number::New(env, ep.parent));
    o.Set("framesIn", Napi::Number::New(env, static_cast<double>(s.frames_in)));
    o.Set("bytesIn", Napi::Number::New(env, static_cast<double>(s.bytes_in)));
    o.Set("framesOut", Napi::Number::New(env, static_cast<double>(s.frames_out)));
    o.Set("bytesOut", Napi::Number::New(env, static_cast<double>(s.bytes_out)));
    Napi::Object d = Napi::Object::New(env);
    for (int r = 0; r < kDropCount; r++) d.Set(kDropNames[r], Napi::Number::New(env, static_cast<double>(s.drops[r])));
    o.Set("drops", d);
    o.Set("connects", Napi::Number::New(env, static_cast<double>(s.connects)));
    o.Set("disconnects", Napi::Number::New(env, static_cast<double>(s.disconnects)));
    o.Set("errors", Napi::Number::New(env, static_cast<double>(s.errors)));
    o.Set("lastErrno", Napi::Number::New(env, s.last_error ? -s.last_error : 0));
    o.Set("peers", Napi::Number::New(env, static_cast<double>(ep.peers.size())));
    o.Set("queuedBytes", Napi::Number::New(env, static_cast<double>(ep.tx.size() - ep.tx_off)));
    o.Set("parser", ParserStats(env, ep.parser->counters(), ep.parser_done, ep.parser->pending()));
    list.Set(k++, o);
  }
  return out;
}

// routes() -> [endpointIndex, sysid, compid][] learned so far.
Napi::Value MavRouter::Routes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env);
  if (closed_) return list;
  std::lock_guard<std::mutex> lk(core_->io_mu);
  uint32_t k = 0;
  for (auto& e : core_->eps) {
    if (!e || e->sys_seen.none()) continue;
    for (uint32_t key = 0; key < 65536; key++) {
      if (!e->comp_seen[key]) continue;
      Napi::Array r = Napi::Array::New(env, 3);
      r.Set(0u, Napi::Number::New(env, e->index));
      r.Set(1u, Napi::Number::New(env, key >> 8));
      r.Set(2u, Napi::Number::New(env, key & 255));
      list.Set(k++, r);
    }
  }
  return list;
}

// setBusyPoll(us): the reactor spins this long before sleeping (0 = off).
Napi::Value MavRouter::SetBusyPoll(const Napi::CallbackInfo& info) {
  if (!closed_ && reactor_ && id_ != 0) reactor_->RequestSpin(id_, info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value MavRouter::Ref(const Napi::CallbackInfo& info) {
  if (!closed_) loop_ref_.Ref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value MavRouter::Unref(const Napi::CallbackInfo& info) {
  loop_ref_.Unref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value MavRouter::Close(const Napi::CallbackInfo& info) {
  DoClose();
  if (self_ref_) {
    self_ref_ = false;
    Napi::ObjectWrap<MavRouter>::Unref();
  }
  return info.Env().Undefined();
}

// JS thread: hands queued frames and events to JavaScript.
void MavRouter::OnWake(Napi::Env env, uint32_t kind) {
  if (closed_ || in_callback_) return;
  std::vector<uint8_t>* bytes = new std::vector<uint8_t>();
  std::vector<uint32_t> meta;
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lk(core_->io_mu);
    core_->wake_scheduled.store(false);
    bytes->swap(core_->js_bytes);
    meta.swap(core_->js_meta);
    events.swap(core_->events);
  }
  Napi::HandleScope scope(env);
  in_callback_ = true;
  if (!events.empty()) {
    Napi::Array list = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); i++) {
      const Event& ev = events[i];
      Napi::Array a = Napi::Array::New(env, 6);
      a.Set(0u, Napi::Number::New(env, ev.type));
      a.Set(1u, Napi::Number::New(env, ev.ep));
      a.Set(2u, Napi::Number::New(env, ev.a));
      a.Set(3u, Napi::Number::New(env, ev.b));
      a.Set(4u, ev.syscall ? Napi::String::New(env, ev.syscall) : env.Undefined());
      a.Set(5u, Napi::String::New(env, ev.name));
      list.Set(static_cast<uint32_t>(i), a);
    }
    CallReporting(env, on_events_, {list});
  }
  if (!meta.empty() && !closed_) {
    size_t len = bytes->size();
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, bytes->data(), len, [](Napi::Env, void*, std::vector<uint8_t>* v) { delete v; }, bytes);
    bytes = nullptr;
    Napi::Uint32Array m = Napi::Uint32Array::New(env, meta.size());
    memcpy(m.Data(), meta.data(), meta.size() * sizeof(uint32_t));
    CallReporting(env, on_frames_, {ab, m});
  }
  delete bytes;
  in_callback_ = false;
  // events raised while JavaScript ran (a send from a callback) are in the queues
  if (!closed_) {
    std::lock_guard<std::mutex> lk(core_->io_mu);
    if ((!core_->js_meta.empty() || !core_->events.empty()) && !core_->wake_scheduled.exchange(true))
      reactor_->Wake(id_, kWakeRx);
  }
}

}  // namespace onbus
