import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { createTcpLink, createTcpServer, type StreamLink, type StreamServer, type ReconnectingInfo, type DisconnectInfo } from '../lib/index.js'
import { backoffDelay, parseReconnect } from '../lib/links/stream/backoff.js'

const open: (StreamLink | StreamServer)[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function freePort(): Promise<number> {
  const s = createTcpServer({ port: 0 })
  const p = s.port
  s.close()
  await once(s, 'close')
  return p
}

describe('backoff', () => {
  it('grows exponentially up to maxDelay; jitter keeps each delay in [d(1-j), d]', () => {
    const b = parseReconnect({ initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 })!
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(b, a, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect([1, 2, 3].map((a) => backoffDelay(b, a, () => 1))).toEqual([50, 100, 200])
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(b, 3)
      expect(d).toBeGreaterThanOrEqual(200)
      expect(d).toBeLessThanOrEqual(400)
    }
    expect(parseReconnect(false)).toBe(null)
    expect(parseReconnect(true)).toMatchObject({ initialDelay: 100, maxDelay: 10_000, factor: 2, jitter: 0.5, maxAttempts: Infinity })
  })
})

describe('client reconnection', () => {
  it('retries a refused peer with growing delays, then connects when it appears', async () => {
    const port = await freePort()
    const c = createTcpLink({ port, reconnect: { initialDelay: 20, maxDelay: 200, jitter: 0 } })
    open.push(c)
    const attempts: ReconnectingInfo[] = []
    c.on('reconnecting', (r) => attempts.push(r))
    while (attempts.length < 4) await sleep(5)
    expect(c.state).toBe('reconnecting')
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4])
    expect(attempts.map((a) => a.delay)).toEqual([20, 40, 80, 160])
    for (const a of attempts) expect(a.error).toMatchObject({ code: 'ECONNREFUSED', address: '127.0.0.1', port })
    const server = createTcpServer({ port }, (l) => l.on('data', (d) => l.write(d)))
    open.push(server)
    await once(c, 'connect')
    expect(c.state).toBe('connected')
    c.write('after reconnect')
    const [d] = await once(c, 'data')
    expect(d.toString()).toBe('after reconnect')
  })

  it('a lost connection emits disconnect with the reason, reconnects, and queued writes go to the new connection', async () => {
    const port = await freePort()
    const received: string[] = []
    let server = createTcpServer({ port }, (l) => l.on('data', (d) => received.push(d.toString())))
    const c = createTcpLink({ port, reconnect: { initialDelay: 50, jitter: 0.5 } })
    open.push(c)
    const events: string[] = []
    for (const e of ['connect', 'disconnect', 'reconnecting', 'end']) c.on(e, () => events.push(e))
    await once(c, 'connect')
    c.write('one')
    while (received.length < 1) await sleep(5)
    const dis = once(c, 'disconnect')
    server.close(undefined, true)
    const [info] = (await dis) as [DisconnectInfo]
    expect((info.reason as Error & { code: string }).code).toBe('ERR_ONBUS_PEER_CLOSED')
    // Written while disconnected: kept, sent once connected again.
    expect(c.write('two')).toBe(true)
    expect(c.writableLength).toBe(3)
    await sleep(100)
    server = createTcpServer({ port }, (l) => l.on('data', (d) => received.push(d.toString())))
    open.push(server)
    await once(c, 'connect')
    while (received.length < 2) await sleep(5)
    expect(received).toEqual(['one', 'two'])
    expect(events.slice(0, 4)).toEqual(['connect', 'end', 'disconnect', 'reconnecting'])
    expect(events[events.length - 1]).toBe('connect')
    expect(c.stats()).toMatchObject({ connects: 2, disconnects: 1 })
  })

  it('gives up after maxAttempts with the last error, then closes', async () => {
    const port = await freePort()
    const c = createTcpLink({ port, reconnect: { initialDelay: 5, maxAttempts: 3 } })
    open.push(c)
    let retries = 0
    c.on('reconnecting', () => retries++)
    const [err] = await once(c, 'error')
    expect(retries).toBe(3)
    expect(err).toMatchObject({ code: 'ECONNREFUSED', port })
    await once(c, 'close')
    expect(c.state).toBe('closed')
  })

  it('close() while waiting to retry stops the retries and lets the process go', async () => {
    const port = await freePort()
    const c = createTcpLink({ port, reconnect: { initialDelay: 50 } })
    await once(c, 'reconnecting')
    c.close()
    let more = 0
    c.on('reconnecting', () => more++)
    await sleep(150)
    expect(more).toBe(0)
    expect(c.state).toBe('closed')
  })
})
