import { describe, it, expect } from 'vitest'
import { type UdpLink } from '../lib/index.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { udpLinkFactory } from './helpers/links.js'

const link = udpLinkFactory()
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))
function collect(l: UdpLink): string[] {
  const out: string[] = []
  l.onBatch((b) => {
    for (let i = 0; i < b.length; i++) out.push(`${b.copy(i).toString()}@${b.address(i)}`)
  })
  return out
}

describe('multicast on lo', () => {
  it.skipIf(skipUnderEmulator('multicast'))('join on a named interface receives the group; leave stops it', async () => {
    const rx = link({ address: '0.0.0.0' })
    rx.addMembership('239.10.20.30', 'lo')
    const got = collect(rx)
    const tx = link({ multicastInterface: 'lo', multicastLoopback: true, multicastTtl: 1 })
    expect(tx.get('multicastTtl')).toBe(1)
    expect(tx.get('multicastLoop')).toBe(1)
    tx.send(Buffer.from('one'), rx.address().port, '239.10.20.30')
    await wait(50)
    rx.dropMembership('239.10.20.30', 'lo')
    tx.send(Buffer.from('two'), rx.address().port, '239.10.20.30')
    await wait(50)
    expect(got).toEqual(['one@127.0.0.1'])
  })

  it.skipIf(skipUnderEmulator('multicast'))('two links sharing a port with reuseAddr both receive the group', async () => {
    const a = link({ address: '0.0.0.0', reuseAddr: true })
    const port = a.address().port
    const b = link({ address: '0.0.0.0', port, reuseAddr: true })
    a.addMembership('239.10.20.31', 'lo')
    b.addMembership('239.10.20.31', 'lo')
    const ga = collect(a)
    const gb = collect(b)
    const tx = link({ multicastInterface: 'lo' })
    tx.send(Buffer.from('both'), port, '239.10.20.31')
    await wait(50)
    expect(ga).toEqual(['both@127.0.0.1'])
    expect(gb).toEqual(['both@127.0.0.1'])
  })

  it.skipIf(skipUnderEmulator('multicast'))('multicastLoopback is set and read back (on lo the "wire" copy still arrives, so delivery is not the check)', () => {
    const tx = link({ multicastInterface: 'lo', multicastLoopback: false })
    expect(tx.get('multicastLoop')).toBe(0)
    tx.setMulticastLoopback(true)
    expect(tx.get('multicastLoop')).toBe(1)
  })

  it.skipIf(skipUnderEmulator('multicast'))('source-specific join admits only the named source', async () => {
    const rx = link({ address: '0.0.0.0' })
    rx.addSourceSpecificMembership('127.0.0.1', '232.1.2.3', 'lo')
    const got = collect(rx)
    const fromOne = link({ address: '127.0.0.1', multicastInterface: 'lo' })
    const fromTwo = link({ address: '127.0.0.2', multicastInterface: 'lo' })
    fromTwo.send(Buffer.from('from .2'), rx.address().port, '232.1.2.3')
    fromOne.send(Buffer.from('from .1'), rx.address().port, '232.1.2.3')
    await wait(50)
    expect(got).toEqual(['from .1@127.0.0.1'])
    rx.dropSourceSpecificMembership('127.0.0.1', '232.1.2.3', 'lo')
    fromOne.send(Buffer.from('after leave'), rx.address().port, '232.1.2.3')
    await wait(50)
    expect(got).toEqual(['from .1@127.0.0.1'])
  })

  it('an unknown interface name is ENODEV, Node-shaped', () => {
    const rx = link({ address: '0.0.0.0' })
    expect(() => rx.addMembership('239.1.1.1', 'no-such-if0')).toThrow(expect.objectContaining({ code: 'ENODEV', syscall: 'setsockopt', address: '239.1.1.1' }))
  })
})

describe('socket options', () => {
  it('broadcast can be enabled and read back; sending to 255.255.255.255 without it is EACCES', async () => {
    const tx = link()
    const errs: NodeJS.ErrnoException[] = []
    tx.on('error', (e) => errs.push(e))
    tx.send(Buffer.from('x'), 9, '255.255.255.255')
    await wait(10)
    expect(errs.map((e) => e.code)).toEqual(['EACCES'])
    tx.setBroadcast(true)
    expect(tx.get('broadcast')).toBe(1)
  })

  it('SO_REUSEPORT lets two links bind one port; the kernel spreads senders over them', async () => {
    const a = link({ reusePort: true })
    const port = a.address().port
    const b = link({ port, reusePort: true })
    expect(b.address().port).toBe(port)
    const ga = collect(a)
    const gb = collect(b)
    const senders = Array.from({ length: 16 }, () => link())
    for (const s of senders) s.send(Buffer.from('hi'), port)
    await wait(100)
    expect(ga.length + gb.length).toBe(16)
    expect(ga.length).toBeGreaterThan(0)
    expect(gb.length).toBeGreaterThan(0)
  })

  it('buffer sizes: the forced variant exceeds rmem_max when privileged; the effective size is reported', () => {
    const l = link({ rcvBuf: 16 << 20, sndBuf: 8 << 20 })
    // The kernel doubles the request for its bookkeeping.
    if (process.getuid?.() === 0) {
      expect(l.getRecvBufferSize()).toBe(32 << 20)
      expect(l.getSendBufferSize()).toBe(16 << 20)
    } else {
      console.warn('not root: SO_RCVBUFFORCE refused, the size is capped by net.core.rmem_max')
      expect(l.getRecvBufferSize()).toBeGreaterThan(0)
    }
    l.setRecvBufferSize(1 << 20)
    expect(l.getRecvBufferSize()).toBe(2 << 20)
  })

  it('DSCP marks outgoing datagrams (read back as IP_TOS / IPV6_TCLASS)', () => {
    const l4 = link({ dscp: 46 })
    expect(l4.getDSCP()).toBe(46)
    const l6 = link({ family: 6, dscp: 10 })
    expect(l6.getDSCP()).toBe(10)
    l4.setDSCP(0)
    expect(l4.getDSCP()).toBe(0)
  })

  it('TTL and multicast TTL round-trip', () => {
    const l = link({ ttl: 7, multicastTtl: 3 })
    expect(l.get('ttl')).toBe(7)
    expect(l.get('multicastTtl')).toBe(3)
  })

  it('binding to a device restricts the link to it (SO_BINDTODEVICE)', async () => {
    if (process.getuid?.() !== 0) {
      console.warn('skipping device bind: needs CAP_NET_RAW')
      return
    }
    const rx = link({ device: 'lo' })
    const tx = link()
    const got = collect(rx)
    tx.send(Buffer.from('via lo'), rx.address().port)
    await wait(50)
    expect(got).toEqual(['via lo@127.0.0.1'])
    expect(() => link({ device: 'no-such-if0' })).toThrow(expect.objectContaining({ code: 'ENODEV' }))
  })
})
