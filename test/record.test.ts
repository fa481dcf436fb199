/**
 * The recorder writes MCAP that @mcap/core's readers read back completely:
 * every message (bytes, sequence, log and publish time), channel, schema and
 * the statistics; compressed and not; MAVLink schemas embedded; drops counted
 * and written into the metadata when the queue is forced tiny; link-fed
 * topics carry the kernel receive stamp as log_time.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { McapIndexedReader, McapStreamReader, type McapTypes } from '@mcap/core'
import { readFile } from 'node:fs/promises'
import { createBus, jsonCodec, qosProfiles, rawCodec, type Codec } from '../lib/bus/index.js'
import { createRecorder } from '../lib/record/index.js'
import { decompressHandlers, FileReadable } from '../lib/record/io.js'
import { MAVLINK_SCHEMA_ENCODING } from '../lib/record/schema.js'
import { MavlinkEncoder, Attitude, Heartbeat } from '../lib/mavlink/index.js'
import { createUdpLink } from '../lib/links/index.js'
import { now } from '../lib/time.js'
import { skipUnderEmulator } from './helpers/emulator.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onbus-rec-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

const mavCodec: Codec<Uint8Array> = { name: 'mavlink', encode: (v) => v, decode: (b) => b, byteLength: (v) => v.byteLength }

async function readIndexed(path: string) {
  const readable = await FileReadable.open(path)
  const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
  const msgs: McapTypes.Message[] = []
  for await (const m of reader.readMessages()) msgs.push(m)
  const meta: McapTypes.Metadata[] = []
  for await (const m of reader.readMetadata()) meta.push(m)
  await readable.close()
  return { reader, msgs, meta }
}

async function readStream(path: string) {
  const r = new McapStreamReader({ decompressHandlers: await decompressHandlers() })
  r.append(await readFile(path))
  const recs: McapTypes.TypedMcapRecord[] = []
  for (let rec; (rec = r.nextRecord()); ) recs.push(rec)
  return { recs, done: r.done() }
}

interface Sent {
  topic: string
  data: Uint8Array
  seq: number
}

async function recordSample(compression: 'zstd' | 'none') {
  const bus = createBus({ name: 'rec-test' })
  const raw = bus.topic('lidar/raw', { qos: qosProfiles.sensorData, codec: rawCodec })
  const status = bus.topic('mission/status', { qos: qosProfiles.reliable, codec: jsonCodec<{ phase: string; n: number }>() })
  const mav = bus.topic('mavlink/rx', { qos: qosProfiles.sensorData, codec: mavCodec })
  const path = join(dir, `sample-${compression}.mcap`)
  // Small chunks so that the file has many of them.
  const rec = await createRecorder({ bus, path, compression, chunkSize: 16 * 1024 })
  const sent: Sent[] = []
  const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
  const rawPub = raw.publisher({ name: 'lidar' })
  const stPub = status.publisher({ name: 'mission' })
  const mavPub = mav.publisher({ name: 'fc' })
  for (let i = 0; i < 600; i++) {
    const b = new Uint8Array(100 + (i % 300))
    for (let k = 0; k < b.length; k++) b[k] = (i * 31 + k) & 0xff
    rawPub.publish(b)
    sent.push({ topic: 'lidar/raw', data: b.slice(), seq: i + 1 })
    if (i % 3 === 0) {
      const v = { phase: `p${i}`, n: i }
      stPub.publish(v)
      sent.push({ topic: 'mission/status', data: new TextEncoder().encode(JSON.stringify(v)), seq: i / 3 + 1 })
    }
    if (i % 2 === 0) {
      const f =
        i % 4 === 0
          ? enc.encode(Attitude, { time_boot_ms: i, roll: 0.1, pitch: -0.2, yaw: 1.5, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
          : enc.encode(Heartbeat, { type: 2, autopilot: 3, base_mode: 0, custom_mode: i, system_status: 4 })
      const frame = f.slice()
      mavPub.publish(frame)
      sent.push({ topic: 'mavlink/rx', data: frame.slice(), seq: i / 2 + 1 })
    }
    if (i % 50 === 0) await new Promise((r) => setImmediate(r))
  }
  const summary = await rec.close()
  bus.close()
  return { path, sent, summary }
}

describe('recorder → @mcap/core readers', () => {
  for (const compression of ['zstd', 'none'] as const) {
    it(`every message, channel, schema and timestamp reads back (${compression})`, async () => {
      const t0 = now('realtime')
      const { path, sent, summary } = await recordSample(compression)
      const t1 = now('realtime')
      expect(summary.dropped).toBe(0)
      expect(summary.messages).toBe(sent.length)
      expect(summary.fileBytes).toBe(statSync(path).size)

      const { reader, msgs, meta } = await readIndexed(path)
      expect(reader.footer).toBeDefined()
      expect(reader.chunkIndexes.length).toBeGreaterThan(3)
      for (const c of reader.chunkIndexes) expect(c.compression).toBe(compression === 'zstd' ? 'zstd' : '')
      // Statistics match what was written.
      expect(reader.statistics).toBeDefined()
      const stats = reader.statistics!
      expect(Number(stats.messageCount)).toBe(sent.length)
      expect(stats.chunkCount).toBe(reader.chunkIndexes.length)
      expect(stats.channelCount).toBe(reader.channelsById.size)
      expect(stats.schemaCount).toBe(reader.schemasById.size)
      let sum = 0n
      for (const n of stats.channelMessageCounts.values()) sum += n
      expect(sum).toBe(stats.messageCount)

      // Channels: one for each plain topic, one per MAVLink message id.
      const chans = [...reader.channelsById.values()]
      const byTopic = (t: string) => chans.filter((c) => c.topic === t)
      expect(byTopic('lidar/raw')).toHaveLength(1)
      expect(byTopic('lidar/raw')[0].messageEncoding).toBe('raw')
      expect(byTopic('lidar/raw')[0].schemaId).toBe(0)
      expect(byTopic('lidar/raw')[0].metadata.get('onbus.codec')).toBe('raw')
      expect(JSON.parse(byTopic('lidar/raw')[0].metadata.get('onbus.qos')!).reliability).toBe('best-effort')
      expect(byTopic('mission/status')[0].messageEncoding).toBe('json')
      const mavChans = byTopic('mavlink/rx')
      expect(mavChans.map((c) => c.metadata.get('mavlink.name')).sort()).toEqual(['ATTITUDE', 'HEARTBEAT'])
      for (const c of mavChans) {
        expect(c.messageEncoding).toBe('mavlink')
        const schema = reader.schemasById.get(c.schemaId)!
        expect(schema.encoding).toBe(MAVLINK_SCHEMA_ENCODING)
        const desc = JSON.parse(new TextDecoder().decode(schema.data))
        expect(schema.name).toBe(`mavlink.ardupilotmega.${desc.name}`)
        expect(String(desc.id)).toBe(c.metadata.get('mavlink.msgid'))
        if (desc.name === 'ATTITUDE') {
          expect(desc.id).toBe(30)
          expect(desc.crcExtra).toBe(39)
          expect(desc.fields.map((f: { name: string }) => f.name)).toEqual(['time_boot_ms', 'roll', 'pitch', 'yaw', 'rollspeed', 'pitchspeed', 'yawspeed'])
          expect(desc.fields[1]).toMatchObject({ type: 'float', offset: 4, arrayLength: 0 })
        } else {
          expect(desc.id).toBe(0)
          expect(desc.enums.MAV_TYPE.MAV_TYPE_QUADROTOR).toBe(2)
        }
      }

      // Messages: every one, in publish order per topic, bytes and sequence intact.
      expect(msgs).toHaveLength(sent.length)
      const got = new Map<string, McapTypes.Message[]>()
      for (const m of msgs) {
        const t = reader.channelsById.get(m.channelId)!.topic
        if (!got.has(t)) got.set(t, [])
        got.get(t)!.push(m)
      }
      for (const topic of ['lidar/raw', 'mission/status', 'mavlink/rx']) {
        const want = sent.filter((s) => s.topic === topic)
        const have = (got.get(topic) ?? []).sort((a, b) => a.sequence - b.sequence)
        expect(have).toHaveLength(want.length)
        for (let i = 0; i < want.length; i++) {
          expect(have[i].sequence).toBe(want[i].seq)
          expect(Buffer.from(have[i].data).equals(Buffer.from(want[i].data))).toBe(true)
          // Not link-fed: log_time is the publish stamp on the realtime axis.
          expect(have[i].logTime).toBe(have[i].publishTime)
          expect(have[i].logTime >= t0 - 1_000_000n && have[i].logTime <= t1 + 1_000_000n).toBe(true)
        }
        // Publish order per topic is log_time order.
        for (let i = 1; i < have.length; i++) expect(have[i].logTime >= have[i - 1].logTime).toBe(true)
      }
      // Indexed reader yields in log_time order overall.
      for (let i = 1; i < msgs.length; i++) expect(msgs[i].logTime >= msgs[i - 1].logTime).toBe(true)

      // The recorder's metadata record.
      const md = meta.find((m) => m.name === 'onbus.recorder')!
      expect(md).toBeDefined()
      expect(md.metadata.get('dropped')).toBe('0')
      expect(md.metadata.get('messages')).toBe(String(sent.length))
      expect(md.metadata.get('received.lidar/raw')).toBe('600')
      expect(Date.parse(md.metadata.get('stop.time')!)).toBeGreaterThanOrEqual(Date.parse(md.metadata.get('start.time')!))

      // The streaming reader reads the same file to its footer.
      const { recs, done } = await readStream(path)
      expect(done).toBe(true)
      expect(recs.filter((r) => r.type === 'Message')).toHaveLength(sent.length)
    })
  }

  it('a queue forced tiny drops, counts per topic and writes the counts into the metadata', async () => {
    const bus = createBus({ name: 'rec-drop' })
    const raw = bus.topic('cam/frames', { qos: qosProfiles.sensorData, codec: rawCodec })
    const imu = bus.topic('imu', { qos: qosProfiles.sensorData, codec: rawCodec })
    const path = join(dir, 'drops.mcap')
    const rec = await createRecorder({ bus, path, queueMessages: 8, queueBytes: 64 * 1024 })
    const events: { topic: string; count: number; total: number }[] = []
    rec.on('drop', (e) => events.push(e))
    // A burst within one turn of the event loop: the pump cannot run, the queue fills.
    const frame = new Uint8Array(10_000)
    for (let i = 0; i < 100; i++) raw.publish(frame)
    for (let i = 0; i < 50; i++) imu.publish(new Uint8Array(64))
    await new Promise((r) => setImmediate(r))
    const s = await rec.close()
    bus.close()
    const cam = s.topics.find((t) => t.topic === 'cam/frames')!
    const imuT = s.topics.find((t) => t.topic === 'imu')!
    expect(cam.received).toBe(100)
    expect(cam.written + cam.dropped).toBe(100)
    expect(cam.dropped).toBeGreaterThan(80) // 64 KiB holds 6 frames
    expect(imuT.received).toBe(50)
    expect(imuT.dropped).toBe(50 - imuT.written)
    expect(imuT.dropped).toBeGreaterThan(0)
    expect(s.dropped).toBe(cam.dropped + imuT.dropped)
    // One coalesced event per topic for the burst.
    expect(events.filter((e) => e.topic === 'cam/frames').reduce((a, e) => a + e.count, 0)).toBe(cam.dropped)
    const { msgs, meta } = await readIndexed(path)
    expect(msgs).toHaveLength(s.messages)
    const md = meta.find((m) => m.name === 'onbus.recorder')!.metadata
    expect(md.get('dropped.cam/frames')).toBe(String(cam.dropped))
    expect(md.get('dropped.imu')).toBe(String(imuT.dropped))
    expect(md.get('dropped')).toBe(String(s.dropped))
  })

  it('a file that cannot be created is an error with its code, and nothing is left subscribed', async () => {
    const bus = createBus({ name: 'rec-bad' })
    const t = bus.topic('x', { qos: qosProfiles.sensorData, codec: rawCodec })
    await expect(createRecorder({ bus, path: join(dir, 'no/such/dir/f.mcap') })).rejects.toMatchObject({ code: 'ENOENT' })
    expect(t.info().subscribers).toHaveLength(0)
    await expect(createRecorder({ bus, path: join(dir, 'f.mcap'), compression: 'lz5' as 'zstd' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    bus.close()
  })

  it('closes a chunk that stays open flushMs: a quiet recording is readable, indexed, while it runs', async () => {
    const bus = createBus({ name: 'rec-flush' })
    const t = bus.topic('telemetry', { qos: qosProfiles.sensorData, codec: rawCodec })
    const path = join(dir, 'flush.mcap')
    const rec = await createRecorder({ bus, path, flushMs: 100 })
    const wait = async (cond: () => boolean) => {
      const deadline = Date.now() + 10_000
      while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    }
    for (let i = 0; i < 5; i++) t.publish(new Uint8Array([i]))
    await wait(() => rec.stats().flushes >= 1)
    expect(rec.stats().flushes).toBeGreaterThanOrEqual(1)
    // While the recorder runs: a complete, indexed file with those 5 messages.
    {
      const { reader, msgs } = await readIndexed(path)
      expect(msgs.map((m) => m.data[0])).toEqual([0, 1, 2, 3, 4])
      expect(Number(reader.statistics!.messageCount)).toBe(5)
    }
    for (let i = 5; i < 8; i++) t.publish(new Uint8Array([i]))
    await wait(() => rec.stats().flushes >= 2)
    {
      const { msgs } = await readIndexed(path)
      expect(msgs.map((m) => m.data[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    }
    for (let i = 8; i < 10; i++) t.publish(new Uint8Array([i]))
    const s = await rec.close()
    bus.close()
    expect(s.messages).toBe(10)
    const { reader, msgs, meta } = await readIndexed(path)
    expect(msgs.map((m) => m.data[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    // Statistics and indexes carry over the reopenings.
    expect(Number(reader.statistics!.messageCount)).toBe(10)
    expect(reader.chunkIndexes.length).toBe(reader.statistics!.chunkCount)
    expect(reader.chunkIndexes.length).toBeGreaterThanOrEqual(3)
    expect(reader.channelsById.size).toBe(1)
    expect(meta.filter((m) => m.name === 'onbus.recorder')).toHaveLength(1)
    const { recs, done } = await readStream(path)
    expect(done).toBe(true)
    expect(recs.filter((r) => r.type === 'Message')).toHaveLength(10)
  })

  it('records only the listed topics, including one declared after the start', async () => {
    const bus = createBus({ name: 'rec-filter' })
    const a = bus.topic('a', { qos: qosProfiles.sensorData, codec: rawCodec })
    const b = bus.topic('b', { qos: qosProfiles.sensorData, codec: rawCodec })
    const path = join(dir, 'filter.mcap')
    const rec = await createRecorder({ bus, path, topics: ['a', 'late'] })
    a.publish(new Uint8Array([1]))
    b.publish(new Uint8Array([2]))
    const late = bus.topic('late', { qos: qosProfiles.sensorData, codec: rawCodec })
    late.publish(new Uint8Array([3]))
    const s = await rec.close()
    bus.close()
    expect(s.topics.map((t) => t.topic).sort()).toEqual(['a', 'late'])
    const { reader, msgs } = await readIndexed(path)
    expect(msgs.map((m) => reader.channelsById.get(m.channelId)!.topic).sort()).toEqual(['a', 'late'])
  })

  it.skipIf(skipUnderEmulator('timestamping'))('a link-fed topic is logged at the kernel receive time; publish_time is the bus stamp after it', async () => {
    const bus = createBus({ name: 'rec-link' })
    const topic = bus.topic('udp/in', { qos: qosProfiles.sensorData, codec: rawCodec })
    const rx = createUdpLink({ address: '127.0.0.1', port: 0 })
    const tx = createUdpLink({ address: '127.0.0.1', port: 0 })
    topic.attach(rx)
    const rxTimes: bigint[] = []
    topic.subscribe((_v, meta) => {
      if (meta.rxTime !== undefined) rxTimes.push(meta.rxTime)
    })
    const path = join(dir, 'link.mcap')
    const rec = await createRecorder({ bus, path })
    const port = rx.address().port
    for (let i = 0; i < 20; i++) tx.send(new Uint8Array([i, 1, 2, 3]), port, '127.0.0.1')
    const deadline = Date.now() + 10_000
    while (rec.stats().messages + rec.stats().queued < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    const s = await rec.close()
    rx.close()
    tx.close()
    bus.close()
    expect(s.messages).toBe(20)
    const { msgs } = await readIndexed(path)
    expect(msgs).toHaveLength(20)
    const logTimes = msgs.map((m) => m.logTime).sort((x, y) => (x < y ? -1 : 1))
    expect(logTimes).toEqual([...rxTimes].sort((x, y) => (x < y ? -1 : 1)))
    for (const m of msgs) expect(m.publishTime >= m.logTime - 1_000_000n).toBe(true)
  })
})
