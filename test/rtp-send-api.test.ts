// RtpSender surface: argument errors before any socket exists, lifecycle
// (close idempotent, AbortSignal, send after close), IPv6, pacing spreading a
// frame over time, and the bounded pacing queue dropping whole frames.
import { describe, it, expect, afterEach } from 'vitest'
import { networkInterfaces } from 'node:os'
import { createUdpLink } from '../lib/links/udp/index.js'
import { createRtpSender } from '../lib/video/sender.js'
import { parseRtcp } from '../lib/video/rtcp.js'
import { hasIpv6Loopback } from './helpers/net.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { freePortPair, until } from './helpers/rtp-send.js'

const ifaceV4 = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)
const noIface = !ifaceV4
if (noIface) console.warn('skipping the route-source test: no non-loopback IPv4 interface')

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})

function idr(size: number): Buffer {
  const b = Buffer.alloc(4 + size, 0x5a)
  b.writeUInt32BE(1, 0)
  b[4] = 0x65
  return b
}

describe('RtpSender API', () => {
  it('rejects bad options with Node-shaped errors', () => {
    const base = { host: '127.0.0.1', port: 5004, codec: 'h264' as const }
    expect(() => createRtpSender({ ...base, host: 'localhost' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createRtpSender({ ...base, port: 0 })).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }))
    expect(() => createRtpSender({ ...base, codec: 'vp8' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createRtpSender({ ...base, mtu: 20 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => createRtpSender({ ...base, payloadType: 128 })).toThrow(RangeError)
    expect(() => createRtpSender({ ...base, pacing: { bitrate: -1 } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createRtpSender({ ...base, aggregate: 'some' as never })).toThrow(TypeError)
  })

  it('close is idempotent, sends BYE, and sendFrame afterwards throws; an AbortSignal closes it', async () => {
    const port = await freePortPair()
    const tx = createRtpSender({ host: '127.0.0.1', port, codec: 'h264' })
    tx.sendFrame(idr(100))
    expect(() => tx.sendFrame(Buffer.from([0x65, 1, 2, 3]))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(tx.sendFrame([Buffer.from([0x65, 1, 2, 3])])).toBe(true) // the same NAL unit as a list is fine
    let closes = 0
    tx.on('close', () => closes++)
    await new Promise<void>((r) => tx.close(r))
    await new Promise<void>((r) => tx.close(r))
    expect(closes).toBe(1)
    expect(() => tx.sendFrame(idr(10))).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }))

    const ac = new AbortController()
    const tx2 = createRtpSender({ host: '127.0.0.1', port, codec: 'h265', signal: ac.signal })
    const closed = new Promise((r) => tx2.once('close', r))
    ac.abort()
    await closed
  })

  it.skipIf(noIface)('to a non-loopback destination it binds the route\'s source address, not the wildcard', async () => {
    const tx = createRtpSender({ host: ifaceV4!.address, port: 5004, codec: 'h264' })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    expect(tx.address().address).toBe(ifaceV4!.address) // a local address routes via itself
  })

  it.skipIf(!hasIpv6Loopback)('sends RTP and RTCP over IPv6', async () => {
    const port = await (async () => {
      for (;;) {
        const a = createUdpLink({ address: '::1' })
        const p = a.address().port
        a.close()
        if (p % 2 === 0) return p
      }
    })()
    const rtp = createUdpLink({ address: '::1', port })
    const rtcp = createUdpLink({ address: '::1', port: port + 1 })
    closers.push(() => rtp.close(), () => rtcp.close())
    let packets = 0
    let srs = 0
    rtp.onBatch((b) => (packets += b.length))
    rtcp.onBatch((b) => {
      for (let i = 0; i < b.length; i++) if (parseRtcp(b.view(i)).packets.some((p) => p.type === 'sr')) srs++
    })
    const tx = createRtpSender({ host: '::1', port, codec: 'h264', mtu: 1200 })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    expect(tx.address().address).toBe('::1')
    tx.sendFrame(idr(10_000))
    await until(() => packets === tx.stats().packetsSent && srs > 0, 5000)
    expect(packets).toBe(tx.stats().packetsSent)
    expect(packets).toBe(Math.ceil(9_999 / (1200 - 14)))
    expect(srs).toBeGreaterThan(0)
  })

  it.skipIf(skipUnderEmulator('speed'))('pacing spreads a frame over spreadMs; a full pacing queue refuses whole frames', async () => {
    const port = await freePortPair()
    const rx = createUdpLink({ port })
    closers.push(() => rx.close())
    const at: number[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) at.push(performance.now())
    })
    const tx = createRtpSender({ host: '127.0.0.1', port, codec: 'h264', rtcp: false, pacing: { spreadMs: 100, maxQueuePackets: 50 } })
    closers.push(() => new Promise<void>((r) => tx.close(r)))
    expect(tx.sendFrame(idr(40 * 1386))).toBe(false) // 40 packets, queued for pacing
    expect(tx.sendFrame(idr(40 * 1386))).toBe(false) // 80 queued
    expect(tx.sendFrame(idr(100))).toBe(false) // beyond maxQueuePackets: refused whole
    expect(tx.stats().framesDropped).toBe(1)
    await until(() => at.length === 80, 10_000)
    expect(at.length).toBe(80)
    // Two frames of 100 ms each, back to back: the last packet no earlier than ~190 ms after the first.
    expect(at[79] - at[0]).toBeGreaterThanOrEqual(180)
    expect(tx.stats().framesSent).toBe(2)
  })
})
