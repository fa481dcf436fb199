// Registration of the MAVLink parser classes (native/mavlink/mavlink_addon.cc).
#pragma once
#include <napi.h>

#include <memory>

#include "mavlink/parse.h"

namespace onbus::mav {
Napi::Function InitMavlinkDialect(Napi::Env env);
Napi::Function InitMavlinkParser(Napi::Env env);
// The dialect table of a MavlinkDialect object (lib/mavlink/native.ts
// nativeDialect()), for other native classes (the router); nullptr when `v`
// is not one. Immutable, shareable across threads.
std::shared_ptr<const Dialect> DialectOf(Napi::Env env, Napi::Value v);
}  // namespace onbus::mav
