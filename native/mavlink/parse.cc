// MAVLink frame parser: see parse.h. Mirrors lib/mavlink/parser.ts step for
// step (the equivalence test in test/mavlink-native.test.ts holds it to that).
#include "mavlink/parse.h"

#include <algorithm>

#include "util/sha256.h"

namespace onbus::mav {

namespace {

// Slicing-by-8 tables of the X.25 CRC. With f(c) = (c >> 8) ^ T[c & 0xff]
// (one step with a zero input byte; f is linear over GF(2)), k steps over
// bytes b0..b(k-1) from register c equal f^k(c ^ (b0 | b1 << 8)) XORed with
// f^(k-2j)(b(2j) | b(2j+1) << 8) for the later byte pairs, and f^m(x) of a
// byte x in the low position is the table t[m-1][x]. t[0] is the classic
// byte-at-a-time table.
struct CrcTable {
  uint16_t t[8][256];
  constexpr CrcTable() : t() {
    for (int x = 0; x < 256; x++) {
      uint32_t tmp = static_cast<uint32_t>(x);
      tmp = (tmp ^ (tmp << 4)) & 0xFF;
      t[0][x] = static_cast<uint16_t>(((tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xFFFF);
    }
    for (int k = 1; k < 8; k++)
      for (int x = 0; x < 256; x++) {
        uint16_t c = t[k - 1][x];
        t[k][x] = static_cast<uint16_t>((c >> 8) ^ t[0][c & 0xFF]);
      }
  }
};
constexpr CrcTable kCrc;

inline bool IsStart(uint8_t b, bool v1) { return b == kStxV2 || (v1 && b == kStxV1); }

inline uint32_t MsgId(const uint8_t* p, bool v2) {
  return v2 ? (static_cast<uint32_t>(p[7]) | (static_cast<uint32_t>(p[8]) << 8) | (static_cast<uint32_t>(p[9]) << 16))
            : p[5];
}

}  // namespace

uint16_t CrcCalculate(const uint8_t* data, size_t len, uint16_t crc) {
  const auto& t = kCrc.t;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint8_t* p = data + i;
    const uint32_t v = crc ^ (p[0] | (p[1] << 8));
    crc = static_cast<uint16_t>(t[7][v & 0xFF] ^ t[6][v >> 8] ^ t[5][p[2]] ^ t[4][p[3]] ^ t[3][p[4]] ^ t[2][p[5]] ^
                                t[1][p[6]] ^ t[0][p[7]]);
  }
  for (; i < len; i++) crc = static_cast<uint16_t>((crc >> 8) ^ t[0][(crc ^ data[i]) & 0xFF]);
  return crc;
}

uint16_t CrcAccumulate(uint8_t b, uint16_t crc) { return static_cast<uint16_t>((crc >> 8) ^ kCrc.t[0][(crc ^ b) & 0xFF]); }

bool CrcExtraConsistent(uint16_t crc, uint16_t received) {
  const uint32_t t = (received ^ (crc >> 8)) & 0xFFFF;
  const uint32_t h = t >> 8;
  const uint32_t tmp = h ^ (h >> 5);
  return (((tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xFFFF) == t;
}

const char* RejectName(Reject r) {
  switch (r) {
    case Reject::kBadCrc: return "bad_crc";
    case Reject::kTruncated: return "truncated";
    case Reject::kBadLength: return "bad_length";
    case Reject::kIncompatFlags: return "incompat_flags";
    case Reject::kUnknownDropped: return "unknown_dropped";
    default: return "unknown";
  }
}

bool SignatureMatches(const uint8_t key[kSigningKeyLength], const uint8_t* frame, size_t len) {
  if (len < kHeaderV2 + 2 + kSignatureLength) return false;
  Sha256 h;
  h.Update(key, kSigningKeyLength);
  h.Update(frame, len - 6);
  uint8_t d[Sha256::kDigestLength];
  h.Final(d);
  const uint8_t* sig = frame + len - 6;
  uint8_t diff = 0;
  for (int k = 0; k < 6; k++) diff |= static_cast<uint8_t>(d[k] ^ sig[k]);
  return diff == 0;
}

void Dialect::Set(uint32_t msgid, const MsgInfo& info) {
  msgid &= 0xFFFFFF;
  if (msgid < kDenseLimit) {
    if (msgid >= dense_.size()) dense_.resize(msgid + 1);
    if (!dense_[msgid].present) count_++;
    dense_[msgid].info = info;
    dense_[msgid].present = true;
  } else {
    if (sparse_.find(msgid) == sparse_.end()) count_++;
    sparse_[msgid] = info;
  }
}

Parser::Parser(std::shared_ptr<const Dialect> dialect, ParserOptions options)
    : dialect_(dialect ? std::move(dialect) : std::make_shared<const Dialect>()), d_(dialect_.get()), options_(options) {}

Step Parser::Consume(Step s) {
  consumed_ += s.size;
  return s;
}

Step Parser::Refuse(Reject r) {
  counters_.rejected[static_cast<int>(r)]++;
  counters_.bytes_discarded += 1;
  Step s;
  s.kind = Step::kDiscard;
  s.size = 1;
  s.reason = static_cast<int8_t>(r);
  return Consume(s);
}

// A candidate that cannot complete (end of datagram or stream): counted once
// as truncated; start bytes inside the span it declared that cannot complete
// either belong to the same cut frame and are only discarded.
Step Parser::Incomplete(size_t len) {
  Step s;
  s.kind = Step::kDiscard;
  s.size = 1;
  const int64_t at = static_cast<int64_t>(consumed_);
  if (at >= trunc_end_) {
    counters_.rejected[static_cast<int>(Reject::kTruncated)]++;
    trunc_end_ = static_cast<int64_t>(consumed_ + len);
    s.reason = static_cast<int8_t>(Reject::kTruncated);
  }
  counters_.bytes_discarded += 1;
  return Consume(s);
}

Parser::Check Parser::CheckAt(const uint8_t* data, size_t j, size_t end) const {
  if (j >= end) return kGood;
  const uint8_t stx = data[j];
  if (!IsStart(stx, options_.accept_v1)) return kBad;
  const bool v2 = stx == kStxV2;
  const size_t hdr = v2 ? kHeaderV2 : kHeaderV1;
  if (end - j < hdr) return kMore;
  const uint8_t len = data[j + 1];
  const uint8_t incompat = v2 ? data[j + 2] : 0;
  if ((incompat & ~kIflagSigned) != 0) return kBad;
  const uint32_t msgid = MsgId(data + j, v2);
  const MsgInfo* def = d_->Find(msgid);
  if (def != nullptr && (len > def->max_len || (!v2 && len < def->min_len))) return kBad;
  const size_t total = hdr + len + 2 + ((incompat & kIflagSigned) ? kSignatureLength : 0);
  if (end - j < total) return kMore;
  const size_t crc_at = j + hdr + len;
  const uint16_t received = static_cast<uint16_t>(data[crc_at] | (data[crc_at + 1] << 8));
  const uint16_t crc = CrcCalculate(data + j + 1, crc_at - j - 1);
  if (def != nullptr) return CrcAccumulate(def->crc_extra, crc) == received ? kGood : kBad;
  return CrcExtraConsistent(crc, received) ? kGood : kBad;
}

Step Parser::Next(const uint8_t* data, size_t len, FrameInfo* out, bool final) {
  if (consumed_ + len > counters_.bytes_in) counters_.bytes_in = consumed_ + len;
  Step s;
  if (len == 0) return s;
  const bool v1 = options_.accept_v1;
  const uint8_t stx = data[0];
  if (!IsStart(stx, v1)) {
    // a garbage run is one step (capped so that its size fits Step::size)
    const size_t limit = len < (size_t{1} << 30) ? len : (size_t{1} << 30);
    size_t j = 1;
    while (j < limit && !IsStart(data[j], v1)) j++;
    counters_.bytes_discarded += j;
    s.kind = Step::kDiscard;
    s.size = static_cast<uint32_t>(j);
    return Consume(s);
  }
  const bool v2 = stx == kStxV2;
  const uint32_t hdr = v2 ? kHeaderV2 : kHeaderV1;
  if (len < hdr) {
    if (!final) {
      s.size = hdr;
      return s;
    }
    return Incomplete(len);
  }
  const uint8_t plen = data[1];
  uint8_t incompat = 0;
  if (v2) {
    incompat = data[2];
    if ((incompat & ~kIflagSigned) != 0) return Refuse(Reject::kIncompatFlags);
  }
  const uint32_t msgid = MsgId(data, v2);
  const MsgInfo* def = d_->Find(msgid);
  if (def != nullptr && (plen > def->max_len || (!v2 && plen < def->min_len))) return Refuse(Reject::kBadLength);
  const bool is_signed = (incompat & kIflagSigned) != 0;
  const uint32_t total = hdr + plen + 2 + (is_signed ? kSignatureLength : 0);
  if (len < total) {
    if (!final) {
      s.size = total;
      return s;
    }
    return Incomplete(len);
  }
  const uint32_t crc_at = hdr + plen;
  const uint16_t received = static_cast<uint16_t>(data[crc_at] | (data[crc_at + 1] << 8));
  uint16_t crc = CrcCalculate(data + 1, crc_at - 1);
  if (def != nullptr) {
    crc = CrcAccumulate(def->crc_extra, crc);
    if (crc != received) {
      bad_crc_start_ = static_cast<int64_t>(consumed_);
      bad_crc_end_ = static_cast<int64_t>(consumed_ + total);
      return Refuse(Reject::kBadCrc);
    }
  } else if (!options_.forward_unknown) {
    // an unknown id is not trusted to delimit a frame either: its bytes are
    // searched like garbage
    counters_.unknown_id++;
    counters_.rejected[static_cast<int>(Reject::kUnknownDropped)]++;
    counters_.bytes_discarded += 1;
    s.kind = Step::kDiscard;
    s.size = 1;
    s.reason = static_cast<int8_t>(Reject::kUnknownDropped);
    return Consume(s);
  } else {
    const Check next = CrcExtraConsistent(crc, received) ? CheckAt(data, total, len) : kBad;
    if (next == kMore && !final) return s;  // need the next frame's bytes; total unknown
    if (next == kBad) {
      bad_crc_start_ = static_cast<int64_t>(consumed_);
      bad_crc_end_ = static_cast<int64_t>(consumed_ + total);
      return Refuse(Reject::kBadCrc);
    }
  }
  // A good frame inside the span a refused candidate declared: that candidate
  // was a frame cut short, not a corrupted one.
  const int64_t at = static_cast<int64_t>(consumed_);
  if (at < bad_crc_end_ && at > bad_crc_start_) {
    counters_.rejected[static_cast<int>(Reject::kBadCrc)]--;
    counters_.rejected[static_cast<int>(Reject::kTruncated)]++;
    bad_crc_end_ = -1;
  }
  FrameInfo& f = *out;
  f.offset = 0;
  f.length = total;
  f.msgid = msgid;
  f.version = v2 ? 2 : 1;
  if (v2) {
    f.seq = data[4];
    f.sysid = data[5];
    f.compid = data[6];
    f.compat_flags = data[3];
  } else {
    f.seq = data[2];
    f.sysid = data[3];
    f.compid = data[4];
    f.compat_flags = 0;
  }
  f.incompat_flags = incompat;
  f.payload_len = plen;
  f.known = def != nullptr;
  f.is_signed = is_signed;
  f.target_system = -1;
  f.target_component = -1;
  if (def != nullptr) {
    const uint8_t* payload = data + hdr;
    if (def->target_system_ofs >= 0)
      f.target_system = def->target_system_ofs < plen ? payload[def->target_system_ofs] : 0;
    if (def->target_component_ofs >= 0)
      f.target_component = def->target_component_ofs < plen ? payload[def->target_component_ofs] : 0;
  } else {
    counters_.unknown_id++;
  }
  counters_.frames++;
  counters_.bytes_accepted += total;
  s.kind = Step::kFrame;
  s.size = total;
  return Consume(s);
}

void Parser::Reset() {
  counters_.bytes_discarded += counters_.bytes_in - consumed_;
  consumed_ = counters_.bytes_in;
  bad_crc_end_ = -1;
}

}  // namespace onbus::mav
