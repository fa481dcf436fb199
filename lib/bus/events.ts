/**
 * Payloads of the bus's events. Each is emitted on the endpoint it concerns
 * (a `Subscription` or a `Publisher`), on its `Topic`, and on the `Bus`, so a
 * health monitor can watch everything from one place.
 */
import type { PolicyConflict } from './qos.js'

/** A publisher and a subscriber that will not talk because the subscriber requests more than the publisher offers. */
export interface QosMismatchEvent {
  topic: string
  publisher: string
  subscriber: string
  conflicts: PolicyConflict[]
}

/** A deadline was exceeded: on a subscriber, nothing arrived for `deadlineMs`; on a publisher, it published nothing for `deadlineMs`. */
export interface DeadlineMissedEvent {
  topic: string
  side: 'publisher' | 'subscriber'
  /** Id of the publisher or subscriber. */
  endpoint: string
  deadlineMs: number
  /** Missed periods so far (one event per silent period while the silence lasts). */
  totalCount: number
}

/** `'publisher-lost'`: no message and no `assertLiveliness()` within the lease. `'publisher-alive'`: it asserted again. */
export interface LivelinessEvent {
  topic: string
  publisher: string
  source: string
  leaseMs: number
}

/** Why messages were dropped. */
export type DropReason =
  /** A full subscriber queue discarded its oldest message to take a new one. */
  | 'drop-oldest'
  /** A full subscriber queue refused the new message. */
  | 'drop-newest'
  /** A full queue of a blocking subscriber met a message it could not push back on (a best-effort publisher, or a publish from inside a delivery). */
  | 'queue-full'
  /** A link or transport fed a topic whose reliable subscriber pushed back; the source cannot wait, so the message was dropped at the attachment. */
  | 'publisher-blocked'
  /** Bytes from a link or transport that the topic's codec could not decode. */
  | 'decode-error'

/** Coalesced: at most one event per endpoint and reason per tick, with the count since the previous one. */
export interface DropEvent {
  topic: string
  /** The subscriber (or attachment) that dropped. */
  endpoint: string
  reason: DropReason
  /** Dropped since the previous event. */
  count: number
  /** Dropped by this endpoint since it was created. */
  total: number
}

/** A publisher and a subscriber were matched (or unmatched, when one of them closed). */
export interface MatchEvent {
  topic: string
  publisher: string
  subscriber: string
}
