/**
 * The bus clock: CLOCK_MONOTONIC in nanoseconds as a JavaScript number.
 *
 * `performance.now()` counts from the process start on the same clock that
 * `process.hrtime` reads (CLOCK_MONOTONIC); adding the anchor measured once
 * here puts it on the system-wide monotonic epoch, so stamps from different
 * processes on one machine compare directly (and with `now('monotonic')`).
 * A float64 holds whole nanoseconds exactly for the first 104 days of uptime.
 *
 * Cost: one `performance.now()` (about 60 ns on the development machine, and
 * on Node 20 a 16-byte heap number). This is why the bus stamps messages
 * lazily (see `MessageMeta.publishTime`).
 */
const perf = performance

function measureAnchor(): number {
  let best = Infinity
  let anchor = 0
  for (let i = 0; i < 5; i++) {
    const a = perf.now()
    const m = Number(process.hrtime.bigint())
    const b = perf.now()
    if (b - a < best) {
      best = b - a
      anchor = m - ((a + b) / 2) * 1e6
    }
  }
  return Math.round(anchor)
}

const anchorNs = measureAnchor()

/**
 * CLOCK_MONOTONIC now, in nanoseconds (a number).
 * @example
 * const ageMs = (monotonicNs() - meta.publishTime) / 1e6
 */
export function monotonicNs(): number {
  return perf.now() * 1e6 + anchorNs
}
