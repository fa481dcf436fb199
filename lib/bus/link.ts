/**
 * Links and topics: a link feeding a topic (`topic.attach(link)`), a topic
 * feeding a link (`topic.sendTo(link)`). Both use only the links' public API
 * (`onBatch`, `send`, `'drain'`), described here structurally so any link
 * with that shape fits (UDP today; stream and serial links later).
 */
import { invalidArgType } from '../errors.js'
import { now } from '../time.js'
import type { DropEvent, DropReason } from './events.js'
import type { Meta } from './meta.js'
import type { Publisher } from './publisher.js'
import type { QoS } from './qos.js'
import type { Subscription } from './subscription.js'
import type { Topic } from './topic.js'

/** What the bus reads from a link's batch (a `UdpBatch` has it). Views are valid only during the handler, so the bus copies. */
export interface BatchLike {
  readonly length: number
  copy(i: number): Uint8Array
  rxTime(i: number): bigint | undefined
  address?(i: number): string
  port?(i: number): number
}

/** A link that delivers batches (a `UdpLink` is one). */
export interface BatchSource {
  onBatch(handler: (batch: BatchLike) => void): () => void
  address?(): { address: string; port: number }
  once?(event: 'close', listener: () => void): unknown
  removeListener?(event: 'close', listener: () => void): unknown
}

/** A link that sends datagrams (a `UdpLink` is one): `send()` returns false when it queued behind a full kernel buffer, then `'drain'` follows; `'close'` ends the feed. */
export interface DatagramSink {
  send(data: Uint8Array, port?: number, address?: string): boolean
  on(event: 'drain' | 'close', listener: () => void): unknown
  removeListener(event: 'drain' | 'close', listener: () => void): unknown
}

/** Options of `topic.attach()`. */
export interface AttachOptions {
  /** Publisher name; also used as `meta.source` for every message instead of the datagram's sender. */
  name?: string
  /** Offered QoS of the attachment's publisher (default: the topic's). */
  qos?: Partial<QoS>
}

/** Counters of an attachment. */
export interface AttachmentStats {
  /** Datagrams published on the topic. */
  published: number
  /** Datagrams dropped because a reliable subscriber pushed back (a link cannot wait). */
  blocked: number
  /** Datagrams the codec could not decode. */
  decodeErrors: number
}

/** A link feeding a topic. */
export interface Attachment {
  /** The publisher that stands for the link on the topic (liveliness, deadline and introspection apply to it). */
  readonly publisher: Publisher<unknown>
  stats(): AttachmentStats
  /** Stops feeding the topic and closes the publisher. Idempotent; happens by itself when the link closes. */
  detach(): void
}

/** Options of `topic.sendTo()`. */
export interface SendToOptions {
  /** Destination port (omit for a connected link). */
  port?: number
  /** Destination address (default: the link's loopback). */
  address?: string
  /** Requested QoS of the sending subscriber (default: the topic's). */
  qos?: Partial<QoS>
  name?: string
}

/** Coalesces drops at an attachment into one `'drop'` event per reason and tick. */
class DropReporter {
  private pending: Partial<Record<DropReason, number>> | null = null
  total = 0
  constructor(
    private readonly topic: Topic<unknown>,
    private readonly endpoint: string,
  ) {}
  add(reason: DropReason): void {
    this.total++
    this.topic.drops++
    if (this.pending === null) {
      this.pending = {}
      process.nextTick(() => this.flush())
    }
    this.pending[reason] = (this.pending[reason] ?? 0) + 1
  }
  flush(): void {
    const p = this.pending
    this.pending = null
    if (!p) return
    for (const reason of Object.keys(p) as DropReason[]) {
      const ev: DropEvent = { topic: this.topic.name, endpoint: this.endpoint, reason, count: p[reason]!, total: this.total }
      this.topic.report('drop', ev)
    }
  }
}

/** @internal `topic.attach()` */
export function attachSource<T>(topic: Topic<T>, source: BatchSource, opts: AttachOptions): Attachment {
  if (source === null || typeof source !== 'object' || typeof source.onBatch !== 'function')
    throw invalidArgType('source', 'a link with onBatch()', source)
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  let name = opts.name
  if (name === undefined && typeof source.address === 'function') {
    try {
      const a = source.address()
      name = `udp:${a.address}:${a.port}`
    } catch {
      // a closed or unbound link has no address: use the default name
    }
  }
  const pub = topic.publisher({ name, qos: opts.qos })
  const fixedSource = opts.name
  const codec = topic.codec
  const drops = new DropReporter(topic as Topic<unknown>, pub.id)
  let published = 0
  let blocked = 0
  let decodeErrors = 0
  let lastAddr = ''
  let lastPort = -1
  let lastSrc = pub.source
  let countdown = 1
  let detached = false

  const handler = (b: BatchLike): void => {
    const n = b.length
    const perSender = fixedSource === undefined && typeof b.address === 'function' && typeof b.port === 'function'
    for (let i = 0; i < n && !detached; i++) {
      let value: T
      try {
        value = codec.decode(b.copy(i))
      } catch {
        decodeErrors++
        drops.add('decode-error')
        continue
      }
      if (perSender) {
        const a = b.address!(i)
        const p = b.port!(i)
        if (a !== lastAddr || p !== lastPort) {
          lastAddr = a
          lastPort = p
          lastSrc = `udp:${a}:${p}`
        }
      }
      const rx = b.rxTime(i)
      if (rx !== undefined && --countdown <= 0) {
        countdown = topic.sampleEvery
        topic.rxLatency.record(Number(now('realtime') - rx))
      }
      if (pub.publishFrom(value, lastSrc, rx)) published++
      else {
        blocked++
        drops.add('publisher-blocked')
      }
    }
  }
  const off = source.onBatch(handler)
  const onClose = (): void => detach()
  source.once?.('close', onClose)
  function detach(): void {
    if (detached) return
    detached = true
    off()
    source.removeListener?.('close', onClose)
    drops.flush()
    pub.close()
  }
  return {
    publisher: pub as Publisher<unknown>,
    stats: () => ({ published, blocked, decodeErrors }),
    detach,
  }
}

/**
 * Attaches a link to a topic: `attachLink(udpLink, topic)` is
 * `topic.attach(udpLink)`. For a `publishTo` method on a link:
 * `publishTo(topic, opts) { return attachLink(this, topic, opts) }`.
 */
export function attachLink<T>(link: BatchSource, topic: Topic<T>, opts: AttachOptions = {}): Attachment {
  return topic.attach(link, opts)
}

/** @internal `topic.sendTo()` */
export function sendToSink<T>(topic: Topic<T>, sink: DatagramSink, opts: SendToOptions): Subscription<T> {
  if (sink === null || typeof sink !== 'object' || typeof sink.send !== 'function' || typeof sink.on !== 'function')
    throw invalidArgType('link', 'a link with send() and a drain event', sink)
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  const codec = topic.codec
  const { port, address } = opts
  const sub = topic.sinkSubscription(opts.name, opts.qos, (data: T, _meta: Meta) => sink.send(codec.encode(data), port, address))
  const onDrain = (): void => sub.resume()
  // A closed link ends the feed (rather than every later message failing in send()).
  const onClose = (): void => sub.close()
  sink.on('drain', onDrain)
  sink.on('close', onClose)
  sub.once('close', () => {
    sink.removeListener('drain', onDrain)
    sink.removeListener('close', onClose)
  })
  return sub
}
