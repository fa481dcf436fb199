/**
 * Child processes for lifecycle and error tests: behaviours that end a process
 * (exit with a link open, an uncaught exception, a native abort), or that need
 * another user or network namespace, run in a fresh `node` so the test process
 * survives and can assert on the exit code, signal, time and output.
 *
 * Fixtures are plain .mjs files in test/fixtures/ importing ../../dist/lib
 * (`npm test` builds dist first). The environment is inherited, so a
 * sanitizer run (ONBUS_ADDON, LD_PRELOAD, ASAN_OPTIONS) reaches them too.
 */
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Absolute path of a fixture in test/fixtures/. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Wall time from spawn to exit, in ms. */
  ms: number
  /** True when we killed it at `timeoutMs` (it was still running). */
  timedOut: boolean
  /** stdout lines that parse as JSON, in order. */
  json: Record<string, unknown>[]
}

export interface RunOptions {
  /** Kill the child (SIGKILL) after this long; `timedOut` tells. Default 15 s. */
  timeoutMs?: number
  /** Run node under this command, e.g. `['unshare', '-n', '--']`. */
  prefix?: string[]
  /** Extra node options before the script, e.g. `['--expose-gc']`. */
  nodeArgs?: string[]
  env?: NodeJS.ProcessEnv
  uid?: number
  gid?: number
  cwd?: string
}

/** Runs `node [nodeArgs] <fixture> [args]` and resolves when it exits or is killed. */
export function runFixture(name: string, args: string[] = [], opts: RunOptions = {}): Promise<ChildResult> {
  const argv = [...(opts.nodeArgs ?? []), fixture(name), ...args]
  const [cmd, ...cmdArgs] = opts.prefix?.length ? [...opts.prefix, process.execPath, ...argv] : [process.execPath, ...argv]
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, cmdArgs, {
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 15_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const json: Record<string, unknown>[] = []
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue
        try {
          json.push(JSON.parse(line) as Record<string, unknown>)
        } catch {
          // not one of ours
        }
      }
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, timedOut, json })
    })
  })
}

/** A one-line description of a child's end, for assertion messages. */
export function describeExit(r: ChildResult): string {
  return `code=${r.code} signal=${r.signal} timedOut=${r.timedOut} ms=${Math.round(r.ms)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
}

/**
 * Whether a private network namespace can be made here (root, util-linux
 * `unshare`, iproute2 `ip`). Returns null when it can, else the reason.
 * The namespace dies with its last process, so nothing needs cleaning up.
 */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (CAP_SYS_ADMIN) for a private network namespace'
  const r = spawnSync('unshare', ['-n', '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8', env: withoutPreload() })
  if (r.error) return `unshare/ip not usable: ${r.error.message}`
  if (r.status !== 0) return `unshare -n failed: ${r.stderr.trim()}`
  return null
}

/**
 * Prefix that runs a command in a throwaway network namespace with only `lo`
 * (up). `ip` runs without LD_PRELOAD: under the sanitizer run, LeakSanitizer
 * would otherwise judge iproute2's exit, which is not ours to judge.
 */
export const NETNS_PREFIX = ['unshare', '-n', '--', 'sh', '-c', 'env -u LD_PRELOAD ip link set lo up && exec "$0" "$@"']

function withoutPreload(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.LD_PRELOAD
  return env
}
