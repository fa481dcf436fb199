#include "rtp/rtp_session.h"

#include <string.h>

#include <algorithm>
#include <limits>

namespace onbus {
namespace rtp {

namespace {

constexpr int64_t kNsPerSec = 1000000000LL;

// ns * rate / 1e9 without a 128-bit product (32-bit ARM has no __int128):
// whole seconds and the remainder scaled apart; exact (floor) for rate < 9.2e9.
int64_t ScaleNs(int64_t ns, int64_t rate) {
  int64_t sec = ns / kNsPerSec, rem = ns % kNsPerSec;
  if (rem < 0) {
    rem += kNsPerSec;
    sec -= 1;
  }
  return sec * rate + rem * rate / kNsPerSec;
}
constexpr uint32_t kClockRate = 90000;
constexpr uint64_t kNtpUnixOffset = 2208988800ULL;
constexpr unsigned kSsrcSwitchPackets = 4;       // consecutive packets of a new SSRC
constexpr int64_t kSsrcSilenceNs = kNsPerSec;    // or this long without the old one
constexpr uint64_t kRestartJump = 3000;          // sequence jump treated as a restart

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

uint32_t Pow2AtLeast(uint32_t n) {
  uint32_t p = 16;
  while (p < n && p < (1u << 15)) p <<= 1;
  return p;
}

}  // namespace

bool ParseRtpHeader(const uint8_t* p, size_t n, RtpHeader* h) {
  if (n < 12 || (p[0] >> 6) != 2) return false;
  size_t off = 12 + 4u * (p[0] & 0x0f);
  if (off > n) return false;
  if (p[0] & 0x10) {  // header extension: 4-byte header + length words
    if (off + 4 > n) return false;
    off += 4 + 4u * Be16(p + off + 2);
    if (off > n) return false;
  }
  size_t end = n;
  if (p[0] & 0x20) {  // padding: the last byte counts the padding bytes
    uint8_t pad = p[n - 1];
    if (pad == 0 || pad > end - off) return false;
    end -= pad;
  }
  h->marker = (p[1] & 0x80) != 0;
  h->pt = p[1] & 0x7f;
  h->seq = Be16(p + 2);
  h->ts = Be32(p + 4);
  h->ssrc = Be32(p + 8);
  h->payload_off = off;
  h->payload_len = end - off;
  return true;
}

RtpSession::RtpSession(const SessionConfig& cfg, FrameSink* sink) : cfg_(cfg), sink_(sink) {
  uint32_t n = Pow2AtLeast(cfg_.buffer_packets);
  cfg_.buffer_packets = n;
  mask_ = n - 1;
  slots_.resize(n);
  released_.assign(n, 0);
  if (cfg_.max_packet_bytes < 64) cfg_.max_packet_bytes = 64;
  if (cfg_.max_frame_bytes < 1024) cfg_.max_frame_bytes = 1024;
  if (cfg_.latency_ns < 0) cfg_.latency_ns = 0;
}

void RtpSession::Reset() {
  for (Slot& s : slots_) s.used = false;
  std::fill(released_.begin(), released_.end(), 0);
  buffered_ = 0;
  started_ = false;
  received_ = expected_prior_ = received_prior_ = 0;
  jitter_ = 0;
  have_transit_ = false;
  pending_loss_.clear();
}

void RtpSession::OnRtp(const uint8_t* p, size_t n, int64_t rx_ns, int64_t now) {
  RtpHeader h;
  if (!ParseRtpHeader(p, n, &h)) {
    stats_.malformed++;
    return;
  }
  if (cfg_.payload_type >= 0 && h.pt != cfg_.payload_type) {
    stats_.wrong_pt++;
    return;
  }
  if (h.payload_len > cfg_.max_packet_bytes) {
    stats_.too_large_packets++;
    return;
  }
  if (!have_ssrc_) {
    have_ssrc_ = true;
    ssrc_ = h.ssrc;
  } else if (h.ssrc != ssrc_) {
    if (h.ssrc == cand_ssrc_) cand_count_++;
    else {
      cand_ssrc_ = h.ssrc;
      cand_count_ = 1;
    }
    if (cand_count_ < kSsrcSwitchPackets && now - last_arrival_ < kSsrcSilenceNs) {
      stats_.foreign_ssrc++;
      return;
    }
    // The sender restarted (new SSRC): finish the old stream, start afresh.
    Flush();
    Reset();
    have_sr_ = false;
    ssrc_ = h.ssrc;
    cand_count_ = 0;
    stats_.ssrc_changes++;
  }
  if (h.ssrc == ssrc_) cand_count_ = 0;
  last_arrival_ = now;

  uint64_t ext;
  if (!started_) {
    started_ = true;
    ext = (1ULL << 16) + h.seq;  // headroom below for packets that precede the first
    highest_ = base_ = next_ = ext;
  } else {
    int16_t d = static_cast<int16_t>(h.seq - static_cast<uint16_t>(highest_));
    int64_t e = static_cast<int64_t>(highest_) + d;
    if (e < 0) {
      stats_.late++;
      return;
    }
    ext = static_cast<uint64_t>(e);
  }

  if (ext + kRestartJump < next_) {
    // Far behind the release point: a sender that restarted its sequence
    // numbers under the same SSRC looks like this. A run of such packets
    // resynchronises (rtpjitterbuffer does the same); a stray one is late.
    if (++old_run_ >= kSsrcSwitchPackets) {
      Flush();
      Reset();
      stats_.resets++;
      old_run_ = 0;
      started_ = true;
      ext = (1ULL << 16) + h.seq;
      highest_ = base_ = next_ = ext;
    }
  } else {
    old_run_ = 0;
  }
  if (ext < next_) {
    if (released_[ext & mask_] == ext + 1) stats_.duplicates++;
    else {
      stats_.late++;
      received_++;  // RFC 3550: late packets still count as received
    }
    return;
  }
  if (ext - next_ > kRestartJump && ext - next_ >= cfg_.buffer_packets) {
    // A jump far beyond anything the buffer could hold: the sender restarted
    // its sequence (or a stray packet). Release what we have and resync.
    Flush();
    Reset();
    stats_.resets++;
    started_ = true;
    highest_ = base_ = next_ = ext;
  }
  while (ext - next_ >= cfg_.buffer_packets) {
    // The buffer is full: make room by giving up on the oldest gap now.
    Slot& s = slots_[next_ & mask_];
    if (s.used && s.seq == next_) Release(s);
    else DeclareLost(next_, next_);
    next_++;
  }
  Slot& s = slots_[ext & mask_];
  if (s.used && s.seq == ext) {
    stats_.duplicates++;
    return;
  }
  bool fast = ext == next_ && buffered_ == 0;  // in order, nothing waiting: no copy into a slot
  if (!fast) {
    s.used = true;
    s.seq = ext;
    s.marker = h.marker;
    s.ts = h.ts;
    s.arrival = now;
    s.rx_ns = rx_ns;
    s.payload.assign(p + h.payload_off, p + h.payload_off + h.payload_len);
    buffered_++;
  }
  received_++;
  stats_.packets++;
  stats_.bytes += n;
  if (ext > highest_) highest_ = ext;

  // Interarrival jitter (RFC 3550 A.8) in RTP clock units.
  int64_t arrival_rtp = ScaleNs(now, kClockRate);
  int64_t transit = static_cast<int64_t>(static_cast<uint32_t>(arrival_rtp) - h.ts);
  transit = static_cast<int32_t>(static_cast<uint32_t>(transit));
  if (have_transit_) {
    int64_t dd = transit - last_transit_;
    if (dd < 0) dd = -dd;
    if (dd < (1LL << 31)) jitter_ += dd - ((jitter_ + 8) >> 4);
  }
  have_transit_ = true;
  last_transit_ = transit;

  if (fast) {
    released_[ext & mask_] = ext + 1;
    next_ = ext + 1;
    Depay({ext, h.ts, h.marker, rx_ns, p + h.payload_off, h.payload_len});
    return;
  }
  Drain(now);
}

void RtpSession::Drain(int64_t now) {
  while (buffered_ > 0) {
    Slot& s = slots_[next_ & mask_];
    if (s.used && s.seq == next_) {
      Release(s);
      next_++;
      continue;
    }
    // A gap at next_: find the first buffered packet after it.
    uint64_t f = next_ + 1;
    while (f <= highest_ && !(slots_[f & mask_].used && slots_[f & mask_].seq == f)) f++;
    if (f > highest_) break;  // cannot happen while buffered_ > 0; be safe
    if (slots_[f & mask_].arrival + cfg_.latency_ns > now) break;
    DeclareLost(next_, f - 1);
    next_ = f;
  }
}

int64_t RtpSession::NextDeadline() const {
  if (buffered_ == 0) return std::numeric_limits<int64_t>::max();
  for (uint64_t f = next_; f <= highest_; f++) {
    const Slot& s = slots_[f & mask_];
    if (s.used && s.seq == f) return s.arrival + cfg_.latency_ns;
  }
  return std::numeric_limits<int64_t>::max();
}

void RtpSession::OnTimer(int64_t now) { Drain(now); }

void RtpSession::Flush() {
  while (buffered_ > 0) {
    Slot& s = slots_[next_ & mask_];
    if (s.used && s.seq == next_) {
      Release(s);
      next_++;
      continue;
    }
    uint64_t f = next_ + 1;
    while (f <= highest_ && !(slots_[f & mask_].used && slots_[f & mask_].seq == f)) f++;
    if (f > highest_) break;
    DeclareLost(next_, f - 1);
    next_ = f;
  }
  if (unit_open_) EmitUnit(false);
}

void RtpSession::DeclareLost(uint64_t first, uint64_t last) {
  stats_.lost += last - first + 1;
  want_keyframe_ = true;
  if (pending_loss_.size() < kMaxRanges) pending_loss_.push_back({first, last});
  else pending_loss_.back().last = last;
  if (unit_open_) {
    AddRange(unit_, first, last);
    if (fu_active_) AbortFragment();
  }
}

void RtpSession::AddRange(Frame& f, uint64_t first, uint64_t last) {
  if (f.nranges > 0 && f.ranges[f.nranges - 1].last + 1 >= first && f.ranges[f.nranges - 1].first <= first) {
    f.ranges[f.nranges - 1].last = std::max(f.ranges[f.nranges - 1].last, last);
    return;
  }
  if (f.nranges < kMaxRanges) f.ranges[f.nranges++] = {first, last};
  else {
    f.ranges[kMaxRanges - 1].last = std::max(f.ranges[kMaxRanges - 1].last, last);
    f.flags |= kFrameRangesTruncated;
  }
}

void RtpSession::Release(Slot& s) {
  s.used = false;
  buffered_--;
  released_[s.seq & mask_] = s.seq + 1;
  Depay({s.seq, s.ts, s.marker, s.rx_ns, s.payload.data(), s.payload.size()});
}

void RtpSession::StartUnit(const PacketView& s) {
  unit_open_ = true;
  au_.clear();
  unit_ = Frame{};
  unit_.rtp_ts = s.ts;
  unit_.ssrc = ssrc_;
  unit_.first_seq = s.seq;
  unit_.rx_first_ns = s.rx_ns;
  unit_corrupt_ = false;
  fu_active_ = false;
  for (const SeqRange& r : pending_loss_) AddRange(unit_, r.first, r.last);
}

void RtpSession::Depay(const PacketView& s) {
  if (unit_open_ && s.ts != unit_.rtp_ts) EmitUnit(false);
  if (!unit_open_) StartUnit(s);
  unit_.last_seq = s.seq;
  unit_.rx_last_ns = s.rx_ns;
  unit_.packets++;
  if (cfg_.codec == Codec::kH264) DepayH264(s.payload, s.size);
  else DepayH265(s.payload, s.size);
  if (s.marker) {
    EmitUnit(true);
    pending_loss_.clear();
  }
}

// Writes the prefix (start code or a length placeholder) and `hdr_len` header
// bytes of a NAL unit about to be appended in pieces.
void RtpSession::BeginNal(size_t hdr_len, const uint8_t* hdr) {
  fu_start_ = au_.size();
  static const uint8_t kStart[4] = {0, 0, 0, 1};
  au_.insert(au_.end(), kStart, kStart + 4);
  au_.insert(au_.end(), hdr, hdr + hdr_len);
}

void RtpSession::EndNal() {
  size_t n = au_.size() - fu_start_ - 4;
  if (cfg_.length_prefixed) Put32(au_.data() + fu_start_, static_cast<uint32_t>(n));
  NoteNal(fu_start_ + 4, n);
}

void RtpSession::AbortFragment() {
  au_.resize(fu_start_);
  fu_active_ = false;
  unit_corrupt_ = true;
}

void RtpSession::AppendNal(const uint8_t* nal, size_t n) {
  size_t hdr = cfg_.codec == Codec::kH264 ? 1 : 2;
  if (n < hdr + (cfg_.codec == Codec::kH264 ? 0 : 0) || n == 0) {
    stats_.depay_errors++;
    unit_corrupt_ = true;
    return;
  }
  if (au_.size() + n + 4 > cfg_.max_frame_bytes) {
    unit_.flags |= kFrameTruncated;
    return;
  }
  BeginNal(n, nal);
  EndNal();
}

// Records parameter sets and the keyframe flag of a NAL unit at `off` in au_.
void RtpSession::NoteNal(size_t off, size_t n) {
  if (n == 0) return;
  const uint8_t* nal = au_.data() + off;
  uint32_t o = static_cast<uint32_t>(off), len = static_cast<uint32_t>(n);
  if (cfg_.codec == Codec::kH264) {
    unsigned type = nal[0] & 0x1f;
    if (type == 5) unit_.flags |= kFrameKeyframe;
    else if (type == 7) unit_.sps_off = o, unit_.sps_len = len;
    else if (type == 8) unit_.pps_off = o, unit_.pps_len = len;
  } else {
    if (n < 2) return;
    unsigned type = (nal[0] >> 1) & 0x3f;
    if (type >= 16 && type <= 23) unit_.flags |= kFrameKeyframe;
    else if (type == 32) unit_.vps_off = o, unit_.vps_len = len;
    else if (type == 33) unit_.sps_off = o, unit_.sps_len = len;
    else if (type == 34) unit_.pps_off = o, unit_.pps_len = len;
  }
}

void RtpSession::DepayH264(const uint8_t* p, size_t n) {
  if (n < 1) {
    stats_.depay_errors++;
    unit_corrupt_ = true;
    return;
  }
  unsigned type = p[0] & 0x1f;
  if (type >= 1 && type <= 23) {
    if (fu_active_) AbortFragment();  // an FU without its end
    AppendNal(p, n);
  } else if (type == 24) {  // STAP-A: [hdr] ([size16][nal])+
    if (fu_active_) AbortFragment();
    size_t off = 1;
    if (off + 2 > n) unit_corrupt_ = true, stats_.depay_errors++;
    while (off + 2 <= n) {
      size_t sz = Be16(p + off);
      off += 2;
      if (sz == 0 || off + sz > n) {
        stats_.depay_errors++;
        unit_corrupt_ = true;
        break;
      }
      AppendNal(p + off, sz);
      off += sz;
    }
  } else if (type == 28) {  // FU-A: [indicator][S E R type] payload
    uint8_t hdr = n >= 2 ? static_cast<uint8_t>((p[0] & 0xe0) | (p[1] & 0x1f)) : 0;
    OnFragment(p, n, 2, &hdr, 1);
  } else {
    stats_.unsupported_nal++;  // STAP-B, MTAP, FU-B (interleaved mode), reserved
    unit_corrupt_ = true;
  }
}

void RtpSession::DepayH265(const uint8_t* p, size_t n) {
  if (n < 2) {
    stats_.depay_errors++;
    unit_corrupt_ = true;
    return;
  }
  unsigned type = (p[0] >> 1) & 0x3f;
  if (type < 48) {
    if (fu_active_) AbortFragment();
    AppendNal(p, n);
  } else if (type == 48) {  // AP: [hdr 2] ([size16][nal])+ (no DONL: sprop-max-don-diff = 0)
    if (fu_active_) AbortFragment();
    size_t off = 2;
    if (off + 2 > n) unit_corrupt_ = true, stats_.depay_errors++;
    while (off + 2 <= n) {
      size_t sz = Be16(p + off);
      off += 2;
      if (sz < 2 || off + sz > n) {
        stats_.depay_errors++;
        unit_corrupt_ = true;
        break;
      }
      AppendNal(p + off, sz);
      off += sz;
    }
  } else if (type == 49) {  // FU: [hdr 2][S E type6] payload
    uint8_t hdr[2] = {0, 0};
    if (n >= 3) {
      hdr[0] = static_cast<uint8_t>((p[0] & 0x81) | ((p[2] & 0x3f) << 1));
      hdr[1] = p[1];
    }
    OnFragment(p, n, 3, hdr, 2);
  } else {
    stats_.unsupported_nal++;  // PACI, reserved
    unit_corrupt_ = true;
  }
}

// One fragmentation unit (H.264 FU-A, H.265 FU): `fu_len` bytes of headers,
// the last holding the start/end bits, then payload; `nal_hdr` is the NAL
// header the unit rebuilds when it starts.
void RtpSession::OnFragment(const uint8_t* p, size_t n, size_t fu_len, const uint8_t* nal_hdr, size_t nal_hdr_len) {
  if (n < fu_len) {
    stats_.depay_errors++;
    unit_corrupt_ = true;
    return;
  }
  bool start = p[fu_len - 1] & 0x80, end = p[fu_len - 1] & 0x40;
  if (start) {
    if (fu_active_) AbortFragment();
    if (au_.size() + n + 4 > cfg_.max_frame_bytes) {
      unit_.flags |= kFrameTruncated;
      return;
    }
    BeginNal(nal_hdr_len, nal_hdr);
    fu_active_ = true;
  } else if (!fu_active_) {
    unit_corrupt_ = true;  // the start was lost (or never sent)
    stats_.depay_errors++;
    return;
  }
  if (au_.size() + (n - fu_len) > cfg_.max_frame_bytes) {
    unit_.flags |= kFrameTruncated;
    AbortFragment();
    return;
  }
  au_.insert(au_.end(), p + fu_len, p + n);
  if (end) {
    fu_active_ = false;
    EndNal();
  }
}

int64_t RtpSession::CaptureTime(uint32_t ts) const {
  int64_t sec = static_cast<int64_t>(sr_ntp_ >> 32) - static_cast<int64_t>(kNtpUnixOffset);
  int64_t frac_ns = static_cast<int64_t>(((sr_ntp_ & 0xffffffffULL) * kNsPerSec) >> 32);
  int64_t d = static_cast<int32_t>(ts - sr_rtp_);
  return sec * kNsPerSec + frac_ns + d * kNsPerSec / kClockRate;
}

void RtpSession::EmitUnit(bool marker) {
  if (!unit_open_) return;
  unit_open_ = false;
  if (fu_active_) AbortFragment();
  if (unit_.flags & kFrameTruncated) stats_.oversize_frames++;
  if (unit_corrupt_) unit_.flags |= kFrameCorrupt;
  if (!marker) unit_.flags |= kFrameNoMarker;
  bool stamped = unit_.rx_first_ns != 0 && unit_.rx_last_ns != 0;
  if (stamped) unit_.flags |= kFrameRxStamp;
  if (have_sr_) {
    unit_.flags |= kFrameCapture;
    unit_.capture_ns = CaptureTime(unit_.rtp_ts);
  }
  bool complete = unit_.nranges == 0 && !unit_corrupt_ && !(unit_.flags & kFrameTruncated) && !au_.empty();
  if (complete) {
    unit_.flags |= kFrameComplete;
    stats_.frames_complete++;
  } else {
    stats_.frames_incomplete++;
    want_keyframe_ = true;
  }
  if (unit_.flags & kFrameKeyframe) {
    stats_.keyframes++;
    if (complete) want_keyframe_ = false;
  }
  unit_.data = au_.data();
  unit_.size = au_.size();
  if (sink_) sink_->OnFrame(unit_);
  au_.clear();
}

bool RtpSession::OnRtcp(const uint8_t* p, size_t n, int64_t now) {
  stats_.rtcp_packets++;
  bool sr = false;
  size_t off = 0;
  if (n < 4) {
    stats_.rtcp_malformed++;
    return false;
  }
  while (off + 4 <= n) {
    const uint8_t* q = p + off;
    if ((q[0] >> 6) != 2) {
      stats_.rtcp_malformed++;
      return sr;
    }
    size_t len = (static_cast<size_t>(Be16(q + 2)) + 1) * 4;
    if (off + len > n) {
      stats_.rtcp_malformed++;
      return sr;
    }
    if (q[1] == 200 && len >= 28) {
      uint32_t ssrc = Be32(q + 4);
      if (!have_ssrc_ || ssrc == ssrc_) {
        have_sr_ = true;
        sr_ntp_ = static_cast<uint64_t>(Be32(q + 8)) << 32 | Be32(q + 12);
        sr_rtp_ = Be32(q + 16);
        sr_arrival_ = now;
        stats_.rtcp_sr++;
        sr = true;
      }
    }
    off += len;
  }
  return sr;
}

size_t RtpSession::BuildReceiverReport(uint8_t* out, size_t cap, int64_t now) {
  static const char kCname[] = "onbus";
  const size_t cname_len = sizeof(kCname) - 1;
  // SDES: header 4 + SSRC 4 + item (2 + len) + end 1, padded to 4.
  size_t sdes = (8 + 2 + cname_len + 1 + 3) & ~static_cast<size_t>(3);
  bool block = have_ssrc_ && started_;
  size_t rr = 8 + (block ? 24 : 0);
  if (cap < rr + sdes) return 0;
  out[0] = static_cast<uint8_t>(0x80 | (block ? 1 : 0));
  out[1] = 201;
  Put16(out + 2, static_cast<uint16_t>(rr / 4 - 1));
  Put32(out + 4, own_ssrc_);
  if (block) {
    uint8_t* b = out + 8;
    uint64_t expected = highest_ - base_ + 1;
    int64_t lost = static_cast<int64_t>(expected) - static_cast<int64_t>(received_);
    uint64_t exp_int = expected - expected_prior_;
    uint64_t rec_int = received_ - received_prior_;
    expected_prior_ = expected;
    received_prior_ = received_;
    int64_t lost_int = static_cast<int64_t>(exp_int) - static_cast<int64_t>(rec_int);
    uint8_t fraction = (exp_int == 0 || lost_int <= 0) ? 0 : static_cast<uint8_t>(std::min<int64_t>(255, (lost_int << 8) / static_cast<int64_t>(exp_int)));
    lost = std::max<int64_t>(-0x800000, std::min<int64_t>(0x7fffff, lost));
    Put32(b, ssrc_);
    b[4] = fraction;
    uint32_t l24 = static_cast<uint32_t>(lost) & 0xffffff;
    b[5] = static_cast<uint8_t>(l24 >> 16);
    b[6] = static_cast<uint8_t>(l24 >> 8);
    b[7] = static_cast<uint8_t>(l24);
    // Extended highest sequence number: cycles in the upper 16 bits, counted
    // from the first packet (our extension starts one cycle up).
    Put32(b + 8, static_cast<uint32_t>(highest_ - (1ULL << 16)));
    Put32(b + 12, jitter());
    uint32_t lsr = have_sr_ ? static_cast<uint32_t>(sr_ntp_ >> 16) : 0;
    uint32_t dlsr = have_sr_ ? static_cast<uint32_t>(ScaleNs(now - sr_arrival_, 65536)) : 0;
    Put32(b + 16, lsr);
    Put32(b + 20, dlsr);
  }
  uint8_t* s = out + rr;
  memset(s, 0, sdes);
  s[0] = 0x81;
  s[1] = 202;
  Put16(s + 2, static_cast<uint16_t>(sdes / 4 - 1));
  Put32(s + 4, own_ssrc_);
  s[8] = 1;  // CNAME
  s[9] = static_cast<uint8_t>(cname_len);
  memcpy(s + 10, kCname, cname_len);
  return rr + sdes;
}

size_t RtpSession::BuildPli(uint8_t* out, size_t cap) const {
  if (cap < 12 || !have_ssrc_) return 0;
  out[0] = 0x80 | 1;  // FMT 1: PLI
  out[1] = 206;
  Put16(out + 2, 2);
  Put32(out + 4, own_ssrc_);
  Put32(out + 8, ssrc_);
  return 12;
}

size_t RtpSession::BuildFir(uint8_t* out, size_t cap) {
  if (cap < 20 || !have_ssrc_) return 0;
  out[0] = 0x80 | 4;  // FMT 4: FIR
  out[1] = 206;
  Put16(out + 2, 4);
  Put32(out + 4, own_ssrc_);
  Put32(out + 8, 0);  // media source: unused (RFC 5104 §4.3.1.2)
  Put32(out + 12, ssrc_);
  out[16] = fir_seq_++;
  out[17] = out[18] = out[19] = 0;
  return 20;
}

}  // namespace rtp
}  // namespace onbus
