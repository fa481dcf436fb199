#include "rtp/rtp_receiver.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "addon.h"
#include "rtp/rtp_session.h"
#include "util/call_js.h"
#include "util/clock.h"
#include "util/rx_stamps.h"
#include "util/sockaddr.h"
#include "util/unique_fd.h"
#include "util/uv_poll.h"

namespace onbus {

namespace {

constexpr unsigned kRxBatch = 32;      // datagrams per recvmmsg call
constexpr unsigned kRxBudget = 16;     // recvmmsg calls per wake-up
constexpr size_t kPktBuf = 9216;       // jumbo frames fit; larger is truncated (counted)
constexpr size_t kCtrlSize = 160;      // timestamping + overflow cmsgs
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

enum RtcpMode : int { kRtcpOff = 0, kRtcpPort = 1, kRtcpMux = 2 };
enum KeyframeMode : int { kKfOff = 0, kKfPli = 1, kKfFir = 2 };

}  // namespace

// The part of the receiver the reactor thread touches; guarded by io_mu except
// the ring indices (one writer each, acquire/release).
struct RtpRx : IoSource, rtp::FrameSink {
  UniqueFd fd, rtcp_fd, timer_fd;
  std::shared_ptr<Reactor> reactor;
  uint32_t id = 0;
  bool started = false;
  std::unique_ptr<rtp::RtpSession> session;
  int rtcp_mode = kRtcpOff;
  int kf_mode = kKfOff;
  int64_t rr_interval = 1000000000LL;
  int64_t kf_interval = 500000000LL;
  int64_t next_rr = 0, last_kf = 0, armed = kNever;

  // Frame output rings.
  uint8_t* data = nullptr;
  double* rec = nullptr;
  uint32_t data_cap = 0, rec_cap = 0;
  std::atomic<uint32_t> data_head{0}, data_tail{0}, rec_head{0}, rec_tail{0};
  std::atomic<bool> rx_scheduled{false}, err_scheduled{false};
  std::vector<int> errors;
  // JavaScript-thread mode: the sockets are polled by libuv on the JavaScript
  // thread and frames are delivered right after the poll callback's work, so
  // nothing wakes the reactor's thread-safe function.
  bool js_thread = false;

  // Where RTCP goes: the source of the last SR, else derived from RTP's source.
  sockaddr_storage rtcp_dest{};
  bool have_sr_dest = false;
  sockaddr_storage rtp_src{};
  bool have_rtp_src = false;

  // Counters beyond the session's.
  uint64_t frames_dropped = 0, truncated = 0, rx_errors = 0, datagrams = 0;
  uint64_t rr_sent = 0, pli_sent = 0, fir_sent = 0, rtcp_send_errors = 0;
  uint32_t kernel_drops = 0, rtcp_kernel_drops = 0;

  // recvmmsg scratch (reactor thread only).
  mmsghdr msgs[kRxBatch];
  iovec iov[kRxBatch];
  sockaddr_storage names[kRxBatch];
  alignas(cmsghdr) char ctrl[kRxBatch][kCtrlSize];
  std::vector<uint8_t> bufs = std::vector<uint8_t>(kRxBatch * kPktBuf);
  uint8_t out[256];

  void Abandon() override {
    fd.Reset();
    rtcp_fd.Reset();
    timer_fd.Reset();
  }

  void OnIo(uint32_t events) override { OnFd(0, events); }

  void OnFd(int which, uint32_t events) {
    if (!started) return;
    if (which == 2) {
      uint64_t ticks;
      while (read(timer_fd.get(), &ticks, sizeof(ticks)) > 0) {
      }
      armed = kNever;
      int64_t now = ClockNs(CLOCK_MONOTONIC);
      session->OnTimer(now);
      AfterIo(now);
      return;
    }
    if (events & (EPOLLIN | EPOLLERR)) Drain(which == 1 ? rtcp_fd.get() : fd.get(), which == 1);
  }

  void PushError(int err) {
    errors.push_back(err);
    if (!err_scheduled.exchange(true) && !js_thread) reactor->Wake(id, kWakeError);
  }

  void Drain(int sock, bool rtcp_sock) {
    int64_t now = 0;
    for (unsigned call = 0; call < kRxBudget; call++) {
      for (unsigned i = 0; i < kRxBatch; i++) {
        PrepareRecv(msgs[i], iov[i], bufs.data() + i * kPktBuf, kPktBuf, &names[i], ctrl[i], kCtrlSize);
      }
      int n = recvmmsg(sock, msgs, kRxBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) {
          call--;
          continue;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        // An ICMP error queued on the socket (our RTCP towards a closed port)
        // is reported once and is not fatal for a receiver.
        if (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH) continue;
        rx_errors++;
        PushError(err);
        break;
      }
      if (n == 0) break;
      now = ClockNs(CLOCK_MONOTONIC);
      for (int i = 0; i < n; i++) Handle(msgs[i], i, rtcp_sock, now);
      if (static_cast<unsigned>(n) < kRxBatch) break;
    }
    if (now == 0) now = ClockNs(CLOCK_MONOTONIC);
    AfterIo(now);
  }

  void Handle(const mmsghdr& mm, int i, bool rtcp_sock, int64_t now) {
    const msghdr& h = mm.msg_hdr;
    datagrams++;
    KernelTs64 ts[3] = {};
    KernelTs64 late{0, 0};
    uint32_t have = 0;
    uint32_t drops = rtcp_sock ? rtcp_kernel_drops : kernel_drops;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (IsStampCmsg(c)) have |= ReadStamps(c, ts);
      else if (IsLateStampCmsg(c)) late = ReadLateStamp(c);
      else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(&drops, CMSG_DATA(c), sizeof(drops));
    }
    (rtcp_sock ? rtcp_kernel_drops : kernel_drops) = drops;
    if (h.msg_flags & MSG_TRUNC) {
      truncated++;
      return;
    }
    int64_t rx_ns = 0;
    if (have & kStampSw) rx_ns = ts[0].sec * 1000000000LL + ts[0].nsec;
    else if (late.sec != 0 || late.nsec != 0) rx_ns = late.sec * 1000000000LL + late.nsec;
    const uint8_t* p = bufs.data() + static_cast<size_t>(i) * kPktBuf;
    size_t len = mm.msg_len;
    if (rtcp_sock || rtp::LooksLikeRtcp(p, len)) {
      if (session->OnRtcp(p, len, now) && rtcp_mode != kRtcpOff) {
        memcpy(&rtcp_dest, h.msg_name, sizeof(sockaddr_storage));
        have_sr_dest = true;
      }
      return;
    }
    memcpy(&rtp_src, h.msg_name, sizeof(sockaddr_storage));
    have_rtp_src = true;
    session->OnRtp(p, len, rx_ns, now);
  }

  bool RtcpDest(sockaddr_storage* out) {
    if (have_sr_dest) {
      *out = rtcp_dest;
      return true;
    }
    if (!have_rtp_src) return false;
    *out = rtp_src;
    if (rtcp_mode == kRtcpPort) {
      // No SR yet: RFC 3550's convention, RTCP on the RTP port + 1.
      if (out->ss_family == AF_INET) {
        auto* s = reinterpret_cast<sockaddr_in*>(out);
        s->sin_port = htons(static_cast<uint16_t>(ntohs(s->sin_port) + 1));
      } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(out);
        s->sin6_port = htons(static_cast<uint16_t>(ntohs(s->sin6_port) + 1));
      }
    }
    return true;
  }

  bool SendRtcp(const uint8_t* p, size_t n) {
    sockaddr_storage dst;
    if (n == 0 || !RtcpDest(&dst)) return false;
    int sock = rtcp_mode == kRtcpPort && rtcp_fd.valid() ? rtcp_fd.get() : fd.get();
    if (sendto(sock, p, n, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&dst), SockaddrLen(dst)) < 0) {
      rtcp_send_errors++;
      return false;
    }
    return true;
  }

  // Sends what RTCP is due, then arms the timer for the next piece of work.
  void AfterIo(int64_t now) {
    if (kf_mode != kKfOff && session->keyframe_wanted() && session->has_source() && now - last_kf >= kf_interval) {
      size_t n = kf_mode == kKfFir ? session->BuildFir(out, sizeof(out)) : session->BuildPli(out, sizeof(out));
      if (SendRtcp(out, n)) (kf_mode == kKfFir ? fir_sent : pli_sent)++;
      session->clear_keyframe_wanted();
      last_kf = now;
    }
    if (rtcp_mode != kRtcpOff && session->has_source() && now >= next_rr) {
      size_t n = session->BuildReceiverReport(out, sizeof(out), now);
      if (SendRtcp(out, n)) rr_sent++;
      next_rr = now + rr_interval;
    }
    int64_t when = session->NextDeadline();
    if (rtcp_mode != kRtcpOff && session->has_source()) when = std::min(when, next_rr);
    if (when != armed) {
      armed = when;
      itimerspec its{};
      if (when != kNever) {
        int64_t w = std::max<int64_t>(when, 1);
        its.it_value.tv_sec = static_cast<time_t>(w / 1000000000LL);
        its.it_value.tv_nsec = static_cast<long>(w % 1000000000LL);
      }
      timerfd_settime(timer_fd.get(), TFD_TIMER_ABSTIME, &its, nullptr);
    }
  }

  void OnFrame(const rtp::Frame& f) override {
    uint32_t dh = data_head.load(std::memory_order_relaxed);
    uint32_t rh = rec_head.load(std::memory_order_relaxed);
    uint32_t dfree = data_cap - (dh - data_tail.load(std::memory_order_acquire));
    uint32_t rfree = rec_cap - (rh - rec_tail.load(std::memory_order_acquire));
    uint32_t off = dh & (data_cap - 1);
    uint64_t size = f.size;
    uint64_t skip = off + size > data_cap ? data_cap - off : 0;
    if (rfree == 0 || size > data_cap || skip + size > dfree) {
      frames_dropped++;
      return;
    }
    uint32_t at = static_cast<uint32_t>((off + skip) & (data_cap - 1));
    if (size) memcpy(data + at, f.data, size);
    uint32_t end = dh + static_cast<uint32_t>(skip + size);
    double* r = rec + static_cast<size_t>(rh & (rec_cap - 1)) * kRtpRecWords;
    r[kRtpRecOffset] = at;
    r[kRtpRecLength] = static_cast<double>(size);
    r[kRtpRecRtpTs] = f.rtp_ts;
    r[kRtpRecFlags] = f.flags;
    r[kRtpRecSsrc] = f.ssrc;
    r[kRtpRecFirstSeq] = static_cast<double>(f.first_seq - (1ULL << 16));
    r[kRtpRecLastSeq] = static_cast<double>(f.last_seq - (1ULL << 16));
    r[kRtpRecPackets] = f.packets;
    r[kRtpRecRxFirstSec] = static_cast<double>(f.rx_first_ns / 1000000000LL);
    r[kRtpRecRxFirstNsec] = static_cast<double>(f.rx_first_ns % 1000000000LL);
    r[kRtpRecRxLastSec] = static_cast<double>(f.rx_last_ns / 1000000000LL);
    r[kRtpRecRxLastNsec] = static_cast<double>(f.rx_last_ns % 1000000000LL);
    int64_t cs = f.capture_ns / 1000000000LL, cn = f.capture_ns % 1000000000LL;
    if (cn < 0) cs -= 1, cn += 1000000000LL;
    r[kRtpRecCapSec] = static_cast<double>(cs);
    r[kRtpRecCapNsec] = static_cast<double>(cn);
    r[kRtpRecSpsOff] = f.sps_off;
    r[kRtpRecSpsLen] = f.sps_len;
    r[kRtpRecPpsOff] = f.pps_off;
    r[kRtpRecPpsLen] = f.pps_len;
    r[kRtpRecVpsOff] = f.vps_off;
    r[kRtpRecVpsLen] = f.vps_len;
    r[kRtpRecDataEnd] = end;
    r[kRtpRecNRanges] = f.nranges;
    for (unsigned k = 0; k < f.nranges && k < rtp::kMaxRanges; k++) {
      r[kRtpRecRanges + 2 * k] = static_cast<double>(f.ranges[k].first - (1ULL << 16));
      r[kRtpRecRanges + 2 * k + 1] = static_cast<double>(f.ranges[k].last - (1ULL << 16));
    }
    data_head.store(end, std::memory_order_release);
    rec_head.store(rh + 1, std::memory_order_release);
    if (!rx_scheduled.exchange(true) && !js_thread) reactor->Wake(id, kWakeRx);
  }
};

// A libuv poll handle on one of the receiver's descriptors (JavaScript-thread
// mode). Heap-allocated: libuv owns it from uv_close() until its close
// callback, which may run after the receiver is gone (owner is then null).
struct RtpPoll {
  uv_poll_s* h = nullptr;  // uv_handle_size(UV_POLL) bytes, data = this
  RtpReceiver* owner = nullptr;
  int which = 0;
};

// The RTCP socket and the timer register as their own sources and forward to
// the receiver under its lock.
struct RtpFwd : IoSource {
  std::shared_ptr<RtpRx> rx;
  int which;
  RtpFwd(std::shared_ptr<RtpRx> r, int w) : rx(std::move(r)), which(w) {}
  void OnIo(uint32_t events) override {
    std::lock_guard<std::mutex> lk(rx->io_mu);
    if (!rx->closed) rx->OnFd(which, events);
  }
  void Abandon() override {
    std::lock_guard<std::mutex> lk(rx->io_mu);
    rx->Abandon();
  }
};

// ---------------------------------------------------------------------------

Napi::Function RtpReceiver::Init(Napi::Env env) {
  return DefineClass(env, "RtpReceiver",
                     {
                         InstanceMethod<&RtpReceiver::Bind>("bind"),
                         InstanceMethod<&RtpReceiver::BindRtcp>("bindRtcp"),
                         InstanceMethod<&RtpReceiver::Join>("join"),
                         InstanceMethod<&RtpReceiver::SetRcvBuf>("setRcvBuf"),
                         InstanceMethod<&RtpReceiver::LocalPorts>("localPorts"),
                         InstanceMethod<&RtpReceiver::Start>("start"),
                         InstanceMethod<&RtpReceiver::RequestKeyframe>("requestKeyframe"),
                         InstanceMethod<&RtpReceiver::SetBusyPoll>("setBusyPoll"),
                         InstanceMethod<&RtpReceiver::Stats>("stats"),
                         InstanceMethod<&RtpReceiver::Ref>("ref"),
                         InstanceMethod<&RtpReceiver::Unref>("unref"),
                         InstanceMethod<&RtpReceiver::Close>("close"),
                     });
}

static int NewUdpSocket(int family) {
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

// new RtpReceiver(family: 4 | 6, onFrames(start, count), onError(errno))
RtpReceiver::RtpReceiver(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RtpReceiver>(info) {
  Napi::Env env = info.Env();
  family_ = info[0].As<Napi::Number>().Int32Value();
  on_frames_ = Napi::Persistent(info[1].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[2].As<Napi::Function>());
  reactor_ = env.GetInstanceData<OnbusAddon>()->reactor(env);
  rx_ = std::make_shared<RtpRx>();
  rx_->reactor = reactor_;
  int fd = NewUdpSocket(family_);
  if (fd < 0) {
    Napi::Error e = Napi::Error::New(env, strerror(-fd));
    e.Set("errno", Napi::Number::New(env, fd));
    e.Set("syscall", Napi::String::New(env, "socket"));
    e.ThrowAsJavaScriptException();
    closed_ = true;
    return;
  }
  rx_->fd.Reset(fd);
  if (!reactor_) {
    Napi::Error::New(env, "onbus: could not start the I/O reactor").ThrowAsJavaScriptException();
    closed_ = true;
  }
}

RtpReceiver::~RtpReceiver() { DoClose(); }

void RtpReceiver::DoClose() {
  bool registered = ids_[0] || ids_[1] || ids_[2] || polls_[0] || polls_[1] || polls_[2];
  if (closed_ && !registered) return;
  closed_ = true;
  ClosePolls();  // before the descriptors close
  if (reactor_) {
    if (ids_[0]) reactor_->Remove(ids_[0], rx_->fd.get());
    if (ids_[1]) reactor_->Remove(ids_[1], rx_->rtcp_fd.get());
    if (ids_[2]) reactor_->Remove(ids_[2], rx_->timer_fd.get());
  }
  loop_ref_.Unref(reactor_.get());
  ids_[0] = ids_[1] = ids_[2] = 0;
  if (rx_) {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->closed = true;
    rx_->Abandon();
  }
  data_ref_.Reset();
  rec_ref_.Reset();
}

static void OnRtpPoll(uv_poll_s* h, int status, int /*events*/) {
  auto* p = static_cast<RtpPoll*>(uv_handle_get_data(UvHandle(h)));
  if (p->owner) p->owner->OnPoll(p->which, status);
}

int RtpReceiver::StartPolls(Napi::Env env) {
  uv_loop_s* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return -EINVAL;
  async_ = std::make_unique<Napi::AsyncContext>(env, "onbus.RtpReceiver", Value());
  int fds[3] = {rx_->fd.get(), rx_->rtcp_fd.get(), rx_->timer_fd.get()};
  for (int i = 0; i < 3; i++) {
    if (fds[i] < 0) continue;
    auto* p = new RtpPoll{};
    p->owner = this;
    p->which = i;
    p->h = static_cast<uv_poll_s*>(calloc(1, uv_handle_size(kUvPollType)));
    int r = p->h ? uv_poll_init(loop, p->h, fds[i]) : -ENOMEM;
    if (r != 0) {
      free(p->h);
      delete p;
      return r;
    }
    uv_handle_set_data(UvHandle(p->h), p);
    polls_[i] = p;
    r = uv_poll_start(p->h, kUvReadable, OnRtpPoll);
    if (r != 0) return r;
    if (!poll_refed_) uv_unref(UvHandle(p->h));
  }
  return 0;
}

void RtpReceiver::ClosePolls() {
  for (RtpPoll*& p : polls_) {
    if (!p) continue;
    uv_poll_stop(p->h);
    p->owner = nullptr;
    uv_close(UvHandle(p->h), [](uv_handle_s* h) {
      delete static_cast<RtpPoll*>(uv_handle_get_data(h));
      free(h);
    });
    p = nullptr;
  }
}

// JavaScript-thread mode: read and depacketise what is ready, then hand the
// finished frames (and errors) to JavaScript before returning to libuv.
void RtpReceiver::OnPoll(int which, int status) {
  if (closed_) return;
  std::shared_ptr<RtpRx> hold = rx_;  // the handler may close us
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    if (rx_->closed) return;
    rx_->OnFd(which, status < 0 ? EPOLLERR : EPOLLIN);
  }
  bool frames = rx_->rx_scheduled.load(std::memory_order_relaxed);
  bool errs = rx_->err_scheduled.load(std::memory_order_relaxed);
  if (!frames && !errs) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::CallbackScope cb(env, *async_);  // nextTicks and microtasks run after, as for Node's own sockets
  if (frames) DeliverFrames(env);
  if (errs && !closed_) DeliverErrors(env);
}

#define ONBUS_OPEN_OR_EBADF(env) \
  if (closed_ || !rx_->fd.valid()) return Napi::Number::New(env, -EBADF)

// bind(ip, port, reuseAddr) -> 0 | -errno
Napi::Value RtpReceiver::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_OPEN_OR_EBADF(env);
  sockaddr_storage ss;
  socklen_t len;
  int r = ParseAddress(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(), family_, &ss, &len);
  if (r == 0 && (info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value())) {
    int one = 1;
    setsockopt(rx_->fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (r == 0 && ::bind(rx_->fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) r = -errno;
  return Napi::Number::New(env, r);
}

// bindRtcp(ip, port, reuseAddr) -> 0 | -errno: opens the separate RTCP socket.
Napi::Value RtpReceiver::BindRtcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_OPEN_OR_EBADF(env);
  if (rx_->rtcp_fd.valid()) return Napi::Number::New(env, -EALREADY);
  int fd = NewUdpSocket(family_);
  if (fd < 0) return Napi::Number::New(env, fd);
  UniqueFd owned(fd);
  sockaddr_storage ss;
  socklen_t len;
  int r = ParseAddress(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(), family_, &ss, &len);
  if (r == 0 && (info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value())) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (r == 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) r = -errno;
  if (r == 0) rx_->rtcp_fd = std::move(owned);
  return Napi::Number::New(env, r);
}

// join(group, interfaceName, source) -> 0 | -errno, on the RTP (and RTCP) socket.
Napi::Value RtpReceiver::Join(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_OPEN_OR_EBADF(env);
  std::string group = info[0].As<Napi::String>().Utf8Value();
  std::string iface = info[1].As<Napi::String>().Utf8Value();
  std::string source = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  unsigned ifindex = 0;
  if (!iface.empty() && (ifindex = if_nametoindex(iface.c_str())) == 0) return Napi::Number::New(env, -ENODEV);
  int r = 0;
  for (int fd : {rx_->fd.get(), rx_->rtcp_fd.get()})
    if (fd >= 0 && r == 0) r = GroupMembership(fd, family_, true, group, ifindex, source);
  return Napi::Number::New(env, r);
}

Napi::Value RtpReceiver::SetRcvBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_OPEN_OR_EBADF(env);
  int v = info[0].As<Napi::Number>().Int32Value();
  int fd = rx_->fd.get();
  int r = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == 0 ? 0 : -errno;
  if (r != 0) r = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0 ? 0 : -errno;
  return Napi::Number::New(env, r);
}

static int PortOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  int port = 0;
  FormatAddress(reinterpret_cast<sockaddr*>(&ss), &port);
  return port;
}

Napi::Value RtpReceiver::LocalPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, closed_ ? -1 : PortOf(rx_->fd.get())));
  a.Set(1u, Napi::Number::New(env, closed_ ? -1 : PortOf(rx_->rtcp_fd.get())));
  return a;
}

// start(data: ArrayBuffer (power-of-two size), records: ArrayBuffer, recCap
//       (power of two), config: { codec, payloadType, latencyMs, lengthPrefixed,
//       bufferPackets, maxFrameBytes, rtcp, rrIntervalMs, keyframe,
//       keyframeIntervalMs }) -> 0 | -errno
Napi::Value RtpReceiver::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_OPEN_OR_EBADF(env);
  auto data = info[0].As<Napi::ArrayBuffer>();
  auto rec = info[1].As<Napi::ArrayBuffer>();
  uint32_t rec_cap = info[2].As<Napi::Number>().Uint32Value();
  Napi::Object c = info[3].As<Napi::Object>();
  auto num = [&](const char* k, double d) {
    Napi::Value v;
    if (!c.Get(k).UnwrapTo(&v)) return d;
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d;
  };
  auto pow2 = [](uint64_t x) { return x != 0 && (x & (x - 1)) == 0; };
  size_t data_cap = data.ByteLength();
  if (!pow2(data_cap) || data_cap > (1u << 31) || !pow2(rec_cap) || rec.ByteLength() < static_cast<size_t>(rec_cap) * kRtpRecWords * 8)
    return Napi::Number::New(env, -EINVAL);
  if (rx_->started) return Napi::Number::New(env, -EALREADY);
  js_thread_ = num("jsThread", 0) != 0;

  rtp::SessionConfig cfg;
  cfg.codec = num("codec", 0) == 1 ? rtp::Codec::kH265 : rtp::Codec::kH264;
  cfg.payload_type = static_cast<int>(num("payloadType", -1));
  cfg.latency_ns = static_cast<int64_t>(num("latencyMs", 50) * 1e6);
  cfg.length_prefixed = num("lengthPrefixed", 0) != 0;
  cfg.buffer_packets = static_cast<uint32_t>(num("bufferPackets", 2048));
  cfg.max_frame_bytes = static_cast<uint32_t>(std::min<double>(num("maxFrameBytes", 16 << 20), static_cast<double>(data_cap)));

  // Touch the ring now: its pages are then resident before the first frame,
  // so no page fault (and kernel page clearing) lands on the receive path.
  // The cost moves to start() (~20 ms for the default 32 MiB on a loaded
  // 2-core x86 test machine) and the ring is resident from the start.
  memset(data.Data(), 0, data_cap);
  UniqueFd tfd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!tfd.valid()) return Napi::Number::New(env, -errno);
  // Kernel stamps and drop counts are best effort: a kernel without them
  // still receives (frames then carry no rx times).
  EnableRxTimestamps(rx_->fd.get());
  EnableRxDropCount(rx_->fd.get());
  if (rx_->rtcp_fd.valid()) EnableRxDropCount(rx_->rtcp_fd.get());

  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->session = std::make_unique<rtp::RtpSession>(cfg, rx_.get());
    std::random_device rd;
    rx_->session->set_own_ssrc(rd());
    rx_->rtcp_mode = static_cast<int>(num("rtcp", 0));
    rx_->kf_mode = static_cast<int>(num("keyframe", 0));
    rx_->rr_interval = static_cast<int64_t>(num("rrIntervalMs", 1000) * 1e6);
    rx_->kf_interval = static_cast<int64_t>(num("keyframeIntervalMs", 500) * 1e6);
    rx_->data = static_cast<uint8_t*>(data.Data());
    rx_->rec = static_cast<double*>(rec.Data());
    rx_->data_cap = static_cast<uint32_t>(data_cap);
    rx_->rec_cap = rec_cap;
    rx_->timer_fd = std::move(tfd);
    rx_->js_thread = js_thread_;
    rx_->started = true;
  }
  data_ref_ = Napi::Persistent(data);
  rec_ref_ = Napi::Persistent(rec);
  if (js_thread_) return Napi::Number::New(env, StartPolls(env));

  int64_t id = reactor_->Add(rx_->fd.get(), EPOLLIN, rx_);
  if (id < 0) return Napi::Number::New(env, static_cast<double>(id));
  ids_[0] = static_cast<uint32_t>(id);
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->id = ids_[0];
  }
  reactor_->SetTarget(ids_[0], this);
  if (rx_->rtcp_fd.valid()) {
    id = reactor_->Add(rx_->rtcp_fd.get(), EPOLLIN, std::make_shared<RtpFwd>(rx_, 1));
    if (id < 0) return Napi::Number::New(env, static_cast<double>(id));
    ids_[1] = static_cast<uint32_t>(id);
  }
  id = reactor_->Add(rx_->timer_fd.get(), EPOLLIN, std::make_shared<RtpFwd>(rx_, 2));
  if (id < 0) return Napi::Number::New(env, static_cast<double>(id));
  ids_[2] = static_cast<uint32_t>(id);
  loop_ref_.Ref(reactor_.get());
  return Napi::Number::New(env, 0);
}

// requestKeyframe(): asks the sender for a keyframe now (PLI or FIR as
// configured, PLI when keyframe requests are off), ignoring the rate limit.
Napi::Value RtpReceiver::RequestKeyframe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_OPEN_OR_EBADF(env);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  if (!rx_->started || !rx_->session->has_source()) return Napi::Boolean::New(env, false);
  bool fir = rx_->kf_mode == kKfFir;
  size_t n = fir ? rx_->session->BuildFir(rx_->out, sizeof(rx_->out)) : rx_->session->BuildPli(rx_->out, sizeof(rx_->out));
  bool ok = rx_->SendRtcp(rx_->out, n);
  if (ok) (fir ? rx_->fir_sent : rx_->pli_sent)++;
  return Napi::Boolean::New(env, ok);
}

// setBusyPoll(us): the reactor spins this long before sleeping (0 = off).
Napi::Value RtpReceiver::SetBusyPoll(const Napi::CallbackInfo& info) {
  if (!closed_ && reactor_ && ids_[0] != 0) reactor_->RequestSpin(ids_[0], info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// stats(out: Float64Array(32))
Napi::Value RtpReceiver::Stats(const Napi::CallbackInfo& info) {
  double* o = info[0].As<Napi::Float64Array>().Data();
  std::fill(o, o + 32, 0.0);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  RtpRx& x = *rx_;
  uint32_t drops = x.kernel_drops;
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t mlen = sizeof(mem);
  if (!closed_ && x.fd.valid() && getsockopt(x.fd.get(), SOL_SOCKET, SO_MEMINFO, mem, &mlen) == 0 &&
      mlen > SK_MEMINFO_DROPS * sizeof(uint32_t))
    drops = std::max(drops, mem[SK_MEMINFO_DROPS]);
  o[20] = drops + x.rtcp_kernel_drops;
  o[21] = static_cast<double>(x.frames_dropped);
  o[22] = static_cast<double>(x.truncated);
  o[23] = static_cast<double>(x.rx_errors);
  o[24] = static_cast<double>(x.rr_sent);
  o[25] = static_cast<double>(x.pli_sent);
  o[26] = static_cast<double>(x.fir_sent);
  o[27] = static_cast<double>(x.rtcp_send_errors);
  o[28] = static_cast<double>(x.datagrams);
  if (!x.session) return info.Env().Undefined();
  const rtp::RtpStats& s = x.session->stats();
  o[0] = static_cast<double>(s.packets);
  o[1] = static_cast<double>(s.bytes);
  o[2] = static_cast<double>(s.lost);
  o[3] = static_cast<double>(s.late);
  o[4] = static_cast<double>(s.duplicates);
  o[5] = static_cast<double>(s.frames_complete);
  o[6] = static_cast<double>(s.frames_incomplete);
  o[7] = static_cast<double>(s.malformed);
  o[8] = static_cast<double>(s.wrong_pt);
  o[9] = static_cast<double>(s.foreign_ssrc);
  o[10] = static_cast<double>(s.ssrc_changes);
  o[11] = static_cast<double>(s.depay_errors);
  o[12] = static_cast<double>(s.unsupported_nal);
  o[13] = static_cast<double>(s.oversize_frames);
  o[14] = static_cast<double>(s.too_large_packets);
  o[15] = static_cast<double>(s.resets);
  o[16] = static_cast<double>(s.rtcp_packets);
  o[17] = static_cast<double>(s.rtcp_sr);
  o[18] = static_cast<double>(s.rtcp_malformed);
  o[19] = static_cast<double>(s.keyframes);
  o[29] = x.session->jitter();
  o[30] = static_cast<double>(x.session->buffered());
  o[31] = static_cast<double>(x.session->source_ssrc());
  return info.Env().Undefined();
}

Napi::Value RtpReceiver::Ref(const Napi::CallbackInfo& info) {
  poll_refed_ = true;
  for (RtpPoll* p : polls_)
    if (p) uv_ref(UvHandle(p->h));
  if (!closed_ && ids_[0]) loop_ref_.Ref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value RtpReceiver::Unref(const Napi::CallbackInfo& info) {
  poll_refed_ = false;
  for (RtpPoll* p : polls_)
    if (p) uv_unref(UvHandle(p->h));
  loop_ref_.Unref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value RtpReceiver::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

void RtpReceiver::OnWake(Napi::Env env, uint32_t kind) {
  if (closed_) return;
  Napi::HandleScope scope(env);
  if (kind == kWakeRx) DeliverFrames(env);
  else if (kind == kWakeError) DeliverErrors(env);
}

void RtpReceiver::DeliverFrames(Napi::Env env) {
  RtpRx& x = *rx_;
  x.rx_scheduled.store(false);
  uint32_t head = x.rec_head.load(std::memory_order_acquire);
  uint32_t tail = x.rec_tail.load(std::memory_order_relaxed);
  if (head == tail || in_call_) return;
  std::shared_ptr<RtpRx> hold = rx_;  // the handler may close us
  uint32_t data_end = static_cast<uint32_t>(x.rec[static_cast<size_t>((head - 1) & (x.rec_cap - 1)) * kRtpRecWords + kRtpRecDataEnd]);
  in_call_ = true;
  CallReporting(env, on_frames_, {Napi::Number::New(env, tail & (x.rec_cap - 1)), Napi::Number::New(env, head - tail)});
  in_call_ = false;
  x.data_tail.store(data_end, std::memory_order_release);
  x.rec_tail.store(head, std::memory_order_release);
}

void RtpReceiver::DeliverErrors(Napi::Env env) {
  std::vector<int> errors;
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->err_scheduled.store(false);
    errors.swap(rx_->errors);
  }
  for (int e : errors) {
    if (closed_) return;
    CallReporting(env, on_error_, {Napi::Number::New(env, -e)});
  }
}

}  // namespace onbus
