import { describe, it, expect, afterEach } from 'vitest'
import { createBus, qosProfiles, rawCodec, qosConflicts, type Bus, type QosMismatchEvent, type QoS } from '../lib/bus/index.js'

const buses: Bus[] = []
afterEach(() => {
  for (const b of buses.splice(0)) b.close()
})
function bus(): Bus {
  const b = createBus({ name: 'mm' })
  buses.push(b)
  return b
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
const base: QoS = { ...qosProfiles.sensorData, deadlineMs: 100, livelinessLeaseMs: 1000 }

describe('bus QoS: requested vs offered', () => {
  const cases: [string, Partial<QoS>, Partial<QoS>, QosMismatchEvent['conflicts']][] = [
    ['reliable requested, best-effort offered', { reliability: 'best-effort' }, { reliability: 'reliable' }, [{ policy: 'reliability', requested: 'reliable', offered: 'best-effort' }]],
    ['transient-local requested, volatile offered', { durability: 'volatile' }, { durability: 'transient-local' }, [{ policy: 'durability', requested: 'transient-local', offered: 'volatile' }]],
    ['deadline shorter than offered', { deadlineMs: 100 }, { deadlineMs: 50 }, [{ policy: 'deadline', requested: 50, offered: 100 }]],
    ['lease shorter than offered', { livelinessLeaseMs: 1000 }, { livelinessLeaseMs: 200 }, [{ policy: 'liveliness', requested: 200, offered: 1000 }]],
    ['no lease offered, one requested', { livelinessLeaseMs: Infinity }, { livelinessLeaseMs: 500 }, [{ policy: 'liveliness', requested: 500, offered: Infinity }]],
  ]
  for (const [name, offered, requested, conflicts] of cases) {
    it(`${name}: no delivery, 'qos-mismatch' on publisher, subscriber, topic and bus`, async () => {
      const b = bus()
      const t = b.topic('x', { qos: base, codec: rawCodec })
      const p = t.publisher({ qos: offered })
      const s = t.subscribe(() => {
        throw new Error('must not be delivered')
      }, { qos: requested })
      const seen: string[] = []
      const evs: QosMismatchEvent[] = []
      p.on('qos-mismatch', (e: QosMismatchEvent) => (seen.push('publisher'), evs.push(e)))
      s.on('qos-mismatch', () => seen.push('subscriber'))
      t.on('qos-mismatch', () => seen.push('topic'))
      b.on('qos-mismatch', () => seen.push('bus'))
      await tick()
      expect(seen).toEqual(['publisher', 'subscriber', 'topic', 'bus'])
      expect(evs[0]).toEqual({ topic: 'x', publisher: p.id, subscriber: s.id, conflicts })
      p.publish(new Uint8Array(1))
      expect(s.stats().received).toBe(0)
      expect(t.info().mismatches).toEqual([evs[0]])
      s.close()
      expect(t.info().mismatches).toEqual([])
    })
  }

  it('offering more than requested matches: reliable to best-effort, shorter deadline and lease, transient-local to volatile', async () => {
    const t = bus().topic('x', { qos: base, codec: rawCodec })
    const p = t.publisher({ qos: { reliability: 'reliable', durability: 'transient-local', deadlineMs: 10, livelinessLeaseMs: 100 } })
    const mismatches: unknown[] = []
    t.on('qos-mismatch', (e) => mismatches.push(e))
    let n = 0
    t.subscribe(() => n++) // requests the topic's QoS: best-effort, volatile, 100 ms, 1000 ms
    p.publish(new Uint8Array(1))
    await tick()
    expect(n).toBe(1)
    expect(mismatches).toEqual([])
  })

  it('depth and overflow never conflict', () => {
    const r: QoS = { ...qosProfiles.reliable }
    expect(qosConflicts({ ...r, depth: 1, overflow: 'drop-newest' }, { ...r, depth: 1000, overflow: 'block' })).toEqual([])
  })

  it('several conflicts are all reported, in one event; a publisher created after the subscriber is checked too', async () => {
    const t = bus().topic('x', { qos: base, codec: rawCodec })
    const s = t.subscribe(() => {}, { qos: { reliability: 'reliable', deadlineMs: 10 } })
    const evs: QosMismatchEvent[] = []
    s.on('qos-mismatch', (e: QosMismatchEvent) => evs.push(e))
    t.publisher()
    await tick()
    expect(evs).toHaveLength(1)
    expect(evs[0].conflicts.map((c) => c.policy)).toEqual(['reliability', 'deadline'])
  })
})
