/**
 * The seam for carrying topics between processes (and, later, machines).
 *
 * A transport is handed a {@link TransportHost} when it is added to a bus. It
 * learns the bus's topics and local endpoints from it, tells its peers, and
 * does two things on each topic:
 *
 * - for each publisher a peer announces, it creates a proxy with
 *   `topic.createRemotePublisher()` and feeds it with `publishEncoded()`
 *   (remote sequence number, source and publish stamp are kept). Local
 *   subscribers match the proxy by its offered QoS, so QoS mismatches,
 *   deadlines and liveliness are judged on the subscriber's side, as in DDS;
 * - while a peer has subscribers on the topic, it holds one forwarder from
 *   `topic.createForwarder()`, which hands it every message of the local
 *   publishers, encoded, with the publisher's id. The forwarder replays the
 *   topic's history first, flagged `historical`, and the far side delivers
 *   those only to transient-local subscribers.
 *
 * Back-pressure crosses the seam in both directions: a proxy's
 * `publishEncoded()` returns false while a local reliable subscriber is full
 * (wait for `proxy.ready()`), and a forwarder's sink returns false to say
 * "stop" (the bus queues, then blocks reliable publishers, until `resume()`).
 *
 * `createLoopbackTransportPair()` is the reference implementation, between two
 * buses of one process; the Unix-socket / shared-memory transport follows the
 * same calls (docs/BUS.md).
 */
import { EventEmitter } from 'node:events'
import type { EndpointDescriptor, Topic } from './topic.js'

/** What a transport sees of a bus. Events: `'topic'` (a new topic), `'endpoint-added'`, `'endpoint-removed'` (local endpoints only), `'liveliness'` (a local publisher's explicit `assertLiveliness()`). */
export interface TransportHost {
  readonly busName: string
  topics(): Topic<unknown>[]
  on(event: 'topic', listener: (topic: Topic<unknown>) => void): this
  on(event: 'endpoint-added' | 'endpoint-removed' | 'liveliness', listener: (endpoint: EndpointDescriptor) => void): this
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): this
}

/** A transport: `bus.addTransport(t)` calls `start()` once; `bus.close()` calls `close()`. */
export interface Transport {
  readonly name: string
  start(host: TransportHost): void
  close(): void | Promise<void>
}

/** @internal */
export class TransportHostImpl extends EventEmitter implements TransportHost {
  constructor(
    readonly busName: string,
    private readonly list: () => Topic<unknown>[],
  ) {
    super()
  }
  topics(): Topic<unknown>[] {
    return this.list()
  }
}
