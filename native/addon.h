// Per-environment state: the reactor (created on first use) and the exported
// classes. No statics anywhere, so worker threads and test forks each get
// their own.
#pragma once
#include <napi.h>

#include <memory>

#include "reactor.h"

namespace onbus {

class OnbusAddon : public Napi::Addon<OnbusAddon> {
 public:
  OnbusAddon(Napi::Env env, Napi::Object exports);
  ~OnbusAddon();
  std::shared_ptr<Reactor> reactor(Napi::Env env);

 private:
  Napi::Value ClockNs(const Napi::CallbackInfo& info);
  Napi::Value ClockPair(const Napi::CallbackInfo& info);
  Napi::Value Features(const Napi::CallbackInfo& info);
  std::shared_ptr<Reactor> reactor_;
};

}  // namespace onbus
