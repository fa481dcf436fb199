/**
 * {@link MavlinkPort}s built from the JavaScript parser: one over an onbus
 * UDP link, one over a stream link (serial, TCP, Unix), and a pair joined in
 * memory with seeded loss for unit tests.
 *
 * The native MavlinkLink and the router implement the same interface; these
 * exist so the services and the simulator run (and are tested) without them.
 */
import { EventEmitter } from 'node:events'
import type { UdpLink } from '../../links/udp/link.js'
import type { StreamLink } from '../../links/stream/link.js'
import type { MavlinkFrame } from '../frame.js'
import { MavlinkParser } from '../parser.js'
import { DIALECT as COMMON } from '../generated/common.js'
import type { MavlinkParserOptions, ParserStats } from '../parser.js'
import type { MavlinkFrameListener, MavlinkPort } from '../port.js'
import { invalidArgValue, outOfRange } from '../../errors.js'

/** CLOCK_REALTIME in ns from JavaScript (sub-µs resolution from `performance`). */
export function realtimeNs(): bigint {
  const ms = performance.timeOrigin + performance.now()
  const whole = Math.floor(ms)
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))
}

/** Counters of a JS port (the parser's own counters are in `parser`). */
export interface JsPortStats {
  framesIn: number
  framesOut: number
  /** Frames the transport refused or could not send (no peer yet, closed link, error). */
  sendFailed: number
  /** Frames dropped on purpose (memory port loss). */
  dropped: number
  /** Listener exceptions caught (a failing service must not break the others). */
  listenerErrors: number
  parser: ParserStats
}

/** Options shared by the JS ports: the parser's (dialect, signing, unknownIds). */
export type JsPortOptions = Pick<MavlinkParserOptions, 'dialect' | 'signing' | 'unknownIds' | 'onReject'>

/**
 * Base of the JS ports: a parser and the listener list.
 * Events: `'error'` (a listener threw; the frame still reached the others).
 */
export abstract class JsPortBase extends EventEmitter implements MavlinkPort {
  protected readonly parser: MavlinkParser
  private frameListeners: MavlinkFrameListener[] = []
  protected counters = { framesIn: 0, framesOut: 0, sendFailed: 0, dropped: 0, listenerErrors: 0 }

  constructor(options: JsPortOptions, datagram: boolean) {
    super()
    this.parser = new MavlinkParser({ ...options, dialect: options.dialect ?? COMMON, datagram })
  }

  abstract send(frame: Uint8Array): boolean

  onFrame(listener: MavlinkFrameListener): () => void {
    this.frameListeners = [...this.frameListeners, listener]
    return () => {
      this.frameListeners = this.frameListeners.filter((l) => l !== listener)
    }
  }

  /** Counters; `parser.rejected.unsigned` counts unsigned frames refused on a signing port. */
  stats(): JsPortStats {
    return { ...this.counters, parser: structuredClone(this.parser.stats) }
  }

  protected ingest(bytes: Uint8Array, rxTimeNs: bigint): void {
    this.parser.push(bytes, (frame) => this.deliver(frame, rxTimeNs))
  }

  private deliver(frame: MavlinkFrame, rxTimeNs: bigint): void {
    this.counters.framesIn++
    for (const l of this.frameListeners) {
      try {
        l(frame, rxTimeNs)
      } catch (err) {
        this.counters.listenerErrors++
        if (this.listenerCount('error') > 0) this.emit('error', err)
      }
    }
  }
}

/** Options of {@link UdpMavlinkPort}. */
export interface UdpPortOptions extends JsPortOptions {
  /** Where frames go. Without it the port answers the last peer a good frame came from. */
  remote?: { address: string; port: number }
  /** Follow the sender of the last accepted frame (default: true when no `remote` is given). */
  learnRemote?: boolean
}

/**
 * A MAVLink port over an onbus {@link UdpLink}: each datagram is parsed whole
 * (frames never span datagrams).
 * @example
 * const link = createUdpLink({ port: 14550 })
 * const port = new UdpMavlinkPort(link, { signing })
 */
export class UdpMavlinkPort extends JsPortBase {
  private remote: { address: string; port: number } | undefined
  private readonly learn: boolean
  private readonly onMessage: (data: Buffer, info: { address: string; port: number; rxTime: bigint | undefined }) => void

  constructor(readonly link: UdpLink, options: UdpPortOptions = {}) {
    super(options, true)
    this.remote = options.remote
    this.learn = options.learnRemote ?? options.remote === undefined
    this.onMessage = (data, info) => {
      const before = this.parser.stats.frames
      this.ingest(data, info.rxTime ?? realtimeNs())
      // learn only from datagrams that carried an accepted frame: garbage or
      // unsigned probes must not redirect our traffic
      if (this.learn && this.parser.stats.frames > before) this.remote = { address: info.address, port: info.port }
    }
    link.on('message', this.onMessage)
  }

  /** Current destination, if known. */
  get peer(): { address: string; port: number } | undefined {
    return this.remote
  }

  send(frame: Uint8Array): boolean {
    const r = this.remote
    if (r === undefined) {
      this.counters.sendFailed++
      return false
    }
    try {
      const ok = this.link.send(frame, r.port, r.address, (err) => {
        if (err) this.counters.sendFailed++
      })
      this.counters.framesOut++
      return ok
    } catch {
      this.counters.sendFailed++
      return false
    }
  }

  /** Stops listening on the link (the link stays open; close it yourself). */
  detach(): void {
    this.link.off('message', this.onMessage)
  }
}

/**
 * A MAVLink port over a stream link (serial, TCP, Unix): bytes are parsed as
 * a stream (frames may span reads).
 * @example
 * const link = createSerialLink({ path: '/dev/ttyACM0', baudRate: 921600 })
 * const port = new StreamMavlinkPort(link, { signing })
 */
export class StreamMavlinkPort extends JsPortBase {
  private readonly onData: (data: Buffer, info: { rxTime: bigint }) => void
  private readonly onDisconnect: () => void

  constructor(readonly link: StreamLink, options: JsPortOptions = {}) {
    super(options, false)
    this.onData = (data, info) => this.ingest(data, info.rxTime ?? realtimeNs())
    // a frame cut by a lost connection must not be completed with the next
    // connection's bytes: the parser starts over (pending bytes count as discarded)
    this.onDisconnect = () => this.parser.reset()
    link.on('data', this.onData)
    link.on('disconnect', this.onDisconnect)
  }

  send(frame: Uint8Array): boolean {
    if (this.link.state !== 'connected') {
      this.counters.sendFailed++
      return false
    }
    try {
      const ok = this.link.write(frame, (err) => {
        if (err) this.counters.sendFailed++
      })
      this.counters.framesOut++
      return ok
    } catch {
      this.counters.sendFailed++
      return false
    }
  }

  detach(): void {
    this.link.off('data', this.onData)
    this.link.off('disconnect', this.onDisconnect)
  }
}

/** Options of {@link createMemoryPortPair}. */
export interface MemoryPortOptions {
  /** Probability (0..1) that a frame is lost, per frame and direction. Default 0. */
  loss?: number
  /** Seed of the loss generator (same seed, same losses). Default 1. */
  seed?: number
  /** Delivery delay in ms (0: next turn of the event loop). Default 0. */
  latencyMs?: number
  /** Parser options of side a / side b (e.g. signing). */
  a?: JsPortOptions
  b?: JsPortOptions
}

/** mulberry32: small, seedable, good enough for loss patterns. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * One side of an in-memory pair. Frames are copied and delivered to the
 * other side's parser asynchronously, after the seeded loss decision.
 */
export class MemoryMavlinkPort extends JsPortBase {
  /** @internal */ peer: MemoryMavlinkPort | undefined
  /** Extra drop rule for tests (return true to lose the frame); runs after the random loss. */
  dropIf: ((bytes: Uint8Array) => boolean) | undefined
  private closed = false

  constructor(
    options: JsPortOptions,
    private readonly lossRate: number,
    private readonly random: () => number,
    private readonly latencyMs: number,
  ) {
    super(options, true)
  }

  send(frame: Uint8Array): boolean {
    const peer = this.peer
    if (this.closed || peer === undefined || peer.closed) {
      this.counters.sendFailed++
      return false
    }
    this.counters.framesOut++
    if ((this.lossRate > 0 && this.random() < this.lossRate) || (this.dropIf !== undefined && this.dropIf(frame))) {
      this.counters.dropped++
      return true
    }
    const copy = frame.slice()
    const deliver = (): void => {
      if (!peer.closed) peer.ingest(copy, realtimeNs())
    }
    if (this.latencyMs > 0) setTimeout(deliver, this.latencyMs)
    else setImmediate(deliver)
    return true
  }

  /** Stops delivery both ways (frames in flight are discarded). */
  close(): void {
    this.closed = true
  }
}

/**
 * Two ports joined in memory, with seeded per-frame loss.
 * @example
 * const [gcs, vehicle] = createMemoryPortPair({ loss: 0.2, seed: 7 })
 */
export function createMemoryPortPair(options: MemoryPortOptions = {}): [MemoryMavlinkPort, MemoryMavlinkPort] {
  const loss = options.loss ?? 0
  if (typeof loss !== 'number' || !(loss >= 0 && loss < 1)) throw outOfRange('options.loss', 'a number from 0 to below 1', loss)
  const latency = options.latencyMs ?? 0
  if (!(latency >= 0)) throw invalidArgValue('options.latencyMs', latency, 'must be >= 0')
  const random = seededRandom(options.seed ?? 1)
  const a = new MemoryMavlinkPort(options.a ?? {}, loss, random, latency)
  const b = new MemoryMavlinkPort(options.b ?? {}, loss, random, latency)
  a.peer = b
  b.peer = a
  return [a, b]
}
