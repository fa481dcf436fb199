import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliProcess, runCli, vehicleEnv } from './helpers/onbus-cli.js'
import { joinBus } from '../lib/cli/common.js'
import { CommandLong, MavlinkEncoder, MavlinkParser } from '../lib/mavlink/index.js'
import { MavlinkSigning } from '../lib/mavlink/signing.js'
import { readSigningKey } from '../lib/daemon/daemon.js'
import { UdpPeer, until } from './helpers/mav-peers.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import type { StatsSnapshot } from '../lib/daemon/stats.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-cli-'))
const ipcDir = join(dir, 'ipc')
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const slow = skipUnderEmulator('speed')

describe.skipIf(slow)('onbus run with no configuration: the simulated vehicle', () => {
  it('streams simulated LiDAR, signed MAVLink through the router and RTP camera frames, runs perception and planning, and answers stats, topics and echo from other processes', async () => {
    const env = vehicleEnv(ipcDir)
    const d = new CliProcess(['run', '--json'], env)
    procs.push(d)
    await d.waitFor((r) => r.event === 'ready')
    expect(d.records.filter((r) => r.event === 'module-start').map((r) => r.module).sort()).toEqual(['perception', 'planning'])
    expect(d.records.filter((r) => r.event === 'sim-start').map((r) => r.sim)).toEqual(['autopilot', 'camera', 'lidar'])
    expect(d.records.filter((r) => r.event === 'error')).toEqual([])

    // Planning reports frames from perception, which got LiDAR packets through the daemon.
    await d.waitFor((r) => r.event === 'module-output' && /planning: +[1-9]\d* frames\/s/.test(String(r.line)), 30_000)

    // stats from another process: the second snapshot has rates.
    const st = await runCli(['stats', '--json', '-n', '3'], env)
    expect(st.code, st.stderr).toBe(0)
    const s = st.json.at(-1) as unknown as StatsSnapshot
    const lidar = s.links.find((l) => l.name === 'lidar')!
    expect(lidar.kind).toBe('udp')
    // ~754 packets/s; generous for a loaded machine.
    expect(lidar.rxRate).toBeGreaterThan(200)
    expect(lidar.rxRate).toBeLessThan(1000)
    expect(lidar.rxBandwidth / lidar.rxRate).toBeCloseTo(1206, 0)
    expect(s.links.find((l) => l.name === 'lidar-out')!.txMessages).toBeGreaterThan(0)
    const topic = s.topics.find((t) => t.name === 'sensors/lidar')!
    expect(topic.type).toBe('velodyne/vlp16')
    expect(topic.published).toBeGreaterThan(0)
    // The daemon's own cost: forwarding ~754 packets/s is not free, and it says so.
    expect(s.daemon.cpuPercent).toBeGreaterThan(0)
    expect(s.daemon.rssBytes).toBeGreaterThan(10 << 20)
    // The daemon's transport: at least perception, planning and this stats process as peers.
    expect(s.ipc!.peers).toBeGreaterThanOrEqual(3)
    expect(s.ipc!.sentInline + s.ipc!.sentShm).toBeGreaterThan(0)
    for (const m of s.modules) {
      expect(m.rssBytes).toBeGreaterThan(10 << 20) // a Node process, read from /proc
      expect(m.cpuPercent).not.toBeNull()
    }
    expect(s.modules.map((m) => [m.name, m.state])).toEqual([
      ['perception', 'running'],
      ['planning', 'running'],
    ])

    // The MAVLink router: the autopilot's frames come in on its endpoint and go to the topic (local endpoint).
    const mav = s.links.find((l) => l.name === 'mavlink')!
    expect(mav.kind).toBe('mavlink')
    expect(mav.endpoints!.map((e) => e.name)).toEqual(expect.arrayContaining(['autopilot', 'gcs', 'local']))
    expect(mav.endpoints!.find((e) => e.name === 'autopilot')!.framesIn).toBeGreaterThan(0)
    expect(mav.feeds.sort()).toEqual(['← mavlink/command', '→ mavlink/telemetry'])
    expect(s.topics.find((t) => t.name === 'mavlink/telemetry')!.published).toBeGreaterThan(0)
    // The camera: whole frames, none incomplete on loopback.
    const cam = s.links.find((l) => l.name === 'camera')!
    expect(cam.kind).toBe('rtp-camera')
    expect(cam.video!.framesComplete).toBeGreaterThan(0)
    expect(cam.rxRate).toBeGreaterThan(10) // 30 fps
    expect(s.sims.map((x) => x.sim).sort()).toEqual(['autopilot', 'camera', 'lidar'])

    // MAVLink on the topic: decoded by echo, signed.
    const em = await runCli(['echo', 'mavlink/telemetry', '-n', '60', '--json'], env)
    expect(em.code, em.stderr).toBe(0)
    const frames = em.json.flatMap((m) => m.mavlink as { name: string; sysid: number; signed: boolean; fields: Record<string, unknown> }[])
    expect(frames).toHaveLength(60) // one frame per message
    expect(frames.map((f) => f.name)).toEqual(expect.arrayContaining(['ATTITUDE', 'GLOBAL_POSITION_INT']))
    expect(frames.every((f) => f.signed && f.sysid === 1)).toBe(true)
    expect(frames.find((f) => f.name === 'ATTITUDE')!.fields).toMatchObject({ roll: expect.any(Number), yaw: expect.any(Number) })

    // The signatures verify with the key the daemon keeps, owner-only, in its runtime directory.
    const keyFile = join(ipcDir, 'mavlink-signing.key')
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const key = readSigningKey(keyFile)
    expect(readFileSync(keyFile, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/)
    const j = joinBus(ipcDir, 'test-verify')
    const good = new MavlinkParser({ datagram: true, signing: new MavlinkSigning({ key }) })
    const wrong = new MavlinkParser({ datagram: true, signing: new MavlinkSigning({ key: Buffer.alloc(32, 7) }) })
    const seen = new Set<string>()
    let verified = 0
    try {
      const t = j.bus.topic<Uint8Array>('mavlink/telemetry', { codec: { name: 'mavlink', encode: (b: Uint8Array) => b, decode: (b: Uint8Array) => b.slice(), byteLength: (b: Uint8Array) => b.length }, qos: { reliability: 'best-effort', depth: 256, overflow: 'drop-oldest', deadlineMs: Infinity } })
      const sub = t.subscribe((b) => {
        good.push(b, (f) => {
          verified++
          if (f.name) seen.add(f.name)
        })
        wrong.push(b, () => {})
      })
      await until(() => seen.has('HEARTBEAT') && seen.has('ATTITUDE') && verified >= 50, 20_000, 'signed HEARTBEAT and ATTITUDE')
      // The companion side signs with the same key: a command published on mavlink/command is routed to the
      // autopilot, which verifies it and answers (COMMAND_ACK, routed back to the topic).
      const acks: { command: number; result: number }[] = []
      const ackParser = new MavlinkParser({ datagram: true, signing: new MavlinkSigning({ key }) })
      const ackSub = t.subscribe((b) =>
        ackParser.push(b, (f) => {
          if (f.name === 'COMMAND_ACK') acks.push(f.message!.toJSON() as { command: number; result: number })
        }),
      )
      const cmd = j.bus.topic<Uint8Array>('mavlink/command', { codec: { name: 'mavlink', encode: (b: Uint8Array) => b, decode: (b: Uint8Array) => b.slice(), byteLength: (b: Uint8Array) => b.length }, qos: { reliability: 'reliable', depth: 64, overflow: 'block', durability: 'volatile', deadlineMs: Infinity, livelinessLeaseMs: Infinity } })
      const pub = cmd.publisher()
      const enc = new MavlinkEncoder({ sysid: 250, compid: 191, signing: new MavlinkSigning({ key }) })
      await until(
        () => {
          pub.publish(enc.encode(CommandLong, { target_system: 1, target_component: 1, command: 512, confirmation: 0, param1: 148, param2: 0, param3: 0, param4: 0, param5: 0, param6: 0, param7: 0 } as never))
          return acks.some((a) => a.command === 512)
        },
        20_000,
        'COMMAND_ACK for a signed MAV_CMD_REQUEST_MESSAGE',
      )
      expect(acks.find((a) => a.command === 512)!.result).toBe(0) // MAV_RESULT_ACCEPTED
      pub.close()
      ackSub.close()
      sub.close()
    } finally {
      j.close()
    }
    expect(good.stats.signed).toBe(verified)
    expect(Object.values(good.stats.rejected).reduce((a, b) => a + b, 0)).toBe(0)
    // The same frames under another key are refused: the check above can fail.
    expect(wrong.stats.frames).toBe(0)
    expect(Object.values(wrong.stats.rejected).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)

    // A ground station on the router's UDP server endpoint gets the autopilot's telemetry.
    const gcs = await UdpPeer.open(255, 190, { port: Number(env.ONBUS_SIM_MAVLINK_PORT) })
    try {
      await until(
        () => {
          gcs.heartbeat()
          return gcs.count((g) => g.sysid === 1 && g.msgid === 0) > 0
        },
        15_000,
        'HEARTBEAT at the ground station',
      )
    } finally {
      gcs.close()
    }

    // Camera frames: summaries from echo.
    const ev = await runCli(['echo', 'camera/front', '-n', '5', '--json'], env)
    expect(ev.code, ev.stderr).toBe(0)
    for (const m of ev.json) expect(m.frame).toMatchObject({ codec: 'h264', complete: true, bytes: expect.any(Number) })
    const evText = await runCli(['echo', 'camera/front', '-n', '1'], env)
    expect(evText.stdout).toMatch(/h264 frame \d+ B in \d+ packets.* complete rtp ts \d+/)

    // Plain lines when stdout is not a terminal.
    const plain = await runCli(['stats', '-n', '1'], env)
    expect(plain.stdout).toMatch(/link lidar udp rx [\d.k]+ msg\/s .* drops /)
    expect(plain.stdout).toMatch(/ ipc: \d+ peers, sent \d+ .* drops /)

    // topics: the daemon's and the modules' (learned from their announcements).
    const tp = await runCli(['topics', '--json'], env)
    expect(tp.code, tp.stderr).toBe(0)
    const names = tp.json.map((t) => t.name)
    expect(names).toEqual(expect.arrayContaining(['sensors/lidar', 'mavlink/telemetry', 'camera/front']))
    expect(names).toContain('perception/obstacles')
    const obst = tp.json.find((t) => t.name === 'perception/obstacles')!
    expect(obst.codec).toBe('json')
    expect(obst.publishers).toContain('perception')

    // echo: VLP-16 packets decoded, JSON messages shown as values.
    const ec = await runCli(['echo', 'sensors/lidar', '-n', '3', '--json'], env)
    expect(ec.code, ec.stderr).toBe(0)
    expect(ec.json).toHaveLength(3)
    for (const m of ec.json) {
      expect(m.size).toBe(1206)
      const v = m.vlp16 as { azimuths: number[]; product: number; returnMode: number }
      expect(v.product).toBe(0x22)
      expect(v.returnMode).toBe(0x37)
      expect(v.azimuths).toHaveLength(12)
    }
    const eo = await runCli(['echo', 'perception/obstacles', '-n', '1', '--json'], env)
    expect(eo.code, eo.stderr).toBe(0)
    expect(eo.json[0].data).toMatchObject({ frame: expect.any(Number), packets: expect.any(Number) })
    const hex = await runCli(['echo', 'sensors/lidar', '-n', '1', '--bytes', '16'], env)
    expect(hex.stdout).toMatch(/sensors\/lidar #\d+ from udp:127\.0\.0\.1:\d+ 1206 B rx .* VLP-16 azimuth/)

    d.kill('SIGTERM')
    const end = await d.exited
    expect(end, d.stderr).toEqual({ code: 0, signal: null })
    expect(d.records.filter((r) => r.event === 'module-stop').map((r) => r.module).sort()).toEqual(['perception', 'planning'])
  }, 120_000)
})
