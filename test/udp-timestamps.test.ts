import { describe, it, expect } from 'vitest'
import { now } from '../lib/index.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { udpLinkFactory } from './helpers/links.js'

const link = udpLinkFactory()
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('kernel timestamps', () => {
  it.skipIf(skipUnderEmulator('timestamping'))('receive stamps are realtime nanoseconds, monotonic across datagrams, and within the send/handle window', async () => {
    const rx = link({ rcvBuf: 4 << 20 })
    const tx = link()
    const stamps: bigint[] = []
    const handled: bigint[] = []
    let missing = 0
    let atRead = 0
    rx.onBatch((b) => {
      const h = now('realtime')
      for (let i = 0; i < b.length; i++) {
        const t = b.rxTime(i)
        if (t === undefined) {
          missing++
          continue
        }
        if (b.stampedAtRead(i)) atRead++
        // The (sec, nsec) pair and the bigint agree.
        expect(BigInt(b.rxTimeSec(i)) * 1_000_000_000n + BigInt(b.rxTimeNsec(i))).toBe(t)
        stamps.push(t)
        handled.push(h)
      }
    })
    const t0 = now('realtime')
    for (let i = 0; i < 200; i++) tx.send(Buffer.from([i]), rx.address().port)
    await wait(100)
    const t1 = now('realtime')
    // Every datagram is stamped: on arrival, or (while the kernel is still
    // enabling receive stamping right after the link opened) when read.
    expect(missing).toBe(0)
    expect(stamps.length).toBe(200)
    console.info(`timestamps: ${atRead} of 200 flagged as stamped at read (kernel still enabling stamping)`)
    for (let i = 0; i < stamps.length; i++) {
      // Stamped after the first send began, before the handler ran.
      expect(stamps[i]).toBeGreaterThanOrEqual(t0)
      expect(stamps[i]).toBeLessThanOrEqual(handled[i])
      expect(stamps[i]).toBeLessThanOrEqual(t1)
      if (i > 0) expect(stamps[i]).toBeGreaterThanOrEqual(stamps[i - 1])
    }
  })

  it('no hardware stamp on loopback, and none claimed', async () => {
    const rx = link()
    const tx = link()
    const hw: (bigint | undefined)[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) hw.push(b.hwTime(i))
    })
    tx.send(Buffer.from('x'), rx.address().port)
    await wait(50)
    expect(hw).toEqual([undefined])
  })

  it('timestamps: false delivers datagrams without stamps', async () => {
    const rx = link({ timestamps: false })
    const tx = link()
    const got: (bigint | undefined)[] = []
    rx.on('message', (_m, info) => got.push(info.rxTime))
    tx.send(Buffer.from('x'), rx.address().port)
    await wait(50)
    expect(got).toEqual([undefined])
  })

  it.skipIf(skipUnderEmulator('timestamping'))('software transmit stamps arrive as txtime events keyed by send id', async () => {
    const rx = link()
    const tx = link({ txTimestamps: true })
    const stamps = new Map<number, bigint>()
    tx.on('txtime', (e: { id: number; time: bigint }) => stamps.set(e.id, e.time))
    const ids: number[] = []
    const before: bigint[] = []
    for (let i = 0; i < 20; i++) {
      ids.push(tx.txCount)
      before.push(now('realtime'))
      tx.send(Buffer.from([i]), rx.address().port)
    }
    const after = now('realtime')
    await wait(100)
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect([...stamps.keys()].sort((a, b) => a - b)).toEqual(ids)
    for (let i = 0; i < 20; i++) {
      const t = stamps.get(i)!
      expect(t).toBeGreaterThanOrEqual(before[i])
      expect(t).toBeLessThanOrEqual(after)
    }
  })
})
