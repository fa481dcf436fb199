#include "addon.h"

#include <errno.h>
#include <time.h>

#include "ipc_socket.h"
#include "mavlink/router.h"
#include "mavlink/mavlink_addon.h"
#include "rtp/rtp_receiver.h"
#include "stream_server.h"
#include "stream_socket.h"
#include "udp_socket.h"
#include "util/clock.h"

namespace onbus {

OnbusAddon::OnbusAddon(Napi::Env env, Napi::Object exports) {
  DefineAddon(exports, {
                           InstanceMethod<&OnbusAddon::ClockNs>("clockNs"),
                           InstanceMethod<&OnbusAddon::ClockPair>("clockPair"),
                           InstanceMethod<&OnbusAddon::Features>("features"),
                           InstanceValue("UdpSocket", UdpSocket::Init(env)),
                           InstanceValue("StreamSocket", StreamSocket::Init(env)),
                           InstanceValue("StreamServer", StreamServer::Init(env)),
                           InstanceValue("IpcSocket", IpcSocket::Init(env)),
                           InstanceValue("MavRouter", MavRouter::Init(env)),
                           InstanceValue("MavlinkDialect", mav::InitMavlinkDialect(env)),
                           InstanceValue("MavlinkParser", mav::InitMavlinkParser(env)),
                           InstanceValue("RtpReceiver", RtpReceiver::Init(env)),
                       });
}

OnbusAddon::~OnbusAddon() {
  if (reactor_) reactor_->Shutdown();
}

std::shared_ptr<Reactor> OnbusAddon::reactor(Napi::Env env) {
  if (!reactor_) reactor_ = Reactor::Create(env);
  return reactor_;
}

static clockid_t ClockOf(int domain) {
  switch (domain) {
    case 1: return CLOCK_MONOTONIC;
    case 2: return CLOCK_MONOTONIC_RAW;
    case 3: return CLOCK_TAI;
    default: return CLOCK_REALTIME;
  }
}

// clockNs(domain) -> bigint nanoseconds. 0 realtime, 1 monotonic, 2 raw, 3 TAI.
Napi::Value OnbusAddon::ClockNs(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), onbus::ClockNs(ClockOf(info[0].As<Napi::Number>().Int32Value())));
}

// clockPair(domain, out: Float64Array) -> writes [sec, nsec] with no allocation.
Napi::Value OnbusAddon::ClockPair(const Napi::CallbackInfo& info) {
  Time64 t = ClockGet(ClockOf(info[0].As<Napi::Number>().Int32Value()));
  double* o = info[1].As<Napi::Float64Array>().Data();
  o[0] = static_cast<double>(t.sec);
  o[1] = static_cast<double>(t.nsec);
  return info.Env().Undefined();
}

Napi::Value OnbusAddon::Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("sizeofTimeT", Napi::Number::New(env, sizeof(time_t)));
  o.Set("sizeofPointer", Napi::Number::New(env, sizeof(void*)));
  o.Set("metaWords", Napi::Number::New(env, kMetaWords));
#ifdef __SANITIZE_ADDRESS__
  o.Set("sanitize", Napi::Boolean::New(env, true));
#else
  o.Set("sanitize", Napi::Boolean::New(env, false));
#endif
  return o;
}

}  // namespace onbus

using onbus::OnbusAddon;
NODE_API_NAMED_ADDON(onbus, OnbusAddon)
