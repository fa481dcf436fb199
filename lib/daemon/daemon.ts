/**
 * The onbus daemon: opens the links, topics, feeds, module processes and
 * simulators a configuration describes; reloads it (changing only what
 * changed); publishes its own figures on an IPC bus topic; closes everything
 * cleanly.
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBus, type Bus } from '../bus/bus.js'
import type { Topic } from '../bus/topic.js'
import type { Attachment } from '../bus/link.js'
import type { Subscription } from '../bus/subscription.js'
import { qosProfiles, type QoS } from '../bus/qos.js'
import { createIpcTransport, type IpcTransport } from '../bus/ipc/transport.js'
import { jsonCodec } from '../codecs/json.js'
import { rawCodec } from '../codecs/raw.js'
import { ConfigError, loadConfig, parseConfig, type ConfigIssue, type LinkConfig, type OnbusConfig, type TopicConfig } from '../config/load.js'
import { defaultConfig } from '../config/default.js'
import { onbusError } from '../errors.js'
import { loadKinds, type LinkCounters, type LinkKind, type Running } from './kinds.js'
import { ModuleProcess, type ModuleStatus } from './modules.js'
import { startSimLidar, type SimLidar } from '../sim/lidar.js'
import { startSimAutopilot } from '../sim/start.js'
import { createSimCamera } from '../sim/camera.js'
import { videoFrameCodec } from '../video/receiver.js'
import { statsSnapshot, CpuMeter, RateMeter, type StatsSnapshot } from './stats.js'

export const DEFAULT_STATS_TOPIC = '/onbus/stats'

/** Bytes as they are, named `mavlink`: one whole frame per message (what the recorder and `onbus echo` decode). */
const mavlinkFrameCodec = Object.freeze({ name: 'mavlink', encode: (b: Uint8Array) => b, decode: (b: Uint8Array) => b, byteLength: (b: Uint8Array) => b.length })

/** A daemon log record: `event` for machines, `text` for people. */
export interface DaemonLogRecord {
  event: string
  text: string
  [field: string]: unknown
}

export interface DaemonOptions {
  /** Configuration file; without one, the embedded default (the simulated vehicle). */
  file?: string
  /** IPC runtime directory (overrides the configuration's `ipc.dir`). */
  ipcDir?: string
  /** Receives every log record (default: none). */
  log?: (r: DaemonLogRecord) => void
}

/** What a reload did. */
export interface ReloadResult {
  ok: boolean
  issues?: ConfigIssue[]
  error?: string
  links: { added: string[]; removed: string[]; changed: string[]; kept: string[] }
  topics: { added: string[]; removed: string[]; changed: string[]; kept: string[] }
  modules: { added: string[]; removed: string[]; changed: string[]; kept: string[] }
}

interface LinkState {
  name: string
  config: LinkConfig
  running: Running
  meter: RateMeter
}

interface Feed {
  topic: string
  link: string
  dir: 'from' | 'to'
  key: string
  handle: Attachment | Subscription<unknown>
}

interface SimEntry {
  key: string
  config: unknown
  close(): void | Promise<void>
  describe(): Record<string, unknown>
}

/** Reads a MAVLink signing key file: 64 hex digits (what the daemon writes) or 32 raw bytes. */
export function readSigningKey(file: string): Buffer {
  const b = readFileSync(file)
  const hex = b.toString('latin1').trim()
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return Buffer.from(hex, 'hex')
  if (b.length === 32) return b
  throw onbusError('ERR_ONBUS_SIGNING_KEY', `${file}: not a MAVLink signing key (64 hex digits or 32 bytes)`)
}

/** Writes a signing key as 64 hex digits, owner-only (0600, also when the file existed). */
function writeSigningKey(file: string, key: Buffer): Buffer {
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  return key
}

/** The package root (where package.json is): for `${onbus}` in module commands. */
export function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const p = join(d, 'package.json')
    if (existsSync(p)) {
      try {
        if ((JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === 'onbus') return d
      } catch {
        // not ours
      }
    }
    d = dirname(d)
  }
  return process.cwd()
}

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x))
}

function diffKeys<T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined) {
  const A = a ?? {}
  const B = b ?? {}
  const added = Object.keys(B).filter((k) => !(k in A))
  const removed = Object.keys(A).filter((k) => !(k in B))
  const changed = Object.keys(B).filter((k) => k in A && stable(A[k]) !== stable(B[k]))
  const kept = Object.keys(B).filter((k) => k in A && stable(A[k]) === stable(B[k]))
  return { added, removed, changed, kept }
}

/** The QoS a topic's configuration states: a profile, overridden field by field. */
export function resolveQos(q: Record<string, unknown>): QoS {
  const { profile, ...rest } = q
  const base = profile ? qosProfiles[profile as keyof typeof qosProfiles] : undefined
  const defaults: Partial<QoS> = { durability: 'volatile', livelinessLeaseMs: Infinity }
  return { ...defaults, ...(base ?? {}), ...rest } as QoS
}

/**
 * The daemon. `Daemon.start()` validates, then opens; a configuration that
 * fails validation or a link that fails to open leaves nothing open.
 * @example
 * const d = await Daemon.start({ file: 'vehicle.yaml', log: (r) => console.log(r.text) })
 * process.on('SIGHUP', () => void d.reload())
 * process.on('SIGTERM', () => void d.close())
 */
export class Daemon extends EventEmitter {
  readonly bus: Bus
  readonly ipc: IpcTransport | null
  readonly statsTopic: Topic<StatsSnapshot>
  private config: OnbusConfig
  private readonly links = new Map<string, LinkState>()
  private readonly topics = new Map<string, Topic<unknown>>()
  private readonly feeds: Feed[] = []
  private readonly modules = new Map<string, ModuleProcess>()
  private readonly sims = new Map<string, SimEntry>()
  private readonly dropsByTopic = new Map<string, Record<string, number>>()
  private readonly ipcDrops: Record<string, number> = {}
  private readonly cpu = new CpuMeter()
  private lastCpu: number | null = null
  private statsTimer: NodeJS.Timeout | null = null
  private closed = false
  private keyDir: string | undefined
  private reloads = 0
  private readonly startedAt = Date.now()
  private readonly log: (event: string, fields: Record<string, unknown>, text: string) => void
  private readonly root = packageRoot()

  private constructor(
    private readonly kinds: Map<string, LinkKind>,
    config: OnbusConfig,
    private readonly opts: DaemonOptions,
  ) {
    super()
    this.config = config
    const sink = opts.log
    this.log = (event, fields, text) => sink?.({ event, text, ...fields })
    this.bus = createBus({ name: 'onbus-daemon' })
    this.bus.on('drop', (e: { topic: string; reason: string; count: number }) => {
      const r = this.dropsByTopic.get(e.topic) ?? {}
      r[e.reason] = (r[e.reason] ?? 0) + e.count
      this.dropsByTopic.set(e.topic, r)
    })
    // Events nobody else listens to must not become uncaught errors of the daemon.
    this.bus.on('error', (err: Error) => this.log('error', { error: err.message }, `bus: ${err.message}`))
    const ipcEnabled = config.ipc?.enabled ?? true
    this.ipc = ipcEnabled ? createIpcTransport({ dir: this.ipcDir }) : null
    if (this.ipc) {
      this.ipc.on('error', (err: Error) => this.log('error', { error: err.message }, `ipc: ${err.message}`))
      this.ipc.on('drop', (e: { reason: string; count: number }) => (this.ipcDrops[e.reason] = (this.ipcDrops[e.reason] ?? 0) + e.count))
      this.bus.addTransport(this.ipc)
    }
    this.statsTopic = this.bus.topic(config.stats?.topic ?? DEFAULT_STATS_TOPIC, {
      qos: { reliability: 'best-effort', depth: 1, overflow: 'drop-oldest', durability: 'transient-local', deadlineMs: Infinity, livelinessLeaseMs: Infinity },
      codec: jsonCodec<StatsSnapshot>(),
    })
  }

  /** The IPC runtime directory the daemon and its modules share. */
  get ipcDir(): string | undefined {
    return this.opts.ipcDir ?? this.config.ipc?.dir ?? process.env.ONBUS_IPC_DIR
  }

  /** Checks a configuration (the file, or the default) without opening anything. Throws {@link ConfigError}. */
  static async check(file?: string): Promise<OnbusConfig> {
    const kinds = await loadKinds()
    return file ? loadConfig(file, kinds) : parseConfig(JSON.stringify(defaultConfig()), '(default configuration)', kinds)
  }

  /** Validates the configuration, then opens everything it describes. */
  static async start(opts: DaemonOptions = {}): Promise<Daemon> {
    const kinds = await loadKinds()
    const file = opts.file ? resolve(opts.file) : undefined
    const config = file ? loadConfig(file, kinds) : parseConfig(JSON.stringify(defaultConfig()), '(default configuration)', kinds)
    const d = new Daemon(kinds, config, { ...opts, file })
    try {
      await d.openLinks(Object.keys(config.links ?? {}), config)
    } catch (err) {
      await d.close()
      throw err
    }
    for (const name of Object.keys(config.topics ?? {})) d.openTopic(name, config.topics![name])
    d.wireFeeds(config)
    for (const name of Object.keys(config.modules ?? {})) d.startModule(name, config)
    await d.startSims(config, Object.keys(config.sim ?? {}))
    d.startStats()
    d.log('ready', { links: d.links.size, topics: d.topics.size, modules: d.modules.size, ipcDir: d.ipc?.dir }, `onbus: running ${file ?? 'the default configuration (simulated vehicle)'}: ${d.links.size} links, ${d.topics.size} topics, ${d.modules.size} modules; stats on ${d.statsTopic.name}${d.ipc ? ` (${d.ipc.dir})` : ''}`)
    return d
  }

  private resolvePath = (p: string): string => (isAbsolute(p) ? p : resolve(this.opts.file ? dirname(this.opts.file) : process.cwd(), p))

  private expand = (s: string): string =>
    s.replace(/\$\{(node|onbus|ipc\.dir|config\.dir)\}/g, (_m, k: string) => {
      if (k === 'node') return process.execPath
      if (k === 'onbus') return this.root
      if (k === 'config.dir') return this.opts.file ? dirname(this.opts.file) : process.cwd()
      return this.ipc?.dir ?? ''
    })

  /** Opens links; on the first failure closes the ones this call opened and throws. */
  private async openLinks(names: string[], config: OnbusConfig): Promise<void> {
    const opened: string[] = []
    for (const name of names) {
      const lc = config.links![name]
      const kind = this.kinds.get(lc.kind)!
      let running: Running
      try {
        running = await kind.create(lc, { name, resolvePath: this.resolvePath, log: (m) => this.log('link-log', { link: name }, `link ${name}: ${m}`) })
      } catch (err) {
        for (const n of opened) {
          await this.links.get(n)!.running.close()
          this.links.delete(n)
        }
        const e = err as Error & { code?: string }
        const wrapped = onbusError(e.code ?? 'ERR_ONBUS_LINK_OPEN', `link '${name}' (${lc.kind}): ${e.message}`)
        Object.assign(wrapped, { cause: err, link: name })
        throw wrapped
      }
      this.links.set(name, { name, config: lc, running, meter: new RateMeter() })
      opened.push(name)
      this.log('link-open', { link: name, kind: lc.kind, describe: running.describe() }, `link ${name}: ${running.describe()}`)
    }
  }

  private async closeLink(name: string): Promise<void> {
    const l = this.links.get(name)
    if (!l) return
    for (let i = this.feeds.length - 1; i >= 0; i--) if (this.feeds[i].link === name) this.unfeed(i)
    this.links.delete(name)
    await l.running.close()
    this.log('link-close', { link: name }, `link ${name}: closed`)
  }

  private openTopic(name: string, tc: TopicConfig): void {
    const codec = tc.codec === 'json' ? jsonCodec<unknown>() : tc.codec === 'mavlink' ? mavlinkFrameCodec : tc.codec === 'video' ? videoFrameCodec : rawCodec
    const t = this.bus.topic<unknown>(name, { qos: resolveQos(tc.qos), codec: codec as never })
    t.on('error', (err: Error) => this.log('error', { topic: name, error: err.message }, `topic ${name}: ${err.message}`))
    this.topics.set(name, t)
    this.log('topic-open', { topic: name }, `topic ${name}: ${tc.codec ?? 'raw'}, ${tc.type ?? 'bytes'}`)
  }

  private closeTopic(name: string): void {
    for (let i = this.feeds.length - 1; i >= 0; i--) if (this.feeds[i].topic === name) this.unfeed(i)
    this.topics.get(name)?.close()
    this.topics.delete(name)
    this.dropsByTopic.delete(name)
    this.log('topic-close', { topic: name }, `topic ${name}: closed`)
  }

  private unfeed(i: number): void {
    const f = this.feeds[i]
    this.feeds.splice(i, 1)
    if ('detach' in f.handle) f.handle.detach()
    else f.handle.close()
  }

  /** Wires every feed of `config` that is not wired yet. */
  private wireFeeds(config: OnbusConfig): void {
    for (const [tname, tc] of Object.entries(config.topics ?? {})) {
      const topic = this.topics.get(tname)
      if (!topic) continue
      for (const l of tc.from ?? []) {
        const key = `${tname}<${l}`
        if (this.feeds.some((f) => f.key === key)) continue
        const link = this.links.get(l)
        if (!link?.running.source) {
          this.log('error', { topic: tname, link: l }, `topic ${tname}: link ${l} does not receive; feed skipped`)
          continue
        }
        this.feeds.push({ topic: tname, link: l, dir: 'from', key, handle: topic.attach(link.running.source) })
      }
      for (const x of tc.to ?? []) {
        const target = typeof x === 'string' ? { link: x } : x
        const key = `${tname}>${stable(target)}`
        if (this.feeds.some((f) => f.key === key)) continue
        const link = this.links.get(target.link)
        if (!link?.running.sink) {
          this.log('error', { topic: tname, link: target.link }, `topic ${tname}: link ${target.link} does not send; feed skipped`)
          continue
        }
        const sub = topic.sendTo(link.running.sink, { port: target.port, address: target.address, name: `link:${target.link}` })
        sub.on('error', (err: Error) => this.log('error', { topic: tname, link: target.link, error: err.message }, `topic ${tname} → ${target.link}: ${err.message}`))
        this.feeds.push({ topic: tname, link: target.link, dir: 'to', key, handle: sub as Subscription<unknown> })
      }
    }
  }

  private startModule(name: string, config: OnbusConfig): void {
    const m = new ModuleProcess(name, config.modules![name], this.expand, this.log)
    this.modules.set(name, m)
    m.start()
  }

  private async startSims(config: OnbusConfig, names: string[]): Promise<void> {
    const sim = config.sim ?? {}
    // Order matters little (each sim sends to a link opened before), but the autopilot first: its key file is what a companion waits for.
    for (const key of ['autopilot', 'camera', 'lidar'].filter((k) => names.includes(k))) {
      try {
        if (key === 'lidar' && sim.lidar) {
          const c = sim.lidar
          const l: SimLidar = startSimLidar(c)
          this.sims.set(key, { key, config: c, close: () => l.close(), describe: () => ({ sim: 'lidar', packets: l.packets, port: c.port }) })
          this.log('sim-start', { sim: 'lidar', port: c.port }, `sim lidar: VLP-16, ${c.rpm ?? 600} rpm, ~754 packets/s → ${c.address ?? '127.0.0.1'}:${c.port}`)
        } else if (key === 'autopilot' && sim.autopilot) {
          await this.startSimAutopilot(sim.autopilot)
        } else if (key === 'camera' && sim.camera) {
          const c = sim.camera
          const cam = createSimCamera({ host: c.address ?? '127.0.0.1', port: c.port, fps: c.fps, ...(c.clip ? { clip: this.resolvePath(c.clip) } : {}) })
          cam.on('error', (err: Error) => this.log('error', { sim: 'camera', error: err.message }, `sim camera: ${err.message}`))
          this.sims.set(key, {
            key,
            config: c,
            close: () => new Promise<void>((r) => cam.close(() => r())),
            describe: () => ({ sim: 'camera', codec: cam.codec, fps: cam.fps, framesSent: cam.framesSent, port: c.port }),
          })
          this.log('sim-start', { sim: 'camera', port: c.port }, `sim camera: ${cam.codec} ${cam.frames.length}-frame clip at ${cam.fps} fps over RTP → ${c.address ?? '127.0.0.1'}:${c.port}`)
        }
      } catch (err) {
        // A simulator that cannot start leaves the rest of the vehicle running; the log says why.
        this.log('error', { sim: key, error: (err as Error).message }, `sim ${key}: ${(err as Error).message}`)
      }
    }
  }

  /** Where the simulated autopilot's signing key is kept when the configuration names no file. */
  private defaultKeyFile(): string {
    if (this.ipc) return join(this.ipc.dir, 'mavlink-signing.key')
    this.keyDir ??= mkdtempSync(join(tmpdir(), 'onbus-'))
    return join(this.keyDir, 'mavlink-signing.key')
  }

  private async startSimAutopilot(c: NonNullable<NonNullable<OnbusConfig['sim']>['autopilot']>): Promise<void> {
    let key: Buffer | null = null
    let keyFile: string | undefined
    if (c.signing ?? true) {
      keyFile = c.keyFile ? this.resolvePath(c.keyFile) : this.defaultKeyFile()
      key = c.keyFile && existsSync(keyFile) ? readSigningKey(keyFile) : writeSigningKey(keyFile, randomBytes(32))
    }
    const s = await startSimAutopilot({
      udp: { address: '127.0.0.1', port: 0, remote: { address: c.address ?? '127.0.0.1', port: c.port } },
      key,
      sysid: c.systemId ?? 1,
      ...(c.flavour ? { flavour: c.flavour } : {}),
      ...(c.attitudeHz !== undefined ? { attitudeHz: c.attitudeHz } : {}),
      ...(c.positionHz !== undefined ? { positionHz: c.positionHz } : {}),
    })
    this.sims.set('autopilot', {
      key: 'autopilot',
      config: c,
      close: () => s.close(),
      describe: () => ({ sim: 'autopilot', sysid: c.systemId ?? 1, signing: key !== null, keyFile: keyFile ?? null, udp: s.udp?.port, to: c.port, commands: s.sim.stats.commands }),
    })
    this.log('sim-start', { sim: 'autopilot', port: c.port, keyFile }, `sim autopilot: sysid ${c.systemId ?? 1}, MAVLink 2${key ? `, signed (key ${keyFile}, mode 0600)` : ', unsigned'} → ${c.address ?? '127.0.0.1'}:${c.port}`)
  }

  private startStats(): void {
    const ms = this.config.stats?.intervalMs ?? 1000
    if (this.statsTimer) clearInterval(this.statsTimer)
    this.statsTimer = setInterval(() => this.publishStats(), ms)
    this.publishStats()
  }

  /** Figures of the daemon right now (what `/onbus/stats` carries). */
  snapshot(): StatsSnapshot {
    const links: { name: string; kind: string; describe: string; counters: LinkCounters; meter: RateMeter }[] = []
    for (const l of this.links.values()) links.push({ name: l.name, kind: l.config.kind, describe: l.running.describe(), counters: l.running.counters(), meter: l.meter })
    const feeds = this.feeds.map((f) => ({ topic: f.topic, link: f.link, dir: f.dir }))
    const modules: ModuleStatus[] = [...this.modules.values()].map((m) => m.sample())
    return statsSnapshot({
      pid: process.pid,
      startedAt: this.startedAt,
      config: this.opts.file ?? '(default)',
      reloads: this.reloads,
      ipcDir: this.ipc?.dir ?? null,
      cpuPercent: (this.lastCpu = this.cpu.read() ?? this.lastCpu),
      links,
      feeds,
      topics: [...this.topics.values()].map((t) => ({ info: t.info(), type: this.config.topics?.[t.name]?.type ?? null, dropsByReason: this.dropsByTopic.get(t.name) ?? {} })),
      modules,
      sims: [...this.sims.values()].map((s) => s.describe()),
      ipc: this.ipc ? { ...this.ipc.stats(), dir: this.ipc.dir, dropsByReason: { ...this.ipcDrops } } : null,
    })
  }

  private publishStats(): void {
    if (this.closed) return
    const s = this.snapshot()
    this.statsTopic.publish(s)
    this.emit('stats', s)
  }

  /**
   * Reads the configuration again and applies the difference. A configuration
   * that fails validation changes nothing (the result carries the issues).
   */
  async reload(): Promise<ReloadResult> {
    const empty = { added: [], removed: [], changed: [], kept: [] }
    let next: OnbusConfig
    try {
      next = this.opts.file ? loadConfig(this.opts.file, this.kinds) : parseConfig(JSON.stringify(defaultConfig()), '(default configuration)', this.kinds)
    } catch (err) {
      const r: ReloadResult = { ok: false, issues: err instanceof ConfigError ? err.issues : undefined, error: (err as Error).message, links: empty, topics: empty, modules: empty }
      this.log('reload-refused', { issues: r.issues, error: r.error }, `onbus: reload refused, the running configuration stays:\n${r.error}`)
      return r
    }
    const prev = this.config
    const links = diffKeys(prev.links, next.links)
    const topics = diffKeys(prev.topics, next.topics)
    const modules = diffKeys(prev.modules, next.modules)
    const sims = diffKeys(prev.sim as Record<string, unknown> | undefined, next.sim as Record<string, unknown> | undefined)
    if (stable(prev.ipc) !== stable(next.ipc)) this.log('warning', {}, 'onbus: ipc settings changed; they apply at the next start')
    if ((prev.stats?.topic ?? DEFAULT_STATS_TOPIC) !== (next.stats?.topic ?? DEFAULT_STATS_TOPIC)) this.log('warning', {}, 'onbus: stats.topic changed; it applies at the next start')
    this.config = next
    for (const t of [...topics.removed, ...topics.changed]) this.closeTopic(t)
    for (const l of [...links.removed, ...links.changed]) await this.closeLink(l)
    let error: string | undefined
    for (const l of [...links.changed, ...links.added]) {
      try {
        await this.openLinks([l], next)
      } catch (err) {
        error = (err as Error).message
        // A changed link that cannot open with its new options goes back to the old ones; an added one
        // is left out of the running configuration, so that the next reload tries it again.
        const old = prev.links?.[l]
        next.links = { ...next.links }
        if (old) {
          try {
            await this.openLinks([l], { ...next, links: { ...next.links, [l]: old } })
            next.links[l] = old
            error += '; kept its previous options'
          } catch {
            delete next.links[l]
          }
        } else delete next.links[l]
        this.log('error', { link: l, error }, `onbus: ${error}`)
      }
    }
    for (const t of [...topics.changed, ...topics.added]) this.openTopic(t, next.topics![t])
    this.wireFeeds(next)
    for (const m of [...modules.removed, ...modules.changed]) {
      await this.modules.get(m)?.stop()
      this.modules.delete(m)
    }
    for (const m of [...modules.changed, ...modules.added]) this.startModule(m, next)
    for (const s of [...sims.removed, ...sims.changed]) {
      await this.sims.get(s)?.close()
      this.sims.delete(s)
    }
    await this.startSims(next, [...sims.changed, ...sims.added])
    if (stable(prev.stats) !== stable(next.stats)) this.startStats()
    this.reloads++
    const r: ReloadResult = { ok: error === undefined, error, links, topics, modules }
    const list = (d: { added: string[]; removed: string[]; changed: string[] }) => `+${d.added.length} -${d.removed.length} ~${d.changed.length}`
    this.log('reload', { links, topics, modules, error }, `onbus: reloaded: links ${list(links)}, topics ${list(topics)}, modules ${list(modules)}${error ? `; ${error}` : ''}`)
    return r
  }

  /** Stops modules and simulators, closes feeds, topics, links, the bus and the transport. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.statsTimer) clearInterval(this.statsTimer)
    await Promise.all([...this.modules.values()].map((m) => m.stop()))
    this.modules.clear()
    for (const s of this.sims.values()) await s.close()
    this.sims.clear()
    for (const t of [...this.topics.keys()]) this.closeTopic(t)
    for (const l of [...this.links.keys()]) await this.closeLink(l)
    this.bus.close()
    this.ipc?.close()
    if (this.keyDir) rmSync(this.keyDir, { recursive: true, force: true })
    this.log('closed', {}, 'onbus: closed')
  }
}
