// The impairment relay on real loopback UDP: seeded determinism, rates within
// binomial tolerance, counters that add up with what the far end received,
// delay as a lower bound without reordering, the reverse path, and the CLI.
import { describe, it, expect, afterEach } from 'vitest'
import { createUdpLink, type UdpLink } from '../lib/links/udp/index.js'
import { createImpairRelay, main, seededRandom, type ImpairRelay } from '../lib/testing/impair.js'
import { until } from './helpers/rtp-send.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})

function sink(): { link: UdpLink; got: number[]; at: bigint[] } {
  const link = createUdpLink({ rcvBuf: 8 << 20 })
  const got: number[] = []
  const at: bigint[] = []
  link.onBatch((b) => {
    for (let i = 0; i < b.length; i++) {
      const v = b.view(i)
      got.push(new DataView(v.buffer, v.byteOffset, v.byteLength).getUint32(0))
      at.push(process.hrtime.bigint())
    }
  })
  closers.push(() => link.close())
  return { link, got, at }
}

/** Sends datagrams 0..n-1 (index in the first 4 bytes, send time after) in bursts. */
async function feed(port: number, n: number, burst = 64): Promise<void> {
  const src = createUdpLink({ receive: false })
  closers.push(() => src.close())
  for (let i = 0; i < n; i += burst) {
    const dgs: Buffer[] = []
    for (let k = i; k < Math.min(n, i + burst); k++) {
      const b = Buffer.alloc(200)
      b.writeUInt32BE(k, 0)
      b.writeBigUInt64BE(process.hrtime.bigint(), 4)
      dgs.push(b)
    }
    src.sendBatch(dgs, { port, address: '127.0.0.1' })
    await new Promise((r) => setTimeout(r, 2))
  }
}

async function run(seed: number, n: number, o: { loss?: number; duplicate?: number; reorder?: number }): Promise<{ relay: ImpairRelay; got: number[] }> {
  const s = sink()
  const relay = createImpairRelay({ forward: { host: '127.0.0.1', port: s.link.address().port }, seed, reorderDepth: 3, reorderTimeoutMs: 300, ...o })
  closers.push(() => new Promise<void>((r) => relay.close(r)))
  await feed(relay.address().port, n)
  await until(() => relay.counters().received === n && relay.counters().pending === 0 && s.got.length === relay.counters().forwarded, 20_000)
  return { relay, got: s.got }
}

/** Distinct indices that arrived after a higher one (overtaken). */
function late(a: number[]): number {
  const out = new Set<number>()
  let max = -1
  for (const v of a) {
    if (v < max) out.add(v)
    max = Math.max(max, v)
  }
  return out.size
}

describe('impairment relay', () => {
  it('mulberry32 PRNG: same seed same sequence, uniform enough', () => {
    const a = seededRandom(42)
    const b = seededRandom(42)
    const xs = Array.from({ length: 10000 }, () => a())
    expect(Array.from({ length: 10000 }, () => b())).toEqual(xs)
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length
    expect(mean).toBeGreaterThan(0.48)
    expect(mean).toBeLessThan(0.52)
  })

  it('loss, duplication and reordering: rates within tolerance, counters add up with what arrived, same seed → same output', async () => {
    const n = 5000
    const opts = { loss: 0.05, duplicate: 0.03, reorder: 0.05 }
    const a = await run(7, n, opts)
    const c = a.relay.counters()
    expect(c.received).toBe(n)
    expect(c.pending).toBe(0)
    expect(c.forwarded).toBe(c.received - c.dropped + c.duplicated)
    expect(a.got.length).toBe(c.forwarded)
    // Binomial tolerances (±~4σ).
    expect(c.dropped / n).toBeGreaterThan(0.035)
    expect(c.dropped / n).toBeLessThan(0.065)
    expect(c.duplicated / n).toBeGreaterThan(0.018)
    expect(c.duplicated / n).toBeLessThan(0.042)
    expect(c.reordered / n).toBeGreaterThan(0.033)
    expect(c.reordered / n).toBeLessThan(0.065)
    // What arrived: every surviving index, duplicates exactly as counted, held ones overtaken.
    expect(new Set(a.got).size).toBe(n - c.dropped)
    expect(a.got.length - new Set(a.got).size).toBe(c.duplicated)
    expect(late(a.got)).toBeGreaterThanOrEqual(c.reordered - c.reorderTimeouts)
    expect(late(a.got)).toBeLessThanOrEqual(c.reordered)

    const b = await run(7, n, opts)
    expect(b.got).toEqual(a.got)
    expect(b.relay.counters()).toEqual(c)
    const other = await run(8, n, opts)
    expect(other.got).not.toEqual(a.got)
  }, 60_000)

  it.skipIf(skipUnderEmulator('speed'))('delay and jitter: every datagram at least delayMs late, order kept', async () => {
    const s = sink()
    const relay = createImpairRelay({ forward: { host: '127.0.0.1', port: s.link.address().port }, delayMs: 80, jitterMs: 20, seed: 3 })
    closers.push(() => new Promise<void>((r) => relay.close(r)))
    const sent = new Map<number, bigint>()
    const src = createUdpLink({ receive: false })
    closers.push(() => src.close())
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(16)
      b.writeUInt32BE(i, 0)
      sent.set(i, process.hrtime.bigint())
      src.send(b, relay.address().port, '127.0.0.1')
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5))
    }
    await until(() => s.got.length === 200, 20_000)
    expect(s.got).toEqual(Array.from({ length: 200 }, (_, i) => i))
    for (let i = 0; i < 200; i++) expect(Number(s.at[i] - sent.get(s.got[i])!) / 1e6).toBeGreaterThanOrEqual(79)
    expect(relay.counters().delayed).toBe(200)
  })

  it('relays replies from the destination back to the source, and the CLI entry point runs a relay', async () => {
    const dst = createUdpLink()
    closers.push(() => dst.close())
    dst.onBatch((b) => {
      for (let i = 0; i < b.length; i++) dst.send(Buffer.from('ack'), b.port(i), b.address(i))
    })
    const log: string[] = []
    const origLog = console.log
    console.log = (s: string) => log.push(s)
    let relay: ImpairRelay
    try {
      relay = main(['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${dst.address().port}`, '--seed', '5'])
    } finally {
      console.log = origLog
    }
    closers.push(() => new Promise<void>((r) => relay.close(r)))
    expect(JSON.parse(log[0]).listening).toBe(`127.0.0.1:${relay.address().port}`)
    const src = createUdpLink()
    closers.push(() => src.close())
    const replies: string[] = []
    src.on('message', (d: Buffer) => replies.push(d.toString()))
    src.send(Buffer.from('hi'), relay.address().port, '127.0.0.1')
    expect(await until(() => replies.length === 1, 5000)).toBe(true)
    expect(replies).toEqual(['ack'])
    expect(relay.counters()).toMatchObject({ received: 1, forwarded: 1, reverse: 1 })
  })
})
