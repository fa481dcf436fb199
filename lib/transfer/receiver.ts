/**
 * Receiving verified files.
 *
 * Bytes go to a hidden temporary file beside the destination
 * (`.<name>.onbus-part`), with a small state file recording how far it has
 * been written, checked and flushed to disk (`fdatasync`). Only when the
 * whole file's SHA-256 matches the sender's is it renamed, atomically, to its
 * name (and the directory synced): a partial or corrupted file never appears
 * under the real name. An interrupted transfer resumes from the recorded
 * offset; a chunk whose SHA-256 does not match is refused and sent again; a
 * corrupt stream (a frame that cannot be) ends the connection, and the sender
 * resumes after reconnecting.
 */
import { EventEmitter } from 'node:events'
import { createHash } from 'node:crypto'
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync, createReadStream } from 'node:fs'
import { join } from 'node:path'

import { validateInt, validateString } from '../util/validate.js'
import { CHUNK_HEADER, controlFrame, FrameDecoder, T_ACCEPT, T_ACK, T_CHUNK, T_DONE, T_END, T_NACK, T_OFFER, type TransferChannel } from './protocol.js'

export interface ReceiverOptions {
  /** Directory the files are written to. */
  dir: string
  /** Largest chunk accepted (default 16 MiB): bounds memory per connection. */
  maxChunk?: number
  /** Flush to disk and record progress every this many bytes (default 8 MiB). */
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

  constructor(opts: ReceiverOptions) {
    super()
    validateString(opts.dir, 'options.dir')
    this.dir = opts.dir
    this.maxChunk = opts.maxChunk === undefined ? 16 << 20 : validateInt(opts.maxChunk, 'options.maxChunk', 1024, 1 << 30)
    this.syncEvery = opts.syncEvery === undefined ? 8 << 20 : validateInt(opts.syncEvery, 'options.syncEvery', 1, 2 ** 40)
    this.maxSize = opts.maxSize ?? Number.MAX_SAFE_INTEGER
  }

  stats(): ReceiverStats {
    return { ...this.counters }
  }

  /** Serves one link (an accepted connection). */
  attach(link: TransferChannel): void {
    const decoder = new FrameDecoder(this.maxChunk + CHUNK_HEADER)
    let active: Active | null = null
    const send = (type: number, body: object) => link.write(controlFrame(type, body))
    const closeActive = () => {
      if (active && active.fd >= 0) {
        try {
          closeSync(active.fd)
        } catch {
          // already closed
        }
      }
      active = null
    }
    const refuse = (code: string, message: string) => {
      send(T_DONE, { ok: false, code, message })
      this.emit('refused', { name: active?.name, code, message })
    }
    const onFrame = (type: number, body: Buffer) => {
      if (type === T_OFFER) {
        closeActive()
        const m = JSON.parse(body.toString()) as { id: string; name: string; size: number }
        if (typeof m.name !== 'string' || !/^[^/\0]+$/.test(m.name) || m.name === '.' || m.name === '..' || typeof m.size !== 'number' || m.size < 0 || m.size > this.maxSize) {
          refuse('ERR_ONBUS_TRANSFER_REFUSED', 'Bad file name or size')
          return
        }
        active = this.open(m.id, m.name, m.size)
        if (active.expected > 0) this.counters.resumes++
        send(T_ACCEPT, { id: m.id, offset: active.expected })
      } else if (type === T_CHUNK) {
        const a = active
        if (!a) return
        const offset = Number(body.readBigUInt64BE(0))
        const digest = body.subarray(8, 40)
        const data = body.subarray(40)
        // Chunks already in flight when one was refused are ignored until the
        // resend reaches the expected offset.
        if (offset !== a.expected) return
        if (!createHash('sha256').update(data).digest().equals(digest) || offset + data.length > a.size) {
          this.counters.badChunks++
          send(T_NACK, { offset: a.expected, reason: 'chunk digest mismatch' })
          return
        }
        writeAll(a.fd, data, offset)
        a.expected += data.length
        this.counters.bytes += data.length
        if (a.expected - a.synced >= this.syncEvery) this.checkpoint(a)
        send(T_ACK, { offset: a.expected })
        this.emit('progress', { name: a.name, bytes: a.expected, total: a.size })
      } else if (type === T_END) {
        const a = active
        if (!a) return
        active = null
        void this.complete(a, body.subarray(0, 32), link).catch((err) => refuse('ERR_ONBUS_TRANSFER_FAILED', (err as Error).message))
      }
    }
    link.on('data', (d: Buffer) => {
      let ok = true
      try {
        ok = decoder.push(d, onFrame)
      } catch {
        ok = false
      }
      if (!ok) {
        // A frame that cannot be (a flipped length byte): nothing after it can
        // be trusted. End the connection; the sender resumes from the last
        // verified offset once it reconnects.
        this.counters.corruptStreams++
        decoder.reset()
        if (active) this.checkpoint(active)
        closeActive()
        link.close()
      }
    })
    const end = () => {
      if (active) this.checkpoint(active)
      closeActive()
    }
    link.on('close', end)
    link.on('disconnect', end)
  }

  private open(id: string, name: string, size: number): Active {
    const part = join(this.dir, `.${name}.onbus-part`)
    const state = `${part}.json`
    let expected = 0
    try {
      const s = JSON.parse(readFileSync(state, 'utf8')) as { id: string; size: number; offset: number }
      if (s.id === id && s.size === size && s.offset >= 0 && s.offset <= size) expected = s.offset
    } catch {
      // no state: a new transfer
    }
    const fd = openSync(part, expected > 0 ? 'r+' : 'w', 0o600)
    // Anything past the recorded offset was never verified and flushed: cut it.
    ftruncateSync(fd, expected)
    const a: Active = { id, name, size, part, state, fd, expected, synced: expected }
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
    const got = await sha256File(a.part)
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

function writeAll(fd: number, data: Buffer, position: number): void {
  let o = 0
  while (o < data.length) o += writeSync(fd, data, o, data.length - o, position + o)
}

function sha256File(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest()))
  })
}


