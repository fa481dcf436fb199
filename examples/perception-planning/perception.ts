/**
 * Perception module (its own process): LiDAR packets arrive on a UDP link,
 * feed a local bus topic in one line, and every 100 ms a (toy) obstacle
 * detector publishes a summary to the planning process over the
 * cross-process transport. The summary carries the kernel receive time of the
 * newest packet it used, so planning can tell how old its input is.
 *
 *   node dist/examples/perception-planning/perception.js --lidar-port 2368 [--dir /tmp/onbus-demo]
 */
import { parseArgs } from 'node:util'
import { createBus, createIpcTransport, createUdpLink, jsonCodec, qosProfiles, rawCodec } from '../../lib/index.js'
import type { Obstacles } from './types.js'

const { values } = parseArgs({ options: { 'lidar-port': { type: 'string', default: '2368' }, dir: { type: 'string' } } })

const bus = createBus({ name: 'perception' })
const ipc = createIpcTransport(values.dir ? { dir: values.dir } : {})
bus.addTransport(ipc)

// Sensor side: the link feeds an in-process topic (kernel rxTime on every packet).
const lidar = createUdpLink({ port: Number(values['lidar-port']), maxDatagramSize: 1280, rxSlots: 8192 })
const packets = bus.topic('lidar/packets', { qos: { ...qosProfiles.sensorData, depth: 64, deadlineMs: 200 }, codec: rawCodec })
lidar.publishTo(packets)
packets.on('deadline-missed', () => console.log('perception: no LiDAR packet for 200 ms'))

// Detector: a running minimum over the packets' bytes stands in for a real
// point-cloud step; what matters here is the data flow and its timing.
let count = 0
let nearest = 255
let newestRx: bigint | undefined
packets.subscribe((data, meta) => {
  count++
  for (let i = 100; i < data.length; i += 97) if (data[i] < nearest) nearest = data[i]
  newestRx = meta.rxTime ?? newestRx
})

// Output: reliable, with a liveliness lease, so planning notices if we die.
const obstacles = bus.topic('perception/obstacles', { qos: { ...qosProfiles.reliable, livelinessLeaseMs: 500, deadlineMs: 200 }, codec: jsonCodec<Obstacles>() })
const pub = obstacles.publisher({ name: 'perception' })
let frame = 0
const timer = setInterval(() => {
  pub.publish({ frame: frame++, packets: count, nearestM: nearest / 10, newestRxNs: newestRx?.toString() ?? null })
  count = 0
  nearest = 255
}, 100)

function stop(): void {
  clearInterval(timer)
  lidar.close()
  bus.close()
  ipc.close()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
