// onbus RtpSender (H.265, RFC 7798) → GStreamer (rtph265depay ! avdec_h265)
// and ffmpeg (-i stream.sdp with sprop-vps/sps/pps): every frame decodes.
import { describe, it, expect, beforeAll } from 'vitest'
import { splitAccessUnits } from '../lib/video/annexb.js'
import { generateSdp } from '../lib/video/sdp.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { clipParameterSets, encodeClip, ffmpegReceiver, gstReceiver, gstSdpReceiver, missingFfmpeg, missingGst, sendThrough, skipReason, tempDir } from './helpers/rtp-send.js'

const W = 640
const H = 480
const N = 45
const gstWhy = missingGst(['x265enc', 'udpsrc', 'rtpjitterbuffer', 'rtph265depay', 'avdec_h265', 'videoconvert'])
const ffWhy = gstWhy ?? missingFfmpeg('hevc')
const slow = skipUnderEmulator('speed')

let dir: string
let aus: Uint8Array[][]
function clip(): void {
  dir ??= tempDir()
  aus ??= splitAccessUnits(encodeClip({ codec: 'h265', width: W, height: H, frames: N, dir }), 'h265')
}

describe.skipIf(slow || skipReason(gstWhy))('RtpSender H.265 → GStreamer', () => {
  beforeAll(clip, 120_000)

  it('the clip splits into one access unit per encoded frame', () => {
    expect(aus.length).toBe(N)
  })

  for (const mtu of [1400, 300]) {
    it(`every frame decodes at mtu ${mtu} (FU, AP for VPS+SPS+PPS)`, async () => {
      const r = await sendThrough({ peer: gstReceiver('h265'), aus, width: W, height: H, dir, sender: { codec: 'h265', mtu } })
      expect(r.decoded, r.peerOutput).toBe(N)
      expect(r.sender.fragmentPackets).toBeGreaterThan(0)
      expect(r.sender.aggregationPackets).toBeGreaterThan(0)
    }, 60_000)
  }
})

describe.skipIf(slow || skipReason(ffWhy))('RtpSender H.265 → ffmpeg -i stream.sdp', () => {
  beforeAll(clip, 120_000)

  it('every frame decodes from the generated SDP (sprop-vps/sps/pps)', async () => {
    const ps = clipParameterSets(aus, 'h265')
    const sdp = (port: number) => generateSdp({ codec: 'h265', address: '127.0.0.1', port, parameterSets: ps })
    expect(sdp(5004)).toMatch(/a=rtpmap:97 H265\/90000\r\na=fmtp:97 sprop-vps=[^;]+;sprop-sps=[^;]+;sprop-pps=\S+/)
    const r = await sendThrough({ peer: ffmpegReceiver(sdp), aus, width: W, height: H, dir, sender: { codec: 'h265', mtu: 1000, parameterSets: ps } })
    expect(r.decoded, r.peerOutput).toBe(N)
  }, 60_000)
})

const sdpWhy = gstWhy ?? missingGst(['sdpdemux', 'filesrc'])
describe.skipIf(slow || skipReason(sdpWhy))('RtpSender H.265 → GStreamer sdpdemux', () => {
  beforeAll(clip, 120_000)

  it('every frame decodes with the pipeline built from the generated SDP', async () => {
    const ps = clipParameterSets(aus, 'h265')
    const sdp = (port: number) => generateSdp({ codec: 'h265', address: '127.0.0.1', port, parameterSets: ps })
    const r = await sendThrough({ peer: gstSdpReceiver('h265', sdp), aus, width: W, height: H, dir, sender: { codec: 'h265', parameterSets: ps } })
    expect(r.decoded, r.peerOutput).toBe(N)
  }, 60_000)
})
