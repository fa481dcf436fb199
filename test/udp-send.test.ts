import { describe, it, expect } from 'vitest'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type UdpLink } from '../lib/index.js'
import { udpLinkFactory } from './helpers/links.js'

const link = udpLinkFactory()
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))
function collect(l: UdpLink): string[] {
  const out: string[] = []
  l.onBatch((b) => {
    for (let i = 0; i < b.length; i++) out.push(b.copy(i).toString())
  })
  return out
}

function canShapeInNetns(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for a private network namespace'
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && tc qdisc add dev lo root tbf rate 8mbit burst 4k latency 1s'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return `cannot shape loopback in a namespace (unshare/ip/tc): ${r.stderr || r.error?.message}`
  return null
}
const shapeSkip = canShapeInNetns()
if (shapeSkip) console.warn(`skipping back-pressure test: ${shapeSkip}`)

describe('UDP send', () => {
  it('a datagram the kernel refuses mid-batch is reported with its index; the others all go, in order', async () => {
    // libuv #3129 / #5245 bug class: sendmmsg stops at the failing message and
    // returns the count before it; a sender that takes that count as "done"
    // skips datagrams silently.
    const rx = link()
    const tx = link()
    const got = collect(rx)
    const list = ['a', 'b', Buffer.alloc(70_000), 'd', 'e', Buffer.alloc(70_000), 'g'].map((x) => (typeof x === 'string' ? Buffer.from(x) : x))
    const err = await new Promise<NodeJS.ErrnoException & { index?: number }>((resolve) => tx.sendBatch(list, { port: rx.address().port }, (e) => resolve(e!)))
    expect(err).toMatchObject({ code: 'EMSGSIZE', syscall: 'sendmmsg', index: 2, address: '127.0.0.1', port: rx.address().port })
    await wait(50)
    expect(got).toEqual(['a', 'b', 'd', 'e', 'g'])
    expect(tx.stats()).toMatchObject({ txDatagrams: 5, txErrors: 2 })
  })

  it('without a callback, a refused datagram is an error event and sending goes on', async () => {
    const rx = link()
    const tx = link()
    const got = collect(rx)
    const errors: NodeJS.ErrnoException[] = []
    tx.on('error', (e) => errors.push(e))
    tx.send(Buffer.alloc(70_000), rx.address().port)
    tx.send(Buffer.from('after'), rx.address().port)
    await wait(50)
    expect(errors.map((e) => e.code)).toEqual(['EMSGSIZE'])
    expect(got).toEqual(['after'])
  })

  it.skipIf(shapeSkip !== null)('EAGAIN part-way through a batch queues the rest; all arrive in order after drain', () => {
    const child = fileURLToPath(new URL('./children/backpressure.mjs', import.meta.url))
    const r = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && tc qdisc add dev lo root tbf rate 8mbit burst 4k latency 1s && exec "${process.execPath}" "${child}" 300`], { encoding: 'utf8', timeout: 20_000 })
    expect(r.status, r.stderr).toBe(0)
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!)
    expect(res.sync).toBe(false) // write() semantics: false when queued
    expect(res.queuedAfterCall).toBeGreaterThan(0)
    expect(res.eagain).toBeGreaterThan(0)
    expect(res.drains).toBeGreaterThanOrEqual(1)
    expect(res.received).toBe(300)
    expect(res.inOrder).toBe(true)
    expect(res.txDatagrams).toBe(300)
    expect(res.txQueued).toBe(0)
  })

  it('UDP GSO sends a run of equal-size datagrams as one super-packet; the receiver sees each datagram', async () => {
    const rx = link({ rcvBuf: 4 << 20 })
    const tx = link()
    const got = collect(rx)
    const list = Array.from({ length: 130 }, (_, i) => Buffer.from(String(i).padStart(100, '0')))
    list.push(Buffer.from('short-tail'))
    tx.sendBatch(list, { port: rx.address().port, gso: true })
    await wait(100)
    expect(got).toEqual(list.map((b) => b.toString()))
    // 131 datagrams in 64-segment super-packets: 3 messages, 1 call.
    expect(tx.stats()).toMatchObject({ txDatagrams: 131, txCalls: 1 })
    expect(tx.txCount).toBe(3)
  })

  it('UDP GRO receive splits coalesced segments natively, one batch entry per datagram', async () => {
    const rx = link({ gro: true, rcvBuf: 8 << 20 })
    const tx = link()
    const got: { text: string; seg: boolean }[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) got.push({ text: b.copy(i).toString(), seg: b.groSegment(i) })
    })
    const list = Array.from({ length: 64 }, (_, i) => Buffer.from(String(i).padStart(200, '-')))
    tx.sendBatch(list, { port: rx.address().port, gso: true })
    await wait(100)
    expect(got.map((g) => g.text)).toEqual(list.map((b) => b.toString()))
    expect(rx.stats().groSuperPackets).toBeGreaterThanOrEqual(1)
    expect(rx.stats().rxDatagrams).toBe(64)
    expect(got.every((g) => g.seg)).toBe(true)
  })

  it('send() returns true when the kernel took the datagram', () => {
    const rx = link()
    const tx = link()
    expect(tx.send(Buffer.from('x'), rx.address().port)).toBe(true)
  })
})
