/**
 * Detects silence (no deadline met, no liveliness asserted) without reading a
 * clock per message: the hot path only bumps a counter, and a timer that
 * ticks every quarter period compares it with the value it saw last. Four
 * quiet ticks in a row mean no event for at least one full period, so a
 * report is never early, and it is late by at most one tick (a quarter
 * period) plus timer latency.
 *
 * The timer is unref'd: a watchdog never keeps the process alive.
 */
export class Watchdog {
  private timer: NodeJS.Timeout | null = null
  private last: number
  private quiet = 0
  private paused = false
  /** Times silence was reported. */
  misses = 0

  constructor(
    readonly periodMs: number,
    private readonly read: () => number,
    private readonly onSilent: (misses: number) => void,
    /** Deadline: report again after every further silent period. Liveliness: report once, until `rearm()`. */
    private readonly repeat: boolean,
  ) {
    this.last = read()
    const tick = Math.max(1, Math.ceil(periodMs / 4))
    this.timer = setInterval(() => this.tick(), tick)
    this.timer.unref()
  }

  private tick(): void {
    const c = this.read()
    if (c !== this.last) {
      this.last = c
      this.quiet = 0
      return
    }
    if (this.paused || ++this.quiet < 4) return
    this.quiet = 0
    this.misses++
    if (!this.repeat) this.paused = true
    this.onSilent(this.misses)
  }

  /** After a non-repeating report: watch again, counting from now. */
  rearm(): void {
    this.paused = false
    // The event that re-armed us happened inside the current tick interval;
    // the next tick must count as "changed", or a report could come up to a
    // quarter period early.
    this.quiet = -1
    this.last = this.read()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }
}
