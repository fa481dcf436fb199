/** `onbus topics`: the topics on the bus, with types, QoS, publishers and subscribers. */
import type { Command } from 'commander'
import Table from 'cli-table3'
import type { QoS } from '../../bus/qos.js'
import type { StatsSnapshot } from '../../daemon/stats.js'
import { fail, fmtRate, ipcDir, ipcDirOption, joinBus, jsonLine, remoteEndpoints, untilSignal, watchStats } from '../common.js'

export interface TopicListing {
  name: string
  type: string | null
  codec: string
  qos: QoS | null
  publishers: string[]
  subscribers: string[]
  rate: number | null
}

function qosText(q: QoS | null): string {
  if (!q) return '-'
  const inf = (v: number | null) => (v === null || v === Infinity ? '∞' : `${v} ms`)
  return `${q.reliability}, depth ${q.depth}, ${q.overflow}, ${q.durability}, deadline ${inf(q.deadlineMs)}`
}

export function register(program: Command): void {
  ipcDirOption(
    program
      .command('topics')
      .description('list the topics the daemon and other processes on the bus have, with types, QoS, publishers and subscribers')
      .option('--json', 'one JSON object per topic')
      .option('--wait <ms>', 'how long to listen for other processes announcing their endpoints', (v) => Number(v), 1500),
  ).action(async (o: { json?: boolean; wait: number; ipcDir?: string }) => {
    const j = joinBus(ipcDir(o), `onbus-topics-${process.pid}`)
    const stop = untilSignal()
    let snap: StatsSnapshot | null = null
    const ac = new AbortController()
    const done = watchStats(j.bus, j.ipc.dir, (s) => (snap = s), { timeoutMs: o.wait + 3000, signal: ac.signal }).catch(() => {})
    await new Promise((r) => setTimeout(r, o.wait))
    if (!snap) await Promise.race([done, new Promise((r) => setTimeout(r, 1000))])
    ac.abort()
    const byName = new Map<string, TopicListing>()
    const s = snap as StatsSnapshot | null
    for (const t of s?.topics ?? []) {
      if (t.name === '/onbus/stats') continue
      byName.set(t.name, {
        name: t.name,
        type: t.type,
        codec: t.codec,
        qos: t.qos,
        publishers: t.publishers.filter((p) => !p.remote).map((p) => `${p.source} (daemon)`),
        subscribers: t.subscribers.filter((x) => !x.forwarder).map((x) => `${x.id} (daemon)`),
        rate: t.rate,
      })
    }
    for (const e of remoteEndpoints(j.ipc)) {
      if (e.topic === '/onbus/stats') continue
      let t = byName.get(e.topic)
      if (!t) byName.set(e.topic, (t = { name: e.topic, type: null, codec: e.codec, qos: null, publishers: [], subscribers: [], rate: null }))
      const who = e.source ?? e.id
      if (e.kind === 'publisher') {
        t.qos ??= e.qos as QoS
        if (!t.publishers.some((p) => p.startsWith(who))) t.publishers.push(who)
      } else if (!t.subscribers.some((p) => p.startsWith(e.id))) t.subscribers.push(e.id)
    }
    stop.dispose()
    j.close()
    await done
    const list = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))
    if (!s && list.length === 0) {
      fail(Object.assign(new Error(`No onbus daemon or bus process found in ${j.ipc.dir}`), { code: 'ERR_ONBUS_NO_DAEMON' }), 'onbus topics')
      return
    }
    if (o.json) {
      for (const t of list) jsonLine(t)
      return
    }
    const table = new Table({ head: ['topic', 'type', 'codec', 'QoS', 'publishers', 'subscribers', 'msg/s'], style: { head: [], border: [] }, wordWrap: true })
    for (const t of list) table.push([t.name, t.type ?? '-', t.codec, qosText(t.qos), t.publishers.join('\n') || '-', t.subscribers.join('\n') || '-', fmtRate(t.rate)])
    process.stdout.write(`${table.toString()}\n`)
  })
}
