/**
 * `npm run bench`: onbus's UDP receive path against Node `dgram` and a plain C
 * `recvmmsg` sink (the limit), on loopback, in one run.
 *
 *   npm run bench                      # full run: ~3 minutes on a quiet machine
 *   node dist/bench/run.js [--quick] [--runs 5] [--seconds 1] [--only rx,lat,pingpong]
 *                          [--sizes 64,1400] [--no-pin] [--pin-sender 1] [--pin-receiver 0]
 *                          [--warmup 0.5] [--no-wait] [--bg-limit 0.35] [--out FILE]
 *
 * Prints one JSON object per line to stdout and writes the same lines to
 * bench/results/latest.json (JSON lines), plus a markdown table to
 * bench/results/latest.md. Each row is { name, value, unit, baseline?, ratio?,
 * runs }: `ratio` = the onbus figure ÷ the baseline's figure from this same
 * run (for latencies and CPU lower is better, so < 1 is onbus ahead); `runs`
 * holds the per-run figures whose median is `value`. A figure compared with
 * two baselines (dgram and c-recvmmsg) appears as two rows of the same name.
 * Progress goes to stderr.
 *
 * Method:
 * - Every receiver runs in its own child process, so its CPU time
 *   (process.cpuUsage / getrusage, all threads) is its alone.
 * - Pinning: the traffic source (the C sender, the ping-pong client) runs on
 *   CPU 1 and the process under test (receiver, echo peer; all its threads,
 *   via taskset) on CPU 0. Unpinned, the scheduler sometimes puts both on one
 *   core and sometimes not, and on this 2-core VM a wake-up across cores costs
 *   ~45 us against ~5 us on the same core, so latency figures came out
 *   bimodal. Pinned, every receiver gets exactly one core (onbus's I/O thread
 *   shares it with its JS thread), which is also what makes "CPU per datagram"
 *   and "datagrams/s on one core" comparable with the single-threaded C sink
 *   and dgram. On loopback the sender's CPU also carries the kernel's receive
 *   path up to the socket queue. `--no-pin` (or `--pin-sender N`,
 *   `--pin-receiver N`) changes this.
 * - Saturation (`rx`): the sender offers as much as it can with UDP GSO
 *   (UDP_SEGMENT + sendmmsg); a plain sendmmsg sender is slower than dgram
 *   itself. Rate = datagrams delivered to the handler ÷ the time from the
 *   first to the last one; loss = 1 − delivered ÷ sent; CPU = receiver CPU
 *   seconds per million delivered datagrams. The `gro` receiver (onbus with
 *   UDP_GRO, split natively) gets the same GSO stream; the kernel then skips
 *   segmentation, so the sender offers several times more.
 * - Latency (`lat`): 20,000 datagrams/s evenly spaced, one per sendmsg. The
 *   sender writes CLOCK_REALTIME ns into bytes 0..7; the handler subtracts it
 *   from the clock read when it runs. onbus and the C sink also report kernel
 *   receive stamp → handler.
 * - Ping-pong (`pingpong`): 64 B back and forth, one in flight; round trip
 *   measured by the client. onbus↔onbus, dgram↔dgram, C↔C (epoll), and the
 *   busy-poll variants (onbus `busyPollUs`, C spinning on recv) — spin 50 us.
 * - Each case: a 0.5 s warm-up, then `--runs` runs of `--seconds`, cases
 *   interleaved run by run so a noisy moment hits all of them; medians quoted.
 *   The machine is shared: before each run the harness waits for it to go
 *   quiet, and a receiver run during which other processes used more than
 *   `--bg-limit` (0.35) cores is taken again (twice at most). On a busy
 *   machine that waiting can take longer than the measuring; `--no-wait`
 *   skips it (and says so in the output: figures are then noisier).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { args } from './common.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const opt = args()
// --quick: a smoke run (one short run per case), e.g. under QEMU.
const QUICK = opt.quick === 'true'
// Five short runs rather than three long ones: on this shared VM a single
// host-side stall of ~20 ms decides a run's p99, and a median of five is
// harder to move than a median of three.
const RUNS = Number(opt.runs ?? (QUICK ? 1 : 5))
const SECONDS = Number(opt.seconds ?? (QUICK ? 0.5 : 1))
const WARMUP_SECONDS = Number(opt.warmup ?? (QUICK ? 0.2 : 0.5))
const ONLY = opt.only ? new Set(opt.only.split(',')) : null
const SIZES = (opt.sizes ?? '64,1400').split(',').map(Number)
const PIN = cpus().length > 1 && opt['no-pin'] !== 'true' && hasTaskset()
const PIN_SENDER = PIN ? Number(opt['pin-sender'] ?? 1) : -1
const PIN_RECEIVER = PIN ? Number(opt['pin-receiver'] ?? 0) : -1
const OUT = opt.out ?? join(ROOT, 'bench', 'results', 'latest.json')
const LATENCY_RATE = 20_000
const SPIN_US = 50

/** Same receive buffer for everyone: what an unprivileged dgram socket may ask for here. */
function rcvBufBytes(): number {
  try {
    const max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
    if (max > 0) return Math.min(8 << 20, max)
  } catch {
    // not Linux /proc: keep the default
  }
  return 8 << 20
}
const RCVBUF = rcvBufBytes()

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** The command line that runs `cmd` on one CPU (all its threads), or as is when cpu < 0. */
function onCpu(cpu: number, cmd: string, argv: string[]): [string, string[]] {
  return cpu >= 0 ? ['taskset', ['-c', String(cpu), cmd, ...argv]] : [cmd, argv]
}

function log(msg: string): void {
  process.stderr.write(msg + '\n')
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

// ---------------------------------------------------------------- tools

const TOOLS = ['udp_sender', 'udp_sink', 'udp_pingpong'] as const
type Tool = (typeof TOOLS)[number]

/**
 * The C programs are built by CMake into build/tools. A build directory
 * configured before bench/native existed has no tools target; then (or when
 * a source is newer than its binary) compile them here with the same flags.
 */
function ensureTools(): Record<Tool, string> {
  const dir = join(ROOT, 'build', 'tools')
  const out = {} as Record<Tool, string>
  for (const t of TOOLS) {
    const bin = join(dir, t)
    const src = join(ROOT, 'bench', 'native', `${t}.c`)
    if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
      log(`compiling ${t} (build/tools has no up-to-date binary)`)
      mkdirSync(dir, { recursive: true })
      execFileSync('cc', ['-O2', '-Wall', '-o', bin, src], { stdio: 'inherit' })
    }
    out[t] = bin
  }
  return out
}

/** Busy fraction of all CPUs over `ms`, from /proc/stat (0 when unreadable). */
async function cpuBusy(ms: number): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const idle = f[3] + (f[4] ?? 0)
    return { idle, total: f.reduce((a, b) => a + b, 0) }
  }
  try {
    const a = read()
    await sleep(ms)
    const b = read()
    return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0
  } catch {
    return 0
  }
}

/** CPU seconds the whole machine has spent busy since boot (/proc/stat, USER_HZ = 100). */
function machineBusySec(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100
  } catch {
    return NaN
  }
}

/**
 * Measures what the rest of the machine did during one run: machine-wide busy
 * CPU minus what this benchmark's processes report for themselves (harness,
 * receiver, sender). Kernel work not charged to a task (loopback softirq) is
 * part of the remainder, so it is never 0; a build or a test run shows up as
 * most of a core or more.
 */
class Background {
  private readonly busy0 = machineBusySec()
  private readonly self0 = process.cpuUsage()
  private readonly t0 = performance.now()
  /** Cores' worth of CPU used by others during the run. */
  cores(oursSec: number): number {
    const self = process.cpuUsage(this.self0)
    const wall = (performance.now() - this.t0) / 1000
    const other = machineBusySec() - this.busy0 - oursSec - (self.user + self.system) / 1e6
    return Number.isFinite(other) && wall > 0 ? Math.max(0, other / wall) : 0
  }
}
/** Above this much foreign load during a run (in cores), the run is taken again. */
const BG_LIMIT = Number(opt['bg-limit'] ?? 0.35)
/** --no-wait: measure at once, whatever else runs (bounded time, noisier figures). */
const NO_WAIT = opt['no-wait'] === 'true'
const MAX_RETRIES = 2

/**
 * Waits while something else keeps the machine busy (a build, a test run):
 * the machine is shared, and figures taken beside a compiler mean little.
 * Between runs this benchmark's own children are idle, so the load seen is
 * someone else's. Gives up waiting after 3 minutes and says so.
 */
async function waitQuiet(): Promise<void> {
  if (NO_WAIT) return
  const t = performance.now()
  let waited = 0
  while ((await cpuBusy(200)) > 0.2) {
    if (waited === 0) log('  (the machine is busy with something else; waiting for it to go quiet)')
    if (waited >= 180_000) {
      log('  (still busy after 3 minutes; measuring anyway, expect noise)')
      noisy = true
      break
    }
    await sleep(2000)
    waited += 2300
  }
  if (waited > 0) waitedMs += performance.now() - t
}
let noisy = false
/** Time spent waiting for others' load to pass, and runs taken again: reported at the end. */
let waitedMs = 0
let retaken = 0

// ---------------------------------------------------------------- children

/** A child process speaking JSON lines on stdin/stdout. */
class Child {
  private readonly proc: ChildProcess
  private readonly lines: unknown[] = []
  private waiter: ((v: unknown) => void) | null = null
  private readonly exited: Promise<number | null>

  constructor(cmd: string, argv: string[]) {
    this.proc = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
    this.proc.on('error', (err) => log(`  cannot run ${cmd}: ${err.message}`))
    // A child that died must not take the harness with it through EPIPE.
    this.proc.stdin!.on('error', () => {})
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)))
    this.proc.on('exit', () => {
      if (this.waiter) {
        const w = this.waiter
        this.waiter = null
        w(undefined)
      }
    })
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let v: unknown
      try {
        v = JSON.parse(line)
      } catch {
        log(`  [${cmd.split('/').pop()}] ${line}`)
        return
      }
      if (this.waiter) {
        const w = this.waiter
        this.waiter = null
        w(v)
      } else this.lines.push(v)
    })
  }

  /** The next JSON line (undefined if the child exited first). */
  next<T = Record<string, any>>(timeoutMs = 30_000): Promise<T> {
    if (this.lines.length) return Promise.resolve(this.lines.shift() as T)
    if (this.proc.exitCode !== null) return Promise.resolve(undefined as T)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null
        reject(new Error('child did not answer in time'))
      }, timeoutMs)
      this.waiter = (v) => {
        clearTimeout(timer)
        resolve(v as T)
      }
    })
  }

  async cmd<T = Record<string, any>>(c: string): Promise<T> {
    this.proc.stdin!.write(c + '\n')
    return this.next<T>()
  }

  /** Result of a child that prints one line and exits. */
  async result<T = Record<string, any>>(timeoutMs: number): Promise<T> {
    const v = await this.next<T>(timeoutMs)
    await this.exited
    return v
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return
    this.proc.stdin!.end()
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000)
    await this.exited
    clearTimeout(t)
  }
}

let tools: Record<Tool, string>
const nodeBin = process.execPath
const benchDir = dirname(fileURLToPath(import.meta.url))

type RxKind = 'c-recvmmsg' | 'dgram' | 'batch' | 'message' | 'gro'

async function startReceiver(kind: RxKind, latency: boolean): Promise<{ child: Child; port: number }> {
  const [cmd, argv] =
    kind === 'c-recvmmsg'
      ? [tools.udp_sink, ['--rcvbuf', String(RCVBUF), ...(latency ? ['--latency'] : [])]]
      : [nodeBin, [join(benchDir, 'receiver.js'), '--kind', kind, '--rcvbuf', String(RCVBUF), ...(latency ? ['--latency'] : [])]]
  const child = new Child(...onCpu(PIN_RECEIVER, cmd, argv))
  const ready = await child.next()
  if (!ready?.ready) throw new Error(`receiver ${kind} did not start`)
  return { child, port: ready.port }
}

interface SenderResult {
  sent: number
  seconds: number
  rate: number
  errors: number
  cpuSec: number
}

async function send(port: number, size: number, seconds: number, extra: string[]): Promise<SenderResult> {
  const argv = ['--port', String(port), '--size', String(size), '--seconds', String(seconds), ...extra]
  if (PIN_SENDER >= 0) argv.push('--cpu', String(PIN_SENDER))
  const r = await new Child(tools.udp_sender, argv).result<SenderResult>(seconds * 1000 + 10_000)
  if (!r) throw new Error('udp_sender failed')
  return r
}

/** Asks for reports until the count stops moving: the receiver has drained its buffers. */
async function drained(rx: Child): Promise<Record<string, any>> {
  let last = await rx.cmd('report')
  for (let i = 0; i < 40; i++) {
    await sleep(100)
    const r = await rx.cmd('report')
    if (r.count === last.count) return r
    last = r
  }
  return last
}

/**
 * One run of a receiver case, after the machine is quiet; taken again (up to
 * MAX_RETRIES times) when other processes used more than BG_LIMIT cores
 * meanwhile.
 */
async function measured(
  run: () => Promise<{ s: SenderResult; rep: Record<string, any> }>,
  label: string,
): Promise<{ s: SenderResult; rep: Record<string, any>; bg: number }> {
  for (let attempt = 0; ; attempt++) {
    await waitQuiet()
    const bgm = new Background()
    const { s, rep } = await run()
    const bg = bgm.cores(s.cpuSec + rep.cpuSec)
    if (bg <= BG_LIMIT || attempt >= MAX_RETRIES || NO_WAIT) {
      if (bg > BG_LIMIT) {
        noisy = true
        log(`  ${label}: other processes used ${bg.toFixed(2)} cores during the run; kept after ${attempt + 1} tries`)
      }
      return { s, rep, bg }
    }
    log(`  ${label}: other processes used ${bg.toFixed(2)} cores during the run; taking it again`)
    retaken++
  }
}

// ---------------------------------------------------------------- statistics

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Per-run figures of one case, by metric. */
type Figures = Record<string, number[]>
const results = new Map<string, Figures>()

function record(key: string, metric: string, v: number): void {
  let f = results.get(key)
  if (!f) results.set(key, (f = {}))
  ;(f[metric] ??= []).push(v)
}

function fig(key: string, metric: string): { value: number; runs: number[] } | undefined {
  const runs = results.get(key)?.[metric]
  if (!runs || runs.length === 0) return undefined
  return { value: median(runs), runs }
}

// ---------------------------------------------------------------- cases

/** Starts the receivers that can start; one that cannot (say, the addon is not built) is left out and reported. */
async function startAll(kinds: RxKind[], latency: boolean): Promise<Map<RxKind, { child: Child; port: number }>> {
  const rx = new Map<RxKind, { child: Child; port: number }>()
  for (const k of kinds) {
    try {
      rx.set(k, await startReceiver(k, latency))
    } catch (err) {
      log(`  receiver ${k} left out: ${(err as Error).message}`)
    }
  }
  return rx
}

async function saturation(size: number): Promise<void> {
  const rx = await startAll(['c-recvmmsg', 'dgram', 'batch', 'message', 'gro'], false)
  const kinds = [...rx.keys()]
  try {
    for (const k of kinds) {
      const r = rx.get(k)!
      await send(r.port, size, WARMUP_SECONDS, ['--gso'])
      await drained(r.child)
    }
    for (let run = 0; run < RUNS; run++) {
      for (const k of kinds) {
        const r = rx.get(k)!
        const { s, rep, bg } = await measured(async () => {
          await r.child.cmd('reset')
          const s = await send(r.port, size, SECONDS, ['--gso'])
          const rep = await drained(r.child)
          return { s, rep }
        }, `rx ${size}B ${k}`)
        const key = `rx.${size}.${k}`
        const rate = rep.activeSec > 0 ? rep.count / rep.activeSec : 0
        record(key, 'rate', rate)
        record(key, 'loss', s.sent > 0 ? Math.max(0, 100 * (1 - rep.count / s.sent)) : 0)
        record(key, 'cpu', rep.count > 0 ? (rep.cpuSec / rep.count) * 1e6 : NaN)
        record(key, 'offered', s.rate)
        record(k === 'gro' ? `tx.${size}.gro` : `tx.${size}.gso`, 'offered', s.rate)
        log(
          `  rx ${size}B ${k.padEnd(10)} run ${run + 1}: ${(rate / 1e6).toFixed(3)} M/s delivered of ${(s.rate / 1e6).toFixed(3)} M/s offered, ` +
            `loss ${(100 * (1 - rep.count / s.sent)).toFixed(1)}%, ${((rep.cpuSec / rep.count) * 1e6).toFixed(3)} cpu-s/M (others: ${bg.toFixed(2)} cores)`,
        )
      }
    }
  } finally {
    for (const r of rx.values()) await r.child.close()
  }
}

async function latency(size: number): Promise<void> {
  const rx = await startAll(['c-recvmmsg', 'dgram', 'batch', 'message'], true)
  const kinds = [...rx.keys()]
  const paced = ['--rate', String(LATENCY_RATE)]
  try {
    for (const k of kinds) {
      await send(rx.get(k)!.port, size, WARMUP_SECONDS, paced)
      await drained(rx.get(k)!.child)
    }
    for (let run = 0; run < RUNS; run++) {
      for (const k of kinds) {
        const r = rx.get(k)!
        const { s, rep, bg } = await measured(async () => {
          await r.child.cmd('reset')
          const s = await send(r.port, size, SECONDS, paced)
          const rep = await drained(r.child)
          return { s, rep }
        }, `lat ${size}B ${k}`)
        const key = `lat.${size}.${k}`
        record(key, 'p50', rep.lat.p50)
        record(key, 'p99', rep.lat.p99)
        if (rep.k2h?.n > 0) {
          record(key, 'kp50', rep.k2h.p50)
          record(key, 'kp99', rep.k2h.p99)
        }
        record(key, 'loss', s.sent > 0 ? Math.max(0, 100 * (1 - rep.count / s.sent)) : 0)
        log(
          `  lat ${size}B ${k.padEnd(10)} run ${run + 1}: sender→handler p50 ${rep.lat.p50.toFixed(1)} us p99 ${rep.lat.p99.toFixed(1)} us` +
            (rep.k2h?.n > 0 ? `, kernel→handler p50 ${rep.k2h.p50.toFixed(1)} p99 ${rep.k2h.p99.toFixed(1)}` : '') +
            ` (${rep.count}/${s.sent}; others: ${bg.toFixed(2)} cores)`,
        )
      }
    }
  } finally {
    for (const r of rx.values()) await r.child.close()
  }
}

type PingKind = 'c-epoll' | 'c-busypoll' | 'dgram' | 'onbus' | 'onbus-busypoll'

async function pingpong(): Promise<void> {
  const kinds: PingKind[] = ['c-epoll', 'c-busypoll', 'dgram', 'onbus', 'onbus-busypoll']
  const peerArgs = (k: PingKind): [string, string[]] => {
    if (k.startsWith('c-')) return [tools.udp_pingpong, k === 'c-busypoll' ? ['--spin-us', String(SPIN_US)] : []]
    const base = [join(benchDir, 'pingpong.js'), '--kind', k.startsWith('onbus') ? 'onbus' : 'dgram']
    return [nodeBin, k === 'onbus-busypoll' ? [...base, '--busy-poll-us', String(SPIN_US)] : base]
  }
  for (let run = -1; run < RUNS; run++) {
    for (const k of kinds) {
      await waitQuiet()
      const [cmd, extra] = peerArgs(k)
      const echo = new Child(...onCpu(PIN_RECEIVER, cmd, [...extra, '--role', 'echo']))
      const ready = await echo.next()
      if (!ready?.ready) {
        log(`  ping-pong ${k}: echo peer did not start; left out`)
        await echo.close()
        continue
      }
      // Run -1 is the warm-up.
      const secs = run < 0 ? WARMUP_SECONDS : SECONDS
      const client = new Child(...onCpu(PIN_SENDER, cmd, [...extra, '--role', 'client', '--port', String(ready.port), '--size', '64', '--seconds', String(secs)]))
      const r = await client.result<Record<string, number>>(secs * 1000 + 15_000)
      await echo.close()
      if (run < 0 || !r) continue
      const key = `pp.${k}`
      record(key, 'p50', r.p50)
      record(key, 'p99', r.p99)
      log(`  ping-pong ${k.padEnd(14)} run ${run + 1}: p50 ${r.p50.toFixed(1)} us p99 ${r.p99.toFixed(1)} us (${r.n} round trips, ${r.lost} lost)`)
    }
  }
}

// ---------------------------------------------------------------- rows

interface Row {
  name: string
  value: number
  unit: string
  baseline?: string
  ratio?: number
  runs: number[]
  note?: string
}

/** A receiver that lost (almost) nothing was not saturated: its rate is what the sender offered, a lower bound. */
const SENDER_BOUND = 'receiver kept up (loss < 1%): the sender was the limit, so this rate is a lower bound'

const rows: Row[] = []
const ROUND: Record<string, number> = { 'datagrams/s': 0, '%': 2, 'cpu-s/M': 3, us: 1 }

function round(v: number, unit: string): number {
  const d = ROUND[unit] ?? 3
  return Number.isFinite(v) ? Number(v.toFixed(d)) : v
}

function senderBound(key: string): boolean {
  const loss = fig(key, 'loss')
  return key.startsWith('rx.') && loss !== undefined && loss.value < 1
}

function addRow(name: string, key: string, metric: string, unit: string, baselines: Array<[string, string]> = []): void {
  const f = fig(key, metric)
  if (!f) return
  const runs = f.runs.map((v) => round(v, unit))
  const notes: string[] = []
  if (metric === 'rate' && senderBound(key)) notes.push(SENDER_BOUND)
  const note = (extra: string[]) => (notes.length + extra.length ? { note: [...notes, ...extra].join('; ') } : {})
  if (baselines.length === 0) rows.push({ name, value: round(f.value, unit), unit, runs, ...note([]) })
  for (const [bname, bkey] of baselines) {
    const b = fig(bkey, metric)
    const ratio = b && b.value !== 0 ? Number((f.value / b.value).toFixed(3)) : undefined
    const extra = metric === 'rate' && senderBound(bkey) ? [`the ${bname} baseline kept up with the sender, so this ratio flatters onbus`] : []
    rows.push({ name, value: round(f.value, unit), unit, ...(b ? { baseline: bname, ratio } : {}), runs, ...note(extra) })
  }
}

function buildRows(): void {
  for (const size of SIZES) {
    const rx = (k: string) => `rx.${size}.${k}`
    addRow(`udp.tx.${size}B.gso.rate`, `tx.${size}.gso`, 'offered', 'datagrams/s')
    addRow(`udp.tx.${size}B.gso-to-gro.rate`, `tx.${size}.gro`, 'offered', 'datagrams/s')
    for (const k of ['c-recvmmsg', 'dgram', 'batch', 'message', 'gro']) {
      const vs: Array<[string, string]> = k === 'c-recvmmsg' || k === 'dgram' ? [] : [['dgram', rx('dgram')], ['c-recvmmsg', rx('c-recvmmsg')]]
      addRow(`udp.rx.${size}B.${k}.rate`, rx(k), 'rate', 'datagrams/s', vs)
      addRow(`udp.rx.${size}B.${k}.loss`, rx(k), 'loss', '%')
      addRow(`udp.rx.${size}B.${k}.cpu-per-msg`, rx(k), 'cpu', 'cpu-s/M', vs)
    }
  }
  for (const size of SIZES) {
    const lat = (k: string) => `lat.${size}.${k}`
    for (const k of ['c-recvmmsg', 'dgram', 'batch', 'message']) {
      const vs: Array<[string, string]> = k === 'batch' || k === 'message' ? [['dgram', lat('dgram')]] : []
      const base = `udp.lat.${size}B.20k.${k}`
      addRow(`${base}.p50`, lat(k), 'p50', 'us', vs)
      addRow(`${base}.p99`, lat(k), 'p99', 'us', vs)
      addRow(`${base}.kernel-p50`, lat(k), 'kp50', 'us')
      addRow(`${base}.kernel-p99`, lat(k), 'kp99', 'us')
      addRow(`${base}.loss`, lat(k), 'loss', '%')
    }
  }
  const pp = (k: string) => `pp.${k}`
  for (const k of ['c-epoll', 'c-busypoll', 'dgram', 'onbus', 'onbus-busypoll']) {
    const vs: Array<[string, string]> =
      k === 'onbus' ? [['dgram', pp('dgram')], ['c-epoll', pp('c-epoll')]] : k === 'onbus-busypoll' ? [['dgram', pp('dgram')], ['c-busypoll', pp('c-busypoll')]] : []
    addRow(`udp.pingpong.64B.${k}.p50`, pp(k), 'p50', 'us', vs)
    addRow(`udp.pingpong.64B.${k}.p99`, pp(k), 'p99', 'us', vs)
  }
}

/** The issue's targets, judged on this run's medians. */
function targets(): string[] {
  const out: string[] = []
  const ratio = (name: string, baseline: string) => rows.find((r) => r.name === name && r.baseline === baseline)?.ratio
  const check = (label: string, r: number | undefined, ok: (r: number) => boolean, want: string, note = '') => {
    if (r === undefined) return
    out.push(`${ok(r) ? 'met   ' : 'MISSED'} ${label}: ${r.toFixed(2)}× (target ${want})${note ? ` — ${note}` : ''}`)
  }
  check('64 B rate, batch vs dgram', ratio('udp.rx.64B.batch.rate', 'dgram'), (r) => r >= 3, '≥ 3×')
  check(
    '64 B rate, batch vs C sink',
    ratio('udp.rx.64B.batch.rate', 'c-recvmmsg'),
    (r) => r >= 0.7,
    '≥ 0.7×',
    senderBound('rx.64.c-recvmmsg') ? 'the C sink kept up with the sender, so its limit is higher than measured' : '',
  )
  check('64 B rate, message vs dgram', ratio('udp.rx.64B.message.rate', 'dgram'), (r) => r >= 1.5, '≥ 1.5×')
  check('64 B CPU/datagram, batch vs C sink', ratio('udp.rx.64B.batch.cpu-per-msg', 'c-recvmmsg'), (r) => r <= 1.5, '≤ 1.5×')
  check('64 B CPU/datagram, batch vs dgram', ratio('udp.rx.64B.batch.cpu-per-msg', 'dgram'), (r) => r <= 0.35, '≤ 0.35×')
  for (const size of SIZES)
    for (const k of ['batch', 'message'])
      check(`latency p99 at 20k/s ${size} B, ${k} vs dgram`, ratio(`udp.lat.${size}B.20k.${k}.p99`, 'dgram'), (r) => r <= 1, '≤ 1×')
  check('ping-pong p99, onbus vs dgram', ratio('udp.pingpong.64B.onbus.p99', 'dgram'), (r) => r <= 1, '≤ 1×')
  check('ping-pong p99, onbus busy-poll vs dgram', ratio('udp.pingpong.64B.onbus-busypoll.p99', 'dgram'), (r) => r <= 1, '≤ 1×')
  check('stretch: 64 B rate, GRO vs dgram', ratio('udp.rx.64B.gro.rate', 'dgram'), (r) => r >= 10, '≥ 10×')
  return out
}

function fmt(v: number, unit: string): string {
  if (unit === 'datagrams/s') return v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : `${(v / 1e3).toFixed(0)} k/s`
  if (unit === '%') return `${v.toFixed(1)} %`
  if (unit === 'cpu-s/M') return `${v.toFixed(3)} cpu-s/M`
  return `${v.toFixed(1)} ${unit}`
}

/** Median of a case's metric, formatted, or '–'. */
function cell(key: string, metric: string, unit: string): string {
  const f = fig(key, metric)
  return f ? fmt(f.value, unit) : '–'
}

function ratioCell(key: string, bkey: string, metric: string): string {
  const a = fig(key, metric)
  const b = fig(bkey, metric)
  return a && b && b.value ? `${(a.value / b.value).toFixed(2)}×` : '–'
}

/** The README-sized view: one table per figure, one line per receiver. */
function summary(): string[] {
  const out: string[] = []
  const label: Record<string, string> = {
    'c-recvmmsg': 'C `recvmmsg` sink (timestamps on)',
    dgram: 'Node `dgram`',
    batch: 'onbus batch API',
    message: 'onbus message API',
    gro: 'onbus batch API + UDP_GRO',
  }
  for (const size of SIZES) {
    if (!results.has(`rx.${size}.dgram`)) continue
    out.push(
      `**Saturation, ${size} B datagrams** (GSO sender offering ${cell(`tx.${size}.gso`, 'offered', 'datagrams/s')}; ${cell(`tx.${size}.gro`, 'offered', 'datagrams/s')} to the GRO receiver)`,
      '',
      '| receiver | delivered | loss | CPU per 1M datagrams | rate vs dgram | rate vs C | CPU vs dgram | CPU vs C |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    )
    for (const k of ['c-recvmmsg', 'dgram', 'batch', 'message', 'gro']) {
      const key = `rx.${size}.${k}`
      if (!results.has(key)) continue
      const d = `rx.${size}.dgram`
      const c = `rx.${size}.c-recvmmsg`
      out.push(
        `| ${label[k]} | ${cell(key, 'rate', 'datagrams/s')}${senderBound(key) ? ' (a)' : ''} | ${cell(key, 'loss', '%')} | ${cell(key, 'cpu', 'cpu-s/M')} | ` +
          `${ratioCell(key, d, 'rate')} | ${ratioCell(key, c, 'rate')} | ${ratioCell(key, d, 'cpu')} | ${ratioCell(key, c, 'cpu')} |`,
      )
    }
    out.push('')
  }
  if ([...results.keys()].some((k) => senderBound(k)))
    out.push(`(a) ${SENDER_BOUND}.`, '')
  for (const size of SIZES) {
    if (!results.has(`lat.${size}.dgram`)) continue
    out.push(
      `**Latency at ${LATENCY_RATE.toLocaleString('en')} datagrams/s, ${size} B** (sender clock in the payload → handler; kernel receive stamp → handler)`,
      '',
      '| receiver | sender→handler p50 | p99 | p99 vs dgram | kernel→handler p50 | p99 | loss |',
      '|---|---:|---:|---:|---:|---:|---:|',
    )
    for (const k of ['c-recvmmsg', 'dgram', 'batch', 'message']) {
      const key = `lat.${size}.${k}`
      if (!results.has(key)) continue
      out.push(
        `| ${label[k]} | ${cell(key, 'p50', 'us')} | ${cell(key, 'p99', 'us')} | ${k === 'dgram' || k === 'c-recvmmsg' ? '' : ratioCell(key, `lat.${size}.dgram`, 'p99')} | ` +
          `${cell(key, 'kp50', 'us')} | ${cell(key, 'kp99', 'us')} | ${cell(key, 'loss', '%')} |`,
      )
    }
    out.push('')
  }
  if (results.has('pp.dgram')) {
    const pl: Record<string, string> = {
      'c-epoll': 'C ↔ C, epoll',
      'c-busypoll': `C ↔ C, spinning ${SPIN_US} us before sleeping`,
      dgram: 'dgram ↔ dgram',
      onbus: 'onbus ↔ onbus',
      'onbus-busypoll': `onbus ↔ onbus, \`busyPollUs: ${SPIN_US}\``,
    }
    out.push('**UDP ping-pong, 64 B, one in flight** (round trip at the client)', '', '| pair | p50 | p99 | p99 vs dgram |', '|---|---:|---:|---:|')
    for (const k of ['c-epoll', 'c-busypoll', 'dgram', 'onbus', 'onbus-busypoll']) {
      const key = `pp.${k}`
      if (!results.has(key)) continue
      out.push(`| ${pl[k]} | ${cell(key, 'p50', 'us')} | ${cell(key, 'p99', 'us')} | ${k.startsWith('onbus') ? ratioCell(key, 'pp.dgram', 'p99') : ''} |`)
    }
    out.push('')
  }
  return out
}

function markdown(env: Record<string, unknown>, checks: string[]): string {
  const lines = [
    `# onbus benchmark — ${env.date}`,
    '',
    `Reproduce: \`npm run bench\` (${env.runs} × ${env.seconds} s per case, medians). ` +
      `Machine: ${env.cpu} × ${env.cores}, Linux ${env.kernel}, Node ${env.node}; ` +
      (PIN ? `sender and ping client pinned to CPU ${PIN_SENDER}, receiver and echo peer (all threads) to CPU ${PIN_RECEIVER}; ` : 'nothing pinned; ') +
      `receive buffer ${(RCVBUF / 1048576).toFixed(0)} MiB requested by every receiver.` +
      (env.busyElsewhere ? ' **Other load ran during some runs (or `--no-wait` was given): expect noise.**' : ''),
    '',
    ...summary(),
    '## Every row',
    '',
    '| figure | value | baseline | ratio |',
    '|---|---:|---|---:|',
  ]
  const notes: string[] = []
  for (const r of rows) {
    let mark = ''
    if (r.note) {
      let i = notes.indexOf(r.note)
      if (i < 0) i = notes.push(r.note) - 1
      mark = ` (${i + 1})`
    }
    lines.push(`| \`${r.name}\` | ${fmt(r.value, r.unit)}${mark} | ${r.baseline ?? ''} | ${r.ratio !== undefined ? r.ratio.toFixed(2) + '×' : ''} |`)
  }
  if (notes.length) lines.push('', ...notes.map((n, i) => `(${i + 1}) ${n}.`))
  lines.splice(4, 0, 'Targets (ratios from this run):', '', ...checks.map((c) => `- ${c}`), '')
  lines.push('')
  return lines.join('\n')
}

// ---------------------------------------------------------------- main

tools = ensureTools()
const want = (g: string) => !ONLY || ONLY.has(g)
const t0 = Date.now()
log(
  `onbus bench: ${RUNS} × ${SECONDS} s per case, sizes ${SIZES.join(', ')} B, ` +
    (PIN ? `sender/client on CPU ${PIN_SENDER}, receiver/echo on CPU ${PIN_RECEIVER}` : 'nothing pinned') +
    `, rcvbuf ${RCVBUF} B`,
)
if (want('rx'))
  for (const size of SIZES) {
    log(`saturation, ${size} B (GSO sender)`)
    await saturation(size)
  }
if (want('lat'))
  for (const size of SIZES) {
    log(`latency at ${LATENCY_RATE}/s, ${size} B`)
    await latency(size)
  }
if (want('pingpong')) {
  log('ping-pong, 64 B')
  await pingpong()
}
buildRows()
for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n')

// The other areas' benchmarks are standalone programs printing the same JSON
// lines; run each in its own process (so their figures are their own) and
// gather their rows into the same results file.
const modules: { group: string; file: string; args: string[] }[] = [
  { group: 'bus', file: 'bus-inprocess.js', args: QUICK ? ['--messages', '1000000'] : [] },
  { group: 'ipc', file: 'bus-ipc.js', args: QUICK ? ['--quick'] : [] },
  { group: 'streams', file: 'streams.js', args: QUICK ? ['--runs', '1', '--gib', '0.25', '--transfer-gib', '0.25', '--rtts', '200'] : [] },
  { group: 'mavlink-services', file: 'mavlink-services.js', args: QUICK ? ['--frames', '50000', '--commands', '300'] : [] },
  { group: 'mavlink-router', file: 'mavlink-router.js', args: QUICK ? ['--runs', '1', '--seconds', '1'] : [] },
  { group: 'mavlink', file: 'mavlink.js', args: QUICK ? ['--quick'] : [] },
  { group: 'rtp', file: 'rtp.js', args: QUICK ? ['--quick'] : [] },
  { group: 'rtp-send', file: 'rtp-send.js', args: QUICK ? ['--quick'] : [] },
  { group: 'record', file: 'record.js', args: QUICK ? ['--quick'] : [] },
]
const extra: string[] = []
function baselineName(group: string, row: Record<string, unknown>): string {
  if (typeof row.baselineName === 'string') return row.baselineName
  const name = row.name as string
  if (group === 'bus') return name.startsWith('codec.') ? 'JSON.parse' : 'EventEmitter'
  if (name.startsWith('serial.')) return 'serialport'
  if (name.startsWith('file.') || name.startsWith('transfer.')) return 'fs.createReadStream|net'
  return 'net'
}
for (const m of modules) {
  if (!want(m.group)) continue
  log(`${m.group}: node dist/bench/${m.file} ${m.args.join(' ')}`)
  try {
    const out = execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), m.file), ...m.args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    })
    for (const line of out.split('\n')) {
      const t = line.trim()
      if (!t.startsWith('{')) continue
      try {
        const row = JSON.parse(t) as Record<string, unknown>
        if (typeof row.name !== 'string') continue
        // Same shape as the UDP rows: `baseline` names what was compared,
        // the baseline's own figure goes in `baselineValue`.
        if (typeof row.baseline === 'number') {
          row.baselineValue = row.baseline
          row.baseline = baselineName(m.group, row)
          delete row.baselineName
        }
        const text = JSON.stringify(row)
        extra.push(text)
        process.stdout.write(text + '\n')
      } catch {
        // not a result row
      }
    }
  } catch (err) {
    log(`${m.group}: failed (${(err as Error).message.split('\n')[0]}); its figures are missing from this run`)
  }
}
const checks = targets()
const env = {
  date: new Date().toISOString(),
  node: process.version,
  kernel: release(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  runs: RUNS,
  seconds: SECONDS,
  pinSender: PIN_SENDER,
  pinReceiver: PIN_RECEIVER,
  busyElsewhere: noisy || NO_WAIT,
  rcvBuf: RCVBUF,
}
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(OUT, [...rows.map((r) => JSON.stringify(r)), ...extra].join('\n') + '\n')
writeFileSync(OUT.replace(/\.json$/, '') + '.md', markdown(env, checks))
log('')
for (const c of checks) log(c)
log(
  `done in ${((Date.now() - t0) / 1000).toFixed(0)} s (of which ${(waitedMs / 1000).toFixed(0)} s waiting for other load to pass, ` +
    `${retaken} runs taken again); wrote ${OUT} and ${OUT.replace(/\.json$/, '')}.md`,
)
