/**
 * Deadline and liveliness timing. The watchdogs tick every quarter period, so
 * a report is never early and is late by at most a quarter period; the
 * windows below add a scheduling allowance for a loaded shared machine on the
 * late side only. The early side is strict (1 ms for timer rounding).
 */
import { describe, it, expect, afterEach } from 'vitest'
import { createBus, qosProfiles, rawCodec, type Bus, type DeadlineMissedEvent, type LivelinessEvent } from '../lib/bus/index.js'

const buses: Bus[] = []
const timers: NodeJS.Timeout[] = []
afterEach(() => {
  for (const t of timers.splice(0)) clearInterval(t)
  for (const b of buses.splice(0)) b.close()
})
function bus(): Bus {
  const b = createBus({ name: 'tm' })
  buses.push(b)
  return b
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const SCHED = 150 // allowance for a loaded machine, late side only
const msg = new Uint8Array(1)

/** Resolves with [event, ms since `since`] at the next `event` from `em`. */
function next<E>(em: NodeJS.EventEmitter, event: string): Promise<[E, number]> {
  return new Promise((resolve) => em.once(event, (e: E) => resolve([e, performance.now()])))
}

function expectWithin(ms: number, period: number): void {
  expect(ms).toBeGreaterThanOrEqual(period - 1)
  expect(ms).toBeLessThanOrEqual(period + Math.ceil(period / 4) + SCHED)
}

describe('bus QoS: deadline', () => {
  it('a silent topic raises deadline-missed on the subscriber one deadline after the last message, then every deadline', async () => {
    const b = bus()
    const t = b.topic('imu', { qos: { ...qosProfiles.sensorData, deadlineMs: 60 }, codec: rawCodec })
    const s = t.subscribe(() => {})
    const onBus: DeadlineMissedEvent[] = []
    b.on('deadline-missed', (e: DeadlineMissedEvent) => onBus.push(e))
    const p = t.publisher()
    await sleep(20)
    p.publish(msg)
    const last = performance.now()
    const [e1, t1] = await next<DeadlineMissedEvent>(s, 'deadline-missed')
    expectWithin(t1 - last, 60)
    expect(e1).toEqual({ topic: 'imu', side: 'subscriber', endpoint: s.id, deadlineMs: 60, totalCount: 1 })
    const [e2, t2] = await next<DeadlineMissedEvent>(s, 'deadline-missed')
    expectWithin(t2 - t1, 60)
    expect(e2.totalCount).toBe(2)
    expect(s.stats().deadlineMissed).toBe(2)
    // the publisher offered the topic's deadline too, and missed it as well
    expect(onBus.some((e) => e.side === 'publisher' && e.endpoint === p.id)).toBe(true)
  })

  it('a subscriber with no publisher at all misses its deadline counted from subscribe()', async () => {
    const t = bus().topic('imu', { qos: { ...qosProfiles.sensorData, deadlineMs: 40 }, codec: rawCodec })
    const t0 = performance.now()
    const s = t.subscribe(() => {})
    const [, t1] = await next<DeadlineMissedEvent>(s, 'deadline-missed')
    expectWithin(t1 - t0, 40)
  })

  it('messages faster than the deadline raise nothing', async () => {
    // 10 ms messages against a 200 ms deadline: only a 200 ms stall of this process could miss it
    const t = bus().topic('imu', { qos: { ...qosProfiles.sensorData, deadlineMs: 200 }, codec: rawCodec })
    const s = t.subscribe(() => {})
    const p = t.publisher()
    const misses: unknown[] = []
    s.on('deadline-missed', (e) => misses.push(e))
    p.on('deadline-missed', (e) => misses.push(e))
    timers.push(setInterval(() => p.publish(msg), 10))
    await sleep(400)
    expect(misses).toEqual([])
    expect(s.stats().received).toBeGreaterThan(5)
  })

  it('a publisher that stops publishing misses its offered deadline', async () => {
    const t = bus().topic('imu', { qos: { ...qosProfiles.sensorData, deadlineMs: Infinity }, codec: rawCodec })
    const p = t.publisher({ qos: { deadlineMs: 50 } })
    p.publish(msg)
    const last = performance.now()
    const [e, t1] = await next<DeadlineMissedEvent>(p, 'deadline-missed')
    expectWithin(t1 - last, 50)
    expect(e).toMatchObject({ side: 'publisher', endpoint: p.id, deadlineMs: 50, totalCount: 1 })
  })
})

describe('bus QoS: liveliness', () => {
  it('a publisher that stops heartbeating is reported lost within its lease; publishing again reports it alive', async () => {
    const b = bus()
    const t = b.topic('hb', { qos: { ...qosProfiles.sensorData, livelinessLeaseMs: 120 }, codec: rawCodec })
    const s = t.subscribe(() => {})
    const p = t.publisher({ name: 'planner' })
    const order: string[] = []
    p.on('liveliness-lost', () => order.push('publisher'))
    t.on('publisher-lost', () => order.push('topic'))
    b.on('publisher-lost', () => order.push('bus'))
    // heartbeats without data keep it alive
    timers.push(setInterval(() => p.assertLiveliness(), 10))
    await sleep(250)
    expect(order).toEqual([])
    clearInterval(timers.pop()!)
    p.assertLiveliness()
    const last = performance.now()
    const [e, t1] = await next<LivelinessEvent>(s, 'publisher-lost')
    expectWithin(t1 - last, 120)
    expect(e).toEqual({ topic: 'hb', publisher: p.id, source: 'planner', leaseMs: 120 })
    expect(order).toEqual(['publisher', 'topic', 'bus'])
    expect(t.info().publishers[0].alive).toBe(false)
    // reported once, not once per lease
    await sleep(200)
    expect(order).toHaveLength(3)
    const alive: LivelinessEvent[] = []
    s.on('publisher-alive', (ev: LivelinessEvent) => alive.push(ev))
    p.publish(msg)
    expect(alive).toHaveLength(1) // at once, not at the next tick
    expect(t.info().publishers[0].alive).toBe(true)
    // and it is watched again
    const again = performance.now()
    const [, t2] = await next<LivelinessEvent>(s, 'publisher-lost')
    expectWithin(t2 - again, 120)
  })

  it('timers are unref’d: deadlines, leases and figures never keep the process alive', () => {
    const count = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const before = count()
    const b = bus()
    const t = b.topic('x', { qos: { ...qosProfiles.sensorData, deadlineMs: 20, livelinessLeaseMs: 20 }, codec: rawCodec })
    t.subscribe(() => {})
    t.publisher({ qos: { deadlineMs: 20 } }).publish(msg)
    // process.getActiveResourcesInfo() lists only timers that hold the loop open
    expect(count()).toBe(before)
  })
})
