// MavRouter: a MAVLink router whose endpoints are owned and driven natively.
//
// Threading: the router's endpoints (UDP sockets, TCP listeners and
// connections, UARTs/PTYs, one timerfd) sit in the router's own epoll set,
// and that epoll descriptor is one IoSource in the reactor. So the whole
// router is served on the reactor thread under one mutex (the source's
// io_mu): a frame read on one endpoint is parsed, routed and written to its
// destinations without JavaScript. The JS thread takes the same mutex for the
// few things it does (send from the local port, stats, adding endpoints,
// close), never while the reactor is being asked to remove the source.
//
// Buffer ownership: received datagrams live in the router's receive slots and
// stream bytes in each endpoint's receive buffer; routed frames are views
// into those until the batch is flushed (sendmmsg per UDP destination, one
// write per stream destination) at the end of the batch, before any buffer
// is reused. Frames for JavaScript (the local endpoint, only when some port
// subscribed) are copied into a bounded queue and handed over through the
// reactor's one thread-safe function; the queue's overflow is counted.
//
// Routing (https://mavlink.io/en/guide/routing.html, mavlink-router's rules):
// every endpoint learns the (sysid, compid) pairs it receives from. A frame
// goes to every endpoint except the one it came from, when it is a broadcast
// (no target field, target_system 0, or an id the dialect lacks), or to the
// endpoints where its target was seen (target_component 0: any component of
// the system; a component not seen anywhere: where the system was seen). An
// endpoint never receives a frame whose source it has itself sent (no echo,
// and what stops two routers joined twice from storming). A UDP server's
// peers each learn their own pairs and are routed between like endpoints.
#pragma once
#include <napi.h>

#include <memory>

#include "../reactor.h"

namespace onbus {

struct RouterCore;

class MavRouter : public Napi::ObjectWrap<MavRouter>, public JsTarget {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit MavRouter(const Napi::CallbackInfo& info);
  ~MavRouter() override;

  void OnWake(Napi::Env env, uint32_t kind) override;

 private:
  Napi::Value AddEndpoint(const Napi::CallbackInfo& info);
  Napi::Value RemoveEndpoint(const Napi::CallbackInfo& info);
  Napi::Value AdoptFd(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value SetLocal(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Routes(const Napi::CallbackInfo& info);
  Napi::Value SetBusyPoll(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void DoClose();

  std::shared_ptr<Reactor> reactor_;
  std::shared_ptr<RouterCore> core_;
  uint32_t id_ = 0;
  LoopRef loop_ref_;
  bool closed_ = false;
  bool in_callback_ = false;
  bool self_ref_ = false;  // the wrapper holds itself while open
  Napi::FunctionReference on_frames_;
  Napi::FunctionReference on_events_;
};

}  // namespace onbus
