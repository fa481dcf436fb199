/**
 * Errors of a UDP link, shaped like Node's: system errors carry `code`,
 * `errno` (negative, as in `os.constants.errno`), `syscall`, and
 * `address`/`port` where they apply; invalid arguments throw `TypeError` /
 * `RangeError` with an `ERR_*` code before anything reaches native code.
 *
 * Every kernel error here is real (no mocks): EADDRINUSE and EACCES on
 * loopback, EACCES as an unprivileged user (child process as `nobody`),
 * EADDRNOTAVAIL on a documentation address, EMSGSIZE with an oversized
 * datagram, ENETUNREACH inside a throwaway network namespace that has only
 * `lo` (so no packet can leave the machine).
 */
import { describe, it, expect, afterEach } from 'vitest'
import { constants as osConstants } from 'node:os'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { getSystemErrorName } from 'node:util'
import { createUdpLink, type UdpLink, type UdpLinkOptions } from '../lib/index.js'
import { runFixture, describeExit, fixture, netnsUnavailable, NETNS_PREFIX } from './helpers/child.js'
import { hasIpv6Loopback, nonLocalIpv4, nonLocalIpv6 } from './helpers/net.js'

const links: UdpLink[] = []
afterEach(() => {
  for (const l of links.splice(0)) l.close()
})
function link(opts: UdpLinkOptions = {}): UdpLink {
  const l = createUdpLink({ rxSlots: 64, ...opts })
  links.push(l)
  return l
}
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Expected {
  code: keyof typeof osConstants.errno
  syscall: string
  address?: string
  port?: number
  index?: number
}

/** Asserts the Node shape of a system error (see Node's `exceptionWithHostPort`). */
function expectSystemError(err: unknown, want: Expected): void {
  expect(err).toBeInstanceOf(Error)
  const e = err as Error & Record<string, unknown>
  expect(e.code).toBe(want.code)
  expect(e.errno).toBe(-osConstants.errno[want.code])
  expect(getSystemErrorName(e.errno as number)).toBe(want.code)
  expect(e.syscall).toBe(want.syscall)
  expect(e.message).toContain(want.code)
  expect(e.message).toContain(want.syscall)
  if ('address' in want) expect(e.address).toBe(want.address)
  if ('port' in want) expect(e.port).toBe(want.port)
  if ('index' in want) expect(e.index).toBe(want.index)
}

/** The same assertions on an error serialised by test/fixtures/udp-error-probe.mjs. */
function expectProbedError(r: Awaited<ReturnType<typeof runFixture>>, want: Expected): void {
  const line = r.json.find((j) => 'error' in j || 'ok' in j)
  expect(line, describeExit(r)).toBeDefined()
  expect(line, describeExit(r)).toHaveProperty('error')
  const e = line!.error as Record<string, unknown>
  expect(e.isError).toBe(true)
  expect(e.code).toBe(want.code)
  expect(e.errno).toBe(-osConstants.errno[want.code])
  expect(e.syscall).toBe(want.syscall)
  if ('address' in want) expect(e.address).toBe(want.address)
  if ('port' in want) expect(e.port).toBe(want.port)
}

function sendP(l: UdpLink, data: Uint8Array, port: number, address?: string): Promise<Error | null> {
  return new Promise((resolve) => l.send(data, port, address, (err) => resolve(err)))
}

function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return null
  }
}

/** Logs why a test is skipped, so a skip is never silent. */
function skipReason(test: string, reason: string | null): boolean {
  if (reason) console.warn(`skipping "${test}": ${reason}`)
  return reason !== null
}

describe('system errors are Node-shaped', () => {
  it('EADDRINUSE: binding a port already bound (no reuse options), IPv4', () => {
    const holder = link()
    const port = holder.address().port
    let err: unknown
    try {
      link({ port })
    } catch (e) {
      err = e
    }
    expectSystemError(err, { code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port })
    expect(holder.address().port).toBe(port) // the holder is untouched
  })

  it('EADDRINUSE is not raised when both links opt in with reuseAddr (control)', () => {
    const a = link({ reuseAddr: true })
    expect(() => link({ reuseAddr: true, port: a.address().port })).not.toThrow()
  })

  it.skipIf(skipReason('EADDRINUSE IPv6', hasIpv6Loopback ? null : 'no ::1 on this host (IPv6 disabled)'))(
    'EADDRINUSE: binding a port already bound, IPv6',
    () => {
      const holder = link({ address: '::1' })
      const port = holder.address().port
      let err: unknown
      try {
        link({ address: '::1', port })
      } catch (e) {
        err = e
      }
      expectSystemError(err, { code: 'EADDRINUSE', syscall: 'bind', address: '::1', port })
    },
  )

  // Binding below net.ipv4.ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE.
  // We run as root, so the bind happens in a child process as `nobody`.
  const unprivStart = Number(readSysctl('/proc/sys/net/ipv4/ip_unprivileged_port_start') ?? '1024')
  const lowPort = unprivStart - 1
  function eaccesBindSkip(): string | null {
    if (!(unprivStart > 1)) return `net.ipv4.ip_unprivileged_port_start is ${unprivStart}: every port is unprivileged here`
    if (process.getuid?.() !== 0) return null // we are unprivileged ourselves: bind in-process
    const r = spawnSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1])', fixture('udp-error-probe.mjs')], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    })
    if (r.error) return `cannot run a child as nobody (uid 65534): ${r.error.message}`
    if (r.status !== 0) return `the fixtures are not readable by nobody: ${r.stderr.trim().split('\n')[0]}`
    return null
  }
  it.skipIf(skipReason('EACCES bind', eaccesBindSkip()))(
    'EACCES: binding a privileged port as an unprivileged user (child process as nobody)',
    async () => {
      if (process.getuid?.() !== 0) {
        let err: unknown
        try {
          link({ port: lowPort })
        } catch (e) {
          err = e
        }
        expectSystemError(err, { code: 'EACCES', syscall: 'bind', address: '127.0.0.1', port: lowPort })
        return
      }
      const r = await runFixture('udp-error-probe.mjs', ['bind', '127.0.0.1', String(lowPort)], { uid: 65534, gid: 65534, cwd: '/' })
      expect(r.code, describeExit(r)).toBe(0)
      expectProbedError(r, { code: 'EACCES', syscall: 'bind', address: '127.0.0.1', port: lowPort })
    },
  )

  it('EACCES: sending to a broadcast address without SO_BROADCAST; allowed once broadcast is on (control)', async () => {
    // 127.255.255.255 is the broadcast address of lo's 127.0.0.0/8 on Linux:
    // the route lookup refuses it with EACCES unless the socket allows broadcast.
    const tx = link({ receive: false })
    const err = await sendP(tx, Buffer.from('x'), 9, '127.255.255.255')
    expectSystemError(err, { code: 'EACCES', syscall: 'sendmmsg', address: '127.255.255.255', port: 9 })
    expect(err).not.toHaveProperty('index') // a single send has no batch index
    tx.setBroadcast(true)
    expect(await sendP(tx, Buffer.from('x'), 9, '127.255.255.255')).toBeNull()
  })

  const nonlocalBind = readSysctl('/proc/sys/net/ipv4/ip_nonlocal_bind')
  it.skipIf(skipReason('EADDRNOTAVAIL IPv4', nonlocalBind === '1' ? 'net.ipv4.ip_nonlocal_bind=1 lets any address be bound' : null))(
    'EADDRNOTAVAIL: binding an address this host does not have (TEST-NET), IPv4',
    () => {
      const address = nonLocalIpv4()
      let err: unknown
      try {
        link({ address, port: 40123 })
      } catch (e) {
        err = e
      }
      expectSystemError(err, { code: 'EADDRNOTAVAIL', syscall: 'bind', address, port: 40123 })
    },
  )

  const nonlocalBind6 = readSysctl('/proc/sys/net/ipv6/ip_nonlocal_bind')
  it.skipIf(
    skipReason(
      'EADDRNOTAVAIL IPv6',
      !hasIpv6Loopback ? 'IPv6 disabled on this host' : nonlocalBind6 === '1' ? 'net.ipv6.ip_nonlocal_bind=1 lets any address be bound' : null,
    ),
  )('EADDRNOTAVAIL: binding an address this host does not have (2001:db8::/32), IPv6', () => {
    const address = nonLocalIpv6()
    let err: unknown
    try {
      link({ address, port: 40123 })
    } catch (e) {
      err = e
    }
    expectSystemError(err, { code: 'EADDRNOTAVAIL', syscall: 'bind', address, port: 40123 })
  })

  it('EMSGSIZE: a 70,000-byte datagram, reported to the send callback; the link keeps working', async () => {
    const rx = link()
    const tx = link({ receive: false })
    const port = rx.address().port
    const got: string[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) got.push(b.copy(i).toString())
    })
    const err = await sendP(tx, Buffer.alloc(70_000), port, '127.0.0.1')
    expectSystemError(err, { code: 'EMSGSIZE', syscall: 'sendmmsg', address: '127.0.0.1', port })
    expect(await sendP(tx, Buffer.from('after'), port, '127.0.0.1')).toBeNull()
    const deadline = Date.now() + 3000
    while (got.length < 1 && Date.now() < deadline) await wait(5)
    expect(got).toEqual(['after'])
    expect(tx.stats().txErrors).toBeGreaterThanOrEqual(1)
  })

  it('EMSGSIZE without a callback is emitted as "error" (asynchronously), with the same shape', async () => {
    const tx = link({ receive: false })
    const errors: unknown[] = []
    tx.on('error', (e) => errors.push(e))
    tx.send(Buffer.alloc(70_000), 9, '127.0.0.1')
    expect(errors).toHaveLength(0) // never synchronously, like Node's dgram
    await wait(10)
    expect(errors).toHaveLength(1)
    expectSystemError(errors[0], { code: 'EMSGSIZE', syscall: 'sendmmsg', address: '127.0.0.1', port: 9 })
  })

  it('EMSGSIZE inside sendBatch: the error carries the index, the other datagrams still arrive in order', async () => {
    const rx = link()
    const tx = link({ receive: false })
    const port = rx.address().port
    const got: string[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) got.push(b.copy(i).toString())
    })
    const batch = [Buffer.from('a'), Buffer.from('b'), Buffer.alloc(70_000), Buffer.from('c'), Buffer.from('d')]
    const err = await new Promise<Error | null>((resolve) => tx.sendBatch(batch, { port, address: '127.0.0.1' }, resolve))
    expectSystemError(err, { code: 'EMSGSIZE', syscall: 'sendmmsg', address: '127.0.0.1', port, index: 2 })
    const deadline = Date.now() + 3000
    while (got.length < 4 && Date.now() < deadline) await wait(5)
    expect(got).toEqual(['a', 'b', 'c', 'd'])
  })

  const netnsSkip = netnsUnavailable()
  const unreach = (name: string) => skipReason(name, netnsSkip)
  it.skipIf(unreach('ENETUNREACH send'))(
    'ENETUNREACH: sending where there is no route (private network namespace with only lo), IPv4',
    async () => {
      const address = '192.0.2.1'
      const r = await runFixture('udp-error-probe.mjs', ['send', address, '9'], { prefix: NETNS_PREFIX })
      expect(r.code, describeExit(r)).toBe(0)
      expectProbedError(r, { code: 'ENETUNREACH', syscall: 'sendmmsg', address, port: 9 })
    },
  )

  it.skipIf(unreach('ENETUNREACH connect'))('ENETUNREACH: connecting where there is no route (private namespace), thrown by connect()', async () => {
    const r = await runFixture('udp-error-probe.mjs', ['connect', '192.0.2.1', '9'], { prefix: NETNS_PREFIX })
    expect(r.code, describeExit(r)).toBe(0)
    expectProbedError(r, { code: 'ENETUNREACH', syscall: 'connect', address: '192.0.2.1', port: 9 })
  })

  it.skipIf(unreach('ENETUNREACH IPv6') || skipReason('ENETUNREACH IPv6', hasIpv6Loopback ? null : 'IPv6 disabled on this host'))(
    'ENETUNREACH: sending where there is no route (private namespace), IPv6',
    async () => {
      const r = await runFixture('udp-error-probe.mjs', ['send', '2001:db8::1', '9'], { prefix: NETNS_PREFIX })
      expect(r.code, describeExit(r)).toBe(0)
      expectProbedError(r, { code: 'ENETUNREACH', syscall: 'sendmmsg', address: '2001:db8::1', port: 9 })
    },
  )

  it('ECONNREFUSED from the I/O thread (ICMP port unreachable on a connected link) arrives as "error" with the peer', async () => {
    const dead = createUdpLink({ receive: false })
    const deadPort = dead.address().port
    dead.close()
    const c = link({ connect: { address: '127.0.0.1', port: deadPort } })
    const err = await new Promise<unknown>((resolve) => {
      c.once('error', resolve)
      c.send(Buffer.from('x'))
    })
    expectSystemError(err, { code: 'ECONNREFUSED', syscall: 'recvmmsg', address: '127.0.0.1', port: deadPort })
  })
})

type Thrower = () => unknown
interface ArgCase {
  what: string
  call: Thrower
  type: typeof TypeError | typeof RangeError
  code: string
  /** The argument's name as the message should mention it. */
  names?: string
}

describe('invalid arguments throw TypeError/RangeError with an ERR_* code', () => {
  const T = TypeError
  const R = RangeError
  const optionCases: ArgCase[] = [
    { what: 'options null', call: () => createUdpLink(null as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options' },
    { what: "options 'udp4'", call: () => createUdpLink('udp4' as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options' },
    { what: 'port -1', call: () => createUdpLink({ port: -1 }), type: R, code: 'ERR_SOCKET_BAD_PORT', names: 'options.port' },
    { what: 'port 65536', call: () => createUdpLink({ port: 65536 }), type: R, code: 'ERR_SOCKET_BAD_PORT', names: 'options.port' },
    { what: 'port 1.5', call: () => createUdpLink({ port: 1.5 }), type: R, code: 'ERR_SOCKET_BAD_PORT', names: 'options.port' },
    { what: "port '80' (a string)", call: () => createUdpLink({ port: '80' as never }), type: R, code: 'ERR_SOCKET_BAD_PORT', names: 'options.port' },
    { what: 'port NaN', call: () => createUdpLink({ port: NaN }), type: R, code: 'ERR_SOCKET_BAD_PORT', names: 'options.port' },
    { what: 'address 123', call: () => createUdpLink({ address: 123 as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.address' },
    { what: "address 'localhost' (not an IP)", call: () => createUdpLink({ address: 'localhost' }), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'options.address' },
    { what: "address '300.1.1.1'", call: () => createUdpLink({ address: '300.1.1.1' }), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'options.address' },
    { what: "address ''", call: () => createUdpLink({ address: '' }), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'options.address' },
    { what: 'family 5', call: () => createUdpLink({ family: 5 as never }), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'options.family' },
    { what: "family '4'", call: () => createUdpLink({ family: '4' as never }), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'options.family' },
    {
      what: "family 4 with address '::1'",
      call: () => createUdpLink({ family: 4, address: '::1' }),
      type: T,
      code: 'ERR_INVALID_ARG_VALUE',
      names: 'options.address',
    },
    {
      what: "family 6 with address '127.0.0.1'",
      call: () => createUdpLink({ family: 6, address: '127.0.0.1' }),
      type: T,
      code: 'ERR_INVALID_ARG_VALUE',
      names: 'options.address',
    },
    { what: "reuseAddr 'yes'", call: () => createUdpLink({ reuseAddr: 'yes' as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.reuseAddr' },
    { what: 'timestamps 1', call: () => createUdpLink({ timestamps: 1 as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.timestamps' },
    { what: "rcvBuf '1M'", call: () => createUdpLink({ rcvBuf: '1M' as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.rcvBuf' },
    { what: 'rcvBuf 0', call: () => createUdpLink({ rcvBuf: 0 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.rcvBuf' },
    { what: 'sndBuf 2^31', call: () => createUdpLink({ sndBuf: 2 ** 31 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.sndBuf' },
    { what: 'ttl 0', call: () => createUdpLink({ ttl: 0 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.ttl' },
    { what: 'ttl 256', call: () => createUdpLink({ ttl: 256 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.ttl' },
    { what: 'multicastTtl 256', call: () => createUdpLink({ multicastTtl: 256 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.multicastTtl' },
    { what: 'dscp 64', call: () => createUdpLink({ dscp: 64 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.dscp' },
    { what: "dscp '46'", call: () => createUdpLink({ dscp: '46' as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.dscp' },
    { what: 'maxDatagramSize 65536', call: () => createUdpLink({ maxDatagramSize: 65536 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.maxDatagramSize' },
    { what: 'rxSlots 0', call: () => createUdpLink({ rxSlots: 0 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.rxSlots' },
    {
      what: 'rxSlots × maxDatagramSize over 2 GiB',
      call: () => createUdpLink({ rxSlots: 1 << 20, maxDatagramSize: 65535 }),
      type: R,
      code: 'ERR_OUT_OF_RANGE',
      names: 'options.rxSlots',
    },
    { what: 'busyPollUs -1', call: () => createUdpLink({ busyPollUs: -1 }), type: R, code: 'ERR_OUT_OF_RANGE', names: 'options.busyPollUs' },
    {
      what: 'iteratorHighWaterMark 0',
      call: () => createUdpLink({ iteratorHighWaterMark: 0 }),
      type: R,
      code: 'ERR_OUT_OF_RANGE',
      names: 'options.iteratorHighWaterMark',
    },
    { what: 'device 5', call: () => createUdpLink({ device: 5 as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.device' },
    {
      what: 'multicastInterface 5',
      call: () => createUdpLink({ multicastInterface: 5 as never }),
      type: T,
      code: 'ERR_INVALID_ARG_TYPE',
      names: 'options.multicastInterface',
    },
    { what: "connect 'peer'", call: () => createUdpLink({ connect: 'peer' as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.connect' },
    {
      what: 'connect.address 1',
      call: () => createUdpLink({ connect: { address: 1 as never, port: 9 } }),
      type: T,
      code: 'ERR_INVALID_ARG_TYPE',
      names: 'options.connect.address',
    },
    {
      what: "connect.address 'localhost' (not an IP)",
      call: () => createUdpLink({ connect: { address: 'localhost', port: 9 } }),
      type: T,
      code: 'ERR_INVALID_ARG_VALUE',
      names: 'options.connect.address',
    },
    {
      what: 'connect.port 0',
      call: () => createUdpLink({ connect: { address: '127.0.0.1', port: 0 } }),
      type: R,
      code: 'ERR_SOCKET_BAD_PORT',
      names: 'options.connect.port',
    },
    { what: 'signal {}', call: () => createUdpLink({ signal: {} as never }), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'options.signal' },
  ]

  const linkCases = (l: () => UdpLink): ArgCase[] => {
    const buf = Buffer.from('x')
    return [
      { what: "send('text')", call: () => l().send('text' as never, 9), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'data' },
      { what: 'send(buf, -1)', call: () => l().send(buf, -1), type: R, code: 'ERR_SOCKET_BAD_PORT' },
      { what: 'send(buf, 0)', call: () => l().send(buf, 0), type: R, code: 'ERR_SOCKET_BAD_PORT' },
      { what: 'send(buf, 65536)', call: () => l().send(buf, 65536), type: R, code: 'ERR_SOCKET_BAD_PORT' },
      { what: "send(buf, '80')", call: () => l().send(buf, '80' as never), type: R, code: 'ERR_SOCKET_BAD_PORT' },
      { what: 'send(buf, 9, 123)', call: () => l().send(buf, 9, 123 as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'address' },
      { what: "send(buf, 9, 'localhost')", call: () => l().send(buf, 9, 'localhost'), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'address' },
      { what: "send(buf, 9, '::1') on an IPv4 link", call: () => l().send(buf, 9, '::1'), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'address' },
      { what: "sendBatch('x')", call: () => l().sendBatch('x' as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'datagrams' },
      { what: "sendBatch([buf, 'x'])", call: () => l().sendBatch([buf, 'x' as never]), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'datagrams[1]' },
      { what: "connect('9', ip)", call: () => l().connect('9' as never, '127.0.0.1'), type: R, code: 'ERR_SOCKET_BAD_PORT' },
      { what: 'connect(9, 5)', call: () => l().connect(9, 5 as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'address' },
      { what: "connect(9, 'localhost')", call: () => l().connect(9, 'localhost'), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'address' },
      { what: 'setTTL(0)', call: () => l().setTTL(0), type: R, code: 'ERR_OUT_OF_RANGE', names: 'ttl' },
      { what: "setTTL('1')", call: () => l().setTTL('1' as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'ttl' },
      { what: 'setBroadcast(1)', call: () => l().setBroadcast(1 as never), type: T, code: 'ERR_INVALID_ARG_TYPE' },
      { what: 'setDSCP(64)', call: () => l().setDSCP(64), type: R, code: 'ERR_OUT_OF_RANGE', names: 'dscp' },
      { what: 'setRecvBufferSize(0)', call: () => l().setRecvBufferSize(0), type: R, code: 'ERR_OUT_OF_RANGE' },
      { what: 'setBusyPoll(-1)', call: () => l().setBusyPoll(-1), type: R, code: 'ERR_OUT_OF_RANGE' },
      { what: 'addMembership(5)', call: () => l().addMembership(5 as never), type: T, code: 'ERR_INVALID_ARG_TYPE' },
      { what: "onBatch('x')", call: () => l().onBatch('x' as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'handler' },
      { what: "close('x')", call: () => l().close('x' as never), type: T, code: 'ERR_INVALID_ARG_TYPE', names: 'callback' },
      { what: 'onBatch on a receive:false link', call: () => link({ receive: false }).onBatch(() => {}), type: T, code: 'ERR_INVALID_ARG_VALUE', names: 'receive' },
    ]
  }

  function expectArgError(c: ArgCase): void {
    let err: unknown
    try {
      c.call()
    } catch (e) {
      err = e
    }
    expect(err, `${c.what} did not throw`).toBeDefined()
    expect(err, `${c.what}: ${String(err)}`).toBeInstanceOf(c.type)
    expect((err as { code?: string }).code, `${c.what}: ${String(err)}`).toBe(c.code)
    if (c.names) expect((err as Error).message).toContain(c.names)
  }

  describe('createUdpLink(options)', () => {
    it.each(optionCases.map((c) => [c.what, c] as const))('%s', (_, c) => {
      expectArgError(c)
    })
  })

  describe('methods of an open link', () => {
    let shared: UdpLink | undefined
    const l = () => (shared && !shared.closed ? shared : (shared = link()))
    it.each(linkCases(l).map((c) => [c.what, c] as const))('%s', (_, c) => {
      expectArgError(c)
      expect(l().closed).toBe(false) // a rejected argument does not close the link
    })
  })

  it('none of the invalid option sets reaches native code (fresh process: no socket, no reactor started)', async () => {
    const r = await runFixture('udp-no-native.mjs')
    expect(r.code, describeExit(r)).toBe(0)
    const report = r.json[0] as {
      tried: number
      notRejected: string[]
      before: Record<string, number>
      afterInvalid: Record<string, number>
      afterValid: Record<string, number>
    }
    expect(report.notRejected).toEqual([])
    expect(report.afterInvalid).toEqual(report.before)
    // The detector works: one valid link starts the reactor and opens a socket.
    expect(report.afterValid.eventpoll).toBe(report.before.eventpoll + 1)
    expect(report.afterValid.socket).toBe(report.before.socket + 1)
  })
})
