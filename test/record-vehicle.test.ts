/**
 * The "done means" for record and replay: `onbus run` (the simulated
 * vehicle), `onbus record` for a few seconds in another process, then
 * `onbus replay` of that file onto UDP. Checks: no drops, the LiDAR packets
 * logged at their kernel receive time, the topic types from the daemon in the
 * channel metadata, and every recorded packet replayed.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { McapIndexedReader } from '@mcap/core'
import { createUdpLink } from '../lib/index.js'
import { decompressHandlers, FileReadable } from '../lib/record/io.js'
import { CliProcess, runCli, vehicleEnv } from './helpers/onbus-cli.js'
import { joinBus } from '../lib/cli/common.js'
import { videoFrameCodec, type VideoFrameData } from '../lib/video/receiver.js'
import { MavlinkParser } from '../lib/mavlink/index.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-rec-vehicle-'))
const ipcDir = join(dir, 'ipc')
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const slow = skipUnderEmulator('speed')

describe.skipIf(slow)('record and replay the simulated vehicle', () => {
  it('onbus run, onbus record 3 s (LiDAR, MAVLink, camera), onbus replay onto a bus and onto UDP', async () => {
    const env = vehicleEnv(ipcDir)
    const d = new CliProcess(['run', '--json'], env)
    procs.push(d)
    await d.waitFor((r) => r.event === 'ready')
    // Wait until LiDAR packets flow through the daemon to the modules.
    await d.waitFor((r) => r.event === 'module-output' && /planning: +[1-9]\d* frames\/s/.test(String(r.line)), 30_000)

    const file = join(dir, 'flight.mcap')
    const rec = await runCli(['record', '-o', file, '--duration', '3s', '--json', '-q'], env, 60_000)
    expect(rec.code, rec.stderr).toBe(0)
    const s = rec.json.at(-1) as unknown as { messages: number; dropped: number; topics: { topic: string; written: number; dropped: number }[] }
    expect(s.dropped).toBe(0)
    const lidar = s.topics.find((t) => t.topic === 'sensors/lidar')!
    // ~754 packets/s for ~3 s; generous for a loaded machine.
    expect(lidar.written).toBeGreaterThan(600)

    const readable = await FileReadable.open(file)
    const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
    const ch = [...reader.channelsById.values()].find((c) => c.topic === 'sensors/lidar')!
    expect(ch.metadata.get('onbus.type')).toBe('velodyne/vlp16')
    let n = 0
    for await (const m of reader.readMessages({ topics: ['sensors/lidar'] })) {
      n++
      expect(m.data.length).toBe(1206)
      // Link-fed: log_time is the kernel receive stamp, before the bus publish stamp.
      expect(m.logTime <= m.publishTime).toBe(true)
      expect(m.publishTime - m.logTime < 5_000_000_000n).toBe(true)
    }
    // MAVLink: one channel per message id, the message's definition as schema; every message one signed frame.
    const mavChannels = [...reader.channelsById.values()].filter((c) => c.topic === 'mavlink/telemetry')
    const schemaNames = mavChannels.map((c) => reader.schemasById.get(c.schemaId)?.name)
    expect(schemaNames.join(' ')).toMatch(/HEARTBEAT/)
    expect(schemaNames.join(' ')).toMatch(/ATTITUDE/)
    const mp = new MavlinkParser({ datagram: true })
    let mavFrames = 0
    for await (const m of reader.readMessages({ topics: ['mavlink/telemetry'] })) {
      let k = 0
      mp.push(m.data, (f) => {
        k++
        expect(f.signed).toBe(true)
      })
      expect(k).toBe(1)
      mavFrames++
    }
    expect(mavFrames).toBe(s.topics.find((t) => t.topic === 'mavlink/telemetry')!.written)
    expect(mavFrames).toBeGreaterThan(60) // ~63 frames/s
    // Camera: whole frames, as published (codec onbus.video-frame/1), ~30 per second.
    const camWritten = s.topics.find((t) => t.topic === 'camera/front')!.written
    expect(camWritten).toBeGreaterThan(30)
    for await (const m of reader.readMessages({ topics: ['camera/front'] })) expect(videoFrameCodec.decode(m.data).codec).toBe('h264')
    await readable.close()
    expect(n).toBe(lidar.written)

    // Replay onto a bus (another runtime directory, so the live daemon stays apart): a subscriber there gets
    // the camera frames and the MAVLink frames as they were recorded.
    const replayDir = join(dir, 'ipc-replay')
    const j = joinBus(replayDir, 'test-replay-sub')
    const frames: VideoFrameData[] = []
    let mavGot = 0
    const cam = j.bus.topic<VideoFrameData>('camera/front', { codec: videoFrameCodec, qos: { reliability: 'best-effort', depth: 256, overflow: 'drop-oldest', deadlineMs: Infinity } }).subscribe((f) => void frames.push(f))
    const mavSub = j.bus.topic<Uint8Array>('mavlink/telemetry', { codec: { name: 'mavlink', encode: (b: Uint8Array) => b, decode: (b: Uint8Array) => b, byteLength: (b: Uint8Array) => b.length }, qos: { reliability: 'best-effort', depth: 1024, overflow: 'drop-oldest', deadlineMs: Infinity } }).subscribe(() => void mavGot++)
    try {
      const rb = await runCli(['replay', file, '--topics', 'camera/front,mavlink/telemetry', '--wait', '5s', '--json', '--ipc-dir', replayDir], {}, 60_000)
      expect(rb.code, rb.stderr).toBe(0)
      const deadline2 = Date.now() + 10_000
      while ((frames.length < camWritten || mavGot < mavFrames) && Date.now() < deadline2) await new Promise((res) => setTimeout(res, 20))
      expect(frames.length).toBe(camWritten)
      expect(mavGot).toBe(mavFrames)
      expect(frames.every((f) => f.codec === 'h264' && f.data.length > 0)).toBe(true)
    } finally {
      cam.close()
      mavSub.close()
      j.close()
    }

    // Replay the LiDAR packets onto UDP at 4×, as a bench rig feeds another program.
    const rx = createUdpLink({ address: '127.0.0.1', port: 0, rcvBuf: 8 << 20 })
    let got = 0
    let bad = 0
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) {
        got++
        if (b.view(i).length !== 1206) bad++
      }
    })
    const rp = await runCli(['replay', file, '--topics', 'sensors/lidar', '--no-bus', '--rate', '4', '--udp', `sensors/lidar=127.0.0.1:${rx.address().port}`, '--json'], env, 60_000)
    expect(rp.code, rp.stderr).toBe(0)
    const r = rp.json.at(-1) as unknown as { messages: number; reader: string }
    expect(r.messages).toBe(n)
    const deadline = Date.now() + 10_000
    while (got < n && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    rx.close()
    expect(got).toBe(n)
    expect(bad).toBe(0)
  }, 120_000)
})
