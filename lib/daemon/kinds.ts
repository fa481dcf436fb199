/**
 * Link kinds of the daemon: each kind brings the JSON Schema fragment of its
 * options and a `create()` that opens it. The configuration is checked
 * against every kind's schema before anything opens; `create()` runs only for
 * a checked configuration.
 *
 * Kinds whose module is not part of this build (MAVLink router, RTP camera)
 * are registered with `unavailable` set: a file that uses them is refused at
 * validation with that reason. To wire one in, give `loadOptionalKinds()` its
 * module (see `MAVLINK_MODULE` below): a few lines.
 */
import { readFileSync } from 'node:fs'
import type { BatchLike, BatchSource, DatagramSink } from '../bus/link.js'
import { createUdpLink, type UdpLink } from '../links/udp/link.js'
import { createTcpLink, createTcpServer } from '../links/stream/tcp.js'
import { createUnixLink, createUnixServer } from '../links/stream/unix.js'
import { createSerialLink } from '../links/serial/link.js'
import type { StreamLink } from '../links/stream/link.js'
import type { StreamServer } from '../links/stream/server.js'
import { createCommandLink, createCommandServer, type CommandLink } from '../links/tls/command.js'
import type { KindSchema, LinkConfig } from '../config/load.js'
import { EventEmitter } from 'node:events'
import { onbusError } from '../errors.js'

/** Counters of a running link, as the daemon publishes them (cumulative; the daemon derives rates). */
export interface LinkCounters {
  rxMessages: number
  rxBytes: number
  txMessages: number
  txBytes: number
  /** Drops by reason (`kernel`, `truncated`, `ring`, `rx-error`, `tx-error`, …): never silent. */
  drops: Record<string, number>
  /** Connections (servers), or 1/0 connected (clients). */
  connections?: number
}

/** A link the daemon opened. */
export interface Running {
  /** One line for logs: `udp 127.0.0.1:2368`. */
  describe(): string
  /** What feeds topics (`topic.attach`), if the link receives. */
  source?: BatchSource
  /** What topics feed (`topic.sendTo`), if the link sends. */
  sink?: DatagramSink
  counters(): LinkCounters
  /** Closes the link (and, for servers, their connections); resolves when closed. */
  close(): Promise<void>
}

/** What `create()` gets besides the link's own configuration. */
export interface KindContext {
  name: string
  /** Resolves a path in the configuration relative to the configuration file. */
  resolvePath(p: string): string
  log(msg: string): void
}

/** A link kind. */
export interface LinkKind extends KindSchema {
  create(config: LinkConfig, ctx: KindContext): Promise<Running> | Running
}

// ---- schema pieces -----------------------------------------------------------

const port = { type: 'integer', minimum: 0, maximum: 65535 } as const
const port1 = { type: 'integer', minimum: 1, maximum: 65535 } as const
const str = { type: 'string', minLength: 1 } as const
const bool = { type: 'boolean' } as const
const posInt = { type: 'integer', minimum: 1 } as const
const framing = {
  anyOf: [
    { const: 'raw' },
    {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: { const: 'length' },
        lengthSize: { enum: [1, 2, 4] },
        littleEndian: bool,
        lengthOffset: { type: 'integer', minimum: 0 },
        adjust: { type: 'integer' },
        magic: { type: 'string' },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: { type: { const: 'delimited' }, delimiter: { type: 'string', minLength: 1 }, includeDelimiter: bool, skipEmpty: bool },
    },
  ],
} as const
const reconnect = {
  anyOf: [
    bool,
    { type: 'object', additionalProperties: false, properties: { initialDelay: posInt, maxDelay: posInt, factor: { type: 'number', minimum: 1 }, jitter: { type: 'number', minimum: 0, maximum: 1 }, maxAttempts: posInt } },
  ],
} as const
const streamCommon = { framing, maxFrameSize: posInt, rxBufferSize: posInt, rxRecords: posInt, highWaterMark: posInt, timestamps: bool } as const
const tcpTuning = { noDelay: bool, keepAlive: bool, userTimeout: { type: 'integer', minimum: 0 }, rcvBuf: posInt, sndBuf: posInt } as const
const tlsFiles = { cert: str, key: str, ca: { anyOf: [str, { type: 'array', items: str }] }, pins: { type: 'array', items: str }, insecurePlaintext: bool } as const

function obj(kind: string, properties: Record<string, unknown>, required: string[] = []): object {
  return { type: 'object', additionalProperties: false, required: ['kind', ...required], properties: { kind: { const: kind }, ...properties } }
}

// ---- adapters ----------------------------------------------------------------

/** A stream link as a datagram sink for `topic.sendTo()`: each message is written whole (use framing for boundaries). */
function streamSink(link: { write(d: Uint8Array): boolean; on(e: string, f: () => void): unknown; removeListener(e: string, f: () => void): unknown }): DatagramSink {
  return {
    send: (d) => link.write(d),
    on: (e, f) => link.on(e, f),
    removeListener: (e, f) => link.removeListener(e, f),
  }
}

/** A batch of one buffer (links that deliver `'data'` events). */
function oneBatch(d: Buffer): BatchLike {
  return { length: 1, copy: () => Uint8Array.prototype.slice.call(d), rxTime: () => undefined }
}

/**
 * A server as one source and one sink: batches of every connection (present
 * and future) go to the handlers; sends go to every connection. Connections
 * that cannot take more are skipped and counted (`tx-full`).
 */
class FanOut extends EventEmitter implements BatchSource, DatagramSink {
  readonly conns = new Set<StreamLink | CommandLink>()
  private readonly handlers = new Set<(b: BatchLike) => void>()
  private readonly offs = new Map<StreamLink | CommandLink, (() => void)[]>()
  txFull = 0

  add(c: StreamLink | CommandLink): void {
    this.conns.add(c)
    this.offs.set(c, [])
    for (const h of this.handlers) this.hook(c, h)
    c.once('close', () => {
      this.conns.delete(c)
      for (const off of this.offs.get(c) ?? []) off()
      this.offs.delete(c)
    })
    c.on('error', () => {}) // a connection's failure ends that connection only; counted as a disconnect
  }
  private hook(c: StreamLink | CommandLink, h: (b: BatchLike) => void): void {
    if ('onBatch' in c) this.offs.get(c)!.push(c.onBatch(h))
    else {
      const f = (d: Buffer) => h(oneBatch(d))
      c.on('data', f)
      this.offs.get(c)!.push(() => c.off('data', f))
    }
  }
  onBatch(h: (b: BatchLike) => void): () => void {
    this.handlers.add(h)
    for (const c of this.conns) this.hook(c, h)
    return () => this.handlers.delete(h)
  }
  send(d: Uint8Array): boolean {
    for (const c of this.conns) if (!c.write(d)) this.txFull++
    return true
  }
}

function streamCounters(s: ReturnType<StreamLink['stats']>): LinkCounters {
  return {
    rxMessages: s.rxRecords,
    rxBytes: s.rxBytes,
    txMessages: s.txCalls,
    txBytes: s.txBytes,
    drops: { 'framer-discarded-bytes': s.discardedBytes, 'oversize-frame': s.oversizeFrames, 'bad-frame': s.badFrames, 'iterator-overflow': s.onbusDrops },
  }
}

function closeOf(x: { close(cb?: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    x.close(() => resolve())
  })
}

function clientRunning(link: StreamLink, what: string): Running {
  link.on('error', () => {}) // reported through state and counters; a client link retries when configured to
  return {
    describe: () => what,
    // Not the link itself: its address() may be a path or nothing (the bus names a UDP publisher from it).
    source: { onBatch: (h) => link.onBatch(h as never), once: (e, f) => link.once(e, f), removeListener: (e, f) => link.removeListener(e, f) },
    sink: streamSink(link),
    counters: () => ({ ...streamCounters(link.stats()), connections: link.state === 'connected' ? 1 : 0 }),
    close: () => closeOf(link),
  }
}

function serverRunning(server: StreamServer, what: string): Running {
  const fan = new FanOut()
  server.on('connection', (l: StreamLink) => fan.add(l))
  server.on('error', () => {})
  return {
    describe: () => what,
    source: fan,
    sink: fan,
    counters: () => {
      const c: LinkCounters = { rxMessages: 0, rxBytes: 0, txMessages: 0, txBytes: 0, drops: { 'tx-full': fan.txFull, rejected: server.stats().rejected }, connections: fan.conns.size }
      for (const l of fan.conns) {
        const s = streamCounters((l as StreamLink).stats())
        c.rxMessages += s.rxMessages
        c.rxBytes += s.rxBytes
        c.txMessages += s.txMessages
        c.txBytes += s.txBytes
        for (const [k, v] of Object.entries(s.drops)) c.drops[k] = (c.drops[k] ?? 0) + v
      }
      return c
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve(), true)
      }),
  }
}

function readPem(ctx: KindContext, p: unknown): Buffer | undefined {
  return typeof p === 'string' ? readFileSync(ctx.resolvePath(p)) : undefined
}

function tlsOptions(c: LinkConfig, ctx: KindContext): Record<string, unknown> {
  const ca = c.ca === undefined ? undefined : Array.isArray(c.ca) ? c.ca.map((p) => readPem(ctx, p)!) : readPem(ctx, c.ca)
  return { cert: readPem(ctx, c.cert), key: readPem(ctx, c.key), ca, pins: c.pins, servername: c.servername, insecurePlaintext: c.insecurePlaintext }
}

// ---- the kinds ---------------------------------------------------------------

/** A UDP link's counters, drops by reason. */
function udpCounters(link: UdpLink): LinkCounters {
  const s = link.stats()
  return {
    rxMessages: s.rxDatagrams,
    rxBytes: s.rxBytes,
    txMessages: s.txDatagrams,
    txBytes: s.txBytes,
    drops: { kernel: s.kernelDrops, truncated: s.rxTruncated, 'rx-error': s.rxErrors, 'iterator-overflow': s.onbusDrops, 'tx-error': s.txErrors },
  }
}

export const builtinKinds: Record<string, LinkKind> = {
  udp: {
    schema: obj('udp', {
      address: str,
      port,
      family: { enum: [4, 6] },
      connect: { type: 'object', additionalProperties: false, required: ['address', 'port'], properties: { address: str, port: port1 } },
      reuseAddr: bool,
      reusePort: bool,
      ipv6Only: bool,
      rcvBuf: posInt,
      sndBuf: posInt,
      broadcast: bool,
      ttl: { type: 'integer', minimum: 1, maximum: 255 },
      multicastTtl: { type: 'integer', minimum: 0, maximum: 255 },
      multicastLoopback: bool,
      multicastInterface: str,
      dscp: { type: 'integer', minimum: 0, maximum: 63 },
      device: str,
      timestamps: bool,
      maxDatagramSize: { type: 'integer', minimum: 1, maximum: 65535 },
      rxSlots: posInt,
      gro: bool,
      receive: bool,
    }),
    create(c) {
      const { kind: _k, ...opts } = c
      const link = createUdpLink(opts as Parameters<typeof createUdpLink>[0])
      link.on('error', () => {}) // per-datagram errors are counted in stats (rx-error/tx-error)
      const a = link.address()
      return {
        describe: () => `udp ${a.address}:${a.port}${c.connect ? ` → ${(c.connect as { address: string; port: number }).address}:${(c.connect as { port: number }).port}` : ''}`,
        source: c.receive === false ? undefined : link,
        sink: link,
        counters: () => udpCounters(link),
        close: () => closeOf(link),
      }
    },
  },
  tcp: {
    schema: obj('tcp', { host: str, port: port1, family: { enum: [4, 6] }, localAddress: str, reconnect, connectTimeout: posInt, ...streamCommon, ...tcpTuning }, ['port']),
    create(c) {
      const { kind: _k, ...opts } = c
      const link = createTcpLink(opts as unknown as Parameters<typeof createTcpLink>[0])
      return clientRunning(link, `tcp → ${String(c.host ?? 'localhost')}:${String(c.port)}`)
    },
  },
  'tcp-server': {
    schema: obj('tcp-server', { host: str, port, ipv6Only: bool, reusePort: bool, backlog: posInt, maxConnections: posInt, ...streamCommon, ...tcpTuning }),
    create(c) {
      const { kind: _k, ...opts } = c
      const server = createTcpServer(opts as Parameters<typeof createTcpServer>[0])
      return serverRunning(server, `tcp-server ${String(c.host ?? '127.0.0.1')}:${server.port}`)
    },
  },
  unix: {
    schema: obj('unix', { path: str, abstract: bool, type: { enum: ['stream', 'seqpacket'] }, reconnect, connectTimeout: posInt, ...streamCommon }, ['path']),
    create(c, ctx) {
      const { kind: _k, ...opts } = c
      const path = c.abstract ? String(c.path) : ctx.resolvePath(String(c.path))
      return clientRunning(createUnixLink({ ...(opts as object), path } as Parameters<typeof createUnixLink>[0]), `unix → ${path}`)
    },
  },
  'unix-server': {
    schema: obj('unix-server', { path: str, abstract: bool, type: { enum: ['stream', 'seqpacket'] }, mode: { type: 'integer', minimum: 0, maximum: 0o777 }, backlog: posInt, maxConnections: posInt, ...streamCommon }, ['path']),
    create(c, ctx) {
      const { kind: _k, ...opts } = c
      const path = c.abstract ? String(c.path) : ctx.resolvePath(String(c.path))
      return serverRunning(createUnixServer({ ...(opts as object), path } as Parameters<typeof createUnixServer>[0]), `unix-server ${path}`)
    },
  },
  serial: {
    schema: obj(
      'serial',
      { path: str, baudRate: posInt, dataBits: { enum: [5, 6, 7, 8] }, stopBits: { enum: [1, 1.5, 2] }, parity: { enum: ['none', 'even', 'odd'] }, rtscts: bool, xon: bool, xoff: bool, hupcl: bool, exclusive: bool, lowLatency: bool, reconnect, ...streamCommon },
      ['path', 'baudRate'],
    ),
    create(c) {
      const { kind: _k, ...opts } = c
      return clientRunning(createSerialLink(opts as unknown as Parameters<typeof createSerialLink>[0]), `serial ${String(c.path)} @ ${String(c.baudRate)}`)
    },
  },
  'tls-command': {
    schema: obj('tls-command', { host: str, port: port1, servername: str, reconnect, connectTimeout: posInt, highWaterMark: posInt, ...tlsFiles }, ['port']),
    create(c, ctx) {
      const link = createCommandLink({ host: c.host as string | undefined, port: c.port as number, reconnect: c.reconnect as boolean | undefined, connectTimeout: c.connectTimeout as number | undefined, ...tlsOptions(c, ctx) })
      link.on('error', () => {})
      const src: BatchSource = {
        onBatch(h) {
          const f = (d: Buffer) => h(oneBatch(d))
          link.on('data', f)
          return () => link.off('data', f)
        },
      }
      return {
        describe: () => `tls-command → ${String(c.host ?? 'localhost')}:${String(c.port)}`,
        source: src,
        sink: streamSink(link),
        counters: () => {
          const s = link.stats()
          return { rxMessages: 0, rxBytes: s.rxBytes, txMessages: 0, txBytes: s.txBytes, drops: {}, connections: link.state === 'connected' ? 1 : 0 }
        },
        close: () => closeOf(link),
      }
    },
  },
  'tls-command-server': {
    schema: obj('tls-command-server', { host: str, port, ...tlsFiles }),
    async create(c, ctx) {
      const fan = new FanOut()
      const server = await createCommandServer({ host: c.host as string | undefined, port: c.port as number | undefined, ...tlsOptions(c, ctx) }, (l) => fan.add(l))
      let refused = 0
      server.on('clientError', () => refused++)
      server.on('error', () => {})
      return {
        describe: () => `tls-command-server ${String(c.host ?? '127.0.0.1')}:${server.port}`,
        source: fan,
        sink: fan,
        counters: () => {
          const c2: LinkCounters = { rxMessages: 0, rxBytes: 0, txMessages: 0, txBytes: 0, drops: { 'tls-refused': refused, 'tx-full': fan.txFull }, connections: fan.conns.size }
          for (const l of fan.conns) {
            const s = (l as CommandLink).stats()
            c2.rxBytes += s.rxBytes
            c2.txBytes += s.txBytes
          }
          return c2
        },
        close: async () => {
          for (const l of fan.conns) l.close()
          await closeOf(server)
        },
      }
    },
  },
}

// ---- kinds from modules that other branches bring -----------------------------

/**
 * Schema slot of the MAVLink router link (lib/mavlink/router-config.ts brings
 * the real one at merge: it replaces `endpoints` here).
 */
const mavlinkSlot = obj('mavlink', {
  systemId: { type: 'integer', minimum: 1, maximum: 255 },
  componentId: { type: 'integer', minimum: 0, maximum: 255 },
  signing: { type: 'object' },
  endpoints: { type: 'array', items: { type: 'object' } },
})

/** Schema slot of the RTP camera link (lib/video/* at merge). */
const rtpCameraSlot = obj('rtp-camera', {
  address: str,
  port,
  payloadType: { type: 'integer', minimum: 96, maximum: 127 },
  codec: { enum: ['h264', 'h265', 'mjpeg', 'raw'] },
  clockRate: posInt,
})

/**
 * Module specifiers looked up at start. A variable, not a literal, so that
 * this file compiles in a build that lacks them; at merge, make `load` adapt
 * the module's API to `Running` (the router: `createMavlinkRouter(config)`).
 */
const MAVLINK_MODULE = '../mavlink/router.js'
const MAVLINK_CONFIG_MODULE = '../mavlink/router-config.js'
const RTP_MODULE = '../video/index.js'

interface OptionalKind {
  kind: string
  module: string
  slot: object
  /** Modules and export names where the kind's own JSON Schema may be (the first found replaces the slot; it describes the options without `kind`). */
  schemaFrom: [module: string, exportName: string][]
  /** Turns the loaded module into the kind. */
  adapt(mod: Record<string, unknown>): LinkKind['create']
}

const optional: OptionalKind[] = [
  {
    kind: 'mavlink',
    module: MAVLINK_MODULE,
    slot: mavlinkSlot,
    schemaFrom: [
      [MAVLINK_MODULE, 'routerConfigSchema'],
      [MAVLINK_CONFIG_MODULE, 'routerConfigSchema'],
      [MAVLINK_CONFIG_MODULE, 'schema'],
    ],
    adapt: (mod) => async (c) => {
      const create = mod.createMavlinkRouter as (cfg: unknown) => { close(): unknown; stats?(): Record<string, number> }
      const router = await create(c)
      return { describe: () => 'mavlink router', counters: () => ({ rxMessages: 0, rxBytes: 0, txMessages: 0, txBytes: 0, drops: {} }), close: async () => void (await router.close()) }
    },
  },
  {
    kind: 'rtp-camera',
    module: RTP_MODULE,
    slot: rtpCameraSlot,
    schemaFrom: [[RTP_MODULE, 'rtpCameraSchema']],
    adapt: () => () => {
      throw onbusError('ERR_ONBUS_KIND_UNAVAILABLE', "link kind 'rtp-camera' is not wired in this build")
    },
  },
]

function withoutKind(c: LinkConfig): LinkConfig {
  const { kind: _k, ...rest } = c
  return rest as LinkConfig
}

/**
 * The kinds of this build: the built-in ones, then the optional ones whose
 * module loads (else registered `unavailable`, so that validation names the
 * reason instead of "unknown kind").
 */
export async function loadKinds(opts: { modules?: Partial<Record<'mavlink' | 'rtp-camera', string>> } = {}): Promise<Map<string, LinkKind>> {
  const kinds = new Map<string, LinkKind>(Object.entries(builtinKinds))
  for (const base of optional) {
    // A module given by path (tests, a plug-in) stands in for the one of this build, schema included.
    const given = opts.modules?.[base.kind as 'mavlink' | 'rtp-camera']
    const o: OptionalKind = given ? { ...base, module: given, schemaFrom: base.schemaFrom.map(([, n]) => [given, n]) } : base
    try {
      const mod = (await import(o.module)) as Record<string, unknown>
      let schema: object | undefined
      for (const [m, name] of o.schemaFrom) {
        if (schema) break
        try {
          schema = ((m === o.module ? mod : await import(m)) as Record<string, unknown>)[name] as object | undefined
        } catch {
          // not there: the next candidate, else the slot
        }
      }
      const create = o.adapt(mod)
      // The module's own schema knows nothing of `kind`: it is taken off before checking and creating.
      kinds.set(o.kind, schema ? { schema, schemaWithoutKind: true, create: (c, ctx) => create(withoutKind(c), ctx) } : { schema: o.slot, create })
    } catch (err) {
      const code = (err as { code?: string }).code
      const where = o.module.startsWith('../') ? `lib/${o.module.slice(3).replace(/\.js$/, '.ts')}` : o.module
      const why = code === 'ERR_MODULE_NOT_FOUND' ? `its module (${where}) is not in this build` : (err as Error).message
      kinds.set(o.kind, {
        schema: o.slot,
        unavailable: why,
        create: () => {
          throw onbusError('ERR_ONBUS_KIND_UNAVAILABLE', `link kind '${o.kind}' is not available in this build: ${why}`)
        },
      })
    }
  }
  return kinds
}
