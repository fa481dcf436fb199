/**
 * In-process bus benchmark: publish → subscribe rate, time per message and
 * heap allocated per message, with Node's EventEmitter measured in the same
 * run as the baseline.
 *
 *   node dist/bench/bus-inprocess.js [--messages 10000000]
 *
 * Prints one JSON line per figure: { name, value, unit, baseline, ratio }.
 *
 * Allocation is measured exactly, not estimated from heap growth: with
 * `v8.GCProfiler` running, bytes allocated = heap used after − heap used
 * before + everything each garbage collection in between reclaimed.
 */
import { EventEmitter } from 'node:events'
import v8 from 'node:v8'
import { Builder } from 'flatbuffers'
import { createBus, qosProfiles, rawCodec, flatbuffersCodec, jsonCodec, type MessageMeta } from '../lib/bus/index.js'

const argIdx = process.argv.indexOf('--messages')
const N = argIdx > 0 ? Number(process.argv[argIdx + 1]) : 10_000_000

interface Run {
  ns: number
  bytesPerMsg: number
  gcs: number
}

/** Median of three runs of `measureOnce` (by time): a shared 2-core machine has outliers. */
function measure(n: number, loop: (n: number) => void): Run {
  const runs = [measureOnce(n, loop), measureOnce(n, loop), measureOnce(n, loop)].sort((a, b) => a.ns - b.ns)
  return runs[1]
}

/** Times `loop(n)` and counts what it allocated. */
function measureOnce(n: number, loop: (n: number) => void): Run {
  const prof = new v8.GCProfiler()
  prof.start()
  const h0 = process.memoryUsage().heapUsed
  const t0 = process.hrtime.bigint()
  loop(n)
  const t1 = process.hrtime.bigint()
  const h1 = process.memoryUsage().heapUsed
  const r = prof.stop()
  let reclaimed = 0
  for (const g of r.statistics) reclaimed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize
  return { ns: Number(t1 - t0) / n, bytesPerMsg: (h1 - h0 + reclaimed) / n, gcs: r.statistics.length }
}

function line(name: string, value: number, unit: string, baseline: number | null): void {
  const round = (x: number): number => (Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 1000) / 1000)
  console.log(
    JSON.stringify({ name, value: round(value), unit, baseline: baseline === null ? null : round(baseline), ratio: baseline ? round(value / baseline) : null }),
  )
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<void> {
  const payload = new Uint8Array(64)
  let sink = 0

  // Baseline: EventEmitter, one listener, the same (payload, meta) arguments.
  const ee = new EventEmitter()
  const eeMeta = { seq: 0, source: 'ee', rxTime: undefined, publishTime: 0.5 }
  ee.on('m', (d: Uint8Array, m: typeof eeMeta) => {
    sink = (sink + d.length + m.seq) | 0
  })
  const eeLoop = (n: number): void => {
    for (let i = 0; i < n; i++) {
      eeMeta.seq = i
      ee.emit('m', payload, eeMeta)
    }
  }

  // The bus: a volatile best-effort topic on the raw codec, one subscriber.
  const bus = createBus({ name: 'bench' })
  const topic = bus.topic('raw', { qos: { ...qosProfiles.sensorData }, codec: rawCodec })
  topic.subscribe((d: Uint8Array, m: MessageMeta) => {
    sink = (sink + d.length + m.seq) | 0
  })
  const pub = topic.publisher()
  const busLoop = (n: number): void => {
    for (let i = 0; i < n; i++) pub.publish(payload)
  }

  // Warm up both (JIT), then let the bus's one-second figures tick once so the
  // latency sampler has settled on its steady-state interval, as it would in
  // any process that has been running for a second.
  const warm = Math.min(N, 2_000_000)
  eeLoop(warm)
  busLoop(warm)
  await sleep(1100)
  busLoop(warm)
  await sleep(1100)

  const e = measure(N, eeLoop)
  const b = measure(N, busLoop)
  line('bus.inproc.raw.rate', 1e9 / b.ns, 'msg/s', 1e9 / e.ns)
  line('bus.inproc.raw.ns-per-msg', b.ns, 'ns', e.ns)
  line('bus.inproc.raw.alloc-per-msg', b.bytesPerMsg, 'B', e.bytesPerMsg)
  line('bus.inproc.raw.gcs', b.gcs, 'count', e.gcs)

  // Fan-out: four subscribers (time per publish, i.e. per four deliveries).
  const fan = bus.topic('fan', { qos: { ...qosProfiles.sensorData }, codec: rawCodec })
  for (let k = 0; k < 4; k++)
    fan.subscribe((d: Uint8Array, m: MessageMeta) => {
      sink = (sink + d.length + m.seq) | 0
    })
  const ee4 = new EventEmitter()
  for (let k = 0; k < 4; k++)
    ee4.on('m', (d: Uint8Array, m: typeof eeMeta) => {
      sink = (sink + d.length + m.seq) | 0
    })
  const fanPub = fan.publisher()
  const fanLoop = (n: number): void => {
    for (let i = 0; i < n; i++) fanPub.publish(payload)
  }
  const ee4Loop = (n: number): void => {
    for (let i = 0; i < n; i++) ee4.emit('m', payload, eeMeta)
  }
  const n4 = Math.max(1, Math.floor(N / 4))
  fanLoop(warm)
  ee4Loop(warm)
  await sleep(1100)
  fanLoop(warm)
  await sleep(1100)
  const e4 = measure(n4, ee4Loop)
  const b4 = measure(n4, fanLoop)
  line('bus.inproc.raw.4subs.ns-per-publish', b4.ns, 'ns', e4.ns)
  line('bus.inproc.raw.4subs.alloc-per-publish', b4.bytesPerMsg, 'B', e4.bytesPerMsg)

  // Async iterator on a reliable topic with back-pressure (allocates: one
  // promise and one result per message, by the iterator protocol).
  const rel = bus.topic('reliable', { qos: { ...qosProfiles.reliable, depth: 1024 }, codec: rawCodec })
  const relPub = rel.publisher()
  const nIt = Math.max(1, Math.floor(N / 10))
  const it = rel.subscribe()
  const consumer = (async () => {
    let got = 0
    for await (const m of it) {
      sink = (sink + m.data.length) | 0
      if (++got === nIt) break
    }
  })()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < nIt; i++) if (!relPub.publish(payload)) await relPub.publishAsync(payload)
  await consumer
  const itNs = Number(process.hrtime.bigint() - t0) / nIt
  line('bus.inproc.iterator.reliable.rate', 1e9 / itNs, 'msg/s', null)

  // Zero-copy read: three fields of a FlatBuffers message vs JSON.parse of the same.
  const builder = new Builder(256)
  const frame = builder.createString('map')
  builder.startObject(6)
  builder.addFieldFloat64(1, 12.5, 0)
  builder.addFieldFloat64(2, -3.25, 0)
  builder.addFieldFloat64(3, 40, 0)
  builder.addFieldFloat32(4, 1.5, 0)
  builder.addFieldOffset(5, frame, 0)
  builder.finish(builder.endObject())
  const fbBytes = builder.asUint8Array().slice()
  interface PoseLike {
    bb: import('flatbuffers').ByteBuffer | null
    bb_pos: number
  }
  const fb = flatbuffersCodec<PoseLike>('bench.Pose', (bb) => ({ bb, bb_pos: bb.readInt32(bb.position()) + bb.position() }))
  const fbRead = (p: PoseLike): number => {
    const bb = p.bb!
    const x = bb.__offset(p.bb_pos, 6)
    const y = bb.__offset(p.bb_pos, 8)
    const z = bb.__offset(p.bb_pos, 10)
    return bb.readFloat64(p.bb_pos + x) + bb.readFloat64(p.bb_pos + y) + bb.readFloat64(p.bb_pos + z)
  }
  const js = jsonCodec<{ x: number; y: number; z: number; yaw: number; frame: string }>()
  const jsBytes = js.encode({ x: 12.5, y: -3.25, z: 40, yaw: 1.5, frame: 'map' })
  const nc = Math.max(1, Math.floor(N / 10))
  const fbLoop = (n: number): void => {
    for (let i = 0; i < n; i++) sink = (sink + fbRead(fb.decode(fbBytes))) | 0
  }
  const jsLoop = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const v = js.decode(jsBytes)
      sink = (sink + v.x + v.y + v.z) | 0
    }
  }
  fbLoop(nc / 10)
  jsLoop(nc / 10)
  const f = measure(nc, fbLoop)
  const j = measure(nc, jsLoop)
  line('codec.flatbuffers.decode-read3.ns', f.ns, 'ns', j.ns)
  line('codec.flatbuffers.decode-read3.alloc', f.bytesPerMsg, 'B', j.bytesPerMsg)

  bus.close()
  if (sink === 42) console.log('')
}

void main()
