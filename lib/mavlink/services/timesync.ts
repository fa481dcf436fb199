/**
 * TIMESYNC microservice: estimates the offset and drift of a peer's clock
 * (the autopilot's boot clock) against ours, so its timestamps
 * (`time_boot_ms`, `time_usec`) can be placed on the companion's timeline;
 * and answers the peer's own TIMESYNC requests.
 *
 * Exchange (current spec, ns): request `tc1 = 0, ts1 = our time`; the peer
 * answers `tc1 = its time, ts1 = our ts1`. With the answer received at local
 * time t, the peer's time tc1 was read near the midpoint (ts1 + t) / 2, with
 * an error of at most half the round trip. So the estimator keeps, of a
 * sliding window of samples, only those with the lowest round trips (the ones
 * least delayed by queues and scheduling), and fits a line remote = a + b·local
 * through them by least squares weighted by 1/RTT²: a gives the offset,
 * b − 1 the drift.
 */
import { EventEmitter } from 'node:events'
import type { MavlinkEncoder } from '../encoder.js'
import type { MavlinkPort } from '../port.js'
import { Timesync } from '../generated/common.js'
import { addressedTo, checkTarget, count, fromTarget, positive } from './common.js'
import type { MavlinkTarget } from './common.js'
import { realtimeNs } from './js-port.js'

/** 'idle': no sample yet; 'converging': samples, not enough to trust; 'converged'. */
export type TimesyncState = 'idle' | 'converging' | 'converged'

/** Options of {@link TimesyncService}. */
export interface TimesyncOptions {
  /** Peer to synchronise with; component 0 = any component of the system. Omit to only answer requests. */
  target?: MavlinkTarget
  /** Requests per second. Default 10. */
  rateHz?: number
  /** Samples in the sliding window. Default 64. */
  window?: number
  /** Fraction of the window (lowest round trips) the fit uses. Default 0.5. */
  keepFraction?: number
  /** Samples needed before 'converged'. Default 10. */
  minSamples?: number
  /** Round trips above this are discarded outright (ns). Default 50 ms. */
  maxRttNs?: number
  /** The fit estimates drift only once its samples span this long (ms); before, the slope is 1. Default 2000. */
  driftAfterMs?: number
  /** A sample this far (ns) off the prediction, three times in a row, means the peer's clock jumped (reboot): the window restarts. Default 100 ms. */
  resetThresholdNs?: number
  /** Answer TIMESYNC requests from peers. Default true. */
  respond?: boolean
  /** Our clock in ns (default CLOCK_REALTIME via `performance`). */
  clock?: () => bigint
}

interface Sample {
  /** Local midpoint and remote time, ns, relative to the reference pair. */
  x: number
  y: number
  rtt: number
}

/** The current estimate. */
export interface TimesyncEstimate {
  state: TimesyncState
  /** remote − local at the last sample's local time, ns. */
  offsetNs: number
  /** Peer clock rate error, parts per million (positive: the peer runs fast). */
  driftPpm: number
  /** Round trip of the best sample in the window, ns. */
  minRttNs: number
  samples: number
}

/**
 * @example
 * const ts = new TimesyncService(port, encoder, { target: { system: 1, component: 1 } })
 * ts.once('converged', () => {
 *   port.onFrame((f) => {
 *     const att = f.as(Attitude)
 *     if (att) console.log('attitude at', ts.toLocalMs(att.time_boot_ms), 'ns (our clock)')
 *   })
 * })
 *
 * Events: `'sample'` ({ rttNs, offsetNs }), `'converged'` (estimate), `'reset'` (why).
 */
export class TimesyncService extends EventEmitter {
  private readonly target: MavlinkTarget | undefined
  private readonly window: number
  private readonly keep: number
  private readonly minSamples: number
  private readonly maxRtt: number
  private readonly driftAfterNs: number
  private readonly resetNs: number
  private readonly clock: () => bigint
  private readonly respond: boolean
  private readonly unsubscribe: () => void
  private timer: NodeJS.Timeout | undefined
  private samples: Sample[] = []
  private refLocal = 0n
  private refRemote = 0n
  private outliers = 0
  /** remote = a + b·local (relative to the reference pair). */
  private a = 0
  private b = 1
  private st: TimesyncState = 'idle'
  private readonly outstanding = new Map<bigint, number>()
  readonly stats = { requests: 0, responses: 0, answered: 0, discarded: 0, resets: 0 }

  constructor(
    private readonly port: MavlinkPort,
    private readonly encoder: MavlinkEncoder,
    options: TimesyncOptions = {},
  ) {
    super()
    this.target = options.target === undefined ? undefined : checkTarget(options.target, 'options.target')
    this.window = Math.max(4, count(options.window, 'options.window', 64))
    const kf = options.keepFraction ?? 0.5
    if (!(kf > 0 && kf <= 1)) throw new RangeError(`options.keepFraction must be in (0, 1], got ${kf}`)
    this.keep = kf
    this.minSamples = Math.max(2, count(options.minSamples, 'options.minSamples', 10))
    this.maxRtt = positive(options.maxRttNs, 'options.maxRttNs', 50e6)
    this.driftAfterNs = positive(options.driftAfterMs, 'options.driftAfterMs', 2000) * 1e6
    this.resetNs = positive(options.resetThresholdNs, 'options.resetThresholdNs', 100e6)
    this.clock = options.clock ?? realtimeNs
    this.respond = options.respond ?? true
    this.unsubscribe = port.onFrame((frame, rxTimeNs) => {
      const m = frame.as(Timesync)
      if (m === undefined) return
      if (!addressedTo(this.encoder, m.target_system, m.target_component)) return
      if (m.tc1 === 0n) {
        // a request: answer with our time now (not the receive stamp: the
        // peer measures the whole round trip including our turnaround)
        if (!this.respond) return
        this.stats.answered++
        this.port.send(this.encoder.encode(Timesync, { tc1: this.clock(), ts1: m.ts1, target_system: frame.sysid, target_component: frame.compid }))
        return
      }
      if (this.target === undefined || !fromTarget(this.target, frame.sysid, frame.compid)) return
      if (!this.outstanding.delete(m.ts1)) return // not ours (another requester's answer, or a duplicate)
      this.stats.responses++
      // the same clock as ts1: the port's receive stamp may come from another
      // clock source (kernel vs performance) and a skew between them would
      // bias every round trip; scheduling delay only lengthens the RTT, which
      // the minimum-RTT filter handles
      void rxTimeNs
      this.addSample(m.ts1, this.clock(), m.tc1)
    })
    const rate = options.rateHz ?? 10
    if (this.target !== undefined && rate > 0) {
      this.request()
      this.timer = setInterval(() => this.request(), 1000 / rate)
      this.timer.unref()
    }
  }

  /** Sends one request now. */
  request(): void {
    if (this.target === undefined) return
    const ts1 = this.clock()
    this.outstanding.set(ts1, 0)
    // forget requests that were never answered
    if (this.outstanding.size > 64) this.outstanding.delete(this.outstanding.keys().next().value as bigint)
    this.stats.requests++
    this.port.send(this.encoder.encode(Timesync, { tc1: 0, ts1, target_system: this.target.system, target_component: this.target.component }))
  }

  /** Feeds one exchange directly (sent at local ts1, answered at local t with remote tc1), all ns. */
  addSample(ts1: bigint, t: bigint, tc1: bigint): void {
    const rtt = Number(t - ts1)
    if (rtt < 0 || rtt > this.maxRtt) {
      this.stats.discarded++
      return
    }
    const mid = ts1 + BigInt(Math.round(rtt / 2))
    if (this.samples.length === 0) {
      this.refLocal = mid
      this.refRemote = tc1
    }
    const s: Sample = { x: Number(mid - this.refLocal), y: Number(tc1 - this.refRemote), rtt }
    if (this.samples.length >= this.minSamples) {
      const err = Math.abs(s.y - (this.a + this.b * s.x))
      if (err > this.resetNs + rtt) {
        if (++this.outliers < 3) return
        this.stats.resets++
        this.samples = []
        this.outliers = 0
        this.st = 'idle'
        this.emit('reset', `peer clock jumped by ${(err / 1e6).toFixed(1)} ms`)
        this.addSample(ts1, t, tc1)
        return
      }
    }
    this.outliers = 0
    this.samples.push(s)
    if (this.samples.length > this.window) this.samples.shift()
    this.fit()
    this.emit('sample', { rttNs: rtt, offsetNs: this.offsetAt(s.x) })
    if (this.st !== 'converged') {
      this.st = this.samples.length >= this.minSamples ? 'converged' : 'converging'
      if (this.st === 'converged') this.emit('converged', this.estimate())
    }
  }

  private fit(): void {
    const sorted = [...this.samples].sort((p, q) => p.rtt - q.rtt)
    const n = Math.max(Math.min(3, sorted.length), Math.ceil(sorted.length * this.keep))
    const use = sorted.slice(0, n)
    // weighted least squares: a sample's error is up to half its round trip,
    // so its weight is 1/rtt² (plus a floor so a 0-RTT sample cannot dominate)
    let sw = 0
    let mx = 0
    let my = 0
    for (const s of use) {
      const w = 1 / (s.rtt + 20_000) ** 2
      sw += w
      mx += w * s.x
      my += w * s.y
    }
    mx /= sw
    my /= sw
    let sxx = 0
    let sxy = 0
    let lo = Infinity
    let hi = -Infinity
    for (const s of use) {
      const w = 1 / (s.rtt + 20_000) ** 2
      sxx += w * (s.x - mx) * (s.x - mx)
      sxy += w * (s.x - mx) * (s.y - my)
      lo = Math.min(lo, s.x)
      hi = Math.max(hi, s.x)
    }
    this.b = hi - lo >= this.driftAfterNs && sxx > 0 ? sxy / sxx : 1
    this.a = my - this.b * mx
  }

  private offsetAt(x: number): number {
    return Number(this.refRemote - this.refLocal) + this.a + (this.b - 1) * x
  }

  /** Convergence state. */
  get state(): TimesyncState {
    return this.st
  }

  /** The current estimate. */
  estimate(): TimesyncEstimate {
    const last = this.samples[this.samples.length - 1]
    let minRtt = Infinity
    for (const s of this.samples) minRtt = Math.min(minRtt, s.rtt)
    return {
      state: this.st,
      offsetNs: last ? this.offsetAt(last.x) : 0,
      driftPpm: (this.b - 1) * 1e6,
      minRttNs: minRtt,
      samples: this.samples.length,
    }
  }

  /**
   * Maps a peer timestamp (ns on the peer's clock) to our clock (ns). Throws
   * ERR_MAVLINK_TIMESYNC_NOT_READY before the first sample.
   */
  toLocal(remoteNs: bigint | number): bigint {
    if (this.samples.length === 0) {
      const err = new Error('TIMESYNC has no sample yet') as Error & { code: string }
      err.code = 'ERR_MAVLINK_TIMESYNC_NOT_READY'
      throw err
    }
    const y = Number(BigInt(remoteNs) - this.refRemote)
    return this.refLocal + BigInt(Math.round((y - this.a) / this.b))
  }

  /** `time_boot_ms` → our clock, ns. */
  toLocalMs(remoteMs: number): bigint {
    return this.toLocal(BigInt(Math.round(remoteMs)) * 1_000_000n)
  }

  /** `time_usec` → our clock, ns. */
  toLocalUs(remoteUs: bigint | number): bigint {
    return this.toLocal(BigInt(remoteUs) * 1000n)
  }

  /** Our clock (ns) → the peer's clock (ns). */
  toRemote(localNs: bigint): bigint {
    const x = Number(localNs - this.refLocal)
    return this.refRemote + BigInt(Math.round(this.a + this.b * x))
  }

  close(): void {
    clearInterval(this.timer)
    this.unsubscribe()
  }
}
