/**
 * Reconnection delays: exponential backoff with jitter, so that many links
 * (or many vehicles) that lost the same peer do not all knock at once.
 */
import { invalidArgType, invalidArgValue } from '../../errors.js'
import { validateInt } from '../../util/validate.js'

/** Reconnection policy of a client link. */
export interface ReconnectOptions {
  /** Delay before the first retry, ms (default 100). */
  initialDelay?: number
  /** Largest delay, ms (default 10,000). */
  maxDelay?: number
  /** Growth per attempt (default 2). */
  factor?: number
  /** Fraction of each delay that is random, 0–1 (default 0.5: the delay is uniform in [d/2, d]). */
  jitter?: number
  /** Attempts before giving up with an 'error' (default Infinity). */
  maxAttempts?: number
}

/** @internal */
export interface Backoff {
  initialDelay: number
  maxDelay: number
  factor: number
  jitter: number
  maxAttempts: number
}

/** @internal */
export function parseReconnect(v: boolean | ReconnectOptions | undefined): Backoff | null {
  if (v === undefined || v === false) return null
  if (v === true) v = {}
  if (v === null || typeof v !== 'object') throw invalidArgType('options.reconnect', 'a boolean or an object', v)
  const initialDelay = v.initialDelay === undefined ? 100 : validateInt(v.initialDelay, 'options.reconnect.initialDelay', 0, 3_600_000)
  const maxDelay = v.maxDelay === undefined ? Math.max(10_000, initialDelay) : validateInt(v.maxDelay, 'options.reconnect.maxDelay', 0, 3_600_000)
  const factor = v.factor ?? 2
  if (typeof factor !== 'number' || !(factor >= 1 && factor <= 100)) throw invalidArgValue('options.reconnect.factor', factor, 'must be a number from 1 to 100')
  const jitter = v.jitter ?? 0.5
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) throw invalidArgValue('options.reconnect.jitter', jitter, 'must be a number from 0 to 1')
  const maxAttempts = v.maxAttempts ?? Infinity
  if (typeof maxAttempts !== 'number' || !(maxAttempts >= 1)) throw invalidArgValue('options.reconnect.maxAttempts', maxAttempts, 'must be a number >= 1')
  return { initialDelay, maxDelay, factor, jitter, maxAttempts }
}

/**
 * Delay before retry number `attempt` (1-based), in ms.
 * @internal
 */
export function backoffDelay(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const d = Math.min(b.maxDelay, b.initialDelay * Math.pow(b.factor, Math.max(0, attempt - 1)))
  return Math.round(d * (1 - b.jitter * random()))
}
