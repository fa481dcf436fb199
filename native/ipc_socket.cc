#include "ipc_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "addon.h"
#include "util/call_js.h"

namespace onbus {

namespace {

constexpr unsigned kRxBudget = 16;  // recvmmsg calls per wake-up
constexpr unsigned kTxBatch = 64;   // messages per sendmmsg call
constexpr unsigned kMaxFdsPerMsg = 4;

int SetUnixPath(const std::string& path, sockaddr_un* sa, socklen_t* len) {
  if (path.empty() || path.size() >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return 0;
}

int PeerCredOf(int fd, ucred* cred) {
  socklen_t len = sizeof(*cred);
  return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0 ? 0 : -errno;
}

Napi::Array CredArray(Napi::Env env, int rc, const ucred& c) {
  Napi::Array a = Napi::Array::New(env, 4);
  a.Set(0u, Napi::Number::New(env, rc));
  a.Set(1u, Napi::Number::New(env, c.pid));
  a.Set(2u, Napi::Number::New(env, c.uid));
  a.Set(3u, Napi::Number::New(env, c.gid));
  return a;
}

}  // namespace

// What the I/O thread touches; guarded by io_mu except the atomics.
struct IpcIo : IoSource {
  UniqueFd fd;
  std::shared_ptr<Reactor> reactor;
  uint32_t id = 0;
  bool listening = false;
  bool armed_rx = false;
  bool want_write = false;
  bool hup = false;
  std::atomic<bool> rx_scheduled{false}, write_scheduled{false}, end_scheduled{false};

  uint32_t EventsLocked() const {
    uint32_t ev = 0;
    if (armed_rx) ev |= EPOLLIN | (listening ? 0u : static_cast<uint32_t>(EPOLLRDHUP));
    if (want_write) ev |= EPOLLOUT;
    return ev;
  }
  void ApplyEventsLocked() {
    if (id != 0 && fd.valid() && !hup) reactor->Modify(id, fd.get(), EventsLocked());
  }
  void Abandon() override { fd.Reset(); }

  void OnIo(uint32_t events) override {
    if (!listening && (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))) {
      // The peer is gone. A hung-up socket stays readable whatever the mask,
      // so take it out of the set; JavaScript drains what is left and closes.
      hup = true;
      epoll_ctl(reactor->epoll_fd(), EPOLL_CTL_DEL, fd.get(), nullptr);
      if (!end_scheduled.exchange(true)) reactor->Wake(id, kIpcWakeEnd);
      return;
    }
    if ((events & EPOLLIN) && armed_rx) {
      armed_rx = false;  // re-armed by the JS thread once it has drained
      ApplyEventsLocked();
      if (!rx_scheduled.exchange(true)) reactor->Wake(id, kWakeRx);
    }
    if ((events & EPOLLOUT) && want_write) {
      want_write = false;
      ApplyEventsLocked();
      if (!write_scheduled.exchange(true)) reactor->Wake(id, kWakeWritable);
    }
  }
};

Napi::Function IpcSocket::Init(Napi::Env env) {
  return DefineClass(env, "IpcSocket",
                     {
                         InstanceMethod<&IpcSocket::Listen>("listen"),
                         InstanceMethod<&IpcSocket::Connect>("connect"),
                         InstanceMethod<&IpcSocket::Accept>("accept"),
                         InstanceMethod<&IpcSocket::PeerCred>("peerCred"),
                         InstanceMethod<&IpcSocket::StartReceive>("startReceive"),
                         InstanceMethod<&IpcSocket::Pause>("pause"),
                         InstanceMethod<&IpcSocket::Resume>("resume"),
                         InstanceMethod<&IpcSocket::Send>("send"),
                         InstanceMethod<&IpcSocket::WatchWritable>("watchWritable"),
                         InstanceMethod<&IpcSocket::Ref>("ref"),
                         InstanceMethod<&IpcSocket::Unref>("unref"),
                         InstanceMethod<&IpcSocket::Fd>("fd"),
                         InstanceMethod<&IpcSocket::Close>("close"),
                         StaticMethod<&IpcSocket::MemfdCreate>("memfdCreate"),
                         StaticMethod<&IpcSocket::Map>("map"),
                         StaticMethod<&IpcSocket::CloseFd>("closeFd"),
                         StaticMethod<&IpcSocket::FdInfo>("fdInfo"),
                     });
}

// new IpcSocket(onRecv(count), onEvent(kind, errno?), fd?)
IpcSocket::IpcSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IpcSocket>(info) {
  Napi::Env env = info.Env();
  on_recv_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_event_ = Napi::Persistent(info[1].As<Napi::Function>());
  reactor_ = env.GetInstanceData<OnbusAddon>()->reactor(env);
  io_ = std::make_shared<IpcIo>();
  io_->reactor = reactor_;
  if (!reactor_) {
    closed_ = true;
    Napi::Error::New(env, "onbus: could not start the I/O reactor").ThrowAsJavaScriptException();
    return;
  }
  if (info.Length() > 2 && info[2].IsNumber()) {
    int rc = Register(info[2].As<Napi::Number>().Int32Value());
    if (rc < 0) {
      closed_ = true;
      Napi::Error::New(env, strerror(-rc)).ThrowAsJavaScriptException();
    }
  }
}

IpcSocket::~IpcSocket() { DoClose(); }

int IpcSocket::Register(int fd) {
  io_->fd.Reset(fd);
  int64_t id = reactor_->Add(fd, 0, io_);
  if (id < 0) {
    io_->fd.Reset();
    return static_cast<int>(id);
  }
  id_ = static_cast<uint32_t>(id);
  io_->id = id_;
  reactor_->SetTarget(id_, this);
  return 0;
}

void IpcSocket::DoClose() {
  if (closed_ && id_ == 0) return;
  closed_ = true;
  if (reactor_) {
    if (id_ != 0) reactor_->Remove(id_, io_->hup ? -1 : io_->fd.get());
  }
  loop_ref_.Unref(reactor_.get());
  id_ = 0;
  if (io_) {
    std::lock_guard<std::mutex> lk(io_->io_mu);
    io_->closed = true;
    io_->fd.Reset();
  }
  ring_ref_.Reset();
  lens_ref_.Reset();
  fds_ref_.Reset();
  ring_ = nullptr;
}

#define ONBUS_IPC_OPEN_OR_EBADF(env) \
  if (closed_ || id_ == 0 || !io_->fd.valid()) return Napi::Number::New(env, -EBADF)

// listen(path, backlog) -> 0 | -errno. The file is made 0600 at once.
Napi::Value IpcSocket::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || id_ != 0) return Napi::Number::New(env, -EISCONN);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  sockaddr_un sa;
  socklen_t len;
  int rc = SetUnixPath(path, &sa, &len);
  if (rc < 0) return Napi::Number::New(env, rc);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || chmod(path.c_str(), 0600) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    return Napi::Number::New(env, -err);
  }
  io_->listening = true;
  listening_ = true;
  rc = Register(fd);
  if (rc < 0) return Napi::Number::New(env, rc);
  std::lock_guard<std::mutex> lk(io_->io_mu);
  io_->armed_rx = true;
  io_->ApplyEventsLocked();
  return Napi::Number::New(env, 0);
}

// connect(path) -> [0 | -errno, pid, uid, gid]. A peer of another uid is
// refused (-EACCES) and the socket closed.
Napi::Value IpcSocket::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ucred cred{};
  cred.pid = 0;
  cred.uid = static_cast<uid_t>(-1);
  cred.gid = static_cast<gid_t>(-1);
  if (closed_ || id_ != 0) return CredArray(env, -EISCONN, cred);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un sa;
  socklen_t len;
  int rc = SetUnixPath(path, &sa, &len);
  if (rc < 0) return CredArray(env, rc, cred);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return CredArray(env, -errno, cred);
  // A Unix connect completes at once or fails (EAGAIN: the backlog is full).
  while ((rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), len)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    int err = errno;
    close(fd);
    return CredArray(env, -err, cred);
  }
  rc = PeerCredOf(fd, &cred);
  if (rc == 0 && cred.uid != geteuid()) rc = -EACCES;
  if (rc < 0) {
    close(fd);
    return CredArray(env, rc, cred);
  }
  rc = Register(fd);
  return CredArray(env, rc, cred);
}

// accept() -> [fd | -errno, pid, uid, gid]; -EAGAIN when none is pending.
// A peer of another uid is closed here and reported as -EACCES.
Napi::Value IpcSocket::Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ucred cred{};
  cred.uid = static_cast<uid_t>(-1);
  cred.gid = static_cast<gid_t>(-1);
  if (closed_ || !listening_ || !io_->fd.valid()) return CredArray(env, -EBADF, cred);
  int fd;
  while ((fd = accept4(io_->fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (fd < 0) return CredArray(env, -errno, cred);
  int rc = PeerCredOf(fd, &cred);
  if (rc == 0 && cred.uid != geteuid()) rc = -EACCES;
  if (rc < 0) {
    close(fd);
    return CredArray(env, rc, cred);
  }
  return CredArray(env, fd, cred);
}

Napi::Value IpcSocket::PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_IPC_OPEN_OR_EBADF(env);
  ucred cred{};
  int rc = PeerCredOf(io_->fd.get(), &cred);
  return CredArray(env, rc, cred);
}

// startReceive(ring: ArrayBuffer, lens: Uint32Array, fds: Int32Array, slotSize)
Napi::Value IpcSocket::StartReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_IPC_OPEN_OR_EBADF(env);
  if (listening_) {
    std::lock_guard<std::mutex> lk(io_->io_mu);
    io_->armed_rx = true;
    io_->ApplyEventsLocked();
    return Napi::Number::New(env, 0);
  }
  Napi::ArrayBuffer ring = info[0].As<Napi::ArrayBuffer>();
  Napi::Uint32Array lens = info[1].As<Napi::Uint32Array>();
  Napi::Int32Array fds = info[2].As<Napi::Int32Array>();
  uint32_t slot_size = info[3].As<Napi::Number>().Uint32Value();
  if (slot_size == 0 || ring.ByteLength() / slot_size == 0) return Napi::Number::New(env, -EINVAL);
  uint32_t slots = static_cast<uint32_t>(ring.ByteLength() / slot_size);
  if (lens.ElementLength() < slots || fds.ElementLength() < slots) return Napi::Number::New(env, -EINVAL);
  ring_ref_ = Napi::Persistent(ring);
  lens_ref_ = Napi::Persistent(lens.ArrayBuffer());
  fds_ref_ = Napi::Persistent(fds.ArrayBuffer());
  ring_ = static_cast<uint8_t*>(ring.Data());
  lens_ = lens.Data();
  fds_ = fds.Data();
  slot_size_ = slot_size;
  slots_ = slots;
  std::lock_guard<std::mutex> lk(io_->io_mu);
  io_->armed_rx = !paused_;
  io_->ApplyEventsLocked();
  return Napi::Number::New(env, 0);
}

Napi::Value IpcSocket::Pause(const Napi::CallbackInfo& info) {
  paused_ = true;
  if (!closed_ && id_ != 0) {
    std::lock_guard<std::mutex> lk(io_->io_mu);
    io_->armed_rx = false;
    io_->ApplyEventsLocked();
  }
  return info.Env().Undefined();
}

Napi::Value IpcSocket::Resume(const Napi::CallbackInfo& info) {
  paused_ = false;
  if (!closed_ && id_ != 0 && (ring_ != nullptr || listening_)) {
    std::lock_guard<std::mutex> lk(io_->io_mu);
    if (io_->hup) {
      // The end arrived while paused: deliver what is left, then the end.
      reactor_->Wake(id_, kIpcWakeEnd);
    } else if (!in_recv_) {
      io_->armed_rx = true;
      io_->ApplyEventsLocked();
    }
  }
  return info.Env().Undefined();
}

// send(list: Uint8Array[], start, count, fd) -> messages sent, or -errno when
// the first one could not go (-EAGAIN: the peer's queue is full). `fd` (>= 0)
// travels as SCM_RIGHTS with the first message.
Napi::Value IpcSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_IPC_OPEN_OR_EBADF(env);
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t start = info[1].As<Napi::Number>().Uint32Value();
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  int pass_fd = info[3].As<Napi::Number>().Int32Value();
  mmsghdr msgs[kTxBatch];
  iovec iov[kTxBatch];
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
  uint32_t sent = 0;
  while (sent < count) {
    uint32_t n = std::min<uint32_t>(kTxBatch, count - sent);
    memset(msgs, 0, sizeof(mmsghdr) * n);
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value v;
      if (!list.Get(start + sent + i).UnwrapTo(&v) || !v.IsTypedArray()) return Napi::Number::New(env, -EINVAL);
      Napi::Uint8Array b = v.As<Napi::Uint8Array>();
      iov[i].iov_base = b.Data();
      iov[i].iov_len = b.ByteLength();
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    if (sent == 0 && pass_fd >= 0) {
      memset(ctrl, 0, sizeof(ctrl));
      msgs[0].msg_hdr.msg_control = ctrl;
      msgs[0].msg_hdr.msg_controllen = sizeof(ctrl);
      cmsghdr* c = CMSG_FIRSTHDR(&msgs[0].msg_hdr);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    int r = sendmmsg(io_->fd.get(), msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      if (sent > 0) break;
      return Napi::Number::New(env, -err);
    }
    sent += static_cast<uint32_t>(r);
    if (static_cast<uint32_t>(r) < n) break;
  }
  return Napi::Number::New(env, sent);
}

Napi::Value IpcSocket::WatchWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_IPC_OPEN_OR_EBADF(env);
  std::lock_guard<std::mutex> lk(io_->io_mu);
  io_->want_write = true;
  io_->ApplyEventsLocked();
  return Napi::Number::New(env, 0);
}

Napi::Value IpcSocket::Ref(const Napi::CallbackInfo& info) {
  if (!closed_) loop_ref_.Ref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value IpcSocket::Unref(const Napi::CallbackInfo& info) {
  loop_ref_.Unref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value IpcSocket::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), closed_ ? -1 : io_->fd.get());
}

Napi::Value IpcSocket::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

void IpcSocket::OnWake(Napi::Env env, uint32_t kind) {
  if (closed_) return;
  Napi::HandleScope scope(env);
  if (kind == kWakeRx) {
    io_->rx_scheduled.store(false);
    if (listening_) {
      CallReporting(env, on_event_, {Napi::Number::New(env, kWakeRx)});
      if (!closed_ && !paused_) {
        std::lock_guard<std::mutex> lk(io_->io_mu);
        io_->armed_rx = true;
        io_->ApplyEventsLocked();
      }
      return;
    }
    Drain(env);
  } else if (kind == kWakeWritable) {
    io_->write_scheduled.store(false);
    CallReporting(env, on_event_, {Napi::Number::New(env, kWakeWritable)});
  } else if (kind == kIpcWakeEnd) {
    io_->end_scheduled.store(false);
    if (paused_) return;  // Resume() wakes again
    Drain(env);
    if (!closed_ && !ended_ && !paused_) {
      ended_ = true;
      CallReporting(env, on_event_, {Napi::Number::New(env, kIpcWakeEnd)});
    }
  }
}

// JS thread: recvmmsg into the slots, one onRecv per batch, a budget of
// batches, then re-arm (unless paused, closed or at the end).
void IpcSocket::Drain(Napi::Env env) {
  if (ring_ == nullptr || in_recv_ || ended_) return;
  std::shared_ptr<IpcIo> hold = io_;
  std::vector<mmsghdr> msgs(slots_);
  std::vector<iovec> iov(slots_);
  constexpr size_t kCtrl = CMSG_SPACE(sizeof(int) * kMaxFdsPerMsg);
  std::vector<char> ctrl_store(kCtrl * slots_ + alignof(cmsghdr));
  char* ctrl = ctrl_store.data();
  bool eof = false;
  for (unsigned round = 0; round < kRxBudget && !closed_ && !paused_; round++) {
    for (uint32_t i = 0; i < slots_; i++) {
      iov[i].iov_base = ring_ + static_cast<size_t>(i) * slot_size_;
      iov[i].iov_len = slot_size_;
      memset(&msgs[i], 0, sizeof(mmsghdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctrl + i * kCtrl;
      msgs[i].msg_hdr.msg_controllen = kCtrl;
    }
    int n = recvmmsg(io_->fd.get(), msgs.data(), slots_, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      int err = errno;
      CallReporting(env, on_event_, {Napi::Number::New(env, kWakeError), Napi::Number::New(env, -err)});
      eof = true;
      break;
    }
    uint32_t count = 0;
    for (int i = 0; i < n; i++) {
      int fd = -1;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t j = 0; j < k; j++) {
          int f;
          memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
          if (fd < 0)
            fd = f;
          else
            close(f);  // one descriptor per message is the protocol
        }
      }
      if (msgs[i].msg_len == 0 && fd < 0) {
        eof = true;  // a seqpacket socket reads 0 at the end; messages are never empty
        break;
      }
      lens_[i] = msgs[i].msg_len | ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0x80000000u : 0u);
      fds_[i] = fd;
      count++;
    }
    if (count > 0) {
      in_recv_ = true;
      CallReporting(env, on_recv_, {Napi::Number::New(env, count)});
      in_recv_ = false;
    }
    if (eof || static_cast<uint32_t>(n) < slots_) break;
  }
  if (closed_) return;
  if (eof) {
    if (!ended_) {
      ended_ = true;
      CallReporting(env, on_event_, {Napi::Number::New(env, kIpcWakeEnd)});
    }
    return;
  }
  if (!paused_) {
    std::lock_guard<std::mutex> lk(io_->io_mu);
    if (!io_->hup) {
      io_->armed_rx = true;
      io_->ApplyEventsLocked();
    }
  }
}

// memfdCreate(name, size) -> fd | -errno: CLOEXEC, mode 0600, sealed size.
Napi::Value IpcSocket::MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  double size = info[1].As<Napi::Number>().DoubleValue();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Napi::Number::New(env, -errno);
  if (fchmod(fd, 0600) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    return Napi::Number::New(env, -err);
  }
  return Napi::Number::New(env, fd);
}

namespace {
struct Mapping {
  size_t len;
};
void Unmap(Napi::Env, void* data, Mapping* m) {
  munmap(data, m->len);
  delete m;
}
}  // namespace

// map(fd, size, writable) -> ArrayBuffer over a MAP_SHARED mapping (unmapped
// when the ArrayBuffer is collected) | -errno. Refuses a file smaller than
// `size` (touching past its end would raise SIGBUS).
Napi::Value IpcSocket::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t size = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  bool writable = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  struct stat st;
  if (fstat(fd, &st) != 0) return Napi::Number::New(env, -errno);
  if (size == 0 || static_cast<size_t>(st.st_size) < size) return Napi::Number::New(env, -EINVAL);
  void* p = mmap(nullptr, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Napi::Number::New(env, -errno);
  return Napi::ArrayBuffer::New(env, p, size, Unmap, new Mapping{size});
}

Napi::Value IpcSocket::CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(), fd >= 0 && close(fd) == 0 ? 0 : -errno);
}

// fdInfo(fd) -> [size, seals, uid, mode] | -errno
Napi::Value IpcSocket::FdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st) != 0) return Napi::Number::New(env, -errno);
  int seals = fcntl(fd, F_GET_SEALS);
  Napi::Array a = Napi::Array::New(env, 4);
  a.Set(0u, Napi::Number::New(env, static_cast<double>(st.st_size)));
  a.Set(1u, Napi::Number::New(env, seals < 0 ? -errno : seals));
  a.Set(2u, Napi::Number::New(env, st.st_uid));
  a.Set(3u, Napi::Number::New(env, st.st_mode & 07777));
  return a;
}

}  // namespace onbus
