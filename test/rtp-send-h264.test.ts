// onbus RtpSender (H.264) → real decoders nobody here wrote: GStreamer
// (udpsrc ! rtpjitterbuffer ! rtph264depay ! avdec_h264) and ffmpeg (-i
// stream.sdp). Every frame the encoder produced must come out decoded.
import { describe, it, expect, beforeAll } from 'vitest'
import { splitAccessUnits } from '../lib/video/annexb.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { clipParameterSets, encodeClip, ffmpegReceiver, gstReceiver, gstSdpReceiver, missingFfmpeg, missingGst, sendThrough, skipReason, tempDir } from './helpers/rtp-send.js'
import { generateSdp } from '../lib/video/sdp.js'

const W = 640
const H = 480
const N = 60
const gstWhy = missingGst(['x264enc', 'udpsrc', 'rtpjitterbuffer', 'rtph264depay', 'avdec_h264', 'videoconvert'])
const ffWhy = gstWhy ?? missingFfmpeg('h264')
const slow = skipUnderEmulator('speed')

describe.skipIf(slow || skipReason(gstWhy))('RtpSender H.264 → GStreamer', () => {
  let dir: string
  let aus: Uint8Array[][]
  beforeAll(() => {
    dir = tempDir()
    aus = splitAccessUnits(encodeClip({ codec: 'h264', width: W, height: H, frames: N, dir }), 'h264')
  })

  it('the clip splits into one access unit per encoded frame', () => {
    expect(aus.length).toBe(N)
  })

  for (const mtu of [1400, 576, 200]) {
    it(`every frame decodes at mtu ${mtu} (FU-A fragments, STAP-A parameter sets)`, async () => {
      const r = await sendThrough({ peer: gstReceiver('h264'), aus, width: W, height: H, dir, sender: { codec: 'h264', mtu } })
      expect(r.decoded, r.peerOutput).toBe(N)
      expect(r.sender.framesSent).toBe(N)
      expect(r.sender.fragmentPackets).toBeGreaterThan(0)
      expect(r.sender.aggregationPackets).toBeGreaterThan(0) // SPS+PPS ahead of each IDR
      // One sendBatch per frame (two when a STAP-A precedes a GSO run): far fewer calls than packets.
      expect(r.sender.sendCalls).toBeLessThan(r.sender.packetsSent / 2)
      expect(r.sender.sendCalls).toBeLessThanOrEqual(2 * N + 2)
    }, 60_000)
  }

  it("every frame decodes with aggregate: 'all' and GSO off", async () => {
    const r = await sendThrough({ peer: gstReceiver('h264'), aus, width: W, height: H, dir, sender: { codec: 'h264', mtu: 1200, aggregate: 'all', gso: false } })
    expect(r.decoded, r.peerOutput).toBe(N)
  }, 60_000)

  it('every frame decodes when paced at a bitrate', async () => {
    const r = await sendThrough({ peer: gstReceiver('h264'), aus, width: W, height: H, dir, sender: { codec: 'h264', pacing: { bitrate: 50_000_000 } } })
    expect(r.decoded, r.peerOutput).toBe(N)
    expect(r.sender.framesDropped).toBe(0)
  }, 60_000)
})

const sdpWhy = gstWhy ?? missingGst(['sdpdemux', 'filesrc'])
describe.skipIf(slow || skipReason(sdpWhy))('RtpSender H.264 → GStreamer sdpdemux', () => {
  it('every frame decodes with the pipeline built from the generated SDP', async () => {
    const dir = tempDir()
    const aus = splitAccessUnits(encodeClip({ codec: 'h264', width: W, height: H, frames: N, dir }), 'h264')
    const ps = clipParameterSets(aus, 'h264')
    const sdp = (port: number) => generateSdp({ codec: 'h264', address: '127.0.0.1', port, parameterSets: ps })
    const r = await sendThrough({ peer: gstSdpReceiver('h264', sdp), aus, width: W, height: H, dir, sender: { codec: 'h264', parameterSets: ps } })
    expect(r.decoded, r.peerOutput).toBe(N)
  }, 60_000)
})

describe.skipIf(slow || skipReason(ffWhy))('RtpSender H.264 → ffmpeg -i stream.sdp', () => {
  let dir: string
  let aus: Uint8Array[][]
  beforeAll(() => {
    dir = tempDir()
    aus = splitAccessUnits(encodeClip({ codec: 'h264', width: W, height: H, frames: N, dir }), 'h264')
  })

  it('every frame decodes from the generated SDP (sprop-parameter-sets, packetization-mode=1)', async () => {
    const ps = clipParameterSets(aus, 'h264')
    const sdp = (port: number) => generateSdp({ codec: 'h264', address: '127.0.0.1', port, parameterSets: ps })
    expect(sdp(5004)).toMatch(/a=fmtp:96 packetization-mode=1;profile-level-id=[0-9a-f]{6};sprop-parameter-sets=[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+/)
    const r = await sendThrough({ peer: ffmpegReceiver(sdp), aus, width: W, height: H, dir, sender: { codec: 'h264', mtu: 1000, parameterSets: ps } })
    expect(r.decoded, r.peerOutput).toBe(N)
  }, 60_000)
})
