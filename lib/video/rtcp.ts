/**
 * RTCP (RFC 3550 §6, RFC 4585 feedback, RFC 5104 FIR): building and parsing
 * the packets an RTP video sender and receiver exchange: sender and receiver
 * reports, SDES CNAME, BYE, picture loss indication (PLI), full intra request
 * (FIR) and generic NACK.
 *
 * Parsing never throws on peer data: a malformed compound packet yields what
 * parsed before the fault plus `error` naming the reason, so callers can
 * count rejects per reason.
 */

/** RTCP packet types. */
export const RTCP_PT = { SR: 200, RR: 201, SDES: 202, BYE: 203, APP: 204, RTPFB: 205, PSFB: 206 } as const
/** Feedback message types (FMT field). */
export const RTCP_FMT = { NACK: 1, PLI: 1, FIR: 4 } as const

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
export const NTP_UNIX_OFFSET = 2_208_988_800

/** One report block of an SR or RR. */
export interface ReportBlock {
  ssrc: number
  /** Fraction lost since the last report, 0–1. */
  fractionLost: number
  /** Cumulative packets lost (signed 24-bit). */
  cumulativeLost: number
  extendedHighestSeq: number
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number
  /** Middle 32 bits of the NTP time of the last SR received (0 if none). */
  lastSr: number
  /** Delay since that SR, in 1/65536 s. */
  delaySinceLastSr: number
}

export interface SenderReport {
  type: 'sr'
  ssrc: number
  /** NTP timestamp, seconds part (since 1900). */
  ntpSec: number
  /** NTP timestamp, fraction part (1/2^32 s). */
  ntpFrac: number
  rtpTimestamp: number
  packetCount: number
  octetCount: number
  reports: ReportBlock[]
}
export interface ReceiverReport {
  type: 'rr'
  ssrc: number
  reports: ReportBlock[]
}
export interface SdesPacket {
  type: 'sdes'
  chunks: { ssrc: number; cname?: string }[]
}
export interface ByePacket {
  type: 'bye'
  ssrcs: number[]
}
export interface PliPacket {
  type: 'pli'
  senderSsrc: number
  mediaSsrc: number
}
export interface FirPacket {
  type: 'fir'
  senderSsrc: number
  entries: { ssrc: number; seq: number }[]
}
export interface NackPacket {
  type: 'nack'
  senderSsrc: number
  mediaSsrc: number
  /** Sequence numbers reported lost. */
  lost: number[]
}
export interface OtherRtcpPacket {
  type: 'other'
  pt: number
  fmt: number
}
export type RtcpPacket = SenderReport | ReceiverReport | SdesPacket | ByePacket | PliPacket | FirPacket | NackPacket | OtherRtcpPacket

/** Result of {@link parseRtcp}. */
export interface RtcpParseResult {
  packets: RtcpPacket[]
  /** Why parsing stopped early: `'short'`, `'version'`, `'length'`, `'padding'`; undefined when the whole buffer parsed. */
  error?: 'short' | 'version' | 'length' | 'padding'
}

/** True when the second byte marks an RTCP packet type (RFC 5761 §4 demultiplexing rule). */
export function isRtcp(buf: Uint8Array): boolean {
  return buf.length >= 8 && buf[1] >= 192 && buf[1] <= 223
}

/** A realtime nanosecond time as a 64-bit NTP timestamp [seconds since 1900, fraction]. */
export function ntpFromNs(ns: bigint): [number, number] {
  const sec = ns / 1_000_000_000n
  const rem = ns - sec * 1_000_000_000n
  const frac = Number((rem << 32n) / 1_000_000_000n)
  return [(Number(sec) + NTP_UNIX_OFFSET) >>> 0, frac >>> 0]
}

/** A 64-bit NTP timestamp as realtime nanoseconds (Unix epoch). */
export function nsFromNtp(sec: number, frac: number): bigint {
  return BigInt(sec - NTP_UNIX_OFFSET) * 1_000_000_000n + ((BigInt(frac) * 1_000_000_000n) >> 32n)
}

/** The middle 32 bits of an NTP timestamp (the LSR field of report blocks). */
export function ntpMiddle(sec: number, frac: number): number {
  return (((sec & 0xffff) << 16) | (frac >>> 16)) >>> 0
}

function header(buf: DataView, o: number, count: number, pt: number, lengthWords: number): void {
  buf.setUint8(o, 0x80 | (count & 0x1f))
  buf.setUint8(o + 1, pt)
  buf.setUint16(o + 2, lengthWords - 1)
}

function writeBlocks(v: DataView, o: number, reports: ReportBlock[]): void {
  for (const r of reports) {
    v.setUint32(o, r.ssrc >>> 0)
    const lost = Math.max(-0x800000, Math.min(0x7fffff, Math.trunc(r.cumulativeLost)))
    v.setUint32(o + 4, ((Math.min(255, Math.max(0, Math.round(r.fractionLost * 256))) << 24) | (lost & 0xffffff)) >>> 0)
    v.setUint32(o + 8, r.extendedHighestSeq >>> 0)
    v.setUint32(o + 12, r.jitter >>> 0)
    v.setUint32(o + 16, r.lastSr >>> 0)
    v.setUint32(o + 20, r.delaySinceLastSr >>> 0)
    o += 24
  }
}

/** Builds a sender report. */
export function buildSenderReport(sr: Omit<SenderReport, 'type' | 'reports'> & { reports?: ReportBlock[] }): Buffer {
  const reports = sr.reports ?? []
  const len = 28 + 24 * reports.length
  const b = Buffer.alloc(len)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, reports.length, RTCP_PT.SR, len / 4)
  v.setUint32(4, sr.ssrc >>> 0)
  v.setUint32(8, sr.ntpSec >>> 0)
  v.setUint32(12, sr.ntpFrac >>> 0)
  v.setUint32(16, sr.rtpTimestamp >>> 0)
  v.setUint32(20, sr.packetCount >>> 0)
  v.setUint32(24, sr.octetCount >>> 0)
  writeBlocks(v, 28, reports)
  return b
}

/** Builds a receiver report. */
export function buildReceiverReport(ssrc: number, reports: ReportBlock[] = []): Buffer {
  const len = 8 + 24 * reports.length
  const b = Buffer.alloc(len)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, reports.length, RTCP_PT.RR, len / 4)
  v.setUint32(4, ssrc >>> 0)
  writeBlocks(v, 8, reports)
  return b
}

/** Builds an SDES packet with one CNAME item (required in every compound packet). */
export function buildSdesCname(ssrc: number, cname: string): Buffer {
  const name = Buffer.from(cname, 'utf8').subarray(0, 255)
  // ssrc + type + len + text + at least one null terminator, padded to 32 bits.
  const chunk = (4 + 2 + name.length + 1 + 3) & ~3
  const len = 4 + chunk
  const b = Buffer.alloc(len)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, 1, RTCP_PT.SDES, len / 4)
  v.setUint32(4, ssrc >>> 0)
  b[8] = 1 // CNAME
  b[9] = name.length
  name.copy(b, 10)
  return b
}

/** Builds a BYE packet. */
export function buildBye(ssrc: number): Buffer {
  const b = Buffer.alloc(8)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, 1, RTCP_PT.BYE, 2)
  v.setUint32(4, ssrc >>> 0)
  return b
}

/** Builds a picture loss indication (RFC 4585 §6.3.1). */
export function buildPli(senderSsrc: number, mediaSsrc: number): Buffer {
  const b = Buffer.alloc(12)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, RTCP_FMT.PLI, RTCP_PT.PSFB, 3)
  v.setUint32(4, senderSsrc >>> 0)
  v.setUint32(8, mediaSsrc >>> 0)
  return b
}

/** Builds a full intra request (RFC 5104 §4.3.1); `seq` increments per new request. */
export function buildFir(senderSsrc: number, mediaSsrc: number, seq: number): Buffer {
  const b = Buffer.alloc(20)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, RTCP_FMT.FIR, RTCP_PT.PSFB, 5)
  v.setUint32(4, senderSsrc >>> 0)
  v.setUint32(8, 0) // media source SSRC is 0 in FIR; the target is in the FCI
  v.setUint32(12, mediaSsrc >>> 0)
  b[16] = seq & 0xff
  return b
}

/** Builds a generic NACK (RFC 4585 §6.2.1) for the given lost sequence numbers. */
export function buildNack(senderSsrc: number, mediaSsrc: number, lost: number[]): Buffer {
  const sorted = [...new Set(lost.map((s) => s & 0xffff))].sort((a, b) => a - b)
  const fci: [number, number][] = []
  for (const s of sorted) {
    const last = fci[fci.length - 1]
    const d = last ? (s - last[0]) & 0xffff : 0
    if (last && d >= 1 && d <= 16) last[1] |= 1 << (d - 1)
    else fci.push([s, 0])
  }
  const len = 12 + 4 * fci.length
  const b = Buffer.alloc(len)
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  header(v, 0, RTCP_FMT.NACK, RTCP_PT.RTPFB, len / 4)
  v.setUint32(4, senderSsrc >>> 0)
  v.setUint32(8, mediaSsrc >>> 0)
  fci.forEach(([pid, blp], i) => {
    v.setUint16(12 + 4 * i, pid)
    v.setUint16(14 + 4 * i, blp)
  })
  return b
}

function readBlocks(v: DataView, o: number, count: number): ReportBlock[] {
  const out: ReportBlock[] = []
  for (let i = 0; i < count; i++, o += 24) {
    const w = v.getUint32(o + 4)
    let lost = w & 0xffffff
    if (lost & 0x800000) lost -= 0x1000000
    out.push({
      ssrc: v.getUint32(o),
      fractionLost: (w >>> 24) / 256,
      cumulativeLost: lost,
      extendedHighestSeq: v.getUint32(o + 8),
      jitter: v.getUint32(o + 12),
      lastSr: v.getUint32(o + 16),
      delaySinceLastSr: v.getUint32(o + 20),
    })
  }
  return out
}

/**
 * Parses a compound RTCP packet. Never throws on malformed input.
 * @example
 * const { packets, error } = parseRtcp(datagram)
 * for (const p of packets) if (p.type === 'pli') requestKeyframe()
 */
export function parseRtcp(buf: Uint8Array): RtcpParseResult {
  const packets: RtcpPacket[] = []
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let o = 0
  while (o < buf.length) {
    if (buf.length - o < 4) return { packets, error: 'short' }
    const b0 = buf[o]
    if (b0 >> 6 !== 2) return { packets, error: 'version' }
    const count = b0 & 0x1f
    const pt = buf[o + 1]
    const len = (v.getUint16(o + 2) + 1) * 4
    if (o + len > buf.length) return { packets, error: 'length' }
    let end = o + len
    if (b0 & 0x20) {
      // Padding: only the last packet of a compound may carry it.
      const pad = buf[end - 1]
      if (pad === 0 || pad > len - 4 || end !== buf.length) return { packets, error: 'padding' }
      end -= pad
    }
    const body = end - o
    switch (pt) {
      case RTCP_PT.SR:
        if (body < 28 + 24 * count) return { packets, error: 'length' }
        packets.push({
          type: 'sr',
          ssrc: v.getUint32(o + 4),
          ntpSec: v.getUint32(o + 8),
          ntpFrac: v.getUint32(o + 12),
          rtpTimestamp: v.getUint32(o + 16),
          packetCount: v.getUint32(o + 20),
          octetCount: v.getUint32(o + 24),
          reports: readBlocks(v, o + 28, count),
        })
        break
      case RTCP_PT.RR:
        if (body < 8 + 24 * count) return { packets, error: 'length' }
        packets.push({ type: 'rr', ssrc: v.getUint32(o + 4), reports: readBlocks(v, o + 8, count) })
        break
      case RTCP_PT.SDES: {
        const chunks: SdesPacket['chunks'] = []
        let p = o + 4
        for (let c = 0; c < count && p + 4 <= end; c++) {
          const chunk: SdesPacket['chunks'][number] = { ssrc: v.getUint32(p) }
          p += 4
          while (p < end && buf[p] !== 0) {
            if (p + 2 > end || p + 2 + buf[p + 1] > end) return { packets, error: 'length' }
            if (buf[p] === 1) chunk.cname = Buffer.from(buf.buffer, buf.byteOffset + p + 2, buf[p + 1]).toString('utf8')
            p += 2 + buf[p + 1]
          }
          // Skip the null terminator(s) to the next 32-bit boundary (at least one null).
          p = o + (((p - o) + 4) & ~3)
          chunks.push(chunk)
        }
        packets.push({ type: 'sdes', chunks })
        break
      }
      case RTCP_PT.BYE: {
        if (body < 4 + 4 * count) return { packets, error: 'length' }
        const ssrcs: number[] = []
        for (let i = 0; i < count; i++) ssrcs.push(v.getUint32(o + 4 + 4 * i))
        packets.push({ type: 'bye', ssrcs })
        break
      }
      case RTCP_PT.PSFB:
        if (body < 12) return { packets, error: 'length' }
        if (count === RTCP_FMT.PLI) packets.push({ type: 'pli', senderSsrc: v.getUint32(o + 4), mediaSsrc: v.getUint32(o + 8) })
        else if (count === RTCP_FMT.FIR) {
          const entries: FirPacket['entries'] = []
          for (let p = o + 12; p + 8 <= end; p += 8) entries.push({ ssrc: v.getUint32(p), seq: buf[p + 4] })
          packets.push({ type: 'fir', senderSsrc: v.getUint32(o + 4), entries })
        } else packets.push({ type: 'other', pt, fmt: count })
        break
      case RTCP_PT.RTPFB:
        if (body < 12) return { packets, error: 'length' }
        if (count === RTCP_FMT.NACK) {
          const lost: number[] = []
          for (let p = o + 12; p + 4 <= end; p += 4) {
            const pid = v.getUint16(p)
            const blp = v.getUint16(p + 2)
            lost.push(pid)
            for (let k = 0; k < 16; k++) if (blp & (1 << k)) lost.push((pid + k + 1) & 0xffff)
          }
          packets.push({ type: 'nack', senderSsrc: v.getUint32(o + 4), mediaSsrc: v.getUint32(o + 8), lost })
        } else packets.push({ type: 'other', pt, fmt: count })
        break
      default:
        packets.push({ type: 'other', pt, fmt: count })
    }
    o += len
  }
  return { packets }
}
