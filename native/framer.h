// Framer: turns a byte stream into frames on the I/O thread, where the bytes
// already are, so JavaScript gets one record per frame and never re-scans.
//
// The interface is deliberately small so that other links (MAVLink, a binary
// sensor protocol) can plug their own parser in: implement Next(), and hand
// the object to a StreamSocket with WrapFramer() (a type-tagged external, see
// docs/STREAMS.md). Built-in framers: length-prefixed and delimited; "raw"
// means no framer at all (one record per read).
//
// Contract of Next(data, len): `data` starts at the first byte not yet framed
// (it stays contiguous: the stream guarantees max_frame bytes of room after
// it). The framer answers with one step:
//   kNeedMore  not enough bytes yet; `size` is the total needed from data[0]
//              when known (0 = unknown). The stream calls again when more
//              bytes arrived. A framer must never ask for more than max_frame.
//   kFrame     data[0 .. size) is one frame; `length` bytes of it are shown to
//              JavaScript (<= size: a delimiter can be left out), with the
//              payload starting at `payload_offset` and a framer-defined `tag`.
//   kDiscard   drop `size` bytes from data[0] (garbage, a bad frame, or an
//              oversize frame). `size` may exceed `len`: the rest is dropped
//              as it arrives, without being stored (bounded memory whatever
//              the peer declares). `reason` says why; kReasonOversize raises
//              one 'frameError' event carrying `declared`.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onbus {

enum FrameReason : uint8_t {
  kReasonNone = 0,
  kReasonGarbage = 1,   // bytes before a frame start (resynchronising)
  kReasonOversize = 2,  // a frame larger than max_frame
  kReasonBadFrame = 3,  // a frame whose header is impossible (e.g. length < header)
  kReasonResync = 4,    // the rest of an oversize frame, dropped as it arrives
};

struct FrameStep {
  enum Kind : uint8_t { kNeedMore, kFrame, kDiscard };
  Kind kind = kNeedMore;
  uint8_t reason = kReasonNone;
  size_t size = 0;
  size_t length = 0;
  uint32_t payload_offset = 0;
  uint32_t tag = 0;
  uint64_t declared = 0;

  static FrameStep NeedMore(size_t total = 0) {
    FrameStep s;
    s.size = total;
    return s;
  }
  static FrameStep Frame(size_t size, size_t length, uint32_t payload_offset = 0, uint32_t tag = 0) {
    FrameStep s;
    s.kind = kFrame;
    s.size = size;
    s.length = length;
    s.payload_offset = payload_offset;
    s.tag = tag;
    return s;
  }
  static FrameStep Discard(size_t size, uint8_t reason, uint64_t declared = 0) {
    FrameStep s;
    s.kind = kDiscard;
    s.size = size;
    s.reason = reason;
    s.declared = declared;
    return s;
  }
};

class Framer {
 public:
  virtual ~Framer() = default;
  virtual FrameStep Next(const uint8_t* data, size_t len) = 0;
  // Forget any partial state (the stream reconnected, or was reset).
  virtual void Reset() {}
  // The configured maximum frame size; set by the stream before first use.
  size_t max_frame = 65536;
};

// Length-prefixed frames: [magic][...][length field][payload], where the
// length field sits at `length_offset` and the total frame size is
// value + `adjust`. With a magic, a bad or oversize frame resynchronises by
// scanning for the next magic; without one, an oversize frame is skipped by
// its declared length (streamed, never stored).
struct LengthFramerConfig {
  uint32_t length_size = 2;    // 1, 2 or 4 bytes
  bool little_endian = false;  // network order by default
  uint32_t length_offset = 0;  // bytes before the length field (magic included)
  int64_t adjust = -1;         // total = value + adjust; -1 = header size (value counts the payload only)
  std::vector<uint8_t> magic;  // optional frame start marker (at offset 0)
};

// Delimited frames (NMEA lines, text protocols): bytes up to a delimiter of
// 1-8 bytes. A line longer than max_frame is reported once and dropped up to
// the next delimiter, then framing resumes.
struct DelimitedFramerConfig {
  std::vector<uint8_t> delimiter{'\n'};
  bool include_delimiter = false;
  bool skip_empty = false;
};

std::unique_ptr<Framer> MakeLengthFramer(const LengthFramerConfig& cfg);
std::unique_ptr<Framer> MakeDelimitedFramer(const DelimitedFramerConfig& cfg);

// Hands a framer to JavaScript as an external tagged with onbus's framer type
// tag (napi_type_tag_object), so a StreamSocket can accept it and nothing else.
// Another native class (the MAVLink link) returns WrapFramer(...) from one of
// its methods; JavaScript passes the value to `setFramer`. Ownership moves to
// the socket that takes it; an external never taken is freed by the GC.
Napi::Value WrapFramer(Napi::Env env, std::unique_ptr<Framer> framer);
// Takes the framer out of a wrapped external (nullptr if `v` is not one, or
// was already taken).
std::unique_ptr<Framer> UnwrapFramer(Napi::Env env, Napi::Value v);

}  // namespace onbus
