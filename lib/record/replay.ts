/**
 * Replay: an MCAP file back onto the bus (and optionally onto links), in
 * log_time order, with the recorded inter-arrival times scaled by `rate`,
 * driven by a {@link VirtualClock} that modules can read.
 *
 * Reading: the indexed reader when the file has a summary (messages come in
 * log_time order across chunks, read lazily); otherwise (a file cut short by
 * a crash) the streaming reader over the whole file, sorted in memory.
 * A prefetcher keeps up to `prefetch` messages decoded ahead of the clock so
 * that chunk reads and decompression never sit between two due messages.
 *
 * Timing: each message is due at the bus-clock time where the virtual clock
 * reaches its log_time. The scheduler sleeps with `setTimeout` until
 * `spinMs` before that, then yields with `setImmediate` (letting I/O run)
 * until the time has come. Deadlines are absolute, so errors do not
 * accumulate; a late message is published at once (its lateness counted).
 */
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { McapIndexedReader, McapStreamReader, type McapTypes } from '@mcap/core'
import type { Bus } from '../bus/bus.js'
import type { Topic } from '../bus/topic.js'
import type { Publisher } from '../bus/publisher.js'
import { qosProfiles, type QoS } from '../bus/qos.js'
import { monotonicNs } from '../bus/clock.js'
import type { Codec } from '../codecs/codec.js'
import { rawCodec } from '../codecs/raw.js'
import { jsonCodec } from '../codecs/json.js'
import { invalidArgType, invalidArgValue, onbusError } from '../errors.js'
import { CLOCK_QOS, CLOCK_TOPIC, clockSample, VirtualClock, type ClockSample } from './clock.js'
import { decompressHandlers, FileReadable } from './io.js'

/** A destination for a topic's payloads besides the bus: anything with `send(bytes, port, address)` (a UdpLink) or `write(bytes)` (a stream or serial link). */
export interface ReplayOutput {
  topic: string
  /** A UDP link and the destination to send each payload to. */
  udp?: { link: { send(data: Uint8Array, port?: number, address?: string): boolean }; address: string; port: number }
  /** A stream link (serial/PTY, TCP, Unix): each payload is written as is. */
  stream?: { write(data: Uint8Array): boolean }
}

/** Options of {@link replayFile}. */
export interface ReplayOptions {
  /** The bus to publish on (add an IPC transport to reach other processes). Optional when only `outputs` are wanted. */
  bus?: Bus
  path: string
  /** Speed factor; default 1. */
  rate?: number
  /** Start again from the beginning at the end, until closed. */
  loop?: boolean
  /** Only these topics. Default: every topic except onbus's own (`/onbus/…`, e.g. the daemon's stats snapshots), which are replayed only when listed here. */
  topics?: string[]
  /** Start this many seconds after the first message. */
  startS?: number
  /** Stop this many seconds after the first message. */
  endS?: number
  /** Payloads of these topics also go out through links. */
  outputs?: ReplayOutput[]
  /** Publish on the bus (default true when `bus` is given). */
  publish?: boolean
  /** Codecs for topics not declared on the bus yet, by topic name (default: raw for `raw`, JSON for `json`, bytes as they are otherwise). */
  codecs?: Record<string, Codec<unknown>>
  /** Publish the clock on this topic (JSON {@link ClockSample}s at every change and every 250 ms) for modules in other processes (`followClock()`); `false`: not at all. Default `/onbus/clock` when `bus` is given. */
  clockTopic?: string | false
  /** Start paused (`clock.resume()` starts). */
  paused?: boolean
  /** How long before a due time the scheduler stops sleeping and starts yielding; default 2 ms. */
  spinMs?: number
  /** Messages decoded ahead of the clock; default 20,000. */
  prefetch?: number
  signal?: AbortSignal
}

/** Replay figures. */
export interface ReplaySummary {
  path: string
  /** Indexed (summary present) or streaming (file without summary, sorted in memory). */
  reader: 'indexed' | 'streaming'
  messages: number
  loops: number
  /** Wall time from the first message to the end, in seconds. */
  wallS: number
  /** Recorded span replayed per pass (within start/end), in seconds. */
  recordedS: number
  rate: number
  /** How late messages went out versus their due time, in µs (nearest rank). */
  lateness: { p50: number; p99: number; max: number; n: number }
  /** Publishes that waited for a reliable subscriber (`publishAsync`). */
  blocked: number
  /** Payloads an output link queued in memory because its socket or port was full (`send`/`write` returned false): sent late, not lost. */
  outputQueued: number
  topics: Record<string, number>
}

interface Item {
  channelId: number
  logTime: bigint
  data: Uint8Array
}

interface Target {
  topic: Topic<unknown> | null
  pub: Publisher<unknown> | null
  name: string
  outputs: ReplayOutput[]
  count: number
}

interface Source {
  kind: 'indexed' | 'streaming'
  channels: ReadonlyMap<number, McapTypes.Channel>
  first: bigint | null
  last: bigint | null
  messages(topics: string[] | undefined, start: bigint | undefined, end: bigint | undefined): AsyncGenerator<Item>
  close(): Promise<void>
}

const qosReviver = (_k: string, v: unknown): unknown => (v === 'Infinity' ? Infinity : v)

/** Opens an MCAP file for replay: indexed if it has a summary, else streaming (read whole, sorted by log_time). */
async function openSource(path: string): Promise<Source> {
  const handlers = await decompressHandlers()
  const readable = await FileReadable.open(path)
  try {
    const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: handlers })
    let first: bigint | null = null
    let last: bigint | null = null
    for (const c of reader.chunkIndexes) {
      if (first === null || c.messageStartTime < first) first = c.messageStartTime
      if (last === null || c.messageEndTime > last) last = c.messageEndTime
    }
    if (reader.statistics && reader.statistics.messageCount > 0n) {
      first = reader.statistics.messageStartTime
      last = reader.statistics.messageEndTime
    }
    return {
      kind: 'indexed',
      channels: reader.channelsById,
      first,
      last,
      async *messages(topics, start, end) {
        for await (const m of reader.readMessages({ topics, startTime: start, endTime: end })) yield { channelId: m.channelId, logTime: m.logTime, data: m.data }
      },
      close: () => readable.close(),
    }
  } catch {
    await readable.close()
  }
  // No summary (a recording cut short): stream every record.
  const bytes = await readFile(path)
  const reader = new McapStreamReader({ decompressHandlers: handlers })
  reader.append(bytes)
  const channels = new Map<number, McapTypes.Channel>()
  const all: Item[] = []
  for (;;) {
    let rec: McapTypes.TypedMcapRecord | undefined
    try {
      rec = reader.nextRecord()
    } catch {
      break // a damaged tail: keep what was read before it
    }
    if (!rec) break
    if (rec.type === 'Channel') channels.set(rec.id, rec)
    else if (rec.type === 'Message') all.push({ channelId: rec.channelId, logTime: rec.logTime, data: rec.data })
  }
  // Stable sort by log_time (file order breaks ties, as the indexed reader does).
  all.sort((a, b) => (a.logTime < b.logTime ? -1 : a.logTime > b.logTime ? 1 : 0))
  return {
    kind: 'streaming',
    channels,
    first: all.length ? all[0].logTime : null,
    last: all.length ? all[all.length - 1].logTime : null,
    async *messages(topics, start, end) {
      const want = topics ? new Set(topics) : null
      for (const m of all) {
        if (start !== undefined && m.logTime < start) continue
        if (end !== undefined && m.logTime > end) break
        if (want && !want.has(channels.get(m.channelId)?.topic ?? '')) continue
        yield m
      }
    },
    close: async () => {},
  }
}

/**
 * A running replay. Create with {@link replayFile}. Events: `'loop'` (a pass
 * ended and the next begins), `'end'` (summary), `'error'`.
 */
export class Replayer extends EventEmitter {
  readonly path: string
  /** The virtual clock: recorded time, rate, pause/resume/seek. */
  readonly clock: VirtualClock
  /** Resolves with the summary when the replay ends (end of file without `loop`, or `close()`). */
  readonly done: Promise<ReplaySummary>
  private readonly src: Source
  private readonly opts: ReplayOptions
  private readonly topics: string[]
  private readonly targets = new Map<number, Target>()
  private readonly byTopic = new Map<string, Target>()
  private closed = false
  private wake: (() => void) | null = null
  private seekTo: number | null = null
  private readonly spinNs: number
  private readonly late = new Float64Array(1 << 20)
  private lateN = 0
  private messages = 0
  private loops = 0
  private blocked = 0
  private outputQueued = 0
  private wallStart = 0
  private wallEnd = 0
  private abortCleanup: (() => void) | null = null
  private clockPub: Publisher<ClockSample> | null = null
  private clockTimer: NodeJS.Timeout | null = null

  /** @internal use {@link replayFile} */
  constructor(src: Source, opts: ReplayOptions) {
    super()
    this.src = src
    this.opts = opts
    this.path = opts.path
    this.spinNs = (opts.spinMs ?? 2) * 1e6
    this.clock = new VirtualClock(src.first ?? 0n, opts.rate ?? 1)
    if (opts.paused) this.clock.pause()
    this.clock.on('change', () => {
      this.wakeUp()
      this.publishClock()
    })
    const clockTopic = opts.clockTopic ?? CLOCK_TOPIC
    if (opts.bus && clockTopic !== false) {
      this.clockPub = opts.bus.topic(clockTopic, { qos: CLOCK_QOS, codec: jsonCodec<ClockSample>() }).publisher({ name: 'replay-clock', qos: { durability: 'transient-local' } })
      this.publishClock()
      this.clockTimer = setInterval(() => this.publishClock(), 250)
      this.clockTimer.unref()
    }
    // Which topics: the listed ones, else all but onbus's own (replaying old stats
    // snapshots onto a live daemon's stats topic would mislead its viewers).
    const topics = opts.topics ?? [...new Set([...src.channels.values()].map((c) => c.topic))].filter((t) => !t.startsWith('/onbus/'))
    this.topics = topics
    // Declare every replayed topic now, so that subscribers can find them as soon as replayFile() resolves.
    const want = new Set(topics)
    for (const ch of src.channels.values()) if (want.has(ch.topic)) this.target(ch.id)
    if (opts.signal) {
      const signal = opts.signal
      const onAbort = (): void => this.close()
      if (signal.aborted) queueMicrotask(onAbort)
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        this.abortCleanup = () => signal.removeEventListener('abort', onAbort)
      }
    }
    this.done = this.run().then(
      (s) => {
        this.emit('end', s)
        return s
      },
      (err: Error) => {
        if (this.listenerCount('error') > 0) this.emit('error', err)
        throw err
      },
    )
    this.done.catch(() => {})
  }

  /** Which reader is used. */
  get reader(): 'indexed' | 'streaming' {
    return this.src.kind
  }

  /** Jumps to `seconds` after the first message (takes effect before the next message). */
  seek(seconds: number): void {
    if (typeof seconds !== 'number' || !(seconds >= 0)) throw invalidArgValue('seconds', seconds, 'must be a number ≥ 0')
    this.seekTo = seconds * 1e9
    this.clock.seek(this.seekTo)
  }

  private publishClock(): void {
    if (this.clockPub && !this.clockPub.closedState) this.clockPub.publish(clockSample(this.clock))
  }

  private wakeUp(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  private target(channelId: number): Target | null {
    let t = this.targets.get(channelId)
    if (t) return t
    const ch = this.src.channels.get(channelId)
    if (!ch) return null
    t = this.byTopic.get(ch.topic)
    if (!t) {
      const bus = this.opts.bus
      let topic: Topic<unknown> | null = null
      let pub: Publisher<unknown> | null = null
      if (bus && this.opts.publish !== false) {
        try {
          topic = bus.topic(ch.topic)
        } catch {
          const codecName = ch.metadata.get('onbus.codec') ?? (ch.messageEncoding === 'json' ? 'json' : 'raw')
          const codec =
            this.opts.codecs?.[ch.topic] ??
            (codecName === 'raw' ? rawCodec : codecName === 'json' ? jsonCodec() : (Object.freeze({ name: codecName, encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b, byteLength: (v: Uint8Array) => v.byteLength }) as Codec<unknown>))
          let qos: QoS | undefined
          try {
            const q = ch.metadata.get('onbus.qos')
            if (q) qos = JSON.parse(q, qosReviver) as QoS
          } catch {
            qos = undefined
          }
          topic = bus.topic(ch.topic, { qos: qos ?? qosProfiles.sensorData, codec: codec as Codec<unknown> })
        }
        pub = topic.publisher({ name: `replay:${ch.topic}` })
      }
      t = { topic, pub, name: ch.topic, outputs: (this.opts.outputs ?? []).filter((o) => o.topic === ch.topic), count: 0 }
      this.byTopic.set(ch.topic, t)
    }
    this.targets.set(channelId, t)
    return t
  }

  /** Waits until recorded offset `offset` is due. 'go', 'seek' (restart the read there) or 'closed'. */
  private async waitFor(offset: number): Promise<'go' | 'seek' | 'closed'> {
    for (;;) {
      if (this.closed) return 'closed'
      if (this.seekTo !== null) return 'seek'
      const due = this.clock.monotonicAt(offset)
      const d = due - monotonicNs()
      if (d <= 0) {
        if (this.lateN < this.late.length) this.late[this.lateN++] = -d
        return 'go'
      }
      if (d === Infinity) await new Promise<void>((r) => (this.wake = r))
      else if (d > this.spinNs) {
        await new Promise<void>((r) => {
          const timer = setTimeout(() => {
            this.wake = null
            r()
          }, (d - this.spinNs) / 1e6)
          this.wake = () => {
            clearTimeout(timer)
            r()
          }
        })
      } else await new Promise<void>((r) => setImmediate(r))
    }
  }

  /** Reads ahead of the clock into a bounded buffer. */
  private async *prefetched(gen: AsyncGenerator<Item>): AsyncGenerator<Item> {
    const max = this.opts.prefetch ?? 20_000
    const buf: Item[] = []
    let head = 0
    let ended = false
    let failed: Error | null = null
    // Holders, not plain variables: TypeScript does not see closures assign them.
    const n: { consumer: (() => void) | null; producer: (() => void) | null } = { consumer: null, producer: null }
    let stop = false
    const producer = (async () => {
      try {
        for await (const m of gen) {
          buf.push(m)
          n.consumer?.()
          n.consumer = null
          while (!stop && buf.length - head >= max) await new Promise<void>((r) => (n.producer = r))
          if (stop) break
        }
      } catch (err) {
        failed = err as Error
      } finally {
        ended = true
        n.consumer?.()
        n.consumer = null
      }
    })()
    try {
      // Fill the read-ahead before the first message: reading and decompressing
      // the first chunks back to back would otherwise make the first due
      // messages of every pass late.
      while (!ended && buf.length - head < max) await new Promise<void>((r) => (n.consumer = r))
      for (;;) {
        if (head < buf.length) {
          const m = buf[head]
          buf[head++] = undefined as unknown as Item
          if (head > 4096 && head * 2 > buf.length) {
            buf.splice(0, head)
            head = 0
          }
          n.producer?.()
          n.producer = null
          yield m
          continue
        }
        if (failed) throw failed
        if (ended) return
        await new Promise<void>((r) => (n.consumer = r))
      }
    } finally {
      stop = true
      n.producer?.()
      await gen.return(undefined)
      await producer
    }
  }

  private async run(): Promise<ReplaySummary> {
    const first = this.src.first
    if (this.src.first === null || first === null) return this.summary()
    const startOff = (this.opts.startS ?? 0) * 1e9
    const endTime = this.opts.endS !== undefined ? first + BigInt(Math.round(this.opts.endS * 1e9)) : undefined
    let from = startOff
    try {
      for (;;) {
        const startTime = first + BigInt(Math.round(from))
        let primed = false
        let seeked = false
        for await (const m of this.prefetched(this.src.messages(this.topics, startTime, endTime))) {
          const offset = Number(m.logTime - first)
          if (!primed) {
            primed = true
            // A pass starts at its first message, with no dead time before it.
            if (this.seekTo === null) this.clock.seek(offset)
          }
          const w = await this.waitFor(offset)
          if (w === 'closed') return this.summary()
          if (this.wallStart === 0) this.wallStart = performance.now()
          if (w === 'seek') {
            from = this.seekTo!
            this.seekTo = null
            seeked = true
            break
          }
          await this.deliver(m)
        }
        if (this.closed) break
        if (seeked) continue
        if (this.seekTo !== null) {
          from = this.seekTo
          this.seekTo = null
          continue
        }
        // Nothing in the window (or for these topics): looping would spin.
        if (!this.opts.loop || !primed) break
        this.loops++
        this.emit('loop', this.loops)
        from = startOff
      }
    } finally {
      this.wallEnd = performance.now()
      this.finishUp()
    }
    return this.summary()
  }

  private async deliver(m: Item): Promise<void> {
    const t = this.target(m.channelId)
    if (!t) return
    t.count++
    this.messages++
    if (t.pub && t.topic) {
      const v = t.topic.codec.decode(m.data)
      if (!t.pub.publish(v)) {
        this.blocked++
        await t.pub.publishAsync(v)
      }
    }
    for (const o of t.outputs) {
      if (o.udp && !o.udp.link.send(m.data, o.udp.port, o.udp.address)) this.outputQueued++
      if (o.stream && !o.stream.write(m.data)) this.outputQueued++
    }
  }

  private finishUp(): void {
    this.abortCleanup?.()
    if (this.clockTimer) clearInterval(this.clockTimer)
    this.publishClock()
    this.clockPub?.close()
    for (const t of this.byTopic.values()) t.pub?.close()
    void this.src.close()
  }

  /** Figures so far. */
  summary(): ReplaySummary {
    const s = this.late.slice(0, this.lateN).sort()
    const at = (p: number): number => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] / 1000 : 0)
    const topics: Record<string, number> = {}
    for (const t of this.byTopic.values()) topics[t.name] = t.count
    const first = this.src.first
    const last = this.src.last
    return {
      path: this.path,
      reader: this.src.kind,
      messages: this.messages,
      loops: this.loops,
      wallS: ((this.wallEnd || performance.now()) - (this.wallStart || performance.now())) / 1000,
      recordedS: first !== null && last !== null ? Math.max(0, Math.min(Number(last - first) / 1e9, this.opts.endS ?? Infinity) - (this.opts.startS ?? 0)) : 0,
      rate: this.clock.rate,
      lateness: { p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1] / 1000 : 0, n: s.length },
      blocked: this.blocked,
      outputQueued: this.outputQueued,
      topics,
    }
  }

  /** Stops the replay; `done` resolves with the summary. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.wakeUp()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
    await this.done
  }
}

/**
 * Starts replaying an MCAP file onto the bus (and optional outputs).
 * @example
 * const replay = await replayFile({ bus, path: 'flight.mcap', rate: 2, topics: ['lidar/raw'] })
 * console.log(await replay.done)            // { messages, lateness: { p50, p99 }, ... }
 */
export async function replayFile(opts: ReplayOptions): Promise<Replayer> {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  if (typeof opts.path !== 'string' || !opts.path) throw invalidArgType('options.path', 'a non-empty string', opts.path)
  if (opts.rate !== undefined && (typeof opts.rate !== 'number' || !(opts.rate > 0) || !Number.isFinite(opts.rate))) throw invalidArgValue('options.rate', opts.rate, 'must be a finite number > 0')
  if (opts.startS !== undefined && !(opts.startS >= 0)) throw invalidArgValue('options.startS', opts.startS, 'must be ≥ 0')
  if (opts.endS !== undefined && !(opts.endS >= (opts.startS ?? 0))) throw invalidArgValue('options.endS', opts.endS, 'must be ≥ startS')
  let src: Source
  try {
    src = await openSource(opts.path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw err
    throw onbusError('ERR_ONBUS_REPLAY', `Cannot read ${opts.path} as MCAP: ${(err as Error).message}`)
  }
  return new Replayer(src, opts)
}
