/**
 * The daemon's figures, as published on `/onbus/stats` (JSON, one message per
 * interval) and read by `onbus stats` / `onbus topics` in other processes.
 */
import type { QoS } from '../bus/qos.js'
import type { IpcStats } from '../bus/ipc/transport.js'
import type { TopicInfo } from '../bus/topic.js'
import type { LinkCounters } from './kinds.js'
import type { ModuleStatus } from './modules.js'

/** Rates from cumulative counters: per second over the time between two readings (at least 0.5 s apart). */
export class RateMeter {
  private prev: { t: number; rxM: number; rxB: number; txM: number; txB: number } | null = null
  private last = { rxRate: 0, rxBandwidth: 0, txRate: 0, txBandwidth: 0 }
  update(c: LinkCounters): { rxRate: number; rxBandwidth: number; txRate: number; txBandwidth: number } {
    const t = performance.now()
    const p = this.prev
    if (p === null) {
      this.prev = { t, rxM: c.rxMessages, rxB: c.rxBytes, txM: c.txMessages, txB: c.txBytes }
      return this.last
    }
    const dt = (t - p.t) / 1000
    if (dt < 0.5) return this.last
    this.last = {
      rxRate: Math.max(0, (c.rxMessages - p.rxM) / dt),
      rxBandwidth: Math.max(0, (c.rxBytes - p.rxB) / dt),
      txRate: Math.max(0, (c.txMessages - p.txM) / dt),
      txBandwidth: Math.max(0, (c.txBytes - p.txB) / dt),
    }
    this.prev = { t, rxM: c.rxMessages, rxB: c.rxBytes, txM: c.txMessages, txB: c.txBytes }
    return this.last
  }
}

export interface LatencyNs {
  p50: number | null
  p99: number | null
}

export interface LinkFigures {
  name: string
  kind: string
  describe: string
  rxRate: number
  rxBandwidth: number
  txRate: number
  txBandwidth: number
  rxMessages: number
  rxBytes: number
  txMessages: number
  txBytes: number
  /** Kernel receive → bus publish of the topics this link feeds (worst of them). */
  latency: LatencyNs
  drops: Record<string, number>
  connections?: number
  /** MAVLink router: per endpoint counters and drops. */
  endpoints?: LinkCounters['endpoints']
  /** RTP camera: receiver counters (frames complete/incomplete, lost, late, kernel drops, jitter …). */
  video?: Record<string, number>
  feeds: string[]
}

export interface TopicFigures {
  name: string
  /** What the payload is (`velodyne/vlp16`, `mavlink`, `video/h264`, …) or null. */
  type: string | null
  codec: string
  qos: QoS
  publishers: { id: string; source: string; remote: string | null; published: number }[]
  subscribers: { id: string; kind: string; forwarder: string | null; delivered: number; dropped: number }[]
  rate: number
  bandwidth: number | null
  published: number
  /** Publish → delivery. */
  latency: LatencyNs
  /** Kernel receive → publish (link-fed topics). */
  rxLatency: LatencyNs
  drops: number
  dropsByReason: Record<string, number>
  refused: number
}

/** One `/onbus/stats` message. */
export interface StatsSnapshot {
  time: number
  daemon: { pid: number; startedAt: number; uptimeS: number; config: string; reloads: number; ipcDir: string | null; cpuPercent: number | null; rssBytes: number }
  links: LinkFigures[]
  topics: TopicFigures[]
  modules: ModuleStatus[]
  sims: Record<string, unknown>[]
  /** The daemon's cross-process transport: peers, messages carried, drops by reason (`too-large`, `shm-full`, `stale`, `stalled-peer`, `decode-error`). */
  ipc: IpcFigures | null
}

export type IpcFigures = IpcStats & { dir: string; dropsByReason: Record<string, number> }

export interface SnapshotInput {
  pid: number
  startedAt: number
  config: string
  reloads: number
  ipcDir: string | null
  cpuPercent: number | null
  links: { name: string; kind: string; describe: string; counters: LinkCounters; meter: RateMeter }[]
  feeds: { topic: string; link: string; dir: 'from' | 'to' }[]
  topics: { info: TopicInfo; type: string | null; dropsByReason: Record<string, number> }[]
  modules: ModuleStatus[]
  sims: Record<string, unknown>[]
  ipc: IpcFigures | null
}

/** CPU of this process (all threads, user + system) as a percentage of one core since the previous call. */
export class CpuMeter {
  private prev = { t: performance.now(), u: process.cpuUsage() }
  read(): number | null {
    const t = performance.now()
    const u = process.cpuUsage()
    const dt = t - this.prev.t
    if (dt < 200) return null
    const pct = ((u.user - this.prev.u.user + u.system - this.prev.u.system) / 1000 / dt) * 100
    this.prev = { t, u }
    return Math.round(pct * 10) / 10
  }
}

const worse = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b))

export function statsSnapshot(i: SnapshotInput): StatsSnapshot {
  const topicInfo = new Map(i.topics.map((t) => [t.info.name, t.info]))
  const links: LinkFigures[] = i.links.map((l) => {
    const c = l.counters
    const r = l.meter.update(c)
    const latency: LatencyNs = { p50: null, p99: null }
    const feeds: string[] = []
    for (const f of i.feeds) {
      if (f.link !== l.name) continue
      feeds.push(f.dir === 'from' ? `→ ${f.topic}` : `← ${f.topic}`)
      const t = topicInfo.get(f.topic)
      if (f.dir === 'from' && t) {
        latency.p50 = worse(latency.p50, t.stats.rxLatency.p50)
        latency.p99 = worse(latency.p99, t.stats.rxLatency.p99)
      }
    }
    return { name: l.name, kind: l.kind, describe: l.describe, ...r, rxMessages: c.rxMessages, rxBytes: c.rxBytes, txMessages: c.txMessages, txBytes: c.txBytes, latency, drops: c.drops, connections: c.connections, ...(c.endpoints ? { endpoints: c.endpoints } : {}), ...(c.video ? { video: c.video } : {}), feeds }
  })
  const topics: TopicFigures[] = i.topics.map(({ info, type, dropsByReason }) => ({
    name: info.name,
    type,
    codec: info.codec,
    qos: info.qos,
    publishers: info.publishers.map((p) => ({ id: p.id, source: p.source, remote: p.remote ?? null, published: p.published })),
    subscribers: info.subscribers.map((s) => ({ id: s.id, kind: s.kind, forwarder: s.forwarder ?? null, delivered: s.delivered, dropped: s.dropped })),
    rate: info.stats.rate,
    bandwidth: info.stats.bandwidth,
    published: info.stats.published,
    latency: { p50: info.stats.latency.p50, p99: info.stats.latency.p99 },
    rxLatency: { p50: info.stats.rxLatency.p50, p99: info.stats.rxLatency.p99 },
    drops: info.stats.drops,
    dropsByReason,
    refused: info.stats.refused,
  }))
  return {
    time: Date.now(),
    daemon: { pid: i.pid, startedAt: i.startedAt, uptimeS: Math.round((Date.now() - i.startedAt) / 1000), config: i.config, reloads: i.reloads, ipcDir: i.ipcDir, cpuPercent: i.cpuPercent, rssBytes: process.memoryUsage.rss() },
    links,
    topics,
    modules: i.modules,
    sims: i.sims,
    ipc: i.ipc,
  }
}
