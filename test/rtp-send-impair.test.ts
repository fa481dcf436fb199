// The impairment relay between the onbus sender and a real receiver: with
// reordering, duplication and jitter but no loss, GStreamer's jitter buffer
// puts everything back and every frame still decodes; the relay's counters
// say it really did reorder and duplicate.
import { describe, it, expect, beforeAll, afterEach } from 'vitest'
import { splitAccessUnits } from '../lib/video/annexb.js'
import { createImpairRelay, type ImpairRelay } from '../lib/testing/impair.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { encodeClip, gstReceiver, missingGst, sendThrough, skipReason, tempDir } from './helpers/rtp-send.js'

const W = 320
const H = 240
const N = 60
const gstWhy = missingGst(['x264enc', 'udpsrc', 'rtpjitterbuffer', 'rtph264depay', 'avdec_h264', 'videoconvert'])
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})

describe.skipIf(skipUnderEmulator('speed') || skipReason(gstWhy))('RtpSender → impairment relay → GStreamer', () => {
  let dir: string
  let aus: Uint8Array[][]
  beforeAll(() => {
    dir = tempDir()
    aus = splitAccessUnits(encodeClip({ codec: 'h264', width: W, height: H, frames: N, kbps: 1500, dir }), 'h264')
  })

  it('reordered, duplicated, jittered (no loss): every frame decodes', async () => {
    let relay!: ImpairRelay
    const r = await sendThrough({
      peer: gstReceiver('h264'),
      aus,
      width: W,
      height: H,
      dir,
      sender: { codec: 'h264', mtu: 500 },
      via: (port) => {
        relay = createImpairRelay({ forward: { host: '127.0.0.1', port }, reorder: 0.05, reorderDepth: 4, duplicate: 0.03, delayMs: 5, jitterMs: 10, seed: 99 })
        closers.push(() => new Promise<void>((res) => relay.close(res)))
        return relay.address().port
      },
    })
    const c = relay.counters()
    expect(c.received).toBe(r.sender.packetsSent)
    expect(c.reordered).toBeGreaterThan(0)
    expect(c.duplicated).toBeGreaterThan(0)
    expect(c.forwarded).toBe(c.received + c.duplicated)
    expect(r.decoded, r.peerOutput).toBe(N)
  }, 60_000)
})
