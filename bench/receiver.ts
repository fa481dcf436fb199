/**
 * One benchmark receiver, alone in its process so that `process.cpuUsage()`
 * is its whole cost (onbus's I/O thread included).
 *
 *   node dist/bench/receiver.js --kind batch|message|gro|dgram [--latency] [--rcvbuf BYTES]
 *
 *   batch    onbus `onBatch` (views over the ring, no allocation per datagram)
 *   message  onbus `'message'` events (one Buffer + info object per datagram)
 *   gro      onbus `onBatch` with `gro: true` (the kernel coalesces, onbus splits)
 *   dgram    Node's `dgram` socket, `'message'` events
 *
 * The handler does the same small work in every kind: count the datagram and
 * add its length. With `--latency` it also records sender-to-handler latency
 * (the sender's CLOCK_REALTIME stamp in payload bytes 0..7 against the clock
 * read when the handler runs) and, for onbus, kernel-to-handler latency.
 *
 * Protocol (JSON lines, the same as bench/native/udp_sink.c): prints
 * {"ready":true,"port":N}, then answers `reset` / `report` on stdin.
 */
import dgram from 'node:dgram'
import { performance } from 'node:perf_hooks'
import { RealtimeClock, Samples, args, emit, serveControl } from './common.js'

const opt = args()
const kind = opt.kind ?? 'batch'
const latency = opt.latency === 'true'
const rcvBuf = Number(opt.rcvbuf ?? 8 << 20)

let count = 0
let bytes = 0
let tFirst = 0
let tLast = 0
let cpu0 = process.cpuUsage()
const lat = new Samples(latency ? 1 << 21 : 1)
const k2h = new Samples(latency ? 1 << 21 : 1)
let kernelDrops0 = 0
let kernelDrops: () => number = () => 0
let clock: RealtimeClock | undefined
let close: () => void = () => {}
let port = 0

if (latency) {
  // The realtime clock comes from onbus's addon in every kind (dgram too);
  // it is read only at calibration, never in the handler.
  const { now } = await import('../lib/index.js')
  clock = new RealtimeClock(() => now('realtime'))
}

if (kind === 'dgram') {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: rcvBuf })
  if (latency) {
    const c = clock!
    sock.on('message', (msg: Buffer) => {
      const t = c.now()
      lat.add(t - c.stamp(msg.readUInt32LE(0), msg.readUInt32LE(4)))
      bytes += msg.length
      count++
    })
  } else {
    sock.on('message', (msg: Buffer) => {
      bytes += msg.length
      // The clock is read once per 256 datagrams: enough to time a run of a
      // million, without adding a call per datagram.
      if ((count++ & 255) === 0) {
        tLast = performance.now()
        if (tFirst === 0) tFirst = tLast
      }
    })
  }
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
  port = sock.address().port
  close = () => sock.close()
} else {
  const { createUdpLink } = await import('../lib/index.js')
  const link = createUdpLink({
    address: '127.0.0.1',
    port: 0,
    rcvBuf,
    rxSlots: 8192,
    maxDatagramSize: 2048,
    gro: kind === 'gro',
  })
  port = link.address().port
  kernelDrops = () => link.stats().kernelDrops
  close = () => link.close()
  if (kind === 'message') {
    if (latency) {
      const c = clock!
      link.on('message', (msg: Buffer, info: { rxTime: bigint | undefined }) => {
        const t = c.now()
        lat.add(t - c.stamp(msg.readUInt32LE(0), msg.readUInt32LE(4)))
        if (info.rxTime !== undefined) k2h.add(t - c.kernelNs(info.rxTime))
        bytes += msg.length
        count++
      })
    } else {
      link.on('message', (msg: Buffer) => {
        bytes += msg.length
        if ((count++ & 255) === 0) {
          tLast = performance.now()
          if (tFirst === 0) tFirst = tLast
        }
      })
    }
  } else if (kind === 'batch' || kind === 'gro') {
    if (latency) {
      const c = clock!
      link.onBatch((b) => {
        const t = c.now()
        const dv = b.dataView
        for (let i = 0; i < b.length; i++) {
          const off = b.offset(i)
          lat.add(t - c.stamp(dv.getUint32(off, true), dv.getUint32(off + 4, true)))
          if (b.hasRxTime(i)) k2h.add(t - c.kernel(b.rxTimeSec(i), b.rxTimeNsec(i)))
          bytes += b.len(i)
        }
        count += b.length
      })
    } else {
      link.onBatch((b) => {
        const n = b.length
        for (let i = 0; i < n; i++) bytes += b.len(i)
        count += n
        tLast = performance.now()
        if (tFirst === 0) tFirst = tLast
      })
    }
  } else {
    throw new RangeError(`unknown --kind ${kind}`)
  }
}

serveControl({
  reset() {
    count = 0
    bytes = 0
    tFirst = 0
    tLast = 0
    lat.clear()
    k2h.clear()
    kernelDrops0 = kernelDrops()
    clock?.calibrate()
    cpu0 = process.cpuUsage()
  },
  report() {
    const cpu = process.cpuUsage(cpu0)
    return {
      count,
      bytes,
      cpuSec: (cpu.user + cpu.system) / 1e6,
      activeSec: (tLast - tFirst) / 1000,
      kernelDrops: kernelDrops() - kernelDrops0,
      ...(latency ? { lat: lat.summary(), k2h: k2h.summary() } : {}),
    }
  },
  quit() {
    close()
    // Anything still queued must not keep the process alive.
    setTimeout(() => process.exit(0), 200).unref()
  },
})
emit({ ready: true, port })
