// libFuzzer target: arbitrary bytes as a sequence of RTP / RTCP datagrams into
// RtpSession (reorder buffer, H.264 / H.265 depacketiser, RTCP parser), with
// the receiver report, PLI and FIR builders exercised along the way.
//
// Input layout: byte 0 picks the configuration (codec, format, latency,
// buffer size); then records of [len16][flags8][bytes...]: flags bit 0 sends
// the bytes as RTCP, bits 1-7 advance the clock (so latency expiry runs too).
//
//   bash scripts/fuzz.sh rtp_depay
//
// fuzz-sources: native/rtp/rtp_session.cc
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rtp/rtp_session.h"

namespace {

class CheckingSink : public onbus::rtp::FrameSink {
 public:
  void OnFrame(const onbus::rtp::Frame& f) override {
    // Touch every byte (ASan checks the bounds) and the invariants.
    volatile uint8_t x = 0;
    for (size_t i = 0; i < f.size; i++) x ^= f.data[i];
    if ((f.flags & onbus::rtp::kFrameComplete) && f.nranges != 0) __builtin_trap();
    if (f.sps_len && f.sps_off + f.sps_len > f.size) __builtin_trap();
    if (f.pps_len && f.pps_off + f.pps_len > f.size) __builtin_trap();
    if (f.vps_len && f.vps_off + f.vps_len > f.size) __builtin_trap();
    (void)x;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  onbus::rtp::SessionConfig cfg;
  uint8_t c = data[0];
  cfg.codec = (c & 1) ? onbus::rtp::Codec::kH265 : onbus::rtp::Codec::kH264;
  cfg.length_prefixed = (c & 2) != 0;
  cfg.latency_ns = (c & 4) ? 0 : 20000000;
  cfg.buffer_packets = (c & 8) ? 16 : 256;
  cfg.max_frame_bytes = (c & 16) ? 1024 : 1 << 20;
  cfg.payload_type = (c & 32) ? 96 : -1;
  CheckingSink sink;
  onbus::rtp::RtpSession s(cfg, &sink);
  int64_t now = 1000000000;
  size_t off = 1;
  uint8_t out[256];
  while (off + 3 <= size) {
    size_t len = static_cast<size_t>(data[off]) << 8 | data[off + 1];
    uint8_t flags = data[off + 2];
    off += 3;
    if (len > size - off) len = size - off;
    now += static_cast<int64_t>(flags >> 1) * 1000000;
    if (flags & 1) s.OnRtcp(data + off, len, now);
    else s.OnRtp(data + off, len, now, now);
    s.OnTimer(now);
    (void)s.NextDeadline();
    if (s.keyframe_wanted()) {
      (void)s.BuildPli(out, sizeof(out));
      (void)s.BuildFir(out, sizeof(out));
      s.clear_keyframe_wanted();
    }
    (void)s.BuildReceiverReport(out, sizeof(out), now);
    off += len;
  }
  s.Flush();
  return 0;
}
