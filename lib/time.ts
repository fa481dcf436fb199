/**
 * Clocks and clock domains. Every receive timestamp onbus hands out is tagged
 * with the domain it was taken in: software kernel stamps are `realtime`
 * (CLOCK_REALTIME), NIC stamps are `hardware` (the interface's PTP clock,
 * usually disciplined to TAI or UTC by ptp4l/phc2sys).
 */
import { native } from '../bindings/index.js'

/** Where a timestamp came from. */
export type ClockDomain = 'realtime' | 'monotonic' | 'hardware'

const DOMAIN_ID: Record<'realtime' | 'monotonic' | 'monotonic-raw' | 'tai', number> = {
  realtime: 0,
  monotonic: 1,
  'monotonic-raw': 2,
  tai: 3,
}

/**
 * Current time on a clock, in nanoseconds.
 * @example
 * const lag = now('realtime') - msg.info.rxTime
 */
export function now(clock: keyof typeof DOMAIN_ID = 'realtime'): bigint {
  return native.clockNs(DOMAIN_ID[clock])
}

const pair = new Float64Array(2)

/**
 * Current time as [seconds, nanoseconds] written into a reused array (no
 * allocation): for per-datagram latency arithmetic in hot handlers.
 */
export function nowPair(clock: keyof typeof DOMAIN_ID = 'realtime', out: Float64Array = pair): Float64Array {
  native.clockPair(DOMAIN_ID[clock], out)
  return out
}

/**
 * Offset to add to a CLOCK_REALTIME timestamp to place it on CLOCK_MONOTONIC,
 * measured now by bracketing (the realtime reading between two monotonic
 * ones). Recompute after the wall clock may have stepped (NTP, GPS time).
 */
export function realtimeToMonotonicOffset(): bigint {
  let best = -1n
  let offset = 0n
  for (let i = 0; i < 5; i++) {
    const m0 = now('monotonic')
    const r = now('realtime')
    const m1 = now('monotonic')
    const width = m1 - m0
    if (best < 0n || width < best) {
      best = width
      offset = m0 + width / 2n - r
    }
  }
  return offset
}
