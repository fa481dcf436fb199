/**
 * The daemon's `mavlink` link kind: a native MAVLink router from the
 * configuration, feeding topics (frames routed to the local endpoint) and fed
 * by them (frames published are routed to the endpoints), its endpoint
 * counters in the stats, its options checked against the router's schema
 * (file:line:col), and SIGHUP-style reloads.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createUdpLink } from '../lib/index.js'
import { Daemon } from '../lib/daemon/daemon.js'
import { ConfigError } from '../lib/config/load.js'
import { Heartbeat, MAV_AUTOPILOT, MAV_STATE, MAV_TYPE, MavlinkEncoder, MavlinkParser } from '../lib/mavlink/index.js'
import type { MessageMeta } from '../lib/bus/meta.js'
import { UdpPeer, until } from './helpers/mav-peers.js'
import { CliProcess, freeUdpPort } from './helpers/onbus-cli.js'
import { emulator } from './helpers/emulator.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-daemon-mav-'))
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

function bindable(port: number): boolean {
  try {
    createUdpLink({ port }).close()
    return true
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') return false
    throw err
  }
}

const config = (peerPort: number, extra = '') => `version: 1
ipc: { enabled: false }
links:
  fc:
    kind: mavlink
    msgIds: [0, 30]
    endpoints:
      - { kind: udp-server, name: peer, address: 127.0.0.1, port: ${peerPort} }${extra}
topics:
  mav/in:
    codec: mavlink
    type: mavlink
    qos: { profile: sensorData, depth: 256 }
    from: [fc]
  mav/out:
    codec: mavlink
    type: mavlink
    qos: { profile: reliable }
    to: [fc]
`

describe('daemon: mavlink link kind', () => {
  it('routes frames from a UDP peer onto the topic (msgIds filter, kernel rx time) and from the topic to the peer; endpoint counters in the stats', async () => {
    const port = freeUdpPort()
    const file = join(dir, 'mav.yaml')
    writeFileSync(file, config(port))
    const d = await Daemon.start({ file })
    const peer = await UdpPeer.open(7, 1, { port })
    try {
      expect(bindable(port)).toBe(false)
      const got: { bytes: Uint8Array; meta: MessageMeta }[] = []
      const sub = d.bus.topic<Uint8Array>('mav/in').subscribe((b, meta) => void got.push({ bytes: b.slice(), meta }))
      const parser = new MavlinkParser({ datagram: true })
      const sent: Uint8Array[] = []
      await until(
        () => {
          sent.push(peer.heartbeat(), peer.attitude(), peer.command(1, 1))
          return got.length >= 4
        },
        10_000,
        'frames on mav/in',
      )
      // Only HEARTBEAT (0) and ATTITUDE (30) pass the link's msgIds; COMMAND_LONG (76) does not.
      const ids = got.map((g) => {
        const f: number[] = []
        parser.push(g.bytes, (fr) => f.push(fr.msgid))
        expect(f).toHaveLength(1) // one whole frame per message
        return f[0]
      })
      expect(new Set(ids)).toEqual(new Set([0, 30]))
      // Payload = the frame's bytes as the peer sent them.
      const sentHex = new Set(sent.map((b) => Buffer.from(b).toString('hex')))
      for (const g of got) expect(sentHex.has(Buffer.from(g.bytes).toString('hex'))).toBe(true)
      if (!emulator) for (const g of got) expect(typeof g.meta.rxTime).toBe('bigint')
      sub.close()

      // Topic → router → peer.
      const enc = new MavlinkEncoder({ sysid: 200, compid: 191 })
      const hb = enc.encode(Heartbeat, { type: MAV_TYPE.MAV_TYPE_ONBOARD_CONTROLLER, autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_INVALID, base_mode: 0, custom_mode: 0, system_status: MAV_STATE.MAV_STATE_ACTIVE })
      const out = d.bus.topic<Uint8Array>('mav/out').publisher()
      await until(
        () => {
          out.publish(hb)
          return peer.count((g) => g.sysid === 200 && g.msgid === 0) > 0
        },
        10_000,
        'the published HEARTBEAT at the peer',
      )
      expect(Buffer.from(peer.got.find((g) => g.sysid === 200)!.bytes)).toEqual(Buffer.from(hb))
      out.close()

      const link = d.snapshot().links.find((l) => l.name === 'fc')!
      expect(link.kind).toBe('mavlink')
      const ep = link.endpoints!.find((e) => e.name === 'peer')!
      expect(ep).toMatchObject({ kind: 'udp-server', up: true, peers: 1 })
      expect(ep.framesIn).toBeGreaterThanOrEqual(sent.length - 3)
      expect(ep.framesOut).toBeGreaterThan(0)
      expect(link.endpoints!.find((e) => e.kind === 'local')!.framesIn).toBeGreaterThan(0)
      expect(link.rxMessages).toBeGreaterThan(0)
      expect(link.feeds.sort()).toEqual(['← mav/out', '→ mav/in'])
    } finally {
      peer.close()
      await d.close()
    }
    expect(bindable(port)).toBe(true)
  }, 30_000)

  it('a bad router configuration is refused with file:line:col, and nothing is opened', async () => {
    const [p1, p2] = [freeUdpPort(), freeUdpPort()]
    const file = join(dir, 'bad.yaml')
    writeFileSync(
      file,
      `version: 1
ipc: { enabled: false }
links:
  other: { kind: udp, port: ${p2} }
  fc:
    kind: mavlink
    endpoints:
      - { kind: udp-server, port: ${p1} }
      - { kind: tcp-client, port: 5760 }
    busyPollUs: -1
`,
    )
    const err = (await Daemon.start({ file }).then(
      () => null,
      (e: unknown) => e,
    )) as ConfigError
    expect(err).toBeInstanceOf(ConfigError)
    const at = err.issues.map((i) => `${i.line}:${i.path}`)
    expect(at).toContain('10:links.fc.busyPollUs')
    expect(err.issues.some((i) => i.line === 9 && i.path.startsWith('links.fc.endpoints.1'))).toBe(true)
    expect(err.message).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:10:\\d+: links\\.fc\\.busyPollUs`))
    // Nothing opened: both ports are free.
    expect(bindable(p1)).toBe(true)
    expect(bindable(p2)).toBe(true)
  })

  it('reload: a changed router is reopened with its new endpoints, feeds rewired; an unchanged one is kept', async () => {
    const [p1, p2] = [freeUdpPort(), freeUdpPort()]
    const file = join(dir, 'reload.yaml')
    writeFileSync(file, config(p1))
    const d = await Daemon.start({ file })
    try {
      writeFileSync(file, config(p1, `\n      - { kind: udp-server, name: gcs, address: 127.0.0.1, port: ${p2} }`))
      const r = await d.reload()
      expect(r.ok).toBe(true)
      expect(r.links.changed).toEqual(['fc'])
      expect(bindable(p2)).toBe(false)
      // The new router feeds the topic: a frame from the new endpoint arrives.
      const got: Uint8Array[] = []
      const sub = d.bus.topic<Uint8Array>('mav/in').subscribe((b) => void got.push(b.slice()))
      const peer = await UdpPeer.open(9, 1, { port: p2 })
      await until(
        () => {
          peer.heartbeat()
          return got.length > 0
        },
        10_000,
        'a frame through the reloaded router',
      )
      peer.close()
      sub.close()
      expect(d.snapshot().links.find((l) => l.name === 'fc')!.endpoints!.map((e) => e.name)).toEqual(expect.arrayContaining(['peer', 'gcs']))
      // Same file again: kept.
      const r2 = await d.reload()
      expect(r2.links.kept).toEqual(['fc'])
      // Back without gcs: its port is closed.
      writeFileSync(file, config(p1))
      expect((await d.reload()).links.changed).toEqual(['fc'])
      expect(bindable(p2)).toBe(true)
      // A bad router configuration on reload changes nothing.
      writeFileSync(file, config(p1, '\n      - { kind: udp-server }'))
      const r3 = await d.reload()
      expect(r3.ok).toBe(false)
      expect(r3.issues!.some((i) => i.path.startsWith('links.fc.endpoints.1'))).toBe(true)
      expect(bindable(p1)).toBe(false)
    } finally {
      await d.close()
    }
  }, 30_000)

  it('onbus run + SIGHUP: the changed router is reopened, the unchanged camera kept; a bad router edit is refused with its line', async () => {
    const [p1, p2, p3] = [freeUdpPort(), freeUdpPort(), freeUdpPort()]
    const file = join(dir, 'hup.yaml')
    const cam = `  cam: { kind: rtp-camera, port: ${p3}, codec: h264, rtcp: false }\n`
    writeFileSync(file, config(p1).replace('topics:\n', `${cam}topics:\n`))
    const d = new CliProcess(['run', file, '--json', '--ipc-dir', join(dir, 'ipc')])
    procs.push(d)
    await d.waitFor((r) => r.event === 'ready')
    const mark = d.records.length
    writeFileSync(file, config(p1, `\n      - { kind: udp-server, name: gcs, address: 127.0.0.1, port: ${p2} }`).replace('topics:\n', `${cam}topics:\n`))
    d.kill('SIGHUP')
    const reload = await d.waitFor((r) => r.event === 'reload', 20_000, mark)
    expect(reload.links).toEqual({ added: [], removed: [], changed: ['fc'], kept: ['cam'] })
    expect(d.records.slice(mark).filter((r) => r.link === 'cam')).toEqual([]) // never closed, never reopened
    expect(bindable(p2)).toBe(false)
    const mark2 = d.records.length
    writeFileSync(file, config(p1, '\n      - { kind: tcp-client, port: 5760 }').replace('topics:\n', `${cam}topics:\n`))
    d.kill('SIGHUP')
    const refused = await d.waitFor((r) => r.event === 'reload-refused', 20_000, mark2)
    expect(String(refused.error)).toMatch(/hup\.yaml:9:\d+: links\.fc\.endpoints\.1: missing required key 'address'/)
    expect(bindable(p2)).toBe(false) // still running with the previous configuration
    d.kill('SIGTERM')
    expect(await d.exited, d.stderr).toEqual({ code: 0, signal: null })
    expect(bindable(p1) && bindable(p2) && bindable(p3)).toBe(true)
  }, 60_000)
})
