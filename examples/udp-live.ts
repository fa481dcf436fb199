/**
 * The main demo (`npm start`): a simulated LiDAR streams UDP on loopback from
 * its own process, and an onbus receiver prints live figures once a second:
 * datagrams/s, kernel-to-handler latency p50/p99 (kernel receive timestamp →
 * the moment the batch handler runs), sender-to-handler latency, and drops
 * (kernel and onbus).
 *
 *   npm start                      # 20,000 packets/s of 1206 B, forever
 *   npm start -- --rate 50000 --size 64 --seconds 10
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createUdpLink, nowPair } from '../lib/index.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '20000' },
    size: { type: 'string', default: '1206' },
    seconds: { type: 'string', default: '0' },
  },
})
const seconds = Number(values.seconds)

const link = createUdpLink({ port: 0, rcvBuf: 8 << 20, maxDatagramSize: 2048, rxSlots: 8192 })
const port = link.address().port

// Fixed histograms in microseconds (0..9999 µs, last bucket = overflow):
// percentiles without allocating per datagram.
const BUCKETS = 10_000
const kernelHist = new Uint32Array(BUCKETS)
const senderHist = new Uint32Array(BUCKETS)
let count = 0
let lastSeq = -1
let gaps = 0
const clock = new Float64Array(2)

link.onBatch((b) => {
  nowPair('realtime', clock)
  const nowSec = clock[0]
  const nowNsec = clock[1]
  const dv = b.dataView
  for (let i = 0; i < b.length; i++) {
    const us = ((nowSec - b.rxTimeSec(i)) * 1e9 + (nowNsec - b.rxTimeNsec(i))) / 1000
    kernelHist[Math.min(BUCKETS - 1, Math.max(0, us | 0))]++
    const off = b.offset(i)
    const seq = dv.getUint32(off, true)
    if (lastSeq >= 0 && seq > lastSeq + 1) gaps += seq - lastSeq - 1
    lastSeq = seq
    // Sender clock in bytes 8..15 (ns, little-endian), read as two halves to
    // stay in doubles (no bigint per datagram).
    const sentNs = dv.getUint32(off + 12, true) * 4294967296 + dv.getUint32(off + 8, true)
    const sus = (nowSec * 1e9 + nowNsec - sentNs) / 1000
    senderHist[Math.min(BUCKETS - 1, Math.max(0, sus | 0))]++
  }
  count += b.length
})

function pct(h: Uint32Array, total: number, p: number): string {
  if (total === 0) return '-'
  const target = Math.ceil(total * p)
  let acc = 0
  for (let i = 0; i < h.length; i++) {
    acc += h[i]
    if (acc >= target) return i === h.length - 1 ? `>${i}` : String(i)
  }
  return '-'
}

const sensor = fork(fileURLToPath(new URL('./sim-sensor.js', import.meta.url)), ['--port', String(port), '--rate', String(values.rate), '--size', String(values.size)], {
  stdio: 'inherit',
})
console.log(`onbus receiver on 127.0.0.1:${port}; simulated LiDAR pid ${sensor.pid} sending ${values.rate} packets/s of ${values.size} B`)
console.log('   datagrams/s   kernel→handler p50/p99 µs   sender→handler p50/p99 µs   kernel drops   onbus drops   seq gaps')

let ticks = 0
const timer = setInterval(() => {
  const s = link.stats()
  const line = [
    String(count).padStart(13),
    `${pct(kernelHist, count, 0.5)}/${pct(kernelHist, count, 0.99)}`.padStart(27),
    `${pct(senderHist, count, 0.5)}/${pct(senderHist, count, 0.99)}`.padStart(28),
    String(s.kernelDrops).padStart(14),
    String(s.onbusDrops).padStart(13),
    String(gaps).padStart(10),
  ].join('')
  console.log(line)
  count = 0
  kernelHist.fill(0)
  senderHist.fill(0)
  if (seconds > 0 && ++ticks >= seconds) stop()
}, 1000)

function stop(): void {
  clearInterval(timer)
  sensor.kill('SIGTERM')
  link.close()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
