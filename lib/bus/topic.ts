/**
 * A typed topic: its declared QoS, its codec, its publishers and subscribers,
 * the request/offer matching between them, the history late joiners get, and
 * the figures introspection reports.
 */
import { EventEmitter } from 'node:events'
import type { Codec } from '../codecs/codec.js'
import { invalidArgType, onbusError } from '../errors.js'
import type { Bus } from './bus.js'
import type { QosMismatchEvent, MatchEvent } from './events.js'
import { attachSource, sendToSink, type Attachment, type AttachOptions, type BatchSource, type DatagramSink, type SendToOptions } from './link.js'
import type { Meta } from './meta.js'
import { Publisher, type PublisherOptions } from './publisher.js'
import { qosConflicts, resolveQoS, type QoS } from './qos.js'
import { MessageRing } from './ring.js'
import { LatencyHistogram } from './stats.js'
import { Subscription, type MessageHandler, type SubscribeOptions } from './subscription.js'

/** How a transport or introspection describes one endpoint. */
export interface EndpointDescriptor {
  id: string
  kind: 'publisher' | 'subscriber'
  topic: string
  codec: string
  qos: Readonly<QoS>
  /** Publishers: `meta.source` of their messages. */
  source?: string
  /** Proxies: the transport they stand for. */
  remote?: string
}

/** One publisher as introspection shows it. */
export interface PublisherInfo {
  id: string
  source: string
  qos: Readonly<QoS>
  remote: string | undefined
  matched: string[]
  published: number
  refused: number
  blocked: boolean
  alive: boolean
  deadlineMissed: number
}

/** One subscriber as introspection shows it. */
export interface SubscriberInfo {
  id: string
  kind: 'callback' | 'iterator' | 'sink'
  qos: Readonly<QoS>
  /** Set for a transport's forwarder. */
  forwarder: string | undefined
  matched: string[]
  received: number
  delivered: number
  queued: number
  dropped: number
  deadlineMissed: number
  blocking: boolean
}

/** Latency quantiles in nanoseconds over the last 5–10 s of samples; null without samples. */
export interface LatencyFigures {
  p50: number | null
  p99: number | null
  samples: number
}

/** A topic's figures. Rates are over the last complete second. */
export interface TopicStats {
  published: number
  /** Bytes published, where the codec can tell a value's size without encoding (raw, FlatBuffers); otherwise null. */
  bytes: number | null
  /** Messages per second. */
  rate: number
  /** Bytes per second, or null (see `bytes`). */
  bandwidth: number | null
  /** Publish → subscriber delivery, sampled (at most a few hundred samples a second). */
  latency: LatencyFigures
  /** Kernel receive → publish, for messages from links (sampled). */
  rxLatency: LatencyFigures
  /** Messages dropped by subscriber queues and attachments. */
  drops: number
  /** `publish()` calls refused by back-pressure. */
  refused: number
}

/** Everything introspection knows about a topic. */
export interface TopicInfo {
  name: string
  codec: string
  qos: Readonly<QoS>
  publishers: PublisherInfo[]
  subscribers: SubscriberInfo[]
  /** Publisher/subscriber pairs that do not talk because of their QoS. */
  mismatches: QosMismatchEvent[]
  stats: TopicStats
}

/** Options of `topic.createForwarder()` (transports). */
export interface ForwarderOptions {
  /** The transport's name. */
  transport: string
  /** Messages that may wait while the sink says "stop"; beyond that reliable publishers are blocked and best-effort messages dropped. Default: the topic's depth. */
  depth?: number
}

/**
 * The sink of a transport's forwarder: encoded bytes of one local message, the
 * publisher it came from, and whether it is a history replay. Return `false`
 * to say "taken, but stop": the bus queues what follows until `resume()`.
 */
export type ForwarderSink = (bytes: Uint8Array, meta: Meta, publisherId: string, historical: boolean) => boolean

/** A forwarder (transport side): call `resume()` after the sink returned false; `close()` when the remote side goes. */
export interface Forwarder {
  readonly id: string
  resume(): void
  close(): void
}

const SAMPLES_PER_SECOND = 256

/**
 * Created by `bus.topic()`. Events (each also emitted on the bus):
 * `'qos-mismatch'`, `'deadline-missed'`, `'publisher-lost'`,
 * `'publisher-alive'`, `'drop'`; `'error'` for subscriber callbacks that
 * threw when the subscription has no `'error'` listener of its own.
 */
export class Topic<T> extends EventEmitter {
  readonly name: string
  readonly codec: Codec<T>
  /** The declared QoS: what publishers offer and subscribers request unless they say otherwise. */
  readonly qos: Readonly<QoS>
  readonly bus: Bus
  /** @internal */ published = 0
  /** @internal */ bytes = 0
  /** @internal */ drops = 0
  /** @internal */ refused = 0
  /** @internal */ readonly sizeOf: ((value: T) => number) | null
  /** @internal */ sampleEvery = 16
  /** @internal */ sampleCountdown = 1
  private samplesInWindow = 0
  /** @internal */ readonly latency = new LatencyHistogram()
  /** @internal */ readonly rxLatency = new LatencyHistogram()
  private publishers: Publisher<T>[] = []
  private subscriptions: Subscription<T>[] = []
  private mismatches: QosMismatchEvent[] = []
  private history: MessageRing | null = null
  private defaultPublisher: Publisher<T> | null = null
  private closed = false
  private lastPublished = 0
  private lastBytes = 0
  private rate = 0
  private bandwidth = 0
  private ticks = 0

  /** @internal use `bus.topic()` */
  constructor(bus: Bus, name: string, codec: Codec<T>, qos: Readonly<QoS>) {
    super()
    this.bus = bus
    this.name = name
    this.codec = codec
    this.qos = qos
    this.sizeOf = codec.byteLength ? codec.byteLength.bind(codec) : null
  }

  private live(): void {
    if (this.closed) throw onbusError('ERR_ONBUS_CLOSED', `Topic '${this.name}' is closed`)
  }

  /**
   * A publisher on this topic, offering the topic's QoS unless `qos` overrides fields.
   * @example
   * const pub = topic.publisher({ name: 'lidar-front', qos: { livelinessLeaseMs: 200 } })
   * pub.publish(scan)
   */
  publisher(opts: PublisherOptions = {}): Publisher<T> {
    this.live()
    if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
    if (opts.name !== undefined && typeof opts.name !== 'string') throw invalidArgType('options.name', 'of type string', opts.name)
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal)
    const qos = resolveQoS(this.qos, opts.qos, 'options.qos')
    const id = `${this.bus.name}/${this.name}#p${this.bus._nextId()}`
    const p = new Publisher<T>(this, id, opts.name ?? id, qos, { signal: opts.signal })
    this.addPublisher(p)
    this.bus._host.emit('endpoint-added', this.describePublisher(p as Publisher<unknown>))
    return p
  }

  /**
   * Publishes through the topic's default publisher (created on first use,
   * with the topic's QoS). Same contract as `Publisher.publish()`.
   */
  publish(data: T): boolean {
    if (this.defaultPublisher === null) this.defaultPublisher = this.publisher({ name: `${this.bus.name}/${this.name}` })
    return this.defaultPublisher.publish(data)
  }

  /**
   * Subscribes with a callback, or (without one) as an async iterator.
   *
   * The callback gets `(data, meta)`; `meta` is reused and valid until the
   * callback returns. A callback that returns a promise gets the next message
   * after it settles; meanwhile messages wait in its queue (`qos.depth`,
   * `qos.overflow`).
   * @example
   * topic.subscribe((scan, meta) => detect(scan, meta.rxTime), { qos: { deadlineMs: 150 } })
   * for await (const { data, meta } of topic.subscribe({ signal })) plan(data)
   */
  subscribe(handler: MessageHandler<T>, opts?: SubscribeOptions): Subscription<T>
  subscribe(opts?: SubscribeOptions): Subscription<T>
  subscribe(a?: MessageHandler<T> | SubscribeOptions, b?: SubscribeOptions): Subscription<T> {
    this.live()
    const handler = typeof a === 'function' ? a : null
    const opts = (typeof a === 'function' ? b : a) ?? {}
    if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
    if (opts.name !== undefined && typeof opts.name !== 'string') throw invalidArgType('options.name', 'of type string', opts.name)
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal)
    const qos = resolveQoS(this.qos, opts.qos, 'options.qos')
    const id = opts.name ?? `${this.bus.name}/${this.name}#s${this.bus._nextId()}`
    const s = new Subscription<T>(this, id, qos, handler ? 'callback' : 'iterator', handler, { signal: opts.signal })
    this.addSubscription(s)
    this.bus._host.emit('endpoint-added', this.describeSubscriber(s as Subscription<unknown>))
    return s
  }

  /**
   * Feeds this topic from a link: every datagram is copied out of the link's
   * batch, decoded with the topic's codec and published with the kernel
   * receive time (`meta.rxTime`) and its sender (`meta.source`,
   * `udp:<address>:<port>`). One line per link:
   * @example
   * topic.attach(udpLink)       // or attachLink(udpLink, topic)
   */
  attach(source: BatchSource, opts: AttachOptions = {}): Attachment {
    this.live()
    return attachSource(this, source, opts)
  }

  /**
   * Feeds a link from this topic: every message is encoded with the topic's
   * codec and sent with `link.send()`. While the link's kernel buffer is full
   * (`send()` returned false), messages wait in a queue of the topic's depth
   * (reliable topics with `overflow: 'block'` push back on publishers; others
   * drop as their overflow says) until the link's `'drain'`.
   * @example
   * commands.sendTo(mavlinkUdp, { port: 14550, address: '127.0.0.1' })
   */
  sendTo(sink: DatagramSink, opts: SendToOptions = {}): Subscription<T> {
    this.live()
    return sendToSink(this, sink, opts)
  }

  /** @internal A subscriber whose callback is a sink (returns false for "stop"; `resume()` restarts it). */
  sinkSubscription(name: string | undefined, qos: Partial<QoS> | undefined, cb: (data: T, meta: Meta) => boolean): Subscription<T> {
    this.live()
    const q = resolveQoS(this.qos, qos, 'options.qos')
    const id = name ?? `${this.bus.name}/${this.name}#s${this.bus._nextId()}`
    const s = new Subscription<T>(this, id, q, 'sink', cb as MessageHandler<T>, {})
    this.addSubscription(s)
    this.bus._host.emit('endpoint-added', this.describeSubscriber(s as Subscription<unknown>))
    return s
  }

  // ---- matching ------------------------------------------------------------

  private addPublisher(p: Publisher<T>): void {
    this.publishers = [...this.publishers, p]
    for (const s of this.subscriptions) this.tryMatch(p, s)
  }

  private addSubscription(s: Subscription<T>): void {
    this.subscriptions = [...this.subscriptions, s]
    for (const p of this.publishers) this.tryMatch(p, s)
    this.replayHistory(s)
  }

  private tryMatch(p: Publisher<T>, s: Subscription<T>): void {
    if (s.forwarder !== undefined) {
      // A forwarder carries local messages out; what came in through a
      // transport must not go back out (loops).
      if (p.remote !== undefined) return
    } else {
      const conflicts = qosConflicts(s.qos, p.qos)
      if (conflicts.length > 0) {
        const ev: QosMismatchEvent = { topic: this.name, publisher: p.id, subscriber: s.id, conflicts }
        this.mismatches.push(ev)
        // Next tick, so that listeners attached right after publisher()/subscribe() returned hear it.
        process.nextTick(() => {
          p.emit('qos-mismatch', ev)
          s.emit('qos-mismatch', ev)
          this.report('qos-mismatch', ev)
        })
        return
      }
    }
    p.matched = [...p.matched, s as Subscription<unknown>]
    s.matched = [...s.matched, p as Publisher<unknown>]
    if (s.full && p.qos.reliability === 'reliable') p.block()
    const ev: MatchEvent = { topic: this.name, publisher: p.id, subscriber: s.id }
    process.nextTick(() => {
      p.emit('matched', ev)
      s.emit('matched', ev)
    })
  }

  /** @internal */
  removePublisher(p: Publisher<unknown>): void {
    if (!this.publishers.includes(p as Publisher<T>)) return
    this.publishers = this.publishers.filter((x) => x !== p)
    if (this.defaultPublisher === p) this.defaultPublisher = null
    this.mismatches = this.mismatches.filter((m) => m.publisher !== p.id)
    for (const s of p.matched) {
      s.matched = s.matched.filter((x) => x !== p)
      const ev: MatchEvent = { topic: this.name, publisher: p.id, subscriber: s.id }
      process.nextTick(() => s.emit('unmatched', ev))
    }
    p.matched = []
    if (!p.remote) this.bus._host.emit('endpoint-removed', this.describePublisher(p))
  }

  /** @internal */
  removeSubscription(s: Subscription<unknown>): void {
    if (!this.subscriptions.includes(s as Subscription<T>)) return
    this.subscriptions = this.subscriptions.filter((x) => x !== s)
    this.mismatches = this.mismatches.filter((m) => m.subscriber !== s.id)
    for (const p of s.matched) {
      p.matched = p.matched.filter((x) => x !== s)
      const ev: MatchEvent = { topic: this.name, publisher: p.id, subscriber: s.id }
      process.nextTick(() => p.emit('unmatched', ev))
    }
    s.matched = []
    if (!s.forwarder) this.bus._host.emit('endpoint-removed', this.describeSubscriber(s))
  }

  // ---- durability ----------------------------------------------------------

  /** @internal Keeps the last `depth` messages of transient-local publishers for late joiners. */
  record(data: T, m: Meta): void {
    const h = (this.history ??= new MessageRing(this.qos.depth))
    if (h.size >= h.max) h.release(h.shift())
    h.push(data, m.seq, m.stamp(), m.source, m.rxTime, m.pub, false)
  }

  private replayHistory(s: Subscription<T>): void {
    const h = this.history
    if (h === null || h.size === 0 || s.qos.durability !== 'transient-local') return
    const picked: number[] = []
    for (let k = 0; k < h.size; k++) {
      const i = h.at(k)
      const p = h.pub[i]
      if (p === null) continue
      if (s.forwarder !== undefined ? p.remote === undefined : qosConflicts(s.qos, p.qos).length === 0) picked.push(i)
    }
    for (const i of picked.slice(-s.qos.depth)) s.replay(h.data[i] as T, h.seq[i], h.t[i], h.src[i], h.rx[i], h.pub[i])
  }

  // ---- transports ------------------------------------------------------------

  /**
   * Transport side: a stand-in for a publisher in another process. Local
   * subscribers match it by its offered QoS like any publisher (mismatches are
   * reported here, on the subscriber's side); its lease is watched here, fed by
   * `publishEncoded()` and `assertLiveliness()`.
   */
  createRemotePublisher(d: { id: string; source: string; qos: Partial<QoS>; transport: string }): Publisher<T> {
    this.live()
    const qos = resolveQoS(this.qos, d.qos, 'qos')
    const p = new Publisher<T>(this, d.id, d.source, qos, { remote: d.transport })
    this.addPublisher(p)
    return p
  }

  /**
   * Transport side: receives every message of this topic's local publishers
   * (never those that came in through a transport), encoded, with the id of
   * the publisher and a flag for history replays, for as long as the remote
   * side has subscribers. It replays the topic's history first (flagged), so
   * that remote transient-local subscribers get it. No QoS check happens here:
   * the remote side matches its subscribers against the publishers it was
   * told about.
   */
  createForwarder(opts: ForwarderOptions, sink: ForwarderSink): Forwarder {
    this.live()
    const codec = this.codec
    const qos: QoS = Object.freeze({
      reliability: 'reliable',
      depth: opts.depth ?? this.qos.depth,
      overflow: 'block',
      durability: 'transient-local',
      deadlineMs: Infinity,
      livelinessLeaseMs: Infinity,
    })
    const id = `${this.bus.name}/${this.name}#f${this.bus._nextId()}`
    const s = new Subscription<T>(this, id, qos, 'sink', (data, meta) => sink(codec.encode(data), meta as Meta, (meta as Meta).pub!.id, (meta as Meta).historical), {
      forwarder: opts.transport,
    })
    this.addSubscription(s)
    return s
  }

  /** @internal */
  describePublisher(p: Publisher<unknown>): EndpointDescriptor {
    return { id: p.id, kind: 'publisher', topic: this.name, codec: this.codec.name, qos: p.qos, source: p.source, remote: p.remote }
  }

  /** @internal */
  describeSubscriber(s: Subscription<unknown>): EndpointDescriptor {
    return { id: s.id, kind: 'subscriber', topic: this.name, codec: this.codec.name, qos: s.qos, remote: s.remote }
  }

  /** Local publishers and subscribers (not proxies, not forwarders), as a transport announces them. */
  endpoints(): EndpointDescriptor[] {
    const out: EndpointDescriptor[] = []
    for (const p of this.publishers) if (!p.remote && !p.closedState) out.push(this.describePublisher(p as Publisher<unknown>))
    for (const s of this.subscriptions) if (!s.forwarder && !s.remote && !s.closedState) out.push(this.describeSubscriber(s as Subscription<unknown>))
    return out
  }

  // ---- figures -----------------------------------------------------------------

  /** @internal Emits on the topic and the bus. */
  report(event: string, payload: unknown): void {
    if (this.listenerCount(event) > 0) this.emit(event, payload)
    this.bus._report(event, payload)
  }

  /**
   * @internal Marks `m` as a latency sample and stamps it. Sampling backs off
   * by itself within a burst (the interval doubles after every
   * SAMPLES_PER_SECOND samples), so a burst after an idle second costs a few
   * thousand clock reads at most, not one per message.
   */
  sample(m: Meta): void {
    this.sampleCountdown = this.sampleEvery
    m.sampled = true
    m.stamp()
    if (++this.samplesInWindow >= SAMPLES_PER_SECOND && this.sampleEvery < 1 << 16) {
      this.samplesInWindow = 0
      this.sampleEvery *= 2
    }
  }

  /** @internal Called by the bus once a second. */
  tick(dtMs: number): void {
    const dt = dtMs / 1000
    this.rate = (this.published - this.lastPublished) / dt
    this.bandwidth = (this.bytes - this.lastBytes) / dt
    this.lastPublished = this.published
    this.lastBytes = this.bytes
    // Sample a bounded number of messages per second whatever the rate.
    let every = 1
    while (every * SAMPLES_PER_SECOND < this.rate && every < 1 << 16) every *= 2
    this.sampleEvery = every
    this.samplesInWindow = 0
    if (++this.ticks % 5 === 0) {
      this.latency.rotate()
      this.rxLatency.rotate()
    }
  }

  /** Figures of this topic. */
  stats(): TopicStats {
    const fig = (h: LatencyHistogram): LatencyFigures => ({ p50: h.quantile(0.5), p99: h.quantile(0.99), samples: h.count })
    return {
      published: this.published,
      bytes: this.sizeOf ? this.bytes : null,
      rate: this.rate,
      bandwidth: this.sizeOf ? this.bandwidth : null,
      latency: fig(this.latency),
      rxLatency: fig(this.rxLatency),
      drops: this.drops,
      refused: this.refused,
    }
  }

  /** Publishers, subscribers, mismatches and figures of this topic. */
  info(): TopicInfo {
    return {
      name: this.name,
      codec: this.codec.name,
      qos: this.qos,
      publishers: this.publishers.map((p) => {
        const st = p.stats()
        return {
          id: p.id,
          source: p.source,
          qos: p.qos,
          remote: p.remote,
          matched: p.matched.map((s) => s.id),
          published: st.published,
          refused: st.refused,
          blocked: st.blockedBy > 0,
          alive: st.alive,
          deadlineMissed: st.deadlineMissed,
        }
      }),
      subscribers: this.subscriptions.map((s) => {
        const st = s.stats()
        return {
          id: s.id,
          kind: s.kind,
          qos: s.qos,
          forwarder: s.forwarder,
          matched: s.matched.map((p) => p.id),
          received: st.received,
          delivered: st.delivered,
          queued: st.queued,
          dropped: st.dropped,
          deadlineMissed: st.deadlineMissed,
          blocking: st.blocking,
        }
      }),
      mismatches: [...this.mismatches],
      stats: this.stats(),
    }
  }

  get closedState(): boolean {
    return this.closed
  }

  /** Closes every publisher and subscriber of this topic and removes it from the bus. */
  close(): void {
    if (this.closed) return
    // Publishers first, so that their pending ready() calls reject instead of
    // resolving when the subscribers that blocked them go away.
    for (const p of this.publishers) p.close()
    for (const s of this.subscriptions) s.close()
    this.closed = true
    this.history?.clear()
    this.bus._removeTopic(this as Topic<unknown>)
    process.nextTick(() => this.emit('close'))
  }
}
