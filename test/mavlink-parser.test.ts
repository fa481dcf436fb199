import { describe, it, expect } from 'vitest'
import { Attitude, DIALECT, GlobalPositionInt, Heartbeat, MavlinkEncoder, MavlinkParser, Statustext, SysStatus } from '../lib/mavlink/index.js'
import type { MavlinkFrame, MessageDef, ParserStats, RejectReason } from '../lib/mavlink/index.js'
import { crcAccumulate, crcCalculate } from '../lib/mavlink/crc.js'
import { prng, randInt, randomData } from './mavlink-random.js'

const telemetry: MessageDef[] = [Heartbeat.def, Attitude.def, GlobalPositionInt.def, SysStatus.def, Statustext.def]

function frames(r: () => number, n: number, version: 1 | 2 = 2): Uint8Array[] {
  const enc = new MavlinkEncoder({ sysid: 1, compid: 1, version })
  const out: Uint8Array[] = []
  for (let k = 0; k < n; k++) {
    const def = telemetry[k % telemetry.length]
    out.push(enc.encode(def, randomData(r, def)))
  }
  return out
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

/** Pushes `bytes` in random-sized chunks; returns copies of the frames' bytes. */
function feed(parser: MavlinkParser, bytes: Uint8Array, r?: () => number, maxChunk = 64): Uint8Array[] {
  const got: Uint8Array[] = []
  let i = 0
  while (i < bytes.length) {
    const n = r ? randInt(r, 1, maxChunk) : bytes.length
    parser.push(bytes.subarray(i, i + n), (f) => got.push(f.bytes.slice()))
    i += n
  }
  return got
}

function rejected(stats: ParserStats): Partial<Record<RejectReason, number>> {
  return Object.fromEntries(Object.entries(stats.rejected).filter(([, v]) => v > 0))
}

/** Re-computes a v2 frame's CRC after the test edited it. */
function fixCrc(frame: Uint8Array, crcExtra: number): void {
  const len = frame[1]
  const crc = crcAccumulate(crcExtra, crcCalculate(frame, 1, 10 + len))
  frame[10 + len] = crc & 0xff
  frame[11 + len] = crc >> 8
}

// generous: the whole suite also runs under QEMU (scripts/qemu.mjs), many times slower
describe('MAVLink parser', { timeout: 120_000 }, () => {
  it('finds the same frames whatever the chunking (1 byte at a time to all at once)', () => {
    const r = prng(5)
    const parts = [...frames(r, 100, 2), ...frames(r, 100, 1)]
    const all = concat(parts)
    for (const maxChunk of [1, 3, 17, 300, all.length]) {
      const parser = new MavlinkParser()
      const got = feed(parser, all, r, maxChunk)
      expect(got).toEqual(parts)
      expect(parser.stats.frames).toBe(200)
      expect(parser.stats.bytesAccepted).toBe(all.length)
      expect(parser.stats.bytesDiscarded).toBe(0)
    }
  })

  function garbageRounds(seed: number, rounds: number, startBytes: number, options: ConstructorParameters<typeof MavlinkParser>[0]): void {
    const r = prng(seed)
    for (let round = 0; round < rounds; round++) {
      const good = frames(r, 200, round % 3 === 2 ? 1 : 2)
      const parts: Uint8Array[] = []
      let garbage = 0
      for (const g of good) {
        const n = randInt(r, 0, 40)
        const junk = new Uint8Array(n)
        for (let k = 0; k < n; k++) junk[k] = r() < startBytes ? (r() < 0.5 ? 0xfd : 0xfe) : randInt(r, 0, 255)
        garbage += n
        parts.push(junk, g)
      }
      const parser = new MavlinkParser(options)
      const got = feed(parser, concat(parts), r, 128)
      // a false start byte near the end may hold the last frames until end()
      parser.end((f) => got.push(f.bytes.slice()))
      expect(got).toEqual(good)
      expect(parser.stats.bytesDiscarded).toBe(garbage)
      expect(parser.stats.bytesIn).toBe(parser.stats.bytesAccepted + parser.stats.bytesDiscarded)
    }
  }

  it('random garbage between valid frames: every frame comes through, the garbage is counted, nothing throws', () => {
    garbageRounds(7, 20, 0, {})
  })

  it('adversarial garbage (a quarter of it start bytes), unknown ids dropped: every frame comes through', () => {
    // With unknown ids forwarded, such garbage can yield a bogus unknown-id
    // frame that swallows the frames behind it (measured: 3 to 7 in 1.6 MB,
    // see docs/MAVLINK.md); with 'drop' only CRC-checked frames are trusted.
    garbageRounds(17, 30, 0.25, { unknownIds: 'drop' })
  })

  it('survives pure noise', () => {
    const r = prng(8)
    const parser = new MavlinkParser()
    const noise = new Uint8Array(200_000)
    for (let k = 0; k < noise.length; k++) noise[k] = r() < 0.1 ? 0xfd : randInt(r, 0, 255)
    let n = 0
    feed(parser, noise, r, 4096).forEach(() => n++)
    parser.end(() => n++)
    const s = parser.stats
    expect(s.bytesIn).toBe(s.bytesAccepted + s.bytesDiscarded)
    expect(s.frames).toBeLessThanOrEqual(2) // a random frame that passes every check is possible, not likely
  })

  it('counts each kind of bad input under its own reason', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const ok = () => enc.encode(Attitude, { time_boot_ms: 1, roll: 0.1, pitch: 0.2, yaw: 0.3, rollspeed: 1, pitchspeed: 2, yawspeed: 3 })
    const cases: [RejectReason | 'unknown', Uint8Array[], number][] = []
    // truncated: a frame cut short, then a good one
    const cut = ok().subarray(0, 20)
    cases.push(['truncated', [cut, ok()], 1])
    // wrong checksum
    const badCrc = ok()
    badCrc[badCrc.length - 1] ^= 0x55
    cases.push(['bad_crc', [badCrc, ok()], 1])
    // oversized declared length for a known id (HEARTBEAT is 9 bytes)
    const long = enc.encode(Heartbeat, { type: 1, autopilot: 1, base_mode: 1, custom_mode: 1, system_status: 1 })
    const big = new Uint8Array(12 + 200)
    big.set(long.subarray(0, 10))
    big[1] = 200
    fixCrc(big, Heartbeat.def.crcExtra)
    cases.push(['bad_length', [big, ok()], 1])
    // an incompatibility flag nobody defined
    const flag = ok()
    flag[2] = 0x02
    fixCrc(flag, Attitude.def.crcExtra)
    cases.push(['incompat_flags', [flag, ok()], 1])
    for (const [reason, parts, count] of cases) {
      const parser = new MavlinkParser()
      const got = feed(parser, concat(parts))
      expect(got.length, reason).toBe(1)
      expect(rejected(parser.stats), reason).toEqual({ [reason]: count })
    }
  })

  it('passes unknown message ids through untouched, counted; can drop them instead', () => {
    const enc = new MavlinkEncoder({ sysid: 9, compid: 8 })
    // a message this dialect lacks: same wire bytes, id 42000, CRC_EXTRA 77
    const unknown = enc.encode(Attitude, { time_boot_ms: 7, roll: 1, pitch: 2, yaw: 3, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
    unknown[7] = 42000 & 0xff
    unknown[8] = (42000 >> 8) & 0xff
    unknown[9] = 0
    fixCrc(unknown, 77)
    const hb = enc.encode(Heartbeat, { type: 1, autopilot: 1, base_mode: 1, custom_mode: 1, system_status: 1 })
    const parser = new MavlinkParser()
    const seen: MavlinkFrame[] = []
    parser.push(concat([hb, unknown, hb]), (f) => seen.push(f.clone()))
    expect(seen.map((f) => f.msgid)).toEqual([0, 42000, 0])
    expect(seen[1].def).toBeUndefined()
    expect(seen[1].message).toBeUndefined()
    expect(seen[1].bytes).toEqual(unknown)
    expect(parser.stats.unknownId).toBe(1)
    const dropper = new MavlinkParser({ unknownIds: 'drop' })
    expect(feed(dropper, concat([hb, unknown, hb])).length).toBe(2)
    expect(dropper.stats.unknownId).toBe(1)
    expect(dropper.stats.bytesDiscarded).toBe(unknown.length)
    expect(DIALECT.messages.has(42000)).toBe(false)
  })

  it('datagram mode: a frame incomplete at the end of a datagram is truncated, not continued', () => {
    const r = prng(9)
    const [a, b] = frames(r, 2)
    const parser = new MavlinkParser({ datagram: true })
    expect(feed(parser, concat([a, b.subarray(0, 12)])).length).toBe(1)
    expect(feed(parser, b.subarray(12)).length).toBe(0)
    expect(feed(parser, b).length).toBe(1)
    expect(parser.stats.rejected.truncated).toBe(1)
    expect(parser.stats.bytesIn).toBe(parser.stats.bytesAccepted + parser.stats.bytesDiscarded)
  })

  it('datagram mode: a false start byte near the end of a datagram does not hide the frames behind it', () => {
    const [a, b] = frames(prng(13), 2)
    const parser = new MavlinkParser({ datagram: true })
    // 0xFD 0x00 (flags ok) then a length that runs past the datagram
    const got = feed(parser, concat([a, new Uint8Array([0xfd, 0xf0, 0x00]), b]))
    expect(got).toEqual([a, b])
    expect(parser.stats.rejected.truncated).toBe(1)
    expect(parser.stats.bytesDiscarded).toBe(3)
  })

  it('end(): a pending partial frame is counted as truncated', () => {
    const [a] = frames(prng(10), 1)
    const parser = new MavlinkParser()
    feed(parser, a.subarray(0, a.length - 1))
    expect(parser.stats.frames).toBe(0)
    parser.end()
    expect(parser.stats.rejected.truncated).toBe(1)
    expect(parser.stats.bytesDiscarded).toBe(a.length - 1)
  })

  it('a throwing callback loses no frame and repeats none', () => {
    const parts = frames(prng(11), 4)
    const parser = new MavlinkParser()
    const seen: number[] = []
    let calls = 0
    const cb = (f: MavlinkFrame) => {
      calls++
      if (calls === 2) throw new Error('boom')
      seen.push(f.seq)
    }
    expect(() => parser.push(concat(parts), cb)).toThrow('boom')
    parser.push(new Uint8Array(0), cb)
    expect(seen).toEqual([0, 2, 3])
    expect(() => parser.push(new Uint8Array(1), () => parser.push(new Uint8Array(1), () => {}))).not.toThrow()
  })

  it('rejects re-entrant push from its own callback', () => {
    const [a] = frames(prng(12), 1)
    const parser = new MavlinkParser()
    expect(() => parser.push(a, () => parser.push(a, () => {}))).toThrow(/inside its own callback/)
  })

  it('onReject sees the refused bytes', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const bad = enc.encode(Heartbeat, { type: 1, autopilot: 1, base_mode: 1, custom_mode: 1, system_status: 1 })
    bad[12] ^= 1
    const seen: [RejectReason, number][] = []
    new MavlinkParser({ onReject: (why, bytes) => seen.push([why, bytes.length]) }).push(bad, () => {})
    expect(seen[0]).toEqual(['bad_crc', bad.length])
  })
})
