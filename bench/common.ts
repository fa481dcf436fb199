/**
 * Pieces shared by the benchmark's child processes (receiver.ts,
 * pingpong.ts): the JSON-lines control protocol they speak with run.ts, a
 * preallocated latency sample store, and a realtime clock readable from a
 * handler without allocating.
 */
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'

/** Writes one JSON line to stdout (synchronous on Linux pipes). */
export function emit(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/**
 * Answers the harness's commands on stdin, one per line: `reset`, `report`,
 * `quit` (end of stdin also quits). Same protocol as bench/native/udp_sink.c.
 */
export function serveControl(handlers: { reset(): void; report(): unknown; quit(): void }): void {
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const cmd = line.trim()
    if (cmd === 'reset') {
      handlers.reset()
      emit({ reset: true })
    } else if (cmd === 'report') {
      emit(handlers.report())
    } else if (cmd === 'quit') {
      rl.close()
    }
  })
  rl.on('close', () => handlers.quit())
}

/** Summary of a latency sample set, in microseconds (nearest rank). */
export interface LatencySummary {
  n: number
  p50: number
  p99: number
  max: number
}

/** Latency samples in nanoseconds, kept in a preallocated array: no allocation per sample. */
export class Samples {
  private readonly buf: Float64Array
  n = 0
  constructor(capacity = 1 << 21) {
    this.buf = new Float64Array(capacity)
  }
  add(ns: number): void {
    if (this.n < this.buf.length) this.buf[this.n++] = ns
  }
  clear(): void {
    this.n = 0
  }
  summary(): LatencySummary {
    const s = this.buf.slice(0, this.n).sort()
    const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] / 1000 : -1)
    return { n: s.length, p50: at(50), p99: at(99), max: s.length ? s[s.length - 1] / 1000 : -1 }
  }
}

/**
 * CLOCK_REALTIME in a handler, without a bigint or a native call per read:
 * `performance.now()` (CLOCK_MONOTONIC underneath, a fast call returning a
 * double) placed on the realtime axis by bracketing one native realtime read
 * between two monotonic ones. Everything is kept relative to that base so the
 * arithmetic stays exact in doubles (absolute ns since 1970 are ~1.7e18, where
 * a double's step is 256 ns). Recalibrate at each run: NTP may slew realtime.
 */
export class RealtimeClock {
  private perfBase = 0
  private baseHi = 0
  private baseLo = 0
  private baseSec = 0
  private baseNsec = 0
  private baseNs = 0n

  constructor(private readonly realtimeNs: () => bigint) {
    this.calibrate()
  }

  calibrate(): void {
    let best = Infinity
    for (let i = 0; i < 20; i++) {
      const p0 = performance.now()
      const r = this.realtimeNs()
      const p1 = performance.now()
      if (p1 - p0 < best) {
        best = p1 - p0
        this.perfBase = (p0 + p1) / 2
        this.baseHi = Number(r >> 32n)
        this.baseLo = Number(r & 0xffffffffn)
        this.baseSec = Number(r / 1_000_000_000n)
        this.baseNsec = Number(r % 1_000_000_000n)
        this.baseNs = r
      }
    }
  }

  /** Now, in ns since the calibration point. */
  now(): number {
    return (performance.now() - this.perfBase) * 1e6
  }

  /** A little-endian u64 CLOCK_REALTIME ns stamp (the sender's, bytes 0..7), in ns since the calibration point. */
  stamp(lo: number, hi: number): number {
    return (hi - this.baseHi) * 4294967296 + (lo - this.baseLo)
  }

  /** A realtime stamp as a bigint (the message API's `rxTime`), in ns since the calibration point. */
  kernelNs(ns: bigint): number {
    return Number(ns - this.baseNs)
  }

  /** A kernel realtime stamp given as seconds + nanoseconds, in ns since the calibration point. */
  kernel(sec: number, nsec: number): number {
    return (sec - this.baseSec) * 1e9 + (nsec - this.baseNsec)
  }
}

/** Reads `--name value` and `--flag` arguments into a record. */
export function args(argv: string[] = process.argv.slice(2)): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) continue
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true'
    else {
      out[a.slice(2)] = next
      i++
    }
  }
  return out
}
