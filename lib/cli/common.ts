/**
 * What the CLI commands share: error reporting and exit codes, the IPC bus
 * connection to a running daemon, and number formatting.
 *
 * Exit codes: 0 success; 1 runtime failure (a link failed to open, no daemon
 * answered, a transfer failed); 2 bad input (usage, an invalid configuration).
 */
import type { Command } from 'commander'
import { createBus, type Bus } from '../bus/bus.js'
import { createIpcTransport, type IpcTransport } from '../bus/ipc/transport.js'
import type { EndpointDescriptor } from '../bus/topic.js'
import { jsonCodec } from '../codecs/json.js'
import { ConfigError } from '../config/load.js'
import { DEFAULT_STATS_TOPIC } from '../daemon/daemon.js'
import type { StatsSnapshot } from '../daemon/stats.js'
import { onbusError } from '../errors.js'

/** Exit code for bad input (usage, invalid configuration). */
export const EXIT_USAGE = 2

/** Prints an error the way Node prints one (`Error [CODE]: message`) after the command's name, and sets the exit code. */
export function fail(err: unknown, command = 'onbus'): void {
  const e = err as Error & { code?: string }
  const usage = err instanceof ConfigError || (typeof e.code === 'string' && (e.code.startsWith('ERR_INVALID_ARG') || e.code === 'ERR_OUT_OF_RANGE' || e.code === 'ERR_ONBUS_USAGE'))
  if (err instanceof ConfigError) process.stderr.write(`${command}: invalid configuration (${err.issues.length} problem${err.issues.length === 1 ? '' : 's'}):\n${err.message}\n`)
  else process.stderr.write(`${command}: ${e.name ?? 'Error'}${e.code ? ` [${e.code}]` : ''}: ${e.message}\n`)
  process.exitCode = usage ? EXIT_USAGE : 1
}

/** A usage error (exit code 2). */
export function usageError(message: string): Error {
  return onbusError('ERR_ONBUS_USAGE', message)
}

/** Writes one JSON line to stdout (bigint as decimal string). */
export function jsonLine(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) + '\n')
}

/** `--ipc-dir`, shared by every command that talks to the daemon. */
export function ipcDirOption(cmd: Command): Command {
  return cmd.option('--ipc-dir <dir>', 'IPC runtime directory of the daemon (default: $ONBUS_IPC_DIR, else $XDG_RUNTIME_DIR/onbus or /tmp/onbus-<uid>)')
}

export function ipcDir(o: { ipcDir?: string }): string | undefined {
  return o.ipcDir ?? process.env.ONBUS_IPC_DIR
}

/** A bus of this CLI process, joined to the daemon's runtime directory. */
export function joinBus(dir: string | undefined, name: string): { bus: Bus; ipc: IpcTransport; close(): void } {
  const bus = createBus({ name })
  const ipc = createIpcTransport(dir ? { dir } : {})
  ipc.on('error', () => {})
  bus.addTransport(ipc)
  return {
    bus,
    ipc,
    close() {
      bus.close()
      ipc.close()
    },
  }
}

/** Endpoints other processes announced (needs `IpcTransport.remoteEndpoints()`). */
export function remoteEndpoints(ipc: IpcTransport): EndpointDescriptor[] {
  const f = (ipc as unknown as { remoteEndpoints?: () => EndpointDescriptor[] }).remoteEndpoints
  return typeof f === 'function' ? f.call(ipc) : []
}

/** The stats topic as the daemon declares it (the same QoS, so a late joiner gets the last snapshot). */
export function statsTopic(bus: Bus, name = DEFAULT_STATS_TOPIC) {
  return bus.topic(name, {
    qos: { reliability: 'best-effort', depth: 1, overflow: 'drop-oldest', durability: 'transient-local', deadlineMs: Infinity, livelinessLeaseMs: Infinity },
    codec: jsonCodec<StatsSnapshot>(),
  })
}

/**
 * Calls `onSnapshot` for every stats message of the daemon (the last one
 * first); rejects with ERR_ONBUS_NO_DAEMON when none came within `timeoutMs`.
 * Resolves when `signal` aborts.
 */
export function watchStats(bus: Bus, dirShown: string, onSnapshot: (s: StatsSnapshot) => void, opts: { timeoutMs?: number; signal: AbortSignal; topic?: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const topic = statsTopic(bus, opts.topic)
    let got = false
    const timer = setTimeout(() => {
      if (got) return
      sub.close()
      reject(onbusError('ERR_ONBUS_NO_DAEMON', `No onbus daemon answered in ${dirShown} within ${(opts.timeoutMs ?? 5000) / 1000} s (start one with \`onbus run\`, or pass its --ipc-dir)`))
    }, opts.timeoutMs ?? 5000)
    const sub = topic.subscribe(
      (s) => {
        got = true
        onSnapshot(s)
      },
      { qos: { durability: 'transient-local' } },
    )
    opts.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        sub.close()
        resolve()
      },
      { once: true },
    )
  })
}

/** Resolves on SIGINT/SIGTERM (and removes its handlers), for long-running commands. */
export function untilSignal(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController()
  const on = () => ac.abort()
  process.once('SIGINT', on)
  process.once('SIGTERM', on)
  return {
    signal: ac.signal,
    dispose() {
      process.removeListener('SIGINT', on)
      process.removeListener('SIGTERM', on)
    },
  }
}

export function fmtRate(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-'
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(n < 10 ? 1 : 0)
}

export function fmtBytes(n: number | null | undefined, perS = true): string {
  if (n === null || n === undefined) return '-'
  const u = perS ? ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'] : ['B', 'KiB', 'MiB', 'GiB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`
}

export function fmtNs(ns: number | null | undefined): string {
  if (ns === null || ns === undefined) return '-'
  if (ns < 1e3) return `${Math.round(ns)} ns`
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 1 : 0)} µs`
  return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`
}

export function fmtDrops(d: Record<string, number>): string {
  const parts = Object.entries(d).filter(([, v]) => v > 0)
  return parts.length ? parts.map(([k, v]) => `${k}=${v}`).join(' ') : '0'
}
