// The native MAVLink parser (native/mavlink/parse.cc) against the JavaScript
// reference (lib/mavlink/parser.ts): the same frames and the same per-reason
// counters on random streams of valid, signed, v1, unknown-id, truncated and
// corrupted frames with garbage between them, through real UDP and TCP links.
import { describe, it, expect, afterEach, vi } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { createTcpLink, createUdpLink, type StreamLink, type UdpLink } from '../lib/index.js'
import {
  DIALECT,
  Heartbeat,
  MavlinkEncoder,
  MavlinkLink,
  MavlinkParser,
  MavlinkSigning,
  RadioStatus,
  SigningClock,
  mavlinkFraming,
  REJECT_REASONS,
} from '../lib/mavlink/index.js'
import type { MavlinkFrame, MavlinkLinkStats, ParserStats } from '../lib/mavlink/index.js'
import { HEADER_V2 } from '../lib/mavlink/frame.js'
import { dialectTables, nativeParser, nativeSha256, PARSE_DONE_SHIFT, PARSE_OUT_WORDS, REC_SIG_CHECKED, REC_SIG_GOOD } from '../lib/mavlink/native.js'
import { KEY, StreamGen, concat, hex, telemetry, type Kind } from './mavlink-stream-gen.js'
import { randInt, randomData } from './mavlink-random.js'
import { emulator } from './helpers/emulator.js'

/** Smaller runs under the (slow) emulator. */
const scale = (n: number): number => (emulator ? Math.ceil(n / 4) : n)

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const c of cleanup.splice(0)) c()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

function comparable(s: ParserStats | MavlinkLinkStats) {
  const rejected: Record<string, number> = {}
  for (const r of ['bad_crc', 'truncated', 'bad_length', 'incompat_flags'] as const) rejected[r] = s.rejected[r]
  return { bytesIn: s.bytesIn, bytesAccepted: s.bytesAccepted, bytesDiscarded: s.bytesDiscarded, frames: s.frames, unknownId: s.unknownId, rejected }
}

async function tcpPair(link: (port: number) => StreamLink): Promise<{ peer: Socket; link: StreamLink }> {
  let peer: Socket | undefined
  const server: Server = createServer((s) => {
    peer = s
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
  const port = (server.address() as { port: number }).port
  const l = link(port)
  await until(() => peer !== undefined, 'the TCP connection')
  cleanup.push(() => {
    peer?.destroy()
    server.close()
  })
  return { peer: peer!, link: l }
}

const ALL: Kind[] = ['valid', 'valid', 'valid', 'signed', 'v1', 'unknown', 'garbage', 'bad_crc', 'cut', 'bad_length', 'incompat']

describe('native MAVLink parser', { timeout: 120_000 }, () => {
  it('dialect tables: CRC_EXTRA, lengths and target field offsets from the generated definitions', () => {
    const t = dialectTables(DIALECT)
    const at = (id: number) => {
      const i = t.ids.indexOf(id)
      return [t.lens[i * 3], t.lens[i * 3 + 1], t.lens[i * 3 + 2], t.targets[i * 2], t.targets[i * 2 + 1]]
    }
    expect(t.ids.length).toBe(DIALECT.messages.size)
    expect(at(0)).toEqual([50, 9, 9, -1, -1]) // HEARTBEAT
    expect(at(76)).toEqual([152, 33, 33, 30, 31]) // COMMAND_LONG: targets after the 7 floats and the command
    expect(at(77)).toEqual([143, 3, 10, 8, 9]) // COMMAND_ACK: targets are extension fields
  })

  for (const unknownIds of ['forward', 'drop'] as const) {
    it(`UDP datagrams (${unknownIds} unknown ids): the same frames and counters as the JS parser`, async () => {
      const g = new StreamGen(unknownIds === 'forward' ? 11 : 12)
      const n = scale(600)
      const datagrams: Uint8Array[] = []
      for (let k = 0; k < n; k++) {
        const parts: Uint8Array[] = []
        const m = Math.floor(g.r() * 5)
        for (let j = 0; j < m; j++) parts.push(g.element(ALL).bytes)
        if (parts.length === 0) parts.push(g.valid())
        datagrams.push(concat(parts).subarray(0, 65000))
      }
      const js = new MavlinkParser({ datagram: true, unknownIds })
      const want: string[] = []
      for (const d of datagrams) js.push(d, (f) => want.push(hex(f.bytes)))
      for (const r of ['truncated', 'bad_crc', 'bad_length', 'incompat_flags'] as const) expect(js.stats.rejected[r], r).toBeGreaterThan(0)
      expect(js.stats.frames).toBeGreaterThan(n / 2)
      expect(js.stats.unknownId).toBeGreaterThan(0)

      const rx = createUdpLink({ port: 0 })
      const tx = createUdpLink({ port: 0 })
      const mav = new MavlinkLink(rx, { unknownIds })
      cleanup.push(() => mav.close(), () => tx.close())
      const got: string[] = []
      mav.onFrame((f) => got.push(hex(f.bytes)))
      const port = rx.address().port
      let sent = 0
      // in groups, waiting for each to arrive: loopback UDP loses nothing when the receive buffer is not overrun
      for (let k = 0; k < datagrams.length; k += 40) {
        for (const d of datagrams.slice(k, k + 40)) {
          tx.send(d, port, '127.0.0.1')
          sent += d.length
        }
        await until(() => mav.stats.bytesIn >= sent, `${sent} bytes`)
      }
      expect(got.length).toBe(want.length)
      expect(got).toEqual(want)
      expect(comparable(mav.stats)).toEqual(comparable(js.stats))
      if (unknownIds === 'drop') expect(mav.stats.rejected.unknown_dropped).toBe(js.stats.unknownId)
    })
  }

  it('UDP: a 64 KiB datagram packed with minimal frames comes through whole, in one batch call', async () => {
    const rx = createUdpLink({ port: 0, maxDatagramSize: 65535 })
    const tx = createUdpLink({ port: 0 })
    const mav = new MavlinkLink(rx)
    cleanup.push(() => mav.close(), () => tx.close())
    // HEARTBEAT with an all-zero payload: 1 payload byte on the wire, 13-byte frames
    const one = new MavlinkParser()
    const parts: Uint8Array[] = []
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    for (let k = 0; k < 5000; k++) parts.push(enc.encode(Heartbeat, { type: 0, autopilot: 0, base_mode: 0, custom_mode: 0, system_status: 0, mavlink_version: 0 }))
    const dgram = concat(parts)
    expect(dgram.length).toBe(65000)
    let want = 0
    one.push(dgram, () => want++)
    expect(want).toBe(5000)
    let got = 0
    mav.onFrame(() => got++)
    tx.send(dgram, rx.address().port, '127.0.0.1')
    await until(() => mav.stats.bytesIn >= dgram.length, 'the datagram')
    expect(got).toBe(5000)
    expect(mav.stats.bytesAccepted).toBe(65000)
  })


  for (const unknownIds of ['forward', 'drop'] as const) {
    it(`TCP stream (${unknownIds} unknown ids), written in random pieces: the same frames and counters as the JS parser`, async () => {
      const g = new StreamGen(unknownIds === 'forward' ? 21 : 22)
      const n = scale(3000)
      const parts: Uint8Array[] = []
      for (let k = 0; k < n; k++) {
        const e = g.element(ALL)
        parts.push(e.bytes)
        // A forwarded unknown-id frame is delimited by what follows it, or by
        // the end of the data read so far (parser.ts): a valid frame behind it
        // makes the result independent of where the kernel splits the reads.
        if (e.kind === 'unknown' && unknownIds === 'forward') parts.push(g.valid())
      }
      parts.push(g.valid())
      const all = concat(parts)
      const js = new MavlinkParser({ unknownIds })
      const want: string[] = []
      js.push(all, (f) => want.push(hex(f.bytes)))
      for (const r of ['truncated', 'bad_crc', 'bad_length', 'incompat_flags'] as const) expect(js.stats.rejected[r], r).toBeGreaterThan(0)
      expect(js.stats.frames).toBeGreaterThan(n / 3)
      expect(js.stats.unknownId).toBeGreaterThan(0)

      const { peer, link } = await tcpPair((port) => createTcpLink({ port, host: '127.0.0.1', framing: mavlinkFraming({ unknownIds }) }))
      const mav = new MavlinkLink(link)
      cleanup.push(() => mav.close())
      const got: string[] = []
      const times: bigint[] = []
      mav.onFrame((f, t) => {
        got.push(hex(f.bytes))
        times.push(t)
      })
      for (let i = 0; i < all.length; ) {
        const k = 1 + Math.floor(g.r() * 700)
        peer.write(all.subarray(i, i + k))
        i += k
        if (g.r() < 0.1) await sleep(1)
      }
      await until(() => mav.stats.bytesIn >= all.length && got.length >= want.length, 'the whole stream')
      expect(got).toEqual(want)
      expect(comparable(mav.stats)).toEqual(comparable(js.stats))
      const now = BigInt(Date.now()) * 1_000_000n
      for (const t of times) expect(Number((now - t) / 1_000_000n)).toBeLessThan(600_000)
    })
  }

  it('every reason a native rejection can have maps to a name the JS side reports', () => {
    for (const r of ['bad_crc', 'truncated', 'bad_length', 'incompat_flags']) expect(REJECT_REASONS).toContain(r)
  })
})

const KEY_B = new Uint8Array(32).map((_, i) => 200 - i)

/**
 * Signed traffic of every verdict: good signatures from three senders, a
 * wrong key, a flipped signature bit, replays, unsigned frames (refused) and
 * RADIO_STATUS (allowed unsigned), new streams an hour behind (stale) and a
 * week ahead (future), plus the parser-level bad input of StreamGen.
 */
class SignedGen {
  readonly g: StreamGen
  private readonly good: MavlinkEncoder[]
  private readonly wrong: MavlinkEncoder
  private readonly stale: MavlinkEncoder
  private readonly future: MavlinkEncoder
  private readonly plain = new MavlinkEncoder({ sysid: 5, compid: 1 })
  private readonly sent: Uint8Array[] = []
  constructor(seed: number) {
    this.g = new StreamGen(seed)
    // the good senders run 30 s ahead: their frames stay inside the one-minute new-stream window however slow the test machine is
    const ahead = () => new SigningClock({ clock: () => Date.now() + 30_000 })
    this.good = [2, 3, 4].map((sysid) => new MavlinkEncoder({ sysid, compid: 1, signing: new MavlinkSigning({ key: KEY, linkId: sysid, clock: ahead() }) }))
    this.wrong = new MavlinkEncoder({ sysid: 6, compid: 1, signing: new MavlinkSigning({ key: KEY_B, clock: ahead() }) })
    this.stale = new MavlinkEncoder({ sysid: 7, compid: 1, signing: new MavlinkSigning({ key: KEY, clock: new SigningClock({ clock: () => Date.now() - 3_600_000 }) }) })
    this.future = new MavlinkEncoder({ sysid: 8, compid: 1, signing: new MavlinkSigning({ key: KEY, clock: new SigningClock({ clock: () => Date.now() + 7 * 86_400_000 }) }) })
  }
  private msg(enc: MavlinkEncoder): Uint8Array {
    const def = telemetry[randInt(this.g.r, 0, telemetry.length - 1)]
    return enc.encode(def, randomData(this.g.r, def))
  }
  next(): Uint8Array {
    const r = this.g.r()
    if (r < 0.45) {
      const f = this.msg(this.good[randInt(this.g.r, 0, 2)])
      this.sent.push(f)
      return f
    }
    if (r < 0.5) return this.msg(this.wrong)
    if (r < 0.55) {
      const f = this.msg(this.good[0])
      f[f.length - 1 - randInt(this.g.r, 0, 5)] ^= 1 << randInt(this.g.r, 0, 7) // the CRC does not cover the signature
      return f
    }
    if (r < 0.6 && this.sent.length > 0) return this.sent[randInt(this.g.r, 0, this.sent.length - 1)] // replay
    if (r < 0.65) return this.msg(this.plain)
    if (r < 0.7) return this.plain.encode(RadioStatus, randomData(this.g.r, RadioStatus.def))
    if (r < 0.73) return this.msg(this.stale)
    if (r < 0.76) return this.msg(this.future)
    return this.g.element(['signed', 'valid', 'v1', 'garbage', 'bad_crc', 'cut', 'bad_length', 'incompat']).bytes
  }
}

const SIGNING_REASONS = ['bad_signature', 'replay', 'stale_timestamp', 'future_timestamp', 'unsigned'] as const

function signingStats(s: ParserStats | MavlinkLinkStats) {
  const rejected: Record<string, number> = {}
  for (const r of [...SIGNING_REASONS, 'bad_crc', 'truncated', 'bad_length', 'incompat_flags'] as const) rejected[r] = s.rejected[r]
  return { frames: s.frames, bytesIn: s.bytesIn, bytesAccepted: s.bytesAccepted, bytesDiscarded: s.bytesDiscarded, unsignedAllowed: s.unsignedAllowed, rejected }
}

const frameKey = (f: MavlinkFrame) => `${f.verified ? 'V' : '-'}${hex(f.bytes)}`

describe('native MAVLink signature check', { timeout: 120_000 }, () => {
  it('SHA-256 equals node:crypto on random inputs: the implementation in use, the portable one, and the CPU-instruction one (SHA-NI, ARMv8 SHA2) where there is one', () => {
    const hasHw = nativeSha256(new Uint8Array(0), 2) !== undefined
    if (!hasHw) console.log('sha256: no SHA-256 CPU instructions here (or not in this build): only the portable block function is exercised')
    const lengths = [...Array.from({ length: 300 }, (_, i) => i), 1000, 4095, 4096, 65537, ...Array.from({ length: 40 }, () => Math.floor(Math.random() * 3000))]
    for (const n of lengths) {
      const data = new Uint8Array(randomBytes(n))
      const want = createHash('sha256').update(data).digest('hex')
      expect(hex(nativeSha256(data, 0)!), `auto, ${n} bytes`).toBe(want)
      expect(hex(nativeSha256(data, 1)!), `portable, ${n} bytes`).toBe(want)
      if (hasHw) expect(hex(nativeSha256(data, 2)!), `CPU instructions, ${n} bytes`).toBe(want)
    }
    // a view into a larger buffer hashes only its own bytes
    const big = new Uint8Array(randomBytes(200))
    expect(hex(nativeSha256(big.subarray(10, 90))!)).toBe(createHash('sha256').update(big.subarray(10, 90)).digest('hex'))
  })

  it('parseBatch: the native verdict equals MavlinkSigning.signatureMatches frame for frame; a new key, and no key', () => {
    const sg = new SignedGen(31)
    const list: Uint8Array[] = []
    for (let k = 0; k < scale(3000); k++) list.push(sg.next())
    const all = concat(list)
    const spans = new Uint32Array(list.length * 2)
    for (let i = 0, off = 0; i < list.length; off += list[i].length, i++) {
      spans[2 * i] = off
      spans[2 * i + 1] = list[i].length
    }
    const parser = nativeParser(DIALECT, true, true)
    const out = new Uint32Array(PARSE_OUT_WORDS * 8192)
    // (flags, JS verdict) of each signed frame, for the key the parser holds
    const verdicts = (check: MavlinkSigning | null) => {
      const got: string[] = []
      const want: string[] = []
      for (let first = 0; first < list.length; ) {
        const r = parser.parseBatch(all, spans, first, list.length - first, out)
        const nf = r % PARSE_DONE_SHIFT
        first += (r - nf) / PARSE_DONE_SHIFT
        for (let k = 0; k < nf; k++) {
          const w = k * PARSE_OUT_WORDS
          const flags = out[w + 5] >>> 24
          if ((flags & 2) === 0) {
            expect(flags & (REC_SIG_CHECKED | REC_SIG_GOOD)).toBe(0) // unsigned: never marked
            continue
          }
          const off = out[w + 1]
          got.push(`${off}:${flags & REC_SIG_CHECKED ? ((flags & REC_SIG_GOOD) !== 0 ? 'good' : 'bad') : 'unchecked'}`)
          const sigOff = off + HEADER_V2 + all[off + 1] + 2
          want.push(`${off}:${check === null ? 'unchecked' : check.signatureMatches(all, off, sigOff) ? 'good' : 'bad'}`)
        }
      }
      return { got, want }
    }
    // no key set yet: signed frames reported, not checked
    let v = verdicts(null)
    expect(v.got).toEqual(v.want)
    parser.setSigningKey(KEY)
    v = verdicts(new MavlinkSigning({ key: KEY }))
    expect(v.got).toEqual(v.want)
    const good = v.got.filter((x) => x.endsWith('good')).length
    const bad = v.got.filter((x) => x.endsWith('bad')).length
    expect(good).toBeGreaterThan(scale(3000) / 4)
    expect(bad).toBeGreaterThan(scale(3000) / 40)
    // a new key: what was good is now bad, the wrong-key sender's frames are good
    parser.setSigningKey(KEY_B)
    v = verdicts(new MavlinkSigning({ key: KEY_B }))
    expect(v.got).toEqual(v.want)
    expect(v.got.filter((x) => x.endsWith('good')).length).toBeLessThan(bad)
    parser.setSigningKey(null)
    v = verdicts(null)
    expect(v.got).toEqual(v.want)
    expect(() => parser.setSigningKey(new Uint8Array(31))).toThrow(TypeError)
  })

  it('UDP, signed random datagrams: the same frames, verified flags and per-reason counters as the JS parser, signatures checked natively', async () => {
    const sg = new SignedGen(32)
    const datagrams: Uint8Array[] = []
    for (let k = 0; k < scale(800); k++) {
      const parts: Uint8Array[] = []
      const m = 1 + Math.floor(sg.g.r() * 4)
      for (let j = 0; j < m; j++) parts.push(sg.next())
      datagrams.push(concat(parts))
    }
    const js = new MavlinkParser({ datagram: true, signing: new MavlinkSigning({ key: KEY }) })
    const want: string[] = []
    for (const d of datagrams) js.push(d, (f) => want.push(frameKey(f)))
    for (const r of SIGNING_REASONS) expect(js.stats.rejected[r], r).toBeGreaterThan(0)
    expect(js.stats.unsignedAllowed).toBeGreaterThan(0)

    const signing = new MavlinkSigning({ key: KEY })
    const verify = vi.spyOn(signing, 'verify')
    const rx = createUdpLink({ port: 0 })
    const tx = createUdpLink({ port: 0 })
    const mav = new MavlinkLink(rx, { signing })
    cleanup.push(() => mav.close(), () => tx.close())
    const got: string[] = []
    mav.onFrame((f) => got.push(frameKey(f)))
    const port = rx.address().port
    let sent = 0
    for (let k = 0; k < datagrams.length; k += 40) {
      for (const d of datagrams.slice(k, k + 40)) {
        tx.send(d, port, '127.0.0.1')
        sent += d.length
      }
      await until(() => mav.stats.bytesIn >= sent, `${sent} bytes`)
    }
    expect(got).toEqual(want)
    expect(signingStats(mav.stats)).toEqual(signingStats(js.stats))
    expect(mav.stats.signed).toBe(js.stats.signed)
    // every signature was checked natively: JavaScript never hashed one
    expect(verify).not.toHaveBeenCalled()
  })

  it('TCP, signed random stream in random pieces: the same frames, verified flags and counters as the JS parser, signatures checked natively', async () => {
    const sg = new SignedGen(33)
    const parts: Uint8Array[] = []
    for (let k = 0; k < scale(3000); k++) parts.push(sg.next())
    parts.push(sg.g.valid())
    const all = concat(parts)
    const js = new MavlinkParser({ signing: new MavlinkSigning({ key: KEY }) })
    const want: string[] = []
    js.push(all, (f) => want.push(frameKey(f)))
    for (const r of SIGNING_REASONS) expect(js.stats.rejected[r], r).toBeGreaterThan(0)

    const signing = new MavlinkSigning({ key: KEY })
    const verify = vi.spyOn(signing, 'verify')
    const { peer, link } = await tcpPair((port) => createTcpLink({ port, host: '127.0.0.1', framing: mavlinkFraming() }))
    const mav = new MavlinkLink(link, { signing })
    cleanup.push(() => mav.close())
    const got: string[] = []
    mav.onFrame((f) => got.push(frameKey(f)))
    for (let i = 0; i < all.length; ) {
      const k = 1 + Math.floor(sg.g.r() * 700)
      peer.write(all.subarray(i, i + k))
      i += k
      if (sg.g.r() < 0.1) await sleep(1)
    }
    await until(() => mav.stats.bytesIn >= all.length && got.length >= want.length, 'the whole stream')
    expect(got).toEqual(want)
    expect(signingStats(mav.stats)).toEqual(signingStats(js.stats))
    expect(verify).not.toHaveBeenCalled()
  })
})
