/**
 * The stream link: TCP, Unix stream/seqpacket and serial links share it.
 *
 * Shaped like Node's `net.Socket`: `write()` returns false above
 * `highWaterMark` and `'drain'` follows; `end()`, `'end'`, `'close'`,
 * `'error'`, `ref()`/`unref()`, `options.signal`, `Symbol.asyncDispose`,
 * an async iterator. Added: a zero-copy batch API (`onBatch`) over a native
 * receive ring, native framing with `'frameError'` events, kernel receive
 * stamps, and for client links automatic reconnection with exponential
 * backoff and jitter (`'connect'`, `'disconnect'`, `'reconnecting'`).
 */
import { EventEmitter } from 'node:events'
import { closeSync, fstatSync, openSync } from 'node:fs'
import { streamNative, StreamEvent, StreamKind, type NativeStreamSocket } from '../../../bindings/index.js'
import { errnoException, invalidArgType, invalidArgValue, onbusError, type OnbusSystemError } from '../../errors.js'
import { nextPow2, validateBool, validateFunction, validateInt } from '../../util/validate.js'
import { backoffDelay, parseReconnect, type Backoff, type ReconnectOptions } from './backoff.js'
import { StreamBatch, STREAM_RECORD_WORDS } from './batch.js'
import { framerFactory, type FramerFactory, type FramingOptions } from './framing.js'
import { AsyncQueue } from '../../util/async-queue.js'
import { whenAborted } from '../../util/abort.js'

const EAGAIN = 11
const ENODATA = 61
const ETIMEDOUT = 110
const NS = 1_000_000_000n
const MIN_READ = 16 * 1024

/** Options shared by every stream link. */
export interface StreamLinkOptions {
  /** How bytes become records (default `'raw'`). */
  framing?: FramingOptions
  /** Largest frame (framed links) or message (seqpacket) kept, bytes. Default 65,536. Larger frames raise `'frameError'` and are skipped. */
  maxFrameSize?: number
  /** Receive ring size in bytes (rounded up to a power of two, and to at least two maximum frames on framed links; default 1 MiB). What a JavaScript stall can absorb before TCP pushes back on the sender. */
  rxBufferSize?: number
  /** Record slots (rounded up to a power of two; default 4096). */
  rxRecords?: number
  /** `write()` returns false once this many bytes wait to be written (default 65,536). */
  highWaterMark?: number
  /** Kernel receive stamps on sockets (default true). */
  timestamps?: boolean
  /** Closes the link when aborted. */
  signal?: AbortSignal
  /** Bound of the async iterator's queue; beyond it the oldest record is dropped and counted. Default 4096. */
  iteratorHighWaterMark?: number
  /** Spin the I/O thread this many microseconds before it sleeps (latency-bound links; costs a core while spinning). */
  busyPollUs?: number
}

/** Options of client links that dial (TCP, Unix, serial). */
export interface ClientLinkOptions extends StreamLinkOptions {
  /** Reconnect after a failed connect or a lost connection (default false). */
  reconnect?: boolean | ReconnectOptions
  /** Give up one connect attempt after this many ms with ETIMEDOUT (default 10,000). */
  connectTimeout?: number
}

/** Per-record information of the convenience API. */
export interface StreamDataInfo {
  /** Receive time, ns, CLOCK_REALTIME. */
  rxTime: bigint
  rxClock: 'realtime'
  /** True when `rxTime` is the kernel's stamp; false when taken by the I/O thread on wake-up (ttys, sockets without stamps). */
  kernelStamp: boolean
  /** Framer tag (0 for built-in framers). */
  tag: number
  /** Header length of a frame (payload starts here). */
  payloadOffset: number
  /** Seqpacket: the message was longer than `maxFrameSize` and was cut. */
  truncated: boolean
}

export interface StreamMessage {
  data: Buffer
  info: StreamDataInfo
}

/** Link state. */
export type StreamLinkState = 'connecting' | 'connected' | 'reconnecting' | 'closed'

/** `'disconnect'` event payload. */
export interface DisconnectInfo {
  /** Why: the peer closed (`ERR_ONBUS_PEER_CLOSED`), a read/write error (`ECONNRESET`, `EPIPE`, `ETIMEDOUT`...), or a device that went away. */
  reason: Error
}

/** `'reconnecting'` event payload. */
export interface ReconnectingInfo {
  /** Retry number (1 = first retry). */
  attempt: number
  /** Delay before it, ms. */
  delay: number
  /** The error of the failed attempt or the lost connection. */
  error: Error
}

/** Counters of one link (cumulative over reconnections). */
export interface StreamLinkStats {
  rxBytes: number
  rxReads: number
  /** Chunks (raw) or frames delivered. */
  rxRecords: number
  /** Times the receive ring was full and reading paused (TCP then pushes back). */
  rxPauses: number
  /** Bytes dropped by the framer: garbage before a frame start, oversize and bad frames. */
  discardedBytes: number
  /** Frames larger than `maxFrameSize`. */
  oversizeFrames: number
  /** Bytes skipped while resynchronising on a frame start. */
  garbageBytes: number
  /** Frames with an impossible header. */
  badFrames: number
  /** Reads that carried a kernel receive stamp. */
  kernelStamps: number
  /** Partial frames moved to the ring's start (the one bounded copy on the receive path). */
  ringWraps: number
  ringWrapBytes: number
  /** Times reading restarted at the ring's start because everything had been released (keeps the bytes being written cache-hot). */
  ringRewinds: number
  txBytes: number
  txCalls: number
  txEagain: number
  /** Bytes waiting to be written. */
  txQueued: number
  /** Records dropped inside onbus (async-iterator overflow). */
  onbusDrops: number
  connects: number
  disconnects: number
}

export type StreamBatchHandler = (batch: StreamBatch) => void
type WriteCallback = (err: Error | null) => void

/**
 * How a client link reaches its peer; one implementation per transport.
 * @internal
 */
export interface Endpoint<T = unknown> {
  /** Kind of native descriptor (TCP links say Tcp4 whatever the family). */
  readonly kind: StreamKind
  /** Asynchronous preparation of one attempt: name resolution, opening a device. */
  resolve(signal: AbortSignal): Promise<T>
  /** Creates (or adopts) the descriptor of `sock`: 0 or -errno; `syscall` names the failed call. */
  open(sock: NativeStreamSocket, target: T): number
  /** The syscall named when open() fails. */
  readonly openSyscall: string
  /** Starts connecting: 0 connected, 1 in progress, or -errno. */
  connect(sock: NativeStreamSocket, target: T): number
  /** Address/port (or path) to name in errors. */
  where(target: T | undefined): { address?: string; port?: number }
  /** The error for a peer that closed (EOF), e.g. a serial device that was unplugged. */
  endReason?(target: T | undefined): Error
  /** Releases what resolve() acquired, when the attempt failed or the connection ended. */
  release?(target: T): void
}

/** @internal */
export interface AdoptedConnection {
  fd: number
  kind: StreamKind
}

/**
 * A stream link. Create one with `createTcpLink`, `createUnixLink`,
 * `createSerialLink`, or receive one from a server's `'connection'` event.
 *
 * Events: `'connect'`, `'data'` (data: Buffer, info: StreamDataInfo),
 * `'frameError'` (err: Error with `code`, `declared`, `max`), `'drain'`,
 * `'end'` (the peer closed its side), `'disconnect'` ({ reason }),
 * `'reconnecting'` ({ attempt, delay, error }), `'error'`, `'close'`.
 */
export class StreamLink extends EventEmitter {
  private sock: NativeStreamSocket | null = null
  private stateValue: StreamLinkState = 'connecting'
  private readonly endpoint: Endpoint | null
  protected target: unknown = undefined
  private readonly backoff: Backoff | null
  private readonly connectTimeout: number
  private readonly framer: FramerFactory
  /** The framing this link was created with. */
  readonly framing: FramingOptions
  private readonly busyPollUs: number
  private readonly maxFrame: number
  private readonly timestamps: boolean
  private readonly ring: ArrayBuffer
  private readonly meta: ArrayBuffer
  private readonly metaCap: number
  private readonly batch: StreamBatch
  private readonly hwm: number
  private readonly iterHwm: number
  private handlers: StreamBatchHandler[] = []
  private iterators = new Set<AsyncQueue<StreamMessage>>()
  private refed = true
  private attempt = 0
  private retryTimer: NodeJS.Timeout | null = null
  private attemptAbort: AbortController | null = null
  private attemptTimer: NodeJS.Timeout | null = null
  private connectWaiter: ((errno: number) => void) | null = null
  /** An end or error that arrived with the connect event, before the attempt finished. */
  private pendingLoss: { reason: Error; peerEnded: boolean } | null = null
  private abortCleanup: (() => void) | undefined
  private closing = false
  private ending = false
  private corked = 0
  private waitingWritable = false
  private needDrain = false
  private qbufs: (Uint8Array | FileSegment)[] = []
  private qcbs: (WriteCallback | undefined)[] = []
  private qhead = 0
  private qoff = 0
  private queued = 0
  private readonly out = new Float64Array(3)
  private readonly statsBuf = new Float64Array(16)
  private readonly totals = new Float64Array(16)
  private onbusDrops = 0
  private connects = 0
  private disconnects = 0
  private sockOptions = new Map<string, number>()
  /** Kind of the current descriptor. */
  readonly kind: StreamKind

  /** @internal use the create* functions */
  constructor(opts: ClientLinkOptions, endpoint: Endpoint | null, adopted?: AdoptedConnection) {
    super()
    this.endpoint = endpoint
    this.kind = endpoint ? endpoint.kind : adopted!.kind
    this.backoff = endpoint ? parseReconnect(opts.reconnect) : null
    this.connectTimeout = opts.connectTimeout ?? 10_000
    this.framer = framerFactory(opts.framing)
    this.framing = opts.framing ?? 'raw'
    this.busyPollUs = opts.busyPollUs ?? 0
    this.maxFrame = opts.maxFrameSize ?? 65536
    this.timestamps = opts.timestamps ?? true
    this.hwm = opts.highWaterMark ?? 65536
    this.iterHwm = opts.iteratorHighWaterMark ?? 4096
    const framed = opts.framing !== undefined && opts.framing !== 'raw'
    const minRing = framed || this.kind === StreamKind.Seqpacket ? 2 * (this.maxFrame + MIN_READ) : 4096
    const ringSize = nextPow2(Math.max(opts.rxBufferSize ?? 1 << 20, minRing))
    this.metaCap = nextPow2(opts.rxRecords ?? 4096)
    this.ring = new ArrayBuffer(ringSize)
    this.meta = new ArrayBuffer(this.metaCap * STREAM_RECORD_WORDS * 4)
    this.batch = new StreamBatch(this.ring, this.meta, this.metaCap)
    if (adopted) {
      const sock = this.newSocket()
      const r = sock.adopt(adopted.fd, adopted.kind)
      if (r < 0) {
        sock.close()
        throw errnoException(r, 'accept')
      }
      this.setupReceive(sock)
      this.stateValue = 'connected'
      this.connects++
    } else {
      process.nextTick(() => this.dial())
    }
    if (opts.signal) this.abortCleanup = whenAborted(opts.signal, () => this.close(), process.nextTick)
  }

  /** `'connecting'`, `'connected'`, `'reconnecting'` or `'closed'`. */
  get state(): StreamLinkState {
    return this.stateValue
  }

  /** True once closed. */
  get closed(): boolean {
    return this.stateValue === 'closed'
  }

  /** Like `net.Socket#pending`: not connected yet. */
  get pending(): boolean {
    return this.stateValue !== 'connected'
  }

  // -- connection management ------------------------------------------------

  private newSocket(): NativeStreamSocket {
    const sock: NativeStreamSocket = new streamNative.StreamSocket(
      (start, count) => this.dispatch(sock, start, count),
      (kind, a, b) => this.onNativeEvent(sock, kind, a ?? 0, b ?? 0),
    )
    this.sock = sock
    if (this.refed) sock.ref()
    return sock
  }

  private setupReceive(sock: NativeStreamSocket): void {
    const spec = this.framer()
    if (spec !== null) this.check(sock.setFramer(spec), 'setFramer')
    if (this.timestamps && this.kind !== StreamKind.Tty) sock.setOption('timestamping', 1)
    for (const [name, v] of this.sockOptions) sock.setOption(name, v)
    this.check(sock.startReceive(this.ring, this.meta, this.metaCap, this.maxFrame, MIN_READ), 'startReceive')
    if (this.busyPollUs > 0) sock.setBusyPoll(this.busyPollUs)
  }

  private check(r: number, syscall: string): void {
    if (r < 0) throw errnoException(r, syscall)
  }

  private async dial(): Promise<void> {
    if (this.stateValue === 'closed' || !this.endpoint) return
    const ep = this.endpoint
    const ac = new AbortController()
    this.attemptAbort = ac
    let target: unknown
    let sock: NativeStreamSocket | null = null
    // One promise that rejects on the attempt's deadline or on close(), so
    // neither a hanging name lookup nor a silent peer can keep the link (or
    // the process) waiting.
    const stop = new Promise<never>((_, reject) => {
      this.attemptTimer = setTimeout(() => {
        const w = ep.where(target)
        reject(errnoException(-ETIMEDOUT, 'connect', w.address, w.port, `no answer within ${this.connectTimeout} ms`))
        ac.abort()
      }, this.connectTimeout)
      if (!this.refed) this.attemptTimer.unref()
      ac.signal.addEventListener('abort', () => reject(onbusError('ERR_ONBUS_ABORTED', 'connect attempt aborted')), { once: true })
    })
    stop.catch(() => {})
    try {
      target = await Promise.race([ep.resolve(ac.signal), stop])
      this.target = target
      sock = this.newSocket()
      let r = ep.open(sock, target)
      if (r < 0) {
        const w = ep.where(target)
        throw errnoException(r, ep.openSyscall, w.address, w.port)
      }
      this.setupReceive(sock)
      r = ep.connect(sock, target)
      if (r === 1) {
        const connected = new Promise<number>((resolve) => (this.connectWaiter = resolve))
        r = await Promise.race([connected, stop])
        this.connectWaiter = null
      }
      if (r < 0) {
        const w = ep.where(target)
        throw errnoException(r, 'connect', w.address, w.port)
      }
    } catch (err) {
      this.connectWaiter = null
      this.pendingLoss = null
      this.clearAttempt(ac)
      if (sock) {
        this.snapshot(sock)
        sock.close()
        if (this.sock === sock) this.sock = null
      }
      if (target !== undefined) ep.release?.(target)
      if (this.state === 'closed') return
      this.retryOrFail(err as Error)
      return
    }
    this.clearAttempt(ac)
    if (this.state === 'closed' || this.sock !== sock) return
    this.stateValue = 'connected'
    this.attempt = 0
    this.connects++
    this.emit('connect')
    const loss = this.pendingLoss
    this.pendingLoss = null
    if (loss && this.sock === sock) this.lost(loss.reason, loss.peerEnded)
    else if (this.state === 'connected') this.flush()
  }

  private clearAttempt(ac: AbortController): void {
    if (this.attemptAbort !== ac) return
    this.attemptAbort = null
    if (this.attemptTimer) clearTimeout(this.attemptTimer)
    this.attemptTimer = null
  }

  private retryOrFail(err: Error): void {
    const b = this.backoff
    if (b && this.attempt < b.maxAttempts) {
      this.attempt++
      const delay = backoffDelay(b, this.attempt)
      this.stateValue = 'reconnecting'
      this.emit('reconnecting', { attempt: this.attempt, delay, error: err } satisfies ReconnectingInfo)
      if (this.state !== 'reconnecting') return
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null
        if (this.stateValue !== 'reconnecting') return
        this.stateValue = 'connecting'
        this.dial()
      }, delay)
      if (!this.refed) this.retryTimer.unref()
      return
    }
    this.fail(err)
  }

  private fail(err: Error): void {
    this.failQueued(err)
    if (this.listenerCount('error') > 0 || !this.closing) this.emit('error', err)
    this.close()
  }

  /** The established connection is gone: tell, then reconnect or close. */
  private lost(reason: Error, peerEnded: boolean): void {
    const sock = this.sock
    if (!sock) return
    if (this.stateValue === 'connecting') {
      this.pendingLoss ??= { reason, peerEnded }
      return
    }
    if (this.stateValue !== 'connected') return
    this.snapshot(sock)
    sock.close()
    this.sock = null
    this.waitingWritable = false
    if (this.target !== undefined) this.endpoint?.release?.(this.target)
    // A write cut in the middle must not continue on the next connection: a
    // frame would be split across two streams. Fail it; later writes stay.
    if (this.qoff > 0 && this.qhead < this.qbufs.length) {
      const cb = this.qcbs[this.qhead]
      const e = this.qbufs[this.qhead]
      this.queued -= e.length - this.qoff
      if (e instanceof FileSegment) e.done()
      this.qhead++
      this.qoff = 0
      if (cb) process.nextTick(cb, reason)
    }
    this.disconnects++
    this.stateValue = 'reconnecting'
    if (peerEnded) this.emit('end')
    this.emit('disconnect', { reason } satisfies DisconnectInfo)
    if (this.state === 'closed') return
    if (this.backoff && !this.ending) {
      this.retryOrFail(reason)
      return
    }
    this.failQueued(reason)
    if (!peerEnded && !this.ending) {
      if (this.listenerCount('error') > 0) this.emit('error', reason)
    }
    this.close()
  }

  private onNativeEvent(sock: NativeStreamSocket, kind: StreamEvent, a: number, b: number): void {
    if (sock !== this.sock) return
    switch (kind) {
      case StreamEvent.Connect:
        this.connectWaiter?.(a)
        return
      case StreamEvent.Writable:
        this.waitingWritable = false
        this.flush()
        return
      case StreamEvent.End: {
        const reason = this.endpoint?.endReason?.(this.target) ?? onbusError('ERR_ONBUS_PEER_CLOSED', 'The peer closed the connection')
        this.lost(reason, true)
        return
      }
      case StreamEvent.Error: {
        const w = this.endpoint?.where(this.target) ?? this.peerWhere()
        this.lost(errnoException(a, 'read', w.address, w.port), false)
        return
      }
      case StreamEvent.FrameError: {
        const tooLarge = a === 2
        const err = onbusError(
          tooLarge ? 'ERR_ONBUS_FRAME_TOO_LARGE' : 'ERR_ONBUS_BAD_FRAME',
          tooLarge ? `A frame of ${b} bytes exceeds maxFrameSize (${this.maxFrame}); skipped, framing resynchronised` : `A frame with an impossible header (declared size ${b}) was dropped`,
        ) as Error & { code: string; declared: number; max: number }
        err.declared = b
        err.max = this.maxFrame
        this.emit('frameError', err)
        return
      }
    }
  }

  private peerWhere(): { address?: string; port?: number } {
    const r = this.sock?.remoteAddress()
    return Array.isArray(r) ? { address: r[0], port: r[1] || undefined } : {}
  }

  // -- receive --------------------------------------------------------------

  /**
   * Registers a batch handler: called once per batch with views over the
   * receive ring (valid until it returns). Returns a function that removes it.
   * @example
   * link.onBatch((b) => { for (let i = 0; i < b.length; i++) parse(b.data, b.offset(i), b.len(i)) })
   */
  onBatch(handler: StreamBatchHandler): () => void {
    validateFunction(handler, 'handler')
    this.handlers = [...this.handlers, handler]
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler)
    }
  }

  private dispatch(sock: NativeStreamSocket, start: number, count: number): void {
    if (sock !== this.sock) return
    const batch = this.batch
    batch._open(start, count)
    try {
      const hs = this.handlers
      for (let k = 0; k < hs.length && this.sock === sock; k++) hs[k](batch)
      if (this.sock === sock && (this.listenerCount('data') > 0 || this.iterators.size > 0)) this.deliver(batch, sock)
    } finally {
      batch._close()
    }
  }

  private deliver(batch: StreamBatch, sock: NativeStreamSocket): void {
    const emit = this.listenerCount('data') > 0
    for (let i = 0; i < batch.length && this.sock === sock; i++) {
      const msg: StreamMessage = {
        data: batch.copy(i),
        info: {
          rxTime: BigInt(batch.rxTimeSec(i)) * NS + BigInt(batch.rxTimeNsec(i)),
          rxClock: 'realtime',
          kernelStamp: batch.kernelStamp(i),
          tag: batch.tag(i),
          payloadOffset: batch.payloadOffset(i),
          truncated: batch.truncated(i),
        },
      }
      for (const q of this.iterators) this.onbusDrops += q.push(msg)
      if (emit) this.emit('data', msg.data, msg.info)
    }
  }

  /** Iterates received records as `{ data, info }`; ends when the link closes. */
  [Symbol.asyncIterator](): AsyncIterableIterator<StreamMessage> {
    const q: AsyncQueue<StreamMessage> = new AsyncQueue(this.iterHwm, () => this.iterators.delete(q))
    if (this.stateValue !== 'closed') this.iterators.add(q)
    else q.end()
    return q
  }

  // -- send -----------------------------------------------------------------

  /**
   * Writes `data` (strings as UTF-8). Returns false when `highWaterMark`
   * bytes or more wait in the queue; `'drain'` follows when it is empty.
   * Buffers are referenced, not copied, until the kernel took them: do not
   * modify one before its callback ran. While the link is not connected,
   * writes wait for the connection.
   * @example
   * if (!link.write(frame)) await once(link, 'drain')
   */
  write(data: Uint8Array | string, cb?: WriteCallback): boolean {
    if (cb !== undefined) validateFunction(cb, 'callback')
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    if (!(buf instanceof Uint8Array)) throw invalidArgType('data', 'a string, Buffer or Uint8Array', data)
    if (this.stateValue === 'closed' || this.ending) {
      const err = onbusError('ERR_STREAM_WRITE_AFTER_END', this.ending ? 'write after end' : 'write after the link closed')
      if (cb) process.nextTick(cb, err)
      else process.nextTick(() => this.emit('error', err))
      return false
    }
    this.qbufs.push(buf)
    this.qcbs.push(cb)
    this.queued += buf.length
    if (this.corked === 0 && !this.waitingWritable && this.stateValue === 'connected') this.flush()
    const ok = this.queued < this.hwm
    if (!ok) this.needDrain = true
    return ok
  }

  /**
   * Sends `length` bytes of a file from `offset` (default: all of it) with
   * sendfile(2): page-cache pages go to the socket without a copy through
   * user space. Queued in order with `write()`s; counts toward
   * `highWaterMark` like them. `file` is a path (opened and closed here) or
   * a descriptor (left open). Not on seqpacket links.
   * @example
   * link.write(header)
   * link.sendFile('/data/frame-0001.jpg', {}, (err) => ...)
   */
  sendFile(file: string | number, opts: { offset?: number; length?: number } = {}, cb?: WriteCallback): boolean {
    if (cb !== undefined) validateFunction(cb, 'callback')
    if (this.kind === StreamKind.Seqpacket) throw onbusError('ERR_ONBUS_NOT_SUPPORTED', 'sendFile() sends a byte stream; a seqpacket link sends messages')
    const offset = opts.offset === undefined ? 0 : validateInt(opts.offset, 'options.offset', 0, Number.MAX_SAFE_INTEGER)
    let fd: number
    let own = false
    if (typeof file === 'string') {
      fd = openSync(file, 'r')
      own = true
    } else {
      fd = validateInt(file, 'file', 0, 2 ** 31 - 1)
    }
    let length: number
    try {
      length = opts.length === undefined ? fstatSync(fd).size - offset : validateInt(opts.length, 'options.length', 0, Number.MAX_SAFE_INTEGER)
      if (length < 0) throw invalidArgValue('options.offset', offset, 'is past the end of the file')
    } catch (err) {
      if (own) closeSync(fd)
      throw err
    }
    if (this.stateValue === 'closed' || this.ending) {
      if (own) closeSync(fd)
      const err = onbusError('ERR_STREAM_WRITE_AFTER_END', this.ending ? 'write after end' : 'write after the link closed')
      if (cb) process.nextTick(cb, err)
      else process.nextTick(() => this.emit('error', err))
      return false
    }
    this.qbufs.push(new FileSegment(fd, offset, length, own, typeof file === 'string' ? file : `descriptor ${fd}`))
    this.qcbs.push(cb)
    this.queued += length
    if (this.corked === 0 && !this.waitingWritable && this.stateValue === 'connected') this.flush()
    const ok = this.queued < this.hwm
    if (!ok) this.needDrain = true
    return ok
  }

  /** Writes several buffers; with the queue empty they go out in one gathered `writev`. */
  writev(chunks: (Uint8Array | string)[], cb?: WriteCallback): boolean {
    if (!Array.isArray(chunks)) throw invalidArgType('chunks', 'an Array', chunks)
    if (chunks.length === 0) {
      if (cb) process.nextTick(cb, null)
      return this.queued < this.hwm
    }
    this.cork()
    for (let i = 0; i < chunks.length; i++) this.write(chunks[i], i === chunks.length - 1 ? cb : undefined)
    this.uncork()
    // Judged after the gathered write: if it all went, 'drain' already fired.
    const ok = this.queued < this.hwm
    if (ok && this.queued === 0) this.needDrain = false
    return ok
  }

  /** Holds writes in the queue until `uncork()`, which sends them gathered. */
  cork(): void {
    this.corked++
  }

  uncork(): void {
    if (this.corked > 0 && --this.corked === 0 && this.stateValue === 'connected' && !this.waitingWritable) this.flush()
  }

  /** Bytes waiting to be written (like `writableLength`). */
  get writableLength(): number {
    return this.queued
  }

  get writableNeedDrain(): boolean {
    return this.needDrain
  }

  private flush(): void {
    const sock = this.sock
    if (!sock || this.stateValue !== 'connected') return
    const out = this.out
    while (this.qhead < this.qbufs.length && this.sock === sock) {
      const head = this.qbufs[this.qhead]
      if (head instanceof FileSegment) sock.sendFile(head.fd, head.offset + this.qoff, head.length - this.qoff, out)
      else sock.write(this.qbufs, this.qhead, this.qoff, out)
      this.advance(out[0])
      const errno = out[1]
      if (errno === 0) continue
      if (errno === ENODATA && head instanceof FileSegment) {
        // The file ended before the promised length: that segment fails, and
        // so does the link (the peer got fewer bytes than the stream implies).
        const w = this.endpoint?.where(this.target) ?? this.peerWhere()
        this.lost(errnoException(-errno, 'sendfile', w.address, w.port, `${head.describe()} is shorter than the length asked`), false)
        return
      }
      if (errno === EAGAIN) {
        this.waitingWritable = true
        sock.watchWritable()
        return
      }
      const w = this.endpoint?.where(this.target) ?? this.peerWhere()
      this.lost(errnoException(-errno, 'write', w.address, w.port), false)
      return
    }
    if (this.qhead >= this.qbufs.length) {
      this.qbufs = []
      this.qcbs = []
      this.qhead = 0
      this.qoff = 0
      this.queued = 0
      if (this.ending) this.finishEnd()
      if (this.needDrain) {
        this.needDrain = false
        this.emit('drain')
      }
    }
  }

  private advance(bytes: number): void {
    this.queued -= bytes
    while (this.qhead < this.qbufs.length) {
      const rem = this.qbufs[this.qhead].length - this.qoff
      if (bytes < rem) {
        this.qoff += bytes
        return
      }
      bytes -= rem
      const cb = this.qcbs[this.qhead]
      const e = this.qbufs[this.qhead]
      if (e instanceof FileSegment) e.done()
      this.qbufs[this.qhead] = EMPTY
      this.qcbs[this.qhead] = undefined
      this.qhead++
      this.qoff = 0
      if (cb) process.nextTick(cb, null)
      if (bytes === 0 && (this.qhead >= this.qbufs.length || this.qbufs[this.qhead].length > 0)) break
    }
    if (this.qhead > 1024 && this.qhead * 2 > this.qbufs.length) {
      this.qbufs = this.qbufs.slice(this.qhead)
      this.qcbs = this.qcbs.slice(this.qhead)
      this.qhead = 0
    }
  }

  /**
   * Drops every write not yet handed to the kernel (their callbacks get
   * `ERR_ONBUS_WRITE_DISCARDED`) and returns how many bytes that was. For
   * protocols that resume by themselves after a reconnection (verified
   * transfers): by default writes made before a connection was lost are sent
   * on the next one.
   */
  discardQueue(): number {
    const n = this.queued
    this.failQueued(onbusError('ERR_ONBUS_WRITE_DISCARDED', 'The write was discarded before it reached the kernel'))
    return n
  }

  private failQueued(err: Error): void {
    for (let i = this.qhead; i < this.qbufs.length; i++) {
      const e = this.qbufs[i]
      if (e instanceof FileSegment) e.done()
    }
    const cbs = this.qcbs.slice(this.qhead)
    this.qbufs = []
    this.qcbs = []
    this.qhead = 0
    this.qoff = 0
    this.queued = 0
    for (const cb of cbs) if (cb) process.nextTick(cb, err)
  }

  /**
   * Half-closes: queued data goes out, then the write side is shut (FIN);
   * the link closes when the peer closes its side too. Writes after end fail.
   */
  end(data?: Uint8Array | string, cb?: () => void): this {
    if (data !== undefined) this.write(data)
    if (cb) this.once('close', cb)
    if (this.ending || this.stateValue === 'closed') return this
    this.ending = true
    if (this.stateValue !== 'connected') {
      this.close()
      return this
    }
    if (this.qhead >= this.qbufs.length) this.finishEnd()
    return this
  }

  private finishEnd(): void {
    const sock = this.sock
    if (!sock) return
    if (this.kind === StreamKind.Tty) {
      this.close()
      return
    }
    sock.shutdown()
  }

  // -- options --------------------------------------------------------------

  private setOpt(name: string, v: number): void {
    this.sockOptions.set(name, v)
    if (this.sock) {
      const r = this.sock.setOption(name, v)
      if (r < 0) throw errnoException(r, 'setsockopt')
    }
  }

  /** TCP_NODELAY (on by default for TCP links: control traffic is latency-bound). */
  setNoDelay(on = true): this {
    validateBool(on, 'noDelay')
    this.setOpt('noDelay', on ? 1 : 0)
    return this
  }

  /**
   * TCP keepalive: probes after `initialDelay` ms idle, then every
   * `interval` ms, `count` times, before the connection is declared dead.
   */
  setKeepAlive(enable = false, initialDelay = 0, interval?: number, count?: number): this {
    validateBool(enable, 'enable')
    this.setOpt('keepAlive', enable ? 1 : 0)
    if (enable && initialDelay > 0) this.setOpt('keepIdle', Math.max(1, Math.floor(validateInt(initialDelay, 'initialDelay', 0, 2 ** 31 - 1) / 1000)))
    if (enable && interval !== undefined) this.setOpt('keepInterval', Math.max(1, Math.floor(validateInt(interval, 'interval', 1000, 2 ** 31 - 1) / 1000)))
    if (enable && count !== undefined) this.setOpt('keepCount', validateInt(count, 'count', 1, 127))
    return this
  }

  /** TCP_USER_TIMEOUT: unacknowledged data older than `ms` kills the connection (ETIMEDOUT). 0 = kernel default. */
  setUserTimeout(ms: number): this {
    this.setOpt('userTimeout', validateInt(ms, 'userTimeout', 0, 2 ** 31 - 1))
    return this
  }

  /** Reads a socket option (`noDelay`, `keepAlive`, `keepIdle`, `keepInterval`, `keepCount`, `userTimeout`, `rcvBuf`, `sndBuf`, `outq`). */
  getOption(name: string): number {
    if (!this.sock) throw onbusError('ERR_SOCKET_CLOSED', 'The link is not connected')
    const r = this.sock.getOption(name)
    if (r < 0) throw errnoException(r, 'getsockopt')
    return r
  }

  /** @internal applied at every (re)connection */
  _presetOption(name: string, v: number): void {
    this.sockOptions.set(name, v)
  }

  // -- addresses ------------------------------------------------------------

  /** Local address: `{ address, family, port }` (TCP) or `{ path, abstract }` (Unix). */
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | { path: string; abstract: boolean } | {} {
    const r = this.sock?.localAddress()
    return addressObject(r)
  }

  get remoteAddress(): string | undefined {
    const r = this.sock?.remoteAddress()
    return Array.isArray(r) ? r[0] : undefined
  }

  get remotePort(): number | undefined {
    const r = this.sock?.remoteAddress()
    return Array.isArray(r) && r[2] > 0 ? r[1] : undefined
  }

  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    const r = this.sock?.remoteAddress()
    return Array.isArray(r) && r[2] > 0 ? (r[2] === 6 ? 'IPv6' : 'IPv4') : undefined
  }

  get localPort(): number | undefined {
    const r = this.sock?.localAddress()
    return Array.isArray(r) && r[2] > 0 ? r[1] : undefined
  }

  /** Credentials of a Unix socket's peer (SO_PEERCRED). */
  peerCredentials(): { pid: number; uid: number; gid: number } {
    const r = this.sock?.peerCred()
    if (r === undefined) throw onbusError('ERR_SOCKET_CLOSED', 'The link is not connected')
    if (typeof r === 'number') throw errnoException(r, 'getsockopt')
    return { pid: r[0], uid: r[1], gid: r[2] }
  }

  /** The current descriptor (-1 when not connected); for diagnostics. */
  get fd(): number {
    return this.sock ? this.sock.fd() : -1
  }

  // -- stats ----------------------------------------------------------------

  private snapshot(sock: NativeStreamSocket): void {
    sock.stats(this.statsBuf)
    for (let i = 0; i < 16; i++) if (i !== 14) this.totals[i] += this.statsBuf[i]
  }

  /** Counters, cumulative over reconnections. */
  stats(): StreamLinkStats {
    const s = this.statsBuf
    s.fill(0)
    if (this.sock) this.sock.stats(s)
    const t = this.totals
    const v = (i: number) => t[i] + s[i]
    return {
      rxBytes: v(0),
      rxReads: v(1),
      rxRecords: v(2),
      rxPauses: v(3),
      discardedBytes: v(4),
      oversizeFrames: v(5),
      garbageBytes: v(6),
      badFrames: v(7),
      kernelStamps: v(8),
      ringWraps: v(9),
      ringWrapBytes: v(10),
      ringRewinds: v(15),
      txBytes: v(11),
      txCalls: v(12),
      txEagain: v(13),
      txQueued: this.queued,
      onbusDrops: this.onbusDrops,
      connects: this.connects,
      disconnects: this.disconnects,
    }
  }

  // -- lifecycle ------------------------------------------------------------

  /** Keep the process alive while this link is open (the default). */
  ref(): this {
    if (!this.refed) {
      this.refed = true
      this.sock?.ref()
      this.retryTimer?.ref()
      this.attemptTimer?.ref()
    }
    return this
  }

  /** Let the process exit even though this link is open. */
  unref(): this {
    if (this.refed) {
      this.refed = false
      this.sock?.unref()
      this.retryTimer?.unref()
      this.attemptTimer?.unref()
    }
    return this
  }

  /**
   * Closes the link now (like `destroy()`): idempotent, safe inside a
   * handler; `'close'` follows on the next tick. Queued writes fail with
   * ERR_STREAM_DESTROYED.
   */
  close(cb?: () => void): this {
    if (cb) validateFunction(cb, 'callback')
    if (this.stateValue === 'closed') {
      if (cb) {
        if (this.closing) this.once('close', cb)
        else process.nextTick(cb)
      }
      return this
    }
    this.stateValue = 'closed'
    this.closing = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    if (this.attemptTimer) clearTimeout(this.attemptTimer)
    this.attemptTimer = null
    this.attemptAbort?.abort()
    this.connectWaiter?.(-125)
    const sock = this.sock
    this.sock = null
    if (sock) {
      this.snapshot(sock)
      sock.close()
      if (this.target !== undefined) this.endpoint?.release?.(this.target)
    }
    this.abortCleanup?.()
    this.failQueued(onbusError('ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed'))
    for (const q of this.iterators) q.end()
    this.iterators.clear()
    if (cb) this.once('close', cb)
    process.nextTick(() => {
      this.closing = false
      this.emit('close')
    })
    return this
  }

  /** Alias of `close()`, as on `net.Socket`. */
  destroy(): this {
    return this.close()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.stateValue === 'closed' && !this.closing) return
    await new Promise<void>((resolve) => this.close(() => resolve()))
  }
}

const EMPTY = new Uint8Array(0)

/** A queued sendFile(): the bytes stay in the page cache until sent. */
class FileSegment {
  constructor(
    readonly fd: number,
    readonly offset: number,
    readonly length: number,
    private own: boolean,
    private readonly name: string,
  ) {}
  /** Sent, failed or discarded: a descriptor opened for it is closed. */
  done(): void {
    if (this.own) {
      this.own = false
      try {
        closeSync(this.fd)
      } catch {
        // already closed
      }
    }
  }
  describe(): string {
    return this.name
  }
}

/** @internal */
export function addressObject(r: [string, number, number] | number | undefined): { address: string; family: 'IPv4' | 'IPv6'; port: number } | { path: string; abstract: boolean } | {} {
  if (!Array.isArray(r)) return {}
  if (r[2] <= 0) return { path: r[0], abstract: r[2] === -1 }
  return { address: r[0], family: r[2] === 6 ? 'IPv6' : 'IPv4', port: r[1] }
}

/** @internal */
export function validateStreamOptions(opts: ClientLinkOptions): void {
  if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'of type object', opts)
  if (opts.maxFrameSize !== undefined) validateInt(opts.maxFrameSize, 'options.maxFrameSize', 1, 64 << 20)
  if (opts.rxBufferSize !== undefined) validateInt(opts.rxBufferSize, 'options.rxBufferSize', 4096, 1 << 30)
  if (opts.rxRecords !== undefined) validateInt(opts.rxRecords, 'options.rxRecords', 1, 1 << 22)
  if (opts.highWaterMark !== undefined) validateInt(opts.highWaterMark, 'options.highWaterMark', 0, 2 ** 31 - 1)
  if (opts.iteratorHighWaterMark !== undefined) validateInt(opts.iteratorHighWaterMark, 'options.iteratorHighWaterMark', 1, 1 << 24)
  if (opts.connectTimeout !== undefined) validateInt(opts.connectTimeout, 'options.connectTimeout', 1, 2 ** 31 - 1)
  if (opts.busyPollUs !== undefined) validateInt(opts.busyPollUs, 'options.busyPollUs', 0, 1_000_000)
  if (opts.timestamps !== undefined) validateBool(opts.timestamps, 'options.timestamps')
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', opts.signal)
  framerFactory(opts.framing)
  parseReconnect(opts.reconnect)
}

export type { OnbusSystemError }
