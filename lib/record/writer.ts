/**
 * Where the recorder's messages go: an McapWriter, either on this thread or
 * in a worker thread (the default when the compiled worker is present), so
 * that chunk compression and file writes never run on the event loop that
 * delivers bus messages.
 *
 * Both sinks take the same calls: `channel()` declares a channel (and its
 * schema) under a small integer key chosen by the recorder, `write()` takes a
 * packed batch of messages and resolves when the writer has taken it (its
 * chunk may still be open), `end()` writes the metadata record and the
 * summary and closes the file.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { McapWriter } from '@mcap/core'
import { chunkCompressor, FileWritable, type Compression } from './io.js'

/** A channel as the recorder declares it. */
export interface ChannelSpec {
  topic: string
  messageEncoding: string
  schema: { name: string; encoding: string; data: Uint8Array } | null
  metadata: [string, string][]
}

/** Messages packed for one hand-over: parallel arrays plus one buffer of payloads. */
export interface Batch {
  n: number
  keys: Uint32Array
  seqs: Uint32Array
  logTimes: BigUint64Array
  publishTimes: BigUint64Array
  ends: Uint32Array
  data: Uint8Array
}

export interface SinkOptions {
  path: string
  compression: Compression
  zstdLevel: number
  chunkSize: number
  /** Close the open chunk once its first message is this old (ms); 0: by size only. */
  flushMs: number
  library: string
}

/** What the file has become so far. */
export interface SinkFigures {
  fileBytes: number
  chunks: number
  /** Chunks closed by time (the file was complete and indexed at each). */
  flushes: number
}

export interface Sink {
  readonly kind: 'thread' | 'worker'
  channel(key: number, spec: ChannelSpec): void
  write(batch: Batch): Promise<void>
  end(metadata: [string, string][] | null): Promise<SinkFigures>
  figures(): SinkFigures
}

/** Packs `n` messages into one batch (one copy of each payload). */
export function packBatch(n: number, keys: number[], seqs: number[], logTimes: bigint[], publishTimes: bigint[], datas: Uint8Array[]): Batch {
  let total = 0
  for (let i = 0; i < n; i++) total += datas[i].byteLength
  const b: Batch = {
    n,
    keys: new Uint32Array(n),
    seqs: new Uint32Array(n),
    logTimes: new BigUint64Array(n),
    publishTimes: new BigUint64Array(n),
    ends: new Uint32Array(n),
    data: new Uint8Array(total),
  }
  let off = 0
  for (let i = 0; i < n; i++) {
    b.keys[i] = keys[i]
    b.seqs[i] = seqs[i] >>> 0
    b.logTimes[i] = logTimes[i]
    b.publishTimes[i] = publishTimes[i]
    b.data.set(datas[i], off)
    off += datas[i].byteLength
    b.ends[i] = off
  }
  return b
}

/** The McapWriter side, shared by both sinks (the worker runs this too). */
export class WriterCore {
  private writer: McapWriter | null = null
  private file: FileWritable | null = null
  private readonly channelIds = new Map<number, number>()
  private readonly schemaIds = new Map<string, number>()
  private readonly pendingChannels: [number, ChannelSpec][] = []
  /** McapWriter calls must not overlap: every write, flush and the end run one after the other. */
  private chain: Promise<void> = Promise.resolve()
  private opts: SinkOptions | null = null
  private compress: ((d: Uint8Array) => { compression: string; compressedData: Uint8Array }) | undefined
  /** performance.now() when the open chunk got its first message; 0 while it is empty. */
  private openSince = 0
  private flushes = 0
  private timer: NodeJS.Timeout | null = null
  private ended = false
  /** Ended by a flush: complete on disk until the next message reopens it. */
  private closedForFlush = false
  private lastChunks = 0
  /** Called after each flush by time (the worker reports its figures then). */
  onFlush: (() => void) | null = null

  async open(o: SinkOptions): Promise<void> {
    this.opts = o
    this.file = await FileWritable.create(o.path)
    this.compress = await chunkCompressor(o.compression, o.zstdLevel)
    this.writer = new McapWriter({ writable: this.file, chunkSize: o.chunkSize, compressChunk: this.compress })
    await this.writer.start({ profile: '', library: o.library })
    if (o.flushMs > 0) {
      this.timer = setInterval(() => this.maybeFlush(), Math.max(10, o.flushMs / 4))
      this.timer.unref()
    }
  }

  /**
   * Closes a chunk that has been open for `flushMs`, so that a recorder killed
   * during a quiet stretch (telemetry alone fills a chunk in minutes) loses at
   * most that long. McapWriter has no flush: this ends the file (summary,
   * footer), which then stays a complete, indexed MCAP file until the next
   * message, when `reopen()` appends (McapWriter.InitializeForAppending reads
   * the summary back and truncates it; new chunks follow the old ones).
   */
  private maybeFlush(): void {
    if (this.ended || this.openSince === 0 || performance.now() - this.openSince < this.opts!.flushMs) return
    this.openSince = 0
    const p = this.chain.then(async () => {
      if (this.ended || this.closedForFlush) return
      await this.writer!.end()
      this.lastChunks = this.writer!.statistics?.chunkCount ?? this.lastChunks
      this.closedForFlush = true
      this.flushes++
      this.onFlush?.()
    })
    this.chain = p.catch(() => {})
  }

  private async reopen(): Promise<void> {
    this.writer = await McapWriter.InitializeForAppending(this.file!, { chunkSize: this.opts!.chunkSize, compressChunk: this.compress })
    this.closedForFlush = false
  }

  channel(key: number, spec: ChannelSpec): void {
    this.pendingChannels.push([key, spec])
  }

  private async registerPending(): Promise<void> {
    const w = this.writer!
    while (this.pendingChannels.length > 0) {
      const [key, spec] = this.pendingChannels.shift()!
      let schemaId = 0
      if (spec.schema) {
        const sk = `${spec.schema.encoding}\0${spec.schema.name}`
        schemaId = this.schemaIds.get(sk) ?? 0
        if (schemaId === 0) {
          schemaId = await w.registerSchema(spec.schema)
          this.schemaIds.set(sk, schemaId)
        }
      }
      this.channelIds.set(key, await w.registerChannel({ topic: spec.topic, messageEncoding: spec.messageEncoding, schemaId, metadata: new Map(spec.metadata) }))
    }
  }

  write(b: Batch): Promise<void> {
    const p = this.chain.then(() => this.writeNow(b))
    this.chain = p.catch(() => {})
    return p
  }

  private async writeNow(b: Batch): Promise<void> {
    if (this.closedForFlush) await this.reopen()
    if (this.pendingChannels.length > 0) await this.registerPending()
    const w = this.writer!
    let start = 0
    for (let i = 0; i < b.n; i++) {
      const end = b.ends[i]
      const before = w.statistics!.chunkCount
      await w.addMessage({ channelId: this.channelIds.get(b.keys[i])!, sequence: b.seqs[i], logTime: b.logTimes[i], publishTime: b.publishTimes[i], data: b.data.subarray(start, end) })
      // A chunk closed by size took this message with it; otherwise the open chunk has messages.
      if (w.statistics!.chunkCount !== before) this.openSince = 0
      else if (this.openSince === 0) this.openSince = performance.now()
      start = end
    }
  }

  async end(metadata: [string, string][] | null): Promise<SinkFigures> {
    if (this.timer) clearInterval(this.timer)
    await this.chain
    this.ended = true
    try {
      if (this.writer) {
        if (this.closedForFlush) await this.reopen()
        if (this.pendingChannels.length > 0) await this.registerPending()
        if (metadata) await this.writer.addMetadata({ name: 'onbus.recorder', metadata: new Map(metadata) })
        await this.writer.end()
      }
    } finally {
      await this.file?.close()
    }
    return this.figures()
  }

  figures(): SinkFigures {
    return { fileBytes: this.file?.bytes ?? 0, chunks: this.writer?.statistics?.chunkCount ?? this.lastChunks, flushes: this.flushes }
  }
}

/** McapWriter on this thread: compression and writes share the event loop with the bus. */
class ThreadSink implements Sink {
  readonly kind = 'thread'
  constructor(private readonly core: WriterCore) {}
  channel(key: number, spec: ChannelSpec): void {
    this.core.channel(key, spec)
  }
  write(batch: Batch): Promise<void> {
    return this.core.write(batch)
  }
  end(metadata: [string, string][] | null): Promise<SinkFigures> {
    return this.core.end(metadata)
  }
  figures(): SinkFigures {
    return this.core.figures()
  }
}

type WorkerReply =
  | { type: 'opened' }
  | ({ type: 'written'; id: number } & SinkFigures)
  | ({ type: 'figures' } & SinkFigures)
  | ({ type: 'ended' } & SinkFigures)
  | { type: 'error'; message: string; code?: string }

/** McapWriter in a worker thread: batches are transferred, not copied; each write resolves when the worker has taken the batch. */
class WorkerSink implements Sink {
  readonly kind = 'worker'
  private nextId = 1
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  private ending: { resolve: (f: SinkFigures) => void; reject: (e: Error) => void } | null = null
  private fig: SinkFigures = { fileBytes: 0, chunks: 0, flushes: 0 }
  private failed: Error | null = null

  constructor(private readonly w: Worker) {
    w.on('message', (m: WorkerReply) => this.onReply(m))
    w.on('error', (err: Error) => this.fail(err))
    w.on('exit', (code) => {
      if (this.ending === null || this.pending.size > 0) this.fail(new Error(`the recorder's writer thread exited (code ${code})`))
    })
  }

  static async start(url: URL, o: SinkOptions): Promise<WorkerSink> {
    const w = new Worker(url, { workerData: o })
    const sink = new WorkerSink(w)
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: WorkerReply): void => {
        w.off('message', onMsg)
        if (m.type === 'opened') resolve()
        else if (m.type === 'error') reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}))
      }
      w.on('message', onMsg)
      w.once('error', reject)
    })
    return sink
  }

  private onReply(m: WorkerReply): void {
    if (m.type === 'written') {
      this.fig = { fileBytes: m.fileBytes, chunks: m.chunks, flushes: m.flushes }
      const p = this.pending.get(m.id)
      this.pending.delete(m.id)
      p?.resolve()
    } else if (m.type === 'figures') {
      this.fig = { fileBytes: m.fileBytes, chunks: m.chunks, flushes: m.flushes }
    } else if (m.type === 'ended') {
      this.fig = { fileBytes: m.fileBytes, chunks: m.chunks, flushes: m.flushes }
      this.ending?.resolve(this.fig)
      void this.w.terminate()
    } else if (m.type === 'error') {
      this.fail(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}))
    }
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.ending?.reject(err)
    void this.w.terminate()
  }

  channel(key: number, spec: ChannelSpec): void {
    this.w.postMessage({ type: 'channel', key, spec })
  }

  write(b: Batch): Promise<void> {
    if (this.failed) return Promise.reject(this.failed)
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.w.postMessage({ type: 'batch', id, batch: b }, [b.keys.buffer, b.seqs.buffer, b.logTimes.buffer, b.publishTimes.buffer, b.ends.buffer, b.data.buffer] as ArrayBuffer[])
    })
  }

  end(metadata: [string, string][] | null): Promise<SinkFigures> {
    if (this.failed) return Promise.reject(this.failed)
    return new Promise((resolve, reject) => {
      this.ending = { resolve, reject }
      this.w.postMessage({ type: 'end', metadata })
    })
  }

  figures(): SinkFigures {
    return this.fig
  }
}

const workerUrl = new URL('./writer-worker.js', import.meta.url)

/**
 * Opens the file. `'auto'` uses the worker thread when the compiled worker
 * exists next to this module (it does in dist/; running the TypeScript
 * sources directly, it does not) and this thread otherwise.
 */
export async function openSink(o: SinkOptions, where: 'auto' | 'worker' | 'thread'): Promise<Sink> {
  const haveWorker = existsSync(fileURLToPath(workerUrl))
  if (where === 'worker' || (where === 'auto' && haveWorker)) return WorkerSink.start(workerUrl, o)
  const core = new WriterCore()
  await core.open(o)
  return new ThreadSink(core)
}
