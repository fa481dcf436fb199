/**
 * Between-processes bus benchmark: onbus's IPC transport against the usual
 * alternatives, measured in the same run on the same machine.
 *
 *   node dist/bench/bus-ipc.js [--quick]
 *
 * - 64 B messages: rate (messages/s, publisher → subscriber process, nothing
 *   lost) and one-way latency p50/p99 (paced at ~1 kHz), against zeromq
 *   (npm `zeromq` 6, PUB/SUB over ipc://).
 * - 4 MiB frames: GB/s and CPU (both processes, ms of CPU per GB) at 30
 *   frames/s and at the maximum rate, and one-way latency p50/p99, against
 *   Node `net` over a Unix stream socket (the receiver reassembles each frame,
 *   as it must). onbus publishes loaned shared-memory slots (the producer
 *   writes the frame in place, the subscriber reads it in place); a third
 *   figure publishes a plain buffer, which costs one copy into the slot.
 *   Latency at 256 KiB is printed beside 4 MiB to show whether it grows with
 *   the frame size.
 *
 * Prints one JSON line per figure: { name, value, unit, baseline, ratio }.
 * Latency is publish → subscriber callback, read on CLOCK_MONOTONIC, which
 * processes of one machine share. Children are this same file with --child.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBus, createIpcTransport, qosProfiles, rawCodec, monotonicNs, type Bus, type IpcTransport } from '../lib/bus/index.js'

const QUICK = process.argv.includes('--quick')
/** Messages at the start of a latency run that are not counted (ring mapping, first page faults). */
const WARM = 3
const MSGS = QUICK ? 200_000 : 1_000_000
const LAT_MSGS = (QUICK ? 1000 : 3000) + WARM
const FRAME = 4 << 20
const SELF = fileURLToPath(import.meta.url)

// ---- helpers -------------------------------------------------------------------

function line(name: string, value: number, unit: string, baseline: number | null, baselineName: string): void {
  const round = (x: number): number => (Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 1000) / 1000)
  console.log(
    JSON.stringify({ name, value: round(value), unit, baseline: baseline === null ? null : round(baseline), baselineName, ratio: baseline ? round(value / baseline) : null }),
  )
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** A child process whose stdout JSON lines can be awaited. */
class Child {
  private readonly lines: Record<string, unknown>[] = []
  private waiters: (() => void)[] = []
  readonly proc
  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [SELF, '--child', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let buf = ''
    this.proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (l.startsWith('{')) this.lines.push(JSON.parse(l) as Record<string, unknown>)
      }
      for (const w of this.waiters.splice(0)) w()
    })
  }
  async wait(ev: string, ms = 60_000): Promise<Record<string, unknown>> {
    const t0 = Date.now()
    for (;;) {
      const i = this.lines.findIndex((l) => l.ev === ev)
      if (i >= 0) return this.lines.splice(i, 1)[0]
      if (Date.now() - t0 > ms) throw new Error(`child: no '${ev}' in ${ms} ms`)
      await new Promise<void>((r) => {
        this.waiters.push(r)
        setTimeout(r, 100)
      })
    }
  }
  /** The next line of kind `ev` produced from now on (older ones are discarded). */
  fresh(ev: string): Promise<Record<string, unknown>> {
    for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i].ev === ev) this.lines.splice(i, 1)
    return this.wait(ev)
  }
  /** Waits until the child has `n` messages, or its count stops moving (drops); returns its last progress line. */
  async settle(n: number): Promise<Record<string, unknown>> {
    let prev = -1
    for (;;) {
      const p = await this.fresh('progress')
      if (Number(p.n) >= n || Number(p.n) === prev) return p
      prev = Number(p.n)
    }
  }
  async end(): Promise<void> {
    this.proc.kill('SIGTERM')
    await new Promise((r) => this.proc.once('exit', r))
  }
}

const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

// ---- children --------------------------------------------------------------------

/** Receiver side. Modes: onbus-rate, onbus-lat, onbus-frames; zmq-rate, zmq-lat; net-frames. Reports counts, last receive time, latencies, CPU. */
async function child(mode: string, arg: string, expected: number, size: number): Promise<void> {
  const out = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n')
  const lat = new Float64Array(expected)
  let n = 0
  let tLast = 0
  const cpu0 = cpuMs()
  const report = (): void => {
    // The first messages of a run map the ring and fault its pages in: warm-up, not latency.
    const l = lat.slice(Math.min(WARM, n), Math.min(n, expected)).sort()
    out({ ev: 'done', n, tLast, p50: l.length ? quantile(l, 0.5) : 0, p99: l.length ? quantile(l, 0.99) : 0, cpu: cpuMs() - cpu0 })
  }
  process.on('SIGTERM', () => process.exit(0))
  setInterval(() => out({ ev: 'progress', n, tLast, cpu: cpuMs() - cpu0 }), 250).unref()
  if (mode.startsWith('onbus')) {
    const bus = createBus({ name: 'bench-sub' })
    const ipc = createIpcTransport({ dir: arg })
    bus.addTransport(ipc)
    const t = bus.topic('bench', { qos: mode === 'onbus-frames' ? { ...qosProfiles.sensorData, depth: 8 } : { ...qosProfiles.reliable, depth: 4096 }, codec: rawCodec })
    const f64 = new Float64Array(1)
    const u8 = new Uint8Array(f64.buffer)
    t.subscribe((b) => {
      const now = monotonicNs()
      for (let k = 0; k < 8; k++) u8[k] = b[k]
      if (n < expected) lat[n] = now - f64[0]
      if (mode === 'onbus-frames' && b[b.length - 1] !== 7) out({ ev: 'bad' })
      n++
      tLast = now
      if (n === expected) report()
    })
    out({ ev: 'ready' })
    setInterval(() => {}, 1 << 30)
    return
  }
  if (mode.startsWith('zmq')) {
    const zmq = await import('zeromq')
    const sub = new zmq.Subscriber({ receiveHighWaterMark: 0 })
    sub.connect(arg)
    sub.subscribe()
    out({ ev: 'ready' })
    const f64 = new Float64Array(1)
    const u8 = new Uint8Array(f64.buffer)
    for await (const [msg] of sub) {
      const now = monotonicNs()
      for (let k = 0; k < 8; k++) u8[k] = msg[k]
      if (n < expected) lat[n] = now - f64[0]
      n++
      tLast = now
      if (n === expected) report()
    }
  }
  if (mode === 'net-frames') {
    const frame = Buffer.allocUnsafe(size + 8)
    let have = 0
    const server = net.createServer((sock) => {
      sock.on('data', (chunk: Buffer) => {
        let off = 0
        while (off < chunk.length) {
          const take = Math.min(chunk.length - off, frame.length - have)
          chunk.copy(frame, have, off, off + take)
          have += take
          off += take
          if (have === frame.length) {
            const now = monotonicNs()
            if (n < expected) lat[n] = now - frame.readDoubleLE(0)
            n++
            tLast = now
            have = 0
            if (n === expected) report()
          }
        }
      })
    })
    server.listen(arg, () => out({ ev: 'ready' }))
  }
}

// ---- publishers ------------------------------------------------------------------

async function onbusBus(dir: string): Promise<{ bus: Bus; ipc: IpcTransport; sub: Child; close: () => Promise<void> }> {
  const bus = createBus({ name: 'bench-pub' })
  const ipc = createIpcTransport({ dir, shmSlots: 8, shmSlotSize: FRAME + 4096 })
  bus.addTransport(ipc)
  return {
    bus,
    ipc,
    sub: null as unknown as Child,
    close: async () => {
      bus.close()
      ipc.close()
    },
  }
}

/** Waits until a remote subscriber of `topic` has been announced to `bus`. */
async function matched(bus: Bus, topic: string): Promise<void> {
  while (!bus.info().topics.some((t) => t.name === topic && t.subscribers.some((s) => s.forwarder !== undefined))) await sleep(5)
}

async function onbus64(dir: string, mode: 'rate' | 'lat'): Promise<Record<string, unknown>> {
  const expected = mode === 'rate' ? MSGS : LAT_MSGS
  const sub = new Child([`onbus-${mode}`, dir, String(expected)])
  const o = await onbusBus(dir)
  await sub.wait('ready')
  const t = o.bus.topic('bench', { qos: { ...qosProfiles.reliable, depth: 4096 }, codec: rawCodec })
  const pub = t.publisher()
  await matched(o.bus, 'bench')
  const f64 = new Float64Array(8)
  const msg = new Uint8Array(f64.buffer) // 64 B; the stamp in the first 8
  let t0 = 0
  if (mode === 'rate') {
    t0 = monotonicNs()
    for (let i = 0; i < MSGS; i++) {
      f64[0] = monotonicNs()
      if (!pub.publish(msg)) {
        await pub.ready()
        i--
      }
    }
  } else {
    for (let i = 0; i < LAT_MSGS; i++) {
      f64[0] = monotonicNs()
      pub.publish(msg)
      await sleep(1)
    }
  }
  const r = await sub.wait('done', 120_000)
  await sub.end()
  await o.close()
  return { ...r, t0 }
}

async function zmq64(dir: string, mode: 'rate' | 'lat'): Promise<Record<string, unknown>> {
  const zmq = await import('zeromq')
  const endpoint = `ipc://${join(dir, 'zmq.ipc')}`
  const pub = new zmq.Publisher({ sendHighWaterMark: 0 })
  await pub.bind(endpoint)
  const expected = mode === 'rate' ? MSGS : LAT_MSGS
  const sub = new Child([`zmq-${mode}`, endpoint, String(expected)])
  await sub.wait('ready')
  await sleep(500) // the slow-joiner: let the subscription reach the publisher
  const f64 = new Float64Array(8)
  const msg = new Uint8Array(f64.buffer)
  let t0 = 0
  if (mode === 'rate') {
    t0 = monotonicNs()
    for (let i = 0; i < MSGS; i++) {
      f64[0] = monotonicNs()
      await pub.send(msg)
    }
  } else {
    for (let i = 0; i < LAT_MSGS; i++) {
      f64[0] = monotonicNs()
      await pub.send(msg)
      await sleep(1)
    }
  }
  const r = await sub.wait('done', 120_000)
  await sub.end()
  pub.close()
  return { ...r, t0 }
}

interface FrameRun {
  gbps: number
  cpuMsPerGB: number
  p50: number
  p99: number
  frames: number
}

/** 4 MiB (or `size`) frames for `ms` at `fps` (0 = as fast as possible). `how`: loan (in place) or copy (plain buffer). */
async function onbusFrames(dir: string, fps: number, ms: number, size: number, how: 'loan' | 'copy'): Promise<FrameRun> {
  const expected = 1_000_000
  const sub = new Child(['onbus-frames', dir, String(expected)])
  const o = await onbusBus(dir)
  await sub.wait('ready')
  const t = o.bus.topic('bench', { qos: { ...qosProfiles.sensorData, depth: 8 }, codec: rawCodec })
  const pub = t.publisher()
  await matched(o.bus, 'bench')
  const plain = new Uint8Array(size).fill(7)
  const stamp = new Float64Array(1)
  const stampBytes = new Uint8Array(stamp.buffer)
  let frames = 0
  const c0 = cpuMs()
  const cc0 = Number((await sub.fresh('progress')).cpu)
  const t0 = performance.now()
  const t0m = monotonicNs()
  while (performance.now() - t0 < ms) {
    if (how === 'loan') {
      const loan = await o.ipc.loanAsync(size)
      loan.bytes[size - 1] = 7 // the producer (camera, decoder) writes the frame here
      stamp[0] = monotonicNs()
      loan.bytes.set(stampBytes, 0)
      loan.publish(pub)
    } else {
      stamp[0] = monotonicNs()
      plain.set(stampBytes, 0)
      // Wait for a free slot so nothing is dropped: the same pacing as the loan path.
      while (o.ipc.stats().shmFree === 0) await new Promise((r) => setImmediate(r))
      pub.publish(plain)
    }
    frames++
    if (fps > 0) {
      const next = t0 + (frames * 1000) / fps
      const wait = next - performance.now()
      if (wait > 0) await sleep(wait)
    } else if (frames % 8 === 0) await new Promise((r) => setImmediate(r))
  }
  const c1 = cpuMs()
  // Let the last frames arrive.
  const prog = await sub.settle(frames)
  if (Number(prog.n) < frames) console.error(`note: ${frames - Number(prog.n)} of ${frames} frames not received`)
  const ccpu = Number(prog.cpu) - cc0
  await sub.end()
  await o.close()
  const r = await latencyOf(dir, fps, size, how)
  // Only what arrived counts.
  const gb = (Number(prog.n) * size) / 1e9
  return { gbps: gb / ((Number(prog.tLast) - t0m) / 1e9), cpuMsPerGB: (c1 - c0 + ccpu) / gb, p50: r.p50, p99: r.p99, frames: Number(prog.n) }
}

/** Latency of frames at a modest rate (30/s, or 200/s for the max-rate run), separately from throughput. */
async function latencyOf(dir: string, fps: number, size: number, how: 'loan' | 'copy'): Promise<{ p50: number; p99: number }> {
  const count = (QUICK ? 30 : 150) + WARM
  const sub = new Child(['onbus-frames', dir, String(count)])
  const o = await onbusBus(dir)
  await sub.wait('ready')
  const t = o.bus.topic('bench', { qos: { ...qosProfiles.sensorData, depth: 8 }, codec: rawCodec })
  const pub = t.publisher()
  await matched(o.bus, 'bench')
  const plain = new Uint8Array(size).fill(7)
  const stamp = new Float64Array(1)
  const stampBytes = new Uint8Array(stamp.buffer)
  const period = 1000 / (fps > 0 ? fps : 200)
  for (let i = 0; i < count; i++) {
    if (how === 'loan') {
      const loan = await o.ipc.loanAsync(size)
      loan.bytes[size - 1] = 7
      stamp[0] = monotonicNs()
      loan.bytes.set(stampBytes, 0)
      loan.publish(pub)
    } else {
      stamp[0] = monotonicNs()
      plain.set(stampBytes, 0)
      pub.publish(plain)
    }
    await sleep(period)
  }
  const r = await sub.wait('done')
  await sub.end()
  await o.close()
  return { p50: Number(r.p50), p99: Number(r.p99) }
}

async function netFrames(dir: string, fps: number, ms: number, size: number): Promise<FrameRun> {
  const path = join(dir, `net-${process.hrtime.bigint()}.sock`)
  const expected = 1_000_000
  const sub = new Child(['net-frames', path, String(expected), String(size)])
  await sub.wait('ready')
  const sock = net.connect(path)
  await new Promise((r) => sock.once('connect', r))
  const frame = Buffer.alloc(size + 8, 7)
  const send = async (): Promise<void> => {
    frame.writeDoubleLE(monotonicNs(), 0)
    if (!sock.write(frame)) await new Promise((r) => sock.once('drain', r))
  }
  // Throughput
  let frames = 0
  const c0 = cpuMs()
  const cc0 = Number((await sub.fresh('progress')).cpu)
  const t0 = performance.now()
  const t0m = monotonicNs()
  while (performance.now() - t0 < ms) {
    await send()
    frames++
    if (fps > 0) {
      const wait = t0 + (frames * 1000) / fps - performance.now()
      if (wait > 0) await sleep(wait)
    }
  }
  const prog = await sub.settle(frames)
  if (Number(prog.n) < frames) console.error(`note: ${frames - Number(prog.n)} of ${frames} frames not received`)
  const c1 = cpuMs()
  const ccpu = Number(prog.cpu) - cc0
  sock.destroy()
  await sub.end()
  const gb = (Number(prog.n) * size) / 1e9
  // Latency, paced
  const count = (QUICK ? 30 : 150) + WARM
  const sub2 = new Child(['net-frames', path + '2', String(count), String(size)])
  await sub2.wait('ready')
  const s2 = net.connect(path + '2')
  await new Promise((r) => s2.once('connect', r))
  const period = 1000 / (fps > 0 ? fps : 200)
  for (let i = 0; i < count; i++) {
    frame.writeDoubleLE(monotonicNs(), 0)
    s2.write(frame)
    await sleep(period)
  }
  const r = await sub2.wait('done')
  s2.destroy()
  await sub2.end()
  return { gbps: gb / ((Number(prog.tLast) - t0m) / 1e9), cpuMsPerGB: (c1 - c0 + ccpu) / gb, p50: Number(r.p50), p99: Number(r.p99), frames: Number(prog.n) }
}

// ---- main -----------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'onbus-bench-'))
  try {
    const rate = (r: Record<string, unknown>): number => Number(r.n) / ((Number(r.tLast) - Number(r.t0)) / 1e9)
    const oRate = rate(await onbus64(dir, 'rate'))
    const zRate = rate(await zmq64(dir, 'rate'))
    line('bus.ipc.64B.rate', oRate, 'msg/s', zRate, 'zeromq')
    // Tail latency on a shared machine is noisy: median of three alternating runs each.
    const med = (xs: number[]): number => xs.sort((a, b) => a - b)[1]
    const o50: number[] = [], o99: number[] = [], z50: number[] = [], z99: number[] = []
    for (let k = 0; k < 3; k++) {
      const o = await onbus64(dir, 'lat')
      const z = await zmq64(dir, 'lat')
      o50.push(Number(o.p50)), o99.push(Number(o.p99)), z50.push(Number(z.p50)), z99.push(Number(z.p99))
    }
    line('bus.ipc.64B.p50', med(o50) / 1000, 'us', med(z50) / 1000, 'zeromq')
    line('bus.ipc.64B.p99', med(o99) / 1000, 'us', med(z99) / 1000, 'zeromq')

    const secs = QUICK ? 1000 : 3000
    for (const fps of [30, 0]) {
      const tag = fps ? '30fps' : 'max'
      const n = await netFrames(dir, fps, secs, FRAME)
      const o = await onbusFrames(dir, fps, secs, FRAME, 'loan')
      const c = await onbusFrames(dir, fps, secs, FRAME, 'copy')
      line(`bus.ipc.4MiB.${tag}.gbps`, o.gbps, 'GB/s', n.gbps, 'net-unix')
      line(`bus.ipc.4MiB.${tag}.copy.gbps`, c.gbps, 'GB/s', n.gbps, 'net-unix')
      line(`bus.ipc.4MiB.${tag}.cpu`, o.cpuMsPerGB, 'ms CPU/GB (both processes)', n.cpuMsPerGB, 'net-unix')
      line(`bus.ipc.4MiB.${tag}.copy.cpu`, c.cpuMsPerGB, 'ms CPU/GB (both processes)', n.cpuMsPerGB, 'net-unix')
      line(`bus.ipc.4MiB.${tag}.p50`, o.p50 / 1000, 'us', n.p50 / 1000, 'net-unix')
      line(`bus.ipc.4MiB.${tag}.p99`, o.p99 / 1000, 'us', n.p99 / 1000, 'net-unix')
    }
    const small = await latencyOf(dir, 30, 256 << 10, 'loan')
    const nSmall = await netFrames(dir, 30, QUICK ? 300 : 1000, 256 << 10)
    line('bus.ipc.256KiB.30fps.p50', small.p50 / 1000, 'us', nSmall.p50 / 1000, 'net-unix')
    line('bus.ipc.256KiB.30fps.p99', small.p99 / 1000, 'us', nSmall.p99 / 1000, 'net-unix')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--child') {
  void child(process.argv[3], process.argv[4], Number(process.argv[5]), Number(process.argv[6] ?? FRAME))
} else {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
