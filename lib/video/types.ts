/**
 * Types shared by the RTP video sender (lib/video/sender.ts) and receiver
 * (lib/video/receiver.ts): codec names, RTP/RTCP constants and the frame
 * metadata both sides speak about.
 */

/** Video codecs carried over RTP: H.264 (RFC 6184) and H.265 (RFC 7798). */
export type VideoCodec = 'h264' | 'h265'

/** How an access unit's NAL units are laid out in a frame buffer. */
export type NalFormat = 'annexb' | 'length-prefixed'

/** The RTP clock rate of video payloads (RFC 6184 §8.2.1, RFC 7798 §7.1). */
export const RTP_VIDEO_CLOCK_RATE = 90000

/** RTP constants (RFC 3550). */
export const Rtp = {
  VERSION: 2,
  HEADER_SIZE: 12,
  /** First dynamic payload type; the usual H.264/H.265 choices are 96..127. */
  DYNAMIC_PT_MIN: 96,
  DYNAMIC_PT_MAX: 127,
  /** Default payload types onbus uses when none is configured. */
  DEFAULT_PT: { h264: 96, h265: 97 } as Record<VideoCodec, number>,
} as const

/** RTCP packet types (RFC 3550, RFC 4585). */
export const RtcpType = {
  SR: 200,
  RR: 201,
  SDES: 202,
  BYE: 203,
  APP: 204,
  RTPFB: 205,
  PSFB: 206,
} as const

/** PSFB feedback message types (FMT field): PLI (RFC 4585), FIR (RFC 5104). */
export const PsfbFmt = { PLI: 1, FIR: 4 } as const

/** H.264 NAL unit types used by the (de)packetisers (RFC 6184 §5.2). */
export const H264Nal = {
  SLICE: 1,
  IDR: 5,
  SEI: 6,
  SPS: 7,
  PPS: 8,
  AUD: 9,
  STAP_A: 24,
  STAP_B: 25,
  MTAP16: 26,
  MTAP24: 27,
  FU_A: 28,
  FU_B: 29,
} as const

/** H.265 NAL unit types used by the (de)packetisers (RFC 7798 §4.4). */
export const H265Nal = {
  /** IRAP pictures are types 16..23 (BLA, IDR, CRA). */
  IRAP_MIN: 16,
  IRAP_MAX: 23,
  VPS: 32,
  SPS: 33,
  PPS: 34,
  AUD: 35,
  AP: 48,
  FU: 49,
  PACI: 50,
} as const

/** A wall-clock time as seconds + nanoseconds (CLOCK_REALTIME / NTP-derived). */
export interface WallTime {
  sec: number
  nsec: number
}

/** An inclusive range of extended RTP sequence numbers that never arrived. */
export interface SeqRange {
  first: number
  last: number
}

/**
 * Metadata of one access unit (a video frame), as the receiver reports it and
 * as the sender describes what it sent.
 */
export interface FrameMeta {
  codec: VideoCodec
  /** RTP timestamp (90 kHz) of the access unit. */
  rtpTimestamp: number
  ssrc: number
  /** IDR (H.264) or IRAP (H.265) picture. */
  keyframe: boolean
  /** Every packet of the access unit arrived and depacketised cleanly. */
  complete: boolean
  /** Sequence ranges lost inside or just before this frame (empty when complete). */
  missing: SeqRange[]
  /** Kernel receive time of the first and the last packet (null without stamps). */
  rxFirst: WallTime | null
  rxLast: WallTime | null
  /** Capture time on the sender's wall clock via RTCP SR (null until the first SR). */
  captureTime: WallTime | null
  /** Extended sequence numbers of the first and last packet. */
  firstSeq: number
  lastSeq: number
  packets: number
}

/** Parameter sets of a stream: NAL units with their header, without start code (VPS is H.265 only). */
export interface ParameterSets {
  vps?: Uint8Array
  sps?: Uint8Array
  pps?: Uint8Array
}
