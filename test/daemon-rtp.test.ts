/**
 * The daemon's `rtp-camera` link kind: an RTP receiver from the
 * configuration that publishes whole frames on a topic (codec `video`), with
 * its receiver figures in the stats; the simulated camera (`sim.camera`)
 * streaming to it; reloads.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createUdpLink } from '../lib/index.js'
import { Daemon } from '../lib/daemon/daemon.js'
import type { VideoFrameData } from '../lib/video/receiver.js'
import { createSimCamera } from '../lib/sim/camera.js'
import { until } from './helpers/mav-peers.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-daemon-rtp-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** An even port whose odd neighbour is free too (RTP + RTCP). */
function freeRtpPort(): number {
  for (;;) {
    const a = createUdpLink({ port: 0, receive: false })
    const p = a.address().port
    a.close()
    if (p % 2 || p >= 65534) continue
    try {
      createUdpLink({ port: p, receive: false }).close()
      createUdpLink({ port: p + 1, receive: false }).close()
      return p
    } catch {
      // taken
    }
  }
}

const config = (port: number, opts: { latencyMs?: number; sim?: boolean } = {}) => `version: 1
ipc: { enabled: false }
links:
  cam: { kind: rtp-camera, address: 127.0.0.1, port: ${port}, codec: h264${opts.latencyMs !== undefined ? `, latencyMs: ${opts.latencyMs}` : ''} }
topics:
  camera/front:
    codec: video
    type: video/h264
    qos: { profile: sensorData, depth: 8 }
    from: [cam]
${opts.sim === false ? '' : `sim:\n  camera: { address: 127.0.0.1, port: ${port}, fps: 30 }\n`}`

const slow = skipUnderEmulator('speed')

describe.skipIf(slow)('daemon: rtp-camera link kind', () => {
  it('the simulated camera streams to the rtp-camera link; whole frames reach the topic; receiver figures in the stats', async () => {
    const port = freeRtpPort()
    const file = join(dir, 'cam.yaml')
    writeFileSync(file, config(port))
    const d = await Daemon.start({ file })
    try {
      const frames: VideoFrameData[] = []
      const sub = d.bus.topic<VideoFrameData>('camera/front').subscribe((f) => void frames.push({ ...f, data: f.data.slice() }))
      await until(() => frames.filter((f) => f.complete).length >= 45 && frames.some((f) => f.keyframe), 20_000, '45 complete frames and a keyframe')
      sub.close()
      const key = frames.find((f) => f.keyframe)!
      expect(key.codec).toBe('h264')
      expect(key.parameterSets.sps?.length).toBeGreaterThan(0)
      // Annex-B access units: start codes.
      expect([...key.data.subarray(0, 4)]).toEqual([0, 0, 0, 1])
      const s = d.snapshot()
      const link = s.links.find((l) => l.name === 'cam')!
      expect(link.kind).toBe('rtp-camera')
      expect(link.video!.framesComplete).toBeGreaterThanOrEqual(45)
      expect(link.video!.packets).toBeGreaterThan(link.video!.framesComplete)
      expect(link.drops.kernel).toBe(0)
      expect(link.feeds).toEqual(['→ camera/front'])
      const sim = s.sims.find((x) => x.sim === 'camera')!
      expect(sim.framesSent as number).toBeGreaterThanOrEqual(45)
      expect(s.topics.find((t) => t.name === 'camera/front')!.codec).toBe('onbus.video-frame/1')
    } finally {
      await d.close()
    }
  }, 40_000)

  it('reload: a changed receiver is reopened and keeps feeding the topic; an unchanged one is kept', async () => {
    const port = freeRtpPort()
    const file = join(dir, 'reload.yaml')
    writeFileSync(file, config(port, { sim: false }))
    const d = await Daemon.start({ file })
    const cam = createSimCamera({ host: '127.0.0.1', port })
    try {
      let n = 0
      const sub = d.bus.topic<VideoFrameData>('camera/front').subscribe(() => void n++)
      await until(() => n > 5, 15_000, 'frames before the reload')
      writeFileSync(file, config(port, { sim: false, latencyMs: 80 }))
      const r = await d.reload()
      expect(r.ok).toBe(true)
      expect(r.links.changed).toEqual(['cam'])
      expect(r.topics.kept).toEqual(['camera/front'])
      const after = n
      await until(() => n > after + 30, 15_000, 'frames after the reload')
      sub.close()
      expect((await d.reload()).links.kept).toEqual(['cam'])
    } finally {
      await new Promise<void>((res) => cam.close(res))
      await d.close()
    }
  }, 40_000)
})
