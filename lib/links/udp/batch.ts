/**
 * A batch of received datagrams: views over the link's receive ring.
 *
 * Lifetime: a batch, and every view taken from it (`data`, `view(i)`), is
 * valid only until the handler it was passed to returns. After that the ring
 * space is handed back to the I/O thread and will be overwritten. Keep what you
 * need with `copy(i)` / `copyAll()`; calling any accessor on a batch after its
 * handler returned throws `ERR_ONBUS_BATCH_RELEASED` instead of returning
 * bytes that may already belong to a later datagram.
 *
 * The accessors allocate nothing (except `address()` on a change of source,
 * `rxTime()` which returns a bigint, `view()` and the copies), so a handler
 * that loops over `len(i)`/`offset(i)` and reads `data` directly costs no
 * garbage per datagram.
 */
import { onbusError } from '../../errors.js'
import { formatIp } from '../../util/ipformat.js'

/** Word offsets of one 64-byte metadata record (mirrors native/udp_socket.h). */
const M_OFFSET = 0
const M_LENGTH = 1
const M_FLAGS = 2
const M_PORT = 3
const M_SW_SEC = 4
const M_SW_NSEC = 5
const M_HW_SEC = 6
const M_HW_NSEC = 7
const M_DROPS = 8
const M_SIZE = 9
const M_ADDR = 10
const M_SCOPE = 14
const M_WORDS = 16

const F_TRUNCATED = 1
const F_SW_STAMP = 2
const F_HW_STAMP = 4
const F_IPV6 = 8
const F_GRO_SEGMENT = 16
const F_STAMP_AT_READ = 32

const NS = 1_000_000_000n

export class UdpBatch {
  /** The whole receive ring. Datagram `i` is `data[offset(i) .. offset(i)+len(i))`. */
  readonly data: Uint8Array
  /** A DataView over the same ring, for reading fields without allocating. */
  readonly dataView: DataView
  /** Number of datagrams in this batch. */
  length = 0
  private readonly meta: Uint32Array
  private readonly metaBytes: Uint8Array
  private readonly mask: number
  private start = 0
  private live = false
  private lastKey0 = -1
  private lastKey1 = -1
  private lastKey2 = -1
  private lastKey3 = -1
  private lastFlags = -1
  private lastScope = -1
  private lastAddr = ''

  /** @internal */
  constructor(ring: ArrayBuffer, meta: ArrayBuffer, metaCap: number) {
    this.data = new Uint8Array(ring)
    this.dataView = new DataView(ring)
    this.meta = new Uint32Array(meta)
    this.metaBytes = new Uint8Array(meta)
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

  private rec(i: number): number {
    if (!this.live) throw onbusError('ERR_ONBUS_BATCH_RELEASED', 'This batch was released when its handler returned; copy() what you keep')
    if (i < 0 || i >= this.length) throw new RangeError(`datagram index ${i} outside batch of ${this.length}`)
    return ((this.start + i) & this.mask) * M_WORDS
  }

  /** Byte offset of datagram `i` in `data`. */
  offset(i: number): number {
    return this.meta[this.rec(i) + M_OFFSET]
  }
  /** Bytes of datagram `i` available in `data` (≤ the link's `maxDatagramSize`). */
  len(i: number): number {
    return this.meta[this.rec(i) + M_LENGTH]
  }
  /** Size of datagram `i` on the wire (larger than `len(i)` when truncated). */
  size(i: number): number {
    return this.meta[this.rec(i) + M_SIZE]
  }
  /** True when datagram `i` was larger than the slot and was cut. */
  truncated(i: number): boolean {
    return (this.meta[this.rec(i) + M_FLAGS] & F_TRUNCATED) !== 0
  }
  /** Source port of datagram `i`. */
  port(i: number): number {
    return this.meta[this.rec(i) + M_PORT]
  }
  /** 4 or 6. */
  family(i: number): 4 | 6 {
    return this.meta[this.rec(i) + M_FLAGS] & F_IPV6 ? 6 : 4
  }
  /** Source address of datagram `i` (the string is cached while the source does not change). */
  address(i: number): string {
    const r = this.rec(i)
    const m = this.meta
    const flags = m[r + M_FLAGS] & F_IPV6
    if (
      m[r + M_ADDR] === this.lastKey0 &&
      m[r + M_ADDR + 1] === this.lastKey1 &&
      m[r + M_ADDR + 2] === this.lastKey2 &&
      m[r + M_ADDR + 3] === this.lastKey3 &&
      flags === this.lastFlags &&
      m[r + M_SCOPE] === this.lastScope
    )
      return this.lastAddr
    this.lastKey0 = m[r + M_ADDR]
    this.lastKey1 = m[r + M_ADDR + 1]
    this.lastKey2 = m[r + M_ADDR + 2]
    this.lastKey3 = m[r + M_ADDR + 3]
    this.lastFlags = flags
    this.lastScope = m[r + M_SCOPE]
    this.lastAddr = formatIp(this.metaBytes, (r + M_ADDR) * 4, flags !== 0, this.lastScope)
    return this.lastAddr
  }
  /** True when datagram `i` carries a software (CLOCK_REALTIME) kernel receive stamp. */
  hasRxTime(i: number): boolean {
    return (this.meta[this.rec(i) + M_FLAGS] & F_SW_STAMP) !== 0
  }
  /**
   * True when the kernel is known to have stamped datagram `i` as it was read
   * rather than on arrival. This happens only in the moment after a link
   * opens, while the kernel is still switching receive stamping on; the kernel
   * does not always say so (it may put the read-time stamp in the regular
   * field), so treat stamps of the first milliseconds of a link with care
   * (see docs/ARCHITECTURE.md, Time).
   */
  stampedAtRead(i: number): boolean {
    return (this.meta[this.rec(i) + M_FLAGS] & F_STAMP_AT_READ) !== 0
  }
  /** Kernel receive stamp, seconds part (realtime domain); 0 if absent. */
  rxTimeSec(i: number): number {
    return this.meta[this.rec(i) + M_SW_SEC]
  }
  /** Kernel receive stamp, nanoseconds part. */
  rxTimeNsec(i: number): number {
    return this.meta[this.rec(i) + M_SW_NSEC]
  }
  /** Kernel receive stamp in nanoseconds (realtime domain), or `undefined` if the kernel gave none. */
  rxTime(i: number): bigint | undefined {
    const r = this.rec(i)
    if (!(this.meta[r + M_FLAGS] & F_SW_STAMP)) return undefined
    return BigInt(this.meta[r + M_SW_SEC]) * NS + BigInt(this.meta[r + M_SW_NSEC])
  }
  /** Hardware (NIC clock) receive stamp in nanoseconds, where the interface has one. */
  hwTime(i: number): bigint | undefined {
    const r = this.rec(i)
    if (!(this.meta[r + M_FLAGS] & F_HW_STAMP)) return undefined
    return BigInt(this.meta[r + M_HW_SEC]) * NS + BigInt(this.meta[r + M_HW_NSEC])
  }
  /** The socket's cumulative kernel drop counter (SO_RXQ_OVFL) when datagram `i` was read. */
  kernelDrops(i: number): number {
    return this.meta[this.rec(i) + M_DROPS]
  }
  /** True when datagram `i` is one segment of a GRO super-packet split natively. */
  groSegment(i: number): boolean {
    return (this.meta[this.rec(i) + M_FLAGS] & F_GRO_SEGMENT) !== 0
  }
  /** A view of datagram `i` over the ring (allocates a view object; valid until the handler returns). */
  view(i: number): Uint8Array {
    const r = this.rec(i)
    const off = this.meta[r + M_OFFSET]
    return this.data.subarray(off, off + this.meta[r + M_LENGTH])
  }
  /** A copy of datagram `i` that is safe to keep. */
  copy(i: number): Buffer {
    const r = this.rec(i)
    const off = this.meta[r + M_OFFSET]
    const len = this.meta[r + M_LENGTH]
    const b = Buffer.allocUnsafe(len)
    b.set(this.data.subarray(off, off + len))
    return b
  }
  /** Copies of every datagram in the batch. */
  copyAll(): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < this.length; i++) out.push(this.copy(i))
    return out
  }
}
