/**
 * The receiver's depacketiser, reorder buffer and RTCP against hand-made RTP
 * sent over real loopback UDP: FU-A / STAP-A / H.265 AP + FU reassembly,
 * reordering within the latency bound, sequence wraparound, loss (frame
 * flagged with the missing range), late and duplicate packets, SSRC change,
 * RTCP SR → capture time, RR and PLI / FIR back to the sender.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSocket, type Socket } from 'node:dgram'
import { createRtpReceiver, type RtpReceiver, type RtpReceiverOptions, type VideoFrameData } from '../lib/video/receiver.js'
import { waitFor } from './helpers/rtp-receive.js'

// Every check runs with the receiver on onbus's I/O thread and on the JavaScript thread (libuv poll).
const THREADS = ['io', 'js'] as const

function rtp(seq: number, ts: number, payload: Uint8Array, o: { marker?: boolean; pt?: number; ssrc?: number } = {}): Buffer {
  const h = Buffer.alloc(12)
  h[0] = 0x80
  h[1] = (o.marker ? 0x80 : 0) | (o.pt ?? 96)
  h.writeUInt16BE(seq & 0xffff, 2)
  h.writeUInt32BE(ts >>> 0, 4)
  h.writeUInt32BE(o.ssrc ?? 0x11223344, 8)
  return Buffer.concat([h, payload])
}

const SPS = Buffer.from([0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8])
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80])
const IDR = Buffer.concat([Buffer.from([0x65]), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff))])
const SC = Buffer.from([0, 0, 0, 1])

function stapA(...nals: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([0x18]), ...nals.flatMap((n) => [Buffer.from([n.length >> 8, n.length & 0xff]), n])])
}
/** FU-A fragments of one NAL unit. */
function fuA(nal: Buffer, parts: number): Buffer[] {
  const body = nal.subarray(1)
  const step = Math.ceil(body.length / parts)
  const out: Buffer[] = []
  for (let i = 0; i < parts; i++) {
    const s = i === 0 ? 0x80 : 0
    const e = i === parts - 1 ? 0x40 : 0
    out.push(Buffer.concat([Buffer.from([(nal[0] & 0xe0) | 28, s | e | (nal[0] & 0x1f)]), body.subarray(i * step, (i + 1) * step)]))
  }
  return out
}
/** A keyframe access unit as packets starting at `seq`: STAP-A(SPS, PPS) + IDR in 3 FU-A. */
function keyframe(seq: number, ts: number, ssrc?: number): Buffer[] {
  return [stapA(SPS, PPS), ...fuA(IDR, 3)].map((p, i, a) => rtp(seq + i, ts, p, { marker: i === a.length - 1, ssrc }))
}
const KEYFRAME_BYTES = Buffer.concat([SC, SPS, SC, PPS, SC, IDR])
function pframe(seq: number, ts: number, fill: number, ssrc?: number): Buffer {
  return rtp(seq, ts, Buffer.from([0x41, fill, fill, fill]), { marker: true, ssrc })
}

let rx: RtpReceiver | undefined
let tx: Socket | undefined
afterEach(() => {
  rx?.close()
  tx?.close()
  rx = tx = undefined
})

async function setup(thread: 'io' | 'js', opts: Partial<RtpReceiverOptions> = {}) {
  const frames: VideoFrameData[] = []
  rx = createRtpReceiver({ port: 0, codec: 'h264', latencyMs: 40, rtcp: false, thread, ...opts })
  rx.on('frame', (f) => frames.push(f.copy()))
  tx = createSocket('udp4')
  await new Promise<void>((r) => tx!.bind(0, '127.0.0.1', () => r()))
  const port = rx.ports().rtp
  const send = async (pkts: Buffer[], gapMs = 0) => {
    for (const p of pkts) {
      await new Promise<void>((r, j) => tx!.send(p, port, '127.0.0.1', (e) => (e ? j(e) : r())))
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs))
    }
  }
  return { frames, send, port }
}

for (const thread of THREADS) {
  describe(`RTP depacketiser and reorder buffer (thread: ${thread})`, () => {
    it('reassembles STAP-A + FU-A into one Annex-B keyframe with parameter sets', async () => {
      const { frames, send } = await setup(thread)
      await send([...keyframe(100, 9000), pframe(104, 12000, 5)])
      expect(await waitFor(() => frames.length === 2)).toBe(true)
      expect(Buffer.from(frames[0].data).equals(KEYFRAME_BYTES)).toBe(true)
      expect(frames[0].complete && frames[0].keyframe).toBe(true)
      expect(Buffer.from(frames[0].parameterSets.sps!).equals(SPS)).toBe(true)
      expect(Buffer.from(frames[0].parameterSets.pps!).equals(PPS)).toBe(true)
      expect(frames[0]).toMatchObject({ rtpTimestamp: 9000, ssrc: 0x11223344, packets: 4, missing: [] })
      expect(Buffer.from(frames[1].data).equals(Buffer.from([0, 0, 0, 1, 0x41, 5, 5, 5]))).toBe(true)
      expect(frames[1].keyframe).toBe(false)
      expect(Buffer.from(rx!.parameterSets().sps!).equals(SPS)).toBe(true)
    })

    it('length-prefixed format', async () => {
      const { frames, send } = await setup(thread, { format: 'length-prefixed' })
      await send(keyframe(1, 0))
      expect(await waitFor(() => frames.length === 1)).toBe(true)
      const len = (n: Buffer) => Buffer.from([0, 0, n.length >> 8, n.length & 0xff])
      expect(Buffer.from(frames[0].data).equals(Buffer.concat([len(SPS), SPS, len(PPS), PPS, len(IDR), IDR]))).toBe(true)
    })

    it('puts reordered packets back in order within the latency, across the sequence wraparound', async () => {
      // A generous latency: only a stalled machine could make the reordered packets miss it.
      const { frames, send } = await setup(thread, { latencyMs: 2000 })
      const k = keyframe(65533, 0) // seq 65533, 65534, 65535, 0
      await send([k[0], k[2], k[1], k[3], pframe(2, 3000, 9), pframe(1, 1500, 8)])
      expect(await waitFor(() => frames.length === 3)).toBe(true)
      expect(frames.map((f) => f.complete)).toEqual([true, true, true])
      expect(Buffer.from(frames[0].data).equals(KEYFRAME_BYTES)).toBe(true)
      expect(frames.map((f) => f.rtpTimestamp)).toEqual([0, 1500, 3000])
      expect(frames[1].firstSeq).toBe(65536 + 1) // extended sequence numbers keep counting
      const s = rx!.stats()
      expect(s).toMatchObject({ lost: 0, late: 0, duplicates: 0, framesComplete: 3, framesIncomplete: 0 })
    })

    it('a lost FU-A fragment makes the frame incomplete with the missing range; later packets flow after the latency', async () => {
      const { frames, send } = await setup(thread, { latencyMs: 30 })
      const k = keyframe(10, 0)
      await send([k[0], k[1], k[3], pframe(14, 3000, 1)]) // seq 12 lost
      expect(await waitFor(() => frames.length === 2)).toBe(true)
      expect(frames[0].complete).toBe(false)
      expect(frames[0].missing).toEqual([{ first: 12, last: 12 }])
      expect(frames[1].complete).toBe(true)
      const s = rx!.stats()
      expect(s.lost).toBe(1)
      expect(s.framesIncomplete).toBe(1)
      // The late packet that finally shows up is dropped and counted; a duplicate too.
      await send([k[2], pframe(14, 3000, 1)])
      expect(await waitFor(() => rx!.stats().late === 1 && rx!.stats().duplicates === 1)).toBe(true)
      expect(frames.length).toBe(2)
    })

    it('a loss right after a marker flags the next frame (its first packets may be the lost ones)', async () => {
      const { frames, send } = await setup(thread, { latencyMs: 20 })
      // frame at ts 3000 is seq 5 (lost) + seq 6 (marker)
      await send([pframe(4, 0, 1), rtp(6, 3000, Buffer.from([0x41, 2]), { marker: true }), pframe(7, 6000, 3)])
      expect(await waitFor(() => frames.length === 3)).toBe(true)
      expect(frames.map((f) => f.complete)).toEqual([true, false, true])
      expect(frames[1].missing).toEqual([{ first: 5, last: 5 }])
    })

    it('switches to a new SSRC after a few packets, ignoring strays', async () => {
      const { frames, send } = await setup(thread)
      await send([...keyframe(1, 0)])
      await send([pframe(500, 100, 7, 0xdead)]) // a stray
      await send([pframe(5, 3000, 1)])
      await send(keyframe(9000, 50000, 0xbeef)) // the sender restarted
      await send([pframe(9004, 53000, 2, 0xbeef)])
      expect(await waitFor(() => frames.length >= 4)).toBe(true)
      const s = rx!.stats()
      expect(s.foreignSsrc).toBeGreaterThanOrEqual(1)
      expect(s.ssrcChanges).toBe(1)
      expect(frames.filter((f) => f.ssrc === 0xbeef).length).toBeGreaterThanOrEqual(1)
      expect(frames.at(-1)!).toMatchObject({ ssrc: 0xbeef, rtpTimestamp: 53000, complete: true })
    })

    it('counts malformed packets and other payload types without delivering them', async () => {
      const { frames, send } = await setup(thread, { payloadType: 96 })
      await send([Buffer.from([1, 2, 3]), Buffer.from([0x40, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), pframe(1, 0, 1, undefined)])
      await send([rtp(2, 3000, Buffer.from([0x41, 1]), { marker: true, pt: 100 })])
      await send([pframe(3, 6000, 2)])
      expect(await waitFor(() => frames.length === 2)).toBe(true)
      const s = rx!.stats()
      expect(s.malformed).toBe(2)
      expect(s.wrongPayloadType).toBe(1)
    })

    it('H.265: AP with VPS/SPS/PPS and an IDR in FUs', async () => {
      const { frames, send } = await setup(thread, { codec: 'h265' })
      const vps = Buffer.from([0x40, 0x01, 0x0c, 0x01, 0xff])
      const sps = Buffer.from([0x42, 0x01, 0x01, 0x01, 0x60])
      const pps = Buffer.from([0x44, 0x01, 0xc1, 0x72])
      const idr = Buffer.concat([Buffer.from([0x26, 0x01]), Buffer.alloc(200, 0xab)])
      const ap = Buffer.concat([Buffer.from([0x60, 0x01]), ...[vps, sps, pps].flatMap((n) => [Buffer.from([0, n.length]), n])])
      const fu = (s: boolean, e: boolean, body: Buffer) => Buffer.concat([Buffer.from([49 << 1, 0x01, (s ? 0x80 : 0) | (e ? 0x40 : 0) | 19]), body])
      await send([rtp(1, 0, ap), rtp(2, 0, fu(true, false, idr.subarray(2, 100))), rtp(3, 0, fu(false, true, idr.subarray(100)), { marker: true })])
      expect(await waitFor(() => frames.length === 1)).toBe(true)
      expect(Buffer.from(frames[0].data).equals(Buffer.concat([SC, vps, SC, sps, SC, pps, SC, idr]))).toBe(true)
      expect(frames[0].keyframe && frames[0].complete).toBe(true)
      expect(Buffer.from(frames[0].parameterSets.vps!).equals(vps)).toBe(true)
    })
  })
}

for (const thread of THREADS) {
  describe(`RTCP (thread: ${thread})`, () => {
    function sr(ssrc: number, ntpSec: number, ntpFrac: number, rtpTs: number): Buffer {
      const b = Buffer.alloc(28)
      b[0] = 0x80
      b[1] = 200
      b.writeUInt16BE(6, 2)
      b.writeUInt32BE(ssrc, 4)
      b.writeUInt32BE(ntpSec, 8)
      b.writeUInt32BE(ntpFrac, 12)
      b.writeUInt32BE(rtpTs, 16)
      return b
    }

    it('SR gives capture times; RR and PLI go back to the sender (rtcp-mux)', async () => {
      const { frames, send } = await setup(thread, { rtcp: { mux: true, intervalMs: 50 }, keyframeRequest: 'pli', keyframeIntervalMs: 10 })
      const fromRx: Buffer[] = []
      tx!.on('message', (m) => fromRx.push(m))
      const unix = 1_700_000_000
      await send([sr(0x11223344, unix + 2208988800, 0x80000000, 90000)])
      await send(keyframe(1, 90000 + 9000))
      expect(await waitFor(() => frames.length === 1)).toBe(true)
      // 9000 ticks after the SR's RTP time = 100 ms after its NTP time (x.5 s).
      expect(frames[0].captureTime).toEqual({ sec: unix, nsec: 600_000_000 })
      expect(rx!.stats().senderReports).toBe(1)
      // Reports go every 50 ms; the first may predate some packets: wait for one that saw all four.
      const isFullRr = (m: Buffer) => m[1] === 201 && (m[0] & 0x1f) === 1 && m.readUInt32BE(16) === 4
      expect(await waitFor(() => fromRx.some(isFullRr))).toBe(true)
      const rr = fromRx.find(isFullRr)!
      expect(rr.readUInt32BE(8)).toBe(0x11223344) // the source it reports on
      expect(rr.readUInt32BE(12) & 0xffffff).toBe(0) // cumulative lost
      expect(rr.readUInt32BE(24)).toBe(((unix + 2208988800) & 0xffff) * 65536 + 0x8000) // LSR: middle 32 bits of the SR's NTP time
      // A loss makes the receiver ask for a keyframe.
      await send([pframe(5, 102000, 1), pframe(7, 108000, 2)])
      expect(await waitFor(() => fromRx.some((m) => m[1] === 206 && (m[0] & 0x1f) === 1))).toBe(true)
      const pli = fromRx.find((m) => m[1] === 206)!
      expect(pli.readUInt32BE(8)).toBe(0x11223344)
      expect(rx!.stats().pliSent).toBeGreaterThanOrEqual(1)
    })

    it('separate RTCP port: FIR after loss goes to the SR source', async () => {
      const frames: VideoFrameData[] = []
      rx = createRtpReceiver({ thread, port: 0, codec: 'h264', latencyMs: 10, rtcp: { intervalMs: 5000 }, keyframeRequest: 'fir', keyframeIntervalMs: 10 })
      rx.on('frame', (f) => frames.push(f.copy()))
      const { rtp: rtpPort, rtcp: rtcpPort } = rx.ports()
      expect(rtcpPort).toBeGreaterThan(0)
      tx = createSocket('udp4')
      await new Promise<void>((r) => tx!.bind(0, '127.0.0.1', () => r()))
      const ctl = createSocket('udp4')
      await new Promise<void>((r) => ctl.bind(0, '127.0.0.1', () => r()))
      const got: Buffer[] = []
      ctl.on('message', (m) => got.push(m))
      try {
        const s = (p: Buffer, port: number, sock: Socket) => new Promise<void>((r) => sock.send(p, port, '127.0.0.1', () => r()))
        await s(sr(0x11223344, 3900000000, 0, 0), rtcpPort!, ctl)
        for (const p of keyframe(1, 0)) await s(p, rtpPort, tx!)
        await s(pframe(6, 6000, 1), rtpPort, tx!) // seq 5 lost
        expect(await waitFor(() => got.some((m) => m[1] === 206 && (m[0] & 0x1f) === 4))).toBe(true)
        const fir = got.find((m) => m[1] === 206)!
        expect(fir.readUInt32BE(12)).toBe(0x11223344)
        expect(rx.stats().firSent).toBeGreaterThanOrEqual(1)
      } finally {
        ctl.close()
      }
    })
  })
}
