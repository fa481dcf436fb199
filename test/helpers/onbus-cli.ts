/**
 * Running the `onbus` CLI (dist/lib/cli/main.js) in child processes: a
 * long-running one (the daemon) whose output lines a test waits on, and
 * short commands run to completion. `npm test` builds dist first.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createUdpLink } from '../../lib/index.js'

export const ONBUS_MAIN = fileURLToPath(new URL('../../dist/lib/cli/main.js', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  json: Record<string, unknown>[]
}

function jsonLines(s: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  for (const l of s.split('\n'))
    if (l.startsWith('{'))
      try {
        out.push(JSON.parse(l) as Record<string, unknown>)
      } catch {
        // not JSON
      }
  return out
}

/** Runs `onbus <args>` to completion (SIGKILL after `timeoutMs`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ONBUS_MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal, stdout, stderr, json: jsonLines(stdout) })
    })
  })
}

/** A running `onbus` process whose stdout JSON lines a test can wait for. */
export class CliProcess {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly records: Record<string, unknown>[] = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private waiters: (() => void)[] = []

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [ONBUS_MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let partial = ''
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d
      partial += d
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const r of jsonLines(lines.join('\n'))) this.records.push(r)
      for (const w of this.waiters.splice(0)) w()
    })
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d
      for (const w of this.waiters.splice(0)) w()
    })
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })))
    void this.exited.then(() => {
      for (const w of this.waiters.splice(0)) w()
    })
  }

  /** Waits for a record matching `pred` from index `from` on; rejects with the output so far after `timeoutMs`. */
  async waitFor(pred: (r: Record<string, unknown>) => boolean, timeoutMs = 20_000, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    void this.exited.then(() => (exited = true))
    for (;;) {
      const r = this.records.slice(from).find(pred)
      if (r) return r
      if (exited || Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms (exited: ${exited})\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  kill(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig)
  }
}

/** A UDP port free right now (bound and closed again). */
export function freeUdpPort(): number {
  const l = createUdpLink({ port: 0, receive: false })
  const p = l.address().port
  l.close()
  return p
}

/** A free UDP port `p` (p % step === 0 when step > 1) with `p + 1` free too. */
function freeAdjacent(step = 1): number {
  for (;;) {
    const p = freeUdpPort()
    if (p % step || p >= 65535) continue
    try {
      createUdpLink({ port: p, receive: false }).close()
      createUdpLink({ port: p + 1, receive: false }).close()
      return p
    } catch {
      // taken: try another
    }
  }
}

/**
 * The environment that moves every port of the default configuration (the
 * simulated vehicle) to free ones, so that test files running at once do not
 * collide: LiDAR (port, port + 1), MAVLink ground station (port; the
 * autopilot endpoint port + 1), camera (RTP port, RTCP port + 1).
 */
export function vehicleEnv(ipcDir: string): { ONBUS_IPC_DIR: string; ONBUS_SIM_LIDAR_PORT: string; ONBUS_SIM_MAVLINK_PORT: string; ONBUS_SIM_CAMERA_PORT: string } {
  return { ONBUS_IPC_DIR: ipcDir, ONBUS_SIM_LIDAR_PORT: String(freeAdjacent()), ONBUS_SIM_MAVLINK_PORT: String(freeAdjacent()), ONBUS_SIM_CAMERA_PORT: String(freeAdjacent(2)) }
}
