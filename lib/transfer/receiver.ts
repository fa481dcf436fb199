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
 */
import { EventEmitter } from 'node:events'
import { createHash, type Hash } from 'node:crypto'
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync, createReadStream } from 'node:fs'
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
  /** Chunks whose SHA-256 did not match (refused, sent again). */
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
  fd: number
  expected: number
  synced: number
  /** SHA-256 of bytes [0, expected). */
  hash: Hash
}

/**
 * Receives files sent with {@link sendFile} on one or more links. Events:
 * `'file'` ({ name, path, size, sha256 }), `'progress'` ({ name, bytes, total }),
 * `'refused'` ({ name, code, message }).
 * @example
 * const rx = new FileReceiver({ dir: '/data/incoming' })
 * server.on('connection', (link) => rx.attach(link))
 */
export class FileReceiver extends EventEmitter {
  private readonly dir: string
  private readonly maxChunk: number
  private readonly syncEvery: number
  private readonly maxSize: number
  private readonly counters: ReceiverStats = { files: 0, bytes: 0, badChunks: 0, corruptStreams: 0, digestMismatches: 0, resumes: 0 }
  /** The connection writing each name now: a newer offer for it takes over (the old connection may not know yet that it is dead). */
  private readonly holders = new Map<string, () => void>()

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
   * @example
   * createTcpServer({ port: 9000, ...rx.linkOptions() }, (link) => rx.attach(link))
   */
  linkOptions(): { framing: FramingOptions; maxFrameSize: number } {
    return { framing: TRANSFER_FRAMING, maxFrameSize: this.maxChunk + CHUNK_HEADER }
  }

  /** Serves one link (an accepted connection). */
  attach(link: TransferChannel): void {
    let active: Active | null = null
    let opening = false
    const send = (type: number, body: object) => link.write(controlFrame(type, body))
    const closeActive = () => {
      if (active && active.fd >= 0) {
        try {
          closeSync(active.fd)
        } catch {
          // already closed
        }
        active.fd = -1
      }
      if (active && this.holders.get(active.name) === release) this.holders.delete(active.name)
      active = null
    }
    // Called when another connection offers the same file: record how far
    // this one got, then let go of it.
    const release = () => {
      if (active) this.checkpoint(active)
      closeActive()
    }
    const refuse = (code: string, message: string, name?: string) => {
      send(T_DONE, { ok: false, code, message })
      this.emit('refused', { name, code, message })
    }
    let dead = false
    const corrupt = () => {
      // A frame that cannot be (a flipped length byte): nothing after it can
      // be trusted. End the connection; the sender resumes from the last
      // verified offset once it reconnects.
      if (dead) return
      dead = true
      this.counters.corruptStreams++
      if (active) this.checkpoint(active)
      closeActive()
      link.close()
    }
    // `body` may be a view into the link's receive ring: used, never kept.
    const onFrame = (type: number, body: Uint8Array): boolean => {
      if (type === T_CHUNK) {
        const a = active
        if (body.length < 12) return false
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
        writeAll(a.fd, data, offset)
        a.hash.update(data)
        a.expected += data.length
        this.counters.bytes += data.length
        if (a.expected - a.synced >= this.syncEvery) this.checkpoint(a)
        send(T_ACK, { offset: a.expected })
        this.emit('progress', { name: a.name, bytes: a.expected, total: a.size })
        return true
      }
      if (type === T_OFFER) {
        closeActive()
        let m: { id: string; name: string; size: number }
        try {
          m = JSON.parse(Buffer.from(body).toString())
        } catch {
          return false
        }
        if (typeof m.id !== 'string' || typeof m.name !== 'string' || !/^[^/\0]+$/.test(m.name) || m.name === '.' || m.name === '..' || typeof m.size !== 'number' || m.size < 0 || m.size > this.maxSize) {
          refuse('ERR_ONBUS_TRANSFER_REFUSED', 'Bad file name or size', m.name)
          return true
        }
        opening = true
        const previous = this.holders.get(m.name)
        if (previous) previous()
        this.holders.set(m.name, release)
        this.open(m.id, m.name, m.size).then(
          (a) => {
            opening = false
            if (link.state === 'closed' || this.holders.get(m.name) !== release) {
              closeSync(a.fd)
              return
            }
            active = a
            if (a.expected > 0) this.counters.resumes++
            send(T_ACCEPT, { id: m.id, offset: a.expected, maxChunk: this.maxChunk })
          },
          (err: Error) => {
            opening = false
            refuse('ERR_ONBUS_TRANSFER_FAILED', err.message, m.name)
          },
        )
        return true
      }
      if (type === T_END) {
        const a = active
        if (!a || body.length < 32) return a !== null
        active = null
        if (this.holders.get(a.name) === release) this.holders.delete(a.name)
        void this.complete(a, Buffer.from(body.subarray(0, 32)), link).catch((err) => refuse('ERR_ONBUS_TRANSFER_FAILED', (err as Error).message, a.name))
        return true
      }
      return false // no other frame comes from a sender
    }
    if (link instanceof StreamLink && isTransferFraming(link.framing)) {
      link.onBatch((b) => {
        for (let i = 0; i < b.length && link.state !== 'closed'; i++) {
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
    const end = () => release()
    link.on('close', end)
    link.on('disconnect', end)
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
    const hash = createHash('sha256')
    if (expected > 0) {
      // The digest covers the whole file: take in what was verified before.
      await new Promise<void>((resolve, reject) => {
        createReadStream(part, { start: 0, end: expected - 1, highWaterMark: 1 << 20 })
          .on('data', (d) => hash.update(d))
          .on('error', reject)
          .on('end', () => resolve())
      }).catch(() => {
        expected = 0
        hash.update(Buffer.alloc(0))
      })
    }
    const fd = openSync(part, expected > 0 ? 'r+' : 'w', 0o600)
    // Anything past the recorded offset was never verified and flushed: cut it.
    ftruncateSync(fd, expected)
    const a: Active = { id, name, size, part, state, fd, expected, synced: expected, hash: expected > 0 ? hash : createHash('sha256') }
    if (expected === 0) this.checkpoint(a)
    return a
  }

  /** Flushes data, then records the offset (data first, so the record never runs ahead). */
  private checkpoint(a: Active): void {
    if (a.fd < 0) return
    fdatasyncSync(a.fd)
    const tmp = `${a.state}.tmp`
    writeFileSync(tmp, JSON.stringify({ id: a.id, name: a.name, size: a.size, offset: a.expected }))
    renameSync(tmp, a.state)
    a.synced = a.expected
  }

  private async complete(a: Active, want: Buffer, link: TransferChannel): Promise<void> {
    const send = (body: object) => link.write(controlFrame(T_DONE, body))
    if (a.expected !== a.size) {
      this.checkpoint(a)
      closeSync(a.fd)
      send({ ok: false, code: 'ERR_ONBUS_TRANSFER_INCOMPLETE', message: `${a.expected} of ${a.size} bytes received` })
      return
    }
    fdatasyncSync(a.fd)
    closeSync(a.fd)
    a.fd = -1
    // Chunks were written in order, each once: the running digest is the file's.
    const got = a.hash.digest()
    if (!got.equals(want)) {
      // Never presented as complete: the part and its state go.
      this.counters.digestMismatches++
      for (const p of [a.part, a.state]) {
        try {
          unlinkSync(p)
        } catch {
          // gone
        }
      }
      const message = `SHA-256 of ${a.name} is ${got.toString('hex')}, the sender's is ${want.toString('hex')}: discarded`
      send({ ok: false, code: 'ERR_ONBUS_TRANSFER_DIGEST_MISMATCH', message })
      this.emit('refused', { name: a.name, code: 'ERR_ONBUS_TRANSFER_DIGEST_MISMATCH', message })
      return
    }
    const dest = join(this.dir, a.name)
    renameSync(a.part, dest)
    const dfd = openSync(this.dir, 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
    try {
      unlinkSync(a.state)
    } catch {
      // gone
    }
    this.counters.files++
    const sha256 = got.toString('hex')
    send({ ok: true, size: a.size, sha256 })
    this.emit('file', { name: a.name, path: dest, size: a.size, sha256 })
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let o = 0
  while (o < data.length) o += writeSync(fd, data, o, data.length - o, position + o)
}

