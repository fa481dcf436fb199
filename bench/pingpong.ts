/**
 * UDP ping-pong peer for the benchmark, onbus or Node `dgram`.
 *
 *   node dist/bench/pingpong.js --role echo --kind onbus|dgram [--busy-poll-us U]
 *       prints {"ready":true,"port":N}; sends every datagram back to its
 *       source until stdin closes.
 *   node dist/bench/pingpong.js --role client --kind onbus|dgram --port N
 *        [--size 64] [--seconds 2] [--warmup 0.2] [--busy-poll-us U]
 *       one datagram out, wait for the echo, repeat; prints
 *       {"n","p50","p99","max","lost"} (round trip in us, measured with
 *       performance.now() when the reply's handler runs).
 *
 * Each side is written the way a user of that API would: the onbus echo
 * replies from its batch handler with `link.send(view, port, address)`; the
 * dgram echo with `socket.send(msg, rinfo.port, rinfo.address)`. Clients are
 * connected sockets.
 */
import dgram from 'node:dgram'
import { performance } from 'node:perf_hooks'
import { Samples, args, emit } from './common.js'

const opt = args()
const role = opt.role ?? 'client'
const kind = opt.kind ?? 'onbus'
const busyPollUs = Number(opt['busy-poll-us'] ?? 0)
const size = Number(opt.size ?? 64)
const seconds = Number(opt.seconds ?? 2)
const warmup = Number(opt.warmup ?? 0.2)
const peerPort = Number(opt.port ?? 0)

/** A transport reduced to what ping-pong needs. */
interface Peer {
  port: number
  onReply(fn: () => void): void
  send(): void
  close(): void
}

function quitOnStdinEnd(close: () => void): void {
  process.stdin.resume()
  process.stdin.on('end', () => {
    close()
    setTimeout(() => process.exit(0), 200).unref()
  })
}

async function echo(): Promise<void> {
  if (kind === 'dgram') {
    const sock = dgram.createSocket('udp4')
    sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address))
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
    quitOnStdinEnd(() => sock.close())
    emit({ ready: true, port: sock.address().port })
    return
  }
  const { createUdpLink } = await import('../lib/index.js')
  const link = createUdpLink({ address: '127.0.0.1', port: 0, busyPollUs })
  link.onBatch((b) => {
    for (let i = 0; i < b.length; i++) link.send(b.view(i), b.port(i), b.address(i))
  })
  quitOnStdinEnd(() => link.close())
  emit({ ready: true, port: link.address().port })
}

async function clientPeer(): Promise<Peer> {
  const buf = Buffer.alloc(size, 0x5a)
  if (kind === 'dgram') {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => sock.connect(peerPort, '127.0.0.1', resolve))
    return {
      port: sock.address().port,
      onReply: (fn) => sock.on('message', fn),
      send: () => sock.send(buf),
      close: () => sock.close(),
    }
  }
  const { createUdpLink } = await import('../lib/index.js')
  const link = createUdpLink({ address: '127.0.0.1', port: 0, busyPollUs, connect: { address: '127.0.0.1', port: peerPort } })
  return {
    port: link.address().port,
    onReply: (fn) => link.onBatch(fn),
    send: () => link.send(buf),
    close: () => link.close(),
  }
}

async function client(): Promise<void> {
  const peer = await clientPeer()
  const rtt = new Samples(1 << 22)
  let lost = 0
  let sentAt = 0
  const t0 = performance.now()
  const measureFrom = t0 + warmup * 1000
  const until = measureFrom + seconds * 1000
  let done = false
  const finish = () => {
    if (done) return
    done = true
    clearInterval(watchdog)
    peer.close()
    emit({ ...rtt.summary(), lost })
    setTimeout(() => process.exit(0), 200).unref()
  }
  peer.onReply(() => {
    const now = performance.now()
    if (sentAt >= measureFrom) rtt.add((now - sentAt) * 1e6)
    if (now >= until) return finish()
    sentAt = performance.now()
    peer.send()
  })
  // A datagram lost on loopback would stall the loop: resend after 1 s.
  const watchdog = setInterval(() => {
    const now = performance.now()
    if (now >= until + 1000) return finish()
    if (now - sentAt > 1000) {
      lost++
      sentAt = performance.now()
      peer.send()
    }
  }, 250)
  sentAt = performance.now()
  peer.send()
}

if (role === 'echo') await echo()
else if (role === 'client') await client()
else throw new RangeError(`unknown --role ${role}`)
