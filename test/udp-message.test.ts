import { describe, it, expect } from 'vitest'
import { type UdpMessage } from '../lib/index.js'
import { emulatorLimit } from './helpers/emulator.js'
import { udpLinkFactory } from './helpers/links.js'

const link = udpLinkFactory()

describe('UDP convenience API', () => {
  it("emits 'message' with a Buffer copy and dgram-shaped info", async () => {
    const rx = link()
    const tx = link()
    const got = new Promise<[Buffer, UdpMessage['info']]>((resolve) => rx.once('message', (m, info) => resolve([m, info])))
    tx.send(Buffer.from('hello'), rx.address().port)
    const [msg, info] = await got
    expect(Buffer.isBuffer(msg)).toBe(true)
    expect(msg.toString()).toBe('hello')
    expect(info).toMatchObject({ address: '127.0.0.1', family: 'IPv4', port: tx.address().port, size: 5, truncated: false, rxClock: 'realtime' })
    // Under qemu-user (no SO_TIMESTAMPING) the link opens without stamps and says so.
    expect(typeof info.rxTime).toBe(rx.capabilities.rxTimestamps ? 'bigint' : 'undefined')
    if (!emulatorLimit('timestamping')) expect(rx.capabilities.rxTimestamps).toBe(true)
    // The Buffer is a copy: it outlives the ring slot.
    for (let i = 0; i < 10; i++) tx.send(Buffer.from('zzzzz'), rx.address().port)
    await new Promise((r) => setTimeout(r, 50))
    expect(msg.toString()).toBe('hello')
  })

  it('async iterator yields datagrams in order and ends on close', async () => {
    const rx = link()
    const tx = link()
    const out: string[] = []
    const done = (async () => {
      for await (const m of rx) {
        out.push(m.data.toString())
        if (out.length === 100) rx.close()
      }
    })()
    for (let i = 0; i < 100; i++) tx.send(Buffer.from(String(i)), rx.address().port)
    await done
    expect(out).toEqual(Array.from({ length: 100 }, (_, i) => String(i)))
  })

  it('a slow iterator overflowing its bound drops the oldest and counts it', async () => {
    const rx = link({ iteratorHighWaterMark: 10, rcvBuf: 1 << 20 })
    const tx = link()
    const it = rx[Symbol.asyncIterator]()
    tx.sendBatch(Array.from({ length: 50 }, (_, i) => Buffer.from(String(i))), { port: rx.address().port })
    await new Promise((r) => setTimeout(r, 100))
    const first = await it.next()
    // 50 arrived, the queue keeps the newest 10 once the first consumer is waiting.
    expect(rx.stats().onbusDrops).toBe(40)
    expect(first.value!.data.toString()).toBe('40')
    await it.return!()
  })

  it('messages({ signal }) ends when aborted', async () => {
    const rx = link()
    const ac = new AbortController()
    const t = setTimeout(() => ac.abort(), 30)
    let n = 0
    for await (const _ of rx.messages({ signal: ac.signal })) n++
    clearTimeout(t)
    expect(n).toBe(0)
    expect(rx.closed).toBe(false)
  })
})
