/**
 * The cross-process transport: buses of different processes of one user on
 * one machine, over Unix SOCK_SEQPACKET sockets (small messages, batched) and
 * memfd rings (large messages, zero-copy for the reader). docs/BUS.md
 * "Between processes".
 *
 * Discovery has no daemon: each process listens on `<dir>/<id>.sock` in an
 * owner-only runtime directory, watches the directory (inotify) and lists it
 * once at start; of two processes, the one whose id sorts higher connects, so
 * each pair has exactly one connection. A peer that exits or dies hangs up its
 * socket: its proxies and forwarders are closed at once and the shared-memory
 * slots it held are reclaimed. Its socket file is removed when its pid is gone.
 */
import { EventEmitter } from 'node:events'
import { mkdirSync, lstatSync, readdirSync, unlinkSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { IpcEvent, ipcNative, type NativeIpcSocket } from '../../../bindings/index.js'
import { errnoException, onbusError, invalidArgValue } from '../../errors.js'
import type { Meta } from '../meta.js'
import type { Publisher } from '../publisher.js'
import type { EndpointDescriptor, Forwarder, Topic } from '../topic.js'
import type { Transport, TransportHost } from '../transport.js'
import { Connection, SLOT_SIZE, T_BATCH } from './connection.js'
import { ShmRing, mapPeerRing, type MappedRing } from './shm.js'

const T_HELLO = 1
const T_ADD = 2
const T_REMOVE = 3
const T_LIVE = 4
const T_RING = 5
const T_DATA = 16
const T_SHM = 17
const T_RELEASE = 18

const F_HISTORICAL = 1
const F_RX = 2
const F_SOURCE = 4

const DATA_HDR = 32
const SHM_HDR = 48

/** Options of {@link createIpcTransport}. */
export interface IpcTransportOptions {
  /** Runtime directory shared by the processes that talk (created 0700; must be owned by this user and not group/world accessible). Default `$XDG_RUNTIME_DIR/onbus`, else `/tmp/onbus-<uid>`. */
  dir?: string
  /** Messages larger than this (bytes) go through shared memory. Default 16 KiB (at most 60 KiB). */
  inlineMax?: number
  /** Slots of this process's shared-memory ring. Default 8. */
  shmSlots?: number
  /** Bytes per slot (the largest message). Default 8 MiB. */
  shmSlotSize?: number
  /** A peer that holds a slot, or cannot take messages, this long is stalled: its slots are reclaimed, its messages dropped (counted), and `'stall'` is emitted. Default 1000 ms. */
  stallTimeoutMs?: number
}

/** `'peer'`: a process connected. */
export interface IpcPeerEvent {
  id: string
  pid: number
}
/** `'peer-lost'`: a process closed or died; `reclaimed` shared-memory slots it held were freed, `endpoints` of it were removed. */
export interface IpcPeerLostEvent extends IpcPeerEvent {
  reclaimed: number
  endpoints: number
}
/** `'stall'`: a peer held slots or left its socket full past the stall timeout. */
export interface IpcStallEvent extends IpcPeerEvent {
  /** Slots reclaimed now. */
  reclaimed: number
  /** Messages dropped for it now (its socket stayed full). */
  dropped: number
  /** Stall reports for this peer so far. */
  total: number
}
/** `'refused'`: a connection from or to a process of another user (SO_PEERCRED), or a path we may not reach. */
export interface IpcRefusedEvent {
  direction: 'in' | 'out'
  pid: number
  uid: number
  path?: string
  code: string
}
/** `'drop'`: messages this transport could not carry. */
export interface IpcDropEvent {
  peer: string
  topic: string
  reason: 'too-large' | 'shm-full' | 'stale' | 'stalled-peer' | 'decode-error'
  count: number
}

/** Counters of {@link IpcTransport.stats}. */
export interface IpcStats {
  peers: number
  sentInline: number
  sentShm: number
  received: number
  receivedShm: number
  dropped: number
  reclaimed: number
  refused: number
  stalls: number
  shmFree: number
}

interface RemoteEndpoint {
  d: EndpointDescriptor
  h: number
}

interface Outbound {
  forwarder: Forwarder
  subs: Set<string>
}

class Peer {
  id = ''
  hello = false
  readonly remote = new Map<string, RemoteEndpoint>()
  readonly proxies = new Map<string, Publisher<unknown>>()
  readonly byHandle = new Map<number, Publisher<unknown>>()
  readonly outbound = new Map<string, Outbound>()
  readonly rings = new Map<number, MappedRing>()
  ringSent = false
  readonly stopped = new Set<Forwarder>()
  /** When its socket first refused more (performance.now()), 0 while it keeps up. */
  behindSince = 0
  stalls = 0
  /** Its slots were reclaimed for holding them too long: it gets no new ones until it releases one. */
  slotStalled = false
  releases: number[] = []
  releaseQueued = false
  held: { bytes: Uint8Array; fd: number }[] | null = null
  heldFirst: { bytes: Uint8Array; fd: number } | null = null
  heldRest: { bytes: Uint8Array; fd: number } | null = null
  waitFor: Publisher<unknown> | null = null
  constructor(public conn: Connection) {}
}

const enc = new TextEncoder()
const dec = new TextDecoder()

function jsonMsg(type: number, body: unknown): Uint8Array {
  const s = enc.encode(JSON.stringify(body, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v)))
  const out = new Uint8Array(1 + s.length)
  out[0] = type
  out.set(s, 1)
  return out
}
function parseJson<T>(bytes: Uint8Array): T {
  return JSON.parse(dec.decode(bytes.subarray(1)), (_k, v: unknown) => (v === 'Infinity' ? Infinity : v)) as T
}

// Header scratch: written through typed views, copied into each message.
const scratch = new ArrayBuffer(SHM_HDR)
const sU8 = new Uint8Array(scratch)
const sU16 = new Uint16Array(scratch)
const sU32 = new Uint32Array(scratch)
const sF64 = new Float64Array(scratch)
const sI64 = new BigInt64Array(scratch)
const sDataHdr = new Uint8Array(scratch, 0, DATA_HDR)

function defaultDir(): string {
  const x = process.env.XDG_RUNTIME_DIR
  return x ? join(x, 'onbus') : `/tmp/onbus-${process.geteuid!()}`
}

/**
 * The cross-process transport. Add it to a bus: topics of the same name and
 * codec in other processes of this user (that added one with the same `dir`)
 * are connected.
 * @example
 * const bus = createBus({ name: 'camera' })
 * const ipc = createIpcTransport()
 * bus.addTransport(ipc)
 * const frames = bus.topic('camera/frames', { qos: qosProfiles.sensorData, codec: rawCodec })
 * const loan = ipc.loan(w * h * 3)           // a slot of shared memory
 * if (loan) { grab(loan.bytes); loan.publish(frames) } // subscribers elsewhere read the same memory
 */
export class IpcTransport extends EventEmitter implements Transport {
  readonly name: string
  /** This process's id in the runtime directory. */
  readonly id: string
  readonly dir: string
  readonly path: string
  private host: TransportHost | null = null
  private listener: NativeIpcSocket | null = null
  private watcher: FSWatcher | null = null
  private timer: NodeJS.Timeout | null = null
  private readonly peers = new Set<Peer>()
  private readonly byId = new Map<string, Peer>()
  private readonly connecting = new Set<string>()
  private readonly retries = new Map<string, number>()
  private ticks = 0
  private readonly handles = new Map<string, number>()
  private nextHandle = 1
  private ring: ShmRing<Peer> | null = null
  private readonly hostListeners: [string, (...a: never[]) => void][] = []
  private closed = false
  private readonly inlineMax: number
  private readonly shmSlots: number
  private readonly shmSlotSize: number
  private readonly stallMs: number
  private slotWaiters: (() => void)[] = []
  /** Typed views over the buffer being parsed (the receive ring, almost always): no allocation per message. */
  private vBuf: ArrayBufferLike | null = null
  private vU8: Uint8Array<ArrayBufferLike> = new Uint8Array(0)
  private vU32: Uint32Array<ArrayBufferLike> = new Uint32Array(0)
  private vF64: Float64Array<ArrayBufferLike> = new Float64Array(0)
  private vI64: BigInt64Array<ArrayBufferLike> = new BigInt64Array(0)
  /** Reused for every received message: publishEncoded() reads its fields and keeps none. */
  private readonly rxMeta: { seq: number; publishTime: number; rxTime?: bigint; source?: string } = { seq: 0, publishTime: 0, rxTime: undefined, source: undefined }
  /** The last message copied into a slot: the same message for another peer reuses the copy (buffers are reused by publishers, so it is keyed by publisher and seq too). */
  private lastCopy: { bytes: Uint8Array; pub: string; seq: number; slot: number; gen: number } | null = null
  private readonly counters = { sentInline: 0, sentShm: 0, received: 0, receivedShm: 0, dropped: 0, reclaimed: 0, refused: 0, stalls: 0 }

  constructor(opts: IpcTransportOptions = {}) {
    super()
    this.dir = opts.dir ?? defaultDir()
    this.inlineMax = opts.inlineMax ?? 16 * 1024
    if (!(this.inlineMax >= 0 && this.inlineMax <= SLOT_SIZE - 4096)) throw invalidArgValue('inlineMax', opts.inlineMax, `must be between 0 and ${SLOT_SIZE - 4096}`)
    this.shmSlots = opts.shmSlots ?? 8
    this.shmSlotSize = Math.ceil((opts.shmSlotSize ?? 8 * 1024 * 1024) / 4096) * 4096
    this.stallMs = opts.stallTimeoutMs ?? 1000
    this.id = `${process.pid}-${randomBytes(4).toString('hex')}`
    this.name = `ipc:${this.id}`
    this.path = join(this.dir, `${this.id}.sock`)
    if (Buffer.byteLength(this.path) > 107) throw invalidArgValue('dir', this.dir, 'is too long for a Unix socket path')
  }

  // ---- lifecycle -------------------------------------------------------------

  start(host: TransportHost): void {
    if (this.closed) throw onbusError('ERR_ONBUS_CLOSED', 'The transport is closed')
    this.host = host
    this.prepareDir()
    const l = new ipcNative.IpcSocket(
      () => {},
      (kind) => {
        if (kind === IpcEvent.Acceptable) this.acceptAll()
      },
    )
    const rc = l.listen(this.path, 128)
    if (rc < 0) {
      l.close()
      throw errnoException(rc, 'listen', this.path)
    }
    this.listener = l
    l.ref()
    const on = <A extends unknown[]>(ev: string, fn: (...a: A) => void): void => {
      host.on(ev as 'topic', fn as never)
      this.hostListeners.push([ev, fn as never])
    }
    on('topic', (t: Topic<unknown>) => {
      for (const p of this.peers) for (const r of p.remote.values()) if (r.d.topic === t.name) this.apply(p, t, r)
    })
    on('endpoint-added', (d: EndpointDescriptor) => this.broadcast(jsonMsg(T_ADD, { d, h: this.handleOf(d) })))
    on('endpoint-removed', (d: EndpointDescriptor) => {
      this.broadcast(jsonMsg(T_REMOVE, { id: d.id }))
      this.handles.delete(d.id)
    })
    on('liveliness', (d: EndpointDescriptor) => this.broadcast(jsonMsg(T_LIVE, { id: d.id })))
    // Watch first, then list: a process that appears in between is seen by one of the two.
    try {
      this.watcher = watch(this.dir, (_ev, file) => {
        if (file && file.endsWith('.sock')) this.consider(file.slice(0, -5))
      })
      this.watcher.on('error', () => {})
      this.watcher.unref()
    } catch {
      // no inotify: the periodic rescan below still finds peers
    }
    this.rescan()
    this.timer = setInterval(() => this.tick(), Math.max(25, Math.min(this.stallMs / 4, 500)))
    this.timer.unref()
  }

  private prepareDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    const st = lstatSync(this.dir)
    if (!st.isDirectory() || st.uid !== process.geteuid!() || (st.mode & 0o077) !== 0)
      throw onbusError(
        'ERR_ONBUS_IPC_UNSAFE_DIR',
        `${this.dir} must be a directory owned by uid ${process.geteuid!()} with mode 0700 (found uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)})`,
      )
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    for (const [ev, fn] of this.hostListeners) this.host?.off(ev, fn as (...a: unknown[]) => void)
    for (const p of [...this.peers]) this.teardown(p, false)
    this.listener?.close()
    this.listener = null
    try {
      unlinkSync(this.path)
    } catch {
      // already gone
    }
    this.watcher?.close()
    if (this.timer) clearInterval(this.timer)
    this.wakeSlotWaiters() // their next loan() throws ERR_ONBUS_CLOSED
    this.ring?.close()
    this.ring = null
  }

  // ---- discovery ---------------------------------------------------------------

  private rescan(): void {
    let files: string[]
    try {
      files = readdirSync(this.dir)
    } catch {
      return
    }
    for (const f of files) if (f.endsWith('.sock')) this.consider(f.slice(0, -5))
  }

  private consider(id: string): void {
    // Of two processes, the one with the higher id connects.
    if (this.closed || id >= this.id || this.byId.has(id) || this.connecting.has(id)) return
    const path = join(this.dir, `${id}.sock`)
    const peer = new Peer(null as unknown as Connection)
    const conn = new Connection(this.handlers(peer))
    peer.conn = conn
    const [rc, pid, uid] = conn.sock.connect(path)
    if (rc < 0) {
      conn.close()
      if ((rc === -111 /* ECONNREFUSED */ || rc === -11) /* EAGAIN: backlog full */ && pidAlive(Number(id.split('-')[0]))) {
        // Seen between its bind() and listen(), or busy: try again shortly (for about a second).
        const n = (this.retries.get(id) ?? 0) + 1
        this.retries.set(id, n)
        if (n <= 40) setTimeout(() => this.consider(id), 25).unref()
        else this.retries.delete(id)
      } else if (rc === -111) {
        try {
          unlinkSync(path) // its process is gone: a stale file
        } catch {
          // raced with someone else
        }
      } else if (rc === -13 /* EACCES */ || rc === -1 /* EPERM */) {
        this.refused({ direction: 'out', pid, uid, path, code: rc === -13 ? 'EACCES' : 'EPERM' })
      }
      return
    }
    this.retries.delete(id)
    peer.id = id
    conn.pid = pid
    this.connecting.add(id)
    this.peers.add(peer)
    conn.start()
    conn.send(jsonMsg(T_HELLO, { proc: this.id, pid: process.pid, bus: this.host!.busName }))
  }

  private acceptAll(): void {
    for (;;) {
      if (!this.listener) return
      const [fd, pid, uid] = this.listener.accept()
      if (fd === -11) return
      if (fd === -13) {
        this.refused({ direction: 'in', pid, uid, code: 'EACCES' })
        continue
      }
      if (fd < 0) {
        this.emit('error', errnoException(fd, 'accept', this.path))
        return
      }
      const peer = new Peer(null as unknown as Connection)
      const conn = new Connection(this.handlers(peer), fd)
      peer.conn = conn
      conn.pid = pid
      this.peers.add(peer)
      conn.start()
      conn.send(jsonMsg(T_HELLO, { proc: this.id, pid: process.pid, bus: this.host!.busName }))
    }
  }

  private refused(e: IpcRefusedEvent): void {
    this.counters.refused++
    this.emit('refused', e)
  }

  private handlers(peer: Peer) {
    return {
      onMessage: (bytes: Uint8Array, fd: number) => this.onMessage(peer, bytes, fd),
      onHold: (rest: { bytes: Uint8Array; fd: number }[]) => {
        peer.held = [peer.heldFirst!, ...(peer.heldRest ? [peer.heldRest] : []), ...rest]
        peer.heldFirst = null
        peer.heldRest = null
        void this.replay(peer)
      },
      onDrain: () => {
        peer.behindSince = 0
        const list = [...peer.stopped]
        peer.stopped.clear()
        for (const f of list) f.resume()
      },
      onEnd: (err?: Error) => {
        if (err) this.emit('error', err)
        this.teardown(peer, true)
      },
    }
  }

  // ---- announcing --------------------------------------------------------------

  private handleOf(d: EndpointDescriptor): number {
    let h = this.handles.get(d.id)
    if (h === undefined) {
      h = this.nextHandle++
      this.handles.set(d.id, h)
    }
    return h
  }

  private broadcast(msg: Uint8Array): void {
    for (const p of this.peers) if (p.hello) p.conn.send(msg)
  }

  private announceAll(peer: Peer): void {
    for (const t of this.host!.topics()) for (const d of t.endpoints()) peer.conn.send(jsonMsg(T_ADD, { d, h: this.handleOf(d) }))
  }

  // ---- receiving ---------------------------------------------------------------

  private topic(name: string): Topic<unknown> | undefined {
    return this.host?.topics().find((t) => t.name === name && !t.closedState)
  }

  private onMessage(peer: Peer, bytes: Uint8Array, fd: number): boolean {
    const type = bytes[0]
    if (type === T_BATCH) return this.onBatch(peer, bytes, fd)
    if (type === T_DATA || type === T_SHM) return this.onData(peer, bytes, fd)
    if (type === T_RELEASE) {
      const n = bytes.length >>> 2
      const u32 = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, n) : new Uint32Array(bytes.slice().buffer, 0, n)
      for (let k = 1; k + 1 < n; k += 2) this.ring?.release(u32[k] & 0xffff, u32[k + 1], peer)
      peer.slotStalled = false
      this.wakeSlotWaiters()
      return true
    }
    if (type === T_RING) {
      if (fd < 0) return true
      const m = parseJson<{ ring: number; slots: number; slotSize: number }>(bytes)
      const r = mapPeerRing(fd, m.slots, m.slotSize)
      if (r instanceof Error) this.emit('error', r)
      else peer.rings.set(m.ring, r)
      return true
    }
    if (fd >= 0) ipcNative.IpcSocket.closeFd(fd) // descriptors come only with T_RING
    if (type === T_HELLO) {
      const m = parseJson<{ proc: string; pid: number }>(bytes)
      if (peer.hello) return true
      const other = this.byId.get(m.proc)
      if (other && other !== peer) {
        // Both connected at once (should not happen with the id rule): keep the first.
        this.teardown(peer, false)
        return true
      }
      peer.id = m.proc
      peer.hello = true
      this.connecting.delete(m.proc)
      this.byId.set(m.proc, peer)
      this.emit('peer', { id: peer.id, pid: peer.conn.pid } satisfies IpcPeerEvent)
      this.announceAll(peer)
      return true
    }
    if (type === T_ADD) {
      const m = parseJson<{ d: EndpointDescriptor; h: number }>(bytes)
      const r = { d: m.d, h: m.h }
      peer.remote.set(m.d.id, r)
      const t = this.topic(m.d.topic)
      if (t) this.apply(peer, t, r)
      if (this.listenerCount('remote-endpoint') > 0) this.emit('remote-endpoint', m.d)
      return true
    }
    if (type === T_REMOVE) {
      const m = parseJson<{ id: string }>(bytes)
      const r = peer.remote.get(m.id)
      if (r) this.removeRemote(peer, r)
      return true
    }
    if (type === T_LIVE) {
      const m = parseJson<{ id: string }>(bytes)
      peer.proxies.get(m.id)?.assertLiveliness()
      return true
    }
    return true
  }

  private apply(peer: Peer, t: Topic<unknown>, r: RemoteEndpoint): void {
    const d = r.d
    if (t.codec.name !== d.codec) return // same name, other wire format: not the same topic
    if (d.kind === 'publisher') {
      if (peer.proxies.has(d.id)) return
      const proxy = t.createRemotePublisher({ id: `${d.id}@${peer.id}`, source: d.source ?? d.id, qos: d.qos, transport: this.name })
      peer.proxies.set(d.id, proxy)
      peer.byHandle.set(r.h, proxy)
      return
    }
    let out = peer.outbound.get(t.name)
    if (!out) {
      const forwarder: Forwarder = t.createForwarder({ transport: this.name }, (bytes, meta, publisherId, historical) =>
        this.forward(peer, t, forwarder, bytes, meta, publisherId, historical),
      )
      out = { forwarder, subs: new Set() }
      peer.outbound.set(t.name, out)
    }
    out.subs.add(d.id)
  }

  private removeRemote(peer: Peer, r: RemoteEndpoint): void {
    peer.remote.delete(r.d.id)
    if (r.d.kind === 'publisher') {
      peer.proxies.get(r.d.id)?.close()
      peer.proxies.delete(r.d.id)
      peer.byHandle.delete(r.h)
      return
    }
    const out = peer.outbound.get(r.d.topic)
    if (out && out.subs.delete(r.d.id) && out.subs.size === 0) {
      out.forwarder.close()
      peer.stopped.delete(out.forwarder)
      peer.outbound.delete(r.d.topic)
    }
  }

  /** A datagram of packed messages (connection.ts T_BATCH). On push-back, the message that was refused and the rest of the batch are kept for replay. */
  private onBatch(peer: Peer, bytes: Uint8Array, fd: number): boolean {
    if (fd >= 0) ipcNative.IpcSocket.closeFd(fd)
    const base = bytes.byteOffset
    if (base % 8 !== 0) return this.onBatch(peer, bytes.slice(), -1)
    const lens = new Uint32Array(bytes.buffer, base, bytes.length >>> 2)
    let off = 8
    while (off + 8 <= bytes.length) {
      const len = lens[off >>> 2]
      const next = off + 8 + ((len + 7) & ~7)
      if (off + 8 + len > bytes.length) break // malformed: ignore the rest
      if (!this.onData(peer, bytes.subarray(off + 8, off + 8 + len), -1)) {
        if (next < bytes.length) {
          const rest = new Uint8Array(8 + bytes.length - next)
          rest[0] = T_BATCH
          rest.set(bytes.subarray(next), 8)
          peer.heldRest = { bytes: rest, fd: -1 }
        }
        return false
      }
      off = next
    }
    return true
  }

  /** A data message: false when a local reliable subscriber pushes back (this message is kept for replay). */
  private onData(peer: Peer, bytes: Uint8Array, fd: number): boolean {
    if (fd >= 0) ipcNative.IpcSocket.closeFd(fd)
    if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice()
    const o = bytes.byteOffset
    this.views(bytes.buffer)
    const u8 = this.vU8
    const flags = u8[o + 1]
    const srcLen = u8[o + 2] | (u8[o + 3] << 8)
    const h = this.vU32[(o >>> 2) + 1]
    const proxy = peer.byHandle.get(h)
    const shm = bytes[0] === T_SHM
    const hdr = shm ? SHM_HDR : DATA_HDR
    const w = (o >>> 2) + 8 // SHM: ring, slot, len, gen
    if (!proxy || proxy.closedState) {
      if (shm) this.queueRelease(peer, this.vU32[w], this.vU32[w + 1], this.vU32[w + 3])
      return true
    }
    const meta = this.rxMeta
    meta.seq = this.vF64[(o >>> 3) + 1]
    meta.publishTime = this.vF64[(o >>> 3) + 2]
    meta.rxTime = flags & F_RX ? this.vI64[(o >>> 3) + 3] : undefined
    meta.source = flags & F_SOURCE ? dec.decode(u8.subarray(o + hdr, o + hdr + srcLen)) : undefined
    let payload: Uint8Array
    const u32 = this.vU32
    const ringId = u32[w]
    const slot = u32[w + 1]
    const gen = u32[w + 3]
    if (shm) {
      const ring = peer.rings.get(ringId)
      const v = ring?.view(slot, gen, u32[w + 2])
      if (!v) {
        this.drop(peer, proxy.topic.name, 'stale', 1)
        return true
      }
      payload = v
      this.counters.receivedShm++
    } else {
      // Inline bytes live in the receive ring until this batch ends: subscribers may keep them, so copy.
      payload = u8.slice(o + hdr + srcLen, o + bytes.length)
    }
    this.counters.received++
    let ok: boolean
    try {
      ok = proxy.publishEncoded(payload, meta, (flags & F_HISTORICAL) !== 0)
    } catch {
      this.drop(peer, proxy.topic.name, 'decode-error', 1)
      ok = true
    }
    if (!ok) {
      this.counters.received--
      if (shm) this.counters.receivedShm--
      peer.heldFirst = { bytes: bytes.slice(), fd: -1 }
      peer.waitFor = proxy
      return false
    }
    if (shm) this.queueRelease(peer, ringId, slot, gen)
    return true
  }

  private views(buf: ArrayBufferLike): void {
    if (buf === this.vBuf) return
    this.vBuf = buf
    const n8 = Math.floor(buf.byteLength / 8)
    this.vU8 = new Uint8Array(buf)
    this.vU32 = new Uint32Array(buf, 0, n8 * 2)
    this.vF64 = new Float64Array(buf, 0, n8)
    this.vI64 = new BigInt64Array(buf, 0, n8)
  }

  /** Replays messages held back by a local reliable subscriber, then reads on. */
  private async replay(peer: Peer): Promise<void> {
    while (peer.held && peer.held.length > 0 && !this.closed && this.peers.has(peer)) {
      const proxy = peer.waitFor
      if (proxy && !proxy.closedState) {
        try {
          await proxy.ready()
        } catch {
          // closed: its messages are skipped below
        }
      }
      const list = peer.held
      peer.held = []
      for (let i = 0; i < list.length; i++) {
        if (!this.onMessage(peer, list[i].bytes, list[i].fd)) {
          peer.held = [peer.heldFirst!, ...(peer.heldRest ? [peer.heldRest] : []), ...list.slice(i + 1)]
          peer.heldFirst = null
          peer.heldRest = null
          break
        }
      }
    }
    peer.held = null
    peer.conn.resume()
  }

  private queueRelease(peer: Peer, ring: number, slot: number, gen: number): void {
    peer.releases.push(ring & 0xffff, slot, gen)
    if (!peer.releaseQueued) {
      peer.releaseQueued = true
      queueMicrotask(() => this.flushReleases(peer))
    }
  }

  private flushReleases(peer: Peer): void {
    peer.releaseQueued = false
    const r = peer.releases
    peer.releases = []
    // [type, pad] then (slot, gen) pairs; the ring id rides in the slot word's high half.
    const pairs = r.length / 3
    const msg = new Uint32Array(1 + pairs * 2)
    new Uint8Array(msg.buffer)[0] = T_RELEASE
    for (let k = 0; k < pairs; k++) {
      msg[1 + 2 * k] = (r[3 * k] << 16) | r[3 * k + 1]
      msg[2 + 2 * k] = r[3 * k + 2]
    }
    peer.conn.send(new Uint8Array(msg.buffer))
  }

  // ---- sending -----------------------------------------------------------------

  private forward(peer: Peer, t: Topic<unknown>, forwarder: Forwarder, bytes: Uint8Array, meta: Meta, publisherId: string, historical: boolean): boolean {
    const h = this.handles.get(publisherId)
    if (h === undefined || !peer.hello) return true
    if (peer.behindSince > 0 && performance.now() - peer.behindSince > this.stallMs) {
      this.drop(peer, t.name, 'stalled-peer', 1)
      return true
    }
    const pub = meta.pub
    const src = pub && meta.source !== pub.source ? enc.encode(meta.source) : null
    const slot = this.ring ? this.ring.slotOf(bytes) : -1
    if (slot >= 0 || bytes.byteLength > this.inlineMax) {
      if (peer.slotStalled) {
        this.drop(peer, t.name, 'stalled-peer', 1)
        return true
      }
      const ring = this.ensureRing()
      let i = slot
      if (i >= 0) {
        if (!ring.isCurrent(i, bytes)) {
          this.drop(peer, t.name, 'stale', 1) // queued here after its slot was reused
          return true
        }
      } else if (this.lastCopy && this.lastCopy.bytes === bytes && this.lastCopy.seq === meta.seq && this.lastCopy.pub === publisherId && ring.gens[this.lastCopy.slot] === this.lastCopy.gen) {
        i = this.lastCopy.slot // the same message to another peer: one copy serves all
      } else {
        if (bytes.byteLength > ring.slotSize) {
          this.drop(peer, t.name, 'too-large', 1)
          return true
        }
        i = ring.take(bytes.byteLength)
        if (i < 0) {
          this.reclaimStale()
          i = ring.take(bytes.byteLength)
        }
        if (i < 0) {
          this.drop(peer, t.name, 'shm-full', 1)
          return true
        }
        ring.view(i).set(bytes)
        ring.beginPublish(i)
        ring.endPublish(i)
        this.lastCopy = { bytes, pub: publisherId, seq: meta.seq, slot: i, gen: ring.gens[i] }
      }
      if (!peer.ringSent) {
        peer.ringSent = true
        peer.conn.send(jsonMsg(T_RING, { ring: ring.id, slots: ring.slots, slotSize: ring.slotSize }), ring.fd)
      }
      ring.hold(i, peer)
      const conn = peer.conn
      const at = conn.reserve(SHM_HDR + (src ? src.length : 0))
      this.header(T_SHM, h, meta, historical, src)
      sU32[8] = ring.id
      sU32[9] = i
      sU32[10] = bytes.byteLength
      sU32[11] = ring.gens[i]
      const pack = conn.pack!
      pack.set(sU8, at)
      if (src) pack.set(src, at + SHM_HDR)
      this.counters.sentShm++
    } else {
      const sl = src ? src.length : 0
      const conn = peer.conn
      const at = conn.reserve(DATA_HDR + sl + bytes.byteLength)
      this.header(T_DATA, h, meta, historical, src)
      const pack = conn.pack!
      pack.set(sDataHdr, at)
      if (src) pack.set(src, at + DATA_HDR)
      pack.set(bytes, at + DATA_HDR + sl)
      this.counters.sentInline++
    }
    if (peer.conn.commit()) return true
    if (peer.behindSince === 0) peer.behindSince = performance.now()
    peer.stopped.add(forwarder)
    return false
  }

  private header(type: number, h: number, meta: Meta, historical: boolean, src: Uint8Array | null): void {
    sU8[0] = type
    sU8[1] = (historical ? F_HISTORICAL : 0) | (meta.rxTime !== undefined ? F_RX : 0) | (src ? F_SOURCE : 0)
    sU16[1] = src ? src.length : 0
    sU32[1] = h
    sF64[1] = meta.seq
    sF64[2] = meta.stamp()
    sI64[3] = meta.rxTime ?? 0n
  }

  private ensureRing(): ShmRing<Peer> {
    if (!this.ring) this.ring = new ShmRing<Peer>(1, this.shmSlots, this.shmSlotSize)
    return this.ring
  }

  // ---- loans -------------------------------------------------------------------

  /**
   * Loans a slot of this process's shared-memory ring for a message of `size`
   * bytes: write into `loan.bytes`, then `loan.publish(topicOrPublisher)` (a
   * `rawCodec` topic). Subscribers in other processes read that same memory;
   * the slot is reused when all of them released it (or died, or stalled past
   * the timeout). Returns null when every slot is in use (count it as a drop,
   * or wait and try again).
   */
  loan(size: number): IpcLoan | null {
    if (this.closed) throw onbusError('ERR_ONBUS_CLOSED', 'The transport is closed')
    if (!(size > 0 && size <= this.shmSlotSize)) throw invalidArgValue('size', size, `must be between 1 and ${this.shmSlotSize}`)
    const ring = this.ensureRing()
    let i = ring.take(size)
    if (i < 0) {
      this.reclaimStale()
      i = ring.take(size)
    }
    return i < 0 ? null : new IpcLoan(ring, i)
  }

  /** Like {@link loan}, but waits for a slot to be released (or reclaimed) instead of returning null. */
  async loanAsync(size: number, opts: { signal?: AbortSignal } = {}): Promise<IpcLoan> {
    for (;;) {
      opts.signal?.throwIfAborted()
      const l = this.loan(size)
      if (l) return l
      await new Promise<void>((resolve) => {
        this.slotWaiters.push(resolve)
        opts.signal?.addEventListener('abort', () => resolve(), { once: true })
      })
    }
  }

  private wakeSlotWaiters(): void {
    if (this.slotWaiters.length === 0) return
    const w = this.slotWaiters
    this.slotWaiters = []
    for (const f of w) f()
  }

  // ---- peers going away ----------------------------------------------------------

  private teardown(peer: Peer, lost: boolean): void {
    if (!this.peers.delete(peer)) return
    if (this.byId.get(peer.id) === peer) this.byId.delete(peer.id)
    this.connecting.delete(peer.id)
    const endpoints = peer.remote.size
    for (const p of peer.proxies.values()) p.close()
    for (const o of peer.outbound.values()) o.forwarder.close()
    peer.proxies.clear()
    peer.byHandle.clear()
    peer.outbound.clear()
    peer.remote.clear()
    peer.rings.clear() // the mappings go with their ArrayBuffers
    peer.held = null
    const reclaimed = this.ring ? this.ring.dropHolder(peer) : 0
    this.counters.reclaimed += reclaimed
    this.wakeSlotWaiters()
    peer.conn.close()
    if (lost && peer.hello) {
      const pid = peer.conn.pid
      if (!pidAlive(pid)) {
        try {
          unlinkSync(join(this.dir, `${peer.id}.sock`))
        } catch {
          // it removed its own file, or is not in our directory
        }
      }
      this.emit('peer-lost', { id: peer.id, pid, reclaimed, endpoints } satisfies IpcPeerLostEvent)
    }
  }

  private tick(): void {
    // A rescan every few ticks (one readdir) finds what inotify did not report (no watch, a full event queue).
    if (++this.ticks % 8 === 0) this.rescan()
    this.reclaimStale()
    this.wakeSlotWaiters()
    const now = performance.now()
    for (const p of this.peers) {
      if (p.behindSince > 0 && now - p.behindSince > this.stallMs && p.stopped.size > 0) {
        // Its socket stayed full: let the bus flush what it queued for it (dropped, counted).
        p.stalls++
        this.counters.stalls++
        const list = [...p.stopped]
        p.stopped.clear()
        const before = this.counters.dropped
        for (const f of list) f.resume()
        this.emit('stall', { id: p.id, pid: p.conn.pid, reclaimed: 0, dropped: this.counters.dropped - before, total: p.stalls } satisfies IpcStallEvent)
      }
    }
  }

  private reclaimStale(): void {
    if (!this.ring) return
    for (const [p, n] of this.ring.reclaimStale(this.stallMs)) {
      p.slotStalled = true
      p.stalls++
      this.counters.stalls++
      this.counters.reclaimed += n
      this.emit('stall', { id: p.id, pid: p.conn.pid, reclaimed: n, dropped: 0, total: p.stalls } satisfies IpcStallEvent)
    }
  }

  private drop(peer: Peer, topic: string, reason: IpcDropEvent['reason'], count: number): void {
    this.counters.dropped += count
    if (this.listenerCount('drop') > 0) this.emit('drop', { peer: peer.id, topic, reason, count } satisfies IpcDropEvent)
  }

  /** Counters since start. */
  /**
   * Endpoints other processes announced (their publishers and subscribers),
   * including topics this bus has not declared: what a recorder of "every
   * topic" needs. A `'remote-endpoint'` event follows each new announcement.
   */
  remoteEndpoints(): EndpointDescriptor[] {
    const out: EndpointDescriptor[] = []
    for (const p of this.peers) for (const r of p.remote.values()) out.push(r.d)
    return out
  }

  stats(): IpcStats {
    return { peers: this.byId.size, ...this.counters, shmFree: this.ring ? this.ring.free() : this.shmSlots }
  }

  /** Connected peer processes. */
  peerList(): IpcPeerEvent[] {
    return [...this.byId.values()].map((p) => ({ id: p.id, pid: p.conn.pid }))
  }

  /** @internal the ring's descriptor (tests: permission checks) */
  get ringFd(): number {
    return this.ring ? this.ring.fd : -1
  }
}

/** A loaned shared-memory slot: fill `bytes`, then `publish()` once (or `cancel()`). */
export class IpcLoan {
  /** The slot's memory, `size` bytes long. */
  readonly bytes: Uint8Array
  private done = false
  constructor(
    private readonly ring: ShmRing<unknown>,
    private readonly slot: number,
  ) {
    this.bytes = ring.view(slot)
  }
  /** Publishes the slot's bytes through a `rawCodec` topic or publisher. Local subscribers get the same view (valid until they return). */
  publish(to: { publish(v: Uint8Array): boolean }): boolean {
    if (this.done) throw onbusError('ERR_ONBUS_LOAN_USED', 'This loan was already published or cancelled')
    this.done = true
    this.ring.beginPublish(this.slot)
    try {
      return to.publish(this.bytes)
    } finally {
      this.ring.endPublish(this.slot)
    }
  }
  /** Returns the slot unpublished. */
  cancel(): void {
    if (this.done) return
    this.done = true
    this.ring.cancel(this.slot)
  }
}

function pidAlive(pid: number): boolean {
  if (!(pid > 0)) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A transport to the buses of other processes of this user on this machine.
 * @example
 * const ipc = createIpcTransport()
 * bus.addTransport(ipc)
 * ipc.on('peer-lost', (e) => log.warn('process %d gone, %d slots reclaimed', e.pid, e.reclaimed))
 */
export function createIpcTransport(opts: IpcTransportOptions = {}): IpcTransport {
  return new IpcTransport(opts)
}
