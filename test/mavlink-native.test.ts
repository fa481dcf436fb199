// The native MAVLink parser (native/mavlink/parse.cc) against the JavaScript
// reference (lib/mavlink/parser.ts): the same frames and the same per-reason
// counters on random streams of valid, signed, v1, unknown-id, truncated and
// corrupted frames with garbage between them, through real UDP and TCP links.
import { describe, it, expect, afterEach } from 'vitest'
import { createServer, type Server, type Socket } from 'node:net'
import { createTcpLink, createUdpLink, type StreamLink, type UdpLink } from '../lib/index.js'
import { DIALECT, Heartbeat, MavlinkEncoder, MavlinkLink, MavlinkParser, mavlinkFraming, REJECT_REASONS } from '../lib/mavlink/index.js'
import type { MavlinkLinkStats, ParserStats } from '../lib/mavlink/index.js'
import { dialectTables } from '../lib/mavlink/native.js'
import { StreamGen, concat, hex, type Kind } from './mavlink-stream-gen.js'
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
