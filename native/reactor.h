// Reactor: one I/O thread per Node environment, waiting on one epoll set.
//
// Threading (decided by measurement, see docs/ARCHITECTURE.md): sockets are
// drained on this thread into rings owned by each link, so a JavaScript stall
// (GC, a perception step) does not stop the kernel queues from being emptied.
// The thread reaches JavaScript through exactly one Node-API thread-safe
// function; each wake carries a token (target id + kind) and the JS-thread side
// looks the target up by id, so a target closed in the meantime is skipped.
//
// Ownership: IoSource objects are shared between the epoll registration (this
// thread) and their JavaScript wrapper. Remove() unregisters and then marks the
// source closed under its own mutex, so once Remove() returns the I/O thread
// will not touch it again.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "util/unique_fd.h"

namespace onbus {

class IoSource {
 public:
  virtual ~IoSource() = default;
  // Called on the I/O thread with `io_mu` held and `closed` false.
  virtual void OnIo(uint32_t events) = 0;
  // Called once at environment teardown with `io_mu` held: release the OS
  // resource now, whatever JavaScript still holds, so no descriptor outlives
  // its environment (a worker thread that exits closes its links).
  virtual void Abandon() = 0;
  std::mutex io_mu;
  bool closed = false;  // guarded by io_mu
};

// Implemented by JavaScript-facing objects that receive wake-ups.
class JsTarget {
 public:
  virtual ~JsTarget() = default;
  virtual void OnWake(Napi::Env env, uint32_t kind) = 0;
};

enum WakeKind : uint32_t { kWakeRx = 1, kWakeWritable = 2, kWakeTxStamp = 3, kWakeError = 4 };

class Reactor;

// One link's hold on the event loop: counted on the reactor at most once,
// however often JavaScript calls ref()/unref(), and released on close.
class LoopRef {
 public:
  void Ref(Reactor* r);
  void Unref(Reactor* r);

 private:
  bool refed_ = false;
};

class Reactor : public std::enable_shared_from_this<Reactor> {
 public:
  static std::shared_ptr<Reactor> Create(Napi::Env env);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // JS thread. Returns an id for the source (also the epoll key), or -errno.
  int64_t Add(int fd, uint32_t events, std::shared_ptr<IoSource> src);
  int Modify(uint32_t id, int fd, uint32_t events);
  void Remove(uint32_t id, int fd);

  // Any thread (normally the I/O thread): ask the JS thread to call
  // target(id)->OnWake(kind). Wake-ups are not coalesced here; callers keep
  // their own "scheduled" flag so one wake serves many events.
  void Wake(uint32_t id, uint32_t kind);

  // JS thread: targets receiving wakes.
  void SetTarget(uint32_t id, JsTarget* t);
  void ClearTarget(uint32_t id);

  // JS thread: keep the event loop alive while any link is referenced.
  void Ref();
  void Unref();

  // Busy-poll: spin this long (microseconds) in epoll_wait(0) before sleeping.
  // The largest request of any link wins; 0 restores plain sleeping.
  void RequestSpin(uint32_t id, uint32_t us);

  // Closes the thread; called at environment teardown (before the TSFN's own
  // cleanup, which Node runs after ours because hooks run last-in first-out).
  void Shutdown();
  bool shut_down() const { return shut_down_; }
  int epoll_fd() const { return epfd_.get(); }

 private:
  explicit Reactor(Napi::Env env);
  void Run();
  static void CallJs(Napi::Env env, Napi::Function, Reactor* self, void* data);
  using Tsfn = Napi::TypedThreadSafeFunction<Reactor, void, &Reactor::CallJs>;

  Napi::Env env_;
  UniqueFd epfd_;
  UniqueFd stopfd_;  // eventfd: wakes the thread to exit
  std::thread thread_;
  Tsfn tsfn_;
  std::mutex mu_;  // guards sources_
  std::unordered_map<uint32_t, std::shared_ptr<IoSource>> sources_;
  std::unordered_map<uint32_t, JsTarget*> targets_;  // JS thread only
  std::unordered_map<uint32_t, uint32_t> spin_;      // JS thread only
  std::atomic<uint32_t> spin_us_{0};
  uint32_t next_id_ = 1;
  int refs_ = 0;
  bool shut_down_ = false;
};

inline void LoopRef::Ref(Reactor* r) {
  if (!refed_ && r) {
    refed_ = true;
    r->Ref();
  }
}

inline void LoopRef::Unref(Reactor* r) {
  if (refed_ && r) {
    refed_ = false;
    r->Unref();
  }
}

}  // namespace onbus
