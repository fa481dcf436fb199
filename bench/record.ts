/**
 * Record and replay benchmark.
 *
 *   node dist/bench/record.js [--quick] [--seconds N]
 *
 * - Replay timing at 1×: a recording of the simulated vehicle's traffic mix
 *   (LiDAR 754 × 1206 B packets/s, IMU 1 kHz × 64 B, camera 30 × 60 KB
 *   frames/s, MAVLink telemetry 200 messages/s) with exact log times is
 *   replayed in-process; a subscriber stamps every delivery (CLOCK_MONOTONIC).
 *   Figures: deviation of each delivered inter-arrival time from the recorded
 *   one, p50 and p99 (µs), and lateness against the due time. Baseline, same
 *   run, same file: the same replayer with the precise sleeper off
 *   (`spinMs: 0`, plain `setTimeout` to each due time).
 * - Record at the vehicle's rate: the same mix published in real time on an
 *   in-process bus for N seconds while the recorder writes zstd MCAP. Figures:
 *   MB/s of payload written, drops (target 0), how late the publishing loop's
 *   1 ms tick runs, p99 and max (what recording costs the bus). Baseline, same
 *   run: the recorder with its writer on the event loop (`writer: 'thread'`).
 * - The real thing: `onbus run` (the simulated vehicle, as far as this
 *   build's simulators go) and `onbus record` in another process over IPC:
 *   MB/s and drops.
 * - Max sustained record rate: the mix published as fast as the recorder
 *   drains it (the publisher waits while the queue is over half full), zstd
 *   and uncompressed. Baseline: `fs.write` of the same bytes in 1 MiB
 *   buffers (the disk's own figure).
 *
 * Prints one JSON line per figure: { name, value, unit, baseline, baselineName, ratio }.
 */
import { mkdtempSync, rmSync, openSync, writeSync, closeSync, fsyncSync, existsSync } from 'node:fs'
import { spawn, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createUdpLink } from '../lib/links/index.js'
import { randomFillSync } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { McapWriter } from '@mcap/core'
import { createBus, qosProfiles, rawCodec, monotonicNs, type Bus } from '../lib/bus/index.js'
import { createRecorder, replayFile } from '../lib/record/index.js'
import { FileWritable } from '../lib/record/io.js'
import { args } from './common.js'

const A = args()
const QUICK = A.quick === 'true'
const SECONDS = Number(A.seconds ?? (QUICK ? 3 : 10))

function line(name: string, value: number, unit: string, baseline: number | null, baselineName: string): void {
  const round = (x: number): number => (Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 1000) / 1000)
  console.log(JSON.stringify({ name, value: round(value), unit, baseline: baseline === null ? null : round(baseline), baselineName, ratio: baseline ? round(value / baseline) : null }))
}
const log = (s: string): void => void process.stderr.write(`record: ${s}\n`)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN
}

/** The simulated vehicle's streams: topic, payload size, rate per second. */
const MIX = [
  { topic: 'lidar/packets', size: 1206, rate: 754 },
  { topic: 'imu', size: 64, rate: 1000 },
  { topic: 'camera/frames', size: 60_000, rate: 30 },
  { topic: 'mavlink/rx', size: 40, rate: 200 },
] as const

/** Payloads: random bytes (LiDAR and video hardly compress), a few patterns reused so that generating them costs nothing. */
const POOL = 64
const payloads = MIX.map((m) => Array.from({ length: POOL }, () => randomFillSync(new Uint8Array(m.size))))

/** The schedule of `seconds` of the mix: [streamIndex, offsetNs] in time order, with each stream's first message at a random phase. */
function schedule(seconds: number): { s: number; t: number }[] {
  const out: { s: number; t: number }[] = []
  MIX.forEach((m, s) => {
    const period = 1e9 / m.rate
    const phase = Math.random() * period
    for (let t = phase; t < seconds * 1e9; t += period) out.push({ s, t: Math.round(t) })
  })
  return out.sort((a, b) => a.t - b.t)
}

async function writeScheduled(path: string, seconds: number): Promise<number> {
  const w = await FileWritable.create(path)
  const writer = new McapWriter({ writable: w })
  await writer.start({ profile: '', library: 'bench' })
  const ids: number[] = []
  for (const m of MIX) ids.push(await writer.registerChannel({ topic: m.topic, messageEncoding: 'raw', schemaId: 0, metadata: new Map([['onbus.codec', 'raw']]) }))
  const base = 1_700_000_000_000_000_000n
  const sched = schedule(seconds)
  let seq = 0
  for (const e of sched) {
    const t = base + BigInt(e.t)
    await writer.addMessage({ channelId: ids[e.s], sequence: ++seq, logTime: t, publishTime: t, data: payloads[e.s][seq & (POOL - 1)] })
  }
  await writer.end()
  await w.close()
  return sched.length
}

function declare(bus: Bus) {
  return MIX.map((m) => bus.topic(m.topic, { qos: { ...qosProfiles.sensorData, depth: 64 }, codec: rawCodec }))
}

/** Replays `path` at 1× with `spinMs`; returns inter-arrival deviations and lateness (µs). */
async function replayTiming(path: string, spinMs: number): Promise<{ ia50: number; ia99: number; late50: number; late99: number; n: number }> {
  const bus = createBus({ name: 'bench-replay' })
  const topics = declare(bus)
  const cap = 1 << 20
  const arrive = new Float64Array(cap)
  let n = 0
  const rp = await replayFile({ bus, path, rate: 1, spinMs })
  for (const t of topics)
    t.subscribe(() => {
      if (n < cap) arrive[n++] = monotonicNs()
    })
  const s = await rp.done
  bus.close()
  // Deliveries come in log_time order: compare with the recorded offsets read from the file in that order.
  return { ...deviation(arrive, n), late50: s.lateness.p50, late99: s.lateness.p99, n }
}

let recordedOffsets: Float64Array = new Float64Array(0)

/**
 * The machine's floor: the same sleeper (setTimeout to 2 ms before, then
 * setImmediate) on the same schedule with no file, bus or decoding at all.
 * What is left in its p99 is the scheduling noise of the machine itself.
 */
async function sleeperFloor(): Promise<{ ia50: number; ia99: number }> {
  const n = recordedOffsets.length
  const arrive = new Float64Array(n)
  const t0 = monotonicNs()
  for (let i = 0; i < n; i++) {
    const due = t0 + recordedOffsets[i]
    for (;;) {
      const d = due - monotonicNs()
      if (d <= 0) break
      if (d > 2e6) await new Promise((r) => setTimeout(r, (d - 2e6) / 1e6))
      else await new Promise((r) => setImmediate(r))
    }
    arrive[i] = monotonicNs()
  }
  return deviation(arrive, n)
}

function deviation(arrive: Float64Array, n: number): { ia50: number; ia99: number } {
  const m = Math.min(n, recordedOffsets.length)
  const dev = new Float64Array(Math.max(0, m - 1))
  for (let i = 1; i < m; i++) dev[i - 1] = Math.abs(arrive[i] - arrive[i - 1] - (recordedOffsets[i] - recordedOffsets[i - 1])) / 1000
  dev.sort()
  return { ia50: quantile(dev, 0.5), ia99: quantile(dev, 0.99) }
}

/** Publishes the mix in real time for `seconds` while recording; figures about the recorder. */
async function recordAtVehicleRate(dir: string, seconds: number, writer: 'worker' | 'thread') {
  const bus = createBus({ name: 'bench-vehicle' })
  const topics = declare(bus)
  const pubs = topics.map((t) => t.publisher())
  const rec = await createRecorder({ bus, path: join(dir, `vehicle-${writer}.mcap`), compression: 'zstd', writer })
  const sched = schedule(seconds)
  const stalls = new Float64Array(seconds * 2000 + 10)
  let ns = 0
  let i = 0
  let seq = 0
  const t0 = monotonicNs()
  let last = t0
  // A 1 ms tick publishing whatever is due, like a link's receive batches.
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = monotonicNs()
      if (ns < stalls.length) stalls[ns++] = (now - last) / 1e6
      last = now
      const el = now - t0
      while (i < sched.length && sched[i].t <= el) {
        const e = sched[i++]
        pubs[e.s].publish(payloads[e.s][++seq & (POOL - 1)])
      }
      if (i < sched.length) setTimeout(tick, 1)
      else resolve()
    }
    setTimeout(tick, 1)
  })
  const wall = (monotonicNs() - t0) / 1e9
  const s = await rec.close()
  bus.close()
  const st = stalls.slice(0, ns).sort()
  return { mbps: s.bytes / 1e6 / wall, drops: s.dropped, messages: s.messages, published: sched.length, fileMB: s.fileBytes / 1e6, tick99: quantile(st, 0.99), tickMax: st[st.length - 1] }
}

/** Publishes the mix as fast as the recorder drains it for `seconds`; MB/s of payload written. */
async function recordMax(dir: string, seconds: number, compression: 'zstd' | 'none', writer: 'worker' | 'thread' = 'worker') {
  const bus = createBus({ name: 'bench-max' })
  const topics = declare(bus)
  const pubs = topics.map((t) => t.publisher())
  const queueBytes = 64 << 20
  const rec = await createRecorder({ bus, path: join(dir, `max-${compression}-${writer}.mcap`), compression, queueBytes, writer })
  const sched = schedule(1)
  let seq = 0
  const t0 = performance.now()
  let i = 0
  while (performance.now() - t0 < seconds * 1000) {
    for (let k = 0; k < 256; k++) {
      const e = sched[i++ % sched.length]
      pubs[e.s].publish(payloads[e.s][++seq & (POOL - 1)])
    }
    // Keep the queue under half full: measure the drain, not the drop rate.
    while (rec.stats().queuedBytes > queueBytes / 2) await sleep(1)
    await new Promise((r) => setImmediate(r))
  }
  const s = await rec.close()
  const wall = (performance.now() - t0) / 1000
  bus.close()
  return { mbps: s.bytes / 1e6 / wall, drops: s.dropped, ratio: s.fileBytes / Math.max(1, s.bytes) }
}

/** The disk's own figure: fs.writeSync of 1 MiB buffers for `seconds` (page cache, as the recorder; fsync after the clock stops). */
function diskBaseline(dir: string, seconds: number): number {
  const buf = randomFillSync(new Uint8Array(1 << 20))
  const fd = openSync(join(dir, 'baseline.bin'), 'w')
  const t0 = performance.now()
  let bytes = 0
  while (performance.now() - t0 < seconds * 1000) {
    writeSync(fd, buf)
    bytes += buf.length
  }
  const wall = (performance.now() - t0) / 1000
  fsyncSync(fd)
  closeSync(fd)
  return bytes / 1e6 / wall
}

const CLI = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url))

/**
 * The real thing: `onbus run` (the simulated vehicle, as far as this build
 * has simulators) and `onbus record` in another process over IPC for
 * `seconds`. Returns the recorder's summary, or null without the CLI.
 */
async function recordDaemon(dir: string, seconds: number): Promise<{ mbps: number; drops: number; messages: number; topics: number } | null> {
  if (!existsSync(CLI)) return null
  let port = 0
  for (;;) {
    const a = createUdpLink({ port: 0, receive: false })
    port = a.address().port
    a.close()
    try {
      createUdpLink({ port: port + 1, receive: false }).close()
      break
    } catch {
      // taken: try another pair
    }
  }
  const env = { ...process.env, ONBUS_IPC_DIR: join(dir, 'ipc'), ONBUS_SIM_LIDAR_PORT: String(port) }
  const d = spawn(process.execPath, [CLI, 'run', '--json'], { env, stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const t = setTimeout(() => reject(new Error('onbus run did not get ready in 30 s')), 30_000)
      d.stdout.on('data', (b: Buffer) => {
        out += b.toString()
        if (out.includes('"ready"')) {
          clearTimeout(t)
          resolve()
        }
      })
      d.on('exit', () => reject(new Error('onbus run exited')))
    })
    await sleep(2000) // modules up, rates steady
    const out = execFileSync(process.execPath, [CLI, 'record', '-o', join(dir, 'daemon.mcap'), '--duration', `${seconds}s`, '--json', '-q'], { env, encoding: 'utf8' })
    const s = JSON.parse(out.trim().split('\n').pop()!) as { bytes: number; dropped: number; messages: number; durationS: number; topics: unknown[] }
    return { mbps: s.bytes / 1e6 / s.durationS, drops: s.dropped, messages: s.messages, topics: s.topics.length }
  } finally {
    d.kill('SIGTERM')
    await new Promise((r) => d.on('exit', r))
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'onbus-bench-rec-'))
  try {
    const replaySeconds = QUICK ? 2 : 5
    const path = join(dir, 'timed.mcap')
    log(`writing ${replaySeconds} s of the vehicle mix with exact log times`)
    const n = await writeScheduled(path, replaySeconds)
    {
      // Read back the offsets in log_time order (what replay delivers).
      const { McapIndexedReader } = await import('@mcap/core')
      const { FileReadable, decompressHandlers } = await import('../lib/record/io.js')
      const r = await FileReadable.open(path)
      const reader = await McapIndexedReader.Initialize({ readable: r, decompressHandlers: await decompressHandlers() })
      recordedOffsets = new Float64Array(n)
      let k = 0
      let first = -1n
      for await (const m of reader.readMessages()) {
        if (first < 0n) first = m.logTime
        recordedOffsets[k++] = Number(m.logTime - first)
      }
      await r.close()
    }
    log(`replaying ${n} messages at 1× (precise sleeper, then setTimeout only)`)
    const precise = await replayTiming(path, 2)
    const plain = await replayTiming(path, 0)
    const floor = await sleeperFloor()
    line('record.replay.interarrival_dev_p50', precise.ia50, 'us', plain.ia50, 'setTimeout scheduler')
    line('record.replay.interarrival_dev_p99', precise.ia99, 'us', plain.ia99, 'setTimeout scheduler')
    line('record.replay.lateness_p50', precise.late50, 'us', plain.late50, 'setTimeout scheduler')
    line('record.replay.lateness_p99', precise.late99, 'us', plain.late99, 'setTimeout scheduler')
    line('record.replay.machine_floor_p99', floor.ia99, 'us', null, '')

    log(`recording the vehicle mix in real time for ${SECONDS} s (writer thread), then again with the writer on the event loop`)
    const v = await recordAtVehicleRate(dir, SECONDS, 'worker')
    const vt = await recordAtVehicleRate(dir, SECONDS, 'thread')
    line('record.vehicle.payload_rate', v.mbps, 'MB/s', null, '')
    line('record.vehicle.drops', v.drops, 'messages', vt.drops, 'writer on the event loop')
    line('record.vehicle.file_rate', v.fileMB / SECONDS, 'MB/s', null, '')
    // The publishing loop's 1 ms tick: how late it runs is what recording costs the bus.
    line('record.vehicle.tick_p99', v.tick99, 'ms', vt.tick99, 'writer on the event loop')
    line('record.vehicle.tick_max', v.tickMax, 'ms', vt.tickMax, 'writer on the event loop')
    log(`vehicle: ${v.published} published, ${v.messages} written, ${v.drops} dropped (writer on the loop: ${vt.drops} dropped)`)

    log(`onbus run + onbus record over IPC for ${SECONDS} s`)
    try {
      const dr = await recordDaemon(dir, SECONDS)
      if (dr) {
        line('record.daemon.payload_rate', dr.mbps, 'MB/s', null, '')
        line('record.daemon.drops', dr.drops, 'messages', null, '')
        log(`daemon: ${dr.messages} messages on ${dr.topics} topics, ${dr.drops} dropped`)
      } else log('daemon: dist/lib/cli/main.js not built, skipped')
    } catch (err) {
      log(`daemon: failed (${(err as Error).message}); its figures are missing from this run`)
    }

    const maxS = QUICK ? 2 : 5
    log(`max sustained record rate, ${maxS} s each (zstd, none), and the disk baseline`)
    const disk = diskBaseline(dir, maxS)
    const mz = await recordMax(dir, maxS, 'zstd')
    const mn = await recordMax(dir, maxS, 'none')
    const mzt = await recordMax(dir, maxS, 'zstd', 'thread')
    line('record.max.zstd', mz.mbps, 'MB/s', disk, 'fs.writeSync 1 MiB')
    line('record.max.none', mn.mbps, 'MB/s', disk, 'fs.writeSync 1 MiB')
    line('record.max.zstd_thread', mzt.mbps, 'MB/s', disk, 'fs.writeSync 1 MiB')
    line('record.max.drops', mz.drops + mn.drops + mzt.drops, 'messages', null, '')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
