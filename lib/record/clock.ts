/**
 * The virtual clock a replay runs on: recorded time (the MCAP log_time axis,
 * CLOCK_REALTIME nanoseconds of the recording) advancing at `rate` times the
 * bus clock (CLOCK_MONOTONIC, `monotonicNs()`), with pause, resume, seek and
 * rate changes. Modules that must behave as if they were in the recorded
 * flight read `clock.now()` instead of the wall clock.
 */
import { EventEmitter } from 'node:events'
import { monotonicNs } from '../bus/clock.js'
import { invalidArgValue } from '../errors.js'

/**
 * Recorded time as a function of the bus clock:
 * `now = origin + offset + (monotonicNs() − anchor) × rate` while running.
 * Times are kept as a bigint origin plus a number offset, so arithmetic stays
 * exact to the nanosecond for offsets up to ~104 days.
 *
 * Events: `'change'` (rate, pause, resume or seek; the replay reschedules).
 * @example
 * const replay = await replayFile({ bus, path: 'flight.mcap', rate: 2 })
 * const t = replay.clock.now()              // recorded CLOCK_REALTIME ns
 * replay.clock.pause(); replay.clock.resume()
 */
export class VirtualClock extends EventEmitter {
  /** Recorded time that offsets count from (the first message's log_time, usually). */
  readonly origin: bigint
  private offsetAtAnchor = 0
  private anchor = monotonicNs()
  private r: number
  private isPaused = false
  /** Increments on every change; schedulers compare it to notice one. */
  generation = 0

  constructor(origin: bigint, rate = 1) {
    super()
    checkRate(rate)
    this.origin = origin
    this.r = rate
  }

  /** Recorded time now, in ns relative to `origin` (a number). */
  offsetNs(): number {
    if (this.isPaused) return this.offsetAtAnchor
    return this.offsetAtAnchor + (monotonicNs() - this.anchor) * this.r
  }

  /** Recorded time now: CLOCK_REALTIME ns of the recording (bigint, the MCAP log_time axis). */
  now(): bigint {
    return this.origin + BigInt(Math.round(this.offsetNs()))
  }

  /** Recorded time now in ms since the epoch (a `Date.now()` of the recording). */
  nowMs(): number {
    return Number(this.origin / 1_000_000n) + this.offsetNs() / 1e6
  }

  get rate(): number {
    return this.r
  }

  get paused(): boolean {
    return this.isPaused
  }

  /** The bus-clock time (monotonic ns) at which recorded offset `offset` is reached; Infinity while paused. */
  monotonicAt(offset: number): number {
    if (this.isPaused) return Infinity
    return this.anchor + (offset - this.offsetAtAnchor) / this.r
  }

  /** Changes the rate from now on (recorded time does not jump). */
  setRate(rate: number): void {
    checkRate(rate)
    this.rebase()
    this.r = rate
    this.changed()
  }

  pause(): void {
    if (this.isPaused) return
    this.rebase()
    this.isPaused = true
    this.changed()
  }

  resume(): void {
    if (!this.isPaused) return
    this.anchor = monotonicNs()
    this.isPaused = false
    this.changed()
  }

  /** Jumps to recorded offset `offset` (ns from `origin`). */
  seek(offset: number): void {
    this.offsetAtAnchor = offset
    this.anchor = monotonicNs()
    this.changed()
  }

  private rebase(): void {
    this.offsetAtAnchor = this.offsetNs()
    this.anchor = monotonicNs()
  }

  private changed(): void {
    this.generation++
    this.emit('change')
  }
}

function checkRate(rate: number): void {
  if (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate)) throw invalidArgValue('rate', rate, 'must be a finite number > 0')
}
