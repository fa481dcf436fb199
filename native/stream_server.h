// StreamServer: a listening TCP or Unix socket that accepts in batches.
//
// The I/O thread accepts up to kAcceptBudget connections per wake-up
// (accept4, non-blocking, close-on-exec) and queues the descriptors; one
// JavaScript call per batch hands them over. During that call JavaScript
// claims each descriptor it wants with take(i) (and adopts it into a
// StreamSocket at once); any descriptor not taken is closed when the call
// returns, and any still queued at close or environment teardown is closed
// too, so an accepted connection can never leak.
//
// Registration is EPOLLONESHOT and re-armed after each batch reached
// JavaScript: a flood of connections is paced by JavaScript's ability to
// take them, and EMFILE cannot spin the I/O thread (JavaScript re-arms after
// a pause instead).
#pragma once
#include <napi.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "reactor.h"
#include "util/unique_fd.h"

namespace onbus {

struct ServerRx;

class StreamServer : public Napi::ObjectWrap<StreamServer>, public JsTarget {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit StreamServer(const Napi::CallbackInfo& info);
  ~StreamServer() override;

  void OnWake(Napi::Env env, uint32_t kind) override;

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value SetOption(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value BindUnix(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Take(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void DoClose();

  std::shared_ptr<Reactor> reactor_;
  std::shared_ptr<ServerRx> rx_;
  int kind_ = 0;
  uint32_t id_ = 0;
  LoopRef loop_ref_;
  bool closed_ = false;
  std::vector<int> batch_;  // descriptors of the batch being handed over (JS thread)
  Napi::FunctionReference on_accept_;
  Napi::FunctionReference on_event_;
};

}  // namespace onbus
