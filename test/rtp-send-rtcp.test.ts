// RTCP of the RtpSender: sender reports checked against the RTP packets that
// actually arrived (counts, octets, NTP ↔ RTP mapping), BYE on close,
// PLI/FIR → 'keyframe-request', malformed RTCP counted, and receiver reports
// from a real peer (GStreamer rtpbin) with a round-trip time that proves the
// peer parsed our SRs.
import { describe, it, expect, afterEach } from 'vitest'
import { createSocket } from 'node:dgram'
import { createUdpLink, type UdpLink } from '../lib/links/udp/index.js'
import { createRtpSender, type RtpSender, type ReceiverReportInfo } from '../lib/video/sender.js'
import { buildFir, buildPli, nsFromNtp, parseRtcp, type RtcpPacket, type SenderReport } from '../lib/video/rtcp.js'
import { splitAccessUnits } from '../lib/video/annexb.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { createImpairRelay } from '../lib/testing/impair.js'
import { encodeClip, fileSize, freePortPair, missingGst, skipReason, startPeer, tempDir, udpPortBound, until, type Peer } from './helpers/rtp-send.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})

function frame(i: number): Buffer {
  // A syntactically plausible H.264 AU: non-IDR slice header byte, payload of 3000 bytes.
  const b = Buffer.alloc(3004, i & 0xff)
  b.writeUInt32BE(1, 0)
  b[4] = 0x41
  return b
}

describe('RtpSender RTCP', () => {
  it('sender reports match what arrived: packet and octet counts, NTP time, RTP timestamp mapping, CNAME; BYE on close', async () => {
    const port = await freePortPair()
    const rtp = createUdpLink({ port })
    const rtcp = createUdpLink({ port: port + 1 })
    closers.push(() => rtp.close(), () => rtcp.close())
    let packets = 0
    let octets = 0
    let lastTs = 0
    let lastTsAt = 0n
    rtp.onBatch((b) => {
      for (let i = 0; i < b.length; i++) {
        const v = b.view(i)
        packets++
        octets += v.length - 12
        lastTs = new DataView(v.buffer, v.byteOffset, v.byteLength).getUint32(4)
        lastTsAt = process.hrtime.bigint()
      }
    })
    const reports: { sr: SenderReport; packetsThen: number; octetsThen: number; ts: number; tsAt: bigint; at: bigint; wall: number }[] = []
    const all: RtcpPacket[] = []
    rtcp.onBatch((b) => {
      for (let i = 0; i < b.length; i++) {
        const { packets: ps, error } = parseRtcp(b.view(i))
        expect(error).toBeUndefined()
        all.push(...ps)
        for (const p of ps) if (p.type === 'sr') reports.push({ sr: p, packetsThen: packets, octetsThen: octets, ts: lastTs, tsAt: lastTsAt, at: process.hrtime.bigint(), wall: Date.now() })
      }
    })
    const tx = createRtpSender({ host: '127.0.0.1', port, codec: 'h264', mtu: 1200, rtcp: { intervalMs: 200, cname: 'cam0@test' } })
    for (let i = 0; i < 40; i++) {
      tx.sendFrame(frame(i)) // RTP timestamps from the sender's clock
      await sleep(25)
    }
    await until(() => reports.length >= 3, 10_000)
    const st = tx.stats()
    await new Promise<void>((r) => tx.close(r))
    await until(() => all.some((p) => p.type === 'bye'), 5000)

    expect(reports.length).toBeGreaterThanOrEqual(3)
    for (const r of reports) {
      expect(r.sr.ssrc).toBe(tx.ssrc)
      // Loopback loses nothing here: what the SR counts is at least what had arrived before it (RTP and RTCP are
      // separate sockets dispatched separately, so allow a few frames of 3 packets still in flight).
      expect(r.sr.packetCount).toBeGreaterThanOrEqual(r.packetsThen)
      expect(r.sr.packetCount - r.packetsThen).toBeLessThanOrEqual(9)
      expect(r.sr.octetCount).toBeGreaterThanOrEqual(r.octetsThen)
      expect(Math.abs(Number(nsFromNtp(r.sr.ntpSec, r.sr.ntpFrac) / 1_000_000n) - r.wall)).toBeLessThan(2000)
      if (r.packetsThen === 0) continue // the first SR follows the first frame at once: no timestamp seen yet to compare
      // The SR's RTP time is the last frame's timestamp advanced by the time since (90 kHz), within 1 s (handler lag).
      const expected = r.ts + (Number(r.at - r.tsAt) / 1e9) * 90000
      const diff = ((r.sr.rtpTimestamp - expected) % 2 ** 32 + 2 ** 32 + 2 ** 31) % 2 ** 32 - 2 ** 31
      expect(Math.abs(diff)).toBeLessThan(90000)
    }
    const last = all.filter((p): p is SenderReport => p.type === 'sr').at(-1)!
    expect(last.packetCount).toBe(packets)
    expect(last.octetCount).toBe(octets)
    expect(st.payloadOctets).toBe(octets)
    expect(all.some((p) => p.type === 'sdes' && p.chunks[0].cname === 'cam0@test')).toBe(true)
    expect(all.some((p) => p.type === 'bye' && p.ssrcs[0] === tx.ssrc)).toBe(true)
  })

  it('the SR maps wall clock to RTP time exactly: the frame\'s timestamp advanced by the time since its captureTime', async () => {
    const port = await freePortPair()
    const rtcp = createUdpLink({ port: port + 1 })
    closers.push(() => rtcp.close())
    const srs: SenderReport[] = []
    rtcp.onBatch((b) => {
      for (let i = 0; i < b.length; i++) for (const p of parseRtcp(b.view(i)).packets) if (p.type === 'sr') srs.push(p)
    })
    const tx = createRtpSender({ host: '127.0.0.1', port, codec: 'h264', rtcp: { intervalMs: 100 } })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    const capture = BigInt(Date.now() - 10_000) * 1_000_000n // captured 10 s ago
    const ts = 4_000_000_000 // near the wrap on purpose
    tx.sendFrame(frame(0), { rtpTimestamp: ts, captureTime: capture })
    await until(() => srs.length >= 2, 5000)
    for (const sr of srs) {
      const elapsedNs = Number(nsFromNtp(sr.ntpSec, sr.ntpFrac) - capture)
      const expected = (ts + Math.round((elapsedNs * 90000) / 1e9)) % 2 ** 32
      expect(Math.abs(sr.rtpTimestamp - expected)).toBeLessThanOrEqual(1) // NTP fraction rounding only
      expect(elapsedNs / 1e9).toBeGreaterThan(9.9)
    }
  })

  it("PLI and FIR from a receiver become 'keyframe-request'; a repeated FIR is one request; garbage is counted", async () => {
    const port = await freePortPair()
    const tx = createRtpSender({ host: '127.0.0.1', port, codec: 'h264' })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    const reqs: unknown[] = []
    tx.on('keyframe-request', (r) => reqs.push(r))
    const peer = createSocket('udp4')
    closers.push(() => peer.close())
    const target = tx.address().port + 1
    const send = (b: Uint8Array) => new Promise<void>((r) => peer.send(b, target, '127.0.0.1', () => r()))
    await send(buildPli(0x1234, tx.ssrc))
    await send(buildFir(0x1234, tx.ssrc, 7))
    await send(buildFir(0x1234, tx.ssrc, 7)) // retransmission of the same request
    await send(buildPli(0x1234, tx.ssrc ^ 1)) // another stream's
    await send(Buffer.from([0x80, 0xc9, 0x00, 0x09, 1, 2, 3, 4])) // RR claiming 40 bytes in 8
    await send(Buffer.from('hello world!'))
    await until(() => Object.values(tx.stats().rtcpRejected).reduce((a, b) => a + b, 0) >= 2, 5000)
    expect(reqs).toEqual([
      { reason: 'pli', from: 0x1234 },
      { reason: 'fir', from: 0x1234 },
    ])
    expect(tx.stats().keyframeRequests).toBe(2)
    expect(tx.stats().rtcpRejected).toEqual({ length: 1, 'not-rtcp': 1 })
  })
})

const gstWhy = missingGst(['x264enc', 'rtpbin', 'udpsrc', 'udpsink', 'rtph264depay', 'avdec_h264'])
describe.skipIf(skipUnderEmulator('speed') || skipReason(gstWhy))('RtpSender ↔ GStreamer rtpbin', () => {
  it('gets receiver reports whose LSR/DLSR give a round-trip time (the peer used our SRs)', async () => {
    const dir = tempDir()
    const aus = splitAccessUnits(encodeClip({ codec: 'h264', width: 320, height: 240, frames: 150, dir }), 'h264')
    const port = await freePortPair()
    const tx: RtpSender = createRtpSender({ host: '127.0.0.1', port, codec: 'h264', rtcp: { intervalMs: 500 } })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    const rrs: ReceiverReportInfo[] = []
    tx.on('receiver-report', (r) => rrs.push(r))
    const peer: Peer = startPeer('gst-launch-1.0', [
      'rtpbin', 'name=rb',
      'udpsrc', 'address=127.0.0.1', `port=${port}`, 'caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96',
      '!', 'rb.recv_rtp_sink_0',
      'rb.', '!', 'rtph264depay', '!', 'avdec_h264', '!', 'fakesink', 'sync=false',
      'udpsrc', 'address=127.0.0.1', `port=${port + 1}`, '!', 'rb.recv_rtcp_sink_0',
      'rb.send_rtcp_src_0', '!', 'udpsink', 'host=127.0.0.1', `port=${tx.address().port + 1}`, 'sync=false', 'async=false',
    ])
    closers.push(() => peer.stop(3000))
    expect(await until(() => udpPortBound(port + 1) || peer.child.exitCode !== null, 20_000)).toBe(true)
    await sleep(300)
    for (let i = 0; i < aus.length && !rrs.some((r) => r.rttMs !== undefined); i++) {
      tx.sendFrame(aus[i % aus.length], { ptsUs: i * 33_333 })
      await sleep(33)
    }
    await until(() => rrs.some((r) => r.rttMs !== undefined), 10_000)
    const withRtt = rrs.find((r) => r.rttMs !== undefined)
    expect(withRtt, peer.output()).toBeDefined()
    expect(withRtt!.rttMs!).toBeGreaterThanOrEqual(0)
    expect(withRtt!.rttMs!).toBeLessThan(1000) // loopback
    // Nothing is lost on loopback. rtpsession may report -1 (RFC 3550 allows negative: its expected count starts one packet late after probation).
    expect(withRtt!.cumulativeLost).toBeLessThanOrEqual(0)
    expect(tx.stats().receiverReports).toBeGreaterThan(0)
  }, 60_000)
})

describe.skipIf(skipUnderEmulator('speed') || skipReason(gstWhy))('RtpSender ← GStreamer PLI', () => {
  it("a real receiver's PLI after loss (rtpbin AVPF, rtph264depay request-keyframe) becomes 'keyframe-request'", async () => {
    const dir = tempDir()
    const aus = splitAccessUnits(encodeClip({ codec: 'h264', width: 320, height: 240, frames: 300, keyInt: 300, dir }), 'h264')
    const port = await freePortPair()
    // RTP through a lossy relay, RTCP direct.
    const relay = createImpairRelay({ forward: { host: '127.0.0.1', port }, loss: 0.05, seed: 11 })
    closers.push(() => new Promise<void>((r) => relay.close(r)))
    const tx: RtpSender = createRtpSender({ host: '127.0.0.1', port: relay.address().port, codec: 'h264', rtcp: { port: port + 1, intervalMs: 500 } })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    const reqs: unknown[] = []
    tx.on('keyframe-request', (r) => reqs.push(r))
    const peer: Peer = startPeer('gst-launch-1.0', [
      'rtpbin', 'name=rb', 'rtp-profile=avpf',
      'udpsrc', 'address=127.0.0.1', `port=${port}`, 'caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96,rtcp-fb-nack-pli=(boolean)true',
      '!', 'rb.recv_rtp_sink_0',
      'rb.', '!', 'rtph264depay', 'request-keyframe=true', '!', 'avdec_h264', '!', 'fakesink', 'sync=false',
      'udpsrc', 'address=127.0.0.1', `port=${port + 1}`, '!', 'rb.recv_rtcp_sink_0',
      'rb.send_rtcp_src_0', '!', 'udpsink', 'host=127.0.0.1', `port=${tx.address().port + 1}`, 'sync=false', 'async=false',
    ])
    closers.push(() => peer.stop(3000))
    expect(await until(() => udpPortBound(port + 1) || peer.child.exitCode !== null, 20_000)).toBe(true)
    await sleep(300)
    for (let i = 0; i < aus.length && reqs.length === 0; i++) {
      tx.sendFrame(aus[i], { ptsUs: i * 33_333 })
      await sleep(33)
    }
    await until(() => reqs.length > 0, 5000)
    expect(relay.counters().dropped).toBeGreaterThan(0)
    expect(reqs.length, peer.output()).toBeGreaterThan(0)
    expect(reqs[0]).toMatchObject({ reason: 'pli' })
  }, 60_000)
})

describe.skipIf(skipUnderEmulator('speed') || skipReason(gstWhy))('RtpSender ← GStreamer NACK', () => {
  it('answers NACKs from rtpbin (do-retransmission) after loss with the lost packets, and every frame decodes', async () => {
    const dir = tempDir()
    const N = 90
    const aus = splitAccessUnits(encodeClip({ codec: 'h264', width: 320, height: 240, frames: N, kbps: 1500, dir }), 'h264')
    const port = await freePortPair()
    const relay = createImpairRelay({ forward: { host: '127.0.0.1', port }, loss: 0.02, seed: 5 })
    closers.push(() => new Promise<void>((r) => relay.close(r)))
    const tx: RtpSender = createRtpSender({ host: '127.0.0.1', port: relay.address().port, codec: 'h264', mtu: 600, retransmit: true, rtcp: { port: port + 1 } })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    const out = `${dir}/nack.yuv`
    const peer: Peer = startPeer('gst-launch-1.0', [
      '-e', 'rtpbin', 'name=rb', 'rtp-profile=avpf', 'do-retransmission=true', 'latency=1000',
      'udpsrc', 'address=127.0.0.1', `port=${port}`, 'caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96,rtcp-fb-nack=(boolean)true',
      '!', 'rb.recv_rtp_sink_0',
      'rb.', '!', 'rtph264depay', '!', 'avdec_h264', '!', 'videoconvert', '!', 'video/x-raw,format=I420', '!', 'filesink', `location=${out}`,
      'udpsrc', 'address=127.0.0.1', `port=${port + 1}`, '!', 'rb.recv_rtcp_sink_0',
      'rb.send_rtcp_src_0', '!', 'udpsink', 'host=127.0.0.1', `port=${tx.address().port + 1}`, 'sync=false', 'async=false',
    ])
    closers.push(() => peer.stop(3000))
    expect(await until(() => udpPortBound(port + 1) || peer.child.exitCode !== null, 20_000)).toBe(true)
    await sleep(300)
    for (let i = 0; i < N; i++) {
      tx.sendFrame(aus[i], { ptsUs: i * 33_333 })
      await sleep(33)
    }
    const frame = (320 * 240 * 3) / 2
    await until(() => fileSize(out) >= N * frame, 15_000)
    await peer.stop()
    const st = tx.stats()
    expect(relay.counters().dropped).toBeGreaterThan(0)
    expect(st.nacks).toBeGreaterThan(0)
    expect(st.retransmitted).toBeGreaterThan(0)
    expect(fileSize(out) / frame, peer.output()).toBe(N)
  }, 60_000)
})
