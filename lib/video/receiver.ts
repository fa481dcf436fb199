/**
 * The RTP video receiver: H.264 (RFC 6184) and H.265 (RFC 7798) over RTP/UDP,
 * depacketised natively on the reactor thread into access units (frames).
 *
 * Packets never reach JavaScript: the reactor thread reads them (recvmmsg,
 * kernel receive stamps), puts them in sequence order (a reorder buffer with a
 * latency bound), reassembles NAL units and writes each finished access unit
 * into a ring this object allocated; one wake-up per frame hands JavaScript a
 * view of it. With `thread: 'js'` the same work runs in a libuv poll callback
 * on the JavaScript thread and frames are handed over synchronously. See
 * docs/VIDEO.md.
 */
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { native, type NativeRtpReceiver } from '../../bindings/index.js'
import { errnoException, invalidArgType, invalidArgValue, type OnbusSystemError } from '../errors.js'
import { nextPow2, validateBool, validateFunction, validateInt, validatePort, validateString } from '../util/validate.js'
import { AsyncQueue } from '../util/async-queue.js'
import { whenAborted } from '../util/abort.js'
import { attachLink, type Attachment, type AttachOptions, type BatchLike } from '../bus/link.js'
import type { Topic } from '../bus/topic.js'
import type { Codec } from '../codecs/codec.js'
import type { FrameMeta, NalFormat, SeqRange, VideoCodec, WallTime } from './types.js'

// Record layout: native/rtp/rtp_receiver.h (RtpRecWord).
const R = {
  offset: 0,
  length: 1,
  rtpTs: 2,
  flags: 3,
  ssrc: 4,
  firstSeq: 5,
  lastSeq: 6,
  packets: 7,
  rxFirstSec: 8,
  rxFirstNsec: 9,
  rxLastSec: 10,
  rxLastNsec: 11,
  capSec: 12,
  capNsec: 13,
  spsOff: 14,
  spsLen: 15,
  ppsOff: 16,
  ppsLen: 17,
  vpsOff: 18,
  vpsLen: 19,
  nRanges: 21,
  ranges: 22,
  words: 40,
} as const

// Shared by every frame without losses / parameter sets (most frames): no
// per-frame allocation for them.
const NO_MISSING: SeqRange[] = Object.freeze([]) as unknown as SeqRange[]
const NO_PS: ParameterSets = Object.freeze({})

// Frame flags: native/rtp/rtp_session.h (FrameFlag).
const F = { complete: 1, keyframe: 2, capture: 4, rxStamp: 8, corrupt: 32, noMarker: 64, truncated: 128 } as const

/** Options of {@link createRtpReceiver}. */
export interface RtpReceiverOptions {
  /** UDP port RTP arrives on; 0 picks an ephemeral one (see `ports()`). */
  port: number
  /** Address to bind. Default `'127.0.0.1'`, or the multicast group when `multicast` is set. */
  address?: string
  codec: VideoCodec
  /** Accept only this payload type (others are counted in `stats().wrongPayloadType`). Default: any. */
  payloadType?: number
  /** How long a packet waits for a missing earlier one before the gap is declared lost. Default 50 ms; 0 = no reordering. */
  latencyMs?: number
  /** Join this group (any-source, or source-specific with `source`). */
  multicast?: { group: string; interface?: string; source?: string }
  /**
   * RTCP: `true` (default) opens a second socket on port + 1 (an ephemeral one when `port` is 0), `'mux'`
   * uses the RTP port only (RFC 5761), `false` sends nothing. RTCP arriving muxed on the RTP port is always
   * understood. `intervalMs`: receiver report period (default 1000).
   */
  rtcp?: boolean | 'mux' | { port?: number; mux?: boolean; intervalMs?: number }
  /** Ask the sender for a keyframe after a loss: PLI (RFC 4585, default) or FIR (RFC 5104); false = never. */
  keyframeRequest?: 'pli' | 'fir' | false
  /** Minimum time between two keyframe requests. Default 500 ms. */
  keyframeIntervalMs?: number
  /** NAL units in frames: `'annexb'` start codes (default) or `'length-prefixed'` (4-byte big-endian sizes). */
  format?: NalFormat
  /** Bytes of the frame ring (rounded up to a power of two). Default 32 MiB. */
  bufferBytes?: number
  /** Largest access unit kept whole; a larger one is truncated and flagged incomplete. Default 8 MiB. */
  maxFrameBytes?: number
  /** Reorder buffer slots (packets). Default 2048. */
  reorderPackets?: number
  /** Kernel receive buffer of the RTP socket. Default 4 MiB. */
  rcvBuf?: number
  reuseAddr?: boolean
  /** Bound of the async iterator's queue (frames); beyond it the oldest is dropped and counted. Default 64. */
  iteratorHighWaterMark?: number
  /**
   * Where the sockets are read and depacketised. `'io'` (default): onbus's I/O thread, which wakes the
   * JavaScript thread once per batch of finished frames (a busy JavaScript thread never delays reading).
   * `'js'`: polled by libuv on the JavaScript thread itself, frames handed to listeners synchronously from
   * the poll callback -- no thread hop, less CPU and tail latency, but reading waits while JavaScript is busy
   * (the kernel buffer, `rcvBuf`, absorbs it). See docs/VIDEO.md.
   */
  thread?: 'io' | 'js'
  /** Spin this many microseconds on the I/O thread before sleeping: less wake-up latency, a core's worth of CPU while spinning (as the UDP link's option). Ignored with `thread: 'js'`. */
  busyPollUs?: number
  /** Closes the receiver when aborted. */
  signal?: AbortSignal
}

/** Counters of a receiver. */
export interface RtpReceiverStats {
  packets: number
  bytes: number
  /** Sequence numbers declared lost (never arrived within `latencyMs`). */
  lost: number
  /** Packets that arrived after their place had been given up (dropped). */
  late: number
  duplicates: number
  framesComplete: number
  framesIncomplete: number
  /** Frames the ring had no room for (JavaScript was behind). */
  framesDropped: number
  /** Frames dropped from a full async-iterator queue. */
  iteratorDrops: number
  keyframes: number
  malformed: number
  wrongPayloadType: number
  foreignSsrc: number
  ssrcChanges: number
  depayErrors: number
  unsupportedNal: number
  oversizeFrames: number
  tooLargePackets: number
  truncatedDatagrams: number
  /** Receive errors other than EAGAIN (each also emitted as `'error'`). */
  rxErrors: number
  sequenceResets: number
  rtcpPackets: number
  senderReports: number
  rtcpMalformed: number
  receiverReportsSent: number
  pliSent: number
  firSent: number
  rtcpSendErrors: number
  /** Datagrams the kernel dropped (socket buffer full). */
  kernelDrops: number
  datagrams: number
  /** Interarrival jitter (RFC 3550), RTP clock units (1/90000 s). */
  jitter: number
  /** Packets waiting in the reorder buffer now. */
  buffered: number
  ssrc: number
}

/** SPS / PPS / VPS NAL units (header included, no prefix). */
export interface ParameterSets {
  sps?: Uint8Array
  pps?: Uint8Array
  vps?: Uint8Array
}

/** A frame whose bytes are owned (from `copy()`, the async iterator, or a bus topic). */
export interface VideoFrameData extends FrameMeta {
  format: NalFormat
  data: Uint8Array
  /** Parameter sets carried in this access unit (views of `data`). */
  parameterSets: ParameterSets
}

/**
 * One access unit, as delivered to `'frame'` listeners. `data` and the
 * parameter-set views point into the receiver's ring: valid only during the
 * listener call. Use `copy()` to keep it.
 */
export class VideoFrame implements VideoFrameData {
  readonly codec: VideoCodec
  readonly format: NalFormat
  readonly data: Uint8Array
  readonly rtpTimestamp: number
  readonly ssrc: number
  readonly keyframe: boolean
  readonly complete: boolean
  readonly missing: SeqRange[]
  readonly rxFirst: WallTime | null
  readonly rxLast: WallTime | null
  readonly captureTime: WallTime | null
  readonly firstSeq: number
  readonly lastSeq: number
  readonly packets: number
  /** Ended by a timestamp change rather than the marker bit. */
  readonly noMarker: boolean
  readonly parameterSets: ParameterSets

  /** @internal */
  constructor(codec: VideoCodec, format: NalFormat, ring: Uint8Array, rec: Float64Array, base: number) {
    const flags = rec[base + R.flags]
    const off = rec[base + R.offset]
    this.codec = codec
    this.format = format
    this.data = ring.subarray(off, off + rec[base + R.length])
    this.rtpTimestamp = rec[base + R.rtpTs]
    this.ssrc = rec[base + R.ssrc]
    this.keyframe = (flags & F.keyframe) !== 0
    this.complete = (flags & F.complete) !== 0
    this.noMarker = (flags & F.noMarker) !== 0
    const n = rec[base + R.nRanges]
    let missing = NO_MISSING
    if (n > 0) {
      missing = []
      for (let k = 0; k < n; k++) missing.push({ first: rec[base + R.ranges + 2 * k], last: rec[base + R.ranges + 2 * k + 1] })
    }
    this.missing = missing
    const stamped = (flags & F.rxStamp) !== 0
    this.rxFirst = stamped ? { sec: rec[base + R.rxFirstSec], nsec: rec[base + R.rxFirstNsec] } : null
    this.rxLast = stamped ? { sec: rec[base + R.rxLastSec], nsec: rec[base + R.rxLastNsec] } : null
    this.captureTime = (flags & F.capture) !== 0 ? { sec: rec[base + R.capSec], nsec: rec[base + R.capNsec] } : null
    this.firstSeq = rec[base + R.firstSeq]
    this.lastSeq = rec[base + R.lastSeq]
    this.packets = rec[base + R.packets]
    const spsLen = rec[base + R.spsLen]
    const ppsLen = rec[base + R.ppsLen]
    const vpsLen = rec[base + R.vpsLen]
    let ps = NO_PS
    if (spsLen > 0 || ppsLen > 0 || vpsLen > 0) {
      ps = {}
      const d = this.data
      if (spsLen > 0) ps.sps = d.subarray(rec[base + R.spsOff], rec[base + R.spsOff] + spsLen)
      if (ppsLen > 0) ps.pps = d.subarray(rec[base + R.ppsOff], rec[base + R.ppsOff] + ppsLen)
      if (vpsLen > 0) ps.vps = d.subarray(rec[base + R.vpsOff], rec[base + R.vpsOff] + vpsLen)
    }
    this.parameterSets = ps
  }

  /** The frame with its bytes copied out of the ring (keep it as long as you like). */
  copy(): VideoFrameData {
    const data = new Uint8Array(this.data)
    const ps: ParameterSets = {}
    for (const k of ['sps', 'pps', 'vps'] as const) {
      const v = this.parameterSets[k]
      if (v) ps[k] = data.subarray(v.byteOffset - this.data.byteOffset, v.byteOffset - this.data.byteOffset + v.length)
    }
    return {
      codec: this.codec,
      format: this.format,
      data,
      rtpTimestamp: this.rtpTimestamp,
      ssrc: this.ssrc,
      keyframe: this.keyframe,
      complete: this.complete,
      missing: this.missing,
      rxFirst: this.rxFirst,
      rxLast: this.rxLast,
      captureTime: this.captureTime,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      packets: this.packets,
      parameterSets: ps,
    }
  }
}

/**
 * The bus codec of video frames (`receiver.publishTo(topic)` needs a topic
 * with this codec): a JSON header with the metadata, then the frame bytes.
 * @example
 * const topic = bus.topic('camera/front', { codec: videoFrameCodec, qos: qosProfiles.sensorData })
 */
export const videoFrameCodec: Codec<VideoFrameData> = Object.freeze({
  name: 'onbus.video-frame/1',
  encode(f: VideoFrameData): Uint8Array {
    const ps: Record<string, [number, number]> = {}
    for (const k of ['sps', 'pps', 'vps'] as const) {
      const v = f.parameterSets[k]
      if (v) ps[k] = [v.byteOffset - f.data.byteOffset, v.length]
    }
    const { data: _d, parameterSets: _p, ...meta } = f
    const head = Buffer.from(JSON.stringify({ ...meta, ps }))
    const out = new Uint8Array(4 + head.length + f.data.length)
    new DataView(out.buffer).setUint32(0, head.length)
    out.set(head, 4)
    out.set(f.data, 4 + head.length)
    return out
  },
  decode(bytes: Uint8Array): VideoFrameData {
    if (bytes.length < 4) throw new RangeError('video frame: too short')
    const hl = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
    if (4 + hl > bytes.length) throw new RangeError('video frame: header overruns')
    const meta = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 4, hl).toString('utf8'))
    const data = bytes.subarray(4 + hl)
    const parameterSets: ParameterSets = {}
    for (const k of ['sps', 'pps', 'vps'] as const) {
      const v = meta.ps?.[k]
      if (Array.isArray(v)) parameterSets[k] = data.subarray(v[0], v[0] + v[1])
    }
    delete meta.ps
    return { ...meta, data, parameterSets }
  },
  byteLength(f: VideoFrameData): number {
    return f.data.length + 512
  },
})

type FrameHandler = (frame: VideoFrame) => void

/**
 * An RTP video receiver. Create with {@link createRtpReceiver}.
 *
 * Events: `'frame'` (frame: VideoFrame -- a view valid during the call),
 * `'error'`, `'close'`.
 */
export class RtpReceiver extends EventEmitter {
  readonly codec: VideoCodec
  readonly format: NalFormat
  private sock: NativeRtpReceiver | null
  private closing = false
  private refed = true
  private readonly ring: Uint8Array
  private readonly rec: Float64Array
  private readonly recCap: number
  private readonly statsBuf = new Float64Array(32)
  private readonly iterators = new Set<AsyncQueue<VideoFrameData>>()
  private readonly iterHwm: number
  private iteratorDrops = 0
  private batchHandlers: ((b: BatchLike) => void)[] = []
  private frameHandlers: FrameHandler[] = []
  private abortCleanup: (() => void) | undefined
  private readonly bindAddress: string
  private lastPs: ParameterSets = {}

  /** @internal use {@link createRtpReceiver} */
  constructor(opts: RtpReceiverOptions) {
    super()
    validateRtpReceiverOptions(opts)
    this.codec = opts.codec
    this.format = opts.format ?? 'annexb'
    this.iterHwm = opts.iteratorHighWaterMark ?? 64
    const family: 4 | 6 = (opts.address ?? opts.multicast?.group ?? '').includes(':') ? 6 : 4
    const address = opts.address ?? opts.multicast?.group ?? (family === 6 ? '::1' : '127.0.0.1')
    this.bindAddress = address
    const bufferBytes = nextPow2(Math.max(1 << 16, opts.bufferBytes ?? 32 << 20))
    this.recCap = 256
    const dataAb = new ArrayBuffer(bufferBytes)
    const recAb = new ArrayBuffer(this.recCap * R.words * 8)
    this.ring = new Uint8Array(dataAb)
    this.rec = new Float64Array(recAb)
    const sock = new native.RtpReceiver(
      family,
      (start, count) => this.deliver(start, count),
      (errno) => this.emit('error', errnoException(errno, 'recvmmsg', address, opts.port)),
    )
    this.sock = sock
    const fail = (r: number, syscall: string, a?: string, p?: number): never => {
      sock.close()
      this.sock = null
      throw errnoException(r, syscall, a, p)
    }
    const reuse = opts.reuseAddr ?? opts.multicast !== undefined
    let r = sock.bind(address, opts.port, reuse)
    if (r < 0) fail(r, 'bind', address, opts.port)
    const rtcp = opts.rtcp ?? true
    const mux = rtcp === 'mux' || (typeof rtcp === 'object' && rtcp.mux === true)
    let rtcpMode = 0
    if (rtcp !== false) rtcpMode = mux ? 2 : 1
    if (rtcpMode === 1) {
      const boundPort = sock.localPorts()[0]
      const rtcpPort = typeof rtcp === 'object' && rtcp.port !== undefined ? rtcp.port : opts.port === 0 ? 0 : boundPort + 1
      r = sock.bindRtcp(address, rtcpPort, reuse)
      if (r < 0) fail(r, 'bind', address, rtcpPort)
    }
    if (opts.multicast) {
      r = sock.join(opts.multicast.group, opts.multicast.interface ?? '', opts.multicast.source)
      if (r < 0) fail(r, 'setsockopt', opts.multicast.group)
    }
    r = sock.setRcvBuf(opts.rcvBuf ?? 4 << 20)
    if (r < 0) fail(r, 'setsockopt')
    r = sock.start(dataAb, recAb, this.recCap, {
      codec: opts.codec === 'h265' ? 1 : 0,
      payloadType: opts.payloadType ?? -1,
      latencyMs: opts.latencyMs ?? 50,
      lengthPrefixed: this.format === 'length-prefixed' ? 1 : 0,
      bufferPackets: opts.reorderPackets ?? 2048,
      maxFrameBytes: Math.min(opts.maxFrameBytes ?? 8 << 20, bufferBytes / 2),
      rtcp: rtcpMode,
      rrIntervalMs: typeof rtcp === 'object' && rtcp.intervalMs !== undefined ? rtcp.intervalMs : 1000,
      keyframe: opts.keyframeRequest === false ? 0 : opts.keyframeRequest === 'fir' ? 2 : 1,
      keyframeIntervalMs: opts.keyframeIntervalMs ?? 500,
      jsThread: opts.thread === 'js' ? 1 : 0,
    })
    if (r < 0) fail(r, 'start')
    if (opts.busyPollUs) sock.setBusyPoll(opts.busyPollUs)
    if (opts.signal) this.abortCleanup = whenAborted(opts.signal, () => this.close(), process.nextTick)
  }

  /** The bound RTP and RTCP ports (`rtcp` is undefined without a separate RTCP socket). */
  ports(): { rtp: number; rtcp: number | undefined } {
    const [rtp, rtcp] = this.sock ? this.sock.localPorts() : [-1, -1]
    return { rtp, rtcp: rtcp > 0 ? rtcp : undefined }
  }

  /** The bound address and RTP port (the shape links report). */
  address(): { address: string; port: number } {
    return { address: this.bindAddress, port: this.ports().rtp }
  }

  /** The last SPS/PPS/VPS seen in any frame (copies). */
  parameterSets(): ParameterSets {
    return { ...this.lastPs }
  }

  /**
   * Calls `handler` for every frame (the same view `'frame'` listeners get,
   * without the EventEmitter). Returns a function that removes it.
   */
  onFrame(handler: FrameHandler): () => void {
    validateFunction(handler, 'handler')
    this.frameHandlers = [...this.frameHandlers, handler]
    return () => {
      this.frameHandlers = this.frameHandlers.filter((h) => h !== handler)
    }
  }

  /** @internal The bus's link interface: each frame as one entry, encoded with {@link videoFrameCodec}. */
  onBatch(handler: (b: BatchLike) => void): () => void {
    validateFunction(handler, 'handler')
    this.batchHandlers = [...this.batchHandlers, handler]
    return () => {
      this.batchHandlers = this.batchHandlers.filter((h) => h !== handler)
    }
  }

  /**
   * Publishes every frame on a bus topic (codec {@link videoFrameCodec}), so
   * other processes get frames through the shared-memory transport. The
   * message's receive time is the kernel stamp of the frame's last packet.
   * @example
   * rx.publishTo(bus.topic('camera/front', { codec: videoFrameCodec, qos: qosProfiles.sensorData }))
   */
  publishTo(topic: Topic<VideoFrameData>, opts?: AttachOptions): Attachment {
    return attachLink(this, topic as Topic<unknown> as Topic<VideoFrameData>, opts)
  }

  /** Sends a PLI (or FIR when so configured) now; false when no sender is known yet. */
  requestKeyframe(): boolean {
    return this.sock ? this.sock.requestKeyframe() : false
  }

  stats(): RtpReceiverStats {
    if (this.sock) this.sock.stats(this.statsBuf)
    const s = this.statsBuf
    return {
      packets: s[0],
      bytes: s[1],
      lost: s[2],
      late: s[3],
      duplicates: s[4],
      framesComplete: s[5],
      framesIncomplete: s[6],
      malformed: s[7],
      wrongPayloadType: s[8],
      foreignSsrc: s[9],
      ssrcChanges: s[10],
      depayErrors: s[11],
      unsupportedNal: s[12],
      oversizeFrames: s[13],
      tooLargePackets: s[14],
      sequenceResets: s[15],
      rtcpPackets: s[16],
      senderReports: s[17],
      rtcpMalformed: s[18],
      keyframes: s[19],
      kernelDrops: s[20],
      framesDropped: s[21],
      truncatedDatagrams: s[22],
      rxErrors: s[23],
      receiverReportsSent: s[24],
      pliSent: s[25],
      firSent: s[26],
      rtcpSendErrors: s[27],
      datagrams: s[28],
      jitter: s[29],
      buffered: s[30],
      ssrc: s[31],
      iteratorDrops: this.iteratorDrops,
    }
  }

  private deliver(start: number, count: number): void {
    // The frame array is only built when the bus needs the batch.
    const frames: VideoFrame[] | null = this.batchHandlers.length > 0 ? [] : null
    const hs = this.frameHandlers
    const emit = this.listenerCount('frame') > 0
    for (let i = 0; i < count && this.sock; i++) {
      const base = ((start + i) & (this.recCap - 1)) * R.words
      const f = new VideoFrame(this.codec, this.format, this.ring, this.rec, base)
      const ps = f.parameterSets
      if (ps !== NO_PS) {
        const next = { ...this.lastPs }
        if (ps.sps) next.sps = new Uint8Array(ps.sps)
        if (ps.pps) next.pps = new Uint8Array(ps.pps)
        if (ps.vps) next.vps = new Uint8Array(ps.vps)
        this.lastPs = next
      }
      for (let k = 0; k < hs.length && this.sock; k++) hs[k](f)
      if (emit && this.sock) this.emit('frame', f)
      if (this.iterators.size > 0 && this.sock) {
        const c = f.copy()
        for (const q of this.iterators) this.iteratorDrops += q.push(c)
      }
      if (frames) frames.push(f)
    }
    if (frames && frames.length > 0 && this.sock) {
      const batch: BatchLike = {
        length: frames.length,
        copy: (i) => videoFrameCodec.encode(frames[i]),
        rxTime: (i) => {
          const t = frames[i].rxLast
          return t ? BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec) : undefined
        },
      }
      for (const h of this.batchHandlers) if (this.sock) h(batch)
    }
  }

  /** Keep the process alive while this receiver is open (the default). */
  ref(): this {
    if (this.sock && !this.refed) {
      this.refed = true
      this.sock.ref()
    }
    return this
  }

  /** Let the process exit even though this receiver is open. */
  unref(): this {
    if (this.sock && this.refed) {
      this.refed = false
      this.sock.unref()
    }
    return this
  }

  /** Closes the receiver. Idempotent; safe inside a handler; `'close'` follows on the next tick. */
  close(cb?: () => void): this {
    if (cb) validateFunction(cb, 'callback')
    if (!this.sock) {
      if (cb) {
        if (this.closing) this.once('close', cb)
        else process.nextTick(cb)
      }
      return this
    }
    const sock = this.sock
    sock.stats(this.statsBuf)
    this.sock = null
    this.closing = true
    sock.close()
    this.abortCleanup?.()
    for (const q of this.iterators) q.end()
    this.iterators.clear()
    if (cb) this.once('close', cb)
    process.nextTick(() => {
      this.closing = false
      this.emit('close')
    })
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.sock && !this.closing) return
    await new Promise<void>((resolve) => this.close(() => resolve()))
  }

  /** Iterates frames (copies). Ends when the receiver closes. */
  [Symbol.asyncIterator](): AsyncIterableIterator<VideoFrameData> {
    const q: AsyncQueue<VideoFrameData> = new AsyncQueue(this.iterHwm, () => this.iterators.delete(q))
    if (this.sock) this.iterators.add(q)
    else q.end()
    return q
  }
}

function validateRtpReceiverOptions(opts: RtpReceiverOptions): void {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  validatePort(opts.port, 'options.port')
  if (opts.codec !== 'h264' && opts.codec !== 'h265') throw invalidArgValue('options.codec', opts.codec, "must be 'h264' or 'h265'")
  if (opts.address !== undefined && isIP(validateString(opts.address, 'options.address')) === 0)
    throw invalidArgValue('options.address', opts.address, 'is not an IP address')
  if (opts.payloadType !== undefined) validateInt(opts.payloadType, 'options.payloadType', 0, 127)
  if (opts.latencyMs !== undefined) validateInt(opts.latencyMs, 'options.latencyMs', 0, 10000)
  if (opts.format !== undefined && opts.format !== 'annexb' && opts.format !== 'length-prefixed')
    throw invalidArgValue('options.format', opts.format, "must be 'annexb' or 'length-prefixed'")
  if (opts.keyframeRequest !== undefined && opts.keyframeRequest !== false && opts.keyframeRequest !== 'pli' && opts.keyframeRequest !== 'fir')
    throw invalidArgValue('options.keyframeRequest', opts.keyframeRequest, "must be 'pli', 'fir' or false")
  if (opts.keyframeIntervalMs !== undefined) validateInt(opts.keyframeIntervalMs, 'options.keyframeIntervalMs', 0, 3_600_000)
  if (opts.bufferBytes !== undefined) validateInt(opts.bufferBytes, 'options.bufferBytes', 1 << 16, 1 << 30)
  if (opts.maxFrameBytes !== undefined) validateInt(opts.maxFrameBytes, 'options.maxFrameBytes', 1024, 1 << 29)
  if (opts.reorderPackets !== undefined) validateInt(opts.reorderPackets, 'options.reorderPackets', 16, 32768)
  if (opts.rcvBuf !== undefined) validateInt(opts.rcvBuf, 'options.rcvBuf', 1024, 1 << 30)
  if (opts.reuseAddr !== undefined) validateBool(opts.reuseAddr, 'options.reuseAddr')
  if (opts.thread !== undefined && opts.thread !== 'io' && opts.thread !== 'js')
    throw invalidArgValue('options.thread', opts.thread, "must be 'io' or 'js'")
  if (opts.busyPollUs !== undefined) validateInt(opts.busyPollUs, 'options.busyPollUs', 0, 1_000_000)
  if (opts.iteratorHighWaterMark !== undefined) validateInt(opts.iteratorHighWaterMark, 'options.iteratorHighWaterMark', 1, 1 << 20)
  const rtcp = opts.rtcp
  if (rtcp !== undefined && typeof rtcp !== 'boolean' && rtcp !== 'mux') {
    if (rtcp === null || typeof rtcp !== 'object') throw invalidArgValue('options.rtcp', rtcp, "must be a boolean, 'mux' or an object")
    if (rtcp.port !== undefined) validatePort(rtcp.port, 'options.rtcp.port')
    if (rtcp.intervalMs !== undefined) validateInt(rtcp.intervalMs, 'options.rtcp.intervalMs', 10, 3_600_000)
  }
  if (opts.multicast !== undefined) {
    if (opts.multicast === null || typeof opts.multicast !== 'object') throw invalidArgType('options.multicast', 'of type object', opts.multicast)
    if (isIP(validateString(opts.multicast.group, 'options.multicast.group')) === 0)
      throw invalidArgValue('options.multicast.group', opts.multicast.group, 'is not an IP address')
  }
}

/**
 * Receives H.264 / H.265 video over RTP.
 * @example
 * const rx = createRtpReceiver({ port: 5600, codec: 'h264', latencyMs: 30 })
 * rx.on('frame', (f) => { if (f.complete) decoder.push(f.data) })
 */
export function createRtpReceiver(opts: RtpReceiverOptions): RtpReceiver {
  return new RtpReceiver(opts)
}

export type { OnbusSystemError }
