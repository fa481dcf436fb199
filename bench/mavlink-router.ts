/**
 * MAVLink router benchmark: onbus's native router against a naive router
 * written on Node `dgram` + the TypeScript MavlinkParser (what a Node program
 * does today without onbus), in one run. mavlink-router itself is not
 * packaged for Debian 12 (`apt-cache policy mavlink-router`: none), so it is
 * not the baseline.
 *
 *   node dist/bench/mavlink-router.js [--runs 3] [--seconds 2] [--only udp,pty] [--lat-rate 20000] [--busy-poll 0]
 *
 * Prints one JSON object per line: { name, value, unit, baseline, baselineName, ratio, runs }
 * (`ratio` = onbus ÷ baseline; for throughput higher is better, for latency lower).
 * Progress goes to stderr.
 *
 * Method (bench/native/mav_probe.c does the sending and measuring, in C):
 * - Each router runs in its own child process: an endpoint taking traffic in
 *   (UDP server, or a PTY) and a UDP client endpoint sending it on to the C
 *   sink. Frames are MAVLink 2 SYSTEM_TIME (24 bytes, valid CRC), one per
 *   datagram, stamped with CLOCK_REALTIME by the sender.
 * - Throughput: the sender offers as much as it can (sendmmsg batches of 64)
 *   for `--seconds`; rate = frames reaching the sink ÷ time from its first to
 *   its last frame. Loss = 1 − received ÷ sent.
 * - Latency: `--lat-rate` frames/s evenly spaced; the sink takes realtime at
 *   receipt minus the stamp; p50/p99 over the run (sender → router → sink).
 * - PTY in → UDP out: the sender writes into a PTY master the router's UART
 *   endpoint reads (the naive router reads the PTY with fs streams).
 * - Latency is also taken with the router busy-polling `--busy-poll` µs
 *   (default 0: skipped; on 2 cores the spinning thread competes with the
 *   sender and sink), against the same naive baseline.
 * - Runs are interleaved (onbus, naive, onbus, …); medians are quoted.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync, mkdirSync, statSync, createReadStream, openSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
const ROOT = join(dirname(self), '..', '..')
const argv = process.argv.slice(2)
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : def
}
const log = (...a: unknown[]): void => {
  process.stderr.write(a.join(' ') + '\n')
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ------------------------------------------------------------------ child: a router

async function childRouter(kind: 'onbus' | 'naive', input: 'udp' | 'pty', outPort: number, ptyPath: string, busyPollUs: number): Promise<void> {
  const ready = (port: number): void => {
    process.stdout.write(JSON.stringify({ ready: true, port }) + '\n')
  }
  if (kind === 'onbus') {
    const { createMavlinkRouter } = await import('../lib/mavlink/index.js')
    const r = await createMavlinkRouter({
      busyPollUs,
      endpoints: [
        input === 'udp' ? { kind: 'udp-server', name: 'in', port: 0 } : { kind: 'uart', name: 'in', path: ptyPath },
        { kind: 'udp-client', name: 'out', address: '127.0.0.1', port: outPort },
      ],
    })
    ready(input === 'udp' ? r.address('in').port : 0)
    process.stdin.resume()
    process.stdin.on('end', () => {
      const st = r.stats()
      process.stderr.write(JSON.stringify(st.endpoints.map((e) => ({ name: e.name, in: e.framesIn, out: e.framesOut, drops: e.drops }))) + '\n')
      r.close()
      process.exit(0)
    })
    return
  }
  // naive: dgram + the TypeScript parser, broadcast to every other endpoint
  const { MavlinkParser } = await import('../lib/mavlink/index.js')
  const out = createSocket('udp4')
  out.connect(outPort, '127.0.0.1')
  await new Promise<void>((r) => out.once('connect', () => r()))
  const forward = (bytes: Uint8Array): void => {
    out.send(bytes)
  }
  if (input === 'udp') {
    const sock = createSocket('udp4')
    const parser = new MavlinkParser({ datagram: true })
    sock.on('message', (m) => parser.push(m, (f) => forward(f.bytes.slice())))
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    ready(sock.address().port)
  } else {
    const { execFileSync: ex } = await import('node:child_process')
    ex('stty', ['-F', ptyPath, 'raw', '-echo'])
    const parser = new MavlinkParser()
    const s = createReadStream('', { fd: openSync(ptyPath, 'r+'), highWaterMark: 65536 })
    s.on('data', (d) => parser.push(d as Buffer, (f) => forward(f.bytes.slice())))
    s.on('error', () => {})
    ready(0)
  }
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
}

// ------------------------------------------------------------------ harness

function probe(): string {
  const dir = join(ROOT, 'build', 'tools')
  const bin = join(dir, 'mav_probe')
  const src = join(ROOT, 'bench', 'native', 'mav_probe.c')
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    log('compiling mav_probe (build/tools has no up-to-date binary)')
    mkdirSync(dir, { recursive: true })
    execFileSync('cc', ['-O2', '-Wall', '-o', bin, src], { stdio: 'inherit' })
  }
  return bin
}

/** The JSON lines a child prints: `next()` resolves with the next one, `last` with the final one at exit. */
function jsonLines(p: ChildProcess): { next(): Promise<Record<string, unknown>>; last: Promise<Record<string, unknown>> } {
  const got: Record<string, unknown>[] = []
  const waiters: ((v: Record<string, unknown>) => void)[] = []
  let taken = 0
  let exited = false
  const rl = createInterface({ input: p.stdout! })
  rl.on('line', (l) => {
    if (!l.startsWith('{')) return
    got.push(JSON.parse(l) as Record<string, unknown>)
    const w = waiters.shift()
    if (w) w(got[taken++])
  })
  const last = new Promise<Record<string, unknown>>((resolve) => {
    p.once('exit', () => {
      exited = true
      for (const w of waiters.splice(0)) w({})
      rl.close()
      resolve(got[got.length - 1] ?? {})
    })
  })
  return {
    next: () =>
      new Promise((resolve) => {
        if (taken < got.length) resolve(got[taken++])
        else if (exited) resolve({})
        else waiters.push(resolve)
      }),
    last,
  }
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  const port = s.address().port
  s.close()
  return port
}

interface RunResult {
  sent: number
  received: number
  rate: number
  p50: number
  p99: number
}

async function runOnce(kind: 'onbus' | 'naive', input: 'udp' | 'pty', seconds: number, rate: number, busyPollUs = 0): Promise<RunResult> {
  const bin = probe()
  const sinkPort = await freePort()
  const sink = spawn(bin, ['sink', '--port', String(sinkPort), '--seconds', String(seconds + 2)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const sinkOut = jsonLines(sink)
  await sinkOut.next()
  let sender: ChildProcess
  let senderOut: ReturnType<typeof jsonLines> | undefined
  let ptyPath = ''
  if (input === 'pty') {
    sender = spawn(bin, ['ptysend', '--seconds', String(seconds), '--rate', String(rate), '--delay-ms', '1500'], { stdio: ['ignore', 'pipe', 'inherit'] })
    senderOut = jsonLines(sender)
    ptyPath = (await senderOut.next()).pty as string
  }
  const router = spawn(process.execPath, [self, '--child', kind, '--input', input, '--out-port', String(sinkPort), '--pty', ptyPath, '--busy-poll', String(busyPollUs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const ready = await jsonLines(router).next()
  let sendDone: Promise<Record<string, unknown>>
  if (input === 'udp') {
    sender = spawn(bin, ['send', '--port', String(ready.port), '--seconds', String(seconds), '--rate', String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] })
    sendDone = jsonLines(sender).last
  } else {
    sendDone = senderOut!.last
  }
  const sent = await sendDone
  const got = await sinkOut.last
  router.stdin!.end()
  await new Promise((r) => router.once('exit', r))
  return { sent: Number(sent.sent), received: Number(got.received), rate: Number(got.rate), p50: Number(got.p50), p99: Number(got.p99) }
}

interface Row {
  name: string
  value: number
  unit: string
  baseline: number
  baselineName: string
  ratio: number
  runs: number[]
  baselineRuns: number[]
  loss?: number
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '3'))
  const seconds = Number(arg('seconds', '2'))
  const latRate = Number(arg('lat-rate', '20000'))
  const only = new Set(arg('only', 'udp,pty').split(','))
  const busyPoll = Number(arg('busy-poll', '0'))
  const rows: Row[] = []
  const emitRow = (name: string, unit: string, a: number[], b: number[], extra: Partial<Row> = {}): void => {
    const row: Row = { name, value: median(a), unit, baseline: median(b), baselineName: 'node-dgram-js-router', ratio: median(a) / median(b), runs: a, baselineRuns: b, ...extra }
    rows.push(row)
    process.stdout.write(JSON.stringify(row) + '\n')
  }
  for (const input of ['udp', 'pty'] as const) {
    if (!only.has(input)) continue
    const tp = { onbus: [] as number[], naive: [] as number[] }
    const loss = { onbus: [] as number[], naive: [] as number[] }
    const p50 = { onbus: [] as number[], naive: [] as number[] }
    const p99 = { onbus: [] as number[], naive: [] as number[] }
    const spin = { p50: [] as number[], p99: [] as number[] }
    for (let i = 0; i < runs; i++) {
      for (const kind of ['onbus', 'naive'] as const) {
        const t = await runOnce(kind, input, seconds, 0)
        tp[kind].push(t.rate)
        loss[kind].push(t.sent > 0 ? 1 - t.received / t.sent : 0)
        log(`${input} ${kind} saturate: sent ${t.sent} received ${t.received} ${Math.round(t.rate)} frames/s`)
        await sleep(200)
        const l = await runOnce(kind, input, seconds, latRate)
        p50[kind].push(l.p50)
        p99[kind].push(l.p99)
        log(`${input} ${kind} ${latRate}/s: p50 ${l.p50} us p99 ${l.p99} us (received ${l.received}/${l.sent})`)
        await sleep(200)
      }
      if (busyPoll > 0) {
        const l = await runOnce('onbus', input, seconds, latRate, busyPoll)
        spin.p50.push(l.p50)
        spin.p99.push(l.p99)
        log(`${input} onbus busy-poll ${busyPoll} us, ${latRate}/s: p50 ${l.p50} us p99 ${l.p99} us (received ${l.received}/${l.sent})`)
        await sleep(200)
      }
    }
    const tag = input === 'udp' ? 'udp->udp' : 'pty->udp'
    emitRow(`mavlink.router.${tag}.throughput`, 'frames/s', tp.onbus, tp.naive, { loss: median(loss.onbus) })
    emitRow(`mavlink.router.${tag}.p50@${latRate}`, 'us', p50.onbus, p50.naive)
    emitRow(`mavlink.router.${tag}.p99@${latRate}`, 'us', p99.onbus, p99.naive)
    if (busyPoll > 0) {
      emitRow(`mavlink.router.${tag}.busypoll.p50@${latRate}`, 'us', spin.p50, p50.naive)
      emitRow(`mavlink.router.${tag}.busypoll.p99@${latRate}`, 'us', spin.p99, p99.naive)
    }
  }
}

if (argv.includes('--child')) {
  void childRouter(arg('child', 'onbus') as 'onbus' | 'naive', arg('input', 'udp') as 'udp' | 'pty', Number(arg('out-port', '0')), arg('pty', ''), Number(arg('busy-poll', '0')))
} else {
  await main()
}
