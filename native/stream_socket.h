// StreamSocket: the native half of every byte-stream link -- TCP (IPv4/IPv6),
// Unix stream and seqpacket sockets, and adopted descriptors such as a serial
// port's tty.
//
// Buffer ownership (receive), decided once for the path: JavaScript allocates
// one byte ring (a power of two) and one ring of 32-byte records per link and
// hands both to StartReceive(); this object holds strong references to them.
// The I/O thread reads the socket straight into the byte ring (no copy) and,
// when a framer is set, frames the bytes in place: one record per chunk (raw)
// or per frame. A frame is always contiguous in the ring: when the space left
// before the ring's end could not hold a maximum-size frame, the partial frame
// (at most max_frame bytes) is moved to the start -- the only copy on this
// path, bounded and rare. The I/O thread publishes (record head, release
// point) as one 64-bit atomic: every byte before the release point is either
// in a published record or was discarded. JavaScript reads records between its
// tail and the head during one onBatch call; when the handler returns, the
// tails advance to the snapshot and the space goes back to the I/O thread.
// Views are therefore valid only until the handler returns. A full ring pauses
// reading (the socket leaves the epoll set, the kernel buffer and then TCP
// flow control push back on the sender): a stream never drops.
//
// Registration is EPOLLONESHOT: each I/O callback re-arms with exactly the
// events still wanted, so a hung-up descriptor whose reading is paused or
// finished cannot spin the I/O thread on EPOLLHUP.
//
// Send: writev()/sendmsg() on the JavaScript thread, straight from the
// caller's buffers (gathered, up to IOV_MAX per call, no copy). A partial
// write returns how far it got; JavaScript keeps the rest (references) and
// asks for EPOLLOUT. File segments in the same queue go out with sendfile()
// (page cache to socket, no copy through user space).
#pragma once
#include <napi.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "framer.h"
#include "reactor.h"
#include "util/unique_fd.h"

namespace onbus {

// Kinds of stream descriptor (shared with lib/links/stream).
enum StreamKind : int32_t {
  kStreamTcp4 = 1,
  kStreamTcp6 = 2,
  kStreamUnix = 3,
  kStreamSeqpacket = 4,
  kStreamTty = 5,  // a character device (serial port): read()/writev(), no socket calls
};

// Record layout (uint32 words), shared with lib/links/stream/batch.ts.
enum StreamRecWord : uint32_t {
  kRecOffset = 0,      // byte offset of the chunk/frame in the ring
  kRecLength = 1,      // bytes shown
  kRecFlags = 2,       // StreamRecFlag bits
  kRecTag = 3,         // framer-defined tag (0 for built-in framers)
  kRecSec = 4,         // receive stamp (CLOCK_REALTIME), seconds
  kRecNsec = 5,        //   and nanoseconds
  kRecPayload = 6,     // payload offset within the frame (header length)
  kRecSize = 7,        // size on the wire (seqpacket: > length when truncated)
  kRecWords = 8,
};
enum StreamRecFlag : uint32_t {
  kRecTruncated = 1,    // seqpacket message longer than max frame size
  kRecKernelStamp = 2,  // the stamp is the kernel's (SO_TIMESTAMPING)
  kRecReadStamp = 32,   // no kernel stamp: taken by the I/O thread on wake-up
};

// Events delivered through onEvent(kind, a, b) (shared with bindings/index.ts).
enum StreamEventKind : uint32_t {
  kEvWritable = 2,
  kEvError = 4,       // a: -errno of a failed read
  kEvConnect = 5,     // a: 0 or -errno of the connect()
  kEvEnd = 6,         // the peer closed (read returned 0, or EIO on a tty)
  kEvFrameError = 7,  // a: reason, b: declared size
};

struct StreamCounters {
  std::atomic<uint64_t> rx_bytes{0}, rx_reads{0}, rx_records{0}, rx_pauses{0}, rx_wraps{0}, rx_wrap_bytes{0}, rx_rewinds{0};
  std::atomic<uint64_t> discarded_bytes{0}, oversize{0}, garbage_bytes{0}, bad_frames{0}, kernel_stamps{0};
  uint64_t tx_bytes = 0, tx_calls = 0, tx_eagain = 0;
};

struct StreamRx;

class StreamSocket : public Napi::ObjectWrap<StreamSocket>, public JsTarget {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit StreamSocket(const Napi::CallbackInfo& info);
  ~StreamSocket() override;

  void OnWake(Napi::Env env, uint32_t kind) override;

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Adopt(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value ConnectUnix(const Napi::CallbackInfo& info);
  Napi::Value SetOption(const Napi::CallbackInfo& info);
  Napi::Value GetOption(const Napi::CallbackInfo& info);
  Napi::Value SetFramer(const Napi::CallbackInfo& info);
  Napi::Value StartReceive(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value SendFile(const Napi::CallbackInfo& info);
  Napi::Value WatchWritable(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info);
  Napi::Value PeerCred(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value SetBusyPoll(const Napi::CallbackInfo& info);
  static Napi::Value Crc32cOf(const Napi::CallbackInfo& info);
  static Napi::Value MakeFramer(const Napi::CallbackInfo& info);

  int Register(int fd, int kind);
  void DoClose();
  void DeliverBatch(Napi::Env env);
  void DeliverEvents(Napi::Env env, uint32_t kind);

  std::shared_ptr<Reactor> reactor_;
  std::shared_ptr<StreamRx> rx_;  // shared with the I/O thread
  int kind_ = 0;
  uint32_t id_ = 0;
  LoopRef loop_ref_;
  bool closed_ = false;
  bool in_batch_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_event_;
  Napi::Reference<Napi::ArrayBuffer> ring_ref_;
  Napi::Reference<Napi::ArrayBuffer> meta_ref_;
  std::vector<iovec> tx_iov_;  // JS thread scratch
  std::vector<mmsghdr> tx_msgs_;
};

}  // namespace onbus
