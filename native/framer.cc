#include "framer.h"

#include <string.h>

#include <algorithm>

namespace onbus {

namespace {

// Finds `needle` in [data, data+len) from `from`; returns len if absent.
size_t Find(const uint8_t* data, size_t len, size_t from, const std::vector<uint8_t>& needle) {
  const size_t n = needle.size();
  if (n == 0 || len < n) return len;
  if (n == 1) {
    if (from >= len) return len;
    const void* p = memchr(data + from, needle[0], len - from);
    return p ? static_cast<size_t>(static_cast<const uint8_t*>(p) - data) : len;
  }
  for (size_t i = from; i + n <= len;) {
    const void* p = memchr(data + i, needle[0], len - n + 1 - i);
    if (!p) return len;
    i = static_cast<size_t>(static_cast<const uint8_t*>(p) - data);
    if (memcmp(data + i, needle.data(), n) == 0) return i;
    i++;
  }
  return len;
}

class LengthFramer final : public Framer {
 public:
  explicit LengthFramer(const LengthFramerConfig& c) : c_(c) {
    header_ = c_.length_offset + c_.length_size;
    adjust_ = c_.adjust < 0 ? static_cast<int64_t>(header_) : c_.adjust;
  }

  FrameStep Next(const uint8_t* data, size_t len) override {
    if (!c_.magic.empty()) {
      // Resynchronise on the magic: drop everything before the next one (a
      // partial magic at the very end is kept, it may complete).
      size_t m = c_.magic.size();
      if (len < m) return PartialMagic(data, len) ? FrameStep::NeedMore(header_) : FrameStep::Discard(len, kReasonGarbage);
      if (memcmp(data, c_.magic.data(), m) != 0) {
        size_t at = Find(data, len, 1, c_.magic);
        if (at == len) {
          // Keep a tail that could be the beginning of a magic.
          size_t keep = 0;
          for (size_t k = std::min(m - 1, len); k > 0; k--)
            if (memcmp(data + len - k, c_.magic.data(), k) == 0) {
              keep = k;
              break;
            }
          return FrameStep::Discard(len - keep, kReasonGarbage);
        }
        return FrameStep::Discard(at, kReasonGarbage);
      }
    }
    if (len < header_) return FrameStep::NeedMore(header_);
    const uint8_t* p = data + c_.length_offset;
    uint64_t v = 0;
    for (uint32_t i = 0; i < c_.length_size; i++) {
      uint32_t b = c_.little_endian ? p[c_.length_size - 1 - i] : p[i];
      v = (v << 8) | b;
    }
    int64_t total = static_cast<int64_t>(v) + adjust_;
    if (total < static_cast<int64_t>(header_)) {
      // Impossible length: with a magic, look for the next one; without,
      // there is no way to find a boundary but to drop the header.
      return FrameStep::Discard(c_.magic.empty() ? header_ : 1, kReasonBadFrame, static_cast<uint64_t>(total < 0 ? 0 : total));
    }
    if (static_cast<uint64_t>(total) > max_frame) {
      // Too large to hold: report it, then either rescan for a magic or skip
      // the declared size as it streams past (never stored).
      return FrameStep::Discard(c_.magic.empty() ? static_cast<size_t>(total) : 1, kReasonOversize, static_cast<uint64_t>(total));
    }
    if (len < static_cast<size_t>(total)) return FrameStep::NeedMore(static_cast<size_t>(total));
    return FrameStep::Frame(static_cast<size_t>(total), static_cast<size_t>(total), header_, 0);
  }

 private:
  bool PartialMagic(const uint8_t* data, size_t len) const { return memcmp(data, c_.magic.data(), len) == 0; }
  LengthFramerConfig c_;
  uint32_t header_ = 0;
  int64_t adjust_ = 0;
};

class DelimitedFramer final : public Framer {
 public:
  explicit DelimitedFramer(const DelimitedFramerConfig& c) : c_(c) {}

  FrameStep Next(const uint8_t* data, size_t len) override {
    const size_t dl = c_.delimiter.size();
    // Resume the search where the last call stopped (minus a delimiter's
    // worth, which may straddle): long lines are scanned once, not per read.
    size_t from = scanned_ >= dl ? scanned_ - (dl - 1) : 0;
    size_t at = Find(data, len, std::min(from, len), c_.delimiter);
    if (at == len) {
      scanned_ = len;
      if (len > max_frame) {
        // No delimiter within max_frame: report once, then keep dropping
        // until the next delimiter (keeping dl-1 bytes that may start it).
        size_t drop = len - (dl - 1);
        scanned_ = dl - 1;
        bool first = !discarding_;
        discarding_ = true;
        return FrameStep::Discard(drop, first ? kReasonOversize : kReasonResync, len);
      }
      return FrameStep::NeedMore(0);
    }
    scanned_ = 0;
    size_t size = at + dl;
    if (discarding_) {
      discarding_ = false;
      return FrameStep::Discard(size, kReasonResync);
    }
    if (at > max_frame) return FrameStep::Discard(size, kReasonOversize, at);
    if (c_.skip_empty && at == 0) return FrameStep::Discard(size, kReasonNone);
    return FrameStep::Frame(size, c_.include_delimiter ? size : at, 0, 0);
  }

  void Reset() override {
    scanned_ = 0;
    discarding_ = false;
  }

 private:
  DelimitedFramerConfig c_;
  size_t scanned_ = 0;
  bool discarding_ = false;
};

// Type tag of framer externals (a random 128-bit value, fixed forever).
constexpr napi_type_tag kFramerTag = {0x6f6e627573667261ULL, 0x6d65723a3a763031ULL};

struct FramerBox {
  std::unique_ptr<Framer> framer;
};

}  // namespace

std::unique_ptr<Framer> MakeLengthFramer(const LengthFramerConfig& cfg) { return std::make_unique<LengthFramer>(cfg); }
std::unique_ptr<Framer> MakeDelimitedFramer(const DelimitedFramerConfig& cfg) {
  return std::make_unique<DelimitedFramer>(cfg);
}

Napi::Value WrapFramer(Napi::Env env, std::unique_ptr<Framer> framer) {
  auto* box = new FramerBox{std::move(framer)};
  auto ext = Napi::External<FramerBox>::New(env, box, [](Napi::Env, FramerBox* b) { delete b; });
  napi_type_tag_object(env, ext, &kFramerTag);
  return ext;
}

std::unique_ptr<Framer> UnwrapFramer(Napi::Env env, Napi::Value v) {
  if (!v.IsExternal()) return nullptr;
  bool ok = false;
  if (napi_check_object_type_tag(env, v, &kFramerTag, &ok) != napi_ok || !ok) return nullptr;
  FramerBox* box = v.As<Napi::External<FramerBox>>().Data();
  return box ? std::move(box->framer) : nullptr;
}

}  // namespace onbus
