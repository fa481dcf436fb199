/**
 * Sending a file with verification and resumption.
 *
 * The sender offers the file; the receiver answers with the offset it has
 * already written and verified (0 for a new file, more after an interrupted
 * attempt). Chunks carry a CRC-32C, so a corrupted chunk is refused and
 * sent again; the end carries the whole file's SHA-256, which the
 * receiver checks before the file appears under its name. A lost connection
 * (the link reconnects by itself) restarts from the receiver's last verified
 * offset.
 */
import { EventEmitter } from 'node:events'
import { createHash, type Hash } from 'node:crypto'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { basename } from 'node:path'
import { invalidArgValue, onbusError } from '../errors.js'
import { validateInt, validateString } from '../util/validate.js'
import { chunkHeader, controlFrame, crc32c, endFrame, FrameDecoder, MAX_CONTROL, T_ACCEPT, T_ACK, T_DONE, T_NACK, T_OFFER, type TransferChannel } from './protocol.js'
import { whenAborted } from '../util/abort.js'

/** `'progress'` payload. */
export interface TransferProgress {
  /** Bytes the receiver has written and verified. */
  bytes: number
  total: number
  /** Bytes per second over the last few seconds. */
  rate: number
  /** Seconds left at that rate (Infinity before a rate is known). */
  eta: number
}

export interface SendFileOptions {
  /** Name the receiver stores the file under (default: the file's basename). */
  name?: string
  /** Chunk size in bytes (default 1 MiB). */
  chunkSize?: number
  /** Unacknowledged bytes in flight at most (default 16 MiB). */
  window?: number
  /** Aborts the transfer. */
  signal?: AbortSignal
}

/** Result of a completed transfer. */
export interface TransferResult {
  name: string
  size: number
  sha256: string
  /** Times the transfer restarted from a verified offset (reconnections, refused chunks). */
  resumes: number
  /** Offsets it resumed from. */
  resumedFrom: number[]
}

/**
 * Sends one file over `link` (a TCP stream link or a TLS command link; give
 * it `reconnect` so that a cut resumes). Emits `'progress'` on `emitter`.
 * Resolves when the receiver confirmed the digest and renamed the file.
 * @example
 * const t = sendFile(link, '/data/map.tiles')
 * t.on('progress', (p) => log(p.bytes, p.rate, p.eta))
 * await t.done
 */
export function sendFile(link: TransferChannel, path: string, opts: SendFileOptions = {}): FileSender {
  validateString(path, 'path')
  const chunk = opts.chunkSize === undefined ? 1 << 20 : validateInt(opts.chunkSize, 'options.chunkSize', 1024, 16 << 20)
  const window = opts.window === undefined ? 16 << 20 : validateInt(opts.window, 'options.window', chunk, 1 << 30)
  const name = opts.name ?? basename(path)
  if (!/^[^/\0]+$/.test(name) || name === '.' || name === '..') throw invalidArgValue('options.name', name, 'must be a plain file name')
  return new FileSender(link, path, name, chunk, window, opts.signal)
}

export class FileSender extends EventEmitter {
  /** Settles when the transfer completed (digest verified by the receiver) or failed. */
  readonly done: Promise<TransferResult>
  private resolve!: (r: TransferResult) => void
  private reject!: (e: Error) => void
  private fh: FileHandle | null = null
  private size = 0
  private id = ''
  private gen = 0
  private acked = 0
  private sent = 0
  private hash: Hash | null = null
  private finished = false
  private readonly decoder = new FrameDecoder(MAX_CONTROL)
  private readonly samples: [number, number][] = []
  private resumes = -1
  private readonly resumedFrom: number[] = []
  private ackWaiter: (() => void) | null = null
  private readonly cleanup: (() => void)[] = []

  /** @internal */
  constructor(
    private readonly link: TransferChannel,
    private readonly path: string,
    private readonly name: string,
    private chunk: number,
    private readonly window: number,
    signal?: AbortSignal,
  ) {
    super()
    this.done = new Promise((res, rej) => {
      this.resolve = res
      this.reject = rej
    })
    this.done.catch(() => {})
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const on = (ev: string, fn: (...a: any[]) => void) => {
      link.on(ev as 'data', fn)
      this.cleanup.push(() => link.off(ev, fn))
    }
    on('data', (d: Buffer) => this.onData(d))
    on('connect', () => this.start())
    on('disconnect', () => this.interrupt())
    on('close', () => this.fail(onbusError('ERR_ONBUS_TRANSFER_ABORTED', `The link closed before ${this.name} was complete (${this.acked} of ${this.size} bytes verified)`)))
    if (signal) this.cleanup.push(whenAborted(signal, () => this.fail(onbusError('ERR_ONBUS_TRANSFER_ABORTED', 'The transfer was aborted')), process.nextTick))
    void this.prepare()
  }

  private async prepare(): Promise<void> {
    try {
      const st = await stat(this.path)
      this.size = st.size
      // Same file, same size and modification time: the same transfer, so a
      // receiver may resume it.
      this.id = createHash('sha256').update(`${this.name}\0${st.size}\0${st.mtimeMs}\0${st.ino}`).digest('hex').slice(0, 32)
      this.fh = await open(this.path, 'r')
    } catch (err) {
      this.fail(err as Error)
      return
    }
    if (this.link.state === 'connected') this.start()
  }

  private start(): void {
    if (this.finished || !this.fh) return
    this.gen++
    this.decoder.reset()
    this.link.write(controlFrame(T_OFFER, { id: this.id, name: this.name, size: this.size }))
  }

  private interrupt(): void {
    this.gen++ // the running send loop stops at its next step
    this.ackWaiter?.()
    // Chunks still queued for the lost connection must not open the next
    // one: the receiver expects an offer first and says where to resume.
    ;(this.link as { discardQueue?: () => number }).discardQueue?.()
  }

  private onData(d: Buffer): void {
    const ok = this.decoder.push(d, (type, body) => this.onFrame(type, body))
    if (!ok) this.fail(onbusError('ERR_ONBUS_TRANSFER_PROTOCOL', 'The receiver sent a corrupt frame'))
  }

  private onFrame(type: number, body: Buffer): void {
    let msg: { offset?: number; ok?: boolean; code?: string; message?: string; sha256?: string; reason?: string; maxChunk?: number }
    try {
      msg = JSON.parse(body.toString())
    } catch {
      this.fail(onbusError('ERR_ONBUS_TRANSFER_PROTOCOL', 'The receiver sent an unreadable message'))
      return
    }
    if (type === T_ACCEPT || type === T_NACK) {
      const offset = Math.min(Math.max(0, Math.floor(msg.offset ?? 0)), this.size)
      if (type === T_NACK) this.emit('refused', { offset, reason: msg.reason })
      if (type === T_ACCEPT && typeof msg.maxChunk === 'number' && msg.maxChunk >= 1024) this.chunk = Math.min(this.chunk, msg.maxChunk)
      this.acked = offset
      void this.sendFrom(offset, ++this.gen)
    } else if (type === T_ACK) {
      this.acked = Math.max(this.acked, msg.offset ?? 0)
      this.progress()
      this.ackWaiter?.()
    } else if (type === T_DONE) {
      if (msg.ok) {
        this.acked = this.size
        this.progress()
        this.finish({ name: this.name, size: this.size, sha256: msg.sha256 ?? '', resumes: Math.max(0, this.resumes), resumedFrom: this.resumedFrom })
      } else {
        const e = onbusError(msg.code ?? 'ERR_ONBUS_TRANSFER_FAILED', msg.message ?? 'The receiver refused the file')
        this.fail(e)
      }
    }
  }

  private progress(): void {
    const now = performance.now()
    this.samples.push([now, this.acked])
    while (this.samples.length > 2 && now - this.samples[0][0] > 3000) this.samples.shift()
    const [t0, b0] = this.samples[0]
    const rate = now > t0 ? ((this.acked - b0) * 1000) / (now - t0) : 0
    const left = this.size - this.acked
    this.emit('progress', { bytes: this.acked, total: this.size, rate, eta: left === 0 ? 0 : rate > 0 ? left / rate : Infinity } satisfies TransferProgress)
  }

  /** Streams chunks from `offset` until the end, a newer start, or a failure. */
  private async sendFrom(offset: number, gen: number): Promise<void> {
    const fh = this.fh
    if (!fh || this.finished) return
    this.resumes++
    if (this.resumes > 0) this.resumedFrom.push(offset)
    try {
      // The file digest covers every byte: hash what the receiver already has.
      const hash = createHash('sha256')
      for (let o = 0; o < offset; ) {
        const n = Math.min(this.chunk * 4, offset - o)
        const { buffer, bytesRead } = await fh.read(Buffer.allocUnsafe(n), 0, n, o)
        if (bytesRead !== n) throw onbusError('ERR_ONBUS_TRANSFER_FILE_CHANGED', `${this.path} changed while being sent`)
        hash.update(buffer)
        o += n
      }
      if (gen !== this.gen) return
      this.hash = hash
      this.sent = offset
      while (this.sent < this.size) {
        if (gen !== this.gen || this.finished) return
        while (this.sent - this.acked >= this.window && gen === this.gen && !this.finished) await new Promise<void>((r) => (this.ackWaiter = r))
        if (gen !== this.gen || this.finished) return
        const n = Math.min(this.chunk, this.size - this.sent)
        const { buffer, bytesRead } = await fh.read(Buffer.allocUnsafe(n), 0, n, this.sent)
        if (bytesRead !== n) throw onbusError('ERR_ONBUS_TRANSFER_FILE_CHANGED', `${this.path} changed while being sent`)
        if (gen !== this.gen || this.finished) return
        hash.update(buffer)
        // Header and data go out together: a write can fail (and the link
        // start reconnecting) in between, and a header without its data would
        // open the next connection misaligned.
        const header = chunkHeader(this.sent, crc32c(buffer), n)
        const link = this.link as TransferChannel & {
          writev?: (c: Uint8Array[]) => boolean
          sendFile?: (fd: number, o: { offset: number; length: number }) => boolean
          writableNeedDrain?: boolean
          cork?: () => void
          uncork?: () => void
        }
        let ok: boolean
        if (link.sendFile && link.cork && link.uncork) {
          // The bytes were read to be hashed; they leave by sendfile(2)
          // straight from the page cache, saving the copy into the socket.
          // (Had the file changed in between, the CRC and then the digest
          // would say so: nothing wrong is ever accepted.)
          link.cork()
          link.write(header)
          link.sendFile(fh.fd, { offset: this.sent, length: n })
          link.uncork()
          // Judged after the gathered send: if it all went, 'drain' already fired.
          ok = !link.writableNeedDrain
        } else if (link.writev) ok = link.writev([header, buffer])
        else {
          ok = link.write(header)
          if (gen !== this.gen) return
          ok = link.write(buffer) && ok
        }
        if (gen !== this.gen) return
        this.sent += n
        if (!ok) await this.drained(gen)
      }
      if (gen !== this.gen || this.finished) return
      this.link.write(endFrame(hash.digest()))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private drained(gen: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.link.off('drain', done)
        this.link.off('disconnect', done)
        resolve()
      }
      this.link.on('drain', done)
      this.link.on('disconnect', done)
      if (gen !== this.gen) done()
    })
  }

  private finish(r: TransferResult): void {
    if (this.finished) return
    this.finished = true
    this.teardown()
    this.resolve(r)
    this.emit('done', r)
  }

  private fail(err: Error): void {
    if (this.finished) return
    this.finished = true
    // File segments still queued name this file's descriptor, which is
    // about to close (and whose number could be reused): drop them.
    ;(this.link as { discardQueue?: () => number }).discardQueue?.()
    this.teardown()
    this.reject(err)
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  private teardown(): void {
    this.gen++
    this.ackWaiter?.()
    for (const fn of this.cleanup.splice(0)) fn()
    void this.fh?.close().catch(() => {})
    this.fh = null
  }

  /** Stops the transfer (the promise rejects with ERR_ONBUS_TRANSFER_ABORTED). */
  abort(): void {
    this.fail(onbusError('ERR_ONBUS_TRANSFER_ABORTED', 'The transfer was aborted'))
  }
}
