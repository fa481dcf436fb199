/**
 * Streaming MAVLink v1/v2 frame parser.
 *
 * push(chunk, onFrame) finds frames in a byte stream (serial, TCP) or in
 * datagrams (UDP), checks them, and calls onFrame for each good one with a
 * reused {@link MavlinkFrame} whose views are valid until the callback
 * returns. Nothing is decoded: a frame is header fields and a byte range, and
 * its message is built only if someone asks (`frame.message`).
 *
 * When the chunk holds whole frames (the UDP case) the frames are views into
 * the chunk: no copy. Only a frame split across pushes is assembled in a
 * carry-over buffer.
 *
 * Checks and resynchronisation: a candidate starts at a start byte (0xFE v1,
 * 0xFD v2). A v2 frame with an incompatibility flag other than "signed" is
 * refused (the spec requires it); a known message whose declared length is out
 * of range is refused before waiting for its bytes; then the CRC with the
 * message's CRC_EXTRA. A refused candidate discards one byte and the search
 * goes on from the next byte, so a good frame hiding behind a false start byte
 * is still found.
 *
 * Unknown message ids are passed through (a router must forward what it
 * cannot decode). Their CRC cannot be checked without CRC_EXTRA, so the parser
 * requires two things the genuine frame always has: the CRC must be
 * consistent with some CRC_EXTRA (255 in 256 random candidates are not), and
 * the frame must end where the data ends or where another frame that passes
 * these checks starts (so an unknown-id frame followed by a partial frame
 * waits for that frame's bytes before it is delivered).
 */
import type { Dialect, MessageDef } from './codec.js'
import { crcAccumulate, crcCalculate, crcExtraConsistent } from './crc.js'
import { HEADER_V1, HEADER_V2, IFLAG_SIGNED, MavlinkFrame, SIGNATURE_LENGTH, STX_V1, STX_V2 } from './frame.js'
import { readTimestamp } from './signing.js'
import type { MavlinkSigning, SigningRejectReason } from './signing.js'

/** Why a candidate frame was refused. */
export type RejectReason =
  /** CRC mismatch (corruption, or a false start byte in garbage). */
  | 'bad_crc'
  /** A frame cut short: a good frame starts inside the span it declared (or a datagram / the stream ended inside it). */
  | 'truncated'
  /** Declared payload length impossible for the message id (longer than the message, or a MAVLink 1 payload shorter than its fields). */
  | 'bad_length'
  /** A MAVLink 2 incompatibility flag this implementation does not know. */
  | 'incompat_flags'
  | SigningRejectReason

export const REJECT_REASONS: readonly RejectReason[] = [
  'bad_crc',
  'truncated',
  'bad_length',
  'incompat_flags',
  'unsigned',
  'bad_signature',
  'replay',
  'stale_timestamp',
  'future_timestamp',
  'stream_limit',
]

/** Counters of one parser. Every byte pushed ends up accepted, discarded or pending. */
export interface ParserStats {
  /** Bytes pushed. */
  bytesIn: number
  /** Bytes of delivered frames. */
  bytesAccepted: number
  /** Bytes dropped: garbage between frames and refused frames. */
  bytesDiscarded: number
  /** Frames delivered. */
  frames: number
  /** Frames whose id the dialect lacks: delivered undecoded ('forward') or dropped ('drop'). */
  unknownId: number
  /** Delivered frames whose signature was verified. */
  signed: number
  /** Unsigned frames let through on a signing link by the configured exceptions. */
  unsignedAllowed: number
  /** Refused candidates, by reason. */
  rejected: Record<RejectReason, number>
}

function emptyStats(): ParserStats {
  const rejected = {} as Record<RejectReason, number>
  for (const r of REJECT_REASONS) rejected[r] = 0
  return { bytesIn: 0, bytesAccepted: 0, bytesDiscarded: 0, frames: 0, unknownId: 0, signed: 0, unsignedAllowed: 0, rejected }
}

/**
 * What a frame parser offers; a native parser implements the same shape.
 */
export interface FrameParser {
  /** Feeds bytes; calls `onFrame` synchronously for each accepted frame. */
  push(chunk: Uint8Array, onFrame: (frame: MavlinkFrame) => void): void
  /**
   * End of stream: a frame still incomplete is counted as truncated and
   * dropped, and the search goes on behind its start byte, so complete frames
   * it was hiding are still delivered to `onFrame`.
   */
  end(onFrame?: (frame: MavlinkFrame) => void): void
  /** Drops pending bytes (counted as discarded, not as a rejection) and keeps the counters. */
  reset(): void
  readonly stats: ParserStats
}

export interface MavlinkParserOptions {
  /** Messages to check and decode. Default: common. */
  dialect?: Dialect
  /** Verify signatures and enforce the link's signing policy. */
  signing?: MavlinkSigning
  /**
   * Each push is one whole datagram: a frame incomplete at its end is
   * truncated (counted, dropped), never continued by the next push.
   */
  datagram?: boolean
  /**
   * Unknown message ids. 'forward' (default, what a router needs): delivered
   * undecoded, after the checks an unverifiable frame can get. 'drop': only
   * frames whose CRC can be checked are accepted; an unknown-id candidate
   * counts in `unknownId` and its bytes are searched as garbage, which makes
   * resynchronisation after garbage exact up to the 16-bit CRC.
   */
  unknownIds?: 'forward' | 'drop'
  /** Called for each refused candidate with a view of its bytes (for diagnostics; valid during the call). */
  onReject?: (reason: RejectReason, bytes: Uint8Array) => void
}

/**
 * @example
 * const parser = new MavlinkParser({ dialect: ardupilotmega.DIALECT })
 * socket.on('message', (buf) => parser.push(buf, (frame) => {
 *   const att = frame.as(Attitude)
 *   if (att) console.log(att.roll)
 * }))
 */
export class MavlinkParser implements FrameParser {
  readonly stats: ParserStats = emptyStats()
  private readonly messages: ReadonlyMap<number, MessageDef>
  private readonly signing: MavlinkSigning | undefined
  private readonly datagram: boolean
  private readonly dropUnknown: boolean
  private readonly onReject: ((reason: RejectReason, bytes: Uint8Array) => void) | undefined
  private readonly frame = new MavlinkFrame()
  private carry = new Uint8Array(1024)
  private carryLen = 0
  /** Stream position (bytes) of carry[0] / of the data being scanned. */
  private base = 0
  /** End (stream position) of the last candidate refused for its CRC, for the truncation rule. */
  private badCrcEnd = -1
  private badCrcStart = -1
  /** End (stream position) of the span already counted as truncated. */
  private truncEnd = -1
  private busy = false
  /** Position in the data being scanned up to which it is consumed. */
  private cursor = 0

  constructor(options: MavlinkParserOptions = {}) {
    const dialect = options.dialect ?? defaultDialect()
    this.messages = dialect.messages
    this.signing = options.signing
    this.datagram = options.datagram ?? false
    this.dropUnknown = options.unknownIds === 'drop'
    this.onReject = options.onReject
  }

  push(chunk: Uint8Array, onFrame: (frame: MavlinkFrame) => void): void {
    if (this.busy) throw new Error('MavlinkParser.push called from inside its own callback')
    this.busy = true
    this.stats.bytesIn += chunk.length
    let data: Uint8Array
    let end: number
    if (this.carryLen === 0) {
      data = chunk
      end = chunk.length
    } else {
      const need = this.carryLen + chunk.length
      if (need > this.carry.length) {
        const bigger = new Uint8Array(Math.max(need, this.carry.length * 2))
        bigger.set(this.carry.subarray(0, this.carryLen))
        this.carry = bigger
      }
      this.carry.set(chunk, this.carryLen)
      data = this.carry
      end = need
    }
    this.cursor = 0
    try {
      this.cursor = this.scan(data, end, onFrame, this.datagram)
    } finally {
      // after a throwing callback, resume behind the frame it was given
      this.keep(data, this.cursor, end)
      this.busy = false
    }
  }

  end(onFrame: (frame: MavlinkFrame) => void = () => {}): void {
    if (this.carryLen === 0) return
    if (this.busy) throw new Error('MavlinkParser.end called from inside its own callback')
    this.busy = true
    const data = this.carry
    const end = this.carryLen
    this.cursor = 0
    try {
      this.cursor = this.scan(data, end, onFrame, true)
    } finally {
      this.keep(data, this.cursor, end)
      this.busy = false
    }
  }

  reset(): void {
    this.stats.bytesDiscarded += this.carryLen
    this.base += this.carryLen
    this.carryLen = 0
    this.badCrcEnd = -1
  }

  /** Keeps data[pos..end) for the next push (or drops it, for datagrams). */
  private keep(data: Uint8Array, pos: number, end: number): void {
    const rest = end - pos
    if (rest > 0) {
      if (data === this.carry) this.carry.copyWithin(0, pos, end)
      else {
        if (rest > this.carry.length) this.carry = new Uint8Array(Math.max(rest, this.carry.length * 2))
        this.carry.set(data.subarray(pos, end), 0)
      }
    }
    this.base += pos
    this.carryLen = rest
  }

  private reject(reason: RejectReason, data: Uint8Array, at: number, n: number): void {
    this.stats.rejected[reason]++
    this.stats.bytesDiscarded += n
    if (this.onReject) this.onReject(reason, data.subarray(at, at + n))
  }

  /** Refuses the candidate at `i` and drops just its first byte (the search resumes at i + 1). */
  private refuse(reason: RejectReason, data: Uint8Array, i: number, end: number, declared: number): void {
    this.stats.rejected[reason]++
    this.stats.bytesDiscarded += 1
    if (this.onReject) this.onReject(reason, data.subarray(i, Math.min(end, i + declared)))
  }

  /**
   * What follows an unverifiable (unknown id) frame: GOOD if the data ends
   * there or a frame that passes the checks starts there, MORE if that frame
   * is not complete yet, BAD otherwise. A genuine frame is followed by
   * another frame or by silence; random bytes almost never are.
   */
  private checkAt(data: Uint8Array, j: number, end: number): number {
    if (j >= end) return GOOD
    const stx = data[j]
    if (stx !== STX_V2 && stx !== STX_V1) return BAD
    const v2 = stx === STX_V2
    const hdr = v2 ? HEADER_V2 : HEADER_V1
    if (end - j < hdr) return MORE
    const len = data[j + 1]
    const incompat = v2 ? data[j + 2] : 0
    if ((incompat & ~IFLAG_SIGNED) !== 0) return BAD
    const msgid = v2 ? data[j + 7] | (data[j + 8] << 8) | (data[j + 9] << 16) : data[j + 5]
    const def = this.messages.get(msgid)
    if (def !== undefined && (len > def.maxLength || (!v2 && len < def.minLength))) return BAD
    const total = hdr + len + 2 + ((incompat & IFLAG_SIGNED) !== 0 ? SIGNATURE_LENGTH : 0)
    if (end - j < total) return MORE
    const crcAt = j + hdr + len
    const received = data[crcAt] | (data[crcAt + 1] << 8)
    const crc = crcCalculate(data, j + 1, crcAt)
    if (def !== undefined) return crcAccumulate(def.crcExtra, crc) === received ? GOOD : BAD
    return crcExtraConsistent(crc, received) ? GOOD : BAD
  }

  /**
   * A candidate that cannot complete (end of datagram or stream): counted
   * once as truncated; start bytes inside the span it declared that cannot
   * complete either are part of the same cut frame and only discarded.
   */
  private incomplete(data: Uint8Array, i: number, end: number): void {
    const at = this.base + i
    if (at >= this.truncEnd) {
      this.stats.rejected.truncated++
      this.truncEnd = this.base + end
      if (this.onReject) this.onReject('truncated', data.subarray(i, end))
    }
    this.stats.bytesDiscarded += 1
  }

  /**
   * Returns the position up to which `data` is consumed. `final`: no more
   * bytes will follow (datagram end, end()), so incomplete candidates are
   * refused rather than waited for.
   */
  private scan(data: Uint8Array, end: number, onFrame: (frame: MavlinkFrame) => void, final: boolean): number {
    const stats = this.stats
    const messages = this.messages
    let i = 0
    while (i < end) {
      const stx = data[i]
      if (stx !== STX_V2 && stx !== STX_V1) {
        let j = i + 1
        while (j < end && data[j] !== STX_V2 && data[j] !== STX_V1) j++
        stats.bytesDiscarded += j - i
        i = j
        continue
      }
      const v2 = stx === STX_V2
      const hdr = v2 ? HEADER_V2 : HEADER_V1
      if (end - i < hdr) {
        if (!final) break
        this.incomplete(data, i, end)
        i++
        continue
      }
      const len = data[i + 1]
      let incompat = 0
      let msgid: number
      if (v2) {
        incompat = data[i + 2]
        if ((incompat & ~IFLAG_SIGNED) !== 0) {
          this.refuse('incompat_flags', data, i, end, hdr)
          i++
          continue
        }
        msgid = data[i + 7] | (data[i + 8] << 8) | (data[i + 9] << 16)
      } else msgid = data[i + 5]
      const def = messages.get(msgid)
      if (def !== undefined && (len > def.maxLength || (!v2 && len < def.minLength))) {
        this.refuse('bad_length', data, i, end, hdr)
        i++
        continue
      }
      const signed = (incompat & IFLAG_SIGNED) !== 0
      const total = hdr + len + 2 + (signed ? SIGNATURE_LENGTH : 0)
      if (end - i < total) {
        if (!final) break
        this.incomplete(data, i, end)
        i++
        continue
      }
      const crcAt = i + hdr + len
      const received = data[crcAt] | (data[crcAt + 1] << 8)
      let crc = crcCalculate(data, i + 1, crcAt)
      if (def !== undefined) {
        crc = crcAccumulate(def.crcExtra, crc)
        if (crc !== received) {
          this.refuse('bad_crc', data, i, end, total)
          this.badCrcStart = this.base + i
          this.badCrcEnd = this.base + i + total
          i++
          continue
        }
      } else if (this.dropUnknown) {
        // strict mode: an unknown id is not trusted to delimit a frame either,
        // so its bytes are searched like garbage (no good frame can hide in them)
        stats.unknownId++
        stats.bytesDiscarded += 1
        i++
        continue
      } else {
        const next = crcExtraConsistent(crc, received) ? this.checkAt(data, i + total, end) : BAD
        if (next === MORE && !final) break
        if (next === BAD) {
          this.refuse('bad_crc', data, i, end, total)
          this.badCrcStart = this.base + i
          this.badCrcEnd = this.base + i + total
          i++
          continue
        }
      }
      // A good frame inside the span a refused candidate declared: that
      // candidate was a frame cut short, not a corrupted one.
      const at = this.base + i
      if (at < this.badCrcEnd && at > this.badCrcStart) {
        stats.rejected.bad_crc--
        stats.rejected.truncated++
        this.badCrcEnd = -1
      }
      const f = this.frame
      f.signed = signed
      f.verified = false
      if (v2) {
        f.seq = data[i + 4]
        f.sysid = data[i + 5]
        f.compid = data[i + 6]
      } else {
        f.seq = data[i + 2]
        f.sysid = data[i + 3]
        f.compid = data[i + 4]
      }
      if (signed) {
        const sigOff = crcAt + 2
        f.linkId = data[sigOff]
        f.timestamp = readTimestamp(data, sigOff + 1)
        const signing = this.signing
        if (signing !== undefined && signing.enabled) {
          const why = signing.verify(data, i, sigOff, f.sysid, f.compid)
          if (why !== null) {
            this.reject(why, data, i, total)
            i += total
            continue
          }
          f.verified = true
          stats.signed++
        }
      } else {
        f.linkId = 0
        f.timestamp = 0
        const signing = this.signing
        if (signing !== undefined && !signing.unsignedAllowed(msgid, f.sysid, f.compid)) {
          this.reject('unsigned', data, i, total)
          i += total
          continue
        }
        if (signing !== undefined && signing.enabled && signing.requireSigned) stats.unsignedAllowed++
      }
      if (def === undefined) stats.unknownId++
      f.version = v2 ? 2 : 1
      f.buffer = data
      f.offset = i
      f.length = total
      f.payloadLength = len
      f.incompatFlags = incompat
      f.compatFlags = v2 ? data[i + 3] : 0
      f.msgid = msgid
      f.def = def
      f.reset()
      stats.frames++
      stats.bytesAccepted += total
      i += total
      // consumed before the callback, so a throwing callback cannot replay it
      this.cursor = i
      onFrame(f)
    }
    return i
  }
}

const GOOD = 0
const MORE = 1
const BAD = 2

let fallback: Dialect | undefined

/** @internal Set by the package index to the common dialect (keeps this module free of the generated tables). */
export function setDefaultDialect(d: Dialect): void {
  fallback = d
}

function defaultDialect(): Dialect {
  if (fallback === undefined) throw new Error('MavlinkParser: no dialect given and no default registered')
  return fallback
}
