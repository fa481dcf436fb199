#!/usr/bin/env node
/**
 * Runs the simulated autopilot over UDP or a PTY (see docs/SIMULATOR.md).
 *
 *   node dist/lib/sim/cli.js --udp 127.0.0.1:14550          # listen; answer whoever talks to it
 *   node dist/lib/sim/cli.js --udp 127.0.0.1:0 --remote 127.0.0.1:14550
 *   node dist/lib/sim/cli.js --pty                           # prints the companion's PTY path
 *   node dist/lib/sim/cli.js --serial /dev/ttyUSB0 --baud 921600
 *
 * Prints one JSON line when ready ({ ready, udp | pty | serial, signing, key? })
 * and one with its counters when it stops (SIGINT/SIGTERM).
 */
import { readFileSync } from 'node:fs'
import { startSimAutopilot } from './start.js'
import type { StartSimOptions } from './start.js'
import '../mavlink/index.js' // installs the common dialect as the parser default

const USAGE = `usage: sim-autopilot (--udp ADDR:PORT [--remote HOST:PORT] | --pty | --serial PATH [--baud N])
  [--key HEX64 | --key-file PATH | --no-signing | --setup-signing] [--flavour px4|ardupilot] [--sysid N] [--compid N]
  [--attitude-hz N] [--position-hz N] [--clock-start-ms N] [--drift-ppm N] [--takeoff-ms N]`

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`)
  process.exit(2)
}

function hostPort(s: string, what: string): { address: string; port: number } {
  const i = s.lastIndexOf(':')
  const port = Number(s.slice(i + 1))
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) fail(`${what}: expected ADDRESS:PORT, got ${s}`)
  return { address: s.slice(0, i).replace(/^\[|\]$/g, ''), port }
}

function parse(argv: string[]): Map<string, string | true> {
  const m = new Map<string, string | true>()
  const flags = new Set(['--pty', '--no-signing', '--setup-signing', '--help'])
  const valued = new Set(['--udp', '--remote', '--serial', '--baud', '--key', '--key-file', '--flavour', '--sysid', '--compid', '--attitude-hz', '--position-hz', '--clock-start-ms', '--drift-ppm', '--takeoff-ms'])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!flags.has(a) && !valued.has(a)) fail(`unknown argument ${a}`)
    if (flags.has(a)) m.set(a, true)
    else {
      const v = argv[++i]
      if (v === undefined) fail(`${a} needs a value`)
      m.set(a, v)
    }
  }
  return m
}

async function main(): Promise<void> {
  // a closed stdout (piped into `head`) must not take the simulator down
  process.stdout.on('error', () => {})
  const args = parse(process.argv.slice(2))
  if (args.has('--help')) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const num = (k: string): number | undefined => {
    const v = args.get(k)
    if (v === undefined) return undefined
    const n = Number(v)
    if (typeof v !== 'string' || !Number.isFinite(n)) fail(`${k}: expected a number`)
    return n
  }
  const opts: StartSimOptions = {}
  if (args.has('--no-signing')) opts.key = null
  else if (args.has('--setup-signing')) opts.key = 'setup'
  else {
    const hex = args.get('--key')
    const file = args.get('--key-file')
    if (typeof hex === 'string') opts.key = Buffer.from(hex, 'hex')
    else if (typeof file === 'string') opts.key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex')
    if (opts.key && opts.key.length !== 32) fail('the signing key must be 32 bytes (64 hex digits)')
  }
  const udp = args.get('--udp')
  const remote = args.get('--remote')
  const serialPath = args.get('--serial')
  if (typeof udp === 'string') {
    const local = hostPort(udp, '--udp')
    opts.udp = { address: local.address, port: local.port }
    if (typeof remote === 'string') opts.udp.remote = hostPort(remote, '--remote')
  } else if (typeof serialPath === 'string') opts.serial = { path: serialPath, baudRate: num('--baud') ?? 921600 }
  else if (args.has('--pty')) opts.pty = true
  else fail('give --udp, --pty or --serial')
  const f = args.get('--flavour')
  if (f !== undefined) {
    if (f !== 'px4' && f !== 'ardupilot') fail('--flavour: px4 or ardupilot')
    opts.flavour = f
  }
  const set = (k: string, apply: (n: number) => void): void => {
    const n = num(k)
    if (n !== undefined) apply(n)
  }
  set('--sysid', (n) => (opts.sysid = n))
  set('--compid', (n) => (opts.compid = n))
  set('--attitude-hz', (n) => (opts.attitudeHz = n))
  set('--position-hz', (n) => (opts.positionHz = n))
  set('--clock-start-ms', (n) => (opts.clockStartNs = n * 1e6))
  set('--drift-ppm', (n) => (opts.clockDriftPpm = n))
  set('--takeoff-ms', (n) => (opts.takeoffMs = n))
  const generated = opts.key === undefined
  const running = await startSimAutopilot(opts)
  const ready: Record<string, unknown> = { ready: true }
  if (generated && running.key) ready.key = running.key.toString('hex')
  ready.signing = opts.key === 'setup' ? 'awaiting SETUP_SIGNING' : running.key !== undefined
  if (running.udp) ready.udp = running.udp
  if (running.pty) ready.pty = running.pty
  if (opts.serial) ready.serial = opts.serial.path
  process.stdout.write(`${JSON.stringify(ready)}\n`)
  const stop = (): void => {
    const st = running.port.stats()
    process.stdout.write(`${JSON.stringify({ stopped: true, sim: running.sim.stats, port: { framesIn: st.framesIn, framesOut: st.framesOut, rejected: st.parser.rejected } })}\n`)
    running.close().finally(() => setTimeout(() => process.exit(0), 50).unref())
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((err: Error) => {
  process.stderr.write(`sim-autopilot: ${err.message}\n`)
  process.exit(1)
})
