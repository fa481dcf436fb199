/**
 * The recorder: bus topics into an MCAP file (chunked, indexed, zstd), without
 * ever slowing the bus.
 *
 * Each recorded topic gets one synchronous, best-effort subscription that
 * copies the message's bytes into a bounded queue (a byte bound and a count
 * bound) and returns. A pump packs queued messages into batches for
 * @mcap/core's McapWriter, which runs in a worker thread (writer.ts): chunk
 * compression and file writes never run on the event loop that delivers bus
 * messages. The writer awaits every file write and the pump awaits each
 * batch, so a slow disk holds the pump, the queue fills, and messages beyond
 * the bounds are dropped and counted per topic. Nothing the recorder does
 * can push back on a publisher. The drop counts, start and stop
 * times and versions go into a metadata record `onbus.recorder` at close.
 *
 * Layout and crash behaviour: docs/RECORD.md.
 */
import { EventEmitter } from 'node:events'
import type { Bus } from '../bus/bus.js'
import type { Topic } from '../bus/topic.js'
import type { EndpointDescriptor } from '../bus/topic.js'
import type { MessageMeta } from '../bus/meta.js'
import type { Subscription } from '../bus/subscription.js'
import type { IpcTransport } from '../bus/ipc/transport.js'
import type { Codec } from '../codecs/codec.js'
import type { QoS } from '../bus/qos.js'
import { monotonicNs } from '../bus/clock.js'
import { now } from '../time.js'
import { invalidArgType, invalidArgValue, onbusError } from '../errors.js'
import type { Dialect } from '../mavlink/codec.js'
import type { Compression } from './io.js'
import { openSink, packBatch, type ChannelSpec, type Sink } from './writer.js'
import { defaultDialect, isMavlinkCodec, MAVLINK_MESSAGE_ENCODING, mavlinkMsgId, mavlinkSchema, messageEncodingOf } from './schema.js'
import { mcapLibrary, onbusVersion } from './version.js'

/** Options of {@link createRecorder}. */
export interface RecorderOptions {
  /** The bus whose topics are recorded (add an IPC transport to it, and pass it as `ipc`, to record other processes' topics). */
  bus: Bus
  /** Output file (created or truncated). */
  path: string
  /** Topic names to record; default every topic, including topics declared (or discovered over IPC) later. */
  topics?: string[]
  /** The IPC transport added to `bus`: topics that other processes publish are declared here and recorded too. */
  ipc?: IpcTransport
  /** Chunk compression; default `'zstd'`. */
  compression?: Compression
  /** zstd level; default 3. */
  zstdLevel?: number
  /** Uncompressed chunk size that triggers a flush; default 512 KiB (compression runs on the event loop: a smaller chunk is a shorter pause; a SIGKILL loses at most the open chunk). */
  chunkSize?: number
  /**
   * Close a chunk that has been open this long (ms), even if it is not full,
   * so that a recorder killed during a quiet stretch loses at most this much;
   * default 2000, 0 = by size only. Each such flush ends the file (it is
   * complete and indexed at that moment) and reopens it for appending.
   */
  flushMs?: number
  /** Queue bound in bytes of message payload; default 64 MiB. */
  queueBytes?: number
  /** Queue bound in messages; default 100,000. */
  queueMessages?: number
  /** Work the pump does per event-loop turn before yielding, in ms, when the writer runs on this thread; default 4. */
  sliceMs?: number
  /**
   * Where McapWriter (compression, file writes) runs: `'worker'` (a worker
   * thread: nothing but the copy into the queue happens on the event loop),
   * `'thread'` (this one), or `'auto'` (default: the worker when the
   * compiled worker module exists, i.e. running from dist/).
   */
  writer?: 'auto' | 'worker' | 'thread'
  /**
   * What a topic's payload is (the daemon configuration's topic `type`, e.g.
   * from its stats snapshots): `'mavlink'` makes a topic of any codec a
   * MAVLink topic (one frame per message). Asked when the topic's first
   * message is written; also stored as channel metadata `onbus.type`.
   */
  typeOf?: (topic: string) => string | null | undefined
  /** MAVLink dialect for message definitions; default ardupilotmega. */
  dialect?: Dialect
  /** Stops the recorder (as `close()`) when aborted. */
  signal?: AbortSignal
}

/** Per-topic figures. */
export interface RecordedTopic {
  topic: string
  codec: string
  /** Messages the subscription received. */
  received: number
  /** Messages written to the file. */
  written: number
  /** Payload bytes written. */
  bytes: number
  /** Messages dropped because the queue was full. */
  dropped: number
}

/** What `close()` returns and `stats()` reports. */
export interface RecorderSummary {
  path: string
  /** Wall time of the first and last recorded moment (ms since the epoch). */
  startTime: number
  stopTime: number
  durationS: number
  messages: number
  /** Payload bytes written. */
  bytes: number
  /** Size of the file so far (final size after close). */
  fileBytes: number
  dropped: number
  /** Messages waiting in the queue now. */
  queued: number
  queuedBytes: number
  channels: number
  /** Chunks flushed (counted when their write starts). */
  chunks: number
  /** Chunks closed by `flushMs` rather than by size. */
  flushes: number
  /** Where McapWriter runs: a worker thread or this one. */
  writer: 'worker' | 'thread' | null
  compression: Compression
  topics: RecordedTopic[]
}

/** `'drop'` event payload, coalesced per topic and event-loop turn. */
export interface RecorderDropEvent {
  topic: string
  count: number
  total: number
}

interface TopicState {
  name: string
  codec: Codec<unknown>
  codecName: string
  qos: Readonly<QoS>
  json: boolean
  /** null until the first message decides (see `typeOf`). */
  mavlink: boolean | null
  type: string | null
  channel: number
  byMsgId: Map<number, number>
  sub: Subscription<unknown> | null
  received: number
  written: number
  bytes: number
  dropped: number
  pendingDrops: number
}

interface Entry {
  t: TopicState
  data: Uint8Array
  logTime: bigint
  publishTime: bigint
  seq: number
}

/** A codec that passes bytes through under a remote topic's codec name: the recorder wants bytes, whatever they encode. */
function passthrough(name: string): Codec<Uint8Array> {
  return Object.freeze({ name, encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b, byteLength: (v: Uint8Array) => v.byteLength })
}

/** What the recorder's subscriptions request: matched by every publisher, never pushing back. */
const RECORDER_QOS: Partial<QoS> = {
  reliability: 'best-effort',
  durability: 'volatile',
  deadlineMs: Infinity,
  livelinessLeaseMs: Infinity,
  overflow: 'drop-oldest',
  depth: 1,
}

/**
 * Records bus topics into an MCAP file. Create with {@link createRecorder}.
 * Events: `'drop'` ({@link RecorderDropEvent}), `'topic'` (a topic is now
 * recorded), `'error'` (writing failed: the recorder stops).
 */
export class Recorder extends EventEmitter {
  readonly path: string
  private readonly bus: Bus
  private readonly ipc: IpcTransport | undefined
  private readonly filter: Set<string> | null
  private readonly compression: Compression
  private readonly zstdLevel: number
  private readonly chunkSize: number
  private readonly flushMs: number
  private readonly maxBytes: number
  private readonly maxCount: number
  private readonly sliceMs: number
  private readonly dialect: Dialect
  private readonly typeOf: ((topic: string) => string | null | undefined) | undefined
  private readonly where: 'auto' | 'worker' | 'thread'
  private sink: Sink | null = null
  private nextKey = 1
  private readonly topics = new Map<string, TopicState>()
  private q: Entry[] = []
  private qHead = 0
  private qBytes = 0
  private pumping = false
  private pumpDone: Promise<void> = Promise.resolve()
  private closing: Promise<RecorderSummary> | null = null
  private stopped = false
  private failed: Error | null = null
  private dropReportQueued = false
  private readonly schemas = new Map<number, ChannelSpec['schema']>()
  private startWall = 0
  private stopWall = 0
  /** CLOCK_REALTIME − CLOCK_MONOTONIC in ns: puts the bus's monotonic publish stamps on the MCAP (epoch) time axis. */
  private monoToReal = 0n
  private written = 0
  private writtenBytes = 0
  private dropped = 0
  private channels = 0
  private readonly hooks: [EventEmitter, string, (...a: never[]) => void][] = []
  private abortCleanup: (() => void) | null = null

  /** @internal use {@link createRecorder} */
  constructor(opts: RecorderOptions) {
    super()
    if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
    if (!opts.bus || typeof opts.bus.topic !== 'function') throw invalidArgType('options.bus', 'a Bus', opts.bus)
    if (typeof opts.path !== 'string' || opts.path.length === 0) throw invalidArgType('options.path', 'a non-empty string', opts.path)
    if (opts.topics !== undefined && (!Array.isArray(opts.topics) || opts.topics.some((t) => typeof t !== 'string')))
      throw invalidArgType('options.topics', 'an array of strings', opts.topics)
    const compression = opts.compression ?? 'zstd'
    if (compression !== 'zstd' && compression !== 'none') throw invalidArgValue('options.compression', compression, "must be 'zstd' or 'none'")
    const posInt = (v: number | undefined, name: string, dflt: number, min = 1): number => {
      if (v === undefined) return dflt
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw invalidArgValue(name, v, `must be a number ≥ ${min}`)
      return v
    }
    this.bus = opts.bus
    this.path = opts.path
    this.ipc = opts.ipc
    this.filter = opts.topics && opts.topics.length > 0 ? new Set(opts.topics) : null
    this.compression = compression
    this.zstdLevel = posInt(opts.zstdLevel, 'options.zstdLevel', 3, -7)
    this.chunkSize = posInt(opts.chunkSize, 'options.chunkSize', 512 * 1024, 1024)
    this.flushMs = posInt(opts.flushMs, 'options.flushMs', 2000, 0)
    this.maxBytes = posInt(opts.queueBytes, 'options.queueBytes', 64 << 20)
    this.maxCount = posInt(opts.queueMessages, 'options.queueMessages', 100_000)
    this.sliceMs = posInt(opts.sliceMs, 'options.sliceMs', 4, 0.1)
    const where = opts.writer ?? 'auto'
    if (where !== 'auto' && where !== 'worker' && where !== 'thread') throw invalidArgValue('options.writer', where, "must be 'auto', 'worker' or 'thread'")
    this.where = where
    this.dialect = opts.dialect ?? defaultDialect
    if (opts.typeOf !== undefined && typeof opts.typeOf !== 'function') throw invalidArgType('options.typeOf', 'a function', opts.typeOf)
    this.typeOf = opts.typeOf
    if (opts.signal) {
      const signal = opts.signal
      const onAbort = (): void => void this.close().catch(() => {})
      if (signal.aborted) queueMicrotask(onAbort)
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        this.abortCleanup = () => signal.removeEventListener('abort', onAbort)
      }
    }
  }

  /** @internal Opens the file, writes the header, subscribes. */
  async start(): Promise<void> {
    this.sink = await openSink(
      { path: this.path, compression: this.compression, zstdLevel: this.zstdLevel, chunkSize: this.chunkSize, flushMs: this.flushMs, library: `onbus ${onbusVersion} (${mcapLibrary})` },
      this.where,
    )
    this.monoToReal = now('realtime') - BigInt(Math.round(monotonicNs()))
    this.startWall = Date.now()
    for (const t of this.bus.topics()) this.consider(t)
    this.listen(this.bus, 'topic', (t: Topic<unknown>) => this.consider(t))
    if (this.ipc) {
      for (const d of this.ipc.remoteEndpoints()) this.considerRemote(d)
      this.listen(this.ipc, 'remote-endpoint', (d: EndpointDescriptor) => this.considerRemote(d))
    }
  }

  private listen<A extends unknown[]>(ee: EventEmitter, ev: string, fn: (...a: A) => void): void {
    ee.on(ev, fn)
    this.hooks.push([ee, ev, fn as never])
  }

  private considerRemote(d: EndpointDescriptor): void {
    if (this.stopped || d.kind !== 'publisher') return
    if (this.filter && !this.filter.has(d.topic)) return
    let existing: Topic<unknown> | undefined
    try {
      existing = this.bus.topic(d.topic)
    } catch {
      existing = undefined
    }
    if (existing) return // declared here already: recorded through consider()
    // Declared with the remote's codec name (so the transport connects it) and
    // a pass-through codec: the recorder wants the bytes as they travel.
    this.bus.topic(d.topic, { qos: d.qos, codec: passthrough(d.codec) })
  }

  private consider(t: Topic<unknown>): void {
    if (this.stopped || this.topics.has(t.name)) return
    if (this.filter && !this.filter.has(t.name)) return
    const codecName = t.codec.name
    const st: TopicState = {
      name: t.name,
      codec: t.codec,
      codecName,
      qos: t.qos,
      json: codecName === 'json',
      mavlink: null,
      type: null,
      channel: -1,
      byMsgId: new Map(),
      sub: null,
      received: 0,
      written: 0,
      bytes: 0,
      dropped: 0,
      pendingDrops: 0,
    }
    this.topics.set(t.name, st)
    st.sub = t.subscribe((value, meta) => this.onMessage(st, value, meta), { name: `recorder:${this.path}`, qos: RECORDER_QOS })
    this.emit('topic', t.name)
  }

  /** The hot path: runs inside the publisher's publish(). Copy, stamp, enqueue, return. */
  private onMessage(st: TopicState, value: unknown, meta: MessageMeta): void {
    st.received++
    if (this.stopped) return
    let data: Uint8Array
    try {
      const enc = st.codec.encode(value)
      // JSON encodes into a fresh buffer; every other codec may hand out a
      // view of memory the publisher (or a shared-memory slot) reuses.
      data = st.json ? enc : enc.slice()
    } catch {
      this.drop(st)
      return
    }
    if (this.q.length - this.qHead >= this.maxCount || this.qBytes + data.byteLength > this.maxBytes) {
      this.drop(st)
      return
    }
    const publishTime = BigInt(Math.round(meta.publishTime)) + this.monoToReal
    this.q.push({ t: st, data, logTime: meta.rxTime ?? publishTime, publishTime, seq: meta.seq })
    this.qBytes += data.byteLength
    if (!this.pumping) {
      this.pumping = true
      this.pumpDone = new Promise<void>((resolve) => setImmediate(() => void this.pump().then(resolve, resolve)))
    }
  }

  private drop(st: TopicState): void {
    st.dropped++
    st.pendingDrops++
    this.dropped++
    if (!this.dropReportQueued) {
      this.dropReportQueued = true
      process.nextTick(() => {
        this.dropReportQueued = false
        for (const t of this.topics.values()) {
          if (t.pendingDrops === 0) continue
          const count = t.pendingDrops
          t.pendingDrops = 0
          if (this.listenerCount('drop') > 0) this.emit('drop', { topic: t.name, count, total: t.dropped } satisfies RecorderDropEvent)
        }
      })
    }
  }

  /**
   * Drains the queue into the sink in packed batches (at most 1 MiB or 4096
   * messages each). With the worker sink the event loop only packs; with the
   * thread sink the pump yields to the event loop every `sliceMs`.
   */
  private async pump(): Promise<void> {
    const sink = this.sink!
    const keys: number[] = []
    const seqs: number[] = []
    const logs: bigint[] = []
    const pubs: bigint[] = []
    const datas: Uint8Array[] = []
    const owners: TopicState[] = []
    try {
      let sliceStart = performance.now()
      while (this.qHead < this.q.length) {
        let bytes = 0
        let n = 0
        while (this.qHead < this.q.length && n < 4096 && bytes < 1 << 20) {
          const e = this.q[this.qHead]
          this.q[this.qHead++] = undefined as unknown as Entry
          this.qBytes -= e.data.byteLength
          keys[n] = this.channelFor(e)
          seqs[n] = e.seq
          logs[n] = e.logTime
          pubs[n] = e.publishTime
          datas[n] = e.data
          owners[n] = e.t
          bytes += e.data.byteLength
          n++
        }
        if (this.qHead > 4096 && this.qHead * 2 > this.q.length) {
          this.q = this.q.slice(this.qHead)
          this.qHead = 0
        }
        await sink.write(packBatch(n, keys, seqs, logs, pubs, datas))
        for (let i = 0; i < n; i++) {
          const t = owners[i]
          t.written++
          t.bytes += datas[i].byteLength
          datas[i] = undefined as unknown as Uint8Array
        }
        this.written += n
        this.writtenBytes += bytes
        if (sink.kind === 'thread' && performance.now() - sliceStart > this.sliceMs) {
          await new Promise<void>((r) => setImmediate(r))
          sliceStart = performance.now()
        }
      }
      this.q = []
      this.qHead = 0
    } catch (err) {
      this.fail(err as Error)
    } finally {
      this.pumping = false
    }
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = err
    this.stopped = true
    for (const st of this.topics.values()) st.sub?.close()
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  /** The channel key of a message, declaring the channel (and its schema) to the sink on first use. */
  private channelFor(e: Entry): number {
    const st = e.t
    if (st.mavlink === null) {
      st.type = this.typeOf?.(st.name) ?? null
      st.mavlink = isMavlinkCodec(st.codecName) || st.type === 'mavlink'
    }
    if (!st.mavlink) {
      if (st.channel < 0) {
        st.channel = this.nextKey++
        this.sink!.channel(st.channel, { topic: st.name, messageEncoding: messageEncodingOf(st.codecName), schema: null, metadata: [...this.channelMetadata(st)] })
        this.channels++
      }
      return st.channel
    }
    const id = mavlinkMsgId(e.data)
    let ch = st.byMsgId.get(id)
    if (ch === undefined) {
      const def = id >= 0 ? this.dialect.messages.get(id) : undefined
      let schema: ChannelSpec['schema'] = null
      if (def) {
        schema = this.schemas.get(id) ?? null
        if (!schema) {
          schema = mavlinkSchema(def, this.dialect)
          this.schemas.set(id, schema)
        }
      }
      const md = this.channelMetadata(st)
      md.set('mavlink.msgid', String(id))
      if (def) md.set('mavlink.name', def.name)
      ch = this.nextKey++
      this.sink!.channel(ch, { topic: st.name, messageEncoding: MAVLINK_MESSAGE_ENCODING, schema, metadata: [...md] })
      st.byMsgId.set(id, ch)
      this.channels++
    }
    return ch
  }

  private channelMetadata(st: TopicState): Map<string, string> {
    const qos = JSON.stringify(st.qos, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v))
    const md = new Map([
      ['onbus.topic', st.name],
      ['onbus.codec', st.codecName],
      ['onbus.qos', qos],
    ])
    if (st.type !== null) md.set('onbus.type', st.type)
    return md
  }

  /** Figures so far. */
  stats(): RecorderSummary {
    const stop = this.stopWall || Date.now()
    return {
      path: this.path,
      startTime: this.startWall,
      stopTime: stop,
      durationS: (stop - this.startWall) / 1000,
      messages: this.written,
      bytes: this.writtenBytes,
      fileBytes: this.sink?.figures().fileBytes ?? 0,
      dropped: this.dropped,
      queued: this.q.length - this.qHead,
      queuedBytes: this.qBytes,
      channels: this.channels,
      chunks: this.sink?.figures().chunks ?? 0,
      flushes: this.sink?.figures().flushes ?? 0,
      writer: this.sink?.kind ?? null,
      compression: this.compression,
      topics: [...this.topics.values()].map((t) => ({ topic: t.name, codec: t.codecName, received: t.received, written: t.written, bytes: t.bytes, dropped: t.dropped })),
    }
  }

  /**
   * Stops recording: unsubscribes, writes what is queued, the
   * `onbus.recorder` metadata record (drop counts, times, versions) and the
   * summary (indexes, statistics), and closes the file. Idempotent.
   */
  close(): Promise<RecorderSummary> {
    if (!this.closing) this.closing = this.finish()
    return this.closing
  }

  private async finish(): Promise<RecorderSummary> {
    this.abortCleanup?.()
    for (const [ee, ev, fn] of this.hooks) ee.off(ev, fn as (...a: unknown[]) => void)
    this.stopped = true
    this.stopWall = Date.now()
    for (const st of this.topics.values()) st.sub?.close()
    while (this.pumping) await this.pumpDone
    // The subscriptions are closed, so nothing enqueues any more; drain what is left.
    if (!this.failed && this.qHead < this.q.length) {
      this.pumping = true
      await this.pump()
    }
    const sink = this.sink
    try {
      if (sink) {
        const md = new Map<string, string>([
          ['recorder', 'onbus'],
          ['onbus.version', onbusVersion],
          ['mcap.library', mcapLibrary],
          ['node.version', process.version],
          ['start.time', new Date(this.startWall).toISOString()],
          ['stop.time', new Date(this.stopWall).toISOString()],
          ['compression', this.compression],
          ['messages', String(this.written)],
          ['dropped', String(this.dropped)],
          ['queue.bytes', String(this.maxBytes)],
          ['queue.messages', String(this.maxCount)],
        ])
        for (const t of this.topics.values()) {
          md.set(`received.${t.name}`, String(t.received))
          md.set(`dropped.${t.name}`, String(t.dropped))
        }
        // After a failure the file is still closed (with what it has), without the metadata.
        await sink.end(this.failed ? null : [...md])
      }
    } catch (err) {
      this.fail(err as Error)
    }
    if (this.failed) throw this.failed
    return this.stats()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Starts recording bus topics into an MCAP file.
 * @example
 * const rec = await createRecorder({ bus, path: 'flight.mcap', topics: ['lidar/raw', 'mavlink/rx'] })
 * process.once('SIGINT', async () => console.log(await rec.close()))
 */
export async function createRecorder(opts: RecorderOptions): Promise<Recorder> {
  const r = new Recorder(opts)
  try {
    await r.start()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === undefined) throw onbusError('ERR_ONBUS_RECORD', `Cannot start recording to ${opts.path}: ${(err as Error).message}`)
    throw err
  }
  return r
}
