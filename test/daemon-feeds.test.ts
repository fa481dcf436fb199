import { describe, it, expect, afterAll } from 'vitest'
import { connect, type Socket } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createUdpLink } from '../lib/index.js'
import { Daemon, type DaemonLogRecord } from '../lib/daemon/daemon.js'
import { freeUdpPort } from './helpers/onbus-cli.js'
import { fdTable, leakedSince } from './helpers/fds.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-feeds-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t)
        resolve()
      } else if (Date.now() > deadline) {
        clearInterval(t)
        reject(new Error(`timed out waiting for ${what}`))
      }
    }, 20)
  })
}

function tcpClient(opts: { port?: number; path?: string }): Promise<{ sock: Socket; data: () => string }> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const sock = opts.path ? connect(opts.path) : connect(opts.port!, '127.0.0.1')
    sock.setEncoding('utf8').on('data', (d: string) => (buf += d))
    sock.once('connect', () => resolve({ sock, data: () => buf }))
    sock.once('error', reject)
  })
}

describe('daemon feeds through every stream kind', () => {
  it('udp → topic → tcp-server and unix-server connections; tcp client → topic → udp; a changed link that cannot open keeps its old options', async () => {
    // The addon's reactor (epoll + eventfd) lives as long as the process: start it before the snapshot.
    createUdpLink({ port: 0 }).close()
    const before = fdTable()
    const inPort = freeUdpPort()
    const outPort = freeUdpPort()
    const sock = join(dir, 'gcs.sock')
    const file = join(dir, 'feeds.yaml')
    const cfg = (inP: number) => `ipc: { enabled: false }
links:
  telemetry: { kind: udp, port: ${inP} }
  out: { kind: udp, port: 0, receive: false }
  gcs: { kind: tcp-server, port: 0 }
  local: { kind: unix-server, path: gcs.sock }
topics:
  down:
    qos: { profile: sensorData, depth: 64 }
    from: [telemetry]
    to: [gcs, local]
  up:
    qos: { profile: sensorData, depth: 64 }
    from: [gcs]
    to: [{ link: out, port: ${outPort} }]
`
    writeFileSync(file, cfg(inPort))
    const log: DaemonLogRecord[] = []
    const d = await Daemon.start({ file, log: (r) => log.push(r) })
    try {
      const gcsPort = Number(/:(\d+)$/.exec(String(log.find((r) => r.event === 'link-open' && r.link === 'gcs')!.describe))![1])
      const a = await tcpClient({ port: gcsPort })
      const b = await tcpClient({ path: sock })
      await until(() => d.snapshot().links.find((l) => l.name === 'gcs')!.connections === 1 && d.snapshot().links.find((l) => l.name === 'local')!.connections === 1, 'connections')

      const tx = createUdpLink({ port: 0, receive: false })
      tx.send(Buffer.from('hello|'), inPort, '127.0.0.1')
      await until(() => a.data() === 'hello|' && b.data() === 'hello|', 'udp → tcp and unix clients')

      const rx = createUdpLink({ port: outPort })
      const got: string[] = []
      rx.on('message', (m: Buffer) => got.push(m.toString()))
      a.sock.write('up-from-tcp')
      await until(() => got.includes('up-from-tcp'), 'tcp → udp')

      // Reload: the udp link's new port is taken → it keeps its old options (and keeps feeding).
      const taken = createUdpLink({ port: 0 })
      writeFileSync(file, cfg(taken.address().port))
      const r = await d.reload()
      expect(r.ok).toBe(false)
      expect(r.links.changed).toEqual(['telemetry'])
      expect(r.error).toMatch(/EADDRINUSE.*kept its previous options/)
      tx.send(Buffer.from('still|'), inPort, '127.0.0.1')
      await until(() => a.data() === 'hello|still|', 'the old telemetry link still feeding')
      taken.close()

      const s = d.snapshot()
      expect(s.links.find((l) => l.name === 'gcs')).toMatchObject({ rxBytes: 11, txBytes: 12, connections: 1 })
      expect(s.topics.find((t) => t.name === 'down')!.published).toBe(2)
      a.sock.destroy()
      b.sock.destroy()
      tx.close()
      rx.close()
    } finally {
      await d.close()
    }
    // Everything the daemon opened is closed again (sockets, the unix socket file's listener, reactor fds).
    expect(await leakedSince(before, 3000)).toEqual([])
  }, 60_000)
})
