/**
 * Real H.264 RTP from GStreamer, recorded once, replayed to two receivers:
 * one directly (the reference) and one through the impairment relay (2 % loss,
 * reordering, duplicates). Every frame the impaired receiver reports complete
 * is byte-identical to the reference frame of the same RTP timestamp; every
 * other frame is flagged incomplete with its missing ranges. Then garbage and
 * random RTP: never a crash, everything counted, and the buffer stays bounded.
 */
import { describe, expect, it } from 'vitest'
import { createSocket } from 'node:dgram'
import { createRtpReceiver, type VideoFrameData } from '../lib/video/receiver.js'
import { createImpairRelay, seededRandom } from '../lib/testing/impair.js'
import { gstMissing, run, waitFor } from './helpers/rtp-receive.js'
import { emulatorLimit } from './helpers/emulator.js'

// Every check runs with the receiver on onbus's I/O thread and on the JavaScript thread (libuv poll).
const THREADS = ['io', 'js'] as const

const slow = emulatorLimit('speed')
const gstWhy = slow ?? gstMissing('videotestsrc', 'x264enc', 'rtph264pay', 'udpsink')
if (gstWhy) console.warn(`skipping the impaired GStreamer stream test: ${gstWhy}`)
if (slow) console.warn(`skipping the random RTP flood: ${slow}`)

const N = 90

/** Records the RTP packets GStreamer sends (checked contiguous). */
async function recordStream(): Promise<Buffer[]> {
  const sock = createSocket({ type: 'udp4', recvBufferSize: 16 << 20 })
  const pkts: Buffer[] = []
  sock.on('message', (m) => pkts.push(m))
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
  try {
    await run('gst-launch-1.0', [
      '-q', 'videotestsrc', `num-buffers=${N}`, 'pattern=ball', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!',
      'x264enc', 'tune=zerolatency', 'key-int-max=30', 'speed-preset=ultrafast', '!', 'rtph264pay', 'config-interval=0', 'mtu=400', '!',
      'udpsink', 'host=127.0.0.1', `port=${sock.address().port}`, 'sync=false',
    ])
    await waitFor(() => false, 300)
  } finally {
    sock.close()
  }
  for (let i = 1; i < pkts.length; i++) if (pkts[i].readUInt16BE(2) !== ((pkts[i - 1].readUInt16BE(2) + 1) & 0xffff)) throw new Error('recording has a gap: the loopback dropped packets')
  return pkts
}

async function replay(pkts: Buffer[], port: number): Promise<void> {
  const s = createSocket('udp4')
  try {
    for (let i = 0; i < pkts.length; i++) {
      await new Promise<void>((r) => s.send(pkts[i], port, '127.0.0.1', () => r()))
      if (pkts[i][1] & 0x80) await new Promise((r) => setTimeout(r, 2)) // pace per frame
    }
  } finally {
    s.close()
  }
}

for (const thread of THREADS) {
  describe(`RTP receive under impairment (thread: ${thread})`, () => {
    it.skipIf(gstWhy)('2 % loss + reordering + duplicates: complete frames are byte-identical to the reference, the rest flagged', async () => {
      const pkts = await recordStream()
      expect(pkts.length).toBeGreaterThan(N * 2)

      const ref = createRtpReceiver({ thread, port: 0, codec: 'h264', latencyMs: 100, rtcp: false })
      const refFrames = new Map<number, VideoFrameData>()
      ref.on('frame', (f) => refFrames.set(f.rtpTimestamp, f.copy()))
      try {
        await replay(pkts, ref.ports().rtp)
        expect(await waitFor(() => refFrames.size === N)).toBe(true)
        expect([...refFrames.values()].every((f) => f.complete)).toBe(true)
      } finally {
        ref.close()
      }

      // 1 s latency: the relay runs in this process, so a stalled event loop must
      // not turn its reordering into lateness; only real gaps wait that long.
      const rx = createRtpReceiver({ thread, port: 0, codec: 'h264', latencyMs: 1000, rtcp: false, reorderPackets: 256 })
      const relay = createImpairRelay({ forward: { host: '127.0.0.1', port: rx.ports().rtp }, loss: 0.02, reorder: 0.02, reorderDepth: 3, duplicate: 0.01, seed: 7 })
      const got: VideoFrameData[] = []
      let maxBuffered = 0
      rx.on('frame', (f) => {
        got.push(f.copy())
        maxBuffered = Math.max(maxBuffered, rx.stats().buffered)
      })
      try {
        await replay(pkts, relay.address().port)
        await waitFor(() => relay.counters().pending === 0)
        await waitFor(() => rx.stats().buffered === 0, 15_000)
        await new Promise((r) => setTimeout(r, 300))
        const c = relay.counters()
        const s = rx.stats()
        expect(c.dropped).toBeGreaterThan(0)
        expect(c.reordered).toBeGreaterThan(0)
        // Every dropped packet is seen as lost unless it was the very last ones.
        expect(s.lost).toBeLessThanOrEqual(c.dropped)
        expect(s.lost).toBeGreaterThan(0)
        expect(s.duplicates).toBe(c.duplicated)
        expect(s.late).toBe(0) // reordering (depth 3) is far inside the 1 s latency
        let complete = 0
        let incomplete = 0
        // A loss before the first packet that ever reaches a receiver cannot be
        // detected by it (nothing precedes it): the first frame is compared
        // only when its first packet is the reference's first.
        const firstRx = Math.min(...got.map((f) => f.firstSeq))
        for (const f of got) {
          const r = refFrames.get(f.rtpTimestamp)
          expect(r).toBeDefined()
          if (f.complete) complete++
          else incomplete++
          if (f.firstSeq === firstRx && r!.firstSeq !== f.firstSeq) continue
          if (f.complete) {
            expect(f.missing).toEqual([])
            expect(Buffer.from(f.data).equals(Buffer.from(r!.data))).toBe(true)
          }
        }
        expect(incomplete).toBeGreaterThan(0)
        expect(incomplete).toBe(s.framesIncomplete)
        expect(complete).toBe(s.framesComplete)
        expect(complete + incomplete).toBeLessThanOrEqual(N)
        expect(complete).toBeGreaterThan(N / 2)
        // Each lost sequence number appears in some flagged frame's missing ranges.
        const flagged = new Set<number>()
        for (const f of got) for (const m of f.missing) for (let q = m.first; q <= m.last; q++) flagged.add(q)
        expect(flagged.size).toBeGreaterThanOrEqual(s.lost)
        expect(maxBuffered).toBeLessThanOrEqual(256)
        expect(s.buffered).toBe(0)
      } finally {
        relay.close()
        rx.close()
      }
    })

    it.skipIf(slow)('random datagrams and random RTP never crash, are all counted, and the buffer stays bounded', async () => {
      const rand = seededRandom(42)
      const rx = createRtpReceiver({ thread, port: 0, codec: 'h264', latencyMs: 50, rtcp: 'mux', reorderPackets: 64 })
      const frames: VideoFrameData[] = []
      rx.on('frame', (f) => frames.push(f.copy()))
      const s = createSocket('udp4')
      const port = rx.ports().rtp
      const sent = { n: 0 }
      const send = (b: Buffer) =>
        new Promise<void>((r) => {
          sent.n++
          s.send(b, port, '127.0.0.1', () => r())
        })
      let maxBuffered = 0
      try {
        for (let i = 0; i < 3000; i++) {
          const len = Math.floor(rand() * 1400)
          const b = Buffer.alloc(len)
          for (let k = 0; k < len; k++) b[k] = Math.floor(rand() * 256)
          if (len >= 12 && rand() < 0.6) {
            b[0] = 0x80 | (b[0] & 0x1f) // version 2, random P/X/CC bits cleared or set
            b[1] = (b[1] & 0x80) | 96
            if (rand() < 0.7) b.writeUInt32BE(0xabcdef01, 8) // mostly one SSRC, so the buffer fills
          }
          await send(b)
          // Let the event loop run, as a real application would between
          // datagrams: frames are only consumed when JavaScript gets a turn.
          if (i % 50 === 0) await new Promise((r) => setImmediate(r))
          if (i % 200 === 0) maxBuffered = Math.max(maxBuffered, rx.stats().buffered)
        }
        // A clean stream afterwards is still received (new SSRC: the receiver switches to it).
        for (let f = 0; f < 10; f++) {
          const p = Buffer.alloc(16)
          p[0] = 0x80
          p[1] = 0x80 | 96
          p.writeUInt16BE(1000 + f, 2)
          p.writeUInt32BE(f * 3000, 4)
          p.writeUInt32BE(0x5eed, 8)
          p.set([0x41, f, f, f], 12)
          await send(p)
        }
        expect(await waitFor(() => rx.stats().datagrams + rx.stats().kernelDrops >= sent.n)).toBe(true)
        expect(await waitFor(() => frames.some((f) => f.ssrc === 0x5eed && f.complete))).toBe(true)
        const st = rx.stats()
        expect(st.datagrams + st.kernelDrops).toBe(sent.n)
        expect(st.malformed + st.rtcpPackets + st.packets + st.duplicates + st.late + st.foreignSsrc + st.wrongPayloadType + st.tooLargePackets + st.truncatedDatagrams).toBeGreaterThanOrEqual(st.datagrams - 10)
        expect(maxBuffered).toBeLessThanOrEqual(64)
        expect(st.malformed).toBeGreaterThan(0)
      } finally {
        s.close()
        rx.close()
      }
    })
  })
}
