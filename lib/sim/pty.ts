/**
 * A virtual serial line for the simulator: two PTYs joined by socat (the way
 * the project's serial tests make them). Needs `socat` (apt-get install socat).
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onbusError } from '../errors.js'

/** Whether socat is installed. */
export function haveSocat(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0
}

/** Two joined PTYs: the simulator opens `sim`, the companion opens `companion`. */
export interface PtyPair {
  sim: string
  companion: string
  proc: ChildProcess
  /** Kills socat and removes the links (and the directory when it made one). */
  close(): void
}

/**
 * Creates a PTY pair (owner-only, mode 0600) with links `<dir>/sim` and
 * `<dir>/companion`.
 * @example
 * const pty = await createPtyPair()
 * const link = createSerialLink({ path: pty.sim, baudRate: 921600 })
 */
export async function createPtyPair(dir?: string): Promise<PtyPair> {
  const own = dir === undefined
  const d = dir ?? mkdtempSync(join(tmpdir(), 'onbus-sim-'))
  const sim = join(d, 'sim')
  const companion = join(d, 'companion')
  const proc = spawn('socat', [`pty,raw,echo=0,mode=0600,link=${sim}`, `pty,raw,echo=0,mode=0600,link=${companion}`], { stdio: 'ignore' })
  let exited = false
  proc.once('exit', () => {
    exited = true
  })
  proc.once('error', () => {
    exited = true
  })
  for (let i = 0; i < 300 && !exited && !(existsSync(sim) && existsSync(companion)); i++) await new Promise((r) => setTimeout(r, 10))
  const close = (): void => {
    if (!exited) proc.kill('SIGTERM')
    if (own) rmSync(d, { recursive: true, force: true })
  }
  if (!existsSync(sim) || !existsSync(companion)) {
    close()
    throw onbusError('ERR_ONBUS_SOCAT', `socat did not create the PTY pair in ${d} (is socat installed?)`)
  }
  return { sim, companion, proc, close }
}
