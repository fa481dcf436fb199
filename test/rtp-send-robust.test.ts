// Peer and caller input that is garbage must not throw out of the parsers:
// random and mutated RTCP into parseRtcp (never throws, stops with a reason),
// random bytes into the Annex-B splitter and the packetiser (never throws,
// every packet within the MTU). Seeded, so a failure reproduces.
import { describe, it, expect } from 'vitest'
import { seededRandom } from '../lib/testing/impair.js'
import { buildFir, buildNack, buildPli, buildReceiverReport, buildSdesCname, buildSenderReport, buildBye, parseRtcp } from '../lib/video/rtcp.js'
import { splitAccessUnits, splitNals } from '../lib/video/annexb.js'
import { packetize } from '../lib/video/packetize.js'

const rnd = seededRandom(20261124)
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)))

describe('robustness against garbage', () => {
  it('parseRtcp: valid compounds round-trip; random and mutated input never throws', () => {
    const valid = Buffer.concat([
      buildSenderReport({ ssrc: 1, ntpSec: 2, ntpFrac: 3, rtpTimestamp: 4, packetCount: 5, octetCount: 6, reports: [{ ssrc: 9, fractionLost: 0.25, cumulativeLost: -3, extendedHighestSeq: 70000, jitter: 12, lastSr: 77, delaySinceLastSr: 88 }] }),
      buildReceiverReport(7),
      buildSdesCname(1, 'camera@drone'),
      buildPli(1, 2),
      buildFir(1, 2, 3),
      buildNack(1, 2, [100, 101, 105, 300]),
      buildBye(1),
    ])
    const ok = parseRtcp(valid)
    expect(ok.error).toBeUndefined()
    expect(ok.packets.map((p) => p.type)).toEqual(['sr', 'rr', 'sdes', 'pli', 'fir', 'nack', 'bye'])
    expect(ok.packets[0]).toMatchObject({ reports: [{ ssrc: 9, fractionLost: 0.25, cumulativeLost: -3, extendedHighestSeq: 70000 }] })
    expect(ok.packets[2]).toEqual({ type: 'sdes', chunks: [{ ssrc: 1, cname: 'camera@drone' }] })
    expect(ok.packets[5]).toMatchObject({ lost: [100, 101, 105, 300] })
    const reasons = new Map<string, number>()
    for (let i = 0; i < 20000; i++) {
      let buf: Buffer
      if (i % 2 === 0) buf = bytes(Math.floor(rnd() * 80))
      else {
        buf = Buffer.from(valid.subarray(0, Math.floor(rnd() * valid.length) + 1))
        for (let k = 0; k < 3; k++) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256)
      }
      const r = parseRtcp(buf)
      if (r.error) reasons.set(r.error, (reasons.get(r.error) ?? 0) + 1)
    }
    // Each rejection kind was exercised.
    for (const k of ['short', 'version', 'length']) expect(reasons.get(k) ?? 0).toBeGreaterThan(0)
  })

  it('Annex-B splitting and packetisation of random bytes never throw and respect the MTU', () => {
    for (let i = 0; i < 300; i++) {
      const buf = bytes(Math.floor(rnd() * 6000))
      // Sprinkle start codes.
      for (let k = 0; k < 5; k++) {
        const at = Math.floor(rnd() * Math.max(1, buf.length - 4))
        buf.set([0, 0, 1], at)
      }
      for (const codec of ['h264', 'h265'] as const) {
        const aus = splitAccessUnits(buf, codec)
        const nals = splitNals(buf)
        expect(aus.flat().length).toBeLessThanOrEqual(nals.length)
        for (const mtu of [100, 1400]) for (const p of packetize(nals, { codec, mtu, aggregate: 'all' })) expect(p.length).toBeLessThanOrEqual(mtu)
      }
    }
  })
})
