/**
 * One SOCK_SEQPACKET connection to a peer process (native/ipc_socket.h),
 * with batched sending: messages queued during one turn of the event loop go
 * out together in `sendmmsg` calls at the next microtask, and a full peer
 * queue (EAGAIN) keeps them, in order, until the socket is writable again.
 *
 * Received messages are views into a receive ring that the next batch
 * overwrites: valid until `onMessage` returns.
 * @internal
 */
import { IpcEvent, ipcNative, type NativeIpcSocket } from '../../../bindings/index.js'
import { errnoException } from '../../errors.js'

/** Largest seqpacket message (receive slot size). */
export const SLOT_SIZE = 64 * 1024
/**
 * A datagram that packs many small messages: byte 0 is this type, then from
 * offset 8 entries of [uint32 length LE, 4 bytes pad, message, pad to 8], so
 * that every message starts 8-byte aligned (the receiver reads its header
 * through typed arrays over the receive ring, without copying).
 */
export const T_BATCH = 19
const RX_SLOTS = 32

export interface ConnectionHandlers {
  /** One received message (a view valid until return) and the descriptor that came with it (-1 if none). Return false to stop reading (the rest of the batch is handed to `onHold`). */
  onMessage(bytes: Uint8Array, fd: number): boolean
  /** Messages of the current batch after one that returned false, copied, to be replayed before `resume()`. */
  onHold(rest: { bytes: Uint8Array; fd: number }[]): void
  /** Every queued message went out after a stop. */
  onDrain(): void
  /** The peer closed or died (the socket hung up); everything it sent before has been delivered. */
  onEnd(err?: Error): void
}

interface Out {
  bytes: Uint8Array
  fd: number
  /** A batch buffer to return to the pool once sent. */
  pooled: Uint8Array | null
}

export class Connection {
  readonly sock: NativeIpcSocket
  private readonly out: Out[] = []
  private head = 0
  private flushQueued = false
  private waitingWritable = false
  /** Messages queued but not sent (the peer is slow). */
  get backlog(): number {
    return this.out.length - this.head
  }
  closed = false
  /** Datagrams dropped for being larger than a receive slot. */
  truncated = 0
  /** The batch being filled (see T_BATCH) and its fill level. */
  pack: Uint8Array | null = null
  private packFill = 0
  private packLens: Uint32Array | null = null
  private readonly pool: Uint8Array[] = []
  /** Set by the caller after SO_PEERCRED: the peer's pid. */
  pid = 0

  constructor(
    private readonly h: ConnectionHandlers,
    fd?: number,
  ) {
    const ring = new ArrayBuffer(SLOT_SIZE * RX_SLOTS)
    const lens = new Uint32Array(RX_SLOTS)
    const fds = new Int32Array(RX_SLOTS)
    this.sock = new ipcNative.IpcSocket(
      (count) => this.received(ring, lens, fds, count),
      (kind, errno) => this.event(kind, errno),
      fd,
    )
    this.rx = { ring, lens, fds }
  }
  private readonly rx: { ring: ArrayBuffer; lens: Uint32Array; fds: Int32Array }

  /** Starts receiving (after connect or for an adopted descriptor). */
  start(): void {
    const rc = this.sock.startReceive(this.rx.ring, this.rx.lens, this.rx.fds, SLOT_SIZE)
    if (rc < 0) throw errnoException(rc, 'startReceive')
  }

  private received(ring: ArrayBuffer, lens: Uint32Array, fds: Int32Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const len = lens[i] & 0x7fffffff
      const bytes = new Uint8Array(ring, i * SLOT_SIZE, len)
      if (this.closed || lens[i] & 0x80000000) {
        // Closed, or a datagram larger than a slot (no onbus peer sends one): not parsed.
        if (lens[i] & 0x80000000) this.truncated++
        if (fds[i] >= 0) ipcNative.IpcSocket.closeFd(fds[i])
        continue
      }
      if (!this.h.onMessage(bytes, fds[i])) {
        const rest: { bytes: Uint8Array; fd: number }[] = []
        for (let j = i + 1; j < count; j++) rest.push({ bytes: new Uint8Array(ring, j * SLOT_SIZE, lens[j] & 0x7fffffff).slice(), fd: fds[j] })
        this.sock.pause()
        this.h.onHold(rest)
        return
      }
    }
  }

  resume(): void {
    if (!this.closed) this.sock.resume()
  }

  private event(kind: IpcEvent, errno?: number): void {
    if (kind === IpcEvent.Writable) {
      this.waitingWritable = false
      this.flush()
    } else if (kind === IpcEvent.End) {
      this.h.onEnd()
    } else if (kind === IpcEvent.Error) {
      // A peer that died with messages unread resets the connection: that is an end, not a fault.
      this.h.onEnd(errno === -104 /* ECONNRESET */ ? undefined : errnoException(errno ?? -5, 'recvmmsg'))
    }
  }

  /**
   * Queues a message (kept by reference until sent: pass a buffer you do not
   * reuse). A turn's messages go out together at the next microtask, or at
   * once every 256. Returns false when the peer is behind (the message is
   * queued all the same, but stop until `onDrain`).
   */
  send(bytes: Uint8Array, fd = -1): boolean {
    if (this.closed) return true
    if (this.pack) this.closePack()
    this.out.push({ bytes, fd, pooled: null })
    return this.queued()
  }

  /**
   * Room for a small message of `len` bytes in the current batch datagram:
   * returns the offset in `this.pack` to write it at (8-byte aligned). Call
   * `commit()` after writing.
   */
  reserve(len: number): number {
    const need = 8 + ((len + 7) & ~7)
    if (this.pack && this.packFill + need > SLOT_SIZE) this.closePack()
    if (!this.pack) {
      this.pack = this.pool.pop() ?? new Uint8Array(SLOT_SIZE)
      this.packLens = new Uint32Array(this.pack.buffer)
      this.pack[0] = T_BATCH
      this.packFill = 8
    }
    const off = this.packFill
    this.packLens![off >>> 2] = len
    this.packFill += need
    return off + 8
  }

  /** The message written after `reserve()` is queued. Returns false when the peer is behind (stop until `onDrain`). */
  commit(): boolean {
    if (this.closed) return true
    return this.queued()
  }

  private closePack(): void {
    const p = this.pack!
    this.out.push({ bytes: p.subarray(0, this.packFill), fd: -1, pooled: p })
    this.pack = null
    this.packLens = null
  }

  private queued(): boolean {
    if (this.waitingWritable) {
      if (this.backlog < 64) return true
      this.stopped = true
      return false
    }
    if (this.backlog >= 4) this.flush()
    else if (!this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(this.flushTask)
    }
    return true
  }
  private readonly flushTask = (): void => {
    this.flushQueued = false
    this.flush()
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.closed || this.waitingWritable) return
    if (this.pack) this.closePack()
    const list: Uint8Array[] = []
    while (this.head < this.out.length) {
      const first = this.out[this.head]
      let n: number
      if (first.fd >= 0) {
        n = this.sock.send([first.bytes], 0, 1, first.fd)
      } else {
        list.length = 0
        for (let j = this.head; j < this.out.length && this.out[j].fd < 0 && list.length < 1024; j++) list.push(this.out[j].bytes)
        n = this.sock.send(list, 0, list.length, -1)
      }
      if (n === -11 /* EAGAIN */ || n === 0) {
        this.waitingWritable = true
        this.sock.watchWritable()
        return
      }
      if (n < 0) {
        // EPIPE / ECONNRESET: the peer is gone; the End event follows.
        this.out.length = 0
        this.head = 0
        return
      }
      for (let j = this.head; j < this.head + n; j++) {
        const pooled = this.out[j].pooled
        if (pooled && this.pool.length < 8) this.pool.push(pooled)
      }
      this.head += n
      if (n < list.length && first.fd < 0) {
        this.waitingWritable = true
        this.sock.watchWritable()
        return
      }
    }
    this.out.length = 0
    this.head = 0
    if (this.stopped) {
      this.stopped = false
      this.h.onDrain()
    }
  }
  /** The owner was told to stop (send returned false). */
  stopped = false

  close(): void {
    if (this.closed) return
    this.closed = true
    this.out.length = 0
    this.head = 0
    this.sock.close()
  }
}
