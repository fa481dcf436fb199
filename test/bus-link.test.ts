import { describe, it, expect, afterEach } from 'vitest'
import dgram from 'node:dgram'
import { EventEmitter } from 'node:events'
import { createUdpLink, now, type UdpLink } from '../lib/index.js'
import { emulatorLimit } from './helpers/emulator.js'
import { createBus, attachLink, qosProfiles, rawCodec, jsonCodec, type Bus, type BatchLike, type DropEvent, type MessageMeta } from '../lib/bus/index.js'

const buses: Bus[] = []
const links: UdpLink[] = []
const sockets: dgram.Socket[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
  for (const l of links.splice(0)) l.close()
  for (const s of sockets.splice(0)) s.close()
})
function bus(): Bus {
  const b = createBus({ name: 'lk' })
  buses.push(b)
  return b
}
function link(opts: Parameters<typeof createUdpLink>[0] = {}): UdpLink {
  const l = createUdpLink(opts)
  links.push(l)
  return l
}
async function sender(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  sockets.push(s)
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r))
  return s
}
function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (cond()) return resolve()
      if (Date.now() - t0 > ms) return reject(new Error('timed out waiting'))
      setTimeout(poll, 2)
    }
    poll()
  })
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

/** A batch source driven by the test (for behaviour a real socket cannot produce on demand). */
class FakeSource extends EventEmitter {
  handler: ((b: BatchLike) => void) | null = null
  onBatch(h: (b: BatchLike) => void): () => void {
    this.handler = h
    return () => (this.handler = null)
  }
  push(datagrams: Uint8Array[]): void {
    this.handler?.({ length: datagrams.length, copy: (i) => datagrams[i].slice(), rxTime: () => 1n })
  }
}

describe('bus and links', () => {
  it('udpLink.publishTo(topic) is the one-line form of topic.attach(link)', async () => {
    const l = link({ port: 0 })
    const t = bus().topic('imu', { qos: qosProfiles.sensorData, codec: rawCodec })
    const got: number[][] = []
    t.subscribe((data) => {
      got.push(Array.from(data))
    })
    const att = l.publishTo(t)
    expect(att.publisher.source).toBe(`udp:127.0.0.1:${l.address().port}`)
    const s = await sender()
    for (let i = 0; i < 3; i++) s.send(Buffer.from([i]), l.address().port, '127.0.0.1')
    await until(() => got.length === 3)
    expect(got).toEqual([[0], [1], [2]])
  })

  it('attach(udpLink): each datagram becomes a message with its kernel rxTime and its sender as source', async () => {
    const l = link({ port: 0 })
    const t = bus().topic('lidar', { qos: qosProfiles.sensorData, codec: rawCodec })
    const got: { data: Uint8Array; meta: MessageMeta }[] = []
    t.subscribe((data, meta) => {
      got.push({ data, meta: { seq: meta.seq, source: meta.source, rxTime: meta.rxTime, publishTime: meta.publishTime } })
    })
    const att = t.attach(l)
    expect(att.publisher.source).toBe(`udp:127.0.0.1:${l.address().port}`)
    const s = await sender()
    const before = now('realtime')
    for (let i = 0; i < 5; i++) s.send(Buffer.from([i, 42]), l.address().port, '127.0.0.1')
    await until(() => got.length === 5)
    const after = now('realtime')
    // read after the batches were released: the messages are copies that outlive them
    expect(got.map((g) => Array.from(g.data))).toEqual([0, 1, 2, 3, 4].map((i) => [i, 42]))
    expect(got.map((g) => g.meta.seq)).toEqual([1, 2, 3, 4, 5])
    expect(got[0].meta.source).toBe(`udp:127.0.0.1:${s.address().port}`)
    for (const g of got) {
      // kernel stamps may be missing for the first datagrams of a fresh socket (docs/ARCHITECTURE.md, Time)
      if (g.meta.rxTime === undefined) continue
      expect(g.meta.rxTime).toBeGreaterThanOrEqual(before - 1_000_000n)
      expect(g.meta.rxTime).toBeLessThanOrEqual(after)
    }
    // Kernel stamps exist wherever the kernel gives them (qemu-user does not).
    expect(got.some((g) => g.meta.rxTime !== undefined)).toBe(l.capabilities.rxTimestamps)
    if (!emulatorLimit('timestamping')) expect(l.capabilities.rxTimestamps).toBe(true)
    expect(att.stats()).toEqual({ published: 5, blocked: 0, decodeErrors: 0 })
    if (l.capabilities.rxTimestamps) expect(t.stats().rxLatency.samples).toBeGreaterThan(0)
  })

  it('attachLink(link, topic) is the same one line; closing the link detaches', async () => {
    const l = link({ port: 0 })
    const t = bus().topic('lidar', { qos: qosProfiles.sensorData, codec: rawCodec })
    const att = attachLink(l, t, { name: 'front-lidar' })
    expect(t.info().publishers.map((p) => p.source)).toEqual(['front-lidar'])
    l.close()
    await tick()
    expect(att.publisher.closedState).toBe(true)
    expect(t.info().publishers).toEqual([])
  })

  it('undecodable datagrams are counted and reported as drops (decode-error)', async () => {
    const src = new FakeSource()
    const t = bus().topic('status', { qos: qosProfiles.sensorData, codec: jsonCodec<{ ok: boolean }>() })
    const got: boolean[] = []
    t.subscribe((d) => {
      got.push(d.ok)
    })
    const drops: DropEvent[] = []
    t.on('drop', (e: DropEvent) => drops.push(e))
    const att = t.attach(src)
    src.push([Buffer.from('{"ok":true}'), Buffer.from('{nope'), Buffer.from('{"ok":false}')])
    await tick()
    expect(got).toEqual([true, false])
    expect(att.stats()).toEqual({ published: 2, blocked: 0, decodeErrors: 1 })
    expect(drops).toEqual([{ topic: 'status', endpoint: att.publisher.id, reason: 'decode-error', count: 1, total: 1 }])
  })

  it('a link cannot wait: when a reliable subscriber pushes back, datagrams are dropped at the attachment and reported', async () => {
    const src = new FakeSource()
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 2 }, codec: rawCodec })
    const sub = t.subscribe()
    const att = t.attach(src)
    const drops: DropEvent[] = []
    t.on('drop', (e: DropEvent) => drops.push(e))
    src.push([0, 1, 2, 3, 4].map((i) => new Uint8Array([i])))
    await tick()
    expect(att.stats()).toEqual({ published: 2, blocked: 3, decodeErrors: 0 })
    expect(drops).toEqual([{ topic: 'cmd', endpoint: att.publisher.id, reason: 'publisher-blocked', count: 3, total: 3 }])
    expect(t.stats()).toMatchObject({ drops: 3, refused: 3 })
    expect(sub.stats().queued).toBe(2)
  })

  it('sendTo(link): messages go out encoded with link.send()', async () => {
    const rx = link({ port: 0 })
    const tx = link({ port: 0 })
    const got: string[] = []
    rx.on('message', (m: Buffer) => got.push(m.toString()))
    const t = bus().topic('status', { qos: qosProfiles.reliable, codec: jsonCodec<{ n: number }>() })
    t.sendTo(tx, { port: rx.address().port, address: '127.0.0.1' })
    t.publish({ n: 1 })
    t.publish({ n: 2 })
    await until(() => got.length === 2)
    expect(got).toEqual(['{"n":1}', '{"n":2}'])
    tx.close() // a closed link ends the feed instead of failing every later send
    await new Promise((r) => setImmediate(r))
    expect(t.info().subscribers).toEqual([])
    expect(t.publish({ n: 3 })).toBe(true)
  })

  it('sendTo: while the link is backed up, messages wait (depth, overflow) until its drain', async () => {
    class FakeSink extends EventEmitter {
      sent: number[] = []
      full = false
      send(data: Uint8Array): boolean {
        this.sent.push(data[0])
        return !this.full
      }
    }
    const sink = new FakeSink()
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 2 }, codec: rawCodec })
    const sub = t.sendTo(sink)
    const p = t.publisher()
    sink.full = true
    expect(p.publish(new Uint8Array([0]))).toBe(true) // the link took it but said "stop"
    expect(p.publish(new Uint8Array([1]))).toBe(true) // waits in the queue
    expect(p.publish(new Uint8Array([2]))).toBe(true)
    expect(p.publish(new Uint8Array([3]))).toBe(false) // queue full: reliable publisher pushed back
    expect(sink.sent).toEqual([0])
    sink.full = false
    sink.emit('drain')
    expect(sink.sent).toEqual([0, 1, 2])
    await p.ready()
    expect(p.publish(new Uint8Array([3]))).toBe(true)
    expect(sink.sent).toEqual([0, 1, 2, 3])
    expect(sub.stats().dropped).toBe(0)
  })
})
