/**
 * `onbus record`: records the topics other onbus processes (the daemon, its
 * modules) publish into an MCAP file, until a duration, SIGINT or SIGTERM;
 * `onbus record --recover in.mcap -o fixed.mcap` rewrites a file cut short.
 * docs/RECORD.md.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { createBus } from '../../bus/bus.js'
import { createIpcTransport } from '../../bus/ipc/transport.js'
import { jsonCodec } from '../../codecs/json.js'
import { onbusError } from '../../errors.js'
import { createRecorder, recoverFile, type RecorderSummary } from '../../record/index.js'

/** The daemon's stats topic: its snapshots say what each topic carries (`type: 'mavlink'`). */
const STATS_TOPIC = '/onbus/stats'

/** Parses `30s`, `1.5m`, `250ms`, `1h` or plain seconds into ms. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim())
  if (!m) throw new InvalidArgumentError(`'${v}' is not a duration (e.g. 30s, 250ms, 2m)`)
  const n = Number(m[1])
  const unit = m[2] ?? 's'
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000)
}

/** Exit codes shared with the other commands: 1 runtime failure, 2 bad input. */
export function reportError(err: unknown, command: string): void {
  const e = err as Error & { code?: string }
  const usage = typeof e.code === 'string' && (e.code.startsWith('ERR_INVALID_ARG') || e.code === 'ERR_OUT_OF_RANGE' || e.code === 'ERR_ONBUS_USAGE')
  process.stderr.write(`${command}: ${e.name ?? 'Error'}${e.code ? ` [${e.code}]` : ''}: ${e.message}\n`)
  process.exitCode = usage ? 2 : 1
}

/** One JSON line on stdout (bigints as decimal strings). */
export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) + '\n')
}

const mb = (n: number): string => (n / 1e6).toFixed(n < 1e7 ? 2 : 1)

/** Waits for SIGINT/SIGTERM or `ms`; resolves with what ended it. */
function untilStopped(ms: number | undefined): Promise<string> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null
    const done = (why: string): void => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      if (timer) clearTimeout(timer)
      resolve(why)
    }
    const onInt = (): void => done('SIGINT')
    const onTerm = (): void => done('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    if (ms !== undefined) timer = setTimeout(() => done('duration'), ms)
  })
}

function printSummary(s: RecorderSummary, why: string): void {
  const out = process.stdout
  out.write(`recorded ${s.path}: ${s.messages.toLocaleString('en-US')} messages, ${mb(s.bytes)} MB of payload, ${mb(s.fileBytes)} MB on disk (${s.compression}), ${s.durationS.toFixed(1)} s, ${s.channels} channels, ${s.chunks} chunks; dropped ${s.dropped} (stopped by ${why})\n`)
  const w = Math.max(5, ...s.topics.map((t) => t.topic.length))
  out.write(`  ${'topic'.padEnd(w)}  ${'codec'.padEnd(8)} ${'messages'.padStart(10)} ${'MB'.padStart(9)} ${'dropped'.padStart(8)}\n`)
  for (const t of s.topics) out.write(`  ${t.topic.padEnd(w)}  ${t.codec.padEnd(8)} ${String(t.written).padStart(10)} ${mb(t.bytes).padStart(9)} ${String(t.dropped).padStart(8)}\n`)
}

async function record(topics: string[], o: { output?: string; duration?: number; compression: 'zstd' | 'none'; chunkSize: number; flush: number; queueMb: number; ipcDir?: string; json?: boolean; recover?: string; quiet?: boolean }): Promise<void> {
  if (!o.output) throw onbusError('ERR_ONBUS_USAGE', 'an output file is required: -o <file.mcap>')
  if (o.recover) {
    const r = await recoverFile(o.recover, o.output, { compression: o.compression })
    if (o.json) printJson(r)
    else
      process.stdout.write(
        `recovered ${r.messages.toLocaleString('en-US')} messages (${r.channels} channels, ${r.schemas} schemas, ${r.metadata} metadata records) from ${r.input} into ${r.output}` +
          (r.complete ? ' (the input was complete)' : `; ${r.inputBytes - r.validBytes} bytes of torn tail dropped`) +
          '\n',
      )
    return
  }
  const dir = o.ipcDir ?? process.env.ONBUS_IPC_DIR
  const bus = createBus({ name: 'onbus-record' })
  const ipc = createIpcTransport(dir ? { dir } : {})
  ipc.on('error', () => {})
  bus.addTransport(ipc)
  try {
    // The daemon's snapshots name each topic's payload type (MAVLink topics get
    // message definitions as schemas). Wait briefly for the last one; without a
    // daemon, codec names decide.
    const types = new Map<string, string>()
    const stats = bus.topic(STATS_TOPIC, {
      qos: { reliability: 'best-effort', depth: 1, overflow: 'drop-oldest', durability: 'transient-local', deadlineMs: Infinity, livelinessLeaseMs: Infinity },
      codec: jsonCodec<{ topics?: { name: string; type: string | null }[] }>(),
    })
    let first: () => void = () => {}
    const gotFirst = new Promise<void>((r) => (first = r))
    stats.subscribe(
      (snap) => {
        for (const t of snap.topics ?? []) if (t.type) types.set(t.name, t.type)
        first()
      },
      { qos: { durability: 'transient-local' } },
    )
    await Promise.race([gotFirst, new Promise((r) => setTimeout(r, 1500))])
    const rec = await createRecorder({
      bus,
      ipc,
      path: o.output,
      topics,
      compression: o.compression,
      chunkSize: o.chunkSize,
      flushMs: o.flush,
      queueBytes: o.queueMb * 1024 * 1024,
      typeOf: (t) => types.get(t),
    })
    let status: NodeJS.Timeout | null = null
    if (process.stderr.isTTY && !o.json && !o.quiet) {
      status = setInterval(() => {
        const s = rec.stats()
        process.stderr.write(`\r${s.durationS.toFixed(0)} s  ${s.messages.toLocaleString('en-US')} msgs  ${mb(s.bytes)} MB  ${s.topics.length} topics  dropped ${s.dropped}   `)
      }, 1000)
      status.unref()
    }
    const why = await untilStopped(o.duration)
    if (status) {
      clearInterval(status)
      process.stderr.write('\n')
    }
    const s = await rec.close()
    if (o.json) printJson({ ...s, stoppedBy: why })
    else printSummary(s, why)
  } finally {
    bus.close()
    ipc.close()
  }
}

/** Adds `onbus record`. */
export function register(program: Command): void {
  program
    .command('record')
    .description('record the topics of the running onbus processes (over IPC) into an MCAP file: chunked, indexed, zstd; drops counted into the file')
    .argument('[topics...]', 'topics to record (default: every topic, including ones that appear later)')
    .option('-o, --output <file>', 'output MCAP file (with --recover: the rewritten file)')
    .option('-d, --duration <time>', 'stop after this long (30s, 2m, 250ms); default: until SIGINT/SIGTERM', parseDuration)
    .addOption(new Option('-c, --compression <kind>', 'chunk compression').choices(['zstd', 'none']).default('zstd'))
    .option('--chunk-size <bytes>', 'uncompressed chunk size; a SIGKILL loses at most the open chunk', (v) => positive(v, 'chunk size'), 512 * 1024)
    .option('--flush <time>', 'close a chunk that has been open this long, even if not full (0: by size only)', parseDuration, 2000)
    .option('--queue-mb <n>', 'bound of the recorder queue in MiB (beyond it messages are dropped and counted)', (v) => positive(v, 'queue size'), 64)
    .option('--recover <file>', 'rewrite a file cut short (killed recorder, full disk) into a fully indexed one at -o')
    .option('--ipc-dir <dir>', 'IPC runtime directory (default: $ONBUS_IPC_DIR, else $XDG_RUNTIME_DIR/onbus or /tmp/onbus-<uid>)')
    .option('-q, --quiet', 'no live status line')
    .option('--json', 'print the summary as one JSON line')
    .addHelpText(
      'after',
      '\nExamples:\n  onbus record -o flight.mcap --duration 30s\n  onbus record -o lidar.mcap lidar/packets mavlink/rx\n  onbus record --recover crashed.mcap -o fixed.mcap\n',
    )
    .action(async (topics: string[], o: Parameters<typeof record>[1]) => {
      try {
        await record(topics, o)
      } catch (err) {
        reportError(err, 'onbus record')
      }
    })
}

function positive(v: string, what: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`)
  return n
}
