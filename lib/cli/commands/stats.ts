/** `onbus stats`: the daemon's figures, live. */
import type { Command } from 'commander'
import Table from 'cli-table3'
import type { StatsSnapshot } from '../../daemon/stats.js'
import { fail, fmtBytes, fmtDrops, fmtNs, fmtRate, ipcDir, ipcDirOption, joinBus, jsonLine, untilSignal, watchStats } from '../common.js'

export function renderTables(s: StatsSnapshot): string {
  const links = new Table({ head: ['link', 'kind', 'rx msg/s', 'rx', 'tx msg/s', 'tx', 'latency p50', 'p99', 'drops'], style: { head: [], border: [] } })
  for (const l of s.links)
    links.push([l.name, l.describe, fmtRate(l.rxRate), fmtBytes(l.rxBandwidth), fmtRate(l.txRate), fmtBytes(l.txBandwidth), fmtNs(l.latency.p50), fmtNs(l.latency.p99), fmtDrops(l.drops)])
  const topics = new Table({ head: ['topic', 'type', 'msg/s', 'bandwidth', 'latency p50', 'p99', 'rx→pub p99', 'pubs', 'subs', 'drops'], style: { head: [], border: [] } })
  for (const t of s.topics)
    topics.push([t.name, t.type ?? t.codec, fmtRate(t.rate), fmtBytes(t.bandwidth), fmtNs(t.latency.p50), fmtNs(t.latency.p99), fmtNs(t.rxLatency.p99), t.publishers.length, t.subscribers.length, t.drops ? `${t.drops} ${fmtDrops(t.dropsByReason)}` : '0'])
  const details = detailLines(s).join('\n')
  const mods = s.modules.map((m) => `${m.name}: ${m.state}${m.pid ? ` (pid ${m.pid}${m.cpuPercent !== null ? `, CPU ${m.cpuPercent}%` : ''}${m.rssBytes !== null ? `, RSS ${fmtBytes(m.rssBytes, false)}` : ''})` : ''}${m.restarts ? `, ${m.restarts} restarts` : ''}`).join('; ')
  return `onbus daemon pid ${s.daemon.pid}, up ${s.daemon.uptimeS} s, ${s.daemon.config}${s.daemon.reloads ? `, ${s.daemon.reloads} reloads` : ''}, CPU ${s.daemon.cpuPercent ?? '-'}%, RSS ${fmtBytes(s.daemon.rssBytes, false)}\n${links.toString()}\n${details ? `${details}\n` : ''}${topics.toString()}\n${mods ? `modules: ${mods}\n` : ''}${s.ipc ? `${ipcLine(s)}\n` : ''}`
}

/** What some links report beyond the common columns: a router's endpoints, a camera's frames. */
function detailLines(s: StatsSnapshot): string[] {
  const out: string[] = []
  for (const l of s.links) {
    for (const e of l.endpoints ?? [])
      out.push(`${l.name}/${e.name} (${e.kind}${e.kind === 'local' ? ', the topics' : ''}${e.up ? '' : ', down'}${e.peers ? `, ${e.peers} peers` : ''}): in ${e.framesIn} frames ${fmtBytes(e.bytesIn, false)}, out ${e.framesOut} frames ${fmtBytes(e.bytesOut, false)}, drops ${fmtDrops(e.drops)}`)
    const v = l.video
    if (v) out.push(`${l.name}: frames ${v.framesComplete} complete, ${v.framesIncomplete} incomplete, ${v.keyframes} keyframes; packets ${v.packets}, lost ${v.lost}, late ${v.late}, kernel drops ${v.kernelDrops}, jitter ${(v.jitter / 90).toFixed(2)} ms`)
  }
  return out
}

function ipcLine(s: StatsSnapshot): string {
  const i = s.ipc!
  return `ipc: ${i.peers} peers, sent ${i.sentInline + i.sentShm} (${i.sentShm} via shared memory), received ${i.received}, drops ${fmtDrops(i.dropsByReason)}${i.stalls ? `, ${i.stalls} stalls` : ''}${i.refused ? `, ${i.refused} refused` : ''}`
}

export function renderLines(s: StatsSnapshot): string {
  const t = new Date(s.time).toISOString()
  let out = ''
  for (const l of s.links)
    out += `${t} link ${l.name} ${l.kind} rx ${fmtRate(l.rxRate)} msg/s ${fmtBytes(l.rxBandwidth)} tx ${fmtRate(l.txRate)} msg/s ${fmtBytes(l.txBandwidth)} latency p50 ${fmtNs(l.latency.p50)} p99 ${fmtNs(l.latency.p99)} drops ${fmtDrops(l.drops)}\n`
  for (const d of detailLines(s)) out += `${t} link ${d}\n`
  for (const x of s.topics)
    out += `${t} topic ${x.name} ${fmtRate(x.rate)} msg/s ${fmtBytes(x.bandwidth)} latency p50 ${fmtNs(x.latency.p50)} p99 ${fmtNs(x.latency.p99)} rx→pub p99 ${fmtNs(x.rxLatency.p99)} drops ${x.drops}${x.drops ? ` (${fmtDrops(x.dropsByReason)})` : ''}\n`
  for (const m of s.modules) out += `${t} module ${m.name} ${m.state} pid ${m.pid ?? '-'} cpu ${m.cpuPercent ?? '-'}% rss ${fmtBytes(m.rssBytes, false)} restarts ${m.restarts}\n`
  if (s.ipc) out += `${t} ${ipcLine(s)}\n`
  return out
}

export function register(program: Command): void {
  ipcDirOption(
    program
      .command('stats')
      .description("show the daemon's figures per link and topic: rate, bandwidth, latency p50/p99, drops by reason (a live table on a terminal, lines otherwise)")
      .option('--json', 'one JSON object per update')
      .option('-n, --count <n>', 'stop after this many updates', (v) => Number(v))
      .option('--timeout <ms>', 'give up when no daemon answers within this long', (v) => Number(v), 5000),
  ).action(async (o: { json?: boolean; count?: number; timeout: number; ipcDir?: string }) => {
    const dir = ipcDir(o)
    const j = joinBus(dir, `onbus-stats-${process.pid}`)
    const stop = untilSignal()
    const tty = process.stdout.isTTY && !o.json
    let shownLines = 0
    let n = 0
    const ac = new AbortController()
    stop.signal.addEventListener('abort', () => ac.abort(), { once: true })
    try {
      await watchStats(
        j.bus,
        j.ipc.dir,
        (s) => {
          if (o.json) jsonLine(s)
          else if (tty) {
            const text = renderTables(s)
            // Back over the previous table, clear to the end, draw again: refreshes in place.
            process.stdout.write((shownLines ? `\x1b[${shownLines}A\x1b[0J` : '') + text)
            shownLines = text.split('\n').length - 1
          } else process.stdout.write(renderLines(s))
          if (o.count !== undefined && ++n >= o.count) ac.abort()
        },
        { timeoutMs: o.timeout, signal: ac.signal },
      )
    } catch (err) {
      fail(err, 'onbus stats')
    } finally {
      stop.dispose()
      j.close()
    }
  })
}
