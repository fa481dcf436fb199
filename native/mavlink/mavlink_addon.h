// Registration of the MAVLink parser classes (native/mavlink/mavlink_addon.cc).
#pragma once
#include <napi.h>

namespace onbus::mav {
Napi::Function InitMavlinkDialect(Napi::Env env);
Napi::Function InitMavlinkParser(Napi::Env env);
}  // namespace onbus::mav
