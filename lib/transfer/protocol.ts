/**
 * Wire format of verified bulk transfers. Every message is one frame:
 * [u32 big-endian length of what follows][u8 type][body]. Chunks carry a
 * CRC-32C (computed natively, with the CPU's CRC instructions) that catches
 * corruption per chunk, so only that chunk is sent again; the end carries the
 * whole file's SHA-256, the check that decides whether the file is complete.
 */
import { streamNative } from '../../bindings/index.js'
import type { FramingOptions } from '../links/stream/framing.js'

export const T_OFFER = 1 // JSON { id, name, size }
export const T_ACCEPT = 2 // JSON { id, offset }: where to (re)start
export const T_CHUNK = 3 // [u64 offset][u32 crc32c(data)][data]
export const T_ACK = 4 // JSON { offset }: bytes written and verified
export const T_NACK = 5 // JSON { offset, reason }: resend from offset
export const T_END = 6 // [32 B sha256(file)]
export const T_DONE = 7 // JSON { ok: true, size, sha256 } | { ok: false, code, message }

export const CHUNK_HEADER = 4 + 1 + 8 + 4
export const MAX_CONTROL = 64 * 1024

/** The link surface transfers need: TCP stream links and TLS command links both have it. */
export interface TransferChannel {
  write(data: Uint8Array | string, cb?: (err: Error | null) => void): boolean
  on(event: 'data', fn: (d: Buffer) => void): this
  on(event: 'connect' | 'drain' | 'close', fn: () => void): this
  on(event: 'disconnect', fn: (info: { reason: Error }) => void): this
  on(event: 'error', fn: (err: Error) => void): this
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, fn: (...args: any[]) => void): this
  close(): unknown
  readonly state: string
}

export function controlFrame(type: number, body: object): Buffer {
  const json = Buffer.from(JSON.stringify(body))
  const b = Buffer.allocUnsafe(5 + json.length)
  b.writeUInt32BE(1 + json.length, 0)
  b[4] = type
  json.copy(b, 5)
  return b
}

/** CRC-32C of a chunk. */
export function crc32c(data: Uint8Array): number {
  return streamNative.StreamSocket.crc32c(data)
}

export function chunkHeader(offset: number, crc: number, len: number): Buffer {
  const h = Buffer.allocUnsafe(CHUNK_HEADER)
  h.writeUInt32BE(1 + 8 + 4 + len, 0)
  h[4] = T_CHUNK
  h.writeBigUInt64BE(BigInt(offset), 5)
  h.writeUInt32BE(crc >>> 0, 13)
  return h
}

/**
 * Framing that lets a stream link cut transfer frames natively, so a
 * receiver reads each chunk straight from the receive ring (no copy).
 */
export const TRANSFER_FRAMING: FramingOptions = { type: 'length', lengthSize: 4, adjust: 4 }

/** True when a link was created with {@link TRANSFER_FRAMING}. */
export function isTransferFraming(f: unknown): boolean {
  if (f === null || typeof f !== 'object') return false
  const o = f as { type?: string; lengthSize?: number; adjust?: number; littleEndian?: boolean; magic?: unknown; lengthOffset?: number }
  return o.type === 'length' && o.lengthSize === 4 && o.adjust === 4 && !o.littleEndian && o.magic === undefined && !o.lengthOffset
}

export function endFrame(digest: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + 32)
  b.writeUInt32BE(33, 0)
  b[4] = T_END
  digest.copy(b, 5)
  return b
}

/**
 * Incremental frame decoder. `max` bounds a frame's size: a larger (or
 * empty) length means the stream is corrupt, and the decoder says so instead
 * of buffering without end.
 */
export class FrameDecoder {
  private parts: Buffer[] = []
  private have = 0
  constructor(private readonly max: number) {}

  /** Feeds bytes; calls `onFrame(type, body)` per frame. Returns false on a corrupt stream. */
  push(d: Buffer, onFrame: (type: number, body: Buffer) => void): boolean {
    this.parts.push(d)
    this.have += d.length
    for (;;) {
      if (this.have < 4) return true
      const len = this.peekLength()
      if (len < 1 || len > this.max) return false
      if (this.have < 4 + len) return true
      const frame = this.take(4 + len)
      onFrame(frame[4], frame.subarray(5))
    }
  }

  private peekLength(): number {
    if (this.parts[0].length >= 4) return this.parts[0].readUInt32BE(0)
    const b = Buffer.concat(this.parts, 4)
    return b.readUInt32BE(0)
  }

  private take(n: number): Buffer {
    let out: Buffer
    if (this.parts[0].length >= n) {
      out = this.parts[0].subarray(0, n)
      this.parts[0] = this.parts[0].subarray(n)
      if (this.parts[0].length === 0) this.parts.shift()
    } else {
      out = Buffer.allocUnsafe(n)
      let o = 0
      while (o < n) {
        const p = this.parts[0]
        const k = Math.min(p.length, n - o)
        p.copy(out, o, 0, k)
        o += k
        if (k === p.length) this.parts.shift()
        else this.parts[0] = p.subarray(k)
      }
    }
    this.have -= n
    return out
  }

  reset(): void {
    this.parts = []
    this.have = 0
  }
}
