import { describe, it, expect, afterEach } from 'vitest'
import { createBus, qosProfiles, rawCodec, jsonCodec, copyMeta, monotonicNs, type Bus, type MessageMeta } from '../lib/bus/index.js'

const buses: Bus[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
})
function bus(name = 't'): Bus {
  const b = createBus({ name })
  buses.push(b)
  return b
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

describe('bus: publish and subscribe', () => {
  it('delivers synchronously, by reference, with per-publisher seq and a source', () => {
    const t = bus('b1').topic('raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    const got: { data: Uint8Array; meta: MessageMeta }[] = []
    t.subscribe((data, meta) => {
      got.push({ data, meta: copyMeta(meta) })
    })
    const p = t.publisher({ name: 'lidar' })
    const q = t.publisher()
    const a = new Uint8Array([1, 2, 3])
    expect(p.publish(a)).toBe(true)
    expect(got).toHaveLength(1) // synchronous
    expect(got[0].data).toBe(a) // no copy
    p.publish(a)
    q.publish(a)
    expect(got.map((g) => [g.meta.source, g.meta.seq])).toEqual([
      ['lidar', 1],
      ['lidar', 2],
      [q.id, 1],
    ])
    expect(q.id).toMatch(/^b1\/raw#p\d+$/)
    expect(got[0].meta.rxTime).toBeUndefined()
  })

  it('stamps publishTime on the monotonic clock, once per message', () => {
    const t = bus().topic('raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    const seen: number[] = []
    t.subscribe((_d, m) => {
      seen.push(m.publishTime)
    })
    t.subscribe((_d, m) => {
      seen.push(m.publishTime)
    })
    const before = monotonicNs()
    t.publish(new Uint8Array(1))
    const after = monotonicNs()
    expect(seen).toHaveLength(2)
    expect(seen[0]).toBe(seen[1]) // the same stamp for every subscriber of one message
    expect(seen[0]).toBeGreaterThanOrEqual(before)
    expect(seen[0]).toBeLessThanOrEqual(after)
    // same epoch as process.hrtime (CLOCK_MONOTONIC), to within a millisecond
    expect(Math.abs(monotonicNs() - Number(process.hrtime.bigint()))).toBeLessThan(1e6)
  })

  it('reuses the meta object between messages (valid until the callback returns)', () => {
    const t = bus().topic('raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    const metas: MessageMeta[] = []
    t.subscribe((_d, m) => {
      metas.push(m)
    })
    t.publish(new Uint8Array(1))
    t.publish(new Uint8Array(1))
    expect(metas[0]).toBe(metas[1])
    expect(metas[1].seq).toBe(2)
  })

  it('keeps the outer meta intact when a callback publishes on the same publisher', () => {
    const t = bus().topic('raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    const p = t.publisher()
    const order: number[] = []
    t.subscribe((d, m) => {
      if (d[0] === 0) p.publish(new Uint8Array([1]))
      order.push(m.seq)
    })
    const second: number[] = []
    t.subscribe((_d, m) => {
      second.push(m.seq)
    })
    p.publish(new Uint8Array([0]))
    expect(order).toEqual([2, 1])
    expect(second).toEqual([2, 1])
  })

  it('iterates with for await, gives keepable meta, and ends on AbortSignal', async () => {
    const t = bus().topic('json', { qos: qosProfiles.reliable, codec: jsonCodec<{ n: number }>() })
    const ac = new AbortController()
    const sub = t.subscribe({ signal: ac.signal })
    const p = t.publisher()
    for (let n = 0; n < 3; n++) p.publish({ n })
    const got: number[] = []
    const metas: MessageMeta[] = []
    for await (const { data, meta } of sub) {
      got.push(data.n)
      metas.push(meta)
      if (got.length === 3) setTimeout(() => p.publish({ n: 99 }), 5)
      if (got.length === 4) ac.abort()
    }
    expect(got).toEqual([0, 1, 2, 99])
    expect(metas.map((m) => m.seq)).toEqual([1, 2, 3, 4])
    expect(metas[0]).not.toBe(metas[1])
    expect(sub.closedState).toBe(true)
    expect(t.info().subscribers).toHaveLength(0)
  })

  it('break out of for await closes the subscription', async () => {
    const t = bus().topic('raw', { qos: qosProfiles.reliable, codec: rawCodec })
    const sub = t.subscribe()
    t.publish(new Uint8Array(1))
    t.publish(new Uint8Array(1))
    for await (const m of sub) {
      expect(m.meta.seq).toBe(1)
      break
    }
    expect(sub.closedState).toBe(true)
  })

  it('serialises async callbacks in order, queueing meanwhile', async () => {
    const t = bus().topic('raw', { qos: { ...qosProfiles.reliable, depth: 16 }, codec: rawCodec })
    const log: string[] = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const sub = t.subscribe(async (d) => {
      log.push(`start ${d[0]}`)
      if (d[0] === 0) await gate
      log.push(`end ${d[0]}`)
    })
    for (let i = 0; i < 3; i++) t.publish(new Uint8Array([i]))
    expect(log).toEqual(['start 0'])
    expect(sub.stats().queued).toBe(2)
    release()
    await tick()
    expect(log).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2'])
    expect(sub.stats()).toMatchObject({ received: 3, delivered: 3, queued: 0, dropped: 0 })
  })

  it('routes a throwing callback to error listeners and keeps delivering to the others', () => {
    const t = bus().topic('raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    const bad = t.subscribe(() => {
      throw new Error('boom')
    })
    const errors: Error[] = []
    bad.on('error', (e: Error) => errors.push(e))
    let good = 0
    t.subscribe(() => {
      good++
    })
    t.publish(new Uint8Array(1))
    expect(errors.map((e) => e.message)).toEqual(['boom'])
    expect(good).toBe(1)
  })

  it('a closed subscription receives nothing more; close is idempotent and emits close', async () => {
    const t = bus().topic('raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    let n = 0
    const s = t.subscribe(() => {
      n++
    })
    let closed = 0
    s.on('close', () => closed++)
    t.publish(new Uint8Array(1))
    s.close()
    s.close()
    t.publish(new Uint8Array(1))
    await tick()
    expect(n).toBe(1)
    expect(closed).toBe(1)
  })

  it('declaring a topic twice returns it; another codec or QoS throws ERR_ONBUS_TOPIC_CONFLICT', () => {
    const b = bus()
    const t = b.topic('x', { qos: qosProfiles.sensorData, codec: rawCodec })
    expect(b.topic('x', { qos: qosProfiles.sensorData, codec: rawCodec })).toBe(t)
    expect(b.topic('x')).toBe(t)
    expect(() => b.topic('x', { qos: qosProfiles.sensorData, codec: jsonCodec() })).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_TOPIC_CONFLICT' }))
    expect(() => b.topic('x', { qos: { ...qosProfiles.sensorData, depth: 2 }, codec: rawCodec })).toThrow(
      expect.objectContaining({ code: 'ERR_ONBUS_TOPIC_CONFLICT' }),
    )
  })

  it('validates names, QoS and codecs before anything happens', () => {
    const b = bus()
    const qos = qosProfiles.sensorData
    expect(() => b.topic('', { qos, codec: rawCodec })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => b.topic('y')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    // QoS is explicit: reliability, depth, overflow and deadline must be stated
    const { deadlineMs: _d, ...noDeadline } = qos
    expect(() => b.topic('y', { qos: noDeadline as never, codec: rawCodec })).toThrow(/deadlineMs' must be stated/)
    expect(() => b.topic('y', { qos: { ...qos, depth: 0 }, codec: rawCodec })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => b.topic('y', { qos: { ...qos, overflow: 'block' }, codec: rawCodec })).toThrow(/needs reliability 'reliable'/)
    expect(() => b.topic('y', { qos: { ...qos, deadlineMs: -1 }, codec: rawCodec })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => b.topic('y', { qos: { ...qos, bogus: 1 } as never, codec: rawCodec })).toThrow(/is not a QoS policy/)
    expect(() => b.topic('y', { qos, codec: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    const t = b.topic('y', { qos, codec: rawCodec })
    expect(() => t.subscribe(() => {}, { qos: { overflow: 'block' } })).toThrow(/needs reliability 'reliable'/)
    expect(() => t.publisher({ qos: { reliability: 'sure' as never } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
  })

  it('closing the bus closes topics, ends iterators and rejects ready()', async () => {
    const b = createBus()
    const t = b.topic('r', { qos: { ...qosProfiles.reliable, depth: 1 }, codec: rawCodec })
    const it = t.subscribe()
    const p = t.publisher()
    p.publish(new Uint8Array(1))
    expect(p.publish(new Uint8Array(1))).toBe(false)
    const ready = p.ready()
    b.close()
    await expect(ready).rejects.toMatchObject({ code: 'ERR_ONBUS_CLOSED' })
    expect(await it.next()).toEqual({ value: undefined, done: true })
    expect(() => b.topic('r')).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_CLOSED' }))
    expect(() => p.publish(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_CLOSED' }))
  })
})
