// IpcSocket: the native half of the bus's cross-process transport
// (lib/bus/ipc/). A Unix SOCK_SEQPACKET endpoint -- listening or connected --
// on the reactor, plus the shared-memory helpers the transport needs
// (memfd_create, seals, mmap exposed as an external ArrayBuffer).
//
// Security: a listening socket's file is chmod 0600 right after bind (the
// transport also keeps it in a 0700 directory, so there is no window in which
// another user could reach it). Every accepted and every connected peer is
// checked with SO_PEERCRED: a peer of another uid is refused and closed before
// a byte is read from it. memfds are created CLOEXEC, mode 0600 and sealed
// against resizing; they leave the process only as SCM_RIGHTS on a checked
// socket.
//
// Buffer ownership (receive): JavaScript hands StartReceive() one ArrayBuffer
// of `slots` fixed-size slots, a Uint32Array of lengths and an Int32Array of
// received descriptors, once. Reception runs on the JS thread: the I/O thread
// only notices readability, disarms EPOLLIN and wakes JavaScript, which drains
// with recvmmsg into the slots and calls onRecv(count) per batch (a budget of
// batches per wake, then the socket is re-armed). The slots are overwritten by
// the next batch, so views are valid until onRecv returns. pause() leaves the
// socket disarmed: the kernel queue fills and the sender sees EAGAIN (the
// back-pressure of a reliable transport). Descriptors received in a batch
// belong to JavaScript from then on (map or closeFd them).
//
// Send: synchronous sendmmsg() on the JS thread straight from the caller's
// buffers (no copy); one descriptor can ride on the first message.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "reactor.h"
#include "util/unique_fd.h"

namespace onbus {

enum IpcWake : uint32_t { kIpcWakeEnd = 6 };

struct IpcIo;

class IpcSocket : public Napi::ObjectWrap<IpcSocket>, public JsTarget {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit IpcSocket(const Napi::CallbackInfo& info);
  ~IpcSocket() override;

  void OnWake(Napi::Env env, uint32_t kind) override;

 private:
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Accept(const Napi::CallbackInfo& info);
  Napi::Value PeerCred(const Napi::CallbackInfo& info);
  Napi::Value StartReceive(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value WatchWritable(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static Napi::Value MemfdCreate(const Napi::CallbackInfo& info);
  static Napi::Value Map(const Napi::CallbackInfo& info);
  static Napi::Value CloseFd(const Napi::CallbackInfo& info);
  static Napi::Value FdInfo(const Napi::CallbackInfo& info);

  int Register(int fd);
  void DoClose();
  void Drain(Napi::Env env);

  std::shared_ptr<Reactor> reactor_;
  std::shared_ptr<IpcIo> io_;  // shared with the I/O thread
  uint32_t id_ = 0;
  LoopRef loop_ref_;
  bool closed_ = false;
  bool listening_ = false;
  bool paused_ = false;
  bool in_recv_ = false;
  bool ended_ = false;
  Napi::FunctionReference on_recv_;
  Napi::FunctionReference on_event_;
  Napi::Reference<Napi::ArrayBuffer> ring_ref_;
  Napi::Reference<Napi::ArrayBuffer> lens_ref_;
  Napi::Reference<Napi::ArrayBuffer> fds_ref_;
  uint8_t* ring_ = nullptr;
  uint32_t* lens_ = nullptr;
  int32_t* fds_ = nullptr;
  uint32_t slot_size_ = 0, slots_ = 0;
};

}  // namespace onbus
