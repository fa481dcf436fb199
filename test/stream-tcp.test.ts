import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import * as net from 'node:net'
import { createTcpLink, createTcpServer, type StreamLink, type StreamServer } from '../lib/index.js'
import { emulatorLimit } from './helpers/emulator.js'

const open: (StreamLink | StreamServer | net.Server)[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
function track<T extends StreamLink | StreamServer | net.Server>(x: T): T {
  open.push(x)
  return x
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('TCP links', () => {
  it('connects, echoes both ways, and stamps received chunks with the kernel clock', async () => {
    const server = track(createTcpServer({ port: 0 }, (link) => link.on('data', (d) => link.write(d))))
    const c = track(createTcpLink({ port: server.port }))
    await once(c, 'connect')
    expect(c.state).toBe('connected')
    expect(c.remotePort).toBe(server.port)
    expect(c.remoteAddress).toBe('127.0.0.1')
    const before = process.hrtime.bigint()
    c.write('hello')
    const [d, first] = await once(c, 'data')
    expect(d.toString()).toBe('hello')
    expect(first.rxClock).toBe('realtime')
    // The kernel switches receive stamping on lazily after the first socket in
    // the process asked for it: data of the first moments may carry none (the
    // stamp is then the I/O thread's wake-up time, flagged). Later data does.
    await sleep(50)
    c.write('again')
    const [, info] = await once(c, 'data')
    // TCP with SO_TIMESTAMPING gives a stamp per read (that of the newest segment in it).
    // qemu-user implements no SO_TIMESTAMPING: the wake-up stamp stands in, flagged.
    expect(info.kernelStamp).toBe(!emulatorLimit('timestamping'))
    const now = BigInt(Date.now()) * 1_000_000n
    expect(info.rxTime).toBeGreaterThan(now - 5_000_000_000n)
    expect(info.rxTime).toBeLessThanOrEqual(now + 1_000_000_000n)
    expect(process.hrtime.bigint()).toBeGreaterThan(before)
    if (!emulatorLimit('timestamping')) expect(c.stats().kernelStamps).toBeGreaterThan(0)
  })

  it('works over IPv6', async () => {
    let server: StreamServer
    try {
      server = track(createTcpServer({ host: '::1', port: 0 }, (link) => link.on('data', (d) => link.write(d))))
    } catch (err) {
      console.log('skipped: no IPv6 loopback here:', (err as Error).message)
      return
    }
    expect(server.address()).toMatchObject({ address: '::1', family: 'IPv6' })
    const c = track(createTcpLink({ host: '::1', port: server.port }))
    await once(c, 'connect')
    expect(c.remoteFamily).toBe('IPv6')
    c.write('six')
    const [d] = await once(c, 'data')
    expect(d.toString()).toBe('six')
  })

  it('moves 64 MiB intact through a small ring while the receiver stalls (reading pauses, TCP pushes back, nothing is lost)', async () => {
    const total = 64 << 20
    const src = randomBytes(1 << 20)
    const want = createHash('sha256')
    for (let i = 0; i < 64; i++) want.update(src)
    const got = createHash('sha256')
    let n = 0
    let stalled = false
    const done = new Promise<void>((resolve) => {
      track(
        createTcpServer({ port: 0, rxBufferSize: 64 * 1024 }, (link) => {
          link.onBatch((b) => {
            for (let i = 0; i < b.length; i++) {
              got.update(b.view(i))
              n += b.len(i)
            }
            if (!stalled && n > 8 << 20) {
              stalled = true
              const t = Date.now()
              while (Date.now() - t < 200) {
                // a JavaScript stall: the ring fills, reading pauses
              }
            }
            if (n >= total) resolve()
          })
        }),
      )
    })
    const server = open[open.length - 1] as StreamServer
    const c = track(createTcpLink({ port: server.port }))
    await once(c, 'connect')
    let falses = 0
    let drains = 0
    c.on('drain', () => drains++)
    for (let i = 0; i < 64; i++) {
      if (!c.write(src)) {
        falses++
        await once(c, 'drain')
      }
    }
    await done
    expect(n).toBe(total)
    expect(got.digest('hex')).toBe(want.digest('hex'))
    expect(falses).toBeGreaterThan(0)
    expect(drains).toBe(falses)
    const link = [...(server as unknown as { connections: Set<StreamLink> }).connections][0]
    expect(link.stats().rxPauses).toBeGreaterThan(0)
  })

  it('write() returns false above highWaterMark and drain follows; writes are gathered while corked', async () => {
    const server = track(createTcpServer({ port: 0 }))
    const peer = new Promise<StreamLink>((r) => server.once('connection', r))
    const c = track(createTcpLink({ port: server.port, highWaterMark: 1000, sndBuf: 4096 }))
    await once(c, 'connect')
    const s = await peer
    let rx = 0
    s.onBatch((b) => {
      for (let i = 0; i < b.length; i++) rx += b.len(i)
    })
    c.cork()
    for (let i = 0; i < 100; i++) c.write(Buffer.alloc(10, i))
    expect(c.writableLength).toBe(1000)
    expect(c.stats().txCalls).toBe(0)
    c.uncork()
    // 100 writes, gathered into one writev
    expect(c.stats().txCalls).toBe(1)
    expect(c.writableLength).toBe(0)
    // Fill the kernel: a write that cannot go out whole is queued, returns false, and drain follows.
    const big = Buffer.alloc(1 << 20)
    const ok = c.write(big)
    expect(ok).toBe(false)
    expect(c.writableNeedDrain).toBe(true)
    await once(c, 'drain')
    expect(c.writableLength).toBe(0)
    while (rx < 1000 + big.length) await sleep(5)
    expect(c.stats().txEagain).toBeGreaterThan(0)
  })

  it('write callbacks run in order once the kernel took each buffer', async () => {
    const server = track(createTcpServer({ port: 0 }))
    const c = track(createTcpLink({ port: server.port }))
    const order: number[] = []
    // Written before the connection exists: queued, sent on 'connect'.
    for (let i = 0; i < 5; i++) c.write(Buffer.from([i]), () => order.push(i))
    await once(c, 'connect')
    await sleep(20)
    expect(order).toEqual([0, 1, 2, 3, 4])
  })

  it('end() half-closes: the peer sees end, the link closes when both sides did', async () => {
    const server = track(createTcpServer({ port: 0 }))
    const peer = new Promise<StreamLink>((r) => server.once('connection', r))
    const c = track(createTcpLink({ port: server.port }))
    await once(c, 'connect')
    const s = await peer
    const chunks: Buffer[] = []
    s.on('data', (d) => chunks.push(d))
    c.end('bye')
    await once(s, 'end')
    expect(Buffer.concat(chunks).toString()).toBe('bye')
    s.end()
    await once(c, 'close')
    expect(c.closed).toBe(true)
    const err = await new Promise<Error | null>((r) => c.write('late', r))
    expect((err as Error & { code: string }).code).toBe('ERR_STREAM_WRITE_AFTER_END')
  })

  it('sets TCP_NODELAY (default on), keepalive and TCP_USER_TIMEOUT', async () => {
    const server = track(createTcpServer({ port: 0 }))
    const c = track(createTcpLink({ port: server.port, keepAlive: { idle: 5000, interval: 2000, count: 4 }, userTimeout: 3000 }))
    await once(c, 'connect')
    expect(c.getOption('noDelay')).toBe(1)
    expect(c.getOption('keepAlive')).toBe(1)
    expect(c.getOption('keepIdle')).toBe(5)
    expect(c.getOption('keepInterval')).toBe(2)
    expect(c.getOption('keepCount')).toBe(4)
    expect(c.getOption('userTimeout')).toBe(3000)
    c.setNoDelay(false).setUserTimeout(1500).setKeepAlive(true, 7000)
    expect(c.getOption('noDelay')).toBe(0)
    expect(c.getOption('userTimeout')).toBe(1500)
    expect(c.getOption('keepIdle')).toBe(7)
  })

  it('accepts a burst of connections in batches', async () => {
    const links: StreamLink[] = []
    const server = track(createTcpServer({ port: 0 }, (l) => links.push(l)))
    const clients = Array.from({ length: 50 }, () => track(createTcpLink({ port: server.port })))
    await Promise.all(clients.map((c) => once(c, 'connect')))
    while (links.length < 50) await sleep(5)
    expect(server.stats().accepted).toBe(50)
    expect(server.connectionCount).toBe(50)
    for (const l of links) l.close()
  })

  it('maxConnections: connections beyond it are closed at once', async () => {
    const server = track(createTcpServer({ port: 0, maxConnections: 1 }))
    const a = track(createTcpLink({ port: server.port }))
    await once(a, 'connect')
    await sleep(20)
    const b = track(createTcpLink({ port: server.port }))
    b.on('error', () => {})
    await once(b, 'connect')
    await once(b, 'close')
    expect(server.stats()).toMatchObject({ accepted: 1, rejected: 1, open: 1 })
  })
})
