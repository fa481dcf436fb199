import { describe, it, expect, afterEach } from 'vitest'
import { createBus, qosProfiles, rawCodec, jsonCodec, type Bus } from '../lib/bus/index.js'

const buses: Bus[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
})
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('bus introspection', () => {
  it('lists topics, publishers, subscribers with their QoS, matches and counters', async () => {
    const bus = createBus({ name: 'nav' })
    buses.push(bus)
    const t = bus.topic('pose', { qos: { ...qosProfiles.sensorData, depth: 2 }, codec: rawCodec })
    bus.topic('status', { qos: qosProfiles.state, codec: jsonCodec() })
    const p = t.publisher({ name: 'ekf' })
    const cb = t.subscribe(() => {}, { name: 'planner' })
    const it = t.subscribe({ qos: { overflow: 'drop-newest' } })
    for (let i = 0; i < 5; i++) p.publish(new Uint8Array(10))
    const info = bus.info()
    expect(info.name).toBe('nav')
    expect(info.topics.map((x) => [x.name, x.codec])).toEqual([
      ['pose', 'raw'],
      ['status', 'json'],
    ])
    const pose = info.topics[0]
    expect(pose.qos).toMatchObject({ reliability: 'best-effort', depth: 2, overflow: 'drop-oldest', durability: 'volatile' })
    expect(pose.publishers).toEqual([
      { id: p.id, source: 'ekf', qos: pose.qos, remote: undefined, matched: ['planner', it.id], published: 5, refused: 0, blocked: false, alive: true, deadlineMissed: 0 },
    ])
    expect(pose.subscribers.map((s) => [s.id, s.kind, s.received, s.delivered, s.queued, s.dropped])).toEqual([
      ['planner', 'callback', 5, 5, 0, 0],
      [it.id, 'iterator', 5, 0, 2, 3],
    ])
    expect(pose.subscribers[1].qos.overflow).toBe('drop-newest')
    expect(pose.stats).toMatchObject({ published: 5, bytes: 50, drops: 3, refused: 0 })
    expect(info.topics[1].stats.bytes).toBe(null) // JSON has no cheap size
    expect(JSON.parse(JSON.stringify(info)).topics[0].publishers[0].source).toBe('ekf') // serialisable for a CLI
    cb.close()
    expect(bus.info().topics[0].publishers[0].matched).toEqual([it.id])
  })

  it('reports rate, bandwidth and latency p50/p99 over the last second', async () => {
    const bus = createBus({ name: 'fig' })
    buses.push(bus)
    const t = bus.topic('scan', { qos: { ...qosProfiles.sensorData, depth: 64 }, codec: rawCodec })
    // a consumer that lags by a tick, so that latency is not ~0
    const sub = t.subscribe()
    const consumer = (async () => {
      for await (const _m of sub) await new Promise((r) => setImmediate(r))
    })()
    const p = t.publisher()
    const start = performance.now()
    let sent = 0
    while (performance.now() - start < 1150) {
      for (let i = 0; i < 20; i++, sent++) p.publish(new Uint8Array(100))
      await sleep(5)
    }
    const s = t.stats()
    expect(s.published).toBe(sent)
    // one window of about a second is behind us: its rate is within the run's average ±60%
    const avg = sent / ((performance.now() - start) / 1000)
    expect(s.rate).toBeGreaterThan(avg * 0.4)
    expect(s.rate).toBeLessThan(avg * 1.6)
    expect(s.bandwidth).toBeCloseTo(s.rate * 100, -1)
    expect(s.latency.samples).toBeGreaterThan(0)
    expect(s.latency.p50).toBeGreaterThan(0)
    expect(s.latency.p99!).toBeGreaterThanOrEqual(s.latency.p50!)
    expect(s.latency.p99!).toBeLessThan(5e9)
    sub.close()
    await consumer
  })
})
