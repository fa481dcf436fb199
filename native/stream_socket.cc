#include "stream_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>

#include <algorithm>
#include <string>

#include "addon.h"
#include "stream_checksum.h"
#include "util/call_js.h"
#include "util/clock.h"
#include "util/rx_stamps.h"
#include "util/sockaddr.h"

#ifndef TCP_USER_TIMEOUT
#define TCP_USER_TIMEOUT 18
#endif

namespace onbus {

namespace {

constexpr unsigned kRxBudget = 16;           // reads per wake-up: one busy link cannot starve the others
constexpr uint32_t kMaxRead = 1u << 20;      // bytes per read() at most
constexpr size_t kCtrlSize = 128;            // one timestamping cmsg (+ SO_TIMESTAMPNS)
constexpr unsigned kTxMaxIov = IOV_MAX;      // iovecs per writev
constexpr unsigned kTxMaxMsgs = 64;          // seqpacket messages per sendmmsg

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : -errno;
}
int GetInt(int fd, int level, int name, int* value) {
  socklen_t len = sizeof(*value);
  return getsockopt(fd, level, name, value, &len) == 0 ? 0 : -errno;
}

bool IsSocketKind(int kind) { return kind >= kStreamTcp4 && kind <= kStreamSeqpacket; }

// Reads a kernel receive stamp from SCM_TIMESTAMPING (software, slot 0) or
// SCM_TIMESTAMPNS; false if the control data has none.
bool ReadStamp(msghdr* h, KernelTs64* out) {
  bool got = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (IsStampCmsg(c)) {
      KernelTs64 ts[3] = {};
      if (ReadStamps(c, ts) & kStampSw) {
        *out = ts[0];
        got = true;
      }
    } else if (!got && IsLateStampCmsg(c)) {  // SO_TIMESTAMPING's value wins
      KernelTs64 t = ReadLateStamp(c);
      if (t.sec != 0 || t.nsec != 0) {
        *out = t;
        got = true;
      }
    }
  }
  return got;
}

// Moves a ring index forward to `v` unless it is already there or past it
// (modulo 2^32): both threads may advance the byte tail.
void AdvanceTo(std::atomic<uint32_t>& a, uint32_t v) {
  uint32_t cur = a.load(std::memory_order_relaxed);
  // seq_cst: the pause protocol needs "advance the tail, then read paused".
  while (static_cast<int32_t>(v - cur) > 0 && !a.compare_exchange_weak(cur, v, std::memory_order_seq_cst)) {
  }
}

struct StreamEvent {
  uint32_t kind;
  double a;
  double b;
};

}  // namespace

// The part of the socket the I/O thread touches; guarded by io_mu except the
// ring indices (single-writer atomics) and the counters.
struct StreamRx : IoSource {
  UniqueFd fd;
  std::shared_ptr<Reactor> reactor;
  uint32_t id = 0;
  int kind = 0;
  bool armed = false;       // registered events are live (EPOLLONESHOT)
  bool receiving = false;   // StartReceive() done and not at end of stream
  bool connecting = false;  // a non-blocking connect is in progress
  bool connected = false;   // reading makes sense (an unconnected TCP socket polls as EPOLLHUP)
  bool want_write = false;
  std::atomic<bool> paused{false};

  uint8_t* ring = nullptr;
  uint32_t* meta = nullptr;
  uint32_t ring_size = 0, meta_cap = 0, max_frame = 0, min_read = 0;
  // I/O-thread positions (absolute, modulo 2^32).
  uint32_t head = 0;           // bytes written into the ring (including skipped space)
  uint32_t fstart = 0;         // start of the partial frame not yet framed
  uint32_t meta_head_io = 0;   // records written
  uint64_t skip_remaining = 0; // bytes of an oversize frame still to drop as they arrive
  // (record head << 32) | release point, published together.
  std::atomic<uint64_t> published{0};
  std::atomic<uint32_t> byte_tail{0}, meta_tail{0};
  std::unique_ptr<Framer> framer;
  uint32_t last_flags = kRecReadStamp;  // stamp of the last read (for bytes framed later)
  KernelTs64 last_ts{0, 0};

  std::atomic<bool> rx_scheduled{false}, write_scheduled{false}, ev_scheduled{false};
  std::vector<StreamEvent> events;  // io_mu
  StreamCounters counters;
  alignas(cmsghdr) char ctrl[kCtrlSize];

  bool Framed() const { return framer != nullptr; }
  bool Seqpacket() const { return kind == kStreamSeqpacket; }

  uint32_t WantedLocked() const {
    uint32_t ev = 0;
    if (connecting) return EPOLLOUT;
    if (receiving && connected && !paused.load()) ev |= EPOLLIN | EPOLLRDHUP;
    if (want_write) ev |= EPOLLOUT;
    return ev;
  }
  // Re-arms the one-shot registration with what is still wanted; leaves it
  // disarmed when nothing is (so EPOLLHUP cannot spin the loop).
  void ArmLocked() {
    if (id == 0 || !fd.valid() || closed) return;
    uint32_t ev = WantedLocked();
    if (ev == 0) {
      armed = false;
      return;
    }
    armed = reactor->Modify(id, fd.get(), ev | EPOLLONESHOT) == 0;
  }

  void Abandon() override { fd.Reset(); }

  void PushEvent(uint32_t k, double a, double b = 0) {
    events.push_back({k, a, b});
    if (!ev_scheduled.exchange(true)) reactor->Wake(id, kWakeError);
  }

  void OnIo(uint32_t ev) override {
    armed = false;
    if (connecting) {
      int err = 0;
      if (GetInt(fd.get(), SOL_SOCKET, SO_ERROR, &err) != 0) err = errno;
      if (err == 0) {
        // No error yet: connected, or a stale event from before connect()
        // (a fresh socket polls as EPOLLHUP) while still in progress.
        sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getpeername(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0 && errno == ENOTCONN) {
          ArmLocked();
          return;
        }
      }
      connecting = false;
      connected = err == 0;
      PushEvent(kEvConnect, -err);
      if (err != 0) return;  // JavaScript closes or retries
    } else {
      if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && receiving && connected) Drain();
      if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && want_write) {
        want_write = false;
        if (!write_scheduled.exchange(true)) reactor->Wake(id, kWakeWritable);
      }
    }
    ArmLocked();
  }

  // Publishes the record head and the release point together.
  void Publish() {
    uint64_t v = (static_cast<uint64_t>(meta_head_io) << 32) | fstart;
    published.store(v, std::memory_order_release);
    if (!rx_scheduled.exchange(true)) reactor->Wake(id, kWakeRx);
  }

  void PutRecord(uint32_t abs_off, uint32_t length, uint32_t flags, uint32_t tag, uint32_t payload, uint32_t size,
                 const KernelTs64& ts) {
    uint32_t* r = meta + static_cast<size_t>(meta_head_io & (meta_cap - 1)) * kRecWords;
    r[kRecOffset] = abs_off & (ring_size - 1);
    r[kRecLength] = length;
    r[kRecFlags] = flags;
    r[kRecTag] = tag;
    r[kRecSec] = static_cast<uint32_t>(ts.sec);
    r[kRecNsec] = static_cast<uint32_t>(ts.nsec);
    r[kRecPayload] = payload;
    r[kRecSize] = size;
    meta_head_io++;
    counters.rx_records++;
  }

  bool MetaFull() const { return meta_cap - (meta_head_io - meta_tail.load(std::memory_order_acquire)) == 0; }

  // Frames the bytes in [fstart, head). Returns false if the record ring is
  // full (the rest waits for JavaScript to release records).
  bool Frame(uint32_t flags, const KernelTs64& ts) {
    for (;;) {
      uint32_t avail = head - fstart;
      if (skip_remaining > 0) {
        uint32_t d = static_cast<uint32_t>(std::min<uint64_t>(skip_remaining, avail));
        fstart += d;
        skip_remaining -= d;
        counters.discarded_bytes += d;
        if (skip_remaining > 0) return true;
        continue;
      }
      if (avail == 0) return true;
      if (MetaFull()) return false;
      FrameStep s = framer->Next(ring + (fstart & (ring_size - 1)), avail);
      if (s.kind == FrameStep::kNeedMore) {
        // A framer that keeps asking for more than the room it was promised
        // would stall the link: treat it as an oversize frame.
        if (avail >= max_frame + min_read) {
          s = FrameStep::Discard(avail, kReasonOversize, avail);
        } else {
          return true;
        }
      }
      if (s.kind == FrameStep::kFrame) {
        if (s.size == 0 || s.size > avail || s.length > s.size) {
          s = FrameStep::Discard(1, kReasonBadFrame);  // a framer bug must not stall or overrun
        } else {
          PutRecord(fstart, static_cast<uint32_t>(s.length), flags, s.tag, s.payload_offset,
                    static_cast<uint32_t>(s.size), ts);
          fstart += static_cast<uint32_t>(s.size);
          continue;
        }
      }
      // kDiscard
      uint64_t want = s.size == 0 ? 1 : s.size;
      uint32_t d = static_cast<uint32_t>(std::min<uint64_t>(want, avail));
      fstart += d;
      skip_remaining = want - d;
      counters.discarded_bytes += d;
      switch (s.reason) {
        case kReasonOversize:
          counters.oversize++;
          PushEvent(kEvFrameError, s.reason, static_cast<double>(s.declared));
          break;
        case kReasonBadFrame:
          counters.bad_frames++;
          PushEvent(kEvFrameError, s.reason, static_cast<double>(s.declared));
          break;
        case kReasonGarbage:
          counters.garbage_bytes += d;
          break;
        default:
          break;
      }
    }
  }

  // Ring full (bytes or records): pause, then look again -- JavaScript
  // advances the tails before it reads `paused`, so one of us sees the other.
  bool PauseIfStillFull(uint32_t need_bytes, bool need_record) {
    paused.store(true);
    uint32_t free_bytes = ring_size - (head - byte_tail.load());
    bool meta_full = meta_cap - (meta_head_io - meta_tail.load()) == 0;
    if (free_bytes < need_bytes || (need_record && meta_full)) {
      counters.rx_pauses++;
      return true;
    }
    paused.store(false);
    return false;
  }

  // JavaScript released space after a pause: frame what a full record ring
  // left unframed (no new socket data may ever come to trigger it), re-arm.
  void ResumeLocked() {
    paused.store(false);
    if (Framed() && head != fstart) {
      uint32_t m0 = meta_head_io, f0 = fstart;
      bool ok = Frame(last_flags, last_ts);
      if (meta_head_io != m0 || fstart != f0) Publish();
      if (!ok) paused.store(true);  // the next delivery resumes again
    }
    ArmLocked();
  }

  void EndOfStream(int err) {
    receiving = false;
    if (err == 0) PushEvent(kEvEnd, 0);
    else PushEvent(kEvError, -err);
  }

  void Drain() {
    // 64-bit even on 32-bit ARM (util/clock.h): these stamps outlive 2038.
    Time64 now = ClockGet(CLOCK_REALTIME);
    KernelTs64 wake_ts{now.sec, now.nsec};
    const uint32_t mask = ring_size - 1;
    for (unsigned call = 0; call < kRxBudget; call++) {
      if (MetaFull() && PauseIfStillFull(0, true)) return;
      uint32_t tail = byte_tail.load(std::memory_order_acquire);
      uint32_t pos = head & mask;
      if (pos != 0 && tail == head && fstart == head && skip_remaining == 0) {
        // JavaScript has released everything: start again at the ring's
        // start, so that reads keep landing in the same (cache-hot) bytes
        // instead of walking the whole ring, as a C loop reusing one buffer
        // would. The skipped space holds nothing: release it here (the tail
        // only ever moves forward, whoever moves it).
        head += ring_size - pos;
        fstart = head;
        pos = 0;
        AdvanceTo(byte_tail, head);
        tail = head;
        counters.rx_rewinds++;
      }
      if (Framed() || Seqpacket()) {
        // Keep a whole maximum frame's room after the frame start: when the
        // ring's end is closer, move the partial frame to the start.
        uint32_t fpos = fstart & mask;
        uint32_t partial = head - fstart;
        if (ring_size - fpos < max_frame + min_read && !(fpos == 0 && partial > 0)) {
          uint32_t skip = (ring_size - pos) & mask;
          uint32_t after = head + skip + partial;
          if (static_cast<uint64_t>(after - tail) + min_read > ring_size) {
            if (PauseIfStillFull(after - head + min_read, false)) return;
            continue;
          }
          if (partial > 0) memmove(ring, ring + fpos, partial);
          counters.rx_wraps++;
          counters.rx_wrap_bytes += partial;
          fstart = head + skip;
          head = after;
          pos = head & mask;
          if (partial == 0) Publish();  // the skipped space is releasable
        }
      }
      uint32_t free_bytes = ring_size - (head - tail);
      uint32_t contig = std::min(ring_size - pos, free_bytes);
      uint32_t need = Seqpacket() ? max_frame : 1;
      if (contig < need) {
        // Free space may sit before the ring's end only: either way wait
        // for JavaScript to release (raw links read into any contiguous byte).
        if (PauseIfStillFull(free_bytes + 1, false)) return;
        continue;
      }
      uint32_t want = std::min(contig, kMaxRead);
      if (Seqpacket()) want = std::min(want, max_frame);
      ssize_t n;
      KernelTs64 ts = wake_ts;
      uint32_t flags = kRecReadStamp;
      if (kind == kStreamTty) {
        n = read(fd.get(), ring + pos, want);
      } else {
        iovec iov{ring + pos, want};
        msghdr h{};
        h.msg_iov = &iov;
        h.msg_iovlen = 1;
        h.msg_control = ctrl;
        h.msg_controllen = sizeof(ctrl);
        n = recvmsg(fd.get(), &h, MSG_DONTWAIT | (Seqpacket() ? MSG_TRUNC : 0));
        if (n > 0 && ReadStamp(&h, &ts)) {
          flags = kRecKernelStamp;
          counters.kernel_stamps++;
        }
        if (n > 0 && Seqpacket() && static_cast<uint32_t>(n) > want) flags |= kRecTruncated;
      }
      if (n < 0) {
        int err = errno;
        if (err == EINTR) {
          call--;
          continue;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        // A tty whose other side went away (USB unplugged, PTY master closed)
        // reads EIO: that is the end of this stream, not a fault.
        EndOfStream(kind == kStreamTty && err == EIO ? 0 : err);
        return;
      }
      if (n == 0) {
        EndOfStream(0);
        return;
      }
      counters.rx_reads++;
      if (Seqpacket()) {
        uint32_t len = std::min(static_cast<uint32_t>(n), want);
        counters.rx_bytes += len;
        PutRecord(head, len, flags, 0, 0, static_cast<uint32_t>(n), ts);
        head += len;
        fstart = head;
        Publish();
        continue;  // one message per read: keep going until EAGAIN
      }
      uint32_t got = static_cast<uint32_t>(n);
      counters.rx_bytes += got;
      if (!Framed()) {
        PutRecord(head, got, flags, 0, 0, got, ts);
        head += got;
        fstart = head;
      } else {
        head += got;
        last_flags = flags;
        last_ts = ts;
        Frame(flags, ts);  // a full record ring is handled at the top of the loop
      }
      Publish();
      if (got < want) return;  // the socket had less than asked: drained
    }
  }
};

// ---------------------------------------------------------------------------

Napi::Function StreamSocket::Init(Napi::Env env) {
  return DefineClass(env, "StreamSocket",
                     {
                         InstanceMethod<&StreamSocket::Open>("open"),
                         InstanceMethod<&StreamSocket::Adopt>("adopt"),
                         InstanceMethod<&StreamSocket::Bind>("bind"),
                         InstanceMethod<&StreamSocket::Connect>("connect"),
                         InstanceMethod<&StreamSocket::ConnectUnix>("connectUnix"),
                         InstanceMethod<&StreamSocket::SetOption>("setOption"),
                         InstanceMethod<&StreamSocket::GetOption>("getOption"),
                         InstanceMethod<&StreamSocket::SetFramer>("setFramer"),
                         InstanceMethod<&StreamSocket::StartReceive>("startReceive"),
                         InstanceMethod<&StreamSocket::Write>("write"),
                         InstanceMethod<&StreamSocket::SendFile>("sendFile"),
                         InstanceMethod<&StreamSocket::WatchWritable>("watchWritable"),
                         InstanceMethod<&StreamSocket::Shutdown>("shutdown"),
                         InstanceMethod<&StreamSocket::LocalAddress>("localAddress"),
                         InstanceMethod<&StreamSocket::RemoteAddress>("remoteAddress"),
                         InstanceMethod<&StreamSocket::PeerCred>("peerCred"),
                         InstanceMethod<&StreamSocket::Stats>("stats"),
                         InstanceMethod<&StreamSocket::Ref>("ref"),
                         InstanceMethod<&StreamSocket::Unref>("unref"),
                         InstanceMethod<&StreamSocket::Fd>("fd"),
                         InstanceMethod<&StreamSocket::Close>("close"),
                         InstanceMethod<&StreamSocket::SetBusyPoll>("setBusyPoll"),
                         StaticMethod<&StreamSocket::Crc32cOf>("crc32c"),
                         StaticMethod<&StreamSocket::MakeFramer>("makeFramer"),
                     });
}

// StreamSocket.crc32c(data: Uint8Array, seed = 0) -> uint32
Napi::Value StreamSocket::Crc32cOf(const Napi::CallbackInfo& info) {
  auto u = info[0].As<Napi::Uint8Array>();
  uint32_t seed = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(info.Env(), Crc32c(seed, u.Data(), u.ByteLength()));
}

// setBusyPoll(us): spin the I/O thread this long before sleeping (latency-
// bound links such as a flight controller's UART; costs a core while on).
Napi::Value StreamSocket::SetBusyPoll(const Napi::CallbackInfo& info) {
  if (!closed_ && reactor_ && id_ != 0) reactor_->RequestSpin(id_, info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// new StreamSocket(onBatch(start, count), onEvent(kind, a, b))
StreamSocket::StreamSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamSocket>(info) {
  Napi::Env env = info.Env();
  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_event_ = Napi::Persistent(info[1].As<Napi::Function>());
  reactor_ = env.GetInstanceData<OnbusAddon>()->reactor(env);
  rx_ = std::make_shared<StreamRx>();
  rx_->reactor = reactor_;
  if (!reactor_) Napi::Error::New(env, "onbus: could not start the I/O reactor").ThrowAsJavaScriptException();
}

StreamSocket::~StreamSocket() { DoClose(); }

void StreamSocket::DoClose() {
  if (closed_) return;
  closed_ = true;
  if (reactor_) {
    if (id_ != 0) reactor_->Remove(id_, rx_->fd.get());
  }
  loop_ref_.Unref(reactor_.get());
  id_ = 0;
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->closed = true;
    rx_->fd.Reset();
  }
  ring_ref_.Reset();
  meta_ref_.Reset();
}

// Takes ownership of `fd` and registers it (disarmed) with the reactor.
int StreamSocket::Register(int fd, int kind) {
  if (closed_ || rx_->fd.valid() || !reactor_) {
    ::close(fd);
    return closed_ ? -EBADF : -EISCONN;
  }
  kind_ = kind;
  // Registered under io_mu: an event that fires at once (an unconnected TCP
  // socket polls as EPOLLHUP) finds the id and kind set.
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  rx_->fd.Reset(fd);
  rx_->kind = kind;
  int64_t id = reactor_->Add(fd, EPOLLONESHOT, rx_);
  if (id < 0) return static_cast<int>(id);
  id_ = static_cast<uint32_t>(id);
  rx_->id = id_;
  reactor_->SetTarget(id_, this);
  return 0;
}

#define ONBUS_FD_OR_EBADF(env)                                 \
  int fd = (closed_ || !rx_->fd.valid()) ? -1 : rx_->fd.get(); \
  if (fd < 0) return Napi::Number::New(env, -EBADF)

// open(kind): a fresh socket for connect()
Napi::Value StreamSocket::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kind = info[0].As<Napi::Number>().Int32Value();
  int domain, type = SOCK_STREAM;
  switch (kind) {
    case kStreamTcp4: domain = AF_INET; break;
    case kStreamTcp6: domain = AF_INET6; break;
    case kStreamUnix: domain = AF_UNIX; break;
    case kStreamSeqpacket: domain = AF_UNIX; type = SOCK_SEQPACKET; break;
    default: return Napi::Number::New(env, -EINVAL);
  }
  int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, Register(fd, kind));
}

// adopt(fd, kind, dup): takes ownership of a descriptor (accepted connection),
// or of a duplicate of one that stays owned elsewhere (a serial port opened by
// the `serialport` binding, which keeps its own descriptor for line settings).
Napi::Value StreamSocket::Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int kind = info[1].As<Napi::Number>().Int32Value();
  if (fd < 0 || kind < kStreamTcp4 || kind > kStreamTty) return Napi::Number::New(env, -EINVAL);
  if (info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value()) {
    fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return Napi::Number::New(env, -errno);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int err = errno;
    ::close(fd);
    return Napi::Number::New(env, -err);
  }
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl >= 0) fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
  int r = Register(fd, kind);
  if (r == 0) {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->connected = true;
    rx_->ArmLocked();
  }
  return Napi::Number::New(env, r);
}

static int UnixAddress(const std::string& path, bool abstract, sockaddr_un* sun, socklen_t* len) {
  memset(sun, 0, sizeof(*sun));
  sun->sun_family = AF_UNIX;
  size_t off = abstract ? 1 : 0;
  if (path.size() + off + (abstract ? 0 : 1) > sizeof(sun->sun_path)) return -ENAMETOOLONG;
  memcpy(sun->sun_path + off, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + off + path.size() + (abstract ? 0 : 1));
  return 0;
}

// bind(ip, port) before connect: the local address of a client.
Napi::Value StreamSocket::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss;
  socklen_t len;
  int r = ParseAddress(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                       kind_ == kStreamTcp6 ? 6 : 4, &ss, &len);
  if (r == 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) r = -errno;
  return Napi::Number::New(env, r);
}

// Starts a non-blocking connect. Returns 0 when connected at once, 1 when in
// progress (kEvConnect follows), or -errno.
static int StartConnect(StreamRx* rx, int fd, const sockaddr* sa, socklen_t len) {
  int r;
  do {
    r = ::connect(fd, sa, len);
  } while (r != 0 && errno == EINTR);
  if (r == 0) {
    std::lock_guard<std::mutex> lk(rx->io_mu);
    rx->connected = true;
    rx->ArmLocked();
    return 0;
  }
  // (AF_UNIX answers EAGAIN when the listener's backlog is full: an error.)
  if (errno != EINPROGRESS) return -errno;
  std::lock_guard<std::mutex> lk(rx->io_mu);
  rx->connecting = true;
  rx->ArmLocked();
  return 1;
}

Napi::Value StreamSocket::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss;
  socklen_t len;
  int r = ParseAddress(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                       kind_ == kStreamTcp6 ? 6 : 4, &ss, &len);
  if (r == 0) r = StartConnect(rx_.get(), fd, reinterpret_cast<sockaddr*>(&ss), len);
  return Napi::Number::New(env, r);
}

// connectUnix(path, abstract)
Napi::Value StreamSocket::ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_un sun;
  socklen_t len;
  int r = UnixAddress(info[0].As<Napi::String>().Utf8Value(), info[1].ToBoolean().Unwrap().Value(), &sun, &len);
  if (r == 0) r = StartConnect(rx_.get(), fd, reinterpret_cast<sockaddr*>(&sun), len);
  return Napi::Number::New(env, r);
}

Napi::Value StreamSocket::SetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int v = info[1].As<Napi::Number>().Int32Value();
  int r = -ENOPROTOOPT;
  if (!IsSocketKind(kind_)) return Napi::Number::New(env, -ENOTSOCK);
  if (name == "noDelay") r = SetInt(fd, IPPROTO_TCP, TCP_NODELAY, v);
  else if (name == "keepAlive") r = SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, v);
  else if (name == "keepIdle") r = SetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, v);
  else if (name == "keepInterval") r = SetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, v);
  else if (name == "keepCount") r = SetInt(fd, IPPROTO_TCP, TCP_KEEPCNT, v);
  else if (name == "userTimeout") r = SetInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, v);
  else if (name == "rcvBuf") {
    r = SetInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, v);
    if (r != 0) r = SetInt(fd, SOL_SOCKET, SO_RCVBUF, v);
  } else if (name == "sndBuf") {
    r = SetInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, v);
    if (r != 0) r = SetInt(fd, SOL_SOCKET, SO_SNDBUF, v);
  } else if (name == "reuseAddr") r = SetInt(fd, SOL_SOCKET, SO_REUSEADDR, v);
  else if (name == "timestamping") {
    int flags = v ? (SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE) : 0;
    r = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPING_NEW, flags);
    if (r == -ENOPROTOOPT || r == -EINVAL) r = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPING_OLD, flags);
    // SO_TIMESTAMPNS as well: the kernel stamps data that arrived while it was
    // still switching stamping on, when it is read (see docs/ARCHITECTURE.md).
    if (r == 0) {
      int r2 = SetInt(fd, SOL_SOCKET, SO_TIMESTAMPNS_NEW, v ? 1 : 0);
      if (r2 == -ENOPROTOOPT || r2 == -EINVAL) SetInt(fd, SOL_SOCKET, SO_TIMESTAMPNS_OLD, v ? 1 : 0);
    }
  }
  return Napi::Number::New(env, r);
}

Napi::Value StreamSocket::GetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int v = 0, r = -ENOPROTOOPT;
  if (!IsSocketKind(kind_)) return Napi::Number::New(env, -ENOTSOCK);
  if (name == "noDelay") r = GetInt(fd, IPPROTO_TCP, TCP_NODELAY, &v);
  else if (name == "keepAlive") r = GetInt(fd, SOL_SOCKET, SO_KEEPALIVE, &v);
  else if (name == "keepIdle") r = GetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v);
  else if (name == "keepInterval") r = GetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v);
  else if (name == "keepCount") r = GetInt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v);
  else if (name == "userTimeout") r = GetInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v);
  else if (name == "rcvBuf") r = GetInt(fd, SOL_SOCKET, SO_RCVBUF, &v);
  else if (name == "sndBuf") r = GetInt(fd, SOL_SOCKET, SO_SNDBUF, &v);
  else if (name == "outq") r = ioctl(fd, SIOCOUTQ, &v) == 0 ? 0 : -errno;
  return Napi::Number::New(env, r < 0 ? r : v);
}

// setFramer(spec | external | null). spec: { kind: 'length', lengthSize,
// littleEndian, lengthOffset, adjust, magic?: Uint8Array } or { kind:
// 'delimited', delimiter: Uint8Array, includeDelimiter, skipEmpty }. Must be
// called before startReceive (framing changes mid-stream are not supported).
// Builds a built-in framer from its JavaScript specification (nullptr if the
// specification is not one).
static std::unique_ptr<Framer> FramerFromSpec(Napi::Object o) {
  Napi::Value kv = o.Get("kind").Unwrap();
  if (!kv.IsString()) return nullptr;  // not a specification (a stray object)
  std::string kind = kv.As<Napi::String>().Utf8Value();
  auto num = [&](const char* key, bool* ok) {
    Napi::Value n = o.Get(key).Unwrap();
    if (!n.IsNumber()) *ok = false;
    return n.IsNumber() ? n.As<Napi::Number>().Int64Value() : 0;
  };
  auto bytes = [&](const char* key) {
    std::vector<uint8_t> out;
    Napi::Value b = o.Get(key).Unwrap();
    if (b.IsTypedArray()) {
      auto u = b.As<Napi::Uint8Array>();
      out.assign(u.Data(), u.Data() + u.ByteLength());
    }
    return out;
  };
  if (kind == "length") {
    LengthFramerConfig c;
    bool ok = true;
    int64_t size = num("lengthSize", &ok), offset = num("lengthOffset", &ok);
    c.adjust = num("adjust", &ok);
    c.little_endian = o.Get("littleEndian").Unwrap().ToBoolean().Unwrap().Value();
    c.magic = bytes("magic");
    if (!ok || (size != 1 && size != 2 && size != 4) || offset < 0 || offset > 64 || c.adjust < -1 || c.magic.size() > 8)
      return nullptr;
    c.length_size = static_cast<uint32_t>(size);
    c.length_offset = static_cast<uint32_t>(offset);
    return MakeLengthFramer(c);
  }
  if (kind == "delimited") {
    DelimitedFramerConfig c;
    c.delimiter = bytes("delimiter");
    c.include_delimiter = o.Get("includeDelimiter").Unwrap().ToBoolean().Unwrap().Value();
    c.skip_empty = o.Get("skipEmpty").Unwrap().ToBoolean().Unwrap().Value();
    if (c.delimiter.empty() || c.delimiter.size() > 8) return nullptr;
    return MakeDelimitedFramer(c);
  }
  return nullptr;
}

Napi::Value StreamSocket::SetFramer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_ptr<Framer> f;
  Napi::Value v = info[0];
  if (v.IsExternal()) {
    f = UnwrapFramer(env, v);
    if (!f) return Napi::Number::New(env, -EINVAL);
  } else if (v.IsObject()) {
    f = FramerFromSpec(v.As<Napi::Object>());
    if (!f) return Napi::Number::New(env, -EINVAL);
  }
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  if (rx_->ring != nullptr) return Napi::Number::New(env, -EALREADY);
  rx_->framer = std::move(f);
  return Napi::Number::New(env, 0);
}

// StreamSocket.makeFramer(spec) -> a framer external (WrapFramer), the same
// kind of value another native class hands out for `framing: { type:
// 'custom' }`. Lets a built-in framer travel through the plug-in path.
Napi::Value StreamSocket::MakeFramer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_ptr<Framer> f = info[0].IsObject() ? FramerFromSpec(info[0].As<Napi::Object>()) : nullptr;
  if (!f) return env.Null();
  return WrapFramer(env, std::move(f));
}

// startReceive(ring, meta, metaCap, maxFrame, minRead). Ring size and metaCap
// are powers of two; framed and seqpacket links need ring >= 2*(maxFrame+minRead).
Napi::Value StreamSocket::StartReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  auto ring = info[0].As<Napi::ArrayBuffer>();
  auto meta = info[1].As<Napi::ArrayBuffer>();
  uint32_t meta_cap = info[2].As<Napi::Number>().Uint32Value();
  uint32_t max_frame = info[3].As<Napi::Number>().Uint32Value();
  uint32_t min_read = info[4].As<Napi::Number>().Uint32Value();
  auto pow2 = [](uint64_t x) { return x != 0 && (x & (x - 1)) == 0; };
  uint64_t rsize = ring.ByteLength();
  if (!pow2(rsize) || rsize > (1u << 30) || !pow2(meta_cap) || meta.ByteLength() < static_cast<size_t>(meta_cap) * kRecWords * 4 ||
      max_frame == 0 || min_read == 0)
    return Napi::Number::New(env, -EINVAL);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  if (rx_->ring != nullptr) return Napi::Number::New(env, -EALREADY);
  if ((rx_->framer || kind_ == kStreamSeqpacket) && rsize < 2ull * (max_frame + min_read))
    return Napi::Number::New(env, -EINVAL);
  ring_ref_ = Napi::Persistent(ring);
  meta_ref_ = Napi::Persistent(meta);
  rx_->ring = static_cast<uint8_t*>(ring.Data());
  rx_->meta = static_cast<uint32_t*>(meta.Data());
  rx_->ring_size = static_cast<uint32_t>(rsize);
  rx_->meta_cap = meta_cap;
  rx_->max_frame = max_frame;
  rx_->min_read = min_read;
  if (rx_->framer) rx_->framer->max_frame = max_frame;
  rx_->receiving = true;
  rx_->ArmLocked();
  return Napi::Number::New(env, 0);
}

// write(list: Uint8Array[], index, offset, out: Float64Array(3))
// Gathers list[index] (from byte `offset`) and the buffers after it into one
// writev (IOV_MAX at most). Seqpacket: one message per buffer (sendmmsg),
// never merged. out[0] bytes written, out[1] errno that stopped it (0 when all
// offered went; EAGAIN = kernel buffer full), out[2] buffers completed.
Napi::Value StreamSocket::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double* o = info[3].As<Napi::Float64Array>().Data();
  o[0] = o[1] = o[2] = 0;
  int fd = (closed_ || !rx_->fd.valid()) ? -1 : rx_->fd.get();
  if (fd < 0) {
    o[1] = EBADF;
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t index = info[1].As<Napi::Number>().Uint32Value();
  size_t offset = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  uint32_t n = list.Length();
  if (index >= n) return env.Undefined();
  tx_iov_.clear();
  size_t total = 0;
  uint32_t max = kind_ == kStreamSeqpacket ? kTxMaxMsgs : kTxMaxIov;
  for (uint32_t i = index; i < n && tx_iov_.size() < max; i++) {
    // Nothing only when JavaScript can no longer run (a worker being
    // terminated): send what was gathered instead of aborting.
    Napi::MaybeOrValue<Napi::Value> mv = list.Get(i);
    if (mv.IsNothing()) break;
    Napi::Value v = mv.Unwrap();
    if (!v.IsTypedArray()) break;  // a file segment: sent by sendFile()
    auto ta = v.As<Napi::Uint8Array>();
    size_t skip = i == index ? offset : 0;
    if (skip > ta.ByteLength()) skip = ta.ByteLength();
    tx_iov_.push_back({ta.Data() + skip, ta.ByteLength() - skip});
    total += ta.ByteLength() - skip;
  }
  rx_->counters.tx_calls++;
  if (kind_ == kStreamSeqpacket) {
    tx_msgs_.resize(tx_iov_.size());
    for (size_t i = 0; i < tx_iov_.size(); i++) {
      tx_msgs_[i] = mmsghdr{};
      tx_msgs_[i].msg_hdr.msg_iov = &tx_iov_[i];
      tx_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do {
      r = sendmmsg(fd, tx_msgs_.data(), static_cast<unsigned>(tx_msgs_.size()), MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      o[1] = errno == EWOULDBLOCK ? EAGAIN : errno;
      if (o[1] == EAGAIN) rx_->counters.tx_eagain++;
      return env.Undefined();
    }
    double bytes = 0;
    for (int i = 0; i < r; i++) bytes += tx_msgs_[i].msg_len;
    o[0] = bytes;
    o[2] = r;
    rx_->counters.tx_bytes += static_cast<uint64_t>(bytes);
    return env.Undefined();
  }
  ssize_t w;
  do {
    if (kind_ == kStreamTty) {
      w = writev(fd, tx_iov_.data(), static_cast<int>(tx_iov_.size()));
    } else {
      msghdr h{};
      h.msg_iov = tx_iov_.data();
      h.msg_iovlen = tx_iov_.size();
      w = sendmsg(fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    o[1] = errno == EWOULDBLOCK ? EAGAIN : errno;
    if (o[1] == EAGAIN) rx_->counters.tx_eagain++;
    return env.Undefined();
  }
  rx_->counters.tx_bytes += static_cast<uint64_t>(w);
  o[0] = static_cast<double>(w);
  size_t left = static_cast<size_t>(w);
  uint32_t done = 0;
  for (const iovec& v : tx_iov_) {
    if (left < v.iov_len) break;
    left -= v.iov_len;
    done++;
  }
  o[2] = done;
  // The kernel took less than offered: its buffer is full. (All offered went
  // but more buffers remain past IOV_MAX: o[1] = 0 and the caller loops.)
  if (static_cast<size_t>(w) < total) {
    o[1] = EAGAIN;
    rx_->counters.tx_eagain++;
  }
  return env.Undefined();
}

// sendFile(fileFd, offset, count, out: Float64Array(3)): sends `count` bytes
// of a file from `offset` with sendfile(2): the kernel moves page-cache pages
// to the socket without a copy through user space. Same out layout as
// write(): [bytes, errno (EAGAIN = socket buffer full), 0].
Napi::Value StreamSocket::SendFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double* o = info[3].As<Napi::Float64Array>().Data();
  o[0] = o[1] = o[2] = 0;
  int fd = (closed_ || !rx_->fd.valid()) ? -1 : rx_->fd.get();
  if (fd < 0 || kind_ == kStreamSeqpacket) {
    o[1] = fd < 0 ? EBADF : EINVAL;
    return env.Undefined();
  }
  int file = info[0].As<Napi::Number>().Int32Value();
  off_t off = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  size_t count = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  size_t done = 0;
  rx_->counters.tx_calls++;
  while (done < count) {
    ssize_t w = sendfile(fd, file, &off, std::min<size_t>(count - done, 1u << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      o[1] = errno == EWOULDBLOCK ? EAGAIN : errno;
      if (o[1] == EAGAIN) rx_->counters.tx_eagain++;
      break;
    }
    if (w == 0) {
      o[1] = ENODATA;  // the file is shorter than promised
      break;
    }
    done += static_cast<size_t>(w);
  }
  rx_->counters.tx_bytes += done;
  o[0] = static_cast<double>(done);
  return env.Undefined();
}

Napi::Value StreamSocket::WatchWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  rx_->want_write = true;
  rx_->ArmLocked();
  return Napi::Number::New(env, 0);
}

// shutdown(): no more writes (FIN after queued data), like net's end().
Napi::Value StreamSocket::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  if (!IsSocketKind(kind_)) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, ::shutdown(fd, SHUT_WR) == 0 ? 0 : -errno);
}

static Napi::Value AddressValue(Napi::Env env, const sockaddr_storage& ss, socklen_t len) {
  if (ss.ss_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t plen = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    Napi::Array a = Napi::Array::New(env, 3);
    bool abstract = plen > 0 && sun->sun_path[0] == '\0';
    std::string p = abstract ? std::string(sun->sun_path + 1, plen - 1) : std::string(sun->sun_path, strnlen(sun->sun_path, plen));
    a.Set(0u, Napi::String::New(env, p));
    a.Set(1u, Napi::Number::New(env, 0));
    a.Set(2u, Napi::Number::New(env, abstract ? -1 : 0));
    return a;
  }
  int port = 0;
  std::string ip = FormatAddress(reinterpret_cast<const sockaddr*>(&ss), &port);
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::String::New(env, ip));
  a.Set(1u, Napi::Number::New(env, port));
  a.Set(2u, Napi::Number::New(env, ss.ss_family == AF_INET6 ? 6 : 4));
  return a;
}

Napi::Value StreamSocket::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Napi::Number::New(env, -errno);
  return AddressValue(env, ss, len);
}

Napi::Value StreamSocket::RemoteAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Napi::Number::New(env, -errno);
  return AddressValue(env, ss, len);
}

// peerCred() -> [pid, uid, gid] of a Unix socket's peer (SO_PEERCRED).
Napi::Value StreamSocket::PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_FD_OR_EBADF(env);
  ucred c{};
  socklen_t len = sizeof(c);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return Napi::Number::New(env, -errno);
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::Number::New(env, c.pid));
  a.Set(1u, Napi::Number::New(env, c.uid));
  a.Set(2u, Napi::Number::New(env, c.gid));
  return a;
}

// stats(out: Float64Array(16))
Napi::Value StreamSocket::Stats(const Napi::CallbackInfo& info) {
  double* o = info[0].As<Napi::Float64Array>().Data();
  const StreamCounters& c = rx_->counters;
  o[0] = static_cast<double>(c.rx_bytes.load());
  o[1] = static_cast<double>(c.rx_reads.load());
  o[2] = static_cast<double>(c.rx_records.load());
  o[3] = static_cast<double>(c.rx_pauses.load());
  o[4] = static_cast<double>(c.discarded_bytes.load());
  o[5] = static_cast<double>(c.oversize.load());
  o[6] = static_cast<double>(c.garbage_bytes.load());
  o[7] = static_cast<double>(c.bad_frames.load());
  o[8] = static_cast<double>(c.kernel_stamps.load());
  o[9] = static_cast<double>(c.rx_wraps.load());
  o[10] = static_cast<double>(c.rx_wrap_bytes.load());
  o[11] = static_cast<double>(c.tx_bytes);
  o[12] = static_cast<double>(c.tx_calls);
  o[13] = static_cast<double>(c.tx_eagain);
  uint64_t pub = rx_->published.load();
  int32_t in_use = static_cast<int32_t>(static_cast<uint32_t>(pub) - rx_->byte_tail.load());
  o[14] = in_use > 0 ? in_use : 0;  // ring bytes in use
  o[15] = static_cast<double>(c.rx_rewinds.load());
  return info.Env().Undefined();
}

Napi::Value StreamSocket::Ref(const Napi::CallbackInfo& info) {
  if (!closed_) loop_ref_.Ref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value StreamSocket::Unref(const Napi::CallbackInfo& info) {
  loop_ref_.Unref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value StreamSocket::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), closed_ ? -1 : rx_->fd.get());
}

Napi::Value StreamSocket::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

void StreamSocket::OnWake(Napi::Env env, uint32_t kind) {
  if (closed_) return;
  Napi::HandleScope scope(env);
  if (kind == kWakeRx) DeliverBatch(env);
  else DeliverEvents(env, kind);
}

void StreamSocket::DeliverBatch(Napi::Env env) {
  StreamRx& rx = *rx_;
  rx.rx_scheduled.store(false);
  if (in_batch_ || rx.ring == nullptr) return;
  uint64_t pub = rx.published.load(std::memory_order_acquire);
  uint32_t head = static_cast<uint32_t>(pub >> 32);
  uint32_t release = static_cast<uint32_t>(pub);
  uint32_t tail = rx.meta_tail.load(std::memory_order_relaxed);
  std::shared_ptr<StreamRx> hold = rx_;  // the handler may close the socket
  if (head != tail) {
    in_batch_ = true;
    CallReporting(env, on_batch_, {Napi::Number::New(env, tail & (rx.meta_cap - 1)), Napi::Number::New(env, head - tail)});
    in_batch_ = false;
  }
  // Return the space whether or not the handler threw.
  rx.meta_tail.store(head);
  AdvanceTo(rx.byte_tail, release);
  if (rx.paused.load()) {
    std::lock_guard<std::mutex> lk(rx.io_mu);
    if (rx.paused.load() && !rx.closed) rx.ResumeLocked();
  }
}

void StreamSocket::DeliverEvents(Napi::Env env, uint32_t kind) {
  std::vector<StreamEvent> events;
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    if (kind == kWakeWritable) {
      rx_->write_scheduled.store(false);
    } else {
      rx_->ev_scheduled.store(false);
      events.swap(rx_->events);
    }
  }
  if (kind == kWakeWritable) {
    CallReporting(env, on_event_, {Napi::Number::New(env, kEvWritable)});
    return;
  }
  // Records published before an event are delivered before it (an 'end'
  // never overtakes the data that preceded it).
  DeliverBatch(env);
  for (const StreamEvent& e : events) {
    if (closed_) return;
    CallReporting(env, on_event_, {Napi::Number::New(env, e.kind), Napi::Number::New(env, e.a), Napi::Number::New(env, e.b)});
  }
}

}  // namespace onbus
