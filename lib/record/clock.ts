/**
 * The virtual clock a replay runs on: recorded time (the MCAP log_time axis,
 * CLOCK_REALTIME nanoseconds of the recording) advancing at `rate` times the
 * bus clock (CLOCK_MONOTONIC, `monotonicNs()`), with pause, resume, seek and
 * rate changes. Modules that must behave as if they were in the recorded
 * flight read `clock.now()` instead of the wall clock.
 */
import { EventEmitter } from 'node:events'
import { monotonicNs } from '../bus/clock.js'
import type { Bus } from '../bus/bus.js'
import { jsonCodec } from '../codecs/json.js'
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

/** One sample of a replay's clock as it travels on the clock topic (JSON). */
export interface ClockSample {
  /** `VirtualClock.origin` as a decimal string (bigint ns, CLOCK_REALTIME of the recording). */
  origin: string
  /** Recorded offset from the origin at `at`, in ns. */
  offsetNs: number
  /** When the sample was taken: CLOCK_MONOTONIC ns (`monotonicNs()`), which every process of the machine shares. */
  at: number
  rate: number
  paused: boolean
}

/** Where replay publishes its clock by default (like ROS's `/clock`). */
export const CLOCK_TOPIC = '/onbus/clock'

/** The clock topic's QoS: the last sample is kept for late joiners. */
export const CLOCK_QOS = { reliability: 'best-effort', depth: 1, overflow: 'drop-oldest', durability: 'transient-local', deadlineMs: Infinity, livelinessLeaseMs: Infinity } as const

/** Samples `clock` (now) for the clock topic. */
export function clockSample(clock: VirtualClock): ClockSample {
  return { origin: clock.origin.toString(), offsetNs: clock.offsetNs(), at: monotonicNs(), rate: clock.rate, paused: clock.paused }
}

/**
 * A replay's clock as another process sees it: follows the samples a replay
 * publishes on the clock topic and extrapolates between them (both processes
 * read the same CLOCK_MONOTONIC). Create with `followClock()`.
 * Events: `'change'` (each sample).
 */
export class FollowedClock extends EventEmitter {
  private s: ClockSample | null = null
  private origin = 0n

  /** @internal */
  update(s: ClockSample): void {
    this.s = s
    this.origin = BigInt(s.origin)
    this.emit('change')
  }

  /** True once a sample has arrived (a replay is running or ran). */
  get synced(): boolean {
    return this.s !== null
  }

  get rate(): number {
    return this.s?.rate ?? 1
  }

  get paused(): boolean {
    return this.s?.paused ?? true
  }

  /** Recorded offset now (ns from the replay clock's origin); NaN before the first sample. */
  offsetNs(): number {
    const s = this.s
    if (!s) return NaN
    return s.paused ? s.offsetNs : s.offsetNs + (monotonicNs() - s.at) * s.rate
  }

  /** Recorded time now (CLOCK_REALTIME ns of the recording), or undefined before the first sample. */
  now(): bigint | undefined {
    if (!this.s) return undefined
    return this.origin + BigInt(Math.round(this.offsetNs()))
  }
}

/**
 * Follows the clock of a replay running in this or another process (over
 * the bus's IPC transport): what a module reads instead of the wall clock to
 * live in the recorded flight's time.
 * @example
 * const clock = followClock(bus)
 * detections.subscribe((d) => plan(d, clock.now() ?? now('realtime')))
 */
export function followClock(bus: Bus, topic: string = CLOCK_TOPIC): FollowedClock {
  const c = new FollowedClock()
  bus.topic(topic, { qos: CLOCK_QOS, codec: jsonCodec<ClockSample>() }).subscribe((s) => c.update(s), { name: 'clock-follower' })
  return c
}
