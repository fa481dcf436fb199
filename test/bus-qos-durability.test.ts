import { describe, it, expect, afterEach } from 'vitest'
import { createBus, qosProfiles, jsonCodec, type Bus, type MessageMeta } from '../lib/bus/index.js'

const buses: Bus[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
})
function bus(): Bus {
  const b = createBus({ name: 'dur' })
  buses.push(b)
  return b
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
type State = { v: number }

describe('bus QoS: durability', () => {
  it('transient-local: a late subscriber first gets the last `depth` messages, then live ones, in order', async () => {
    const t = bus().topic('home', { qos: { ...qosProfiles.state, depth: 3 }, codec: jsonCodec<State>() })
    const p = t.publisher({ name: 'fc' })
    for (let v = 0; v < 5; v++) p.publish({ v })
    const got: [number, number][] = []
    const metas: MessageMeta[] = []
    t.subscribe((d, m) => {
      got.push([d.v, m.seq])
      metas.push({ ...m, publishTime: m.publishTime })
    }, { qos: { depth: 8 } }) // room for the 3 replayed and what follows
    expect(got).toEqual([]) // history arrives after subscribe() returns, not inside it
    p.publish({ v: 5 }) // published before the replay ran: queued behind it
    await tick()
    expect(got).toEqual([
      [2, 3],
      [3, 4],
      [4, 5],
      [5, 6],
    ])
    expect(metas[0].source).toBe('fc')
    expect(metas[0].publishTime).toBeLessThan(metas[3].publishTime)
  })

  it('depth 1 is "last value"; an iterator gets it first', async () => {
    const t = bus().topic('mode', { qos: qosProfiles.state, codec: jsonCodec<State>() })
    t.publish({ v: 1 })
    t.publish({ v: 2 })
    const it = t.subscribe()
    expect((await it.next()).value!.data).toEqual({ v: 2 })
  })

  it('volatile subscribers and volatile topics replay nothing', async () => {
    const b = bus()
    const t = b.topic('mode', { qos: qosProfiles.state, codec: jsonCodec<State>() })
    t.publish({ v: 1 })
    const got: number[] = []
    t.subscribe((d) => got.push(d.v), { qos: { durability: 'volatile' } })
    const v = b.topic('vol', { qos: { ...qosProfiles.state, durability: 'volatile' }, codec: jsonCodec<State>() })
    v.publish({ v: 7 })
    v.subscribe((d) => got.push(d.v))
    await tick()
    expect(got).toEqual([])
  })

  it('only messages of transient-local publishers are kept', async () => {
    const t = bus().topic('mode', { qos: { ...qosProfiles.state, depth: 4 }, codec: jsonCodec<State>() })
    const keep = t.publisher()
    const forget = t.publisher({ qos: { durability: 'volatile' } })
    keep.publish({ v: 1 })
    forget.publish({ v: 2 })
    keep.publish({ v: 3 })
    const got: number[] = []
    t.subscribe((d) => got.push(d.v))
    await tick()
    expect(got).toEqual([1, 3])
  })

  it('the last value outlives its publisher', async () => {
    const t = bus().topic('mode', { qos: qosProfiles.state, codec: jsonCodec<State>() })
    const p = t.publisher()
    p.publish({ v: 9 })
    p.close()
    const got: number[] = []
    t.subscribe((d) => got.push(d.v))
    await tick()
    expect(got).toEqual([9])
  })
})
