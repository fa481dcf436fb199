/**
 * Receiving verified files.
 *
 * Bytes go to a hidden temporary file beside the destination
 * (`.<name>.onbus-part`), with a small state file recording how far it has
 * been written, checked and flushed to disk (`fdatasync`). Only when the
 * whole file's SHA-256 matches the sender's is it renamed, atomically, to its
 * name (and the directory synced): a partial or corrupted file never appears
 * under the real name. An interrupted transfer resumes from the recorded
 * offset; a chunk whose CRC-32C does not match is refused and sent again; a
 * corrupt stream (a frame that cannot be) ends the connection, and the sender
 * resumes after reconnecting.
 *
 * Chunks are checked and hashed on the JavaScript thread straight from the
 * link's receive ring, then written by libuv's thread pool (in order, one
 * chain per file) so that disk writes overlap with the network; a chunk is
 * acknowledged once written, which bounds what waits in memory by the
 * sender's window.
 */
import { EventEmitter } from 'node:events'
import { createHash, type Hash } from 'node:crypto'
import { createReadStream, readFileSync } from 'node:fs'
import { open as openFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { validateInt, validateString } from '../util/validate.js'
import { StreamLink } from '../links/stream/link.js'
import type { FramingOptions } from '../links/stream/framing.js'
import { CHUNK_HEADER, controlFrame, crc32c, FrameDecoder, isTransferFraming, T_ACCEPT, T_ACK, T_CHUNK, T_DONE, T_END, T_NACK, T_OFFER, TRANSFER_FRAMING, type TransferChannel } from './protocol.js'

export interface ReceiverOptions {
  /** Directory the files are written to. */
  dir: string
  /** Largest chunk accepted (default 1 MiB; told to the sender): bounds memory per connection. */
  maxChunk?: number
  /** Flush to disk and record progress every this many bytes (default 16 MiB): what a resume may have to send again. */
  syncEvery?: number
  /** Largest file accepted (default: no limit). */
  maxSize?: number
}

/** Counters of a receiver. */
export interface ReceiverStats {
  files: number
  bytes: number
  /** Chunks whose CRC-32C did not match (refused, sent again). */
  badChunks: number
  /** Connections ended because their stream was corrupt. */
  corruptStreams: number
  /** Files refused at the end because the whole-file digest did not match. */
  digestMismatches: number
  resumes: number
}

interface Active {
  id: string
  name: string
  size: number
  part: string
  state: string
  fh: FileHandle
  /** Bytes received, checked and hashed (written once `chain` settles). */
  expected: number
  /** Bytes written to the file (in order: the chain has completed them). */
  written: number
  /** Bytes flushed and recorded in the state file. */
  synced: number
  /** Offset the last flush was asked for. */
  syncRequested: number
  /** Flushes, in order, beside the writes. */
  syncing: Promise<void>
  /** SHA-256 of bytes [0, expected). */
  hash: Hash
  /** Writes and checkpoints, in order. */
  chain: Promise<void>
  failed: Error | null
  closed: boolean
  /** Settles when the file is closed (checkpointed or completed). */
  final: Promise<void> | null
  /** Makes its connection let go of the file; resolves when it did. */
  release: () => Promise<void>
}

/**
 * Receives files sent with {@link sendFile} on one or more links. Events:
 * `'file'` ({ name, path, size, sha256 }), `'progress'` ({ name, bytes, total }),
 * `'refused'` ({ name, code, message }).
 * @example
 * const rx = new FileReceiver({ dir: '/data/incoming' })
 * createTcpServer({ port: 9000, ...rx.linkOptions() }, (link) => rx.attach(link))
 */
export class FileReceiver extends EventEmitter {
  private readonly dir: string
  private readonly maxChunk: number
  private readonly syncEvery: number
  private readonly maxSize: number
  private readonly counters: ReceiverStats = { files: 0, bytes: 0, badChunks: 0, corruptStreams: 0, digestMismatches: 0, resumes: 0 }
  /**
   * The file each name is being written through, until it is closed: a newer
   * offer for the name takes over only after the older connection (which may
   * not know yet that it is dead) has flushed, recorded and closed it.
   */
  private readonly files = new Map<string, Active>()
  /** The latest claim on each name (a newer offer wins over one still opening). */
  private readonly claims = new Map<string, object>()

  constructor(opts: ReceiverOptions) {
    super()
    validateString(opts.dir, 'options.dir')
    this.dir = opts.dir
    this.maxChunk = opts.maxChunk === undefined ? 1 << 20 : validateInt(opts.maxChunk, 'options.maxChunk', 1024, 64 << 20)
    this.syncEvery = opts.syncEvery === undefined ? 16 << 20 : validateInt(opts.syncEvery, 'options.syncEvery', 1, 2 ** 40)
    this.maxSize = opts.maxSize ?? Number.MAX_SAFE_INTEGER
  }

  stats(): ReceiverStats {
    return { ...this.counters }
  }

  /**
   * Options for the stream links (or the stream server) that carry transfers
   * to this receiver: native framing, so that chunks are read straight from
   * the receive ring. Other links (TLS command links) work too, framed in
   * JavaScript.
   */
  linkOptions(): { framing: FramingOptions; maxFrameSize: number } {
    return { framing: TRANSFER_FRAMING, maxFrameSize: this.maxChunk + CHUNK_HEADER }
  }

  /** Serves one link (an accepted connection). */
  attach(link: TransferChannel): void {
    let active: Active | null = null
    let dead = false
    const send = (type: number, body: object) => {
      if (link.state === 'connected') link.write(controlFrame(type, body))
    }
    const refuse = (code: string, message: string, name?: string) => {
      send(T_DONE, { ok: false, code, message })
      this.emit('refused', { name, code, message })
    }
    // Lets go of the file: what was written is flushed and recorded first.
    const release = (): Promise<void> => {
      const a = active
      active = null
      return a ? a.release() : Promise.resolve()
    }
    const corrupt = () => {
      // A frame that cannot be (a flipped length byte): nothing after it can
      // be trusted. End the connection; the sender resumes from the last
      // verified offset once it reconnects.
      if (dead) return
      dead = true
      this.counters.corruptStreams++
      void release()
      link.close()
    }
    // `body` may be a view into the link's receive ring: used, never kept.
    const onFrame = (type: number, body: Uint8Array): boolean => {
      if (type === T_CHUNK) {
        if (body.length < 12) return false
        const a = active
        if (!a) return true // no transfer open on this connection: ignored
        const dv = new DataView(body.buffer, body.byteOffset, 12)
        const offset = Number(dv.getBigUint64(0))
        const crc = dv.getUint32(8)
        const data = body.subarray(12)
        // Chunks already in flight when one was refused are ignored until the
        // resend reaches the expected offset.
        if (offset !== a.expected) return true
        if (crc32c(data) !== crc || offset + data.length > a.size) {
          this.counters.badChunks++
          send(T_NACK, { offset: a.expected, reason: 'chunk CRC-32C mismatch' })
          return true
        }
        a.hash.update(data)
        a.expected += data.length
        this.counters.bytes += data.length
        const copy = Buffer.allocUnsafe(data.length)
        copy.set(data)
        const end = a.expected
        a.chain = a.chain.then(async () => {
          if (a.failed || a.closed) return
          await writeAll(a.fh, copy, offset)
          a.written = end
          // Flushing runs beside the writes that follow (they need not wait
          // for the disk); it records only what was written before it began.
          if (end - a.syncRequested >= this.syncEvery) {
            a.syncRequested = end
            a.syncing = a.syncing.then(() => this.checkpoint(a, end)).catch((err: Error) => {
              a.failed ??= err
            })
          }
          send(T_ACK, { offset: end })
          this.emit('progress', { name: a.name, bytes: end, total: a.size })
        }).catch((err: Error) => {
          // A disk error (ENOSPC, EIO): the file cannot be completed here.
          if (!a.failed) refuse('ERR_ONBUS_TRANSFER_FAILED', `Writing ${a.name} failed: ${err.message}`, a.name)
          a.failed ??= err
        })
        return true
      }
      if (type === T_OFFER) {
        let m: { id: string; name: string; size: number }
        try {
          m = JSON.parse(Buffer.from(body).toString())
        } catch {
          return false
        }
        void release()
        if (typeof m.id !== 'string' || typeof m.name !== 'string' || !/^[^/\0]+$/.test(m.name) || m.name === '.' || m.name === '..' || typeof m.size !== 'number' || m.size < 0 || m.size > this.maxSize) {
          refuse('ERR_ONBUS_TRANSFER_REFUSED', 'Bad file name or size', m.name)
          return true
        }
        const claim = {}
        this.claims.set(m.name, claim)
        void (async () => {
          const prev = this.files.get(m.name)
          if (prev) await prev.release()
          if (this.claims.get(m.name) !== claim || link.state === 'closed') return
          const a = await this.open(m.id, m.name, m.size)
          if (this.claims.get(m.name) !== claim || link.state === 'closed') {
            await a.fh.close().catch(() => {})
            return
          }
          a.release = () => {
            if (active === a) active = null
            a.final ??= this.finishWith(a, () => this.checkpoint(a))
            return a.final
          }
          this.files.set(m.name, a)
          active = a
          if (a.expected > 0) this.counters.resumes++
          send(T_ACCEPT, { id: m.id, offset: a.expected, maxChunk: this.maxChunk })
        })().catch((err: Error) => refuse('ERR_ONBUS_TRANSFER_FAILED', err.message, m.name))
        return true
      }
      if (type === T_END) {
        if (body.length < 32) return false
        const a = active
        if (!a) return true
        active = null
        const want = Buffer.from(body.subarray(0, 32))
        a.final ??= this.finishWith(a, () => this.complete(a, want, send))
        a.final.catch((err) => refuse('ERR_ONBUS_TRANSFER_FAILED', (err as Error).message, a.name))
        return true
      }
      return false // no other frame comes from a sender
    }
    if (link instanceof StreamLink && isTransferFraming(link.framing)) {
      link.onBatch((b) => {
        for (let i = 0; i < b.length && !dead; i++) {
          const off = b.offset(i)
          const len = b.len(i)
          if (len < 5 || !onFrame(b.data[off + 4], b.data.subarray(off + 5, off + len))) {
            corrupt()
            return
          }
        }
      })
      link.on('frameError', corrupt)
    } else {
      const decoder = new FrameDecoder(this.maxChunk + CHUNK_HEADER)
      link.on('data', (d: Buffer) => {
        if (dead) return
        let ok = true
        try {
          ok = decoder.push(d, (type, body) => {
            if (ok && !onFrame(type, body)) ok = false
          })
        } catch {
          ok = false
        }
        if (!ok) {
          decoder.reset()
          corrupt()
        }
      })
    }
    const end = () => void release()
    link.on('close', end)
    link.on('disconnect', end)
  }

  /** Runs `last` after the file's pending writes, then closes it. */
  private finishWith(a: Active, last: () => Promise<void>): Promise<void> {
    const done = a.chain.then(() => a.syncing).then(last).finally(async () => {
      a.closed = true
      await a.fh.close().catch(() => {})
      if (this.files.get(a.name) === a) this.files.delete(a.name)
    })
    a.chain = done.catch(() => {})
    return done
  }

  private async open(id: string, name: string, size: number): Promise<Active> {
    const part = join(this.dir, `.${name}.onbus-part`)
    const state = `${part}.json`
    let expected = 0
    try {
      const s = JSON.parse(readFileSync(state, 'utf8')) as { id: string; size: number; offset: number }
      if (s.id === id && s.size === size && s.offset >= 0 && s.offset <= size) expected = s.offset
    } catch {
      // no state: a new transfer
    }
    let hash = createHash('sha256')
    if (expected > 0) {
      // The digest covers the whole file: take in what was verified before.
      try {
        await new Promise<void>((resolve, reject) => {
          createReadStream(part, { start: 0, end: expected - 1, highWaterMark: 1 << 20 })
            .on('data', (d) => hash.update(d))
            .on('error', reject)
            .on('end', () => resolve())
        })
      } catch {
        expected = 0
        hash = createHash('sha256')
      }
    }
    const fh = await openFile(part, expected > 0 ? 'r+' : 'w', 0o600)
    // Anything past the recorded offset was never verified and flushed: cut it.
    await fh.truncate(expected)
    const a: Active = { id, name, size, part, state, fh, expected, written: expected, synced: expected, syncRequested: expected, syncing: Promise.resolve(), hash, chain: Promise.resolve(), failed: null, closed: false, final: null, release: () => Promise.resolve() }
    if (expected === 0) await this.checkpoint(a)
    return a
  }

  /**
   * Flushes what was written, then records that offset (data first, so the
   * record never runs ahead of the disk). Runs on the file's chain, after the
   * writes queued before it.
   */
  private async checkpoint(a: Active, upto = a.written): Promise<void> {
    if (a.closed || a.failed) return
    if (upto !== a.synced || upto === 0) {
      await a.fh.datasync()
      const tmp = `${a.state}.tmp`
      await writeFile(tmp, JSON.stringify({ id: a.id, name: a.name, size: a.size, offset: upto }))
      await rename(tmp, a.state)
      a.synced = upto
    }
  }

  private async complete(a: Active, want: Buffer, send: (type: number, body: object) => void): Promise<void> {
    if (a.failed) throw a.failed
    if (a.written !== a.size) {
      await this.checkpoint(a)
      send(T_DONE, { ok: false, code: 'ERR_ONBUS_TRANSFER_INCOMPLETE', message: `${a.written} of ${a.size} bytes received` })
      return
    }
    await a.fh.datasync()
    // Chunks were written in order, each once: the running digest is the file's.
    const got = a.hash.digest()
    if (!got.equals(want)) {
      // Never presented as complete: the part and its state go.
      this.counters.digestMismatches++
      await Promise.all([unlink(a.part).catch(() => {}), unlink(a.state).catch(() => {})])
      const message = `SHA-256 of ${a.name} is ${got.toString('hex')}, the sender's is ${want.toString('hex')}: discarded`
      send(T_DONE, { ok: false, code: 'ERR_ONBUS_TRANSFER_DIGEST_MISMATCH', message })
      this.emit('refused', { name: a.name, code: 'ERR_ONBUS_TRANSFER_DIGEST_MISMATCH', message })
      return
    }
    const dest = join(this.dir, a.name)
    await rename(a.part, dest)
    const dh = await openFile(this.dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
    await unlink(a.state).catch(() => {})
    this.counters.files++
    const sha256 = got.toString('hex')
    send(T_DONE, { ok: true, size: a.size, sha256 })
    this.emit('file', { name: a.name, path: dest, size: a.size, sha256 })
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let o = 0
  while (o < data.length) {
    const { bytesWritten } = await fh.write(data, o, data.length - o, position + o)
    o += bytesWritten
  }
}
