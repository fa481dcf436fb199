import { describe, it, expect, afterEach } from 'vitest'
import { createBus, qosProfiles, rawCodec, type Bus, type DropEvent } from '../lib/bus/index.js'

const buses: Bus[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
})
function bus(): Bus {
  const b = createBus({ name: 'ov' })
  buses.push(b)
  return b
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
const msg = (i: number): Uint8Array => new Uint8Array([i])

describe('bus QoS: history depth and overflow', () => {
  it('drop-oldest keeps the last N and reports the drops as one event with a count', async () => {
    const b = bus()
    const t = b.topic('s', { qos: { ...qosProfiles.sensorData, depth: 4, overflow: 'drop-oldest' }, codec: rawCodec })
    const sub = t.subscribe()
    const subDrops: DropEvent[] = []
    const busDrops: DropEvent[] = []
    sub.on('drop', (e: DropEvent) => subDrops.push(e))
    b.on('drop', (e: DropEvent) => busDrops.push(e))
    for (let i = 0; i < 10; i++) t.publish(msg(i))
    await tick()
    expect(subDrops).toEqual([{ topic: 's', endpoint: sub.id, reason: 'drop-oldest', count: 6, total: 6 }])
    expect(busDrops).toEqual(subDrops)
    const got: number[] = []
    for (let i = 0; i < 4; i++) got.push((await sub.next()).value!.data[0])
    expect(got).toEqual([6, 7, 8, 9])
    expect(sub.stats()).toMatchObject({ received: 10, delivered: 4, dropped: 6, queued: 0 })
    expect(t.stats().drops).toBe(6)
  })

  it('drop-newest keeps the first N', async () => {
    const t = bus().topic('s', { qos: { ...qosProfiles.sensorData, depth: 3, overflow: 'drop-newest' }, codec: rawCodec })
    const sub = t.subscribe()
    const drops: DropEvent[] = []
    sub.on('drop', (e: DropEvent) => drops.push(e))
    for (let i = 0; i < 5; i++) t.publish(msg(i))
    // a second burst in a later tick is a second event, with the running total
    await tick()
    t.publish(msg(5))
    await tick()
    expect(drops.map((d) => [d.reason, d.count, d.total])).toEqual([
      ['drop-newest', 2, 2],
      ['drop-newest', 1, 3],
    ])
    const got: number[] = []
    for (let i = 0; i < 3; i++) got.push((await sub.next()).value!.data[0])
    expect(got).toEqual([0, 1, 2])
  })

  it('a slow async callback on a best-effort topic drops by its overflow policy, never blocks', async () => {
    const t = bus().topic('s', { qos: { ...qosProfiles.sensorData, depth: 2 }, codec: rawCodec })
    const got: number[] = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const sub = t.subscribe(async (d) => {
      got.push(d[0])
      if (d[0] === 0) await gate
    })
    const p = t.publisher()
    for (let i = 0; i < 6; i++) expect(p.publish(msg(i))).toBe(true)
    release()
    await tick()
    expect(got).toEqual([0, 4, 5])
    expect(sub.stats().dropped).toBe(3)
  })

  it('reliable + block: publish() returns false and delivers nothing while the queue is full; ready() resolves at half', async () => {
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 4 }, codec: rawCodec })
    const sub = t.subscribe()
    const other: number[] = []
    t.subscribe((d) => {
      other.push(d[0])
    })
    const p = t.publisher()
    for (let i = 0; i < 4; i++) expect(p.publish(msg(i))).toBe(true)
    expect(sub.stats().blocking).toBe(true)
    expect(p.writable).toBe(false)
    expect(p.publish(msg(4))).toBe(false)
    expect(other).toEqual([0, 1, 2, 3]) // all-or-nothing: the refused message reached nobody
    expect(p.stats()).toMatchObject({ published: 4, refused: 1, blockedBy: 1 })
    let ready = false
    void p.ready().then(() => (ready = true))
    await sub.next() // 3 left: still above half (2)
    await tick()
    expect(ready).toBe(false)
    await sub.next() // 2 left: half
    await tick()
    expect(ready).toBe(true)
    expect(p.publish(msg(4))).toBe(true)
    const rest: number[] = []
    for (let i = 0; i < 3; i++) rest.push((await sub.next()).value!.data[0])
    expect(rest).toEqual([2, 3, 4]) // nothing lost, in order
    expect(sub.stats().dropped).toBe(0)
    expect(t.stats().refused).toBe(1)
  })

  it('publishAsync waits for room: a fast publisher and a slow reliable consumer lose nothing', async () => {
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 8 }, codec: rawCodec })
    const got: number[] = []
    t.subscribe(async (d) => {
      got.push(d[0])
      await new Promise((r) => setImmediate(r))
    })
    const p = t.publisher()
    for (let i = 0; i < 100; i++) await p.publishAsync(msg(i))
    while (got.length < 100) await tick()
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(p.stats().refused).toBeGreaterThan(0) // it really was pushed back
  })

  it('a blocking subscriber that closes releases its publishers', async () => {
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 1 }, codec: rawCodec })
    const sub = t.subscribe()
    const p = t.publisher()
    p.publish(msg(0))
    expect(p.publish(msg(1))).toBe(false)
    const r = p.ready()
    sub.close()
    await r
    expect(p.publish(msg(1))).toBe(true)
  })

  it('ready() rejects when its AbortSignal aborts', async () => {
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 1 }, codec: rawCodec })
    t.subscribe()
    const p = t.publisher()
    p.publish(msg(0))
    const ac = new AbortController()
    const r = p.ready({ signal: ac.signal })
    ac.abort(new Error('gave up'))
    await expect(r).rejects.toThrow('gave up')
  })

  it('a best-effort subscriber on a reliable topic drops instead of blocking', async () => {
    const t = bus().topic('cmd', { qos: { ...qosProfiles.reliable, depth: 2 }, codec: rawCodec })
    const be = t.subscribe({ qos: { reliability: 'best-effort', overflow: 'drop-oldest' } })
    const p = t.publisher()
    for (let i = 0; i < 5; i++) expect(p.publish(msg(i))).toBe(true)
    expect(be.stats()).toMatchObject({ dropped: 3, queued: 2, blocking: false })
  })
})
