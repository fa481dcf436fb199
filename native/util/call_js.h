// Calling JavaScript from a reactor wake-up.
#pragma once
#include <napi.h>

#include <initializer_list>

namespace onbus {

// Calls `fn`; an exception it throws is reported as uncaught
// ('uncaughtException', else exit code 1), as Node does for its own event
// callbacks. Left pending, Node-API (module version < 10) would only print
// DEP0168 and swallow it.
inline void CallReporting(Napi::Env env, const Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
  (void)fn.Call(args);
  if (env.IsExceptionPending()) {
    Napi::Error err = env.GetAndClearPendingException();
    napi_fatal_exception(env, err.Value());
  }
}

}  // namespace onbus
