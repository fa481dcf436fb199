/**
 * A publisher: the only way messages enter a topic.
 *
 * `publish()` delivers to every matched subscriber before it returns (a
 * function call per subscriber, no copy, no allocation on the raw codec), or
 * returns `false` and delivers nothing when a matched reliable subscriber
 * with `overflow: 'block'` is full. Then `await publisher.ready()` and publish
 * again, or use `publishAsync()`, which does both.
 */
import { EventEmitter } from 'node:events'
import { onbusError } from '../errors.js'
import type { DeadlineMissedEvent, LivelinessEvent } from './events.js'
import { Meta } from './meta.js'
import type { QoS } from './qos.js'
import type { Subscription } from './subscription.js'
import type { Topic } from './topic.js'
import { Watchdog } from './watchdog.js'
import { whenAborted } from '../util/abort.js'

/** Options of `topic.publisher()`. */
export interface PublisherOptions {
  /** Offered QoS; fields not given are the topic's. A lease (`livelinessLeaseMs`) obliges this publisher to publish or `assertLiveliness()` within every lease. */
  qos?: Partial<QoS>
  /** Becomes `meta.source` and the id shown in introspection; default `<bus>/<topic>#p<n>`. */
  name?: string
  /** Closes the publisher when aborted. */
  signal?: AbortSignal
}

/** Counters of one publisher. */
export interface PublisherStats {
  /** Messages published (the last sequence number). */
  published: number
  /** `publish()` calls refused because a reliable subscriber was full. */
  refused: number
  /** Matched subscribers whose full queue currently blocks this publisher. */
  blockedBy: number
  deadlineMissed: number
  alive: boolean
}

function closedError(): Error {
  return onbusError('ERR_ONBUS_CLOSED', 'The publisher is closed')
}

/**
 * Returned by `topic.publisher()`. Events: `'qos-mismatch'`,
 * `'deadline-missed'` (it did not publish within its offered deadline),
 * `'liveliness-lost'` (its lease ran out), `'matched'`, `'unmatched'`,
 * `'close'`.
 */
export class Publisher<T> extends EventEmitter {
  readonly id: string
  /** `meta.source` of its messages. */
  readonly source: string
  /** The QoS this publisher offers. */
  readonly qos: Readonly<QoS>
  /** Name of the transport this proxy stands for; `undefined` for a local publisher. */
  readonly remote: string | undefined
  /** @internal */ matched: Subscription<unknown>[] = []
  /** @internal */ readonly topic: Topic<T>
  private seq = 0
  private asserts = 0
  private blockedBy = 0
  private refused = 0
  private nesting = 0
  private closed = false
  private lost = false
  private readonly durable: boolean
  private readonly meta = new Meta()
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  private readonly liveliness: Watchdog | null = null
  private readonly deadline: Watchdog | null = null
  private abortCleanup: (() => void) | undefined

  /** @internal use `topic.publisher()` */
  constructor(topic: Topic<T>, id: string, source: string, qos: Readonly<QoS>, opts: { signal?: AbortSignal; remote?: string }) {
    super()
    this.topic = topic
    this.id = id
    this.source = source
    this.qos = qos
    this.remote = opts.remote
    this.durable = qos.durability === 'transient-local'
    this.meta.pub = this as Publisher<unknown>
    this.meta.source = source
    if (qos.livelinessLeaseMs !== Infinity)
      this.liveliness = new Watchdog(qos.livelinessLeaseMs, () => this.seq + this.asserts, () => this.livelinessLost(), false)
    // A proxy's offered deadline is watched where it really publishes.
    if (qos.deadlineMs !== Infinity && !opts.remote) this.deadline = new Watchdog(qos.deadlineMs, () => this.seq, (n) => this.deadlineMissed(n), true)
    const signal = opts.signal
    if (signal) this.abortCleanup = whenAborted(signal, () => this.close(), queueMicrotask)
  }

  /**
   * Publishes `data` to every matched subscriber. Returns `false`, and
   * delivers nothing, while a matched reliable subscriber's queue is full
   * (`overflow: 'block'`): await `ready()` and publish again.
   *
   * The value is handed over, not copied: do not modify it afterwards.
   * @example
   * if (!pub.publish(frame)) { await pub.ready(); pub.publish(frame) }
   */
  publish(data: T): boolean {
    if (this.closed) throw closedError()
    if (this.blockedBy > 0) {
      this.refused++
      this.topic.refused++
      return false
    }
    this.send(data, ++this.seq, -1, this.source, undefined, false)
    return true
  }

  /** Publishes, waiting for room first when reliable subscribers push back. Rejects if the publisher closes or `signal` aborts first. */
  async publishAsync(data: T, opts: { signal?: AbortSignal } = {}): Promise<void> {
    while (!this.publish(data)) {
      opts.signal?.throwIfAborted()
      await this.ready(opts)
    }
  }

  /**
   * Resolves when `publish()` would accept a message: at once when nothing
   * blocks, otherwise when every blocking subscriber's queue is at most half
   * full (or it went away). Rejects if the publisher closes or `signal` aborts.
   */
  ready(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.closed) return Promise.reject(closedError())
    if (this.blockedBy === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const signal = opts.signal
      if (signal?.aborted) return reject(signal.reason)
      const w = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      }
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((x) => x !== w)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(w)
    })
  }

  /** True when `publish()` would accept a message now. */
  get writable(): boolean {
    return !this.closed && this.blockedBy === 0
  }

  /** Says "still here" without publishing (a heartbeat). Publishing says it too. */
  assertLiveliness(): void {
    if (this.closed) throw closedError()
    this.asserts++
    if (this.lost) this.regain()
    if (!this.remote) this.topic.bus._host.emit('liveliness', this.topic.describePublisher(this as Publisher<unknown>))
  }

  /** @internal Delivers one message; `t` < 0 means "not stamped yet". */
  send(data: T, seq: number, t: number, source: string, rxTime: bigint | undefined, historical: boolean): void {
    // A publish from inside one of this publisher's deliveries must not
    // overwrite the meta the outer delivery is still handing out.
    const m = this.nesting === 0 ? this.meta : new Meta()
    m.seq = seq
    m.source = source
    m.rxTime = rxTime
    m.t = t
    m.sampled = false
    m.historical = historical
    m.pub = this as Publisher<unknown>
    if (this.lost) this.regain()
    const topic = this.topic
    topic.published++
    if (topic.sizeOf !== null) topic.bytes += topic.sizeOf(data)
    if (--topic.sampleCountdown <= 0) topic.sample(m)
    if (this.durable) topic.record(data, m)
    const subs = this.matched
    this.nesting++
    try {
      if (historical) {
        for (let i = 0; i < subs.length; i++) if (subs[i].qos.durability === 'transient-local') subs[i].deliver(data, m)
      } else {
        for (let i = 0; i < subs.length; i++) subs[i].deliver(data, m)
      }
    } finally {
      this.nesting--
    }
  }

  /**
   * Transport side: delivers a message that arrived from another process,
   * keeping its sequence number, source and stamps. `historical` marks a
   * replay of the remote topic's history, which only transient-local
   * subscribers take. Returns `false` (nothing delivered) while a local
   * reliable subscriber pushes back: call again after `ready()`.
   * Throws what the codec throws for undecodable bytes.
   */
  publishEncoded(bytes: Uint8Array, meta: { seq: number; publishTime: number; rxTime?: bigint; source?: string }, historical = false): boolean {
    if (this.closed) throw closedError()
    if (!this.remote) throw onbusError('ERR_ONBUS_NOT_REMOTE', 'publishEncoded() is for transport proxies; use publish()')
    if (this.blockedBy > 0) {
      this.refused++
      this.topic.refused++
      return false
    }
    const data = this.topic.codec.decode(bytes)
    if (meta.seq > this.seq) this.seq = meta.seq
    this.asserts++
    this.send(data, meta.seq, meta.publishTime, meta.source ?? this.source, meta.rxTime, historical)
    return true
  }

  /** @internal Publishes for a link attachment: own sequence, the datagram's source and kernel stamp. */
  publishFrom(data: T, source: string, rxTime: bigint | undefined): boolean {
    if (this.closed) throw closedError()
    if (this.blockedBy > 0) {
      this.refused++
      this.topic.refused++
      return false
    }
    this.send(data, ++this.seq, -1, source, rxTime, false)
    return true
  }

  /** @internal a matched subscriber's queue became full */
  block(): void {
    this.blockedBy++
  }

  /** @internal a blocking subscriber drained to half or went away */
  unblock(): void {
    if (this.blockedBy > 0 && --this.blockedBy === 0 && this.waiters.length > 0) {
      const ws = this.waiters
      this.waiters = []
      for (const w of ws) w.resolve()
    }
  }

  private livelinessLost(): void {
    this.lost = true
    const ev = this.livelinessEvent()
    this.emit('liveliness-lost', ev)
    for (const s of this.matched) s.emit('publisher-lost', ev)
    this.topic.report('publisher-lost', ev)
  }

  private regain(): void {
    this.lost = false
    this.liveliness?.rearm()
    const ev = this.livelinessEvent()
    this.emit('liveliness-regained', ev)
    for (const s of this.matched) s.emit('publisher-alive', ev)
    this.topic.report('publisher-alive', ev)
  }

  private livelinessEvent(): LivelinessEvent {
    return { topic: this.topic.name, publisher: this.id, source: this.source, leaseMs: this.qos.livelinessLeaseMs }
  }

  private deadlineMissed(totalCount: number): void {
    const ev: DeadlineMissedEvent = { topic: this.topic.name, side: 'publisher', endpoint: this.id, deadlineMs: this.qos.deadlineMs, totalCount }
    this.emit('deadline-missed', ev)
    this.topic.report('deadline-missed', ev)
  }

  /** Counters of this publisher. */
  stats(): PublisherStats {
    return { published: this.seq, refused: this.refused, blockedBy: this.blockedBy, deadlineMissed: this.deadline?.misses ?? 0, alive: !this.lost }
  }

  get closedState(): boolean {
    return this.closed
  }

  /** Stops publishing; pending `ready()` calls reject. Idempotent; `'close'` follows on the next tick. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.liveliness?.stop()
    this.deadline?.stop()
    this.abortCleanup?.()
    this.topic.removePublisher(this as Publisher<unknown>)
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w.reject(closedError())
    process.nextTick(() => this.emit('close'))
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
