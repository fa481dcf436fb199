/**
 * Link kinds of the daemon: each kind brings the JSON Schema fragment of its
 * options and a `create()` that opens it. The configuration is checked
 * against every kind's schema before anything opens; `create()` runs only for
 * a checked configuration.
 *
 * `mavlink` is the native MAVLink router (lib/mavlink/router.ts), options
 * checked against the router's own schema; `rtp-camera` is the RTP video
 * receiver (lib/video/receiver.ts).
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
import { createMavlinkRouter, mavlinkRouterConfigSchema, type MavlinkRouterConfig } from '../mavlink/router.js'
import { createRtpReceiver, type RtpReceiverOptions } from '../video/receiver.js'

/** Counters of a running link, as the daemon publishes them (cumulative; the daemon derives rates). */
export interface LinkCounters {
  rxMessages: number
  rxBytes: number
  txMessages: number
  txBytes: number
  /** Drops by reason (`kernel`, `truncated`, `ring`, `rx-error`, `tx-error`, …): never silent. */
  drops: Record<string, number>
  /** Connections (servers), or 1/0 connected (clients); endpoints up (MAVLink router). */
  connections?: number
  /** Per endpoint figures (MAVLink router). */
  endpoints?: { name: string; kind: string; up: boolean; framesIn: number; bytesIn: number; framesOut: number; bytesOut: number; peers: number; errors: number; drops: Record<string, number> }[]
  /** Receiver figures (RTP camera). */
  video?: Record<string, number>
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

// ---- MAVLink router and RTP camera --------------------------------------------

const msgIdList = { type: 'array', items: { type: 'integer', minimum: 0, maximum: 16777215 }, uniqueItems: true } as const

/** The `mavlink` kind's options: the router's own configuration ({@link mavlinkRouterConfigSchema}) plus `msgIds`. */
const mavlinkKindSchema = (() => {
  const { $id: _id, title: _t, ...rest } = mavlinkRouterConfigSchema
  // The endpoint alternatives, selected by `kind` (if/then), so that an error names the endpoint kind's own keys
  // instead of every alternative's complaint.
  const alts = rest.properties.endpoints.items.oneOf as unknown as readonly { properties: { kind: { const: string } } }[]
  const kinds = alts.map((a) => a.properties.kind.const)
  const items = {
    type: 'object',
    required: ['kind'],
    properties: { kind: { enum: kinds } },
    allOf: alts.map((a) => ({ if: { type: 'object', required: ['kind'], properties: { kind: { const: a.properties.kind.const } } }, then: a })),
  }
  return { ...rest, properties: { ...rest.properties, endpoints: { ...rest.properties.endpoints, items }, msgIds: msgIdList } }
})()

/**
 * A native MAVLink router as a link: its endpoints come from the
 * configuration; its local endpoint is the link's source (every frame routed
 * to it, or only `msgIds`, one whole frame per message, stamped with the
 * kernel receive time) and sink (a frame published on a topic that feeds the
 * link is routed like any endpoint's traffic).
 */
async function createMavlinkKind(c: LinkConfig): Promise<Running> {
  const { kind: _k, msgIds, ...routerConfig } = c as LinkConfig & { msgIds?: number[] }
  const router = await createMavlinkRouter(routerConfig as unknown as MavlinkRouterConfig)
  router.on('error', () => {}) // endpoint failures are counted per endpoint (errors, lastErrno)
  const port = router.port(msgIds ? { msgIds } : {})
  const events = new EventEmitter()
  router.once('close', () => events.emit('close'))
  const cur: { bytes: Uint8Array; rx: bigint } = { bytes: new Uint8Array(0), rx: 0n }
  const batch: BatchLike = { length: 1, copy: () => cur.bytes.slice(), rxTime: () => cur.rx }
  const source: BatchSource = {
    onBatch: (h) =>
      port.onFrame((f, rx) => {
        cur.bytes = f.bytes
        cur.rx = rx
        h(batch)
      }),
    once: (e, f) => events.once(e, f),
    removeListener: (e, f) => events.removeListener(e, f),
  }
  let txDropped = 0
  const sink: DatagramSink = {
    send: (d) => {
      if (router.closed) {
        txDropped++
        return true
      }
      return port.send(d)
    },
    on: (e, f) => events.on(e, f),
    removeListener: (e, f) => events.removeListener(e, f),
  }
  const names = routerConfig.endpoints as { name?: string }[]
  return {
    describe: () => `mavlink router: ${router.stats().endpoints.filter((e) => e.kind !== 'local' && e.kind !== 'tcp-connection').map((e) => e.name).join(', ') || `${names.length} endpoints`}`,
    source,
    sink,
    counters: () => {
      const s = router.stats()
      const drops: Record<string, number> = { 'router-events': s.eventsDropped, 'closed': txDropped }
      const out: LinkCounters = { rxMessages: 0, rxBytes: 0, txMessages: 0, txBytes: 0, drops, endpoints: [] }
      for (const e of s.endpoints) {
        // In: frames the router got from its endpoints (the local one's are the topic's); out: frames it sent them.
        out.rxMessages += e.framesIn
        out.rxBytes += e.bytesIn
        out.txMessages += e.framesOut
        out.txBytes += e.bytesOut
        const ed: Record<string, number> = {}
        for (const [k, v] of Object.entries(e.drops)) if (v) drops[k] = (drops[k] ?? 0) + (ed[k] = v)
        for (const [k, v] of Object.entries(e.parser.rejected)) if (v) drops[`parser-${k}`] = (drops[`parser-${k}`] ?? 0) + (ed[`parser-${k}`] = v)
        out.endpoints!.push({ name: e.name, kind: e.kind, up: e.up, framesIn: e.framesIn, bytesIn: e.bytesIn, framesOut: e.framesOut, bytesOut: e.bytesOut, peers: e.peers, errors: e.errors, drops: ed })
      }
      for (const k of Object.keys(drops)) if (!drops[k]) delete drops[k]
      out.connections = s.endpoints.filter((e) => e.kind !== 'local' && e.up).length
      return out
    },
    close: async () => {
      port.close()
      const closed = new Promise<void>((r) => router.once('close', () => r()))
      router.close()
      await closed
    },
  }
}

/** The `rtp-camera` kind's options: those of {@link createRtpReceiver} a file can state. */
const rtpCameraSchema = obj(
  'rtp-camera',
  {
    address: str,
    port,
    codec: { enum: ['h264', 'h265'] },
    payloadType: { type: 'integer', minimum: 0, maximum: 127 },
    latencyMs: { type: 'number', minimum: 0, maximum: 10000 },
    multicast: { type: 'object', additionalProperties: false, required: ['group'], properties: { group: str, interface: str, source: str } },
    rtcp: { anyOf: [bool, { const: 'mux' }, { type: 'object', additionalProperties: false, properties: { port, mux: bool, intervalMs: posInt } }] },
    keyframeRequest: { enum: ['pli', 'fir', false] },
    keyframeIntervalMs: { type: 'integer', minimum: 0 },
    format: { enum: ['annexb', 'length-prefixed'] },
    bufferBytes: posInt,
    maxFrameBytes: posInt,
    reorderPackets: posInt,
    rcvBuf: posInt,
    reuseAddr: bool,
    busyPollUs: { type: 'integer', minimum: 0, maximum: 1000000 },
  },
  ['port', 'codec'],
)

/** An RTP video receiver as a link: whole frames (codec {@link videoFrameCodec}) are its source. */
function createRtpCameraKind(c: LinkConfig): Running {
  const { kind: _k, ...opts } = c
  const rx = createRtpReceiver(opts as unknown as RtpReceiverOptions)
  rx.on('error', () => {}) // counted (rxErrors, rtcpSendErrors)
  const p = rx.ports()
  return {
    describe: () => `rtp-camera ${String(c.codec)} ${String(c.address ?? '127.0.0.1')}:${p.rtp}${p.rtcp !== undefined ? ` (rtcp ${p.rtcp})` : ''}`,
    source: rx,
    counters: () => {
      const s = rx.stats()
      return {
        rxMessages: s.framesComplete + s.framesIncomplete,
        rxBytes: s.bytes,
        txMessages: s.receiverReportsSent + s.pliSent + s.firSent,
        txBytes: 0,
        drops: {
          kernel: s.kernelDrops,
          lost: s.lost,
          late: s.late,
          'frames-incomplete': s.framesIncomplete,
          'frames-dropped': s.framesDropped,
          malformed: s.malformed,
          'wrong-payload-type': s.wrongPayloadType,
          'foreign-ssrc': s.foreignSsrc,
          'depay-error': s.depayErrors,
          oversize: s.oversizeFrames,
          truncated: s.truncatedDatagrams,
          'rx-error': s.rxErrors,
        },
        video: { packets: s.packets, framesComplete: s.framesComplete, framesIncomplete: s.framesIncomplete, keyframes: s.keyframes, lost: s.lost, late: s.late, duplicates: s.duplicates, kernelDrops: s.kernelDrops, jitter: s.jitter, ssrc: s.ssrc, senderReports: s.senderReports, pliSent: s.pliSent },
      }
    },
    close: () => closeOf(rx),
  }
}

/** Every kind of this build. */
export const allKinds: Record<string, LinkKind> = {
  ...builtinKinds,
  mavlink: { schema: mavlinkKindSchema, schemaWithoutKind: true, create: (c) => createMavlinkKind(c) },
  'rtp-camera': { schema: rtpCameraSchema, create: (c) => createRtpCameraKind(c) },
}

/** The kinds of this build, by name. (Async for callers written when some kinds were loaded at start.) */
export async function loadKinds(): Promise<Map<string, LinkKind>> {
  return new Map(Object.entries(allKinds))
}
