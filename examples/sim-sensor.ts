/**
 * A simulated LiDAR on loopback: fixed-size UDP packets at a steady rate,
 * each carrying a sequence number (bytes 0..3) and the send time (bytes 8..15,
 * CLOCK_REALTIME ns), like a Velodyne VLP-16 packet stream but faster.
 *
 *   node dist/examples/sim-sensor.js --port 2368 --rate 20000 --size 1206
 */
import { parseArgs } from 'node:util'
import { createUdpLink, now } from '../lib/index.js'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '2368' },
    address: { type: 'string', default: '127.0.0.1' },
    rate: { type: 'string', default: '20000' },
    size: { type: 'string', default: '1206' },
    seconds: { type: 'string', default: '0' },
  },
})
const port = Number(values.port)
const rate = Number(values.rate)
const size = Math.max(16, Number(values.size))
const seconds = Number(values.seconds)

const link = createUdpLink({ receive: false, sndBuf: 4 << 20 })
// A pool of packets reused round-robin: the sender allocates nothing per packet.
const pool = Array.from({ length: 1024 }, () => Buffer.alloc(size, 0xa5))
let seq = 0
const t0 = process.hrtime.bigint()
let sent = 0
const batch: Buffer[] = []

function tick(): void {
  const elapsedNs = process.hrtime.bigint() - t0
  if (seconds > 0 && elapsedNs > BigInt(seconds) * 1_000_000_000n) {
    link.close()
    return
  }
  const due = Math.floor((Number(elapsedNs) / 1e9) * rate) - sent
  if (due > 0) {
    batch.length = 0
    const stamp = now('realtime')
    for (let i = 0; i < Math.min(due, 1024); i++) {
      const p = pool[seq & 1023]
      p.writeUInt32LE(seq >>> 0, 0)
      p.writeBigInt64LE(stamp, 8)
      batch.push(p)
      seq++
    }
    link.sendBatch(batch, { port, address: values.address })
    sent += batch.length
  }
  // 1 ms pacing: packets leave in small bursts, as a real sensor's do, and the
  // simulator does not spin a core.
  setTimeout(tick, 1)
}
tick()
process.on('SIGTERM', () => {
  link.close()
  process.exit(0)
})
