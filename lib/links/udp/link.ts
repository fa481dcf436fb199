/**
 * The UDP link: batched, kernel-timestamped datagrams over the native reactor.
 *
 * Shaped like Node's `dgram.Socket` (events `'message'`, `'error'`, `'close'`,
 * `'listening'` is not needed because binding is synchronous), plus a zero-
 * allocation batch API (`onBatch`), an async iterator, transmit timestamps and
 * per-link statistics.
 */
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { constants as osConstants } from 'node:os'
import { native, NativeEvent, type NativeUdpSocket } from '../../../bindings/index.js'
import { errnoException, invalidArgType, invalidArgValue, notRunning, outOfRange, type OnbusSystemError } from '../../errors.js'
import { nextPow2, validateBool, validateFunction, validateInt, validatePort, validateString } from '../../util/validate.js'
import { UdpBatch } from './batch.js'
import { AsyncQueue } from '../../util/async-queue.js'
import { attachLink, type Attachment, type AttachOptions } from '../../bus/link.js'
import type { Topic } from '../../bus/topic.js'
import { whenAborted } from '../../util/abort.js'

const EAGAIN = osConstants.errno.EAGAIN
const ENOPROTOOPT = -osConstants.errno.ENOPROTOOPT
const NS = 1_000_000_000n
const DEFAULT_RCVBUF = 4 << 20

/** Options of {@link createUdpLink}. */
export interface UdpLinkOptions {
  /** Address to bind. Default `'127.0.0.1'` (`'::1'` for `family: 6`): nothing listens on a public address unless you say so. */
  address?: string
  /** Port to bind; 0 (default) picks an ephemeral port, reported by `address()`. */
  port?: number
  /** 4 or 6; default from `address`, else 4. */
  family?: 4 | 6
  /** Connect to this peer (send without a destination; receive only from it). */
  connect?: { address: string; port: number }
  reuseAddr?: boolean
  reusePort?: boolean
  /** IPv6 sockets only: refuse IPv4-mapped traffic. */
  ipv6Only?: boolean
  /** Kernel receive buffer in bytes (SO_RCVBUFFORCE when permitted, else SO_RCVBUF, which the kernel caps at net.core.rmem_max). Default 4 MiB. The effective size is in `getRecvBufferSize()`. */
  rcvBuf?: number
  /** Kernel send buffer in bytes (SO_SNDBUFFORCE when permitted, else SO_SNDBUF). */
  sndBuf?: number
  broadcast?: boolean
  ttl?: number
  multicastTtl?: number
  multicastLoopback?: boolean
  /** Interface name for outgoing multicast. */
  multicastInterface?: string
  /** Differentiated services code point, 0–63 (e.g. 46 = EF for control traffic). */
  dscp?: number
  /** Bind to a network device (SO_BINDTODEVICE; needs CAP_NET_RAW). */
  device?: string
  /** Kernel receive timestamps (default true). */
  timestamps?: boolean
  /** Software transmit timestamps, delivered as `'txtime'` events (default false). */
  txTimestamps?: boolean
  /** Largest datagram kept whole; longer ones are truncated and flagged. Default 2048, max 65535. */
  maxDatagramSize?: number
  /** Datagram slots in the receive ring (rounded up to a power of two). Default 4096. Together with `rcvBuf` this is what a JavaScript stall can absorb. */
  rxSlots?: number
  /** Opt-in UDP_GRO receive: coalesced segments are split natively, still one datagram per batch entry. */
  gro?: boolean
  /** Spin this many microseconds on the I/O thread before sleeping (for control loops; costs a core while spinning). */
  busyPollUs?: number
  /** Set false for a send-only link (no receive ring). Default true. */
  receive?: boolean
  /** Closes the link when aborted. */
  signal?: AbortSignal
  /** Bound of the async iterator's queue; beyond it the oldest datagram is dropped and counted. Default 4096. */
  iteratorHighWaterMark?: number
}

/** Per-datagram information of the convenience API. */
export interface UdpMessageInfo {
  address: string
  family: 'IPv4' | 'IPv6'
  port: number
  /** Size on the wire (greater than the Buffer length when truncated). */
  size: number
  truncated: boolean
  /** Kernel receive timestamp in ns (clock domain: `rxClock`), if the kernel gave one. */
  rxTime: bigint | undefined
  rxClock: 'realtime'
  /** NIC receive stamp, where the interface has a hardware clock. */
  hwTime: bigint | undefined
}

export interface UdpMessage {
  data: Buffer
  info: UdpMessageInfo
}

/** Counters of one link. */
export interface UdpLinkStats {
  rxDatagrams: number
  rxBytes: number
  rxTruncated: number
  rxErrors: number
  /** Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL, as of the last datagram read). */
  kernelDrops: number
  /** Datagrams dropped inside onbus (async-iterator overflow). The ring itself never drops: it pauses. */
  onbusDrops: number
  rxBatches: number
  /** Times the ring was full and reading paused (the kernel buffer then absorbs the rest). */
  rxPauses: number
  groSuperPackets: number
  ringInUse: number
  txDatagrams: number
  txBytes: number
  txErrors: number
  txCalls: number
  txEagain: number
  /** Datagrams waiting for kernel buffer space (back-pressure). */
  txQueued: number
}

export type UdpBatchHandler = (batch: UdpBatch) => void
type SendCallback = (err: OnbusSystemError | null) => void

interface PendingSend {
  data: Uint8Array | Uint8Array[]
  next: number
  count: number
  dest: Uint8Array | null
  address: string | undefined
  port: number | undefined
  gso: number
  cb: SendCallback | undefined
  firstError: OnbusSystemError | null
}

/**
 * A UDP link. Create with {@link createUdpLink}.
 *
 * Events: `'message'` (data: Buffer, info: UdpMessageInfo), `'error'`,
 * `'close'`, `'drain'` (queued sends went out), `'txtime'` ({ id, time }).
 */
export class UdpLink extends EventEmitter {
  readonly family: 4 | 6
  private sock: NativeUdpSocket | null
  private readonly batch: UdpBatch | null
  private handlers: UdpBatchHandler[] = []
  private closing = false
  private refed = true
  private readonly out = new Int32Array(4)
  private readonly statsBuf = new Float64Array(16)
  private destCache = new Map<string, Uint8Array>()
  private pending: PendingSend[] = []
  private pendingCount = 0
  private waitingWritable = false
  private iterators = new Set<AsyncQueue<UdpMessage>>()
  private onbusDrops = 0
  private readonly iterHwm: number
  private abortCleanup: (() => void) | undefined
  /**
   * Kernel features this link got: receive/transmit timestamps and the
   * SO_RXQ_OVFL drop counter. A kernel (or emulator) without one still opens
   * the link; the feature is then absent, not faked.
   */
  readonly capabilities = { rxTimestamps: false, txTimestamps: false, kernelDropCounter: false }
  /** Messages handed to the kernel so far: the id the next transmit timestamp will carry. */
  txCount = 0

  /** @internal use {@link createUdpLink} */
  constructor(opts: UdpLinkOptions) {
    super()
    const family = resolveFamily(opts)
    this.family = family
    this.iterHwm = opts.iteratorHighWaterMark ?? 4096
    const sock = new native.UdpSocket(
      family,
      (start, count) => this.dispatch(start, count),
      (kind, a, b, c) => this.onNativeEvent(kind, a, b, c),
    )
    this.sock = sock
    const address = opts.address ?? (family === 6 ? '::1' : '127.0.0.1')
    const port = opts.port ?? 0
    try {
      const setBool = (name: string, v: boolean | undefined) => {
        if (v !== undefined) this.check(sock.setOption(name, v ? 1 : 0), 'setsockopt')
      }
      setBool('reuseAddr', opts.reuseAddr)
      setBool('reusePort', opts.reusePort)
      if (family === 6 && opts.ipv6Only !== undefined) setBool('ipv6Only', opts.ipv6Only)
      // Default 4 MiB: the kernel's 208 KiB holds only ~270 small datagrams,
      // which a burst outruns whenever the I/O thread is descheduled.
      this.check(sock.setOption('rcvBuf', opts.rcvBuf ?? DEFAULT_RCVBUF), 'setsockopt')
      if (opts.sndBuf !== undefined) this.check(sock.setOption('sndBuf', opts.sndBuf), 'setsockopt')
      // Both are kernel features a link can live without (an old kernel, or
      // qemu-user, which implements neither): say so in `capabilities`
      // instead of refusing to open.
      this.capabilities.kernelDropCounter = this.optional(sock.setOption('rxqOvfl', 1))
      const ts = (opts.timestamps ?? true ? 1 : 0) | (opts.txTimestamps ? 2 : 0)
      if (ts) {
        const ok = this.optional(sock.setOption('timestamping', ts))
        this.capabilities.rxTimestamps = ok && (ts & 1) !== 0
        this.capabilities.txTimestamps = ok && (ts & 2) !== 0
      }
      if (opts.device !== undefined) this.check(sock.bindDevice(opts.device), 'setsockopt', opts.device)
      this.check(sock.bind(address, port), 'bind', address, port)
      setBool('broadcast', opts.broadcast)
      if (opts.ttl !== undefined) this.check(sock.setOption('ttl', opts.ttl), 'setsockopt')
      if (opts.multicastTtl !== undefined) this.check(sock.setOption('multicastTtl', opts.multicastTtl), 'setsockopt')
      if (opts.multicastLoopback !== undefined) setBool('multicastLoop', opts.multicastLoopback)
      if (opts.multicastInterface !== undefined)
        this.check(sock.membership('interface', '', opts.multicastInterface), 'setsockopt', opts.multicastInterface)
      if (opts.dscp !== undefined) this.check(sock.setOption('dscp', opts.dscp), 'setsockopt')
      if (opts.gro) this.check(sock.setOption('gro', 1), 'setsockopt')
      if (opts.connect) this.check(sock.connect(opts.connect.address, opts.connect.port), 'connect', opts.connect.address, opts.connect.port)
      if (opts.receive ?? true) {
        const slotSize = align8(opts.gro ? 65536 : opts.maxDatagramSize ?? 2048)
        const slots = nextPow2(opts.rxSlots ?? 4096)
        const metaCap = opts.gro ? slots * 64 : slots
        const ring = new ArrayBuffer(slotSize * slots)
        const meta = new ArrayBuffer(metaCap * 64)
        this.check(sock.startReceive(ring, meta, slotSize, slots, metaCap), 'recvmmsg')
        this.batch = new UdpBatch(ring, meta, metaCap)
      } else {
        this.batch = null
      }
      if (opts.busyPollUs) sock.setBusyPoll(opts.busyPollUs)
      sock.ref()
    } catch (err) {
      sock.close()
      this.sock = null
      throw err
    }
    if (opts.signal) this.abortCleanup = whenAborted(opts.signal, () => this.close())
  }

  /** True if set; false if the kernel lacks the option (ENOPROTOOPT); throws otherwise. */
  private optional(r: number): boolean {
    if (r === ENOPROTOOPT) return false
    this.check(r, 'setsockopt')
    return true
  }

  private check(r: number, syscall: string, address?: string, port?: number): void {
    if (r < 0) throw errnoException(r, syscall, address, port)
  }

  private live(): NativeUdpSocket {
    if (!this.sock) throw notRunning()
    return this.sock
  }

  /** The bound address, as `dgram` reports it. */
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    const r = this.live().localAddress()
    if (typeof r === 'number') throw errnoException(r, 'getsockname')
    return { address: r[0], family: r[2] === 6 ? 'IPv6' : 'IPv4', port: r[1] }
  }

  /** The connected peer. Throws ENOTCONN when not connected. */
  remoteAddress(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    const r = this.live().remoteAddress()
    if (typeof r === 'number') throw errnoException(r, 'getpeername')
    return { address: r[0], family: r[2] === 6 ? 'IPv6' : 'IPv4', port: r[1] }
  }

  /** Connects the link to one peer. */
  connect(port: number, address: string): void {
    validatePort(port, 'Port', false)
    validateString(address, 'address')
    validateIpOfFamily(address, this.family, 'address')
    this.check(this.live().connect(address, port), 'connect', address, port)
  }

  disconnect(): void {
    this.check(this.live().disconnect(), 'connect')
  }

  /**
   * Registers a batch handler: called once per batch with views over the ring.
   * Returns a function that removes it.
   * @example
   * link.onBatch((b) => { for (let i = 0; i < b.length; i++) total += b.len(i) })
   */
  onBatch(handler: UdpBatchHandler): () => void {
    validateFunction(handler, 'handler')
    if (!this.batch) throw invalidArgValue('receive', false, 'is false: this link does not receive')
    this.handlers = [...this.handlers, handler]
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler)
    }
  }

  /**
   * Feeds a bus topic: every datagram becomes a message carrying its kernel
   * receive time and its sender (see docs/BUS.md).
   * @example
   * link.publishTo(bus.topic('lidar/packets', { qos: qosProfiles.sensorData, codec: rawCodec }))
   */
  publishTo<T>(topic: Topic<T>, opts?: AttachOptions): Attachment {
    return attachLink(this, topic, opts)
  }

  private dispatch(start: number, count: number): void {
    const batch = this.batch
    if (!batch) return
    batch._open(start, count)
    try {
      const hs = this.handlers
      for (let k = 0; k < hs.length && this.sock; k++) hs[k](batch)
      if (this.sock && (this.listenerCount('message') > 0 || this.iterators.size > 0)) this.deliverMessages(batch)
    } finally {
      batch._close()
    }
  }

  private deliverMessages(batch: UdpBatch): void {
    const emit = this.listenerCount('message') > 0
    for (let i = 0; i < batch.length && this.sock; i++) {
      const v6 = batch.family(i) === 6
      const sec = batch.rxTimeSec(i)
      const hw = batch.hwTime(i)
      const msg: UdpMessage = {
        data: batch.copy(i),
        info: {
          address: batch.address(i),
          family: v6 ? 'IPv6' : 'IPv4',
          port: batch.port(i),
          size: batch.size(i),
          truncated: batch.truncated(i),
          rxTime: batch.hasRxTime(i) ? BigInt(sec) * NS + BigInt(batch.rxTimeNsec(i)) : undefined,
          rxClock: 'realtime',
          hwTime: hw,
        },
      }
      for (const q of this.iterators) this.onbusDrops += q.push(msg)
      if (emit) this.emit('message', msg.data, msg.info)
    }
  }

  private onNativeEvent(kind: NativeEvent, a?: number, b?: number, c?: number): void {
    if (kind === NativeEvent.Writable) {
      this.waitingWritable = false
      this.flush()
    } else if (kind === NativeEvent.TxStamp) {
      this.emit('txtime', { id: a!, time: BigInt(b!) * NS + BigInt(c!), clock: 'realtime' })
    } else if (kind === NativeEvent.Error) {
      const remote = this.sock?.remoteAddress()
      const err = Array.isArray(remote) ? errnoException(a!, 'recvmmsg', remote[0], remote[1]) : errnoException(a!, 'recvmmsg')
      this.emit('error', err)
    }
  }

  private dest(port: number | undefined, address: string | undefined): Uint8Array | null {
    if (port === undefined) return null
    validatePort(port, 'Port', false)
    const addr = address ?? (this.family === 6 ? '::1' : '127.0.0.1')
    if (typeof addr !== 'string') throw invalidArgType('address', 'of type string', addr)
    const key = `${addr}|${port}`
    let d = this.destCache.get(key)
    if (!d) {
      validateIpOfFamily(addr, this.family, 'address')
      const r = this.live().parseDest(addr, port)
      if (typeof r === 'number') throw errnoException(r, 'sendmmsg', addr, port)
      if (this.destCache.size > 256) this.destCache.clear()
      this.destCache.set(key, r)
      d = r
    }
    return d
  }

  /**
   * Sends one datagram. Returns false when it was queued behind a full kernel
   * buffer (then `'drain'` follows), like `net.Socket.write`.
   * Errors go to `cb` if given, else to `'error'`.
   * @example
   * link.send(Buffer.from('ping'), 14550, '127.0.0.1')
   */
  send(data: Uint8Array, port?: number, address?: string, cb?: SendCallback): boolean {
    if (!(data instanceof Uint8Array)) throw invalidArgType('data', 'an instance of Buffer or Uint8Array', data)
    return this.enqueue({ data, next: 0, count: 1, dest: this.dest(port, address), address, port, gso: 0, cb, firstError: null })
  }

  /**
   * Sends many datagrams with one `sendmmsg` per 64 messages; with `gso`,
   * runs of equal-size datagrams go out as UDP GSO super-packets (one kernel
   * traversal for up to 64 datagrams). No datagram is skipped silently: one
   * that fails is reported (its `index` in the error) and the rest still go.
   */
  sendBatch(datagrams: Uint8Array[], opts: { port?: number; address?: string; gso?: boolean } = {}, cb?: SendCallback): boolean {
    if (!Array.isArray(datagrams)) throw invalidArgType('datagrams', 'an Array of Uint8Array', datagrams)
    for (let i = 0; i < datagrams.length; i++)
      if (!(datagrams[i] instanceof Uint8Array)) throw invalidArgType(`datagrams[${i}]`, 'an instance of Uint8Array', datagrams[i])
    if (datagrams.length === 0) {
      if (cb) process.nextTick(cb, null)
      return true
    }
    const gso = opts.gso && datagrams.length > 1 ? datagrams[0].length : 0
    return this.enqueue({
      data: datagrams,
      next: 0,
      count: datagrams.length,
      dest: this.dest(opts.port, opts.address),
      address: opts.address,
      port: opts.port,
      gso,
      cb,
      firstError: null,
    })
  }

  private enqueue(p: PendingSend): boolean {
    this.live()
    if (this.pending.length === 0) this.run(p)
    if (p.next < p.count) {
      this.pending.push(p)
      this.pendingCount += p.count - p.next
      this.armWritable()
      return false
    }
    this.finish(p)
    return true
  }

  /** Sends as much of `p` as the kernel takes now; stops only on EAGAIN. */
  private run(p: PendingSend): void {
    const sock = this.sock
    if (!sock) return
    const out = this.out
    while (p.next < p.count) {
      sock.send(p.data, p.next, p.count - p.next, p.dest, p.gso, out)
      p.next += out[0]
      this.txCount += out[3]
      const errno = out[1]
      if (errno === 0) break
      if (errno === EAGAIN) return
      // A datagram the kernel refused (EMSGSIZE, ENETUNREACH, ...): report it
      // with its index and go on with the next one.
      const addr = p.address ?? (p.dest ? undefined : this.remoteOrUndefined())
      const err = errnoException(-errno, 'sendmmsg', addr ?? (p.port !== undefined ? (this.family === 6 ? '::1' : '127.0.0.1') : undefined), p.port)
      if (Array.isArray(p.data)) err.index = p.next
      p.firstError ??= err
      if (!p.cb) process.nextTick(() => this.emit('error', err))
      p.next += Math.max(1, out[2])
    }
  }

  private remoteOrUndefined(): string | undefined {
    const r = this.sock?.remoteAddress()
    return Array.isArray(r) ? r[0] : undefined
  }

  private finish(p: PendingSend): void {
    if (p.cb) process.nextTick(p.cb, p.firstError)
  }

  private armWritable(): void {
    if (this.waitingWritable || !this.sock) return
    this.waitingWritable = true
    this.sock.watchWritable()
  }

  private flush(): void {
    while (this.pending.length > 0 && this.sock) {
      const p = this.pending[0]
      const before = p.next
      this.run(p)
      this.pendingCount -= p.next - before
      if (p.next < p.count) {
        this.armWritable()
        return
      }
      this.pending.shift()
      this.finish(p)
    }
    if (this.sock) this.emit('drain')
  }

  /** Joins a multicast group, optionally on a named interface. */
  addMembership(group: string, iface = ''): void {
    validateString(group, 'multicastAddress')
    this.check(this.live().membership('join', group, iface), 'setsockopt', group)
  }
  dropMembership(group: string, iface = ''): void {
    validateString(group, 'multicastAddress')
    this.check(this.live().membership('leave', group, iface), 'setsockopt', group)
  }
  /** Source-specific multicast join (IGMPv3 / MLDv2). */
  addSourceSpecificMembership(source: string, group: string, iface = ''): void {
    validateString(source, 'sourceAddress')
    validateString(group, 'groupAddress')
    this.check(this.live().membership('join', group, iface, source), 'setsockopt', group)
  }
  dropSourceSpecificMembership(source: string, group: string, iface = ''): void {
    validateString(source, 'sourceAddress')
    validateString(group, 'groupAddress')
    this.check(this.live().membership('leave', group, iface, source), 'setsockopt', group)
  }
  setMulticastInterface(iface: string): void {
    validateString(iface, 'interfaceName')
    this.check(this.live().membership('interface', '', iface), 'setsockopt', iface)
  }
  setBroadcast(on: boolean): void {
    validateBool(on, 'flag')
    this.check(this.live().setOption('broadcast', on ? 1 : 0), 'setsockopt')
  }
  setTTL(ttl: number): void {
    validateInt(ttl, 'ttl', 1, 255)
    this.check(this.live().setOption('ttl', ttl), 'setsockopt')
  }
  setMulticastTTL(ttl: number): void {
    validateInt(ttl, 'ttl', 0, 255)
    this.check(this.live().setOption('multicastTtl', ttl), 'setsockopt')
  }
  setMulticastLoopback(on: boolean): void {
    validateBool(on, 'flag')
    this.check(this.live().setOption('multicastLoop', on ? 1 : 0), 'setsockopt')
  }
  setDSCP(dscp: number): void {
    validateInt(dscp, 'dscp', 0, 63)
    this.check(this.live().setOption('dscp', dscp), 'setsockopt')
  }
  getDSCP(): number {
    return this.get('dscp')
  }
  /** Effective kernel receive buffer (the kernel reports twice what was asked, for its bookkeeping). */
  getRecvBufferSize(): number {
    return this.get('rcvBuf')
  }
  getSendBufferSize(): number {
    return this.get('sndBuf')
  }
  setRecvBufferSize(bytes: number): void {
    validateInt(bytes, 'size', 1, 0x7fffffff)
    this.check(this.live().setOption('rcvBuf', bytes), 'setsockopt')
  }
  setSendBufferSize(bytes: number): void {
    validateInt(bytes, 'size', 1, 0x7fffffff)
    this.check(this.live().setOption('sndBuf', bytes), 'setsockopt')
  }
  /** Reads a socket option by name (`rcvBuf`, `sndBuf`, `ttl`, `multicastTtl`, `multicastLoop`, `dscp`, `broadcast`, `reusePort`, `reuseAddr`, `gro`). */
  get(name: string): number {
    const r = this.live().getOption(name)
    if (r < 0) throw errnoException(r, 'getsockopt')
    return r
  }
  /** Spin on the I/O thread for `us` microseconds before sleeping (0 turns it off). */
  setBusyPoll(us: number): void {
    validateInt(us, 'us', 0, 1_000_000)
    this.live().setBusyPoll(us)
  }

  /** Counters of this link. */
  stats(): UdpLinkStats {
    const s = this.statsBuf
    if (this.sock) this.sock.stats(s)
    return {
      rxDatagrams: s[0],
      rxBytes: s[1],
      rxTruncated: s[2],
      rxErrors: s[3],
      kernelDrops: s[4],
      onbusDrops: this.onbusDrops,
      rxBatches: s[5],
      rxPauses: s[6],
      groSuperPackets: s[12],
      ringInUse: s[13],
      txDatagrams: s[7],
      txBytes: s[8],
      txErrors: s[9],
      txCalls: s[10],
      txEagain: s[11],
      txQueued: this.pendingCount,
    }
  }

  /** The socket's file descriptor (-1 once closed); for diagnostics. */
  get fd(): number {
    return this.sock ? this.sock.fd() : -1
  }

  get closed(): boolean {
    return this.sock === null
  }

  /** Keep the process alive while this link is open (the default). */
  ref(): this {
    if (this.sock && !this.refed) {
      this.refed = true
      this.sock.ref()
    }
    return this
  }

  /** Let the process exit even though this link is open. */
  unref(): this {
    if (this.sock && this.refed) {
      this.refed = false
      this.sock.unref()
    }
    return this
  }

  /**
   * Closes the link. Idempotent; safe inside a handler. `'close'` is emitted
   * on the next tick; queued sends fail with ERR_SOCKET_DGRAM_NOT_RUNNING.
   */
  close(cb?: () => void): this {
    if (cb) validateFunction(cb, 'callback')
    if (!this.sock) {
      if (cb) {
        if (this.closing) this.once('close', cb)
        else process.nextTick(cb)
      }
      return this
    }
    const sock = this.sock
    this.sock = null
    this.closing = true
    sock.stats(this.statsBuf) // nothing more will change; keep the last figures readable
    sock.close()
    this.abortCleanup?.()
    const pending = this.pending
    this.pending = []
    this.pendingCount = 0
    for (const p of pending) if (p.cb) process.nextTick(p.cb, notRunning())
    for (const q of this.iterators) q.end()
    this.iterators.clear()
    if (cb) this.once('close', cb)
    process.nextTick(() => {
      this.closing = false
      this.emit('close')
    })
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.sock && !this.closing) return
    await new Promise<void>((resolve) => this.close(() => resolve()))
  }

  /**
   * Iterates received datagrams as `{ data, info }`. The queue is bounded by
   * `iteratorHighWaterMark`; beyond it the oldest entry is dropped and counted
   * in `stats().onbusDrops`. Ends when the link closes.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<UdpMessage> {
    if (!this.batch) throw invalidArgValue('receive', false, 'is false: this link does not receive')
    const q: AsyncQueue<UdpMessage> = new AsyncQueue(this.iterHwm, () => this.iterators.delete(q))
    if (this.sock) this.iterators.add(q)
    else q.end()
    return q
  }

  /** Like the async iterator, but ends when `signal` aborts. */
  messages(opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<UdpMessage> {
    const it = this[Symbol.asyncIterator]() as AsyncQueue<UdpMessage>
    opts.signal?.addEventListener('abort', () => it.end(), { once: true })
    return it
  }
}

function align8(n: number): number {
  return (n + 7) & ~7
}

function resolveFamily(opts: UdpLinkOptions): 4 | 6 {
  if (opts.family !== undefined) {
    if (opts.family !== 4 && opts.family !== 6) throw invalidArgValue('options.family', opts.family, 'must be 4 or 6')
    return opts.family
  }
  if (opts.address !== undefined && isIP(opts.address.split('%')[0]) === 6) return 6
  return 4
}

/** Validates options before anything reaches native code. */
export function validateUdpOptions(opts: UdpLinkOptions): void {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  if (opts.address !== undefined) {
    validateString(opts.address, 'options.address')
    validateIpOfFamily(opts.address, resolveFamily(opts), 'options.address')
  }
  if (opts.port !== undefined) validatePort(opts.port, 'options.port')
  for (const k of ['reuseAddr', 'reusePort', 'ipv6Only', 'broadcast', 'multicastLoopback', 'timestamps', 'txTimestamps', 'gro', 'receive'] as const)
    if (opts[k] !== undefined) validateBool(opts[k], `options.${k}`)
  if (opts.rcvBuf !== undefined) validateInt(opts.rcvBuf, 'options.rcvBuf', 1, 0x7fffffff)
  if (opts.sndBuf !== undefined) validateInt(opts.sndBuf, 'options.sndBuf', 1, 0x7fffffff)
  if (opts.ttl !== undefined) validateInt(opts.ttl, 'options.ttl', 1, 255)
  if (opts.multicastTtl !== undefined) validateInt(opts.multicastTtl, 'options.multicastTtl', 0, 255)
  if (opts.dscp !== undefined) validateInt(opts.dscp, 'options.dscp', 0, 63)
  if (opts.maxDatagramSize !== undefined) validateInt(opts.maxDatagramSize, 'options.maxDatagramSize', 1, 65535)
  if (opts.rxSlots !== undefined) validateInt(opts.rxSlots, 'options.rxSlots', 1, 1 << 20)
  if (opts.busyPollUs !== undefined) validateInt(opts.busyPollUs, 'options.busyPollUs', 0, 1_000_000)
  if (opts.iteratorHighWaterMark !== undefined) validateInt(opts.iteratorHighWaterMark, 'options.iteratorHighWaterMark', 1, 1 << 24)
  if (opts.multicastInterface !== undefined) validateString(opts.multicastInterface, 'options.multicastInterface')
  if (opts.device !== undefined) validateString(opts.device, 'options.device')
  if (opts.connect !== undefined) {
    if (opts.connect === null || typeof opts.connect !== 'object') throw invalidArgType('options.connect', 'of type object', opts.connect)
    validateString(opts.connect.address, 'options.connect.address')
    validateIpOfFamily(opts.connect.address, resolveFamily(opts), 'options.connect.address')
    validatePort(opts.connect.port, 'options.connect.port', false)
  }
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal)
  const slotBytes = (opts.gro ? 65536 : opts.maxDatagramSize ?? 2048) * nextPow2(opts.rxSlots ?? 4096)
  if (slotBytes > 2 ** 31) throw outOfRange('options.rxSlots', `small enough that rxSlots × slot size ≤ 2 GiB`, opts.rxSlots)
}

/**
 * Creates a bound UDP link. Binding is synchronous: errors (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL, …) are thrown Node-shaped.
 * @example
 * const link = createUdpLink({ port: 0 })
 * link.onBatch((b) => console.log(b.length, 'datagrams'))
 * console.log(link.address().port)
 */
export function createUdpLink(opts: UdpLinkOptions = {}): UdpLink {
  validateUdpOptions(opts)
  return new UdpLink(opts)
}

/** Throws ERR_INVALID_ARG_VALUE unless `ip` is a numeric address of `family` (a scope suffix `%eth0` allowed). */
function validateIpOfFamily(ip: string, family: 4 | 6, name: string): void {
  if (isIP(ip.split('%')[0]) !== family) throw invalidArgValue(name, ip, `must be a numeric IPv${family} address (this link is family ${family}; resolve names first)`)
}
