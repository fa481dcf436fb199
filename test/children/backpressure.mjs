// Runs inside a private network namespace whose loopback is shaped by a tbf
// qdisc (set up by the test), so the sender's kernel buffer really fills and
// sendmmsg returns EAGAIN part-way through a batch.
import { createUdpLink } from '../../dist/lib/index.js'

const N = Number(process.argv[2] ?? 300)
const rx = createUdpLink({ rcvBuf: 4 << 20 })
const tx = createUdpLink({ sndBuf: 4096, receive: false })
const seqs = []
rx.onBatch((b) => {
  for (let i = 0; i < b.length; i++) seqs.push(b.data[b.offset(i)] | (b.data[b.offset(i) + 1] << 8))
})
const batch = Array.from({ length: N }, (_, i) => {
  const d = Buffer.alloc(1000, 0x55)
  d.writeUInt16LE(i, 0)
  return d
})
let drains = 0
tx.on('drain', () => drains++)
const sync = tx.sendBatch(batch, { port: rx.address().port })
const queuedAfterCall = tx.stats().txQueued
await new Promise((resolve) => {
  const t0 = Date.now()
  const check = () => (seqs.length >= N || Date.now() - t0 > 10000 ? resolve() : setTimeout(check, 10))
  check()
})
const s = tx.stats()
console.log(JSON.stringify({ sync, queuedAfterCall, drains, received: seqs.length, inOrder: seqs.every((v, i) => v === i), eagain: s.txEagain, txDatagrams: s.txDatagrams, txQueued: s.txQueued }))
rx.close()
tx.close()
