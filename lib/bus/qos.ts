/**
 * Quality of service: what a topic declares, what a publisher offers and what
 * a subscriber requests, and the rules that decide whether a publisher and a
 * subscriber may talk (DDS "requested/offered" semantics).
 */
import { invalidArgType, invalidArgValue, outOfRange } from '../errors.js'

/** Best effort: a full subscriber queue drops. Reliable: it may push back on the publisher instead. */
export type Reliability = 'best-effort' | 'reliable'
/** What a full subscriber queue does with the next message. `'block'` needs `'reliable'`. */
export type Overflow = 'drop-oldest' | 'drop-newest' | 'block'
/** Volatile: late subscribers see only what is published after they join. Transient-local: they first get the topic's last `depth` messages. */
export type Durability = 'volatile' | 'transient-local'

/** A complete QoS. Every field is explicit; `Infinity` means "no deadline" / "no liveliness contract". */
export interface QoS {
  reliability: Reliability
  /** Keep last N: a subscriber's queue bound, and the history a transient-local topic keeps for late joiners. */
  depth: number
  overflow: Overflow
  durability: Durability
  /**
   * Publisher: the longest gap it promises between two messages (offered).
   * Subscriber: the longest gap it accepts (requested). `'deadline-missed'`
   * fires when that gap is exceeded. Milliseconds; `Infinity` for none.
   */
  deadlineMs: number
  /**
   * Publisher: its lease (offered). It must publish or `assertLiveliness()`
   * within every lease or it is reported `'publisher-lost'`. Subscriber: the
   * longest lease it accepts (requested). Milliseconds; `Infinity` for none.
   */
  livelinessLeaseMs: number
}

/**
 * What a topic must state: reliability, history depth, overflow behaviour and
 * deadline (`Infinity` is a statement too). Durability defaults to
 * `'volatile'`, the liveliness lease to `Infinity`.
 */
export type TopicQoS = Pick<QoS, 'reliability' | 'depth' | 'overflow' | 'deadlineMs'> & Partial<Pick<QoS, 'durability' | 'livelinessLeaseMs'>>

/**
 * Starting points, to spread and adjust:
 * `{ qos: { ...qosProfiles.sensorData, deadlineMs: 150 } }`.
 */
export const qosProfiles = {
  /** Streams where the newest sample matters most (LiDAR, IMU, camera): never push back, drop the oldest. */
  sensorData: { reliability: 'best-effort', depth: 8, overflow: 'drop-oldest', durability: 'volatile', deadlineMs: Infinity, livelinessLeaseMs: Infinity },
  /** Every message must arrive (commands, mission items): a slow subscriber blocks the publisher. */
  reliable: { reliability: 'reliable', depth: 64, overflow: 'block', durability: 'volatile', deadlineMs: Infinity, livelinessLeaseMs: Infinity },
  /** Latest state (home position, parameters, health): late subscribers get the last value. */
  state: { reliability: 'reliable', depth: 1, overflow: 'drop-oldest', durability: 'transient-local', deadlineMs: Infinity, livelinessLeaseMs: Infinity },
} as const satisfies Record<string, QoS>

const RELIABILITY: readonly Reliability[] = ['best-effort', 'reliable']
const OVERFLOW: readonly Overflow[] = ['drop-oldest', 'drop-newest', 'block']
const DURABILITY: readonly Durability[] = ['volatile', 'transient-local']
/** Upper bound of `depth`: queues grow on demand, but a bound keeps a typo from reserving gigabytes. */
export const MAX_DEPTH = 1 << 24

function checkMs(v: unknown, name: string): void {
  if (typeof v !== 'number') throw invalidArgType(name, 'of type number', v)
  if (!(v > 0)) throw outOfRange(name, '> 0 (Infinity for none)', v)
}

/** Validates fields present in a (partial) QoS; throws Node-shaped argument errors. */
export function validateQoS(q: unknown, name: string, required: readonly (keyof QoS)[] = []): void {
  if (q === null || typeof q !== 'object') throw invalidArgType(name, 'of type object', q)
  const o = q as Record<string, unknown>
  for (const k of required) if (o[k] === undefined) throw invalidArgValue(`${name}.${k}`, undefined, 'must be stated: QoS is explicit per topic')
  for (const k of Object.keys(o))
    if (!['reliability', 'depth', 'overflow', 'durability', 'deadlineMs', 'livelinessLeaseMs'].includes(k))
      throw invalidArgValue(`${name}.${k}`, o[k], 'is not a QoS policy')
  if (o.reliability !== undefined && !RELIABILITY.includes(o.reliability as Reliability))
    throw invalidArgValue(`${name}.reliability`, o.reliability, `must be one of ${RELIABILITY.join(', ')}`)
  if (o.overflow !== undefined && !OVERFLOW.includes(o.overflow as Overflow))
    throw invalidArgValue(`${name}.overflow`, o.overflow, `must be one of ${OVERFLOW.join(', ')}`)
  if (o.durability !== undefined && !DURABILITY.includes(o.durability as Durability))
    throw invalidArgValue(`${name}.durability`, o.durability, `must be one of ${DURABILITY.join(', ')}`)
  if (o.depth !== undefined) {
    if (typeof o.depth !== 'number') throw invalidArgType(`${name}.depth`, 'of type number', o.depth)
    if (!Number.isInteger(o.depth) || o.depth < 1 || o.depth > MAX_DEPTH) throw outOfRange(`${name}.depth`, `an integer >= 1 and <= ${MAX_DEPTH}`, o.depth)
  }
  if (o.deadlineMs !== undefined) checkMs(o.deadlineMs, `${name}.deadlineMs`)
  if (o.livelinessLeaseMs !== undefined) checkMs(o.livelinessLeaseMs, `${name}.livelinessLeaseMs`)
}

/** `base` overridden by `over`, checked as a whole (`'block'` needs `'reliable'`). */
export function resolveQoS(base: Readonly<QoS>, over: Partial<QoS> | undefined, name: string): QoS {
  if (over !== undefined) validateQoS(over, name)
  const q: QoS = { ...base, ...over }
  if (q.overflow === 'block' && q.reliability !== 'reliable')
    throw invalidArgValue(`${name}.overflow`, 'block', "needs reliability 'reliable' (a best-effort endpoint never pushes back)")
  return Object.freeze(q)
}

/** Completes a topic's declared QoS with the defaults of the optional fields. */
export function topicQoS(q: TopicQoS): QoS {
  validateQoS(q, 'options.qos', ['reliability', 'depth', 'overflow', 'deadlineMs'])
  return resolveQoS({ durability: 'volatile', livelinessLeaseMs: Infinity } as QoS, q as Partial<QoS>, 'options.qos')
}

/** One policy on which a subscriber asked for more than a publisher offers. */
export interface PolicyConflict {
  policy: 'reliability' | 'durability' | 'deadline' | 'liveliness'
  requested: string | number
  offered: string | number
}

/**
 * The request/offer rules (the DDS "RxO" subset that applies here). A
 * publisher and a subscriber match only when, for every policy, what is
 * offered is at least what is requested:
 *
 * - reliability: `reliable` requested needs `reliable` offered;
 * - durability: `transient-local` requested needs `transient-local` offered;
 * - deadline: offered period ≤ requested period;
 * - liveliness: offered lease ≤ requested lease.
 *
 * `depth` and `overflow` are each side's own business and never conflict.
 * Returns the conflicts (empty when compatible).
 */
export function qosConflicts(requested: Readonly<QoS>, offered: Readonly<QoS>): PolicyConflict[] {
  const out: PolicyConflict[] = []
  if (requested.reliability === 'reliable' && offered.reliability !== 'reliable')
    out.push({ policy: 'reliability', requested: requested.reliability, offered: offered.reliability })
  if (requested.durability === 'transient-local' && offered.durability !== 'transient-local')
    out.push({ policy: 'durability', requested: requested.durability, offered: offered.durability })
  if (offered.deadlineMs > requested.deadlineMs) out.push({ policy: 'deadline', requested: requested.deadlineMs, offered: offered.deadlineMs })
  if (offered.livelinessLeaseMs > requested.livelinessLeaseMs)
    out.push({ policy: 'liveliness', requested: requested.livelinessLeaseMs, offered: offered.livelinessLeaseMs })
  return out
}

/** Field-by-field equality of two complete QoS. */
export function sameQoS(a: Readonly<QoS>, b: Readonly<QoS>): boolean {
  return (
    a.reliability === b.reliability &&
    a.depth === b.depth &&
    a.overflow === b.overflow &&
    a.durability === b.durability &&
    a.deadlineMs === b.deadlineMs &&
    a.livelinessLeaseMs === b.livelinessLeaseMs
  )
}
