#include "stream_server.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>

#include <string>

#include "addon.h"
#include "stream_socket.h"
#include "util/call_js.h"
#include "util/sockaddr.h"

namespace onbus {

namespace {
constexpr unsigned kAcceptBudget = 64;  // connections per wake-up

struct Accepted {
  int fd;
  sockaddr_storage addr;
  socklen_t len;
};
}  // namespace

struct ServerRx : IoSource {
  UniqueFd fd;
  std::shared_ptr<Reactor> reactor;
  uint32_t id = 0;
  bool listening = false;
  bool armed = false;
  std::vector<Accepted> queue;  // io_mu
  std::vector<int> errors;      // io_mu
  std::atomic<bool> scheduled{false};
  std::atomic<uint64_t> accepted{0};

  ~ServerRx() override { CloseQueued(); }

  void CloseQueued() {
    for (Accepted& a : queue) ::close(a.fd);
    queue.clear();
  }

  void ArmLocked() {
    if (id == 0 || !fd.valid() || closed || !listening) return;
    armed = reactor->Modify(id, fd.get(), EPOLLIN | EPOLLONESHOT) == 0;
  }

  void Abandon() override {
    CloseQueued();
    fd.Reset();
  }

  void OnIo(uint32_t) override {
    armed = false;
    // A socket that is not listening yet polls as EPOLLHUP (registration is
    // one-shot: Listen() arms it again).
    if (!listening) return;
    for (unsigned i = 0; i < kAcceptBudget; i++) {
      Accepted a{};
      a.len = sizeof(a.addr);
      int c = accept4(fd.get(), reinterpret_cast<sockaddr*>(&a.addr), &a.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        int err = errno;
        if (err == EINTR || err == ECONNABORTED) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        // EMFILE/ENFILE/ENOBUFS: report; JavaScript re-arms after a pause.
        errors.push_back(err);
        if (!scheduled.exchange(true)) reactor->Wake(id, kWakeRx);
        return;
      }
      a.fd = c;
      queue.push_back(a);
      accepted++;
    }
    if (!queue.empty()) {
      if (!scheduled.exchange(true)) reactor->Wake(id, kWakeRx);
      return;  // re-armed once JavaScript took the batch
    }
    ArmLocked();
  }
};

Napi::Function StreamServer::Init(Napi::Env env) {
  return DefineClass(env, "StreamServer",
                     {
                         InstanceMethod<&StreamServer::Open>("open"),
                         InstanceMethod<&StreamServer::SetOption>("setOption"),
                         InstanceMethod<&StreamServer::Bind>("bind"),
                         InstanceMethod<&StreamServer::BindUnix>("bindUnix"),
                         InstanceMethod<&StreamServer::Listen>("listen"),
                         InstanceMethod<&StreamServer::Take>("take"),
                         InstanceMethod<&StreamServer::Resume>("resume"),
                         InstanceMethod<&StreamServer::LocalAddress>("localAddress"),
                         InstanceMethod<&StreamServer::Ref>("ref"),
                         InstanceMethod<&StreamServer::Unref>("unref"),
                         InstanceMethod<&StreamServer::Fd>("fd"),
                         InstanceMethod<&StreamServer::Close>("close"),
                     });
}

// new StreamServer(onAccept(peers: Array<[address, port, family]>), onError(-errno))
StreamServer::StreamServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamServer>(info) {
  Napi::Env env = info.Env();
  on_accept_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_event_ = Napi::Persistent(info[1].As<Napi::Function>());
  reactor_ = env.GetInstanceData<OnbusAddon>()->reactor(env);
  rx_ = std::make_shared<ServerRx>();
  rx_->reactor = reactor_;
  if (!reactor_) Napi::Error::New(env, "onbus: could not start the I/O reactor").ThrowAsJavaScriptException();
}

StreamServer::~StreamServer() { DoClose(); }

void StreamServer::DoClose() {
  if (closed_) return;
  closed_ = true;
  if (reactor_) {
    if (id_ != 0) reactor_->Remove(id_, rx_->fd.get());
  }
  loop_ref_.Unref(reactor_.get());
  id_ = 0;
  for (int fd : batch_)
    if (fd >= 0) ::close(fd);
  batch_.clear();
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  rx_->closed = true;
  rx_->CloseQueued();
  rx_->fd.Reset();
}

#define ONBUS_SRV_FD_OR_EBADF(env)                             \
  int fd = (closed_ || !rx_->fd.valid()) ? -1 : rx_->fd.get(); \
  if (fd < 0) return Napi::Number::New(env, -EBADF)

// open(kind): kStreamTcp4 / kStreamTcp6 / kStreamUnix / kStreamSeqpacket
Napi::Value StreamServer::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || rx_->fd.valid() || !reactor_) return Napi::Number::New(env, -EBADF);
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
  kind_ = kind;
  // Registered under io_mu: an event that fires at once (EPOLLHUP) finds the
  // id set.
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  rx_->fd.Reset(fd);
  int64_t id = reactor_->Add(fd, EPOLLONESHOT, rx_);
  if (id < 0) return Napi::Number::New(env, static_cast<double>(id));
  id_ = static_cast<uint32_t>(id);
  rx_->id = id_;
  reactor_->SetTarget(id_, this);
  return Napi::Number::New(env, 0);
}

Napi::Value StreamServer::SetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_SRV_FD_OR_EBADF(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int v = info[1].As<Napi::Number>().Int32Value();
  int level = SOL_SOCKET, opt;
  if (name == "reuseAddr") opt = SO_REUSEADDR;
  else if (name == "reusePort") opt = SO_REUSEPORT;
  else if (name == "ipv6Only") level = IPPROTO_IPV6, opt = IPV6_V6ONLY;
  else if (name == "rcvBuf") opt = SO_RCVBUF;
  else return Napi::Number::New(env, -ENOPROTOOPT);
  return Napi::Number::New(env, setsockopt(fd, level, opt, &v, sizeof(v)) == 0 ? 0 : -errno);
}

Napi::Value StreamServer::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_SRV_FD_OR_EBADF(env);
  sockaddr_storage ss;
  socklen_t len;
  int r = ParseAddress(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                       kind_ == kStreamTcp6 ? 6 : 4, &ss, &len);
  if (r == 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) r = -errno;
  return Napi::Number::New(env, r);
}

// bindUnix(path, abstract)
Napi::Value StreamServer::BindUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_SRV_FD_OR_EBADF(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool abstract = info[1].ToBoolean().Unwrap().Value();
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  size_t off = abstract ? 1 : 0;
  if (path.size() + off + (abstract ? 0 : 1) > sizeof(sun.sun_path)) return Napi::Number::New(env, -ENAMETOOLONG);
  memcpy(sun.sun_path + off, path.data(), path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + off + path.size() + (abstract ? 0 : 1));
  int r = ::bind(fd, reinterpret_cast<sockaddr*>(&sun), len) == 0 ? 0 : -errno;
  return Napi::Number::New(env, r);
}

Napi::Value StreamServer::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_SRV_FD_OR_EBADF(env);
  int backlog = info[0].As<Napi::Number>().Int32Value();
  if (::listen(fd, backlog) != 0) return Napi::Number::New(env, -errno);
  std::lock_guard<std::mutex> lk(rx_->io_mu);
  rx_->listening = true;
  rx_->ArmLocked();
  return Napi::Number::New(env, 0);
}

// take(i) -> the descriptor of connection i of the batch being handed over
// (ownership moves to the caller, who adopts it at once), or -EBADF.
Napi::Value StreamServer::Take(const Napi::CallbackInfo& info) {
  uint32_t i = info[0].As<Napi::Number>().Uint32Value();
  int fd = -EBADF;
  if (i < batch_.size() && batch_[i] >= 0) {
    fd = batch_[i];
    batch_[i] = -1;
  }
  return Napi::Number::New(info.Env(), fd);
}

// resume(): re-arm after an accept error (EMFILE) once JavaScript waited.
Napi::Value StreamServer::Resume(const Napi::CallbackInfo& info) {
  if (!closed_) {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->ArmLocked();
  }
  return info.Env().Undefined();
}

Napi::Value StreamServer::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ONBUS_SRV_FD_OR_EBADF(env);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Napi::Number::New(env, -errno);
  int port = 0;
  Napi::Array a = Napi::Array::New(env, 3);
  if (ss.ss_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t plen = len - offsetof(sockaddr_un, sun_path);
    bool abstract = plen > 0 && sun->sun_path[0] == '\0';
    a.Set(0u, Napi::String::New(env, abstract ? std::string(sun->sun_path + 1, plen - 1)
                                              : std::string(sun->sun_path, strnlen(sun->sun_path, plen))));
    a.Set(1u, Napi::Number::New(env, 0));
    a.Set(2u, Napi::Number::New(env, abstract ? -1 : 0));
    return a;
  }
  std::string ip = FormatAddress(reinterpret_cast<const sockaddr*>(&ss), &port);
  a.Set(0u, Napi::String::New(env, ip));
  a.Set(1u, Napi::Number::New(env, port));
  a.Set(2u, Napi::Number::New(env, ss.ss_family == AF_INET6 ? 6 : 4));
  return a;
}

Napi::Value StreamServer::Ref(const Napi::CallbackInfo& info) {
  if (!closed_) loop_ref_.Ref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value StreamServer::Unref(const Napi::CallbackInfo& info) {
  loop_ref_.Unref(reactor_.get());
  return info.Env().Undefined();
}

Napi::Value StreamServer::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), closed_ ? -1 : rx_->fd.get());
}

Napi::Value StreamServer::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

void StreamServer::OnWake(Napi::Env env, uint32_t) {
  if (closed_) return;
  Napi::HandleScope scope(env);
  std::vector<Accepted> got;
  std::vector<int> errors;
  {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->scheduled.store(false);
    got.swap(rx_->queue);
    errors.swap(rx_->errors);
  }
  if (!got.empty()) {
    Napi::Array peers = Napi::Array::New(env, got.size());
    batch_.clear();
    for (size_t i = 0; i < got.size(); i++) {
      batch_.push_back(got[i].fd);
      Napi::Array p = Napi::Array::New(env, 3);
      if (got[i].addr.ss_family == AF_UNIX) {
        p.Set(0u, Napi::String::New(env, ""));
        p.Set(1u, Napi::Number::New(env, 0));
        p.Set(2u, Napi::Number::New(env, 0));
      } else {
        int port = 0;
        p.Set(0u, Napi::String::New(env, FormatAddress(reinterpret_cast<sockaddr*>(&got[i].addr), &port)));
        p.Set(1u, Napi::Number::New(env, port));
        p.Set(2u, Napi::Number::New(env, got[i].addr.ss_family == AF_INET6 ? 6 : 4));
      }
      peers.Set(static_cast<uint32_t>(i), p);
    }
    CallReporting(env, on_accept_, {peers});
    // Whatever JavaScript did not take is closed: no accepted descriptor leaks.
    for (int fd : batch_)
      if (fd >= 0) ::close(fd);
    batch_.clear();
  }
  for (int e : errors) {
    if (closed_) return;
    CallReporting(env, on_event_, {Napi::Number::New(env, -e)});
  }
  if (!closed_ && errors.empty()) {
    std::lock_guard<std::mutex> lk(rx_->io_mu);
    rx_->ArmLocked();
  }
}

}  // namespace onbus
