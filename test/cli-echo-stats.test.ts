import { describe, it, expect, afterAll } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createUdpLink } from '../lib/index.js'
import { MavlinkEncoder, Heartbeat, Attitude, MAV_TYPE, MAV_AUTOPILOT, MAV_STATE } from '../lib/mavlink/index.js'
import { CliProcess, freeUdpPort, ONBUS_MAIN, runCli } from './helpers/onbus-cli.js'
import type { StatsSnapshot } from '../lib/daemon/stats.js'
import { skipUnderEmulator } from './helpers/emulator.js'

// script(1) (util-linux) gives `onbus stats` a terminal; without it that part is skipped, with the reason.
const haveScript = spawnSync('script', ['--version']).status === 0
if (!haveScript) console.log('PTY part of the stats test skipped: script(1) from util-linux is not installed')
const dir = mkdtempSync(join(tmpdir(), 'onbus-cli-echo-'))
const ipcDir = join(dir, 'ipc')
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

describe('onbus echo and stats against a configured daemon', () => {
  it.skipIf(skipUnderEmulator('speed'))('decodes MAVLink fields, summarises RTP video packets, hex-dumps raw bytes, restarts a failing module, and draws a live table on a terminal', async () => {
    const mavPort = freeUdpPort()
    const rawPort = freeUdpPort()
    const rtpPort = freeUdpPort()
    const file = join(dir, 'v.yaml')
    writeFileSync(
      file,
      `links:
  telemetry: { kind: udp, port: ${mavPort} }
  sensor: { kind: udp, port: ${rawPort} }
  camera: { kind: udp, port: ${rtpPort} }
topics:
  mavlink/in:
    codec: mavlink
    qos: { profile: sensorData }
    from: [telemetry]
  sensor/raw:
    qos: { profile: sensorData }
    from: [sensor]
  camera/rtp:
    type: video/h264
    qos: { profile: sensorData }
    from: [camera]
modules:
  flaky: { command: '\${node}', args: ['-e', 'console.log("flaky up"); setTimeout(() => process.exit(3), 200)'], restart: on-failure, restartDelayMs: 100 }
`,
    )
    const d = new CliProcess(['run', file, '--json', '--ipc-dir', ipcDir])
    procs.push(d)
    await d.waitFor((r) => r.event === 'ready')

    const tx = createUdpLink({ port: 0, receive: false })
    const enc = new MavlinkEncoder({ sysid: 42, compid: 1 })
    const hb = enc.encode(Heartbeat, { type: MAV_TYPE.MAV_TYPE_QUADROTOR, autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_PX4, base_mode: 81, custom_mode: 0, system_status: MAV_STATE.MAV_STATE_ACTIVE })
    const att = enc.encode(Attitude, { time_boot_ms: 1234, roll: 0.5, pitch: -0.25, yaw: 1, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
    // RTP (RFC 3550): V=2, marker, PT 96, sequence, 90 kHz timestamp, SSRC, then 100 payload bytes.
    let rtpSeq = 65530
    const rtp = () => {
      const b = Buffer.alloc(112)
      b[0] = 0x80
      b[1] = 0x80 | 96
      b.writeUInt16BE(rtpSeq++ & 0xffff, 2)
      b.writeUInt32BE(3000 * rtpSeq, 4)
      b.writeUInt32BE(0xcafe0001, 8)
      return b
    }
    const timer = setInterval(() => {
      tx.send(rtp(), rtpPort, '127.0.0.1')
      tx.send(hb, mavPort, '127.0.0.1')
      tx.send(att, mavPort, '127.0.0.1')
      tx.send(Buffer.from('hello, sensor\x00\x01\x02'), rawPort, '127.0.0.1')
    }, 20)
    try {
      const e = await runCli(['echo', 'mavlink/in', '-n', '4', '--json', '--ipc-dir', ipcDir])
      expect(e.code, e.stderr).toBe(0)
      const frames = e.json.flatMap((m) => m.mavlink as { name: string; sysid: number; fields: Record<string, unknown> }[])
      const h = frames.find((f) => f.name === 'HEARTBEAT')!
      expect(h.sysid).toBe(42)
      expect(h.fields).toMatchObject({ type: MAV_TYPE.MAV_TYPE_QUADROTOR, autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_PX4, base_mode: 81 })
      const a = frames.find((f) => f.name === 'ATTITUDE')!
      expect(a.fields).toMatchObject({ time_boot_ms: 1234, roll: 0.5, pitch: -0.25, yaw: 1 })
      const text = await runCli(['echo', 'mavlink/in', '-n', '2', '--ipc-dir', ipcDir])
      expect(text.stdout).toMatch(/ (HEARTBEAT|ATTITUDE) sys 42 comp 1 seq \d+ \{/)

      const video = await runCli(['echo', 'camera/rtp', '-n', '2', '--json', '--ipc-dir', ipcDir])
      expect(video.code, video.stderr).toBe(0)
      for (const m of video.json) expect(m.frame).toMatchObject({ length: 112, rtp: { pt: 96, marker: true, ssrc: 0xcafe0001, payload: 100, seq: expect.any(Number), timestamp: expect.any(Number) } })
      const vtext = await runCli(['echo', 'camera/rtp', '-n', '1', '--ipc-dir', ipcDir])
      expect(vtext.stdout).toMatch(/camera\/rtp #\d+ from udp:127\.0\.0\.1:\d+ 112 B rx \S+ rtp pt 96 seq \d+ ts \d+ ssrc cafe0001 M payload 100 B/)

      const raw = await runCli(['echo', 'sensor/raw', '-n', '1', '--ipc-dir', ipcDir])
      expect(raw.code, raw.stderr).toBe(0)
      expect(raw.stdout).toContain('0000  68 65 6c 6c 6f 2c 20 73 65 6e 73 6f 72 00 01 02  hello, sensor...')

      // A live table on a terminal (script(1) gives the child a PTY): drawn, then redrawn in place.
      if (haveScript) {
        const tty = await new Promise<string>((resolve) => {
          const c = spawn('script', ['-qec', `${process.execPath} ${ONBUS_MAIN} stats -n 3 --ipc-dir ${ipcDir}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
          let out = ''
          c.stdout.setEncoding('utf8').on('data', (x: string) => (out += x))
          c.on('close', () => resolve(out))
        })
        expect(tty).toMatch(/│ link +│ kind +│ rx msg\/s/)
        expect(tty).toMatch(/│ telemetry +│ udp 127\.0\.0\.1:\d+/)
        expect(tty).toMatch(/\x1b\[\d+A\x1b\[0J/) // cursor up over the previous table, clear below
      }
    } finally {
      clearInterval(timer)
      tx.close()
    }

    // The module exits with code 3 every time: restarted (on-failure), each exit reported.
    await d.waitFor((r) => r.event === 'module-exit' && r.module === 'flaky' && r.code === 3 && (d.records.filter((x) => x.event === 'module-start').length >= 3))
    const st = await runCli(['stats', '--json', '-n', '2', '--ipc-dir', ipcDir])
    const s = st.json.at(-1) as unknown as StatsSnapshot
    const flaky = s.modules.find((m) => m.name === 'flaky')!
    expect(flaky.restarts).toBeGreaterThanOrEqual(1)
    expect(flaky.lastExit).toEqual({ code: 3, signal: null })
    expect(d.records.some((r) => r.event === 'module-output' && r.line === 'flaky up')).toBe(true)

    d.kill('SIGINT')
    expect(await d.exited, d.stderr).toEqual({ code: 0, signal: null })
  }, 90_000)
})
