/**
 * What every batch of records over a link's receive ring shares: the ring and
 * metadata views, the lifetime rule (valid until the handler returns; any
 * accessor afterwards throws `ERR_ONBUS_BATCH_RELEASED`), and the offset /
 * length / view / copy accessors. Words 0 and 1 of every record are the
 * payload's byte offset in the ring and its length (native/udp_socket.h,
 * native/stream_socket.h).
 */
import { onbusError } from '../errors.js'

export abstract class RingBatch {
  /** The whole receive ring. Record `i` is `data[offset(i) .. offset(i)+len(i))`. */
  readonly data: Uint8Array
  /** A DataView over the same ring, for reading fields without allocating. */
  readonly dataView: DataView
  /** Number of records in this batch. */
  length = 0
  protected readonly meta: Uint32Array
  private readonly mask: number
  private start = 0
  private live = false

  /** @internal */
  constructor(
    ring: ArrayBuffer,
    meta: ArrayBuffer,
    metaCap: number,
    private readonly words: number,
    private readonly noun: string,
  ) {
    this.data = new Uint8Array(ring)
    this.dataView = new DataView(ring)
    this.meta = new Uint32Array(meta)
    this.mask = metaCap - 1
  }

  /** @internal */
  _open(start: number, count: number): void {
    this.start = start
    this.length = count
    this.live = true
  }

  /** @internal */
  _close(): void {
    this.live = false
    this.length = 0
  }

  /** Word index of record `i`'s metadata; throws once the batch was released. */
  protected rec(i: number): number {
    if (!this.live) throw onbusError('ERR_ONBUS_BATCH_RELEASED', 'This batch was released when its handler returned; copy() what you keep')
    if (i < 0 || i >= this.length) throw new RangeError(`${this.noun} index ${i} outside batch of ${this.length}`)
    return ((this.start + i) & this.mask) * this.words
  }

  /** Byte offset of record `i` in `data`. */
  offset(i: number): number {
    return this.meta[this.rec(i)]
  }
  /** Bytes of record `i` available in `data`. */
  len(i: number): number {
    return this.meta[this.rec(i) + 1]
  }
  /** A view of record `i` over the ring (allocates a view object; valid until the handler returns). */
  view(i: number): Uint8Array {
    const r = this.rec(i)
    const off = this.meta[r]
    return this.data.subarray(off, off + this.meta[r + 1])
  }
  /** A copy of record `i` that is safe to keep. */
  copy(i: number): Buffer {
    const r = this.rec(i)
    const off = this.meta[r]
    const len = this.meta[r + 1]
    const b = Buffer.allocUnsafe(len)
    b.set(this.data.subarray(off, off + len))
    return b
  }
  /** Copies of every record in the batch. */
  copyAll(): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < this.length; i++) out.push(this.copy(i))
    return out
  }
}
