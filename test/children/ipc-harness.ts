/**
 * Harness for the cross-process bus tests: child peers (ipc-peer.mjs) whose
 * JSON lines can be awaited while they run, and a polling wait.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export type Line = Record<string, unknown> & { ev: string }

export class Peer {
  readonly lines: Line[] = []
  readonly proc: ChildProcess
  stderr = ''
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private waiters: (() => void)[] = []

  constructor(args: string[], opts: { uid?: number; gid?: number } = {}) {
    const script = fileURLToPath(new URL('./ipc-peer.mjs', import.meta.url))
    this.proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid })
    let buf = ''
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        try {
          this.lines.push(JSON.parse(line) as Line)
        } catch {
          // not ours
        }
      }
      for (const w of this.waiters.splice(0)) w()
    })
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })))
  }

  get pid(): number {
    return this.proc.pid!
  }

  of(ev: string): Line[] {
    return this.lines.filter((l) => l.ev === ev)
  }

  /** Resolves with the first line matching `pred`, rejects after `ms`. */
  async line(pred: (l: Line) => boolean, ms = 10_000): Promise<Line> {
    const t0 = Date.now()
    for (;;) {
      const hit = this.lines.find(pred)
      if (hit) return hit
      if (Date.now() - t0 > ms) throw new Error(`no matching line from child ${this.pid} in ${ms} ms; got:\n${JSON.stringify(this.lines.slice(-20))}\nstderr: ${this.stderr}`)
      await new Promise<void>((r) => {
        this.waiters.push(r)
        setTimeout(r, 50)
      })
    }
  }

  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig)
  }
}

/** Polls `cond` every 10 ms until true; throws with `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
