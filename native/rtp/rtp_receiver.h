// RtpReceiver: the RTP video receiver's native half (JavaScript face:
// lib/video/receiver.ts).
//
// Why its own sockets rather than a UdpSocket underneath: depacketisation and
// the reorder buffer run on the reactor thread right after recvmmsg(), so the
// JavaScript thread sees one wake-up per access unit instead of one per
// packet, and packets never cross into JavaScript at all. The socket plumbing
// (kernel receive stamps, SO_RXQ_OVFL, address parsing) is shared with the UDP
// link through native/util/rx_stamps.h and native/util/sockaddr.h.
//
// Buffer ownership: JavaScript allocates, once, a byte ring for frame data and
// a Float64 ring of frame records (kRtpRecWords each) and hands them to start().
// This object keeps both alive with strong references. The reactor thread is
// the only writer of data past data_head and records past rec_head; a frame is
// written contiguously (the ring wraps by skipping its tail end). JavaScript
// reads records [rec_tail, rec_head) during one onFrames call, after which
// this object advances both tails; views handed to JavaScript are valid only
// until that call returns. A frame that does not fit (JavaScript is behind) is
// dropped and counted (framesDropped) -- video is real-time, so the reactor
// does not stall the socket for it.
//
// Three descriptors share one lock (RtpRx::io_mu): the RTP socket, the
// optional RTCP socket (port + 1 or any port) and a timerfd that releases
// packets when the latency bound expires and paces RTCP receiver reports.
//
// Two ways to run them (start()'s config.jsThread):
// - I/O thread (0): registered with the reactor; a completed frame wakes the
//   JavaScript thread through the reactor's thread-safe function (one wake-up
//   per batch of frames finished in one reactor turn).
// - JavaScript thread (1): each descriptor is a uv_poll_t on the JavaScript
//   thread's libuv loop; the poll callback reads, depacketises and calls
//   onFrames synchronously -- no thread hop, no cross-thread wake-up. The
//   rings and the lock are used the same way (the lock is then uncontended).
#pragma once
#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>

#include "reactor.h"

namespace onbus {

struct RtpRx;
struct RtpPoll;

// Frame record layout (Float64 words), shared with lib/video/receiver.ts.
enum RtpRecWord : uint32_t {
  kRtpRecOffset = 0,
  kRtpRecLength = 1,
  kRtpRecRtpTs = 2,
  kRtpRecFlags = 3,
  kRtpRecSsrc = 4,
  kRtpRecFirstSeq = 5,
  kRtpRecLastSeq = 6,
  kRtpRecPackets = 7,
  kRtpRecRxFirstSec = 8,
  kRtpRecRxFirstNsec = 9,
  kRtpRecRxLastSec = 10,
  kRtpRecRxLastNsec = 11,
  kRtpRecCapSec = 12,
  kRtpRecCapNsec = 13,
  kRtpRecSpsOff = 14,
  kRtpRecSpsLen = 15,
  kRtpRecPpsOff = 16,
  kRtpRecPpsLen = 17,
  kRtpRecVpsOff = 18,
  kRtpRecVpsLen = 19,
  kRtpRecDataEnd = 20,  // data ring position after this frame (mod 2^32)
  kRtpRecNRanges = 21,
  kRtpRecRanges = 22,   // 8 pairs (first, last)
  kRtpRecWords = 40,
};

class RtpReceiver : public Napi::ObjectWrap<RtpReceiver>, public JsTarget {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RtpReceiver(const Napi::CallbackInfo& info);
  ~RtpReceiver() override;
  void OnWake(Napi::Env env, uint32_t kind) override;
  // JavaScript-thread mode: a poll handle fired (which: 0 RTP, 1 RTCP, 2 timer).
  void OnPoll(int which, int status);

 private:
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value BindRtcp(const Napi::CallbackInfo& info);
  Napi::Value Join(const Napi::CallbackInfo& info);
  Napi::Value SetRcvBuf(const Napi::CallbackInfo& info);
  Napi::Value LocalPorts(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value RequestKeyframe(const Napi::CallbackInfo& info);
  Napi::Value SetBusyPoll(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void DoClose();
  void DeliverFrames(Napi::Env env);
  void DeliverErrors(Napi::Env env);
  int StartPolls(Napi::Env env);
  void ClosePolls();

  std::shared_ptr<Reactor> reactor_;
  std::shared_ptr<RtpRx> rx_;
  int family_;
  uint32_t ids_[3] = {0, 0, 0};  // reactor ids: RTP socket, RTCP socket, timer
  LoopRef loop_ref_;
  bool closed_ = false;
  bool in_call_ = false;
  bool js_thread_ = false;
  bool poll_refed_ = true;
  RtpPoll* polls_[3] = {nullptr, nullptr, nullptr};
  std::unique_ptr<Napi::AsyncContext> async_;
  Napi::FunctionReference on_frames_;
  Napi::FunctionReference on_error_;
  Napi::Reference<Napi::ArrayBuffer> data_ref_;
  Napi::Reference<Napi::ArrayBuffer> rec_ref_;
};

}  // namespace onbus
