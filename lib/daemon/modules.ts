/**
 * Module processes of the daemon (`modules:` in the configuration): each one
 * its own process, its output prefixed with its name, restarted by policy
 * with a growing delay, and stopped with SIGTERM (SIGKILL after a grace
 * period) when the daemon stops or the module leaves the configuration.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ModuleConfig } from '../config/load.js'

/** A module's state as the daemon's stats show it. */
export interface ModuleStatus {
  name: string
  state: 'running' | 'restarting' | 'stopped' | 'failed'
  pid: number | null
  restarts: number
  lastExit: { code: number | null; signal: string | null } | null
  /** Lines the module printed (stdout and stderr). */
  lines: number
  /** CPU of the process (all threads, % of one core) since the previous reading, from /proc. */
  cpuPercent: number | null
  /** Resident memory, from /proc. */
  rssBytes: number | null
}

const TICKS = 100 // USER_HZ: clock ticks per second in /proc/<pid>/stat on Linux
const PAGE = 4096

/** utime + stime (ticks) and RSS (bytes) of a process, or null when it is gone. */
function procUsage(pid: number): { ticks: number; rss: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces), which ends with the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { ticks: Number(f[11]) + Number(f[12]), rss: Number(f[21]) * PAGE }
  } catch {
    return null
  }
}

const GRACE_MS = 3000
const GUARD = new URL('./module-guard.js', import.meta.url)
const guardPresent = existsSync(fileURLToPath(GUARD))

export class ModuleProcess {
  private child: ChildProcess | null = null
  private stopping = false
  private timer: NodeJS.Timeout | null = null
  private exited: Promise<void> = Promise.resolve()
  private delay: number
  readonly status: ModuleStatus

  constructor(
    readonly name: string,
    readonly config: ModuleConfig,
    private readonly expand: (s: string) => string,
    private readonly log: (event: string, fields: Record<string, unknown>, text: string) => void,
  ) {
    this.status = { name, state: 'stopped', pid: null, restarts: 0, lastExit: null, lines: 0, cpuPercent: null, rssBytes: null }
    this.delay = config.restartDelayMs ?? 1000
  }

  start(): void {
    const c = this.config
    const cmd = this.expand(c.command)
    const args = (c.args ?? []).map(this.expand)
    const env = { ...process.env }
    for (const [k, v] of Object.entries(c.env ?? {})) env[k] = this.expand(v)
    // A Node module stops by itself if the daemon dies without stopping it (module-guard.ts).
    if (guardPresent && (cmd === process.execPath || basename(cmd) === 'node')) {
      env.ONBUS_DAEMON_PID = String(process.pid)
      env.NODE_OPTIONS = `${env.NODE_OPTIONS ? `${env.NODE_OPTIONS} ` : ''}--import=${GUARD.href}`
    }
    let child: ChildProcess
    try {
      // Its own process group: a Ctrl-C at the terminal reaches the daemon only, which stops the modules in order.
      child = spawn(cmd, args, { cwd: c.cwd ? this.expand(c.cwd) : undefined, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    } catch (err) {
      this.onExit(null, null, err as Error)
      return
    }
    this.child = child
    this.status.state = 'running'
    this.status.pid = child.pid ?? null
    const line = (l: string) => {
      this.status.lines++
      this.log('module-output', { module: this.name, line: l }, `[${this.name}] ${l}`)
    }
    createInterface({ input: child.stdout! }).on('line', line)
    createInterface({ input: child.stderr! }).on('line', line)
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.onExit(null, null, err)
        resolve()
      })
      child.once('exit', (code, signal) => {
        this.onExit(code, signal, null)
        resolve()
      })
    })
    if (child.pid !== undefined) this.log('module-start', { module: this.name, pid: child.pid }, `module ${this.name}: started, pid ${child.pid}`)
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, err: Error | null): void {
    if (this.child === null && err === null && this.status.state !== 'running') return
    this.child = null
    this.status.pid = null
    this.status.lastExit = { code, signal }
    if (this.stopping) {
      this.status.state = 'stopped'
      this.log('module-stop', { module: this.name, code, signal }, `module ${this.name}: stopped (${signal ?? `code ${code}`})`)
      return
    }
    const policy = this.config.restart ?? 'on-failure'
    const failed = err !== null || code !== 0
    const why = err ? err.message : signal ? `signal ${signal}` : `code ${code}`
    if (policy === 'always' || (policy === 'on-failure' && failed)) {
      this.status.state = 'restarting'
      this.status.restarts++
      this.log('module-exit', { module: this.name, code, signal, error: err?.message, restartInMs: this.delay }, `module ${this.name}: exited (${why}); restarting in ${this.delay} ms`)
      this.timer = setTimeout(() => {
        this.timer = null
        if (!this.stopping) this.start()
      }, this.delay)
      this.delay = Math.min(this.delay * 2, 30_000)
      // A module that stayed up a while earns its short delay back.
      setTimeout(() => {
        if (this.status.state === 'running') this.delay = this.config.restartDelayMs ?? 1000
      }, 10_000).unref()
    } else {
      this.status.state = failed ? 'failed' : 'stopped'
      this.log('module-exit', { module: this.name, code, signal, error: err?.message }, `module ${this.name}: exited (${why})`)
    }
  }

  private lastUsage: { t: number; ticks: number; pid: number } | null = null

  /** The status with CPU and memory read now (CPU over the time since the previous call). */
  sample(): ModuleStatus {
    const pid = this.status.pid
    const u = pid === null ? null : procUsage(pid)
    if (!u || pid === null) {
      this.lastUsage = null
      return { ...this.status, cpuPercent: null, rssBytes: null }
    }
    const t = performance.now()
    const prev = this.lastUsage
    if (!prev || prev.pid !== pid || t - prev.t >= 200) {
      if (prev && prev.pid === pid) this.status.cpuPercent = Math.round(((u.ticks - prev.ticks) / TICKS / ((t - prev.t) / 1000)) * 1000) / 10
      this.lastUsage = { t, ticks: u.ticks, pid }
    }
    this.status.rssBytes = u.rss
    return { ...this.status }
  }

  /** SIGTERM, then SIGKILL after 3 s; resolves when the process is gone. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const child = this.child
    if (!child) {
      this.status.state = 'stopped'
      return
    }
    child.kill('SIGTERM')
    const kill = setTimeout(() => child.kill('SIGKILL'), GRACE_MS)
    await this.exited
    clearTimeout(kill)
  }
}
