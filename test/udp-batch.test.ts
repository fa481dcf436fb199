import { describe, it, expect } from 'vitest'
import dgram from 'node:dgram'
import { type UdpBatch } from '../lib/index.js'
import { udpLinkFactory } from './helpers/links.js'

const link = udpLinkFactory()

function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve()
      if (Date.now() - t0 > ms) return reject(new Error('timed out waiting'))
      setTimeout(tick, 2)
    }
    tick()
  })
}

describe('UDP batch API', () => {
  it('binds an ephemeral port and reports it', () => {
    const l = link({ port: 0 })
    const a = l.address()
    expect(a.address).toBe('127.0.0.1')
    expect(a.family).toBe('IPv4')
    expect(a.port).toBeGreaterThan(0)
  })

  it('delivers every datagram, in order, with length, source and port', async () => {
    // A burst of 2000 from one sendmmsg loop outruns the default 208 KiB
    // kernel buffer; give it room so the test is about ordering, not loss.
    const rx = link({ rcvBuf: 8 << 20 })
    const tx = link()
    const got: string[] = []
    const sources = new Set<string>()
    let batches = 0
    rx.onBatch((b) => {
      batches++
      for (let i = 0; i < b.length; i++) {
        const off = b.offset(i)
        got.push(Buffer.from(b.data.buffer, b.data.byteOffset + off, b.len(i)).toString())
        sources.add(`${b.address(i)}:${b.port(i)}:${b.family(i)}`)
      }
    })
    const N = 2000
    const dgrams = Array.from({ length: N }, (_, i) => Buffer.from(`m${i}`))
    tx.sendBatch(dgrams, { port: rx.address().port, address: '127.0.0.1' })
    await until(() => got.length === N)
    expect(got).toEqual(dgrams.map((d) => d.toString()))
    expect([...sources]).toEqual([`127.0.0.1:${tx.address().port}:4`])
    // Batching: far fewer handler calls than datagrams.
    expect(batches).toBeLessThan(N)
    const s = rx.stats()
    expect(s.rxDatagrams).toBe(N)
    expect(s.rxBytes).toBe(dgrams.reduce((a, d) => a + d.length, 0))
    expect(tx.stats().txDatagrams).toBe(N)
    expect(tx.stats().txCalls).toBeLessThanOrEqual(Math.ceil(N / 64) + 2)
  })

  it('copy() keeps a datagram safe after the ring slot is reused; a released batch throws', async () => {
    // A ring of 4 slots is reused every 4 datagrams: views would be overwritten.
    const rx = link({ rxSlots: 4, maxDatagramSize: 64 })
    const tx = link()
    const kept: Buffer[] = []
    const views: Uint8Array[] = []
    let saved: UdpBatch | undefined
    rx.onBatch((b) => {
      saved = b
      for (let i = 0; i < b.length; i++) {
        kept.push(b.copy(i))
        views.push(b.view(i))
      }
    })
    for (let i = 0; i < 40; i++) {
      tx.send(Buffer.from(`datagram-${i}`), rx.address().port)
      await until(() => kept.length === i + 1)
    }
    expect(kept.map((k) => k.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `datagram-${i}`))
    // The raw views were into a ring that has been overwritten since: at least
    // one early view no longer shows its datagram, which is why copy() exists.
    const stale = views.filter((v, i) => Buffer.from(v).toString() !== `datagram-${i}`)
    expect(stale.length).toBeGreaterThan(0)
    expect(() => saved!.len(0)).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_BATCH_RELEASED' }))
  })

  it('flags truncated datagrams with their wire size', async () => {
    const rx = link({ maxDatagramSize: 64 })
    const tx = link()
    const seen: { len: number; size: number; truncated: boolean; head: string }[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++)
        seen.push({ len: b.len(i), size: b.size(i), truncated: b.truncated(i), head: Buffer.from(b.view(i).subarray(0, 4)).toString() })
    })
    tx.send(Buffer.alloc(100, 'a'), rx.address().port)
    tx.send(Buffer.alloc(64, 'b'), rx.address().port)
    tx.send(Buffer.alloc(10, 'c'), rx.address().port)
    await until(() => seen.length === 3)
    expect(seen).toEqual([
      { len: 64, size: 100, truncated: true, head: 'aaaa' },
      { len: 64, size: 64, truncated: false, head: 'bbbb' },
      { len: 10, size: 10, truncated: false, head: 'cccc' },
    ])
    expect(rx.stats().rxTruncated).toBe(1)
  })

  it('delivers zero-length datagrams', async () => {
    const rx = link()
    const tx = link()
    const lens: number[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) lens.push(b.len(i))
    })
    tx.send(Buffer.alloc(0), rx.address().port)
    tx.send(Buffer.from('x'), rx.address().port)
    await until(() => lens.length === 2)
    expect(lens).toEqual([0, 1])
  })

  it('handler removal stops delivery to that handler only', async () => {
    const rx = link()
    const tx = link()
    let a = 0
    let b = 0
    const offA = rx.onBatch((x) => (a += x.length))
    rx.onBatch((x) => (b += x.length))
    tx.send(Buffer.from('1'), rx.address().port)
    await until(() => a === 1 && b === 1)
    offA()
    tx.send(Buffer.from('2'), rx.address().port)
    await until(() => b === 2)
    expect(a).toBe(1)
  })

  it('receives from a Node dgram sender and replies to it', async () => {
    const rx = link()
    const peer = dgram.createSocket('udp4')
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()))
    const replies: string[] = []
    peer.on('message', (m) => replies.push(m.toString()))
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) rx.send(Buffer.concat([Buffer.from('re:'), b.copy(i)]), b.port(i), b.address(i))
    })
    peer.send('hello', rx.address().port, '127.0.0.1')
    await until(() => replies.length === 1)
    expect(replies).toEqual(['re:hello'])
    peer.close()
  })
})
