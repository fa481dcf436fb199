/**
 * The bus: a named set of typed topics in one process, the figures about them,
 * and the transports that carry them further.
 */
import { EventEmitter } from 'node:events'
import type { Codec } from '../codecs/codec.js'
import { invalidArgType, invalidArgValue, onbusError } from '../errors.js'
import { sameQoS, topicQoS, type TopicQoS } from './qos.js'
import { Topic, type TopicInfo } from './topic.js'
import { TransportHostImpl, type Transport } from './transport.js'
import { whenAborted } from '../util/abort.js'

/** Options of {@link createBus}. */
export interface BusOptions {
  /** Shown in endpoint ids and sources; default `'bus'`. */
  name?: string
  /** Closes the bus when aborted. */
  signal?: AbortSignal
}

/** Options of `bus.topic()`. */
export interface TopicOptions<T> {
  /** The topic's QoS: reliability, depth, overflow and deadline must be stated (see `qosProfiles`). */
  qos: TopicQoS
  /** How values become bytes for links and transports (`rawCodec`, `jsonCodec()`, `flatbuffersCodec()`, or your own). */
  codec: Codec<T>
}

/** Introspection of a whole bus: what a CLI shows. */
export interface BusInfo {
  name: string
  topics: TopicInfo[]
  transports: string[]
}

const TOPIC_NAME = /^[A-Za-z0-9_.\-/]+$/

/**
 * A bus. Events: `'topic'` (a topic was declared), and every topic's
 * `'qos-mismatch'`, `'deadline-missed'`, `'publisher-lost'`,
 * `'publisher-alive'` and `'drop'` (each payload names its topic).
 */
export class Bus extends EventEmitter {
  readonly name: string
  /** @internal */ readonly _host: TransportHostImpl
  private readonly byName = new Map<string, Topic<unknown>>()
  private transports: Transport[] = []
  private timer: NodeJS.Timeout | null = null
  private lastTick = 0
  private ids = 0
  private closed = false
  private abortCleanup: (() => void) | undefined

  /** @internal use {@link createBus} */
  constructor(opts: BusOptions) {
    super()
    this.name = opts.name ?? 'bus'
    this._host = new TransportHostImpl(this.name, () => this.topics())
    const signal = opts.signal
    if (signal) this.abortCleanup = whenAborted(signal, () => this.close(), queueMicrotask)
  }

  /**
   * Declares a topic, or returns the one already declared under `name`. A
   * second declaration with another codec or another QoS throws
   * `ERR_ONBUS_TOPIC_CONFLICT` (endpoints that need different QoS say so in
   * `publisher({ qos })` / `subscribe({ qos })`).
   * @example
   * const scans = bus.topic('lidar/scan', { qos: { ...qosProfiles.sensorData, deadlineMs: 150 }, codec: rawCodec })
   */
  topic<T>(name: string, opts?: TopicOptions<T>): Topic<T> {
    if (this.closed) throw onbusError('ERR_ONBUS_CLOSED', 'The bus is closed')
    if (typeof name !== 'string') throw invalidArgType('name', 'of type string', name)
    if (!TOPIC_NAME.test(name)) throw invalidArgValue('name', name, 'must be non-empty and use only letters, digits, _ . - /')
    const existing = this.byName.get(name)
    if (opts === undefined) {
      if (existing) return existing as Topic<T>
      throw invalidArgValue('options', undefined, `must give qos and codec: topic '${name}' is not declared yet`)
    }
    if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
    const c = opts.codec
    if (c === null || typeof c !== 'object' || typeof c.encode !== 'function' || typeof c.decode !== 'function' || typeof c.name !== 'string')
      throw invalidArgType('options.codec', 'a codec ({ name, encode, decode })', c)
    const qos = topicQoS(opts.qos)
    if (existing) {
      if (existing.codec.name !== c.name)
        throw onbusError('ERR_ONBUS_TOPIC_CONFLICT', `Topic '${name}' is declared with codec '${existing.codec.name}', not '${c.name}'`)
      if (!sameQoS(existing.qos, qos))
        throw onbusError('ERR_ONBUS_TOPIC_CONFLICT', `Topic '${name}' is declared with QoS ${JSON.stringify(existing.qos)}, not ${JSON.stringify(qos)}`)
      return existing as Topic<T>
    }
    const t = new Topic<T>(this, name, c, qos)
    this.byName.set(name, t as Topic<unknown>)
    this.startTimer()
    this.emit('topic', t)
    this._host.emit('topic', t)
    return t
  }

  /** The declared topics. */
  topics(): Topic<unknown>[] {
    return [...this.byName.values()]
  }

  /** Introspection: every topic with its publishers, subscribers, QoS mismatches and figures (rate, bandwidth, latency p50/p99, drops). */
  info(): BusInfo {
    return { name: this.name, topics: this.topics().map((t) => t.info()), transports: this.transports.map((t) => t.name) }
  }

  /** Carries this bus's topics over a transport (see `Transport`). */
  addTransport(t: Transport): void {
    if (this.closed) throw onbusError('ERR_ONBUS_CLOSED', 'The bus is closed')
    if (t === null || typeof t !== 'object' || typeof t.start !== 'function' || typeof t.close !== 'function')
      throw invalidArgType('transport', 'a transport ({ name, start, close })', t)
    this.transports.push(t)
    t.start(this._host)
  }

  private startTimer(): void {
    if (this.timer) return
    this.lastTick = performance.now()
    // Rates over one-second windows and the latency sampling interval; unref'd
    // so that figures never keep a process alive.
    this.timer = setInterval(() => {
      const t = performance.now()
      const dt = t - this.lastTick
      this.lastTick = t
      for (const topic of this.byName.values()) topic.tick(dt)
    }, 1000)
    this.timer.unref()
  }

  /** @internal */
  _nextId(): number {
    return ++this.ids
  }

  /** @internal */
  _report(event: string, payload: unknown): void {
    if (this.listenerCount(event) > 0) this.emit(event, payload)
  }

  /** @internal */
  _removeTopic(t: Topic<unknown>): void {
    if (this.byName.get(t.name) === t) this.byName.delete(t.name)
  }

  get closedState(): boolean {
    return this.closed
  }

  /** Closes every topic (ending iterators, rejecting `ready()`), then the transports. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.abortCleanup?.()
    for (const t of this.topics()) t.close()
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    const ts = this.transports
    this.transports = []
    for (const t of ts) void t.close()
    process.nextTick(() => this.emit('close'))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }
}

/**
 * Creates a bus.
 * @example
 * const bus = createBus({ name: 'perception' })
 * const det = bus.topic('detections', { qos: qosProfiles.reliable, codec: jsonCodec<Detection[]>() })
 * det.subscribe((list, meta) => plan(list, meta.seq))
 * det.publish([{ label: 'person', x: 3.1, y: -0.4 }])
 */
export function createBus(opts: BusOptions = {}): Bus {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  if (opts.name !== undefined && (typeof opts.name !== 'string' || opts.name.length === 0)) throw invalidArgType('options.name', 'a non-empty string', opts.name)
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal)
  return new Bus(opts)
}
