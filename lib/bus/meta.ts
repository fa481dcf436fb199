/**
 * Per-message metadata.
 */
import { monotonicNs } from './clock.js'
import type { Publisher } from './publisher.js'

/**
 * What the bus knows about one message.
 *
 * Lifetime: the object a subscriber callback receives is reused for the next
 * message; it is valid until the callback returns (the same rule as a UDP
 * batch). Keep what you need (`meta.seq`), or `copyMeta(meta)`. The async
 * iterator hands out objects that are yours to keep.
 */
export interface MessageMeta {
  /** Per-publisher sequence number, from 1. A gap means messages that publisher sent did not reach you (see the drop counts). */
  readonly seq: number
  /** Who published: the publisher's name (default `<bus>/<topic>#<n>`), `udp:<address>:<port>` for a link, or what a transport says. */
  readonly source: string
  /** Kernel receive time in nanoseconds (CLOCK_REALTIME, bigint) when the message came from a link; `undefined` otherwise. */
  readonly rxTime: bigint | undefined
  /**
   * When it was published: CLOCK_MONOTONIC nanoseconds (a number; compare
   * with `monotonicNs()`). Reading a clock costs more than the rest of an
   * in-process delivery, so the bus stamps a message only when something
   * needs the stamp: a queue, the history, a transport, the latency sampler,
   * or you reading this field, whichever comes first. For a synchronous
   * subscriber that reads it, the value is therefore taken during `publish()`
   * but after the subscribers before it have run.
   */
  readonly publishTime: number
}

/** @internal The reusable implementation of {@link MessageMeta}. */
export class Meta implements MessageMeta {
  seq = 0
  source = ''
  rxTime: bigint | undefined = undefined
  /** Publish stamp, or a negative number while not stamped. Initialised to a double so V8 keeps the field unboxed in place. */
  t = -0.5
  /** This message is a latency sample: `t` was stamped at publish. */
  sampled = false
  /** Replayed from a remote topic's history: only transient-local subscribers take it. */
  historical = false
  /** The publisher it came from (routing for transports, blocking rules). */
  pub: Publisher<unknown> | null = null
  get publishTime(): number {
    if (this.t < 0) this.t = monotonicNs()
    return this.t
  }
  /** Stamps now if nothing did yet; returns the stamp. */
  stamp(): number {
    if (this.t < 0) this.t = monotonicNs()
    return this.t
  }
  toJSON(): { seq: number; source: string; rxTime: string | undefined; publishTime: number } {
    return { seq: this.seq, source: this.source, rxTime: this.rxTime?.toString(), publishTime: this.publishTime }
  }
}

/** A plain copy of `meta` that is safe to keep after the callback returns. */
export function copyMeta(meta: MessageMeta): MessageMeta {
  return { seq: meta.seq, source: meta.source, rxTime: meta.rxTime, publishTime: meta.publishTime }
}
