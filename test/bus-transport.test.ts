/**
 * The transport seam, exercised through the loopback reference transport:
 * two buses, encoded bytes in between, the same calls the cross-process
 * transport makes.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { createBus, createLoopbackTransportPair, qosProfiles, rawCodec, jsonCodec, type Bus, type MessageMeta, type QosMismatchEvent, type LivelinessEvent } from '../lib/bus/index.js'

const buses: Bus[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
})
function pair(): [Bus, Bus] {
  const a = createBus({ name: 'a' })
  const b = createBus({ name: 'b' })
  buses.push(a, b)
  const [ta, tb] = createLoopbackTransportPair()
  a.addTransport(ta)
  b.addTransport(tb)
  return [a, b]
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
type N = { n: number }

describe('bus transport seam (loopback)', () => {
  it('carries messages with their seq, source and publish stamp; remote proxies show in introspection', async () => {
    const [a, b] = pair()
    const ta = a.topic('t', { qos: qosProfiles.reliable, codec: jsonCodec<N>() })
    const tb = b.topic('t', { qos: qosProfiles.reliable, codec: jsonCodec<N>() })
    const got: [N, MessageMeta][] = []
    tb.subscribe((d, m) => {
      got.push([d, { seq: m.seq, source: m.source, rxTime: m.rxTime, publishTime: m.publishTime }])
    })
    const p = ta.publisher({ name: 'planner' })
    let localStamp = 0
    let local = 0
    ta.subscribe((_d, m) => {
      localStamp = m.publishTime
      local++
    })
    p.publish({ n: 1 })
    p.publish({ n: 2 })
    await tick()
    expect(got.map(([d, m]) => [d.n, m.seq, m.source])).toEqual([
      [1, 1, 'planner'],
      [2, 2, 'planner'],
    ])
    expect(got[1][1].publishTime).toBe(localStamp)
    const proxies = tb.info().publishers
    expect(proxies).toHaveLength(1)
    expect(proxies[0]).toMatchObject({ id: p.id, source: 'planner', remote: 'loopback:b', alive: true })
    expect(b.info().transports).toEqual(['loopback:b'])
    // each side forwards to the other's subscribers, but only what its own
    // publishers publish: a's message does not come back to a
    expect(ta.info().subscribers.filter((s) => s.forwarder)).toHaveLength(1)
    expect(tb.info().subscribers.filter((s) => s.forwarder)).toHaveLength(1)
    expect(local).toBe(2)
  })

  it('works whichever side declares the topic first, and stops when the remote subscriber goes', async () => {
    const [a, b] = pair()
    const pa = a.topic('late', { qos: qosProfiles.sensorData, codec: rawCodec }).publisher()
    const got: number[] = []
    const sub = b.topic('late', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe((d) => {
      got.push(d[0])
    })
    pa.publish(new Uint8Array([7]))
    await tick()
    expect(got).toEqual([7])
    sub.close()
    expect(a.topic('late').info().subscribers).toEqual([]) // forwarder gone
  })

  it('QoS mismatches are judged and reported on the subscriber’s side', async () => {
    const [a, b] = pair()
    a.topic('t', { qos: qosProfiles.sensorData, codec: rawCodec }).publisher() // best effort
    const tb = b.topic('t', { qos: qosProfiles.sensorData, codec: rawCodec })
    const evs: QosMismatchEvent[] = []
    b.on('qos-mismatch', (e: QosMismatchEvent) => evs.push(e))
    tb.subscribe(() => {}, { qos: { reliability: 'reliable' } })
    await tick()
    expect(evs).toHaveLength(1)
    expect(evs[0].conflicts).toEqual([{ policy: 'reliability', requested: 'reliable', offered: 'best-effort' }])
  })

  it('back-pressure crosses: a full reliable subscriber on b blocks the reliable publisher on a, nothing is lost', async () => {
    const [a, b] = pair()
    const qos = { ...qosProfiles.reliable, depth: 4 }
    const pa = a.topic('cmd', { qos, codec: rawCodec }).publisher()
    const got: number[] = []
    b.topic('cmd', { qos, codec: rawCodec }).subscribe(async (d) => {
      got.push(d[0])
      await new Promise((r) => setTimeout(r, 1))
    })
    for (let i = 0; i < 40; i++) await pa.publishAsync(new Uint8Array([i]))
    while (got.length < 40) await new Promise((r) => setTimeout(r, 5))
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(pa.stats().refused).toBeGreaterThan(0)
  })

  it('history crosses to remote transient-local subscribers only', async () => {
    const [a, b] = pair()
    const ta = a.topic('home', { qos: { ...qosProfiles.state, depth: 2 }, codec: jsonCodec<N>() })
    for (let n = 0; n < 3; n++) ta.publish({ n })
    const tb = b.topic('home', { qos: { ...qosProfiles.state, depth: 2 }, codec: jsonCodec<N>() })
    const durable: number[] = []
    const vol: number[] = []
    tb.subscribe((d) => {
      vol.push(d.n)
    }, { qos: { durability: 'volatile' } })
    tb.subscribe((d) => {
      durable.push(d.n)
    })
    await tick()
    await tick()
    expect(durable).toEqual([1, 2])
    expect(vol).toEqual([])
    ta.publish({ n: 3 })
    await tick()
    expect(durable).toEqual([1, 2, 3])
    expect(vol).toEqual([3])
  })

  it('explicit heartbeats cross; a remote publisher that goes silent is reported lost on the subscriber’s side', async () => {
    const [a, b] = pair()
    const qos = { ...qosProfiles.sensorData, livelinessLeaseMs: 120 }
    const pa = a.topic('hb', { qos, codec: rawCodec }).publisher()
    const sub = b.topic('hb', { qos, codec: rawCodec }).subscribe(() => {})
    const lost: LivelinessEvent[] = []
    sub.on('publisher-lost', (e: LivelinessEvent) => lost.push(e))
    const hb = setInterval(() => pa.assertLiveliness(), 10)
    await new Promise((r) => setTimeout(r, 200))
    clearInterval(hb)
    expect(lost).toEqual([])
    pa.assertLiveliness()
    const t0 = performance.now()
    while (lost.length === 0 && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5))
    expect(performance.now() - t0).toBeGreaterThanOrEqual(119) // never early
    expect(lost.map((e) => e.publisher)).toEqual([pa.id])
  })

  it('a closed publisher unmatches its proxy; closing a bus closes its transport', async () => {
    const [a, b] = pair()
    const pa = a.topic('t', { qos: qosProfiles.sensorData, codec: rawCodec }).publisher()
    const tb = b.topic('t', { qos: qosProfiles.sensorData, codec: rawCodec })
    const sub = tb.subscribe(() => {})
    const unmatched: unknown[] = []
    sub.on('unmatched', (e) => unmatched.push(e))
    expect(tb.info().publishers).toHaveLength(1)
    pa.close()
    await tick()
    expect(tb.info().publishers).toHaveLength(0)
    expect(unmatched).toHaveLength(1)
    a.close()
    expect(tb.info().publishers).toHaveLength(0)
  })
})
