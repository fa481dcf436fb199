// The simulated camera (lib/sim/camera.ts): loops the committed clip through
// the RTP sender at its frame rate; GStreamer decodes every frame it sent,
// across loops; a PLI makes the next frame a keyframe.
import { describe, it, expect, afterEach } from 'vitest'
import { join } from 'node:path'
import { statSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { createSimCamera, DEFAULT_CAMERA_CLIP, type SimCamera } from '../lib/sim/camera.js'
import { buildPli } from '../lib/video/rtcp.js'
import { isKeyframeNal, nalType } from '../lib/video/annexb.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { fileSize, freePortPair, gstReceiver, missingGst, skipReason, tempDir, udpPortBound, until } from './helpers/rtp-send.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('simulated camera', () => {
  it('loads the committed clip (small, starts with a keyframe) and serves PLI with the next keyframe', async () => {
    expect(statSync(DEFAULT_CAMERA_CLIP).size).toBeLessThan(300 * 1024)
    const port = await freePortPair()
    const cam: SimCamera = createSimCamera({ host: '127.0.0.1', port, fps: 10, autostart: false }) // slow: the PLI must land before frame 30 even on a loaded machine
    closers.push(() => new Promise<void>((r) => cam.close(r)))
    expect(cam.frames.length).toBe(60)
    const key = (i: number) => cam.frames[i].some((n) => isKeyframeNal(nalType(n, 'h264'), 'h264'))
    expect(key(0)).toBe(true)
    const sent: number[] = []
    cam.on('frame', (i: number) => sent.push(i))
    let at = -1
    cam.on('keyframe-request', () => (at = sent.length))
    cam.start()
    await until(() => sent.length >= 5, 5000)
    const peer = createSocket('udp4')
    closers.push(() => peer.close())
    peer.send(buildPli(0xabc, cam.sender.ssrc), cam.sender.address().port + 1, '127.0.0.1')
    await until(() => at >= 0 && sent.length >= at + 2, 5000)
    expect(cam.sender.stats().keyframeRequests).toBe(1)
    // The frame after the request is the clip's next keyframe (frame 30), not the next in order.
    expect(at).toBeLessThan(30)
    expect(sent[at]).toBe(30)
    expect(key(sent[at])).toBe(true)
    expect(sent[at + 1]).toBe(31)
  })
})

const gstWhy = missingGst(['udpsrc', 'rtpjitterbuffer', 'rtph264depay', 'avdec_h264', 'videoconvert'])
describe.skipIf(skipUnderEmulator('speed') || skipReason(gstWhy))('simulated camera → GStreamer', () => {
  it('every frame it sent decodes, across a loop of the clip', async () => {
    const dir = tempDir()
    const port = await freePortPair()
    const out = join(dir, 'cam.yuv')
    const peer = gstReceiver('h264')(port, out)
    closers.push(() => peer.stop(3000))
    expect(await until(() => udpPortBound(port), 20_000)).toBe(true)
    await sleep(300)
    const cam = createSimCamera({ host: '127.0.0.1', port, fps: 60 })
    await until(() => cam.framesSent >= 90, 20_000) // 1.5 loops of the 60-frame clip
    cam.stop()
    const n = cam.framesSent
    await new Promise<void>((r) => cam.close(r))
    const frame = (320 * 240 * 3) / 2
    await until(() => fileSize(out) >= n * frame, 15_000)
    await peer.stop()
    expect(fileSize(out) / frame, peer.output()).toBe(n)
  }, 60_000)
})
