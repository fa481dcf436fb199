// fuzz-sources: native/mavlink/parse.cc
// fuzz-sources: native/util/sha256.cc
//
// libFuzzer target of the native MAVLink parser (scripts/fuzz.sh mavlink_parse).
// Input: byte 0 picks the options and chunking seed, the rest is the stream.
// Checks, in both modes:
//   - every frame lies inside the input, starts with a start byte, has the
//     length its header declares, and a known id's CRC verifies;
//   - bytes_in == accepted + discarded + pending at every step;
//   - in drop mode (unknown ids not forwarded) stream mode is chunking-
//     independent: the same frames (position, length) and counters whether
//     the bytes come in one piece or in random pieces. (Forwarding mode is
//     not, by design: an unknown-id frame is accepted when the data ends right
//     behind it, so where a read ends matters, as in lib/mavlink/parser.ts.)
//   - after the end of the stream nothing is pending.
//   - SHA-256: the block function in use, the portable one and (on CPUs with
//     SHA-NI or ARMv8 SHA2) the one using them give the same digest, whole or fed in random
//     pieces; SignatureMatches of every signed frame agrees with the
//     definition (first 6 bytes of SHA-256(key + frame up to the signature)),
//     accepts the frame once signed correctly and refuses it with one bit off.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "mavlink/parse.h"
#include "util/sha256.h"

using namespace onbus::mav;

namespace {

std::shared_ptr<const Dialect> MakeDialect() {
  auto d = std::make_shared<Dialect>();
  struct E {
    uint32_t id;
    MsgInfo m;
  };
  const E table[] = {
      {0, {50, 9, 9, -1, -1}},        {1, {124, 31, 43, -1, -1}},   {23, {168, 23, 23, 4, 5}},
      {24, {24, 30, 52, -1, -1}},     {30, {39, 28, 28, -1, -1}},   {33, {104, 28, 28, -1, -1}},
      {73, {38, 37, 38, 32, 33}},     {74, {20, 20, 20, -1, -1}},   {76, {152, 33, 33, 30, 31}},
      {77, {143, 3, 10, 8, 9}},       {109, {185, 9, 9, -1, -1}},   {253, {83, 51, 54, -1, -1}},
      {70000, {7, 0, 200, 0, 1}},  // a sparse (large) id
  };
  for (const E& e : table) d->Set(e.id, e.m);
  return d;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
  }
}

void CheckFrame(const Dialect& d, const uint8_t* f, const FrameInfo& fi, const uint8_t* lo, const uint8_t* hi) {
  Check(f >= lo && f + fi.length <= hi, "frame inside input");
  Check(f[0] == kStxV2 || f[0] == kStxV1, "frame starts with STX");
  const bool v2 = f[0] == kStxV2;
  const uint32_t hdr = v2 ? kHeaderV2 : kHeaderV1;
  Check(fi.version == (v2 ? 2 : 1), "version");
  Check(fi.payload_len == f[1], "payload length");
  Check(fi.length == hdr + f[1] + 2 + (fi.is_signed ? kSignatureLength : 0), "frame length");
  const MsgInfo* m = d.Find(fi.msgid);
  Check(fi.known == (m != nullptr), "known");
  if (m != nullptr) {
    uint16_t crc = CrcAccumulate(m->crc_extra, CrcCalculate(f + 1, hdr + f[1] - 1));
    Check((f[hdr + f[1]] | (f[hdr + f[1] + 1] << 8)) == crc, "crc verifies");
    Check(fi.payload_len <= m->max_len, "length within message");
    if (m->target_system_ofs >= 0)
      Check(fi.target_system == (m->target_system_ofs < fi.payload_len ? f[hdr + m->target_system_ofs] : 0), "target_system");
    else
      Check(fi.target_system == -1, "no target_system");
    if (m->target_component_ofs >= 0)
      Check(fi.target_component == (m->target_component_ofs < fi.payload_len ? f[hdr + m->target_component_ofs] : 0), "target_component");
    else
      Check(fi.target_component == -1, "no target_component");
  } else {
    Check(fi.target_system == -1 && fi.target_component == -1, "unknown id: no targets");
  }
}

void CheckCounters(const Parser& p) {
  const Counters& c = p.counters();
  Check(c.bytes_in == c.bytes_accepted + c.bytes_discarded + p.pending(), "bytes_in == accepted + discarded + pending");
  for (uint64_t r : c.rejected) Check(r < (1ull << 62), "no counter underflow");
}

// SignatureMatches on an exactly sized copy (ASan sees any overread) against
// the definition, then with the right signature written in, then one bit off.
void CheckSignature(const uint8_t key[kSigningKeyLength], const uint8_t* f, const FrameInfo& fi) {
  if (!fi.is_signed) return;
  const size_t len = fi.length;
  std::unique_ptr<uint8_t[]> exact(new uint8_t[len]);
  memcpy(exact.get(), f, len);
  std::vector<uint8_t> msg(key, key + kSigningKeyLength);
  msg.insert(msg.end(), f, f + len - 6);
  uint8_t d[onbus::Sha256::kDigestLength];
  onbus::Sha256::Digest(msg.data(), msg.size(), d, onbus::Sha256::Impl::kPortable);
  Check(SignatureMatches(key, exact.get(), len) == (memcmp(d, f + len - 6, 6) == 0), "signature verdict == definition");
  memcpy(exact.get() + len - 6, d, 6);
  Check(SignatureMatches(key, exact.get(), len), "correctly signed frame matches");
  exact[len - 1 - (d[7] % 6)] ^= static_cast<uint8_t>(1u << (d[8] % 8));
  Check(!SignatureMatches(key, exact.get(), len), "one signature bit off does not match");
}

void CheckSha256(const uint8_t* data, size_t size, uint32_t seed) {
  using onbus::Sha256;
  std::unique_ptr<uint8_t[]> exact(new uint8_t[size ? size : 1]);
  if (size) memcpy(exact.get(), data, size);
  uint8_t a[Sha256::kDigestLength], b[Sha256::kDigestLength], c[Sha256::kDigestLength];
  Sha256::Digest(exact.get(), size, a, Sha256::Impl::kAuto);
  Sha256::Digest(exact.get(), size, b, Sha256::Impl::kPortable);
  Check(memcmp(a, b, sizeof a) == 0, "sha256 in use == portable");
  if (Sha256::HasHardware()) {
    Sha256::Digest(exact.get(), size, c, Sha256::Impl::kHardware);
    Check(memcmp(c, b, sizeof c) == 0, "sha256 CPU instructions == portable");
  }
  Sha256 h;
  for (size_t at = 0; at < size;) {
    seed = seed * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(size - at, (seed >> 16) % 130);
    h.Update(exact.get() + at, n);
    at += n;
  }
  h.Final(c);
  Check(memcmp(c, b, sizeof c) == 0, "sha256 in pieces == whole");
}

struct Seen {
  uint64_t pos;
  uint32_t len;
  bool operator==(const Seen& o) const { return pos == o.pos && len == o.len; }
};

// Stream mode over `chunks` pieces; returns the frames seen.
std::vector<Seen> RunStream(std::shared_ptr<const Dialect> d, ParserOptions o, const uint8_t* data, size_t size,
                            uint32_t seed, bool chunked, Counters* out) {
  Parser p(d, o);
  std::vector<uint8_t> buf;
  std::vector<Seen> seen;
  uint64_t pos = 0;  // stream position of buf[0]
  size_t fed = 0;
  auto drain = [&](bool final) {
    size_t at = 0;
    // an exactly sized copy of the pending bytes, so ASan sees any overread
    std::unique_ptr<uint8_t[]> exact(new uint8_t[buf.size()]);
    if (!buf.empty()) memcpy(exact.get(), buf.data(), buf.size());
    const size_t total = buf.size();
    for (;;) {
      FrameInfo fi;
      const uint8_t* view = exact.get() + at;
      const size_t len = total - at;
      Step s = p.Next(len ? view : nullptr, len, &fi, final);
      if (s.kind == Step::kNeedMore) {
        Check(!final || len == 0, "final never needs more");
        Check(s.size == 0 || s.size > len, "need-more asks for more than it has");
        Check(s.size <= kMaxFrameLength, "need-more within a frame");
        break;
      }
      Check(s.size >= 1 && s.size <= len, "step consumes what it has");
      if (s.kind == Step::kFrame) {
        Check(s.size == fi.length, "frame size");
        CheckFrame(*d, view, fi, view, view + len);
        seen.push_back({pos + at, fi.length});
      }
      at += s.size;
      CheckCounters(p);
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<long>(at));
    pos += at;
  };
  while (fed < size) {
    size_t n = size - fed;
    if (chunked) {
      seed = seed * 1103515245u + 12345u;
      n = std::min<size_t>(n, 1 + (seed >> 16) % 64);
    }
    buf.insert(buf.end(), data + fed, data + fed + n);
    fed += n;
    drain(false);
  }
  drain(true);
  Check(buf.empty(), "nothing pending after the end");
  Check(p.pending() == 0, "parser pending 0 after the end");
  CheckCounters(p);
  *out = p.counters();
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::shared_ptr<const Dialect> dialect = MakeDialect();
  if (size < 1) return 0;
  ParserOptions o;
  o.forward_unknown = (data[0] & 1) == 0;
  o.accept_v1 = (data[0] & 2) == 0;
  const uint32_t seed = data[0];
  data++;
  size--;

  // the sliced CRC against the byte-at-a-time definition (spec's crc_accumulate)
  {
    uint16_t ref = 0xFFFF;
    for (size_t i = 0; i < size; i++) {
      uint8_t tmp = static_cast<uint8_t>(data[i] ^ (ref & 0xFF));
      tmp = static_cast<uint8_t>(tmp ^ (tmp << 4));
      ref = static_cast<uint16_t>((ref >> 8) ^ (tmp << 8) ^ (tmp << 3) ^ (tmp >> 4));
    }
    Check(CrcCalculate(data, size) == ref, "sliced CRC == reference");
  }

  CheckSha256(data, size, seed);
  uint8_t key[kSigningKeyLength];
  for (size_t k = 0; k < kSigningKeyLength; k++) key[k] = static_cast<uint8_t>(seed * 31 + k * 7);

  // datagram mode: the whole input is one datagram, then again split in two
  {
    Parser p(dialect, o);
    uint64_t accepted = 0;
    p.ParseDatagram(data, size, [&](const uint8_t* f, const FrameInfo& fi) {
      Check(f == data + fi.offset, "frame pointer == data + offset");
      CheckFrame(*dialect, f, fi, data, data + size);
      CheckSignature(key, f, fi);
      accepted += fi.length;
    });
    Check(p.pending() == 0, "datagram leaves nothing pending");
    CheckCounters(p);
    Check(p.counters().bytes_in == size, "datagram bytes_in");
    Check(p.counters().bytes_accepted == accepted, "datagram accepted");
    std::vector<uint8_t> a(data, data + size / 2), b(data + size / 2, data + size);
    p.ParseDatagram(a.data(), a.size(), [&](const uint8_t* f, const FrameInfo& fi) { CheckFrame(*dialect, f, fi, a.data(), a.data() + a.size()); });
    p.ParseDatagram(b.data(), b.size(), [&](const uint8_t* f, const FrameInfo& fi) { CheckFrame(*dialect, f, fi, b.data(), b.data() + b.size()); });
    CheckCounters(p);
  }

  // stream mode: whole vs chunked must agree
  Counters c1, c2;
  std::vector<Seen> s1 = RunStream(dialect, o, data, size, seed, false, &c1);
  std::vector<Seen> s2 = RunStream(dialect, o, data, size, seed * 7 + 1, true, &c2);
  if (getenv("MAV_FUZZ_DEBUG")) {
    for (auto& s : s1) fprintf(stderr, "whole %llu+%u\n", (unsigned long long)s.pos, s.len);
    for (auto& s : s2) fprintf(stderr, "chunk %llu+%u\n", (unsigned long long)s.pos, s.len);
  }
  if (!o.forward_unknown) {
    Check(s1 == s2, "chunking-independent frames");
    Check(memcmp(&c1, &c2, sizeof c1) == 0, "chunking-independent counters");
  }
  return 0;
}
