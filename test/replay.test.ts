/**
 * Replay: log_time order, recorded inter-arrival times scaled by the rate,
 * topic filter, start/end, loop, the virtual clock (readable, pause/resume),
 * a recorder → replay round trip through the bus, and payloads sent onto UDP
 * received by an onbus UdpLink.
 *
 * Timing assertions are windows with generous slack (a shared machine may
 * stall us for tens of ms); the precise figures are the benchmark's
 * (bench/record.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { McapWriter } from '@mcap/core'
import { createBus, createLoopbackTransportPair, jsonCodec, qosProfiles, rawCodec, monotonicNs } from '../lib/bus/index.js'
import { createRecorder, followClock, replayFile } from '../lib/record/index.js'
import { FileWritable } from '../lib/record/io.js'
import { createUdpLink } from '../lib/links/index.js'
import { emulator } from './helpers/emulator.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onbus-replay-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

const T0 = 1_700_000_000_000_000_000n
const MS = 1_000_000n
// Slack for timing windows: a loaded 2-core machine (and qemu) stalls us.
const SLACK_MS = emulator ? 2000 : 400

interface Spec {
  topic: string
  atMs: number
  payload: Uint8Array
}

/** Writes an MCAP file with chosen log times (written out of order on purpose: replay must sort). */
async function writeFile(path: string, specs: Spec[]): Promise<void> {
  const w = await FileWritable.create(path)
  const writer = new McapWriter({ writable: w, chunkSize: 2048 })
  await writer.start({ profile: '', library: 'test' })
  const channels = new Map<string, number>()
  for (const s of specs) {
    if (!channels.has(s.topic)) {
      const json = s.topic.startsWith('json')
      channels.set(
        s.topic,
        await writer.registerChannel({
          topic: s.topic,
          messageEncoding: json ? 'json' : 'raw',
          schemaId: 0,
          metadata: new Map([
            ['onbus.codec', json ? 'json' : 'raw'],
            ['onbus.qos', JSON.stringify({ reliability: 'best-effort', depth: 16, overflow: 'drop-oldest', deadlineMs: 'Infinity' })],
          ]),
        }),
      )
    }
  }
  let seq = 0
  for (const s of specs) {
    const t = T0 + BigInt(s.atMs) * MS
    await writer.addMessage({ channelId: channels.get(s.topic)!, sequence: ++seq, logTime: t, publishTime: t, data: s.payload })
  }
  await writer.end()
  await w.close()
}

function specs(): Spec[] {
  // a every 20 ms from 0, b every 30 ms from 5, json every 100 ms from 50; span 400 ms.
  const out: Spec[] = []
  for (let t = 0; t <= 400; t += 20) out.push({ topic: 'a', atMs: t, payload: new Uint8Array([1, t & 0xff, t >> 8]) })
  for (let t = 5; t <= 400; t += 30) out.push({ topic: 'b', atMs: t, payload: new Uint8Array([2, t & 0xff, t >> 8]) })
  for (let t = 50; t <= 400; t += 100) out.push({ topic: 'json/status', atMs: t, payload: new TextEncoder().encode(JSON.stringify({ t })) })
  // Shuffle the write order within each 100 ms block: chunks overlap in time, the reader merges.
  return out.sort((x, y) => Math.floor(x.atMs / 100) - Math.floor(y.atMs / 100) || (x.topic < y.topic ? 1 : -1))
}

/** Subscribes to every topic of a spec list; records (topic, time offset from the first, received at). */
function listen(bus: ReturnType<typeof createBus>, topics: string[], clockMs: () => number = () => NaN) {
  const got: { topic: string; atMs: number; wall: number; clockMs: number; value: unknown }[] = []
  for (const name of topics) {
    const json = name.startsWith('json')
    const t = json ? bus.topic(name, { qos: qosProfiles.sensorData, codec: jsonCodec<{ t: number }>() }) : bus.topic(name, { qos: qosProfiles.sensorData, codec: rawCodec })
    t.subscribe((v: unknown) => {
      const atMs = json ? (v as { t: number }).t : (v as Uint8Array)[1] | ((v as Uint8Array)[2] << 8)
      got.push({ topic: name, atMs, wall: monotonicNs() / 1e6, clockMs: clockMs(), value: v })
    })
  }
  return got
}

describe('replay', () => {
  it('publishes every message in log_time order with the recorded spacing at 1×, and half of it at 2×', async () => {
    const path = join(dir, 'timed.mcap')
    const all = specs()
    await writeFile(path, all)
    const order = [...all].sort((x, y) => x.atMs - y.atMs)
    for (const rate of [1, 2]) {
      const bus = createBus({ name: `replay-${rate}` })
      const holder: { rp: Awaited<ReturnType<typeof replayFile>> | null } = { rp: null }
      const got = listen(bus, ['a', 'b', 'json/status'], () => holder.rp!.clock.offsetNs() / 1e6)
      const started = monotonicNs() / 1e6
      const rp = await replayFile({ bus, path, rate })
      holder.rp = rp
      expect(rp.reader).toBe('indexed')
      const s = await rp.done
      bus.close()
      expect(s.messages).toBe(all.length)
      expect(got.map((g) => `${g.topic}@${g.atMs}`)).toEqual(order.map((o) => `${o.topic}@${o.atMs}`))
      // Never early: when a message arrives the replay clock has reached its recorded time.
      for (const g of got) expect(g.clockMs).toBeGreaterThanOrEqual(g.atMs - 0.001)
      // Spacing: each message's wall offset from the first ≈ recorded offset / rate, within the slack
      // (a late first message only makes the others look earlier, which the clock check above covers).
      const w0 = got[0].wall
      for (const g of got) expect(g.wall - w0).toBeLessThanOrEqual(g.atMs / rate + SLACK_MS)
      // The whole span took at least the recorded span / rate.
      expect(got.at(-1)!.wall - started).toBeGreaterThanOrEqual(400 / rate - 1)
      expect(s.recordedS).toBeCloseTo(0.4, 6)
      expect(s.lateness.n).toBe(all.length)
      // JSON topics arrive decoded with the topic's codec.
      expect(got.find((g) => g.topic === 'json/status')!.value).toEqual({ t: 50 })
    }
  })

  it('filters topics, honours start/end offsets, and loops until closed', async () => {
    const path = join(dir, 'filter.mcap')
    await writeFile(path, specs())
    {
      const bus = createBus({ name: 'replay-filter' })
      const got = listen(bus, ['a', 'b'])
      const s = await (await replayFile({ bus, path, rate: 20, topics: ['b'], startS: 0.1, endS: 0.3 })).done
      bus.close()
      const want = specs()
        .filter((x) => x.topic === 'b' && x.atMs >= 100 && x.atMs <= 300)
        .map((x) => x.atMs)
        .sort((x, y) => x - y)
      expect(got.map((g) => g.atMs)).toEqual(want)
      expect(s.messages).toBe(want.length)
    }
    {
      const bus = createBus({ name: 'replay-loop' })
      const got = listen(bus, ['a'])
      const rp = await replayFile({ bus, path, rate: 10, topics: ['a'], loop: true })
      let loops = 0
      rp.on('loop', () => {
        if (++loops === 3) rp.close()
      })
      const s = await rp.done
      bus.close()
      expect(s.loops).toBe(3)
      const perPass = specs().filter((x) => x.topic === 'a').length
      // Three full passes and the first message of the fourth, at most.
      expect(got.length).toBeGreaterThanOrEqual(3 * perPass)
      expect(got.length).toBeLessThanOrEqual(3 * perPass + 1)
      expect(got.slice(0, 2 * perPass).map((g) => g.atMs)).toEqual([...got.slice(0, perPass), ...got.slice(0, perPass)].map((g) => g.atMs))
    }
    {
      // A loop over nothing (no such topic, or an empty window) ends instead of spinning.
      const bus = createBus({ name: 'replay-empty-loop' })
      const s = await (await replayFile({ bus, path, topics: ['nope'], loop: true })).done
      const s2 = await (await replayFile({ bus, path, loop: true, startS: 10 })).done
      bus.close()
      expect(s.messages + s2.messages).toBe(0)
      expect(s.loops + s2.loops).toBe(0)
    }
  })

  it("leaves onbus's own topics (/onbus/…) out unless they are listed", async () => {
    const path = join(dir, 'internal.mcap')
    await writeFile(path, [
      { topic: 'a', atMs: 0, payload: new Uint8Array([1, 0, 0]) },
      { topic: '/onbus/stats', atMs: 1, payload: new Uint8Array([9]) },
      { topic: 'a', atMs: 2, payload: new Uint8Array([1, 2, 0]) },
    ])
    for (const topics of [undefined, ['/onbus/stats']]) {
      const bus = createBus({ name: 'replay-internal' })
      const got: string[] = []
      bus.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe(() => void got.push('a'))
      bus.topic('/onbus/stats', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe(() => void got.push('stats'))
      const s = await (await replayFile({ bus, path, rate: 100, topics })).done
      bus.close()
      expect(got).toEqual(topics ? ['stats'] : ['a', 'a'])
      expect(Object.keys(s.topics)).toEqual(topics ? ['/onbus/stats'] : ['a'])
    }
  })

  it('runs on a virtual clock modules can read, which pauses and resumes', async () => {
    const path = join(dir, 'clock.mcap')
    await writeFile(path, specs())
    const bus = createBus({ name: 'replay-clock' })
    const a = bus.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec })
    const rp = await replayFile({ bus, path, rate: 1, topics: ['a'] })
    const seen: { atMs: number; clockMs: number }[] = []
    let paused = false
    let pausedAt = 0
    let resumedWall = 0
    a.subscribe((v) => {
      const atMs = v[1] | (v[2] << 8)
      // The clock reads the message's recorded time (CLOCK_REALTIME of the recording).
      seen.push({ atMs, clockMs: Number(rp.clock.now() - T0) / 1e6 })
      if (atMs === 100 && !paused) {
        paused = true
        rp.clock.pause()
        pausedAt = Number(rp.clock.now() - T0) / 1e6
        setTimeout(() => {
          // Frozen while paused.
          expect(Math.abs(Number(rp.clock.now() - T0) / 1e6 - pausedAt)).toBeLessThan(0.001)
          resumedWall = monotonicNs() / 1e6
          rp.clock.resume()
        }, 250)
      }
    })
    const t0 = monotonicNs() / 1e6
    const s = await rp.done
    const wall = monotonicNs() / 1e6 - t0
    bus.close()
    expect(s.messages).toBe(21)
    for (const x of seen) {
      expect(x.clockMs).toBeGreaterThanOrEqual(x.atMs - 0.01)
      expect(x.clockMs).toBeLessThanOrEqual(x.atMs + SLACK_MS)
    }
    // The pause added its 250 ms: 400 ms recorded took at least 650 ms of wall time.
    expect(resumedWall).toBeGreaterThan(0)
    expect(wall).toBeGreaterThanOrEqual(640)
    expect(rp.clock.nowMs()).toBeGreaterThan(Number(T0 / MS))
  })

  it('seeks: the next message is the first at or after the new time', async () => {
    const path = join(dir, 'seek.mcap')
    await writeFile(path, specs())
    const bus = createBus({ name: 'replay-seek' })
    const a = bus.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec })
    const rp = await replayFile({ bus, path, rate: 1, topics: ['a'] })
    const seen: number[] = []
    a.subscribe((v) => {
      const atMs = v[1] | (v[2] << 8)
      seen.push(atMs)
      if (atMs === 40) rp.seek(0.3)
    })
    await rp.done
    bus.close()
    expect(seen).toEqual([0, 20, 40, 300, 320, 340, 360, 380, 400])
  })

  it('publishes its clock on /onbus/clock; a module on another bus follows it', async () => {
    const path = join(dir, 'follow.mcap')
    await writeFile(path, specs())
    const [ta, tb] = createLoopbackTransportPair()
    const player = createBus({ name: 'player' })
    const module = createBus({ name: 'module' })
    player.addTransport(ta)
    module.addTransport(tb)
    const clock = followClock(module)
    const a = module.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec })
    const diffs: number[] = []
    a.subscribe((v) => {
      const atMs = v[1] | (v[2] << 8)
      if (clock.synced) diffs.push(Number(clock.now()! - T0) / 1e6 - atMs)
    })
    const rp = await replayFile({ bus: player, path, rate: 1, topics: ['a'] })
    await rp.done
    await new Promise((r) => setTimeout(r, 50))
    expect(clock.synced).toBe(true)
    expect(diffs.length).toBeGreaterThan(15)
    // The followed clock reads each message's recorded time when it arrives (extrapolated between samples).
    for (const d of diffs) {
      expect(d).toBeGreaterThanOrEqual(-1)
      expect(d).toBeLessThanOrEqual(SLACK_MS)
    }
    player.close()
    module.close()
  })

  it('round trip: what the recorder wrote comes back on the bus, bytes and order intact', async () => {
    const bus = createBus({ name: 'rt-src' })
    const t = bus.topic('rt/raw', { qos: qosProfiles.sensorData, codec: rawCodec })
    const j = bus.topic('rt/json', { qos: qosProfiles.reliable, codec: jsonCodec<{ i: number }>() })
    const path = join(dir, 'rt.mcap')
    const rec = await createRecorder({ bus, path })
    const sent: string[] = []
    for (let i = 0; i < 200; i++) {
      const b = new Uint8Array(64).fill(i & 0xff)
      t.publish(b)
      sent.push(`raw:${i & 0xff}`)
      if (i % 10 === 0) {
        j.publish({ i })
        sent.push(`json:${i}`)
      }
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 2))
    }
    await rec.close()
    bus.close()
    const bus2 = createBus({ name: 'rt-dst' })
    const got: string[] = []
    bus2.topic('rt/raw', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe((v) => void got.push(`raw:${v[0]}`))
    // Not declared here: replay declares it from the channel metadata (json codec → decoded objects).
    const rp = await replayFile({ bus: bus2, path, rate: 50 })
    bus2.topic<{ i: number }>('rt/json').subscribe((v) => void got.push(`json:${v.i}`))
    await rp.done
    bus2.close()
    expect(got).toEqual(sent)
  })

  it('sends a topic’s payloads onto UDP, received by an onbus UdpLink', async () => {
    const path = join(dir, 'udp.mcap')
    const all = specs()
    await writeFile(path, all)
    const rx = createUdpLink({ address: '127.0.0.1', port: 0 })
    const tx = createUdpLink({ address: '127.0.0.1', port: 0 })
    const got: number[][] = []
    rx.onBatch((batch) => {
      for (let i = 0; i < batch.length; i++) got.push([...batch.view(i)])
    })
    const rp = await replayFile({ path, rate: 10, outputs: [{ topic: 'a', udp: { link: tx, address: '127.0.0.1', port: rx.address().port } }] })
    await rp.done
    const want = all.filter((x) => x.topic === 'a').sort((x, y) => x.atMs - y.atMs).map((x) => [...x.payload])
    const deadline = Date.now() + 10_000
    while (got.length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    rx.close()
    tx.close()
    expect(got).toEqual(want)
  })
})
