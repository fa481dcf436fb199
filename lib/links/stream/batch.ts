/**
 * A batch of received chunks (raw links) or frames (framed links): views over
 * the link's receive ring.
 *
 * Lifetime: a batch, and every view taken from it (`data`, `view(i)`,
 * `payload(i)`), is valid only until the handler it was passed to returns;
 * then the ring space goes back to the I/O thread. Keep what you need with
 * `copy(i)`. Any accessor used after the handler returned throws
 * `ERR_ONBUS_BATCH_RELEASED`.
 */
import { RingBatch } from '../../util/ring-batch.js'

/** Word offsets of one 32-byte record (mirrors native/stream_socket.h). */
const R_OFFSET = 0
const R_LENGTH = 1
const R_FLAGS = 2
const R_TAG = 3
const R_SEC = 4
const R_NSEC = 5
const R_PAYLOAD = 6
const R_SIZE = 7
/** Words per record. */
export const STREAM_RECORD_WORDS = 8

const F_TRUNCATED = 1
const F_KERNEL_STAMP = 2

const NS = 1_000_000_000n

export class StreamBatch extends RingBatch {
  /** @internal */
  constructor(ring: ArrayBuffer, meta: ArrayBuffer, metaCap: number) {
    super(ring, meta, metaCap, STREAM_RECORD_WORDS, 'record')
  }

  /** Size of record `i` on the wire: a seqpacket message longer than `maxFrameSize` is larger than `len(i)`. */
  size(i: number): number {
    return this.meta[this.rec(i) + R_SIZE]
  }
  /** True when a seqpacket message was longer than `maxFrameSize` and was cut. */
  truncated(i: number): boolean {
    return (this.meta[this.rec(i) + R_FLAGS] & F_TRUNCATED) !== 0
  }
  /** Framer-defined tag (0 for the built-in framers; e.g. a message id for a protocol framer). */
  tag(i: number): number {
    return this.meta[this.rec(i) + R_TAG]
  }
  /** Offset of the payload within frame `i` (the header length; 0 for raw chunks and lines). */
  payloadOffset(i: number): number {
    return this.meta[this.rec(i) + R_PAYLOAD]
  }
  /** A view of the payload of frame `i` (header skipped). */
  payload(i: number): Uint8Array {
    const r = this.rec(i)
    const off = this.meta[r + R_OFFSET]
    return this.data.subarray(off + this.meta[r + R_PAYLOAD], off + this.meta[r + R_LENGTH])
  }
  /**
   * True when the receive stamp of record `i` is the kernel's (SO_TIMESTAMPING
   * on the socket). False for ttys, and where the socket type gives no stamp:
   * then the stamp was taken by the I/O thread when it woke for the data.
   */
  kernelStamp(i: number): boolean {
    return (this.meta[this.rec(i) + R_FLAGS] & F_KERNEL_STAMP) !== 0
  }
  /** Receive stamp seconds (CLOCK_REALTIME). */
  rxTimeSec(i: number): number {
    return this.meta[this.rec(i) + R_SEC]
  }
  /** Receive stamp nanoseconds. */
  rxTimeNsec(i: number): number {
    return this.meta[this.rec(i) + R_NSEC]
  }
  /**
   * Receive time of record `i` in ns (CLOCK_REALTIME). For TCP this is the
   * kernel's stamp of the most recent segment in the read that completed the
   * record; for a frame assembled over several reads, of the last of them.
   */
  rxTime(i: number): bigint {
    const r = this.rec(i)
    return BigInt(this.meta[r + R_SEC]) * NS + BigInt(this.meta[r + R_NSEC])
  }
}
