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
import { RingBatch } from '../../util/ring-batch.js'
import { formatIp } from '../../util/ipformat.js'

/** Word offsets of one 64-byte metadata record (mirrors native/udp_socket.h). */
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

export class UdpBatch extends RingBatch {
  private lastKey0 = -1
  private lastKey1 = -1
  private lastKey2 = -1
  private lastKey3 = -1
  private lastFlags = -1
  private lastScope = -1
  private lastAddr = ''
  private readonly metaBytes: Uint8Array

  /** @internal */
  constructor(ring: ArrayBuffer, meta: ArrayBuffer, metaCap: number) {
    super(ring, meta, metaCap, M_WORDS, 'datagram')
    this.metaBytes = new Uint8Array(meta)
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
}
