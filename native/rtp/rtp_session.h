// RtpSession: the pure part of the RTP video receiver -- RTP header parsing,
// the reorder (jitter) buffer, H.264 / H.265 depacketisation into access
// units, and RTCP (SR parsing, RR / PLI / FIR building). No sockets, no
// Node-API: native/rtp/rtp_receiver.cc feeds it packets on the reactor thread,
// and native/fuzz/rtp_depay_fuzz.cc feeds it arbitrary bytes under clang.
//
// Every input is untrusted: a packet that cannot be parsed is counted under a
// reason in RtpStats and dropped; nothing a peer sends can make this class read
// or write outside its buffers or grow without bound (the reorder buffer has a
// fixed number of slots, an access unit a fixed maximum size).
//
// Ordering model. Packets are released in sequence order. A packet that
// arrives after a gap waits in the buffer until the gap fills or `latency_ns`
// has passed since it arrived; then the gap is declared lost (counted) and
// later packets flow. A packet older than the release point is late (if it was
// never released) or a duplicate (if it was) -- both counted and dropped, the
// way rtpjitterbuffer's drop-on-latency behaves.
//
// Access units end on the marker bit or on a change of RTP timestamp. A unit
// is complete only if no sequence number was lost between the previous
// marker-bit packet and its own last packet and every NAL unit depacketised
// cleanly; losses are attached to the unit(s) they may belong to, so a frame
// with a gap is never reported complete.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace onbus {
namespace rtp {

enum class Codec : uint8_t { kH264 = 0, kH265 = 1 };

struct SessionConfig {
  Codec codec = Codec::kH264;
  int payload_type = -1;           // -1: accept any
  int64_t latency_ns = 50000000;   // how long a packet waits for a gap before it
  bool length_prefixed = false;    // 4-byte big-endian lengths instead of start codes
  uint32_t buffer_packets = 2048;  // reorder slots (power of two)
  uint32_t max_frame_bytes = 16u << 20;
  uint32_t max_packet_bytes = 4096;
};

struct SeqRange {
  uint64_t first, last;  // extended sequence numbers, inclusive
};

constexpr unsigned kMaxRanges = 8;

enum FrameFlag : uint32_t {
  kFrameComplete = 1,
  kFrameKeyframe = 2,
  kFrameCapture = 4,      // capture_ns valid (an SR was seen)
  kFrameRxStamp = 8,      // rx_first/last_ns are kernel stamps
  kFrameRangesTruncated = 16,
  kFrameCorrupt = 32,     // a NAL unit could not be depacketised
  kFrameNoMarker = 64,    // ended by a timestamp change, not the marker bit
  kFrameTruncated = 128,  // larger than max_frame_bytes; the tail was dropped
};

struct Frame {
  const uint8_t* data = nullptr;
  size_t size = 0;
  uint32_t rtp_ts = 0, ssrc = 0, flags = 0, packets = 0;
  uint64_t first_seq = 0, last_seq = 0;
  int64_t rx_first_ns = 0, rx_last_ns = 0;  // CLOCK_REALTIME, 0 = none
  int64_t capture_ns = 0;                   // sender wall clock (unix epoch ns)
  // Offset (of the NAL header, after the prefix) and size of the last parameter
  // set of each kind in this unit; size 0 = absent.
  uint32_t sps_off = 0, sps_len = 0, pps_off = 0, pps_len = 0, vps_off = 0, vps_len = 0;
  unsigned nranges = 0;
  SeqRange ranges[kMaxRanges];
};

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void OnFrame(const Frame& f) = 0;
};

struct RtpStats {
  uint64_t packets = 0, bytes = 0;          // accepted RTP packets (first copy)
  uint64_t lost = 0, late = 0, duplicates = 0;
  uint64_t frames_complete = 0, frames_incomplete = 0;
  uint64_t malformed = 0, wrong_pt = 0, foreign_ssrc = 0, ssrc_changes = 0;
  uint64_t depay_errors = 0, unsupported_nal = 0, oversize_frames = 0, too_large_packets = 0;
  uint64_t resets = 0;  // sequence jumps treated as a sender restart
  uint64_t rtcp_packets = 0, rtcp_sr = 0, rtcp_malformed = 0;
  uint64_t keyframes = 0;
};

class RtpSession {
 public:
  RtpSession(const SessionConfig& cfg, FrameSink* sink);
  RtpSession(const RtpSession&) = delete;
  RtpSession& operator=(const RtpSession&) = delete;

  // One RTP packet; `rx_ns` is its kernel receive stamp (0 = none), `now` the
  // monotonic time it was read (drives the latency bound).
  void OnRtp(const uint8_t* p, size_t n, int64_t rx_ns, int64_t now);
  // One RTCP compound packet. Returns true when it held a sender report of the
  // stream being received.
  bool OnRtcp(const uint8_t* p, size_t n, int64_t now);
  // Releases whatever the latency bound allows at `now`.
  void OnTimer(int64_t now);
  // Monotonic time at which OnTimer has work, or INT64_MAX.
  int64_t NextDeadline() const;
  // Releases every buffered packet (gaps declared lost) and ends the open unit.
  void Flush();

  // RTCP builders; each returns the bytes written (0 when there is nothing to
  // report yet or `cap` is too small).
  size_t BuildReceiverReport(uint8_t* out, size_t cap, int64_t now);
  size_t BuildPli(uint8_t* out, size_t cap) const;
  size_t BuildFir(uint8_t* out, size_t cap);

  // True once after a loss or a corrupt unit since the last keyframe: the
  // receiver may ask the sender for one (PLI / FIR), rate-limited by the caller.
  bool keyframe_wanted() const { return want_keyframe_; }
  void clear_keyframe_wanted() { want_keyframe_ = false; }

  bool has_source() const { return have_ssrc_; }
  uint32_t source_ssrc() const { return ssrc_; }
  uint32_t own_ssrc() const { return own_ssrc_; }
  void set_own_ssrc(uint32_t s) { own_ssrc_ = s; }
  const RtpStats& stats() const { return stats_; }
  uint32_t jitter() const { return static_cast<uint32_t>(jitter_ >> 4); }
  uint64_t buffered() const { return buffered_; }

 private:
  struct Slot {
    bool used = false;
    bool marker = false;
    uint64_t seq = 0;
    uint32_t ts = 0;
    int64_t arrival = 0;
    int64_t rx_ns = 0;
    std::vector<uint8_t> payload;
  };

  void Reset();
  void Drain(int64_t now);
  void DeclareLost(uint64_t first, uint64_t last);
  void Release(Slot& s);
  // Depacketiser.
  // One packet in sequence order: from a slot, or straight from the
  // caller's buffer when it arrives in order with nothing buffered.
  struct PacketView {
    uint64_t seq;
    uint32_t ts;
    bool marker;
    int64_t rx_ns;
    const uint8_t* payload;
    size_t size;
  };
  void Depay(const PacketView& s);
  void DepayH264(const uint8_t* p, size_t n);
  void DepayH265(const uint8_t* p, size_t n);
  void AppendNal(const uint8_t* nal, size_t n);
  void BeginNal(size_t hdr_len, const uint8_t* hdr);
  void EndNal();
  void NoteNal(size_t off, size_t n);
  void AbortFragment();
  void OnFragment(const uint8_t* p, size_t n, size_t fu_len, const uint8_t* nal_hdr, size_t nal_hdr_len);
  void StartUnit(const PacketView& s);
  void EmitUnit(bool marker);
  void AddRange(Frame& f, uint64_t first, uint64_t last);
  int64_t CaptureTime(uint32_t ts) const;

  SessionConfig cfg_;
  FrameSink* sink_;
  RtpStats stats_;

  // Source.
  bool have_ssrc_ = false;
  uint32_t ssrc_ = 0;
  uint32_t cand_ssrc_ = 0;
  unsigned cand_count_ = 0;
  int64_t last_arrival_ = 0;
  uint32_t own_ssrc_ = 0x6f6e6273;  // "onbs"; the receiver picks a random one

  // Sequence state.
  bool started_ = false;
  uint64_t highest_ = 0;   // highest extended sequence number received
  uint64_t base_ = 0;      // first extended sequence number
  uint64_t next_ = 0;      // next to release
  uint64_t received_ = 0;  // for RR (includes late ones, excludes duplicates)
  uint64_t buffered_ = 0;
  unsigned old_run_ = 0;
  std::vector<Slot> slots_;
  std::vector<uint64_t> released_;  // per slot: last sequence number released there (+1; 0 = none)
  uint32_t mask_;

  // RR bookkeeping (RFC 3550 A.3, A.8).
  uint64_t expected_prior_ = 0, received_prior_ = 0;
  int64_t jitter_ = 0;  // scaled by 16
  int64_t last_transit_ = 0;
  bool have_transit_ = false;

  // Sender report.
  bool have_sr_ = false;
  uint64_t sr_ntp_ = 0;
  uint32_t sr_rtp_ = 0;
  int64_t sr_arrival_ = 0;

  // Unit being assembled.
  bool unit_open_ = false;
  std::vector<uint8_t> au_;
  Frame unit_;
  bool fu_active_ = false;
  size_t fu_start_ = 0;  // offset of the fragmented NAL's prefix in au_
  bool unit_corrupt_ = false;
  std::vector<SeqRange> pending_loss_;  // losses since the last marker-bit packet
  bool want_keyframe_ = false;
  uint8_t fir_seq_ = 0;
};

// Parses an RTP fixed header (RFC 3550 §5.1) with CSRCs, extension and
// padding. Returns false if malformed.
struct RtpHeader {
  uint8_t pt;
  bool marker;
  uint16_t seq;
  uint32_t ts, ssrc;
  size_t payload_off, payload_len;
};
bool ParseRtpHeader(const uint8_t* p, size_t n, RtpHeader* h);

// RFC 5761 §4: on a muxed port, a second byte of 192..223 is RTCP.
inline bool LooksLikeRtcp(const uint8_t* p, size_t n) { return n >= 2 && p[1] >= 192 && p[1] <= 223; }

}  // namespace rtp
}  // namespace onbus
