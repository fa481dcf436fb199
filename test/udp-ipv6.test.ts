import { describe, it, expect } from 'vitest'
import { udpLinkFactory } from './helpers/links.js'

const link = udpLinkFactory()
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('UDP over IPv6 and connected sockets', () => {
  it('sends and receives on ::1 with the IPv6 source reported', async () => {
    const rx = link({ address: '::1' })
    const tx = link({ family: 6 })
    expect(rx.address()).toMatchObject({ address: '::1', family: 'IPv6' })
    const got: { addr: string; fam: number; port: number; text: string }[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) got.push({ addr: b.address(i), fam: b.family(i), port: b.port(i), text: b.copy(i).toString() })
    })
    tx.send(Buffer.from('six'), rx.address().port, '::1')
    await wait(50)
    expect(got).toEqual([{ addr: '::1', fam: 6, port: tx.address().port, text: 'six' }])
  })

  it('a dual-stack socket reports IPv4 peers as IPv4-mapped addresses', async () => {
    const rx = link({ address: '::', family: 6, ipv6Only: false })
    const tx = link()
    const addrs: string[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) addrs.push(b.address(i))
    })
    tx.send(Buffer.from('4in6'), rx.address().port, '127.0.0.1')
    await wait(50)
    expect(addrs).toEqual(['::ffff:127.0.0.1'])
  })

  it('connect() restricts receive to the peer and allows send without a destination', async () => {
    const a = link()
    const b = link()
    const stranger = link()
    a.connect(b.address().port, '127.0.0.1')
    expect(a.remoteAddress()).toEqual({ address: '127.0.0.1', family: 'IPv4', port: b.address().port })
    const got: string[] = []
    a.onBatch((x) => {
      for (let i = 0; i < x.length; i++) got.push(x.copy(i).toString())
    })
    stranger.send(Buffer.from('not from b'), a.address().port)
    b.send(Buffer.from('from b'), a.address().port)
    const bGot: string[] = []
    b.onBatch((x) => {
      for (let i = 0; i < x.length; i++) bGot.push(x.copy(i).toString())
    })
    a.send(Buffer.from('to b'))
    await wait(50)
    expect(got).toEqual(['from b'])
    expect(bGot).toEqual(['to b'])
    a.disconnect()
    expect(() => a.remoteAddress()).toThrow(expect.objectContaining({ code: 'ENOTCONN', syscall: 'getpeername' }))
  })

  it('a connected link reports ICMP port unreachable as ECONNREFUSED with the peer address', async () => {
    const gone = link()
    const port = gone.address().port
    gone.close()
    const a = link({ connect: { address: '127.0.0.1', port } })
    const err = new Promise<NodeJS.ErrnoException & { address?: string; port?: number }>((r) => a.once('error', r))
    a.send(Buffer.from('anyone?'))
    const e = await err
    expect(e).toMatchObject({ code: 'ECONNREFUSED', syscall: 'recvmmsg', address: '127.0.0.1', port })
    expect(a.closed).toBe(false)
  })
})
