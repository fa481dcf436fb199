/**
 * Planning module (its own process): subscribes to perception's obstacles
 * over the cross-process transport with a deadline, and reacts when
 * perception goes quiet (deadline missed) or dies (publisher lost). Prints one
 * line per second: frames received, input age (kernel receive time of the
 * newest LiDAR packet → now), and the decision.
 *
 *   node dist/examples/perception-planning/planning.js [--dir /tmp/onbus-demo]
 */
import { parseArgs } from 'node:util'
import { createBus, createIpcTransport, jsonCodec, now, qosProfiles } from '../../lib/index.js'
import type { Obstacles } from './types.js'

const { values } = parseArgs({ options: { dir: { type: 'string' } } })
const bus = createBus({ name: 'planning' })
const ipc = createIpcTransport(values.dir ? { dir: values.dir } : {})
bus.addTransport(ipc)
ipc.on('peer', (e) => console.log(`planning: peer process ${e.pid} joined`))
ipc.on('peer-lost', (e) => console.log(`planning: peer process ${e.pid} is gone`))

const obstacles = bus.topic('perception/obstacles', { qos: { ...qosProfiles.reliable, livelinessLeaseMs: 500, deadlineMs: 200 }, codec: jsonCodec<Obstacles>() })
let frames = 0
let lastAgeUs = NaN
let decision = 'waiting for perception'
const sub = obstacles.subscribe(
  (o) => {
    frames++
    if (o.newestRxNs !== null) lastAgeUs = Number(now('realtime') - BigInt(o.newestRxNs)) / 1000
    decision = o.packets === 0 ? 'HOLD (no LiDAR data)' : o.nearestM < 1 ? `SLOW (obstacle at ${o.nearestM.toFixed(1)} m)` : 'CRUISE'
  },
  { qos: { deadlineMs: 300 } },
)
// Perception offers a 200 ms deadline (it publishes every 100 ms); asking for
// more than a publisher offers would be reported as a QoS mismatch and the two
// would not be connected (docs/BUS.md, QoS rules).
sub.on('qos-mismatch', (e) => console.log('planning: QoS mismatch', e))
sub.on('deadline-missed', () => (decision = 'HOLD (perception late)'))
sub.on('publisher-lost', () => (decision = 'HOLD (perception lost)'))

const timer = setInterval(() => {
  console.log(`planning: ${String(frames).padStart(3)} frames/s, input age ${Number.isNaN(lastAgeUs) ? '-' : `${lastAgeUs.toFixed(0)} µs`}, decision: ${decision}`)
  frames = 0
}, 1000)

function stop(): void {
  clearInterval(timer)
  bus.close()
  ipc.close()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
