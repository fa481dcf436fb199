/**
 * The native MAVLink router across transports: TCP server (accepted clients
 * are endpoints), TCP client (reconnects with backoff when its server goes
 * away and comes back), a PTY made by socat (reopened when it goes away), and
 * two routers joined twice (a ring) that must not storm.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createMavlinkRouter, type MavlinkRouter } from '../lib/mavlink/index.js'
import { TcpPeer, UdpPeer, sleep, until } from './helpers/mav-peers.js'

const haveSocat = spawnSync('socat', ['-V']).status === 0
if (!haveSocat) console.log('PTY router tests skipped: socat is not installed (apt-get install socat)')
let haveSerialport = true
try {
  await import('serialport' as string)
} catch {
  haveSerialport = false
  console.log("PTY router test with open: 'serialport' skipped: the 'serialport' package is not installed")
}

const routers: MavlinkRouter[] = []
const closers: (() => void)[] = []
afterEach(() => {
  for (const r of routers.splice(0)) r.close()
  for (const c of closers.splice(0)) c()
})

function track<T extends { close(): void }>(x: T): T {
  closers.push(() => x.close())
  return x
}

async function router(config: Parameters<typeof createMavlinkRouter>[0]): Promise<MavlinkRouter> {
  const r = await createMavlinkRouter(config)
  routers.push(r)
  return r
}

describe('MAVLink router: TCP', () => {
  it('routes between accepted TCP clients and a UDP peer', async () => {
    const r = await router({ endpoints: [{ kind: 'tcp-server', name: 'tcp', port: 0 }, { kind: 'udp-server', name: 'gcs', port: 0 }] })
    const connected: string[] = []
    r.on('connect', (n: string) => connected.push(n))
    const a = track(await TcpPeer.connect(1, 1, r.address('tcp').port))
    const b = track(await TcpPeer.connect(2, 1, r.address('tcp').port))
    const gcs = track(await UdpPeer.open(255, 190, { port: r.address('gcs').port }))
    await until(() => connected.filter((n) => n.startsWith('tcp/')).length === 2, 8000, 'two accepted')
    gcs.heartbeat()
    await a.waitFor((g) => g.sysid === 255)
    await b.waitFor((g) => g.sysid === 255)
    a.heartbeat()
    await gcs.waitFor((g) => g.sysid === 1)
    await b.waitFor((g) => g.sysid === 1)
    b.heartbeat()
    // targeted from the GCS to system 2: only b
    gcs.command(2, 1)
    await b.waitFor((g) => g.msgid === 76)
    await sleep(100)
    expect(a.count((g) => g.msgid === 76)).toBe(0)
    expect(a.count((g) => g.sysid === 1)).toBe(0)
    // garbage on a stream: counted by reason, the frame behind it still routed
    const junk = new Uint8Array(500)
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 97 + 5) & 255
    a.sendRaw(junk)
    // (more than one: a false start in the garbage may hold the first frame behind it)
    for (let i = 0; i < 3; i++) a.attitude()
    await gcs.waitFor((g) => g.msgid === 30 && g.sysid === 1)
    const conn = r.stats().endpoints.find((e) => e.server === 'tcp' && e.framesIn > 0 && e.parser.bytesDiscarded > 0)
    expect(conn, JSON.stringify(r.stats().endpoints)).toBeDefined()
    expect(conn!.parser.bytesDiscarded).toBeGreaterThanOrEqual(junk.length - 280)
    expect(conn!.parser.bytesIn).toBe(conn!.parser.bytesAccepted + conn!.parser.bytesDiscarded + conn!.parser.pending)
    // a connection going away is removed; its counters fold into the server's
    a.close()
    await until(() => r.stats().endpoints.filter((e) => e.kind === 'tcp-connection').length === 1, 8000, 'connection removed')
    const srv = r.endpointStats('tcp')!
    expect(srv.framesIn).toBeGreaterThanOrEqual(1)
    expect(srv.connects).toBe(2)
    gcs.heartbeat()
    await b.waitCount((g) => g.sysid === 255, 2)
  })

  it('a TCP client endpoint connects when its server appears and reconnects after it goes away', async () => {
    // find a free port, then start the router before anything listens there
    const probe = createServer()
    await new Promise<void>((res) => probe.listen(0, '127.0.0.1', () => res()))
    const port = (probe.address() as { port: number }).port
    await new Promise<void>((res) => probe.close(() => res()))

    const r = await router({
      endpoints: [
        { kind: 'tcp-client', name: 'fc', address: '127.0.0.1', port, reconnectMinMs: 20, reconnectMaxMs: 200 },
        { kind: 'udp-server', name: 'gcs', port: 0 },
      ],
    })
    const gcs = track(await UdpPeer.open(255, 190, { port: r.address('gcs').port }))
    gcs.heartbeat()
    await sleep(300)
    const down = r.endpointStats('fc')!
    expect(down.up).toBe(false)
    expect(down.errors).toBeGreaterThanOrEqual(1) // ECONNREFUSED attempts
    expect(down.lastErrno).toBe(-111)

    let server: Server | undefined
    const conns: Socket[] = []
    const startServer = async (): Promise<void> => {
      server = createServer((s) => conns.push(s))
      await new Promise<void>((res) => server!.listen(port, '127.0.0.1', () => res()))
    }
    closers.push(() => {
      for (const c of conns) c.destroy()
      server?.close()
    })
    await startServer()
    await until(() => conns.length === 1, 8000, 'router connected')
    const fc1 = TcpPeer.wrap(1, 1, conns[0])
    fc1.heartbeat()
    await gcs.waitFor((g) => g.sysid === 1)
    gcs.command(1, 1)
    await fc1.waitFor((g) => g.msgid === 76)

    // the server goes away (connection reset and listener closed) and comes back
    conns[0].destroy()
    await new Promise<void>((res) => server!.close(() => res()))
    await until(() => r.endpointStats('fc')!.disconnects === 1, 8000, 'disconnect seen')
    expect(r.routes().some((x) => x.endpoint === 'fc')).toBe(false) // forgotten with the link
    await sleep(100)
    await startServer()
    await until(() => conns.length === 2, 8000, 'router reconnected')
    const fc2 = TcpPeer.wrap(1, 1, conns[1])
    fc2.heartbeat()
    await gcs.waitCount((g) => g.sysid === 1, 2)
    gcs.command(1, 1)
    await fc2.waitFor((g) => g.msgid === 76)
    expect(r.endpointStats('fc')!.connects).toBe(2)
  })
})

describe.skipIf(!haveSocat)('MAVLink router: PTY', () => {
  /** socat: a PTY at `link` whose other side is a UDP socket bound to `bindPort` talking to `peerPort`. */
  function ptyBridge(link: string, bindPort: number, peerPort: number): ChildProcess {
    const p = spawn('socat', [`PTY,link=${link},raw,echo=0`, `UDP:127.0.0.1:${peerPort},bind=127.0.0.1:${bindPort}`], { stdio: 'ignore' })
    closers.push(() => p.kill('SIGKILL'))
    return p
  }

  async function freeUdpPort(): Promise<number> {
    const p = await UdpPeer.open(0, 0)
    const port = p.port
    p.close()
    return port
  }

  it.each([
    ['native', true],
    ['serialport', haveSerialport],
  ] as const)('routes between a PTY (opened by %s) and UDP, and reopens it after it goes away', async (open, available) => {
    if (!available) return
    const dir = mkdtempSync(join(tmpdir(), 'onbus-router-'))
    closers.push(() => rmSync(dir, { recursive: true, force: true }))
    const link = join(dir, 'fc')
    const fc = track(await UdpPeer.open(1, 1))
    const bridgePort = await freeUdpPort()
    fc.target = { address: '127.0.0.1', port: bridgePort }
    let socat = ptyBridge(link, bridgePort, fc.port)
    await until(() => existsSync(link), 8000, 'socat PTY')

    const r = await router({
      endpoints: [
        { kind: 'uart', name: 'fc', path: link, baud: 115200, open, reconnectMinMs: 20, reconnectMaxMs: 200 },
        { kind: 'udp-server', name: 'gcs', port: 0 },
      ],
    })
    const gcs = track(await UdpPeer.open(255, 190, { port: r.address('gcs').port }))
    gcs.heartbeat()
    await fc.waitFor((g) => g.sysid === 255) // UDP -> PTY
    fc.heartbeat()
    await gcs.waitFor((g) => g.sysid === 1) // PTY -> UDP
    gcs.command(1, 1)
    await fc.waitFor((g) => g.msgid === 76)

    // the PTY goes away
    socat.kill('SIGKILL')
    await until(() => r.endpointStats('fc')!.disconnects === 1, 8000, 'PTY hang-up seen')
    await until(() => !existsSync(link), 8000, 'link removed')
    socat = ptyBridge(link, bridgePort, fc.port)
    await until(() => r.endpointStats('fc')!.connects === 2, 8000, 'PTY reopened')
    fc.heartbeat()
    await gcs.waitCount((g) => g.sysid === 1, 2)
    gcs.heartbeat()
    await fc.waitCount((g) => g.sysid === 255, 2)
  })
})

describe('MAVLink router: no loops', () => {
  it('two routers joined by two TCP links do not storm', async () => {
    const r1 = await router({ endpoints: [{ kind: 'tcp-server', name: 'ring', port: 0 }, { kind: 'udp-server', name: 'p', port: 0 }] })
    const ringPort = r1.address('ring').port
    const r2 = await router({
      endpoints: [
        { kind: 'tcp-client', name: 'l1', address: '127.0.0.1', port: ringPort },
        { kind: 'tcp-client', name: 'l2', address: '127.0.0.1', port: ringPort },
        { kind: 'udp-server', name: 'q', port: 0 },
      ],
    })
    await until(() => r2.endpointStats('l1')!.up && r2.endpointStats('l2')!.up, 8000, 'ring connected')
    const p = track(await UdpPeer.open(10, 1, { port: r1.address('p').port }))
    const q = track(await UdpPeer.open(20, 1, { port: r2.address('q').port }))
    q.heartbeat() // q becomes a peer of r2's 'q'
    p.heartbeat()
    await q.waitFor((g) => g.sysid === 10)
    const N = 50
    for (let i = 0; i < N; i++) p.attitude()
    await q.waitCount((g) => g.msgid === 30, N)
    // a storm never settles: wait (generously, for slow machines) until no
    // frame has moved for 400 ms
    const total = (): number => [...r1.stats().endpoints, ...r2.stats().endpoints].reduce((s, e) => s + e.framesIn, 0)
    const deadline = Date.now() + 20_000
    for (let last = -1; ; ) {
      const now = total()
      if (now === last) break
      if (Date.now() > deadline) throw new Error(`still circulating: ${now} frames in`)
      last = now
      await sleep(400)
    }
    // two parallel links may deliver a frame twice, never more
    const got = q.count((g) => g.msgid === 30)
    expect(got).toBeGreaterThanOrEqual(N)
    expect(got).toBeLessThanOrEqual(2 * N)
    expect(p.count((g) => g.sysid === 10)).toBe(0) // never its own traffic back
  })
})
