// Paced UDP sender for tests: node paced-sender.mjs <port> <rate/s> <ms> <size> [tailDelayMs]
// Sends datagrams numbered from 0 (uint32 LE in bytes 0..3) at a steady rate,
// then, after tailDelayMs, 10 more ("tail") so that the receiver's kernel
// drop counter (reported with each datagram) is current. Prints
// {"sent": n} on stdout when done; n counts only what the kernel accepted.
import { createUdpLink } from '../../dist/lib/index.js'

const [port, rate, ms, size, tailDelay = '0'] = process.argv.slice(2).map(Number)
const link = createUdpLink({ receive: false, sndBuf: 4 << 20 })
const perMs = rate / 1000
let seq = 0
const make = () => {
  const b = Buffer.alloc(size)
  b.writeUInt32LE(seq++, 0)
  return b
}
const t0 = process.hrtime.bigint()
let owed = 0
await new Promise((resolve) => {
  const tick = () => {
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e6
    if (elapsed >= ms) return resolve()
    const due = Math.floor(elapsed * perMs) - owed
    if (due > 0) {
      const batch = []
      for (let i = 0; i < due; i++) batch.push(make())
      link.sendBatch(batch, { port, address: '127.0.0.1' })
      owed += due
    }
    setImmediate(tick)
  }
  tick()
})
if (tailDelay > 0) {
  await new Promise((r) => setTimeout(r, tailDelay))
  const batch = []
  for (let i = 0; i < 10; i++) batch.push(make())
  link.sendBatch(batch, { port, address: '127.0.0.1' })
}
await new Promise((r) => setTimeout(r, 20))
const s = link.stats()
process.stdout.write(JSON.stringify({ sent: s.txDatagrams, queued: s.txQueued, errors: s.txErrors }) + '\n')
link.close()
