/**
 * A MAVLink link on an onbus transport, with native framing.
 *
 * `MavlinkLink` implements {@link MavlinkPort} over a UDP link, a stream link
 * (TCP, Unix) or a serial link. Frames are found and CRC-checked natively
 * (native/mavlink/parse.h): on stream and serial links by a framer on the
 * I/O thread, so JavaScript gets one record per valid frame; on UDP by one
 * native call per received batch. When the link has a {@link MavlinkSigning},
 * the native side also checks each signed frame's SHA-256 signature with a
 * copy of the key; JavaScript applies the timestamp and replay rules (and
 * checks the signature itself when the key changed after the native check),
 * then hands each frame to the listeners as
 * one reused {@link MavlinkFrame} (decoded only when `frame.message` /
 * `frame.as()` is read) with its receive time: the kernel's stamp on UDP and
 * TCP, the I/O thread's wake-up time on a tty.
 *
 * @example
 * // serial: the link must be created with the MAVLink framing
 * const framing = mavlinkFraming()
 * const fc = new MavlinkLink(createSerialLink({ path: '/dev/ttyACM0', baudRate: 921600, framing }))
 * fc.onFrame((frame, rxTimeNs) => {
 *   const att = frame.as(Attitude)
 *   if (att) console.log(rxTimeNs, att.roll)
 * })
 * // UDP: any UDP link
 * const gcs = new MavlinkLink(createUdpLink({ bindPort: 14550 }), { signing })
 */
import { EventEmitter } from 'node:events'
import { native } from '../../bindings/index.js'
import { invalidArgType, invalidArgValue } from '../errors.js'
import { UdpLink } from '../links/udp/link.js'
import type { UdpBatch } from '../links/udp/batch.js'
import { StreamLink } from '../links/stream/link.js'
import type { StreamBatch } from '../links/stream/batch.js'
import { MavlinkMessage, type Dialect } from './codec.js'
import type { MavlinkEncoder } from './encoder.js'
import { HEADER_V1, HEADER_V2, IFLAG_SIGNED, MavlinkFrame, STX_V2 } from './frame.js'
import { REJECT_REASONS, type RejectReason } from './parser.js'
import type { MavlinkFrameListener, MavlinkPort } from './port.js'
import { readTimestamp, type MavlinkSigning } from './signing.js'
import {
  NATIVE_COUNTERS,
  PARSE_DONE_SHIFT,
  PARSE_OUT_WORDS,
  REC_SIG_CHECKED,
  REC_SIG_GOOD,
  TAG_SIG_GOOD,
  nativeParser,
  tagSigGeneration,
  type NativeMavlinkParser,
} from './native.js'

/** Signature status of a frame record: not checked natively, checked and good, checked and bad. */
const SIG_UNCHECKED = 0
const SIG_GOOD = 1
const SIG_BAD = 2

const NATIVE = Symbol('onbus.mavlink.native')

/**
 * The signing key a native parser handle holds: `keyGen` the
 * `MavlinkSigning.keyGeneration` it came from (0: none handed over), and
 * `nativeGen` the generation the handle gave it (framer tags carry it, mod
 * 127). One per handle, shared by the links on it (the connections of a
 * server made with one `mavlinkFraming()`), so that links with one signing
 * hand the key over once instead of in turn.
 */
interface NativeKeyState {
  keyGen: number
  nativeGen: number
}
const nativeKeys = new WeakMap<NativeMavlinkParser, NativeKeyState>()

/** Options of the native MAVLink parsing, shared by {@link mavlinkFraming} and {@link MavlinkLink}. */
export interface MavlinkParseOptions {
  /** Messages to check (CRC_EXTRA, lengths) and decode. Default: common. */
  dialect?: Dialect
  /**
   * Unknown message ids: 'forward' (default) delivers them undecoded after the
   * checks an unverifiable frame can get; 'drop' counts and drops them (see
   * {@link MavlinkParserOptions.unknownIds}).
   */
  unknownIds?: 'forward' | 'drop'
  /** Accept MAVLink 1 frames (0xFE). Default true. */
  acceptV1?: boolean
}

/** The `framing` option that gives a stream or serial link native MAVLink framing. */
export interface MavlinkFraming {
  readonly type: 'custom'
  readonly create: () => object
  /** @internal */
  readonly [NATIVE]: { parser: NativeMavlinkParser; dialect: Dialect; options: MavlinkParseOptions }
}

let defaultDialect: Dialect | undefined

/** @internal Set by the package index (keeps this module free of the generated tables). */
export function setLinkDefaultDialect(d: Dialect): void {
  defaultDialect = d
}

function resolveDialect(d: Dialect | undefined): Dialect {
  const r = d ?? defaultDialect
  if (r === undefined) throw new Error('MavlinkLink: no dialect given and no default registered')
  if (!(r.messages instanceof Map)) throw invalidArgType('options.dialect', 'a MAVLink Dialect', r)
  return r
}

/**
 * Native MAVLink framing for a stream or serial link: pass it as the link's
 * `framing` option, then wrap the link in a {@link MavlinkLink}. Each
 * connection (and reconnection) gets its own framer; the counters of all of
 * them add up in the MavlinkLink's `stats`.
 * @example
 * const tcp = createTcpLink({ host: '127.0.0.1', port: 5760, framing: mavlinkFraming() })
 * const link = new MavlinkLink(tcp)
 */
export function mavlinkFraming(options: MavlinkParseOptions = {}): MavlinkFraming {
  const dialect = resolveDialect(options.dialect)
  const parser = nativeParser(dialect, options.unknownIds !== 'drop', options.acceptV1 !== false)
  return { type: 'custom', create: () => parser.createFramer(), [NATIVE]: { parser, dialect, options } }
}

export interface MavlinkLinkOptions extends MavlinkParseOptions {
  /**
   * Verify incoming signed frames and refuse unsigned ones when it requires
   * signing (with its exceptions). Give the same object to the encoder that
   * signs what this link sends.
   */
  signing?: MavlinkSigning
  /** Encoder used by `send(message)`. */
  encoder?: MavlinkEncoder
  /**
   * UDP only: where `send()` goes when the UDP link is not connected. Default:
   * the source of the last valid frame received (as a ground station answers
   * its vehicle).
   */
  remote?: { address: string; port: number }
}

/** Counters of a MAVLink link. Every byte received ends up accepted, discarded or pending. */
export interface MavlinkLinkStats {
  bytesIn: number
  /** Bytes of frames delivered to the listeners. */
  bytesAccepted: number
  /** Garbage, refused candidates and frames refused by the signing checks. */
  bytesDiscarded: number
  /** Frames delivered. */
  frames: number
  /** Frames of ids the dialect lacks: forwarded, or dropped with unknownIds 'drop'. */
  unknownId: number
  /** Delivered frames whose signature was verified. */
  signed: number
  /** Unsigned frames let through on a signing link by its exceptions. */
  unsignedAllowed: number
  /** Refused candidates and frames, by reason. */
  rejected: Record<RejectReason | 'unknown_dropped', number>
  /** Frames sent. */
  txFrames: number
  txBytes: number
  /** Frames that could not be sent (no peer known yet, link closed, send error). */
  txErrors: number
}

type Transport = UdpLink | StreamLink

/**
 * A MAVLink endpoint on an onbus link. Events: `'frame'` (frame, rxTimeNs),
 * `'error'` (send errors when someone listens), `'close'`.
 */
export class MavlinkLink extends EventEmitter implements MavlinkPort {
  readonly transport: Transport
  readonly dialect: Dialect
  readonly signing: MavlinkSigning | undefined
  readonly encoder: MavlinkEncoder | undefined
  private readonly parser: NativeMavlinkParser
  private readonly frame = new MavlinkFrame()
  private frameListeners: MavlinkFrameListener[] = []
  private readonly counters = new Float64Array(NATIVE_COUNTERS.length)
  private readonly jsRejected: Record<string, number> = {}
  private jsRejectedBytes = 0
  private signedCount = 0
  private unsignedAllowedCount = 0
  private delivered = 0
  private deliveredBytes = 0
  private txFrames = 0
  private txBytes = 0
  private txErrors = 0
  private closed = false
  private unsubscribe: () => void
  /** The key the native parser holds (shared by the links on one parser handle). */
  private readonly key: NativeKeyState
  // UDP
  private spans = new Uint32Array(64)
  /** Frame records of one parseBatch call: room for a 64 KiB datagram of minimal (12-byte) frames. */
  private readonly out = new Uint32Array(PARSE_OUT_WORDS * 8192)
  private readonly remote: { address: string; port: number } | undefined
  private peerAddress = ''
  private peerPort = 0

  constructor(transport: Transport, options: MavlinkLinkOptions = {}) {
    super()
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'an object', options)
    this.transport = transport
    this.signing = options.signing
    this.encoder = options.encoder
    this.remote = options.remote
    if (transport instanceof UdpLink) {
      this.dialect = resolveDialect(options.dialect)
      this.parser = nativeParser(this.dialect, options.unknownIds !== 'drop', options.acceptV1 !== false)
      this.unsubscribe = transport.onBatch((b) => this.onUdpBatch(b))
    } else if (transport instanceof StreamLink) {
      const framing = transport.framing as Partial<MavlinkFraming>
      const n = typeof framing === 'object' ? framing[NATIVE] : undefined
      if (n === undefined) throw invalidArgValue('transport', 'a stream link', "needs native MAVLink framing: create it with `framing: mavlinkFraming()`")
      if (options.dialect !== undefined && options.dialect !== n.dialect) throw invalidArgValue('options.dialect', options.dialect.name, 'differs from the dialect of the link’s mavlinkFraming()')
      this.dialect = n.dialect
      this.parser = n.parser
      this.unsubscribe = transport.onBatch((b) => this.onStreamBatch(b))
    } else throw invalidArgType('transport', 'a UdpLink, StreamLink or SerialLink', transport)
    let key = nativeKeys.get(this.parser)
    if (key === undefined) nativeKeys.set(this.parser, (key = { keyGen: 0, nativeGen: 0 }))
    this.key = key
    this.syncKey()
    // a key change (setKey, applySetup) reaches the native side at once, so
    // that the frames framed from then on are checked with the new key
    const offKey = this.signing?.onKeyChange(() => this.syncKey())
    if (offKey !== undefined) {
      const off = this.unsubscribe
      this.unsubscribe = () => {
        off()
        offKey()
      }
    }
    transport.once('close', () => this.markClosed())
  }

  /**
   * Sends an encoded frame (bytes, e.g. from {@link MavlinkEncoder} or a frame
   * being relayed), or a message, encoded (and signed) by the link's encoder.
   * Returns false when the frame was queued behind back-pressure (streams) or
   * could not be sent (counted in `stats.txErrors`; an `'error'` event when
   * someone listens).
   */
  send(frame: Uint8Array | MavlinkMessage): boolean {
    let bytes: Uint8Array
    if (frame instanceof Uint8Array) bytes = frame
    else if (frame instanceof MavlinkMessage) {
      if (this.encoder === undefined) throw invalidArgValue('frame', frame._def.name, 'is a message, and this link has no encoder (options.encoder)')
      bytes = this.encoder.encode(frame._def, frame)
    } else throw invalidArgType('frame', 'a Uint8Array or a MavlinkMessage', frame)
    if (this.closed) return this.txFailed(new Error('MavlinkLink is closed'))
    const t = this.transport
    try {
      let ok: boolean
      if (t instanceof UdpLink) {
        if (this.remote !== undefined) ok = t.send(bytes, this.remote.port, this.remote.address)
        else if (this.peerPort !== 0) ok = t.send(bytes, this.peerPort, this.peerAddress)
        else if (this.udpConnected()) ok = t.send(bytes)
        else return this.txFailed(new Error('MavlinkLink: no UDP peer known yet (no frame received, no options.remote, link not connected)'))
      } else ok = t.write(bytes)
      this.txFrames++
      this.txBytes += bytes.length
      return ok
    } catch (err) {
      return this.txFailed(err as Error)
    }
  }

  /** Calls `listener` for every accepted frame (see {@link MavlinkPort.onFrame}). */
  onFrame(listener: MavlinkFrameListener): () => void {
    if (typeof listener !== 'function') throw invalidArgType('listener', 'a function', listener)
    this.frameListeners = [...this.frameListeners, listener]
    return () => {
      this.frameListeners = this.frameListeners.filter((l) => l !== listener)
    }
  }

  /** Counters: native parsing plus the signing checks and sends done here. */
  get stats(): MavlinkLinkStats {
    const c = this.counters
    this.parser.stats(c)
    const rejected = {} as Record<RejectReason | 'unknown_dropped', number>
    for (const r of REJECT_REASONS) rejected[r] = this.jsRejected[r] ?? 0
    for (let k = 5; k < NATIVE_COUNTERS.length; k++) rejected[NATIVE_COUNTERS[k] as RejectReason | 'unknown_dropped'] = c[k]
    return {
      bytesIn: c[0],
      bytesAccepted: c[1] - this.jsRejectedBytes,
      bytesDiscarded: c[2] + this.jsRejectedBytes,
      frames: this.delivered,
      unknownId: c[4],
      signed: this.signedCount,
      unsignedAllowed: this.unsignedAllowedCount,
      rejected,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      txErrors: this.txErrors,
    }
  }

  /** Stops receiving; with `closeTransport` (default true) closes the underlying link too. */
  close(closeTransport = true): void {
    if (this.closed) return
    this.unsubscribe()
    if (closeTransport) this.transport.close()
    this.markClosed()
  }

  private markClosed(): void {
    if (this.closed) return
    this.closed = true
    this.unsubscribe()
    process.nextTick(() => this.emit('close'))
  }

  private txFailed(err: Error): boolean {
    this.txErrors++
    if (this.listenerCount('error') > 0) this.emit('error', err)
    return false
  }

  private udpConnected(): boolean {
    try {
      ;(this.transport as UdpLink).remoteAddress()
      return true
    } catch {
      return false
    }
  }

  /**
   * Hands the signing key to the native parser when it changed (setKey,
   * applySetup). Frames checked natively with an older key are checked again
   * in JavaScript (see deliver), so the key current at delivery counts.
   */
  private syncKey(): void {
    const s = this.signing
    const k = this.key
    if (s === undefined || s.keyGeneration === k.keyGen) return
    k.nativeGen = this.parser.setSigningKey(s.enabled ? s.keyBytes() : null)
    k.keyGen = s.keyGeneration
  }

  private onUdpBatch(b: UdpBatch): void {
    const n = b.length
    if (this.spans.length < n * 2) this.spans = new Uint32Array(Math.max(n * 2, this.spans.length * 2))
    const spans = this.spans
    for (let i = 0; i < n; i++) {
      spans[2 * i] = b.offset(i)
      spans[2 * i + 1] = b.len(i)
    }
    const out = this.out
    const data = b.data
    const trackPeer = this.remote === undefined
    let first = 0
    let lastDgram = -1
    let rx = 0n
    while (first < n && !this.closed) {
      this.syncKey()
      // the key the records' signature verdicts are for (a listener may change it)
      const gen = this.key.keyGen
      const r = this.parser.parseBatch(data, spans, first, n - first, out)
      const frames = r % PARSE_DONE_SHIFT
      const done = (r - frames) / PARSE_DONE_SHIFT
      for (let k = 0; k < frames && !this.closed; k++) {
        const w = k * PARSE_OUT_WORDS
        const d = out[w]
        if (d !== lastDgram) {
          lastDgram = d
          rx = b.hasRxTime(d) ? (b.rxTime(d) as bigint) : native.clockNs(0)
        }
        const flags = out[w + 5] >>> 24
        const sig = (flags & REC_SIG_CHECKED) === 0 || gen !== this.key.keyGen ? SIG_UNCHECKED : (flags & REC_SIG_GOOD) !== 0 ? SIG_GOOD : SIG_BAD
        if (this.deliver(data, out[w + 1], out[w + 2], out[w + 3], rx, sig) && trackPeer) {
          this.peerPort = b.port(d)
          this.peerAddress = b.address(d)
        }
      }
      first += done
    }
  }

  private onStreamBatch(b: StreamBatch): void {
    this.syncKey()
    const data = b.data
    let sec = -1
    let nsec = -1
    let rx = 0n
    for (let i = 0; i < b.length && !this.closed; i++) {
      const s = b.rxTimeSec(i)
      const ns = b.rxTimeNsec(i)
      if (s !== sec || ns !== nsec) {
        sec = s
        nsec = ns
        rx = b.rxTime(i)
      }
      const tag = b.tag(i)
      const st = tag >>> 24
      // framer tags: msgid | signature status << 24, the status naming the
      // native key generation that checked it (mod 127): used only when that
      // is the key handed over last (a listener may have changed it since)
      const sig = st === 0 || (st & 0x7f) !== tagSigGeneration(this.key.nativeGen) ? SIG_UNCHECKED : (st & TAG_SIG_GOOD) !== 0 ? SIG_GOOD : SIG_BAD
      this.deliver(data, b.offset(i), b.len(i), tag & 0xffffff, rx, sig)
    }
  }

  /**
   * Signing checks, then the listeners. Returns whether the frame was
   * delivered. `sig`: the native signature check's result for a signed frame,
   * trusted only while the key it used is still the signing's current one.
   */
  private deliver(data: Uint8Array, off: number, len: number, msgid: number, rx: bigint, sig: number): boolean {
    const v2 = data[off] === STX_V2
    const f = this.frame
    const hdr = v2 ? HEADER_V2 : HEADER_V1
    const incompat = v2 ? data[off + 2] : 0
    const signed = (incompat & IFLAG_SIGNED) !== 0
    const sysid = data[off + (v2 ? 5 : 3)]
    const compid = data[off + (v2 ? 6 : 4)]
    f.verified = false
    const signing = this.signing
    if (signed) {
      const sigOff = off + hdr + data[off + 1] + 2
      f.linkId = data[sigOff]
      f.timestamp = readTimestamp(data, sigOff + 1)
      if (signing !== undefined && signing.enabled) {
        const why =
          sig !== SIG_UNCHECKED && signing.keyGeneration === this.key.keyGen
            ? sig === SIG_GOOD
              ? signing.acceptTimestamp(data, sigOff, sysid, compid)
              : 'bad_signature'
            : signing.verify(data, off, sigOff, sysid, compid)
        if (why !== null) return this.refuse(why, len)
        f.verified = true
        this.signedCount++
      }
    } else {
      f.linkId = 0
      f.timestamp = 0
      if (signing !== undefined) {
        if (!signing.unsignedAllowed(msgid, sysid, compid)) return this.refuse('unsigned', len)
        if (signing.enabled && signing.requireSigned) this.unsignedAllowedCount++
      }
    }
    f.version = v2 ? 2 : 1
    f.buffer = data
    f.offset = off
    f.length = len
    f.payloadLength = data[off + 1]
    f.incompatFlags = incompat
    f.compatFlags = v2 ? data[off + 3] : 0
    f.seq = data[off + (v2 ? 4 : 2)]
    f.sysid = sysid
    f.compid = compid
    f.msgid = msgid
    f.signed = signed
    f.def = this.dialect.messages.get(msgid)
    f.reset()
    this.delivered++
    this.deliveredBytes += len
    const ls = this.frameListeners
    for (let k = 0; k < ls.length; k++) ls[k](f, rx)
    if (this.listenerCount('frame') > 0) this.emit('frame', f, rx)
    return true
  }

  private refuse(why: RejectReason, len: number): false {
    this.jsRejected[why] = (this.jsRejected[why] ?? 0) + 1
    this.jsRejectedBytes += len
    return false
  }
}
