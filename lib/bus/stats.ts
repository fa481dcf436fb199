/**
 * Latency histogram for the introspection figures: log-linear buckets (8 per
 * power of two, so a quantile is within about 9% of the true value), two
 * windows so a quantile always covers between one and two window lengths of
 * recent samples, and no allocation when recording.
 */
const SUB = 8
const BUCKETS = 41 * SUB // up to 2^41 ns (about 36 minutes)

export class LatencyHistogram {
  private cur = new Uint32Array(BUCKETS)
  private prev = new Uint32Array(BUCKETS)
  private curCount = 0
  private prevCount = 0

  record(ns: number): void {
    let i = ns <= 1 ? 0 : Math.floor(Math.log2(ns) * SUB)
    if (i >= BUCKETS) i = BUCKETS - 1
    else if (i < 0) i = 0
    this.cur[i]++
    this.curCount++
  }

  /** Starts a new window; the previous one is kept, the one before is forgotten. */
  rotate(): void {
    const t = this.prev
    this.prev = this.cur
    this.prevCount = this.curCount
    this.cur = t
    this.cur.fill(0)
    this.curCount = 0
  }

  get count(): number {
    return this.curCount + this.prevCount
  }

  /** The q-quantile (0..1) in nanoseconds, or null without samples. */
  quantile(q: number): number | null {
    const n = this.count
    if (n === 0) return null
    const rank = Math.max(1, Math.ceil(q * n))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.cur[i] + this.prev[i]
      if (seen >= rank) return Math.round(2 ** ((i + 0.5) / SUB))
    }
    return Math.round(2 ** (BUCKETS / SUB))
  }
}
