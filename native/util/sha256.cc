// SHA-256 as FIPS 180-4 specifies it (section 6.2); see sha256.h.
#include "util/sha256.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define ONBUS_SHA_X86 1
#elif defined(__aarch64__) && defined(__linux__) && (defined(__ARM_FEATURE_SHA2) || (defined(__GNUC__) && !defined(__clang__)))
// GCC enables the SHA2 intrinsics per function (target attribute); clang 14
// only for a whole build with them (-march=...+crypto): else portable only.
#include <arm_neon.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#define ONBUS_SHA_ARM 1
#if defined(__ARM_FEATURE_SHA2)
#define ONBUS_ARM_SHA_TARGET
#else
#define ONBUS_ARM_SHA_TARGET __attribute__((target("+crypto")))
#endif
#endif

namespace onbus {

namespace {

// First 32 bits of the fractional parts of the cube roots of the first 64
// primes (FIPS 180-4 4.2.2).
alignas(64) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// First 32 bits of the fractional parts of the square roots of the first 8
// primes (FIPS 180-4 5.3.3).
constexpr uint32_t kH0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void BlocksPortable(uint32_t state[8], const uint8_t* p, size_t n) {
  for (; n > 0; n--, p += 64) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = LoadBe32(p + 4 * t);
    for (int t = 16; t < 64; t++) {
      const uint32_t s0 = Rotr(w[t - 15], 7) ^ Rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const uint32_t s1 = Rotr(w[t - 2], 17) ^ Rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
      const uint32_t S1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = h + S1 + ch + kK[t] + w[t];
      const uint32_t S0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
      const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      const uint32_t t2 = S0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#ifdef ONBUS_SHA_X86
// The same compression with the SHA extensions. SHA256RNDS2 does two rounds
// on the working variables kept as two vectors, {A,B,E,F} and {C,D,G,H}
// (highest lane first); SHA256MSG1/MSG2 compute the message schedule four
// words at a time.
__attribute__((target("sha,sse4.1,ssse3"))) void BlocksShaNi(uint32_t state[8], const uint8_t* p, size_t n) {
  const __m128i kBswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));      // lanes d c b a (high..low: a is lane 0)
  __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));  // lanes e f g h
  abcd = _mm_shuffle_epi32(abcd, 0xB1);             // b a d c
  efgh = _mm_shuffle_epi32(efgh, 0x1B);             // h g f e
  __m128i s0 = _mm_alignr_epi8(abcd, efgh, 8);      // f e b a  = {A,B,E,F}
  __m128i s1 = _mm_blend_epi16(efgh, abcd, 0xF0);   // h g d c  = {C,D,G,H}
  for (; n > 0; n--, p += 64) {
    const __m128i save0 = s0, save1 = s1;
    __m128i w[4];
    for (int i = 0; i < 4; i++)
      w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), kBswap);
    for (int i = 0; i < 16; i++) {
      __m128i& cur = w[i & 3];
      if (i >= 4) {
        // W[t..t+3] = W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2])
        cur = _mm_sha256msg1_epu32(cur, w[(i + 1) & 3]);
        cur = _mm_add_epi32(cur, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
        cur = _mm_sha256msg2_epu32(cur, w[(i + 3) & 3]);
      }
      __m128i m = _mm_add_epi32(cur, _mm_load_si128(reinterpret_cast<const __m128i*>(kK + 4 * i)));
      s1 = _mm_sha256rnds2_epu32(s1, s0, m);
      m = _mm_shuffle_epi32(m, 0x0E);
      s0 = _mm_sha256rnds2_epu32(s0, s1, m);
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }
  const __m128i feba = _mm_shuffle_epi32(s0, 0x1B);  // a b e f (lane 0 first)
  const __m128i dchg = _mm_shuffle_epi32(s1, 0xB1);  // g h c d
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));     // a b c d
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));  // e f g h
}

#ifdef ONBUS_SHA_X86
bool DetectHardware() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3 = (c & (1u << 9)) != 0, sse41 = (c & (1u << 19)) != 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ssse3 && sse41 && (b & (1u << 29)) != 0;
}
#endif
#endif

#ifdef ONBUS_SHA_ARM
// The same compression with the ARMv8 SHA2 instructions: SHA256H/SHA256H2 do
// four rounds on {A,B,C,D} and {E,F,G,H}; SHA256SU0/SU1 compute the message
// schedule four words at a time.
ONBUS_ARM_SHA_TARGET void BlocksArm(uint32_t state[8], const uint8_t* p, size_t n) {
  uint32x4_t abcd = vld1q_u32(state), efgh = vld1q_u32(state + 4);
  for (; n > 0; n--, p += 64) {
    const uint32x4_t save0 = abcd, save1 = efgh;
    uint32x4_t w[4];
    for (int i = 0; i < 4; i++) w[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16 * i)));
    for (int i = 0; i < 16; i++) {
      uint32x4_t& cur = w[i & 3];
      // W[t..t+3] = W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2])
      if (i >= 4) cur = vsha256su1q_u32(vsha256su0q_u32(cur, w[(i + 1) & 3]), w[(i + 2) & 3], w[(i + 3) & 3]);
      const uint32x4_t wk = vaddq_u32(cur, vld1q_u32(kK + 4 * i));
      const uint32x4_t a0 = abcd;
      abcd = vsha256hq_u32(abcd, efgh, wk);
      efgh = vsha256h2q_u32(efgh, a0, wk);
    }
    abcd = vaddq_u32(abcd, save0);
    efgh = vaddq_u32(efgh, save1);
  }
  vst1q_u32(state, abcd);
  vst1q_u32(state + 4, efgh);
}

bool DetectHardware() { return (getauxval(AT_HWCAP) & HWCAP_SHA2) != 0; }
#endif

Sha256::BlockFn Select(Sha256::Impl impl) {
  (void)impl;
#ifdef ONBUS_SHA_X86
  if (impl != Sha256::Impl::kPortable && Sha256::HasHardware()) return BlocksShaNi;
#endif
#ifdef ONBUS_SHA_ARM
  if (impl != Sha256::Impl::kPortable && Sha256::HasHardware()) return BlocksArm;
#endif
  return BlocksPortable;
}

}  // namespace

bool Sha256::HasHardware() {
#if defined(ONBUS_SHA_X86) || defined(ONBUS_SHA_ARM)
  static const bool has = DetectHardware();
  return has;
#else
  return false;
#endif
}

Sha256::Sha256(Impl impl) {
  if (impl == Impl::kAuto) {
    static const BlockFn chosen = Select(Impl::kAuto);
    blocks_ = chosen;
  } else {
    blocks_ = Select(impl);
  }
  std::memcpy(state_, kH0, sizeof state_);
}

void Sha256::Update(const uint8_t* data, size_t len) {
  total_ += len;
  if (buf_len_ > 0) {
    const size_t take = len < kBlockLength - buf_len_ ? len : kBlockLength - buf_len_;
    std::memcpy(buf_ + buf_len_, data, take);
    buf_len_ += take;
    data += take;
    len -= take;
    if (buf_len_ < kBlockLength) return;
    blocks_(state_, buf_, 1);
    buf_len_ = 0;
  }
  const size_t full = len / kBlockLength;
  if (full > 0) {
    blocks_(state_, data, full);
    data += full * kBlockLength;
    len -= full * kBlockLength;
  }
  if (len > 0) {
    std::memcpy(buf_, data, len);
    buf_len_ = len;
  }
}

void Sha256::Final(uint8_t out[kDigestLength]) {
  // padding (5.1.1): 0x80, zeros, then the message length in bits (64-bit big-endian)
  const uint64_t bits = total_ * 8;
  uint8_t pad[2 * kBlockLength] = {};
  std::memcpy(pad, buf_, buf_len_);
  pad[buf_len_] = 0x80;
  const size_t n = buf_len_ + 9 <= kBlockLength ? kBlockLength : 2 * kBlockLength;
  for (int k = 0; k < 8; k++) pad[n - 1 - k] = static_cast<uint8_t>(bits >> (8 * k));
  blocks_(state_, pad, n / kBlockLength);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = static_cast<uint8_t>(state_[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(state_[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(state_[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(state_[i]);
  }
}

}  // namespace onbus
