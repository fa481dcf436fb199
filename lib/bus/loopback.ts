/**
 * The reference transport: two buses of one process, connected through the
 * same calls a cross-process transport makes (announce endpoints, proxies for
 * remote publishers, one forwarder per topic with remote subscribers, encoded
 * bytes in between, back-pressure both ways). Useful to test modules that will
 * later run in separate processes, and as the model for the native transport.
 */
import type { Meta } from './meta.js'
import type { Publisher } from './publisher.js'
import type { EndpointDescriptor, Forwarder, Topic } from './topic.js'
import type { Transport, TransportHost } from './transport.js'

interface Pending {
  proxy: Publisher<unknown>
  bytes: Uint8Array
  meta: { seq: number; publishTime: number; rxTime?: bigint; source: string }
  historical: boolean
}

interface Outbound {
  forwarder: Forwarder
  /** Remote subscriber ids on this topic. */
  subs: Set<string>
}

class LoopbackEnd implements Transport {
  peer!: LoopbackEnd
  private host: TransportHost | null = null
  private readonly remote = new Map<string, EndpointDescriptor>()
  private readonly proxies = new Map<string, Publisher<unknown>>()
  private readonly outbound = new Map<string, Outbound>()
  /** Messages a local reliable subscriber refused, per forwarder of the peer, waiting for `ready()`. */
  private readonly waiting = new Map<Forwarder, Pending[]>()
  private closed = false
  private readonly listeners: [string, (...a: never[]) => void][] = []

  constructor(readonly name: string) {}

  start(host: TransportHost): void {
    this.host = host
    const on = <A extends unknown[]>(ev: string, fn: (...a: A) => void): void => {
      host.on(ev as 'topic', fn as never)
      this.listeners.push([ev, fn as never])
    }
    on('topic', (t: Topic<unknown>) => this.localTopic(t))
    on('endpoint-added', (d: EndpointDescriptor) => this.peer.remoteAdded(d))
    on('endpoint-removed', (d: EndpointDescriptor) => this.peer.remoteRemoved(d))
    on('liveliness', (d: EndpointDescriptor) => this.peer.proxies.get(d.id)?.assertLiveliness())
    for (const t of host.topics()) {
      this.localTopic(t)
      for (const d of t.endpoints()) this.peer.remoteAdded(d)
    }
  }

  private topic(name: string): Topic<unknown> | undefined {
    return this.host?.topics().find((t) => t.name === name && !t.closedState)
  }

  private localTopic(t: Topic<unknown>): void {
    for (const d of this.remote.values()) if (d.topic === t.name) this.apply(t, d)
  }

  /** The peer announced an endpoint. */
  remoteAdded(d: EndpointDescriptor): void {
    if (this.closed) return
    this.remote.set(d.id, d)
    const t = this.topic(d.topic)
    if (t) this.apply(t, d)
  }

  private apply(t: Topic<unknown>, d: EndpointDescriptor): void {
    // Same name, other wire format: these are not the same topic.
    if (t.codec.name !== d.codec) return
    if (d.kind === 'publisher') {
      if (!this.proxies.has(d.id)) this.proxies.set(d.id, t.createRemotePublisher({ id: d.id, source: d.source ?? d.id, qos: d.qos, transport: this.name }))
      return
    }
    let out = this.outbound.get(t.name)
    if (!out) {
      const forwarder: Forwarder = t.createForwarder({ transport: this.name }, (bytes, meta, publisherId, historical) =>
        this.peer.receive(forwarder, publisherId, bytes, meta, historical),
      )
      out = { forwarder, subs: new Set() }
      this.outbound.set(t.name, out)
    }
    out.subs.add(d.id)
  }

  /** The peer's endpoint went away. */
  remoteRemoved(d: EndpointDescriptor): void {
    this.remote.delete(d.id)
    if (d.kind === 'publisher') {
      this.proxies.get(d.id)?.close()
      this.proxies.delete(d.id)
      return
    }
    const out = this.outbound.get(d.topic)
    if (out && out.subs.delete(d.id) && out.subs.size === 0) {
      out.forwarder.close()
      this.outbound.delete(d.topic)
    }
  }

  /** A message from the peer's forwarder. Returns false ("taken, stop") when a local reliable subscriber pushes back. */
  receive(from: Forwarder, publisherId: string, bytes: Uint8Array, meta: Meta, historical: boolean): boolean {
    const proxy = this.proxies.get(publisherId)
    if (!proxy || proxy.closedState) return true
    const m = { seq: meta.seq, publishTime: meta.stamp(), rxTime: meta.rxTime, source: meta.source }
    const queue = this.waiting.get(from)
    if (queue) {
      queue.push({ proxy, bytes, meta: m, historical })
      return false
    }
    if (proxy.publishEncoded(bytes, m, historical)) return true
    this.waiting.set(from, [{ proxy, bytes, meta: m, historical }])
    void this.retry(from)
    return false
  }

  private async retry(from: Forwarder): Promise<void> {
    const queue = this.waiting.get(from)!
    while (queue.length > 0) {
      const p = queue[0]
      if (p.proxy.closedState) {
        queue.shift()
        continue
      }
      try {
        await p.proxy.ready()
      } catch {
        continue // proxy closed: the loop drops its messages
      }
      if (p.proxy.publishEncoded(p.bytes, p.meta, p.historical)) queue.shift()
    }
    this.waiting.delete(from)
    from.resume()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    for (const [ev, fn] of this.listeners) this.host?.off(ev, fn as (...a: unknown[]) => void)
    for (const p of this.proxies.values()) p.close()
    for (const o of this.outbound.values()) o.forwarder.close()
    this.proxies.clear()
    this.outbound.clear()
    this.remote.clear()
    this.peer.close()
  }
}

/**
 * Two ends of an in-process transport: add one to each bus.
 * @example
 * const [a, b] = createLoopbackTransportPair()
 * busA.addTransport(a); busB.addTransport(b)
 */
export function createLoopbackTransportPair(name = 'loopback'): [Transport, Transport] {
  const a = new LoopbackEnd(`${name}:a`)
  const b = new LoopbackEnd(`${name}:b`)
  a.peer = b
  b.peer = a
  return [a, b]
}
