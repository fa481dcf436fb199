// Packetisation rules checked packet by packet on a real encoder's stream
// (and on synthetic NAL units for the edges): every packet within the MTU,
// FU fragments of one size but the last, S/E bits, STAP-A/AP layout, and the
// payloads reassemble to exactly the NAL units that went in.
import { describe, it, expect, beforeAll } from 'vitest'
import { splitAccessUnits, splitNals, toAnnexB, nalType } from '../lib/video/annexb.js'
import { packetize, RTP_HEADER_SIZE } from '../lib/video/packetize.js'
import { encodeClip, missingGst, skipReason, tempDir } from './helpers/rtp-send.js'

/** A minimal depacketiser written from RFC 6184 / 7798 for the check. */
function depacketize(pkts: Uint8Array[], codec: 'h264' | 'h265'): Uint8Array[] {
  const out: Uint8Array[] = []
  let fu: number[] | null = null
  const hs = codec === 'h264' ? 1 : 2
  for (const p of pkts) {
    const pl = p.subarray(RTP_HEADER_SIZE)
    const t = codec === 'h264' ? pl[0] & 0x1f : (pl[0] >> 1) & 0x3f
    if ((codec === 'h264' && t === 24) || (codec === 'h265' && t === 48)) {
      for (let o = hs; o < pl.length; ) {
        const n = (pl[o] << 8) | pl[o + 1]
        out.push(pl.subarray(o + 2, o + 2 + n))
        o += 2 + n
      }
    } else if ((codec === 'h264' && t === 28) || (codec === 'h265' && t === 49)) {
      const fh = pl[hs]
      if (fh & 0x80) {
        fu = codec === 'h264' ? [(pl[0] & 0xe0) | (fh & 0x1f)] : [(pl[0] & 0x81) | ((fh & 0x3f) << 1), pl[1]]
      }
      expect(fu).not.toBeNull()
      fu!.push(...pl.subarray(hs + 1))
      if (fh & 0x40) {
        out.push(Uint8Array.from(fu!))
        fu = null
      }
    } else out.push(pl)
  }
  expect(fu).toBeNull()
  return out
}

const same = (a: Uint8Array[], b: Uint8Array[]) => expect(Buffer.from(toAnnexB(a)).equals(toAnnexB(b))).toBe(true)

describe('packetize (synthetic NAL units)', () => {
  const big = (hdr: number[], n: number) => Uint8Array.from([...hdr, ...Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff)])

  it('H.264: SPS+PPS aggregated into one STAP-A, a large IDR fragmented with equal-size FU-A', () => {
    const sps = big([0x67], 20)
    const pps = big([0x68], 4)
    const idr = big([0x65], 5000)
    const pkts = packetize([sps, pps, idr], { codec: 'h264', mtu: 1000 })
    expect(pkts[0][RTP_HEADER_SIZE] & 0x1f).toBe(24)
    expect(pkts[0][RTP_HEADER_SIZE] & 0x60).toBe(0x60) // NRI = max of the aggregated
    const frags = pkts.slice(1)
    expect(frags.length).toBe(Math.ceil(4999 / (1000 - 12 - 2)))
    for (const f of frags.slice(0, -1)) expect(f.length).toBe(1000)
    expect(frags[0][RTP_HEADER_SIZE + 1] & 0xc0).toBe(0x80)
    expect(frags[frags.length - 1][RTP_HEADER_SIZE + 1] & 0xc0).toBe(0x40)
    same(depacketize(pkts, 'h264'), [sps, pps, idr])
  })

  it("H.264: aggregate 'none' sends parameter sets alone; 'all' aggregates small slices too", () => {
    const nals = [big([0x67], 10), big([0x68], 4), big([0x41, 0x80], 50), big([0x41, 0x00], 50)]
    expect(packetize(nals, { codec: 'h264', mtu: 1400, aggregate: 'none' }).length).toBe(4)
    expect(packetize(nals, { codec: 'h264', mtu: 1400, aggregate: 'parameter-sets' }).length).toBe(3)
    const all = packetize(nals, { codec: 'h264', mtu: 1400, aggregate: 'all' })
    expect(all.length).toBe(1)
    same(depacketize(all, 'h264'), nals)
  })

  it('H.265: VPS+SPS+PPS in one AP, FU fragments carry the type and layer/TID', () => {
    const vps = big([0x40, 0x01], 20)
    const sps = big([0x42, 0x01], 40)
    const pps = big([0x44, 0x01], 6)
    const idr = big([0x26, 0x01], 3000) // IDR_W_RADL (19)
    const pkts = packetize([vps, sps, pps, idr], { codec: 'h265', mtu: 500 })
    expect((pkts[0][RTP_HEADER_SIZE] >> 1) & 0x3f).toBe(48)
    const fu = pkts[1]
    expect((fu[RTP_HEADER_SIZE] >> 1) & 0x3f).toBe(49)
    expect(fu[RTP_HEADER_SIZE + 1]).toBe(0x01) // TID 1 copied
    expect(fu[RTP_HEADER_SIZE + 2] & 0x3f).toBe(19)
    for (const p of pkts) expect(p.length).toBeLessThanOrEqual(500)
    same(depacketize(pkts, 'h265'), [vps, sps, pps, idr])
  })
})

const gstWhy = missingGst(['x264enc', 'x265enc'])
describe.skipIf(skipReason(gstWhy))('packetize (x264 / x265 streams)', () => {
  let dir: string
  beforeAll(() => {
    dir = tempDir()
  })
  for (const codec of ['h264', 'h265'] as const) {
    it(`${codec}: at every MTU, packets fit and reassemble to the encoder's NAL units`, () => {
      const aus = splitAccessUnits(encodeClip({ codec, width: 320, height: 240, frames: 20, dir }), codec)
      expect(aus.length).toBe(20)
      for (const mtu of [1500, 1400, 576, 100]) {
        for (const au of aus) {
          const pkts = packetize(au, { codec, mtu })
          for (const p of pkts) expect(p.length).toBeLessThanOrEqual(mtu)
          same(depacketize(pkts, codec), au)
        }
      }
      // Annex-B splitting is lossless: joining the units again gives every NAL back.
      const nals = aus.flat()
      expect(splitNals(toAnnexB(nals)).length).toBe(nals.length)
      expect(nals.some((n) => nalType(n, codec) === (codec === 'h264' ? 5 : 19) || nalType(n, codec) === 20)).toBe(true)
    }, 60_000)
  }
})
