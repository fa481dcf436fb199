#include "reactor.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include <algorithm>
#include <vector>

namespace onbus {

namespace {
constexpr uint32_t kStopKey = 0;
constexpr int kMaxEvents = 64;

uint64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}
}  // namespace

std::shared_ptr<Reactor> Reactor::Create(Napi::Env env) {
  std::shared_ptr<Reactor> r(new Reactor(env));
  if (!r->epfd_.valid() || !r->stopfd_.valid()) return nullptr;
  // Registered after the TSFN was created, so it runs before the TSFN's own
  // teardown. The hook holds a weak pointer: the Addon may already be gone.
  std::weak_ptr<Reactor> weak = r;
  env.AddCleanupHook([weak]() {
    if (auto s = weak.lock()) s->Shutdown();
  });
  r->thread_ = std::thread([raw = r.get()] { raw->Run(); });
  return r;
}

Reactor::Reactor(Napi::Env env)
    : env_(env),
      epfd_(epoll_create1(EPOLL_CLOEXEC)),
      stopfd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (epfd_.valid() && stopfd_.valid()) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kStopKey;
    epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, stopfd_.get(), &ev);
  }
  tsfn_ = Tsfn::New(env, "onbus.reactor", 0, 1, this);
  tsfn_.Unref(env);
}

Reactor::~Reactor() { Shutdown(); }

void Reactor::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t w = write(stopfd_.get(), &one, sizeof(one));
    (void)w;
    thread_.join();
  }
  std::unordered_map<uint32_t, std::shared_ptr<IoSource>> sources;
  {
    std::lock_guard<std::mutex> lk(mu_);
    sources.swap(sources_);
  }
  for (auto& kv : sources) {
    std::lock_guard<std::mutex> lk(kv.second->io_mu);
    kv.second->closed = true;
    kv.second->Abandon();
  }
  targets_.clear();
  tsfn_.Release();
}

int64_t Reactor::Add(int fd, uint32_t events, std::shared_ptr<IoSource> src) {
  if (shut_down_) return -ESHUTDOWN;
  uint32_t id = next_id_++;
  if (next_id_ == 0 || next_id_ > 0x0fffffffu) next_id_ = 1;
  {
    std::lock_guard<std::mutex> lk(mu_);
    sources_[id] = std::move(src);
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    std::lock_guard<std::mutex> lk(mu_);
    sources_.erase(id);
    return -err;
  }
  return id;
}

int Reactor::Modify(uint32_t id, int fd, uint32_t events) {
  if (shut_down_) return -ESHUTDOWN;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  return epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

void Reactor::Remove(uint32_t id, int fd) {
  std::shared_ptr<IoSource> src;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = sources_.find(id);
    if (it != sources_.end()) {
      src = std::move(it->second);
      sources_.erase(it);
    }
  }
  if (!shut_down_ && fd >= 0) epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (src) {
    // Waits for a drain in progress on the I/O thread to finish.
    std::lock_guard<std::mutex> lk(src->io_mu);
    src->closed = true;
  }
  RequestSpin(id, 0);
  ClearTarget(id);
}

void Reactor::Wake(uint32_t id, uint32_t kind) {
  if (shut_down_) return;
  uintptr_t token = (static_cast<uintptr_t>(id) << 3) | kind;
  tsfn_.NonBlockingCall(reinterpret_cast<void*>(token));
}

void Reactor::SetTarget(uint32_t id, JsTarget* t) { targets_[id] = t; }
void Reactor::ClearTarget(uint32_t id) { targets_.erase(id); }

void Reactor::Ref() {
  if (shut_down_) return;
  if (refs_++ == 0) tsfn_.Ref(env_);
}

void Reactor::Unref() {
  if (shut_down_ || refs_ == 0) return;
  if (--refs_ == 0) tsfn_.Unref(env_);
}

void Reactor::RequestSpin(uint32_t id, uint32_t us) {
  if (us == 0)
    spin_.erase(id);
  else
    spin_[id] = us;
  uint32_t mx = 0;
  for (auto& kv : spin_) mx = std::max(mx, kv.second);
  spin_us_.store(mx, std::memory_order_relaxed);
}

void Reactor::CallJs(Napi::Env env, Napi::Function, Reactor* self, void* data) {
  if (env == nullptr || self == nullptr || self->shut_down_) return;
  uintptr_t token = reinterpret_cast<uintptr_t>(data);
  uint32_t id = static_cast<uint32_t>(token >> 3);
  uint32_t kind = static_cast<uint32_t>(token & 7);
  auto it = self->targets_.find(id);
  if (it == self->targets_.end()) return;  // closed since the wake was queued
  it->second->OnWake(env, kind);
}

void Reactor::Run() {
  epoll_event events[kMaxEvents];
  for (;;) {
    int n;
    uint32_t spin = spin_us_.load(std::memory_order_relaxed);
    if (spin > 0) {
      uint64_t deadline = NowUs() + spin;
      do {
        n = epoll_wait(epfd_.get(), events, kMaxEvents, 0);
      } while (n == 0 && NowUs() < deadline);
      if (n == 0) n = epoll_wait(epfd_.get(), events, kMaxEvents, -1);
    } else {
      n = epoll_wait(epfd_.get(), events, kMaxEvents, -1);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; i++) {
      uint32_t id = static_cast<uint32_t>(events[i].data.u64);
      if (id == kStopKey) return;
      std::shared_ptr<IoSource> src;
      {
        std::lock_guard<std::mutex> lk(mu_);
        auto it = sources_.find(id);
        if (it == sources_.end()) continue;
        src = it->second;
      }
      std::lock_guard<std::mutex> lk(src->io_mu);
      if (!src->closed) src->OnIo(events[i].events);
    }
  }
}

}  // namespace onbus
