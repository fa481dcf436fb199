// MAVLink v1/v2 frame parser for the hot path: pure C++17 (no Node headers),
// shared by the addon (MavlinkFramer for streams, datagram batches for UDP),
// the router and the libFuzzer target.
//
// Semantics are those of lib/mavlink/parser.ts (the reference): a candidate
// starts at 0xFE (v1) or 0xFD (v2); a v2 incompatibility flag other than
// "signed" is refused; a known id whose declared length is out of range is
// refused before its bytes are awaited; then the CRC with the id's CRC_EXTRA.
// A refused candidate discards ONE byte and the search resumes at the next
// byte, so a good frame behind a false start byte is still found. A frame
// found inside the span a bad-CRC candidate declared turns that rejection
// into "truncated". Unknown ids are forwarded (default) after the checks an
// unverifiable frame can get (CRC consistent with some CRC_EXTRA, and the
// frame ends at the end of the data or where another checked frame starts),
// or, with forward_unknown = false, counted and searched as garbage.
//
// The parser reports a signed frame with is_signed (its 13 signature bytes
// are part of the frame); SignatureMatches() checks the signature with a key
// (the addon does so for links with a key). Timestamps and replay are the
// job of lib/mavlink/signing.ts. Zero-extension of truncated payloads is the decoder's job,
// except for target_system/target_component, which are read here with
// zero-extension (a truncated payload reads 0 = broadcast).
//
// Byte accounting: every byte the parser was shown ends up accepted,
// discarded or pending: bytes_in == bytes_accepted + bytes_discarded +
// pending(), at all times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace onbus::mav {

constexpr uint8_t kStxV1 = 0xFE;
constexpr uint8_t kStxV2 = 0xFD;
constexpr uint32_t kHeaderV1 = 6;
constexpr uint32_t kHeaderV2 = 10;
constexpr uint32_t kSignatureLength = 13;
constexpr uint8_t kIflagSigned = 0x01;
// v2 header + 255-byte payload + CRC + signature
constexpr uint32_t kMaxFrameLength = kHeaderV2 + 255 + 2 + kSignatureLength;

// X.25 CRC (CRC-16/MCRF4XX) as MAVLink computes it.
uint16_t CrcCalculate(const uint8_t* data, size_t len, uint16_t crc = 0xFFFF);
uint16_t CrcAccumulate(uint8_t b, uint16_t crc);
// Whether some CRC_EXTRA byte turns `crc` into `received` (1 in 256 random pairs).
bool CrcExtraConsistent(uint16_t crc, uint16_t received);

struct MsgInfo {
  uint8_t crc_extra = 0;
  uint8_t min_len = 0;  // payload length without extension fields
  uint8_t max_len = 0;  // payload length with extension fields
  // Byte offset of target_system / target_component in the (wire-ordered)
  // payload, -1 if the message has no such field.
  int16_t target_system_ofs = -1;
  int16_t target_component_ofs = -1;
};

// Message id -> MsgInfo. Built at run time (from the JS dialect tables, so a
// user's dialect XML works natively too); immutable once shared with parsers.
class Dialect {
 public:
  void Set(uint32_t msgid, const MsgInfo& info);
  const MsgInfo* Find(uint32_t msgid) const {
    if (msgid < dense_.size()) return dense_[msgid].present ? &dense_[msgid].info : nullptr;
    if (sparse_.empty()) return nullptr;
    auto it = sparse_.find(msgid);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    MsgInfo info;
    bool present = false;
  };
  static constexpr uint32_t kDenseLimit = 1u << 16;  // ids below: a flat table
  std::vector<Slot> dense_;
  std::unordered_map<uint32_t, MsgInfo> sparse_;
  size_t count_ = 0;
};

enum class Reject : uint8_t {
  kBadCrc,          // CRC mismatch (corruption or a false start byte)
  kTruncated,       // a frame cut short (datagram/stream ended, or a good frame starts inside it)
  kBadLength,       // declared payload length impossible for the (known) id
  kIncompatFlags,   // a v2 incompatibility flag other than "signed"
  kUnknownDropped,  // an unknown id in drop mode (forward_unknown = false)
  kCount
};
const char* RejectName(Reject r);  // "bad_crc", "truncated", ... (JS names)

struct FrameInfo {
  uint32_t offset = 0;  // of the frame in the data passed (ParseDatagram) / 0 (Next)
  uint32_t length = 0;  // whole frame, signature included
  uint32_t msgid = 0;
  uint8_t version = 2;
  uint8_t sysid = 0, compid = 0, seq = 0;
  uint8_t incompat_flags = 0, compat_flags = 0;
  uint8_t payload_len = 0;  // as sent (v2 drops trailing zeros)
  bool known = false;       // id is in the dialect (CRC fully checked)
  bool is_signed = false;   // carries a 13-byte signature (not verified here)
  int16_t target_system = -1;     // -1: the message has no such field
  int16_t target_component = -1;  // (or its id is unknown)
};

constexpr size_t kSigningKeyLength = 32;

// Whether the signature of the signed MAVLink 2 frame frame[0 .. len) (len =
// its whole length, signature included) matches `key`: the first 6 bytes of
// SHA-256(key + frame without its 6 signature bytes). False for a frame too
// short to be signed.
bool SignatureMatches(const uint8_t key[kSigningKeyLength], const uint8_t* frame, size_t len);

struct Counters {
  uint64_t bytes_in = 0;
  uint64_t bytes_accepted = 0;
  uint64_t bytes_discarded = 0;
  uint64_t frames = 0;
  uint64_t unknown_id = 0;  // unknown ids: forwarded, or dropped in drop mode
  uint64_t rejected[static_cast<int>(Reject::kCount)] = {};
};

struct ParserOptions {
  bool forward_unknown = true;  // false: 'drop' mode of parser.ts
  bool accept_v1 = true;        // false: 0xFE is not a start byte
};

// One step of stream parsing.
struct Step {
  enum Kind : uint8_t { kNeedMore, kFrame, kDiscard };
  Kind kind = kNeedMore;
  // kNeedMore: total bytes needed from data[0] when known (else 0).
  // kFrame: frame bytes (== out->length). kDiscard: bytes dropped from data[0].
  uint32_t size = 0;
  // kDiscard: the reason when a candidate was refused (its first byte is the
  // one dropped); -1 for garbage between frames (and pieces of a cut frame
  // already counted).
  int8_t reason = -1;
};

class Parser {
 public:
  explicit Parser(std::shared_ptr<const Dialect> dialect, ParserOptions options = {});

  // Stream mode (serial/TCP), the shape of onbus::Framer::Next: `data` starts
  // at the first byte not consumed yet and holds every byte received since
  // (len only grows between calls until a step consumes). `final`: no more
  // bytes will follow (end of stream): incomplete candidates are refused
  // instead of awaited. On kFrame, *out describes data[0 .. size).
  Step Next(const uint8_t* data, size_t len, FrameInfo* out, bool final = false);

  // Datagram mode (UDP): every complete frame in one datagram; a frame cut at
  // its end is truncated. Calls on_frame(const uint8_t* frame, const
  // FrameInfo&) for each accepted frame, in order (info.offset = position in
  // `data`). Must not be interleaved with a stream in progress (Next with
  // pending bytes).
  template <class F>
  void ParseDatagram(const uint8_t* data, size_t len, F&& on_frame) {
    size_t pos = 0;
    FrameInfo info;
    while (pos < len) {
      Step s = Next(data + pos, len - pos, &info, true);
      if (s.kind == Step::kFrame) {
        info.offset = static_cast<uint32_t>(pos);
        on_frame(data + pos, static_cast<const FrameInfo&>(info));
      }
      pos += s.size;  // final: never kNeedMore
    }
  }

  // Stream mode: forget pending bytes (counted as discarded, not rejected).
  void Reset();

  const Counters& counters() const { return counters_; }
  // Bytes shown but not yet consumed (stream mode).
  uint64_t pending() const { return counters_.bytes_in - consumed_; }
  const Dialect& dialect() const { return *dialect_; }
  const ParserOptions& options() const { return options_; }

 private:
  enum Check : uint8_t { kGood, kMore, kBad };
  Check CheckAt(const uint8_t* data, size_t j, size_t end) const;
  Step Consume(Step s);
  Step Refuse(Reject r);
  Step Incomplete(size_t len);

  std::shared_ptr<const Dialect> dialect_;
  const Dialect* d_;
  ParserOptions options_;
  Counters counters_;
  uint64_t consumed_ = 0;  // stream position of data[0]
  int64_t bad_crc_start_ = -1;
  int64_t bad_crc_end_ = -1;
  int64_t trunc_end_ = -1;
};

}  // namespace onbus::mav
