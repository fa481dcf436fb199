/**
 * RTP payload formats for H.264 (RFC 6184, packetization-mode=1) and H.265
 * (RFC 7798, no DONL): an access unit's NAL units become RTP payloads that
 * fit the MTU.
 *
 * - a NAL unit that fits goes alone (single NAL unit packet);
 * - consecutive small NAL units are aggregated (STAP-A / AP): by default only
 *   the non-VCL ones (parameter sets, SEI, delimiters ahead of a picture), or
 *   every run that fits with `aggregate: 'all'`;
 * - a NAL unit larger than the MTU is fragmented (FU-A / FU), every fragment
 *   but the last of exactly the same size so that a run goes out as one UDP
 *   GSO super-packet.
 *
 * Output: one Buffer for the whole access unit, and a view per packet that
 * starts with {@link RTP_HEADER_SIZE} bytes left for the RTP header (the
 * sender writes it). One allocation per access unit; NAL bytes are copied
 * once, into their packet.
 */
import { H264_NAL, H265_NAL, isVcl, nalHeaderSize, nalType, type VideoCodec } from './annexb.js'

/** Fixed RTP header (no CSRC, no extension). */
export const RTP_HEADER_SIZE = 12

/** What {@link packetize} aggregates into STAP-A / AP packets. */
export type AggregateMode = 'none' | 'parameter-sets' | 'all'

export interface PacketizeOptions {
  codec: VideoCodec
  /** Largest RTP packet (header + payload) in bytes, like `rtph264pay mtu=`. */
  mtu: number
  aggregate?: AggregateMode
}

/** Counters of what {@link packetize} produced (added to by each call). */
export interface PacketizeCounters {
  single: number
  aggregated: number
  /** NAL units carried inside aggregation packets. */
  aggregatedNals: number
  fragments: number
  /** NAL units that were fragmented. */
  fragmentedNals: number
}

export function newPacketizeCounters(): PacketizeCounters {
  return { single: 0, aggregated: 0, aggregatedNals: 0, fragments: 0, fragmentedNals: 0 }
}

const enum Kind {
  Single,
  Aggregate,
  Fragment,
}

interface Item {
  kind: Kind
  nals: Uint8Array[]
  /** Fragment: byte range of the NAL (after its header) and flags. */
  off: number
  len: number
  start: boolean
  end: boolean
  size: number
}

/** Smallest MTU accepted: room for the header, an FU header and some payload. */
export const MIN_MTU = RTP_HEADER_SIZE + 3 + 16

/**
 * Splits one access unit into RTP packets (header space left blank).
 * @example
 * const pkts = packetize(splitNals(au), { codec: 'h264', mtu: 1400 })
 */
export function packetize(nals: Uint8Array[], opts: PacketizeOptions, counters?: PacketizeCounters): Buffer[] {
  const { codec, mtu } = opts
  const aggregate = opts.aggregate ?? 'parameter-sets'
  const hs = nalHeaderSize(codec)
  const maxPayload = mtu - RTP_HEADER_SIZE
  const aggHeader = hs // STAP-A: 1 byte; AP: 2 bytes
  const fuHeader = hs + 1
  const fragData = maxPayload - fuHeader
  const items: Item[] = []

  const canAggregate = (nal: Uint8Array) =>
    aggregate !== 'none' && aggHeader + 2 + nal.length <= maxPayload && (aggregate === 'all' || !isVcl(nalType(nal, codec), codec))

  let i = 0
  while (i < nals.length) {
    const nal = nals[i]
    if (nal.length <= hs) {
      i++ // a header-only NAL carries nothing; skipping keeps the stream valid
      continue
    }
    if (canAggregate(nal)) {
      const run: Uint8Array[] = [nal]
      let size = aggHeader + 2 + nal.length
      let j = i + 1
      while (j < nals.length && nals[j].length > hs && canAggregate(nals[j]) && size + 2 + nals[j].length <= maxPayload) {
        size += 2 + nals[j].length
        run.push(nals[j])
        j++
      }
      if (run.length > 1) {
        items.push({ kind: Kind.Aggregate, nals: run, off: 0, len: 0, start: false, end: false, size })
        i = j
        continue
      }
    }
    if (nal.length <= maxPayload) {
      items.push({ kind: Kind.Single, nals: [nal], off: 0, len: 0, start: false, end: false, size: nal.length })
    } else {
      let off = hs
      while (off < nal.length) {
        const len = Math.min(fragData, nal.length - off)
        items.push({ kind: Kind.Fragment, nals: [nal], off, len, start: off === hs, end: off + len === nal.length, size: fuHeader + len })
        off += len
      }
    }
    i++
  }

  let total = 0
  for (const it of items) total += RTP_HEADER_SIZE + it.size
  const buf = Buffer.allocUnsafe(total)
  const out: Buffer[] = new Array(items.length)
  let o = 0
  for (let k = 0; k < items.length; k++) {
    const it = items[k]
    const p = o + RTP_HEADER_SIZE
    switch (it.kind) {
      case Kind.Single:
        buf.set(it.nals[0], p)
        if (counters) counters.single++
        break
      case Kind.Aggregate: {
        let q = p
        if (codec === 'h264') {
          let f = 0
          let nri = 0
          for (const n of it.nals) {
            f |= n[0] & 0x80
            nri = Math.max(nri, n[0] & 0x60)
          }
          buf[q++] = f | nri | H264_NAL.STAP_A
        } else {
          // AP PayloadHdr: F = 0, Type 48, LayerId and TID the lowest of the aggregated units (RFC 7798 §4.4.2).
          let layer = 63
          let tid = 7
          for (const n of it.nals) {
            layer = Math.min(layer, ((n[0] & 1) << 5) | (n[1] >> 3))
            tid = Math.min(tid, n[1] & 7)
          }
          buf[q++] = (H265_NAL.AP << 1) | (layer >> 5)
          buf[q++] = ((layer & 0x1f) << 3) | tid
        }
        for (const n of it.nals) {
          buf[q++] = n.length >> 8
          buf[q++] = n.length & 0xff
          buf.set(n, q)
          q += n.length
        }
        if (counters) {
          counters.aggregated++
          counters.aggregatedNals += it.nals.length
        }
        break
      }
      case Kind.Fragment: {
        const n = it.nals[0]
        const se = (it.start ? 0x80 : 0) | (it.end ? 0x40 : 0)
        if (codec === 'h264') {
          buf[p] = (n[0] & 0xe0) | H264_NAL.FU_A
          buf[p + 1] = se | (n[0] & 0x1f)
        } else {
          buf[p] = (n[0] & 0x81) | (H265_NAL.FU << 1)
          buf[p + 1] = n[1]
          buf[p + 2] = se | ((n[0] >> 1) & 0x3f)
        }
        buf.set(n.subarray(it.off, it.off + it.len), p + fuHeader)
        if (counters) {
          counters.fragments++
          if (it.start) counters.fragmentedNals++
        }
        break
      }
    }
    out[k] = buf.subarray(o, p + it.size)
    o = p + it.size
  }
  return out
}
