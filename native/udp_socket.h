// UdpSocket: the UDP link's native half.
//
// Buffer ownership (receive): JavaScript allocates two ArrayBuffers once per
// link -- the ring of fixed-size datagram slots and the ring of 64-byte
// metadata records -- and hands them to StartReceive(). This object keeps them
// alive with strong references. The I/O thread is the only writer of slots at
// [slot_tail, slot_head) complement and records past meta_head; JavaScript
// reads records [meta_tail, meta_head) during one onBatch call, after which
// this object advances the tails, returning the space to the I/O thread. Views
// handed to JavaScript are therefore valid only until the handler returns.
// When the ring is full the socket is taken out of the epoll set (paused) and
// the kernel queue absorbs the rest; the kernel's own drop counter
// (SO_RXQ_OVFL) counts whatever it cannot hold. onbus itself never drops.
//
// Send: synchronous sendmmsg() on the JS thread straight from the caller's
// buffers (no copy). Partial sends return how far they got and the errno that
// stopped them; the JavaScript side resumes from there, so no datagram is ever
// skipped silently.
#pragma once
#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "reactor.h"
#include "util/unique_fd.h"

namespace onbus {

class OnbusAddon;

// Metadata record layout (uint32 words), shared with lib/links/udp/batch.ts.
enum MetaWord : uint32_t {
  kMetaOffset = 0,   // byte offset of the payload in the slot ring
  kMetaLength = 1,   // bytes available at offset (<= slot size)
  kMetaFlags = 2,    // MetaFlag bits
  kMetaPort = 3,     // source port
  kMetaSwSec = 4,    // software (CLOCK_REALTIME) receive stamp, seconds
  kMetaSwNsec = 5,   //   and nanoseconds
  kMetaHwSec = 6,    // hardware (NIC clock) stamp, seconds
  kMetaHwNsec = 7,   //   and nanoseconds
  kMetaDrops = 8,    // SO_RXQ_OVFL: the socket's cumulative kernel drops
  kMetaSize = 9,     // the datagram's size on the wire (> length if truncated)
  kMetaAddr = 10,    // 16 bytes of source address (IPv4 in the first 4)
  kMetaScope = 14,   // IPv6 scope id
  kMetaSlotSeq = 15, // absolute slot sequence number (for releasing slots)
  kMetaWords = 16,
};
enum MetaFlag : uint32_t {
  kFlagTruncated = 1,
  kFlagSwStamp = 2,
  kFlagHwStamp = 4,
  kFlagIpv6 = 8,
  kFlagGroSegment = 16,
  kFlagStampAtRead = 32,  // the software stamp was taken when read, not on arrival
};

// Counters read by stats(); written on the I/O thread (rx) or JS thread (tx).
struct UdpCounters {
  std::atomic<uint64_t> rx_datagrams{0}, rx_bytes{0}, rx_truncated{0}, rx_errors{0};
  std::atomic<uint64_t> rx_batches{0}, rx_pauses{0}, rx_gro_super{0};
  std::atomic<uint32_t> kernel_drops{0};
  uint64_t tx_datagrams = 0, tx_bytes = 0, tx_errors = 0, tx_calls = 0, tx_eagain = 0;
};

struct UdpRx;

class UdpSocket : public Napi::ObjectWrap<UdpSocket>, public JsTarget {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit UdpSocket(const Napi::CallbackInfo& info);
  ~UdpSocket() override;

  void OnWake(Napi::Env env, uint32_t kind) override;

 private:
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info);
  Napi::Value SetOption(const Napi::CallbackInfo& info);
  Napi::Value GetOption(const Napi::CallbackInfo& info);
  Napi::Value BindDevice(const Napi::CallbackInfo& info);
  Napi::Value Membership(const Napi::CallbackInfo& info);
  Napi::Value StartReceive(const Napi::CallbackInfo& info);
  Napi::Value ParseDest(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value WatchWritable(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value SetBusyPoll(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void DoClose();
  uint32_t Events() const;
  void DeliverBatch(Napi::Env env);
  void DeliverQueuedEvents(Napi::Env env, uint32_t kind);

  std::shared_ptr<Reactor> reactor_;
  std::shared_ptr<UdpRx> rx_;  // shared with the I/O thread
  int family_;
  uint32_t id_ = 0;  // reactor registration id (0 = not registered)
  LoopRef loop_ref_;
  bool closed_ = false;
  bool in_batch_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_event_;
  Napi::Reference<Napi::ArrayBuffer> ring_ref_;
  Napi::Reference<Napi::ArrayBuffer> meta_ref_;

  // Send scratch, JS thread only; sized once, reused (no allocation per send).
  std::vector<mmsghdr> tx_msgs_;
  std::vector<iovec> tx_iov_;
  std::vector<char> tx_ctrl_;
};

}  // namespace onbus
