/**
 * The MAVLink router: endpoints (UART/PTY, UDP server and client, TCP server
 * and client) owned and served natively on the reactor thread, frames routed
 * by the system/component ids learned from traffic (native/mavlink/router.h
 * states the rules). JavaScript sees frames only through {@link MavlinkRouter.port}
 * and only the message ids a port subscribed to; with no subscriber no frame
 * crosses into JavaScript.
 *
 * @example
 * const router = await createMavlinkRouter({
 *   endpoints: [
 *     { kind: 'uart', name: 'fc', path: '/dev/ttyACM0', baud: 115200 },
 *     { kind: 'udp-server', name: 'gcs', address: '0.0.0.0', port: 14550 },
 *   ],
 * })
 * const port = router.port({ msgIds: [0] })        // HEARTBEAT only
 * port.onFrame((f) => console.log('heartbeat from', f.sysid))
 * router.on('endpoint', (e) => console.log(e.endpoint, 'has', e.sysid, e.compid))
 */
import { EventEmitter } from 'node:events'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { native } from '../../bindings/index.js'
import { errnoException, invalidArgType, invalidArgValue, onbusError, type OnbusSystemError } from '../errors.js'
import { loadBinding, type PortBinding } from '../links/serial/binding.js'
import type { Dialect } from './codec.js'
import { HEADER_V2, IFLAG_SIGNED, MavlinkFrame, STX_V1 } from './frame.js'
import type { MavlinkFrameListener, MavlinkPort } from './port.js'
import {
  endpointDefaultName,
  validateMavlinkRouterConfig,
  type MavlinkRouterConfig,
  type MavlinkRouterEndpointConfig,
  type UartEndpointConfig,
} from './router-config.js'

export * from './router-config.js'

/** @internal native/mavlink/router.h */
interface NativeMavRouter {
  addEndpoint(spec: Record<string, unknown>): number
  removeEndpoint(index: number): void
  adoptFd(index: number, fd: number): number
  localAddress(index: number): [string, number, 4 | 6] | undefined
  setLocal(on: boolean, ids: number[] | null): void
  send(bytes: Uint8Array): number
  stats(): { endpoints: NativeEndpointStats[]; eventsDropped?: number }
  routes(): [number, number, number][]
  setBusyPoll(us: number): void
  ref(): void
  unref(): void
  close(): void
}
type NativeRouterEvent = [type: number, endpoint: number, a: number, b: number, syscall: string | undefined, name: string]
interface NativeMavRouterCtor {
  new (dialect: Int32Array, onFrames: (bytes: ArrayBuffer, meta: Uint32Array) => void, onEvents: (events: NativeRouterEvent[]) => void): NativeMavRouter
}

const KIND = { 'udp-server': 0, 'udp-client': 1, 'tcp-server': 2, 'tcp-client': 3, uart: 4 } as const
const KIND_NAME = ['udp-server', 'udp-client', 'tcp-server', 'tcp-client', 'uart', 'tcp-connection', 'local'] as const
export type MavlinkRouterEndpointKind = (typeof KIND_NAME)[number]

const EV_LEARNED = 1
const EV_CONNECT = 2
const EV_DISCONNECT = 3
const EV_ERROR = 4
const EV_REMOVED = 5
const META_WORDS = 5

/** Why frames were not sent where they would have gone (per endpoint). */
export interface MavlinkRouterDrops {
  /** Refused by this endpoint's input filter. */
  filterIn: number
  /** Refused by this endpoint's output filter. */
  filterOut: number
  /** Targeted at a system no other endpoint has seen (counted on the source). */
  noRoute: number
  /** A send failed (ECONNREFUSED, ENETUNREACH …; `lastErrno` holds the last). */
  sendError: number
  /** The socket's send buffer was full. */
  eagain: number
  /** The endpoint's queue (stream backlog, or JavaScript's for the local endpoint) was full. */
  overflow: number
  /** Not connected, or a UDP server that has no peer yet. */
  down: number
  /** Datagrams longer than 2048 bytes (cut; their whole frames still routed). */
  truncatedDatagram: number
}

interface NativeEndpointStats {
  index: number
  name: string
  kind: number
  up: boolean
  parent?: number
  framesIn: number
  bytesIn: number
  framesOut: number
  bytesOut: number
  drops: MavlinkRouterDrops
  connects: number
  disconnects: number
  errors: number
  lastErrno: number
  peers: number
  queuedBytes: number
  parser: MavlinkRouterParserStats
}

/** What the endpoint's parser saw (rejections by reason, as ParserStats). */
export interface MavlinkRouterParserStats {
  bytesIn: number
  bytesAccepted: number
  bytesDiscarded: number
  pending: number
  frames: number
  unknownId: number
  rejected: Record<'bad_crc' | 'truncated' | 'bad_length' | 'incompat_flags' | 'unknown_dropped', number>
}

/** Per endpoint counters. The local endpoint's `framesOut` counts frames handed to JavaScript. */
export interface MavlinkRouterEndpointStats extends Omit<NativeEndpointStats, 'kind' | 'parent' | 'index'> {
  kind: MavlinkRouterEndpointKind
  /** For an accepted TCP connection: the server's name. */
  server?: string
}

export interface MavlinkRouterStats {
  endpoints: MavlinkRouterEndpointStats[]
  /** Router events (learned systems, connects) lost because JavaScript did not keep up. */
  eventsDropped: number
}

/** Emitted as 'endpoint' when a (sysid, compid) is first seen behind an endpoint. */
export interface MavlinkRouterLearnedEvent {
  endpoint: string
  sysid: number
  compid: number
}

/** Options of {@link MavlinkRouter.port}. */
export interface MavlinkRouterPortOptions {
  /** Message ids this port receives (default: every id). */
  msgIds?: number[]
}

/** The router's local endpoint as a {@link MavlinkPort}. */
export interface MavlinkRouterPort extends MavlinkPort {
  /** Stops this port's delivery; other ports keep theirs. */
  close(): void
}

function dialectTable(d: Dialect): Int32Array {
  const t = new Int32Array(d.messages.size * 6)
  let i = 0
  const ofs = (def: Dialect['messages'] extends ReadonlyMap<number, infer D> ? D : never, name: string): number => {
    const f = def.fields.find((x) => x.name === name)
    return f !== undefined && f.arrayLength === 0 && (f.type === 'uint8_t' || f.type === 'int8_t') ? f.offset : -1
  }
  for (const def of d.messages.values()) {
    t.set([def.id, def.crcExtra, def.minLength, def.maxLength, ofs(def, 'target_system'), ofs(def, 'target_component')], i)
    i += 6
  }
  return t
}

async function resolve(address: string): Promise<{ ip: string; family: 4 | 6 }> {
  const fam = isIP(address)
  if (fam === 4 || fam === 6) return { ip: address, family: fam }
  const r = await lookup(address)
  return { ip: r.address, family: r.family === 6 ? 6 : 4 }
}

/** A UART the router reads but serialport opened (and reopens after a hang-up). */
interface SerialState {
  cfg: UartEndpointConfig
  name: string
  port: PortBinding | null
  timer: NodeJS.Timeout | null
  backoffMs: number
}

async function openSerial(cfg: UartEndpointConfig): Promise<PortBinding> {
  const binding = await loadBinding()
  const port = await binding.open({
    path: cfg.path,
    baudRate: cfg.baud ?? 115200,
    dataBits: 8,
    stopBits: 1,
    parity: 'none',
    rtscts: cfg.rtscts ?? false,
    xon: false,
    xoff: false,
    hupcl: true,
    lock: true,
  })
  if (port.fd === null) {
    await port.close().catch(() => {})
    throw onbusError('ERR_ONBUS_SERIALPORT_MISSING', `serialport gave no descriptor for ${cfg.path}`)
  }
  return port
}

interface PortState {
  ids: Set<number> | null
  listeners: MavlinkFrameListener[]
}

/**
 * A running router. Create one with {@link createMavlinkRouter}.
 *
 * Events: `'endpoint'` ({@link MavlinkRouterLearnedEvent}), `'connect'`
 * (endpoint name: a TCP client connected, a connection accepted, a UART
 * opened, a new UDP peer), `'disconnect'` (name, error?: the endpoint went
 * away; clients and UARTs retry with backoff), `'error'` (Node-shaped, with
 * `endpoint`: opening a UART failed, accept failed; not fatal to the router),
 * `'close'`.
 */
export class MavlinkRouter extends EventEmitter {
  #native: NativeMavRouter
  #names = new Map<number, string>()
  #byName = new Map<string, number>()
  #ports = new Set<PortState>()
  #serial = new Map<number, SerialState>()
  #dialect: Dialect
  #frame = new MavlinkFrame()
  #closed = false

  /** @internal use {@link createMavlinkRouter} */
  constructor(dialect: Dialect) {
    super()
    this.#dialect = dialect
    const Ctor = (native as unknown as { MavRouter: NativeMavRouterCtor }).MavRouter
    this.#native = new Ctor(
      dialectTable(dialect),
      (bytes, meta) => this.#onFrames(bytes, meta),
      (events) => this.#onEvents(events),
    )
    this.#names.set(0, 'local')
    this.#byName.set('local', 0)
  }

  /** @internal */
  async addEndpoint(e: MavlinkRouterEndpointConfig): Promise<void> {
    if (this.#closed) throw onbusError('ERR_ONBUS_ROUTER_CLOSED', 'The router is closed')
    const name = e.name ?? endpointDefaultName(e)
    if (this.#byName.has(name)) throw invalidArgValue('endpoint.name', name, 'is already used')
    const spec: Record<string, unknown> = { kind: KIND[e.kind], name, in: e.filters?.in, out: e.filters?.out }
    let serial: PortBinding | undefined
    if (e.kind === 'uart') {
      spec.path = e.path
      spec.rtscts = e.rtscts ?? false
      if (e.baud !== undefined) spec.baud = e.baud
      if (e.open === 'serialport') {
        try {
          serial = await openSerial(e)
        } catch (err) {
          const ex = (typeof (err as { code?: string }).code === 'string' ? err : errnoException(-5, 'open', e.path, undefined, (err as Error).message)) as Error & { endpoint?: string }
          ex.endpoint = name
          throw ex
        }
        spec.fd = serial.fd
      }
    } else {
      const { ip, family } = await resolve(e.address ?? '127.0.0.1')
      spec.ip = ip
      spec.family = family
      spec.port = e.port
    }
    if (e.kind === 'tcp-client' || e.kind === 'uart') {
      if (e.reconnectMinMs !== undefined) spec.reconnectMinMs = e.reconnectMinMs
      if (e.reconnectMaxMs !== undefined) spec.reconnectMaxMs = e.reconnectMaxMs
    }
    let index: number
    try {
      index = this.#native.addEndpoint(spec)
    } catch (err) {
      await serial?.close().catch(() => {})
      const ne = err as { errno?: number; syscall?: string }
      if (typeof ne.errno !== 'number') throw err
      const ex = errnoException(ne.errno, ne.syscall ?? 'addEndpoint', e.kind === 'uart' ? e.path : (spec.ip as string), e.kind === 'uart' ? undefined : e.port)
      ;(ex as OnbusSystemError & { endpoint?: string }).endpoint = name
      throw ex
    }
    this.#names.set(index, name)
    this.#byName.set(name, index)
    if (serial && e.kind === 'uart') this.#serial.set(index, { cfg: e, name, port: serial, timer: null, backoffMs: 0 })
  }

  /** A serialport-opened UART hung up: close serialport's handle, reopen with backoff, hand the new descriptor over. */
  #reopenSerial(index: number): void {
    const st = this.#serial.get(index)
    if (!st || this.#closed || st.timer) return
    const old = st.port
    st.port = null
    void old?.close().catch(() => {})
    const min = st.cfg.reconnectMinMs ?? 100
    st.backoffMs = st.backoffMs === 0 ? min : Math.min(st.backoffMs * 2, st.cfg.reconnectMaxMs ?? 5000)
    st.timer = setTimeout(() => {
      st.timer = null
      openSerial(st.cfg).then(
        (port) => {
          if (this.#closed || !this.#serial.has(index)) {
            void port.close().catch(() => {})
            return
          }
          const r = this.#native.adoptFd(index, port.fd!)
          if (r < 0) {
            void port.close().catch(() => {})
            this.#reopenSerial(index)
            return
          }
          st.port = port
          st.backoffMs = 0
        },
        () => this.#reopenSerial(index),
      )
    }, st.backoffMs)
    st.timer.unref()
  }

  /** Removes an endpoint (and, for a TCP server, its connections). */
  removeEndpoint(name: string): void {
    const i = this.#byName.get(name)
    if (i === undefined || i === 0) throw invalidArgValue('name', name, 'is not an endpoint of this router')
    this.#native.removeEndpoint(i)
    this.#dropSerial(i)
  }

  /** The bound address of a server endpoint (port 0 in the configuration: the port the kernel chose). */
  address(name: string): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    const i = this.#byName.get(name)
    const a = i === undefined ? undefined : this.#native.localAddress(i)
    if (!a) throw invalidArgValue('name', name, 'is not a bound endpoint of this router')
    return { address: a[0], port: a[1], family: a[2] === 6 ? 'IPv6' : 'IPv4' }
  }

  /**
   * A port on the router's local endpoint: frames sent through it are routed
   * like any endpoint's traffic (and teach the router the local sysid/compid);
   * it receives the frames routed to the local endpoint whose id it
   * subscribed to, with their kernel receive time.
   */
  port(options: MavlinkRouterPortOptions = {}): MavlinkRouterPort {
    if (options.msgIds !== undefined && !Array.isArray(options.msgIds)) throw invalidArgType('options.msgIds', 'an array of message ids', options.msgIds)
    const state: PortState = { ids: options.msgIds ? new Set(options.msgIds) : null, listeners: [] }
    this.#ports.add(state)
    const router = this
    return {
      send(frame: Uint8Array): boolean {
        if (router.#closed) throw onbusError('ERR_ONBUS_ROUTER_CLOSED', 'The router is closed')
        router.#native.send(frame)
        return true
      },
      onFrame(listener: MavlinkFrameListener): () => void {
        state.listeners.push(listener)
        router.#updateLocal()
        return () => {
          const k = state.listeners.indexOf(listener)
          if (k >= 0) state.listeners.splice(k, 1)
          router.#updateLocal()
        }
      },
      close(): void {
        router.#ports.delete(state)
        router.#updateLocal()
      },
    }
  }

  #updateLocal(): void {
    if (this.#closed) return
    let on = false
    let all = false
    const ids = new Set<number>()
    for (const p of this.#ports) {
      if (p.listeners.length === 0) continue
      on = true
      if (p.ids === null) all = true
      else for (const id of p.ids) ids.add(id)
    }
    this.#native.setLocal(on, all ? null : [...ids])
  }

  #onFrames(bytes: ArrayBuffer, meta: Uint32Array): void {
    const buf = new Uint8Array(bytes)
    const f = this.#frame
    for (let r = 0; r < meta.length; r += META_WORDS) {
      const off = meta[r]
      const len = meta[r + 1]
      const rxTimeNs = (BigInt(meta[r + 3]) << 32n) | BigInt(meta[r + 4])
      this.#fill(f, buf, off, len)
      for (const p of this.#ports) {
        if (p.listeners.length === 0 || (p.ids !== null && !p.ids.has(f.msgid))) continue
        for (const l of p.listeners) {
          f.reset()
          l(f, rxTimeNs)
        }
      }
    }
  }

  #fill(f: MavlinkFrame, buf: Uint8Array, off: number, len: number): void {
    f.buffer = buf
    f.offset = off
    f.length = len
    f.verified = false
    if (buf[off] === STX_V1) {
      f.version = 1
      f.payloadLength = buf[off + 1]
      f.incompatFlags = 0
      f.compatFlags = 0
      f.seq = buf[off + 2]
      f.sysid = buf[off + 3]
      f.compid = buf[off + 4]
      f.msgid = buf[off + 5]
      f.signed = false
    } else {
      f.version = 2
      f.payloadLength = buf[off + 1]
      f.incompatFlags = buf[off + 2]
      f.compatFlags = buf[off + 3]
      f.seq = buf[off + 4]
      f.sysid = buf[off + 5]
      f.compid = buf[off + 6]
      f.msgid = buf[off + 7] | (buf[off + 8] << 8) | (buf[off + 9] << 16)
      f.signed = (f.incompatFlags & IFLAG_SIGNED) !== 0
      if (f.signed) {
        const s = off + HEADER_V2 + f.payloadLength + 2
        f.linkId = buf[s]
        let ts = 0
        for (let k = 5; k >= 0; k--) ts = ts * 256 + buf[s + 1 + k]
        f.timestamp = ts
      } else {
        f.linkId = 0
        f.timestamp = 0
      }
    }
    f.def = this.#dialect.messages.get(f.msgid)
  }

  #onEvents(events: NativeRouterEvent[]): void {
    for (const [type, index, a, b, syscall, name] of events) {
      if (type === EV_CONNECT && name) {
        this.#names.set(index, name)
        this.#byName.set(name, index)
      }
      const ep = this.#names.get(index) ?? `#${index}`
      switch (type) {
        case EV_LEARNED:
          this.emit('endpoint', { endpoint: ep, sysid: a, compid: b } satisfies MavlinkRouterLearnedEvent)
          break
        case EV_CONNECT:
          this.emit('connect', ep)
          break
        case EV_DISCONNECT:
          this.emit('disconnect', ep, a !== 0 ? this.#error(a, syscall ?? 'read', ep) : undefined)
          if (this.#serial.has(index)) this.#reopenSerial(index)
          break
        case EV_ERROR:
          if (this.listenerCount('error') > 0) this.emit('error', this.#error(a, syscall ?? 'io', ep))
          break
        case EV_REMOVED:
          if (this.#byName.get(ep) === index) this.#byName.delete(ep)
          this.#names.delete(index)
          break
      }
    }
  }

  #error(errno: number, syscall: string, endpoint: string): OnbusSystemError & { endpoint: string } {
    const e = errnoException(-Math.abs(errno), syscall, undefined, undefined, `endpoint '${endpoint}'`) as OnbusSystemError & { endpoint: string }
    e.endpoint = endpoint
    return e
  }

  #dropSerial(index: number): void {
    const st = this.#serial.get(index)
    if (!st) return
    this.#serial.delete(index)
    if (st.timer) clearTimeout(st.timer)
    void st.port?.close().catch(() => {})
  }

  /** Counters per endpoint (accepted TCP connections that closed are folded into their server's). */
  stats(): MavlinkRouterStats {
    const s = this.#native.stats()
    const names = new Map(s.endpoints.map((e) => [e.index, e.name]))
    return {
      eventsDropped: s.eventsDropped ?? 0,
      endpoints: s.endpoints.map((e) => {
        const { index: _i, parent, kind, ...rest } = e
        const out: MavlinkRouterEndpointStats = { ...rest, kind: KIND_NAME[kind] }
        if (parent !== undefined) out.server = names.get(parent)
        return out
      }),
    }
  }

  /** Counters of one endpoint by name. */
  endpointStats(name: string): MavlinkRouterEndpointStats | undefined {
    return this.stats().endpoints.find((e) => e.name === name)
  }

  /** The routing table: which (sysid, compid) were seen behind which endpoint. */
  routes(): { endpoint: string; sysid: number; compid: number }[] {
    return this.#native.routes().map(([i, sysid, compid]) => ({ endpoint: this.#names.get(i) ?? `#${i}`, sysid, compid }))
  }

  /** Busy-poll the reactor thread this many microseconds before it sleeps (0 = off). */
  setBusyPoll(us: number): this {
    if (!Number.isInteger(us) || us < 0 || us > 1_000_000) throw invalidArgValue('us', us, 'must be an integer from 0 to 1000000')
    if (!this.#closed) this.#native.setBusyPoll(us)
    return this
  }

  /** Keeps the event loop alive while the router runs (the default). */
  ref(): this {
    this.#native.ref()
    return this
  }

  /** Lets the process exit while the router runs. */
  unref(): this {
    this.#native.unref()
    return this
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Closes every endpoint; 'close' follows on the next tick. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
    this.#ports.clear()
    for (const i of [...this.#serial.keys()]) this.#dropSerial(i)
    process.nextTick(() => this.emit('close'))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }
}

/**
 * Starts a router from a {@link MavlinkRouterConfig} (validated against
 * {@link mavlinkRouterConfigSchema}). Host names are resolved once, here.
 * Rejects with a Node-shaped error (`code`, `errno`, `syscall`, `address`,
 * `port`, `endpoint`) if an endpoint cannot be opened (a TCP client that
 * cannot connect yet, or a UART path that is absent, is not an error: it is
 * retried).
 */
export async function createMavlinkRouter(config: MavlinkRouterConfig): Promise<MavlinkRouter> {
  const c = validateMavlinkRouterConfig(config)
  const dialect =
    c.dialect === 'ardupilotmega' ? (await import('./generated/ardupilotmega.js')).DIALECT : (await import('./generated/common.js')).DIALECT
  const router = new MavlinkRouter(dialect)
  if (c.busyPollUs) router.setBusyPoll(c.busyPollUs)
  try {
    for (const e of c.endpoints) await router.addEndpoint(e)
  } catch (err) {
    router.close()
    throw err
  }
  return router
}
