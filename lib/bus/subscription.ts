/**
 * A subscriber: a callback, an async iterator, or (inside the bus) a sink
 * that feeds a link or a transport.
 *
 * Delivery: a callback subscriber that is idle is called synchronously inside
 * `publish()`, with no queue and no allocation. It queues only while it is
 * busy: its callback returned a promise that has not settled (async callbacks
 * are serialised, in order), or a sink said "stop" (`false`). The queue holds
 * at most `qos.depth` messages; when it is full, `qos.overflow` decides:
 * drop the oldest, drop the newest, or (reliable subscribers) push back on the
 * publishers until the queue is half empty again. Every drop is counted and
 * reported as a `'drop'` event.
 */
import { EventEmitter } from 'node:events'
import { onbusError } from '../errors.js'
import { monotonicNs } from './clock.js'
import type { DropEvent, DropReason } from './events.js'
import { Meta, type MessageMeta } from './meta.js'
import type { Publisher } from './publisher.js'
import type { QoS } from './qos.js'
import { MessageRing } from './ring.js'
import type { Topic } from './topic.js'
import { Watchdog } from './watchdog.js'
import { whenAborted } from '../util/abort.js'

/** A subscriber callback. `meta` is reused: valid until the callback returns. Return a promise to be called with the next message only after it settles. */
export type MessageHandler<T> = (data: T, meta: MessageMeta) => unknown
/** A message as the async iterator yields it; `meta` is yours to keep. */
export interface Message<T> {
  data: T
  meta: MessageMeta
}

/** Options of `topic.subscribe()`. */
export interface SubscribeOptions {
  /** Requested QoS; fields not given are the topic's. */
  qos?: Partial<QoS>
  /** Name shown in introspection and events; default `<bus>/<topic>#s<n>`. */
  name?: string
  /** Closes the subscription (and ends its iterator) when aborted. */
  signal?: AbortSignal
}

/** Counters of one subscription. */
export interface SubscriptionStats {
  /** Messages that reached this subscriber (delivered, queued or dropped by its queue). */
  received: number
  /** Messages handed to the callback, the iterator or the sink. */
  delivered: number
  /** Messages waiting in the queue now. */
  queued: number
  /** Messages dropped by this subscriber's queue. */
  dropped: number
  deadlineMissed: number
  /** True while this subscriber's full queue blocks its reliable publishers. */
  blocking: boolean
}

type Kind = 'callback' | 'iterator' | 'sink'

/**
 * Returned by `topic.subscribe()`. Events: `'qos-mismatch'`,
 * `'deadline-missed'`, `'publisher-lost'`, `'publisher-alive'`, `'matched'`,
 * `'unmatched'`, `'drop'`, `'error'` (a callback threw or rejected),
 * `'close'`.
 */
export class Subscription<T> extends EventEmitter implements AsyncIterableIterator<Message<T>> {
  readonly id: string
  /** The QoS this subscriber requested (the topic's, overridden by its own). */
  readonly qos: Readonly<QoS>
  /** @internal */ readonly kind: Kind
  /** @internal set for a transport's forwarder: matches local publishers only, without QoS checks. */
  readonly forwarder: string | undefined
  /** @internal */ matched: Publisher<unknown>[] = []
  /** @internal true while this subscriber's full queue blocks its reliable publishers. */
  full = false
  /** @internal set for transport proxies. */
  readonly remote: string | undefined
  private readonly topic: Topic<T>
  private readonly cb: ((data: T, meta: MessageMeta) => unknown) | null
  private q: MessageRing | null = null
  /** Idle callback with an empty queue: deliver by calling, right now. */
  private direct: boolean
  private busy = false
  private draining = false
  private closed = false
  private readonly meta = new Meta()
  private waiter: ((r: IteratorResult<Message<T>>) => void) | null = null
  private readonly lowWater: number
  private readonly watchdog: Watchdog | null = null
  private sampleCountdown = 1
  private pendingDrops: Partial<Record<DropReason, number>> | null = null
  private abortCleanup: (() => void) | undefined
  private received = 0
  private delivered = 0
  private dropped = 0
  private readonly settled = (): void => {
    this.busy = false
    this.drain()
  }
  private readonly rejected = (err: unknown): void => {
    this.fail(err)
    this.settled()
  }

  /** @internal use `topic.subscribe()` */
  constructor(
    topic: Topic<T>,
    id: string,
    qos: Readonly<QoS>,
    kind: Kind,
    cb: ((data: T, meta: MessageMeta) => unknown) | null,
    opts: { signal?: AbortSignal; forwarder?: string; remote?: string },
  ) {
    super()
    this.topic = topic
    this.id = id
    this.qos = qos
    this.kind = kind
    this.cb = cb
    this.forwarder = opts.forwarder
    this.remote = opts.remote
    this.direct = kind !== 'iterator'
    this.lowWater = Math.floor(qos.depth / 2)
    if (qos.deadlineMs !== Infinity && !opts.forwarder) {
      this.watchdog = new Watchdog(qos.deadlineMs, () => this.received, (n) => this.deadlineMissed(n), true)
    }
    const signal = opts.signal
    if (signal) this.abortCleanup = whenAborted(signal, () => this.close(), queueMicrotask)
  }

  /** @internal Hands one message to this subscriber. `m` is only valid during this call. */
  deliver(data: T, m: Meta): void {
    if (this.closed) return
    this.received++
    if (this.direct) {
      if (m.sampled) this.topic.latency.record(monotonicNs() - m.t)
      this.invoke(data, m)
      return
    }
    if (this.waiter !== null) {
      const w = this.waiter
      this.waiter = null
      this.delivered++
      if (m.sampled) this.topic.latency.record(monotonicNs() - m.t)
      w({ value: { data, meta: { seq: m.seq, source: m.source, rxTime: m.rxTime, publishTime: m.stamp() } }, done: false })
      return
    }
    this.enqueue(data, m)
  }

  private invoke(data: T, m: MessageMeta): void {
    this.delivered++
    let r: unknown
    try {
      r = this.cb!(data, m)
    } catch (err) {
      this.fail(err)
      return
    }
    if (this.kind === 'sink') {
      if (r === false) {
        this.busy = true
        this.direct = false
      }
    } else if (r !== undefined && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') {
      this.busy = true
      this.direct = false
      ;(r as PromiseLike<unknown>).then(this.settled, this.rejected)
    }
  }

  private enqueue(data: T, m: Meta): void {
    const depth = this.qos.depth
    const q = (this.q ??= new MessageRing(depth))
    if (q.size >= depth) {
      if (this.qos.overflow === 'drop-oldest') {
        q.release(q.shift())
        this.drop(1, 'drop-oldest')
      } else {
        this.drop(1, this.qos.overflow === 'drop-newest' ? 'drop-newest' : 'queue-full')
        return
      }
    }
    q.push(data, m.seq, m.stamp(), m.source, m.rxTime, m.pub, m.historical)
    if (q.size >= depth && this.qos.overflow === 'block' && !this.full) this.setFull(true)
  }

  /** @internal Queues a replayed message (durability) without delivering it now. */
  replay(data: T, seq: number, t: number, src: string, rx: bigint | undefined, pub: Publisher<unknown> | null): void {
    const q = (this.q ??= new MessageRing(this.qos.depth))
    if (q.size >= this.qos.depth) q.release(q.shift())
    q.push(data, seq, t, src, rx, pub, true)
    this.direct = false
    if (this.kind !== 'iterator') queueMicrotask(() => this.drain())
  }

  private afterDequeue(): void {
    if (this.full && this.q!.size <= this.lowWater) this.setFull(false)
    if (--this.sampleCountdown <= 0) {
      this.sampleCountdown = this.topic.sampleEvery
      this.topic.latency.record(monotonicNs() - this.meta.t)
    }
  }

  /** Delivers queued messages to an idle callback or sink. */
  private drain(): void {
    if (this.draining || this.closed) return
    this.draining = true
    this.direct = false
    const q = this.q
    const meta = this.meta
    try {
      while (q !== null && q.size > 0 && !this.busy && !this.closed) {
        const i = q.shift()
        const data = q.data[i] as T
        meta.seq = q.seq[i]
        meta.t = q.t[i]
        meta.source = q.src[i]
        meta.rxTime = q.rx[i]
        meta.pub = q.pub[i]
        meta.historical = q.hist[i] === 1
        q.release(i)
        this.afterDequeue()
        this.invoke(data, meta)
      }
    } finally {
      this.draining = false
    }
    if (!this.busy && !this.closed && (q === null || q.size === 0)) this.direct = true
  }

  /** @internal A sink that said "stop" (returned false) may take messages again. */
  resume(): void {
    if (this.kind !== 'sink' || !this.busy) return
    this.busy = false
    this.drain()
  }

  private setFull(full: boolean): void {
    this.full = full
    for (const p of this.matched) if (p.qos.reliability === 'reliable') full ? p.block() : p.unblock()
  }

  /** @internal Counts a drop and schedules one coalesced `'drop'` event per reason. */
  drop(n: number, reason: DropReason): void {
    this.dropped += n
    this.topic.drops += n
    if (this.pendingDrops === null) {
      this.pendingDrops = {}
      process.nextTick(() => this.flushDrops())
    }
    this.pendingDrops[reason] = (this.pendingDrops[reason] ?? 0) + n
  }

  private flushDrops(): void {
    const p = this.pendingDrops
    this.pendingDrops = null
    if (!p) return
    for (const reason of Object.keys(p) as DropReason[]) {
      const ev: DropEvent = { topic: this.topic.name, endpoint: this.id, reason, count: p[reason]!, total: this.dropped }
      this.emit('drop', ev)
      this.topic.report('drop', ev)
    }
  }

  private deadlineMissed(totalCount: number): void {
    const ev = { topic: this.topic.name, side: 'subscriber' as const, endpoint: this.id, deadlineMs: this.qos.deadlineMs, totalCount }
    this.emit('deadline-missed', ev)
    this.topic.report('deadline-missed', ev)
  }

  /** @internal A callback threw or its promise rejected. */
  fail(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
    else if (this.topic.listenerCount('error') > 0) this.topic.emit('error', err)
    else
      process.nextTick(() => {
        throw err
      })
  }

  // ---- async iterator ------------------------------------------------------

  next(): Promise<IteratorResult<Message<T>>> {
    if (this.kind !== 'iterator') return Promise.reject(onbusError('ERR_ONBUS_NOT_ITERABLE', 'This subscription has a callback; subscribe without one to iterate'))
    const q = this.q
    if (q !== null && q.size > 0) {
      const i = q.shift()
      const msg: Message<T> = { data: q.data[i] as T, meta: { seq: q.seq[i], source: q.src[i], rxTime: q.rx[i], publishTime: q.t[i] } }
      this.meta.t = q.t[i]
      q.release(i)
      this.delivered++
      this.afterDequeue()
      return Promise.resolve({ value: msg, done: false })
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true })
    if (this.waiter) return Promise.reject(onbusError('ERR_ONBUS_CONCURRENT_NEXT', 'next() called again before the previous call resolved'))
    return new Promise((resolve) => (this.waiter = resolve))
  }

  return(): Promise<IteratorResult<Message<T>>> {
    this.close()
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  // ---- lifecycle and figures -------------------------------------------------

  /** Counters of this subscription. */
  stats(): SubscriptionStats {
    return {
      received: this.received,
      delivered: this.delivered,
      queued: this.q?.size ?? 0,
      dropped: this.dropped,
      deadlineMissed: this.watchdog?.misses ?? 0,
      blocking: this.full,
    }
  }

  get closedState(): boolean {
    return this.closed
  }

  /** Stops delivery, ends the iterator, unblocks publishers. Idempotent; `'close'` follows on the next tick. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.direct = false
    this.watchdog?.stop()
    this.abortCleanup?.()
    if (this.full) this.setFull(false)
    this.topic.removeSubscription(this as Subscription<unknown>)
    this.q?.clear()
    if (this.waiter) {
      const w = this.waiter
      this.waiter = null
      w({ value: undefined, done: true })
    }
    this.flushDrops()
    process.nextTick(() => this.emit('close'))
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
