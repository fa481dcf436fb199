// SHA-256 (FIPS 180-4), pure C++17 with no dependencies, for MAVLink 2 frame
// signatures (native/mavlink/parse.h) and anything else native that needs it.
//
// Two block functions compute the same thing: a portable one, and one using
// the CPU's SHA-256 instructions where it has them, chosen once at run time:
// x86 with the SHA extensions (SHA-NI: Intel since Goldmont/Ice Lake, AMD
// since Zen; CPUID), arm64 Linux with the ARMv8 SHA2 extension (HWCAP_SHA2;
// built with GCC, or with clang when the build enables SHA2). Both are
// checked against node:crypto (test/mavlink-native.test.ts) and against each
// other (native/fuzz/mavlink_parse_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace onbus {

class Sha256 {
 public:
  // kHardware: the CPU's SHA instructions (portable when it has none).
  enum class Impl : uint8_t { kAuto, kPortable, kHardware };
  static constexpr size_t kDigestLength = 32;
  static constexpr size_t kBlockLength = 64;

  explicit Sha256(Impl impl = Impl::kAuto);
  void Update(const uint8_t* data, size_t len);
  // Writes the digest; the object must not be updated afterwards.
  void Final(uint8_t out[kDigestLength]);

  // Whether this CPU (and this build) has the kHardware block function.
  static bool HasHardware();
  // One-shot digest.
  static void Digest(const uint8_t* data, size_t len, uint8_t out[kDigestLength], Impl impl = Impl::kAuto) {
    Sha256 h(impl);
    h.Update(data, len);
    h.Final(out);
  }

  using BlockFn = void (*)(uint32_t state[8], const uint8_t* blocks, size_t n);

 private:
  BlockFn blocks_;
  uint32_t state_[8];
  uint8_t buf_[kBlockLength];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

}  // namespace onbus
