/**
 * `onbus replay`: an MCAP file back onto the bus of the running onbus
 * processes (over IPC), with the recorded timing scaled by --rate, and
 * optionally onto links: a topic's payloads to a UDP destination or written
 * to a serial port / PTY. docs/RECORD.md.
 */
import { Command, InvalidArgumentError } from 'commander'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { once } from 'node:events'
import { createBus, type Bus } from '../../bus/bus.js'
import { createIpcTransport, type IpcTransport } from '../../bus/ipc/transport.js'
import { createUdpLink, type UdpLink } from '../../links/udp/index.js'
import { createSerialLink, type SerialLink } from '../../links/serial/index.js'
import { replayFile, type ReplayOutput, type ReplaySummary } from '../../record/index.js'
import { parseDuration, printJson, reportError } from './record.js'

interface Opts {
  rate: number
  loop?: boolean
  topics?: string[]
  start?: number
  end?: number
  udp: { topic: string; host: string; port: number }[]
  pty: { topic: string; path: string }[]
  baud: number
  bus: boolean
  wait: number
  ipcDir?: string
  json?: boolean
}

function udpSpec(v: string, prev: Opts['udp']): Opts['udp'] {
  const m = /^([^=]+)=(.+):(\d+)$/.exec(v)
  if (!m) throw new InvalidArgumentError(`'${v}' is not topic=host:port`)
  const port = Number(m[3])
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`port ${port} is out of range`)
  return [...prev, { topic: m[1], host: m[2].replace(/^\[(.*)\]$/, '$1'), port }]
}

function ptySpec(v: string, prev: Opts['pty']): Opts['pty'] {
  const i = v.indexOf('=')
  if (i <= 0 || i === v.length - 1) throw new InvalidArgumentError(`'${v}' is not topic=/path/to/tty`)
  return [...prev, { topic: v.slice(0, i), path: v.slice(i + 1) }]
}

function printSummary(s: ReplaySummary, why: string): void {
  process.stdout.write(
    `replayed ${s.path} (${s.reader} reader): ${s.messages.toLocaleString('en-US')} messages, ${s.loops} loop${s.loops === 1 ? '' : 's'} completed, ${s.recordedS.toFixed(1)} s recorded in ${s.wallS.toFixed(1)} s at ${s.rate}×; ` +
      `lateness p50 ${s.lateness.p50.toFixed(0)} µs, p99 ${s.lateness.p99.toFixed(0)} µs; ${s.blocked} publishes waited for a reliable subscriber (${why})\n`,
  )
  const names = Object.keys(s.topics)
  const w = Math.max(5, ...names.map((n) => n.length))
  for (const n of names) process.stdout.write(`  ${n.padEnd(w)}  ${String(s.topics[n]).padStart(10)}\n`)
}

async function replay(file: string, o: Opts): Promise<void> {
  let bus: Bus | undefined
  let ipc: IpcTransport | undefined
  const links: (UdpLink | SerialLink)[] = []
  const outputs: ReplayOutput[] = []
  try {
    for (const u of o.udp) {
      const address = isIP(u.host) ? u.host : (await lookup(u.host)).address
      const family = isIP(address) === 6 ? 6 : 4
      // Send-only; bound to loopback when the destination is local (nothing on a public address unless needed).
      const local = address.startsWith('127.') || address === '::1'
      const link = createUdpLink({ address: local ? (family === 6 ? '::1' : '127.0.0.1') : family === 6 ? '::' : '0.0.0.0', port: 0, receive: false })
      links.push(link)
      outputs.push({ topic: u.topic, udp: { link, address, port: u.port } })
    }
    for (const p of o.pty) {
      const link = createSerialLink({ path: p.path, baudRate: o.baud, reconnect: false })
      links.push(link)
      await Promise.race([
        once(link, 'connect'),
        once(link, 'error').then(([err]) => {
          throw err
        }),
      ])
      outputs.push({ topic: p.topic, stream: link })
    }
    if (o.bus) {
      const dir = o.ipcDir ?? process.env.ONBUS_IPC_DIR
      bus = createBus({ name: 'onbus-replay' })
      ipc = createIpcTransport(dir ? { dir } : {})
      ipc.on('error', () => {})
      bus.addTransport(ipc)
    }
    const rp = await replayFile({ bus, path: file, rate: o.rate, loop: o.loop, topics: o.topics, startS: o.start, endS: o.end, outputs, paused: true })
    // Give the other processes time to see our publishers and subscribe before the first message.
    if (bus && o.wait > 0) await new Promise((r) => setTimeout(r, o.wait))
    let why = 'end of file'
    const onSig = (sig: string): void => {
      why = sig
      rp.close()
    }
    const onInt = (): void => onSig('SIGINT')
    const onTerm = (): void => onSig('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    rp.clock.resume()
    const s = await rp.done
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    if (o.json) printJson({ ...s, stoppedBy: why })
    else printSummary(s, why)
  } finally {
    for (const l of links) l.close()
    bus?.close()
    ipc?.close()
  }
}

/** Adds `onbus replay`. */
export function register(program: Command): void {
  program
    .command('replay')
    .description('replay an MCAP file onto the bus of the running onbus processes (over IPC), with the recorded timing, and optionally onto UDP or a PTY')
    .argument('<file>', 'MCAP file (a file cut short is read with the streaming reader)')
    .option('-r, --rate <factor>', 'speed factor (2 = twice as fast)', (v) => {
      const n = Number(v)
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('rate must be a number > 0')
      return n
    }, 1)
    .option('-l, --loop', 'start again at the end, until SIGINT/SIGTERM')
    .option('-t, --topics <list>', 'only these topics (comma-separated)', (v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--start <time>', 'start this long after the first message (10s, 1m)', parseDuration)
    .option('--end <time>', 'stop this long after the first message', parseDuration)
    .option('--udp <topic=host:port>', "also send the topic's payloads to a UDP destination (repeatable)", udpSpec, [])
    .option('--pty <topic=path>', "also write the topic's payloads to a serial port or PTY, e.g. MAVLink (repeatable)", ptySpec, [])
    .option('--baud <rate>', 'baud rate for --pty', (v) => Number(v), 115200)
    .option('--no-bus', 'do not publish on the bus (links only)')
    .option('--wait <time>', 'wait this long for subscribers to connect before starting', parseDuration, 1000)
    .option('--ipc-dir <dir>', 'IPC runtime directory (default: $ONBUS_IPC_DIR, else $XDG_RUNTIME_DIR/onbus or /tmp/onbus-<uid>)')
    .option('--json', 'print the summary as one JSON line')
    .addHelpText(
      'after',
      '\nExamples:\n  onbus replay flight.mcap --rate 2\n  onbus replay flight.mcap --loop --topics lidar/packets --udp lidar/packets=127.0.0.1:2368\n  onbus replay flight.mcap --pty mavlink/rx=/dev/pts/7 --no-bus\n',
    )
    .action(async (file: string, raw: Opts & { start?: number; end?: number }) => {
      try {
        await replay(file, { ...raw, start: raw.start !== undefined ? raw.start / 1000 : undefined, end: raw.end !== undefined ? raw.end / 1000 : undefined })
      } catch (err) {
        reportError(err, 'onbus replay')
      }
    })
}
