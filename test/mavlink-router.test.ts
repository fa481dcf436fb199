/**
 * The native MAVLink router over real UDP sockets on loopback, with
 * independent peers (node:dgram + the TypeScript encoder/parser): learned
 * routing, broadcast, targeted frames, filters, unknown ids, signed frames
 * byte-exact, garbage counted, and no frame crossing into JavaScript unless a
 * port subscribed.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Heartbeat, MavlinkEncoder, MavlinkSigning, ardupilotmega, createMavlinkRouter, validateMavlinkRouterConfig, type MavlinkRouter, type MavlinkFrame } from '../lib/mavlink/index.js'
import { UdpPeer, sleep, unknownFrame, until } from './helpers/mav-peers.js'

const routers: MavlinkRouter[] = []
const peers: UdpPeer[] = []
afterEach(() => {
  for (const r of routers.splice(0)) r.close()
  for (const p of peers.splice(0)) p.close()
})

async function peer(sysid: number, compid: number, port?: number): Promise<UdpPeer> {
  const p = await UdpPeer.open(sysid, compid, port === undefined ? undefined : { port })
  peers.push(p)
  return p
}

/**
 * fc (sysid 1) is the remote of the router's udp-client 'fc'; gcs (255) and
 * gcs2 (254) talk to udp-servers 'gcs' and 'gcs2'. Every peer announces
 * itself with a heartbeat so the router learns where it lives.
 */
async function topology(extra: Partial<Record<'gcs2Out', object>> = {}, onRouter?: (r: MavlinkRouter) => void) {
  const fc = await peer(1, 1)
  const router = await createMavlinkRouter({
    endpoints: [
      { kind: 'udp-client', name: 'fc', address: '127.0.0.1', port: fc.port },
      { kind: 'udp-server', name: 'gcs', port: 0 },
      { kind: 'udp-server', name: 'gcs2', port: 0, filters: extra.gcs2Out ? { out: extra.gcs2Out } : undefined },
    ],
  })
  routers.push(router)
  onRouter?.(router)
  fc.target = { address: '127.0.0.1', port: router.address('fc').port }
  const gcs = await peer(255, 190, router.address('gcs').port)
  const gcs2 = await peer(254, 190, router.address('gcs2').port)
  gcs.heartbeat()
  gcs2.heartbeat()
  await until(() => router.endpointStats('gcs')!.peers === 1 && router.endpointStats('gcs2')!.peers === 1, 8000, 'peers heard')
  fc.heartbeat()
  await gcs.waitFor((g) => g.sysid === 1 && g.msgid === 0)
  await gcs2.waitFor((g) => g.sysid === 1 && g.msgid === 0)
  return { router, fc, gcs, gcs2 }
}

describe('MAVLink router: UDP', () => {
  it('broadcasts to every other endpoint, never back to the source, and learns who is where', async () => {
    const learned: object[] = []
    const { router, fc, gcs, gcs2 } = await topology({}, (r) => r.on('endpoint', (e) => learned.push(e)))
    // gcs's heartbeat was sent before fc had been heard: the client endpoint still got it
    await fc.waitFor((g) => g.sysid === 255 && g.msgid === 0)
    await fc.waitFor((g) => g.sysid === 254 && g.msgid === 0)
    // gcs's first heartbeat came before gcs2 had been heard (no peer: counted as 'down')
    expect(router.endpointStats('gcs2')!.drops.down).toBeGreaterThanOrEqual(1)
    gcs.heartbeat()
    // gcs2 gets gcs's heartbeat, gcs does not get its own
    await gcs2.waitFor((g) => g.sysid === 255)
    await sleep(100)
    expect(gcs.count((g) => g.sysid === 255)).toBe(0)
    expect(fc.count((g) => g.sysid === 1)).toBe(0)
    // the 'endpoint' events said the same (gcs's came before fc's, local has none)
    await until(() => learned.length >= 3, 8000, "'endpoint' events")
    expect(learned).toEqual(
      expect.arrayContaining([
        { endpoint: 'fc', sysid: 1, compid: 1 },
        { endpoint: 'gcs', sysid: 255, compid: 190 },
        { endpoint: 'gcs2', sysid: 254, compid: 190 },
      ]),
    )
    expect(learned.length).toBe(3)
    const routes = router.routes()
    expect(routes).toEqual(
      expect.arrayContaining([
        { endpoint: 'fc', sysid: 1, compid: 1 },
        { endpoint: 'gcs', sysid: 255, compid: 190 },
        { endpoint: 'gcs2', sysid: 254, compid: 190 },
      ]),
    )
  })

  it('sends targeted frames only where the target was seen, counts the unroutable', async () => {
    const { router, fc, gcs, gcs2 } = await topology()
    const cmd = gcs.command(1, 1)
    const got = await fc.waitFor((g) => g.msgid === 76)
    expect(Buffer.from(got.bytes).equals(Buffer.from(cmd))).toBe(true)
    // target component 0: any component of system 1
    gcs.command(1, 0, 401)
    await fc.waitFor((g) => g.msgid === 76 && g.bytes.length > 0 && g !== got)
    // to the GCS on gcs2 only
    fc.command(254, 190)
    await gcs2.waitFor((g) => g.msgid === 76 && g.sysid === 1)
    // a system nobody has seen: dropped and counted on the source
    const before = router.endpointStats('gcs')!.drops.noRoute
    gcs.command(42, 1)
    await until(() => router.endpointStats('gcs')!.drops.noRoute === before + 1, 8000, 'noRoute counted')
    await sleep(100)
    expect(gcs2.count((g) => g.msgid === 76)).toBe(1)
    expect(gcs.count((g) => g.msgid === 76)).toBe(0)
    expect(fc.count((g) => g.msgid === 76)).toBe(2)
  })

  it('forwards unknown message ids as broadcasts and signed frames byte-exact', async () => {
    const { fc, gcs, gcs2 } = await topology()
    const unk = unknownFrame(1, 1)
    fc.sendRaw(unk)
    const a = await gcs.waitFor((g) => g.msgid === 0xabcde)
    const b = await gcs2.waitFor((g) => g.msgid === 0xabcde)
    expect(Buffer.from(a.bytes).equals(Buffer.from(unk))).toBe(true)
    expect(Buffer.from(b.bytes).equals(Buffer.from(unk))).toBe(true)
    const signing = new MavlinkSigning({ key: new Uint8Array(32).fill(7), linkId: 3 })
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1, signing })
    const signed = enc.encode(Heartbeat, { type: 2, autopilot: 3, base_mode: 0, custom_mode: 77, system_status: 4 } as never)
    expect(signed[2] & 1).toBe(1)
    fc.sendRaw(signed)
    const s = await gcs.waitFor((g) => g.msgid === 0 && g.bytes.length === signed.length)
    expect(Buffer.from(s.bytes).equals(Buffer.from(signed))).toBe(true)
    // the receiver's own signing check accepts it: the signature survived the router
    const verify = new MavlinkSigning({ key: new Uint8Array(32).fill(7) })
    const { MavlinkParser } = await import('../lib/mavlink/index.js')
    const p = new MavlinkParser({ datagram: true, signing: verify })
    let verified = false
    p.push(s.bytes, (f) => (verified = f.verified))
    expect(verified).toBe(true)
  })

  it('counts garbage and keeps routing the good frames around it', async () => {
    const { router, fc, gcs } = await topology()
    const junk = new Uint8Array(300)
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 73 + 11) & 255
    junk[0] = 0xfd // a false start
    const hb = new MavlinkEncoder({ sysid: 1, compid: 1 }).encode(Heartbeat, { type: 2, autopilot: 3, base_mode: 0, custom_mode: 5, system_status: 4 } as never)
    const mixed = new Uint8Array(junk.length * 2 + hb.length)
    mixed.set(junk, 0)
    mixed.set(hb, junk.length)
    mixed.set(junk, junk.length + hb.length)
    const before = gcs.count((g) => g.sysid === 1 && g.msgid === 0)
    fc.sendRaw(mixed)
    await gcs.waitCount((g) => g.sysid === 1 && g.msgid === 0, before + 1)
    const st = router.endpointStats('fc')!
    expect(st.parser.bytesDiscarded).toBeGreaterThanOrEqual(2 * junk.length - 10)
    expect(st.parser.bytesIn).toBe(st.parser.bytesAccepted + st.parser.bytesDiscarded + st.parser.pending)
  })

  it('applies per-endpoint filters and counts what they drop', async () => {
    const { router, fc, gcs, gcs2 } = await topology({ gcs2Out: { denyMsgIds: [30] } })
    fc.attitude()
    await gcs.waitFor((g) => g.msgid === 30)
    fc.heartbeat()
    await gcs2.waitCount((g) => g.sysid === 1 && g.msgid === 0, 2)
    expect(gcs2.count((g) => g.msgid === 30)).toBe(0)
    expect(router.endpointStats('gcs2')!.drops.filterOut).toBe(1)
  })

  it('filters by source system on input', async () => {
    const fc = await peer(1, 1)
    const router = await createMavlinkRouter({
      endpoints: [
        { kind: 'udp-client', name: 'fc', address: '127.0.0.1', port: fc.port },
        { kind: 'udp-server', name: 'gcs', port: 0, filters: { in: { allowSrcSystems: [255] } } },
      ],
    })
    routers.push(router)
    fc.target = { address: '127.0.0.1', port: router.address('fc').port }
    const gcs = await peer(255, 190, router.address('gcs').port)
    const rogue = await peer(66, 1, router.address('gcs').port)
    rogue.heartbeat()
    gcs.heartbeat()
    await fc.waitFor((g) => g.sysid === 255)
    await sleep(100)
    expect(fc.count((g) => g.sysid === 66)).toBe(0)
    expect(router.endpointStats('gcs')!.drops.filterIn).toBe(1)
    expect(router.routes().some((r) => r.sysid === 66)).toBe(false)
  })

  it('no frame reaches JavaScript without a subscriber; a port gets only its ids, with rx times', async () => {
    const { router, fc, gcs } = await topology()
    for (let i = 0; i < 20; i++) fc.attitude()
    await gcs.waitCount((g) => g.msgid === 30, 20)
    expect(router.endpointStats('local')!.framesOut).toBe(0)

    const port = router.port({ msgIds: [0] })
    const seen: { msgid: number; sysid: number; rx: bigint }[] = []
    const off = port.onFrame((f: MavlinkFrame, rx) => seen.push({ msgid: f.msgid, sysid: f.sysid, rx }))
    const t0 = BigInt(Date.now()) * 1_000_000n
    fc.attitude()
    fc.heartbeat()
    await until(() => seen.length >= 1, 8000, 'heartbeat in JS')
    await gcs.waitCount((g) => g.msgid === 30, 21)
    await sleep(50)
    expect(seen.every((s) => s.msgid === 0)).toBe(true)
    expect(seen[0].sysid).toBe(1)
    expect(seen[0].rx).toBeGreaterThan(t0 - 5_000_000_000n)
    expect(router.endpointStats('local')!.framesOut).toBe(seen.length)
    off()
    const n = router.endpointStats('local')!.framesOut
    fc.heartbeat()
    await gcs.waitCount((g) => g.sysid === 1 && g.msgid === 0, 3)
    await sleep(50)
    expect(router.endpointStats('local')!.framesOut).toBe(n)
  })

  it('frames sent by JavaScript are routed like any endpoint, and targeted replies come back', async () => {
    const { router, fc, gcs } = await topology()
    const port = router.port()
    const got: number[] = []
    port.onFrame((f) => {
      if (f.msgid === 76) got.push(f.sysid)
    })
    const me = new MavlinkEncoder({ sysid: 2, compid: 191 })
    port.send(me.encode(Heartbeat, { type: 18, autopilot: 8, base_mode: 0, custom_mode: 0, system_status: 4 } as never))
    await gcs.waitFor((g) => g.sysid === 2)
    await fc.waitFor((g) => g.sysid === 2)
    // now the router knows system 2 is local
    gcs.command(2, 191)
    await until(() => got.length === 1, 8000, 'command to the local system')
    expect(got[0]).toBe(255)
    await sleep(50)
    expect(fc.count((g) => g.msgid === 76)).toBe(0)
  })

  it('routes between the peers of one UDP server like separate endpoints', async () => {
    const fc = await peer(1, 1)
    const router = await createMavlinkRouter({
      endpoints: [
        { kind: 'udp-client', name: 'fc', address: '127.0.0.1', port: fc.port },
        { kind: 'udp-server', name: 'gcs', port: 0 },
      ],
    })
    routers.push(router)
    fc.target = { address: '127.0.0.1', port: router.address('fc').port }
    const a = await peer(255, 190, router.address('gcs').port)
    const b = await peer(254, 190, router.address('gcs').port)
    a.heartbeat()
    await until(() => router.endpointStats('gcs')!.peers === 1, 8000, 'a heard')
    b.heartbeat()
    await a.waitFor((g) => g.sysid === 254) // peer to peer on one server
    a.heartbeat()
    await b.waitFor((g) => g.sysid === 255)
    await fc.waitCount((g) => g.msgid === 0, 3)
    fc.command(255, 190)
    await a.waitFor((g) => g.msgid === 76)
    b.command(255, 0, 401)
    await a.waitCount((g) => g.msgid === 76, 2)
    await sleep(100)
    expect(b.count((g) => g.msgid === 76)).toBe(0)
    expect(a.count((g) => g.sysid === 255)).toBe(0) // never its own traffic
    expect(b.count((g) => g.sysid === 254)).toBe(0)
    expect(fc.count((g) => g.msgid === 76)).toBe(0)
  })

  it.each(['common', 'ardupilotmega'] as const)("reads target fields of the configured dialect (%s)", async (dialect) => {
    const fc = await peer(1, 1)
    const router = await createMavlinkRouter({
      dialect,
      endpoints: [
        { kind: 'udp-client', name: 'fc', address: '127.0.0.1', port: fc.port },
        { kind: 'udp-server', name: 'gcs', port: 0 },
        { kind: 'udp-server', name: 'gcs2', port: 0 },
      ],
    })
    routers.push(router)
    fc.target = { address: '127.0.0.1', port: router.address('fc').port }
    const gcs = await peer(255, 190, router.address('gcs').port)
    const gcs2 = await peer(254, 190, router.address('gcs2').port)
    gcs.heartbeat()
    gcs2.heartbeat()
    fc.heartbeat()
    await gcs.waitFor((g) => g.sysid === 1)
    await gcs2.waitFor((g) => g.sysid === 1)
    const { MountConfigure } = ardupilotmega
    const frame = new MavlinkEncoder({ sysid: 255, compid: 190 }).encode(MountConfigure, { target_system: 1, target_component: 1, mount_mode: 3, stab_roll: 0, stab_pitch: 0, stab_yaw: 0 } as never)
    gcs.sendRaw(frame)
    await fc.waitFor((g) => g.msgid === 156)
    // ardupilotmega: a targeted message, to fc only; common: an unknown id, a broadcast
    if (dialect === 'common') await gcs2.waitFor((g) => g.msgid === 156)
    else {
      await sleep(150)
      expect(gcs2.count((g) => g.msgid === 156)).toBe(0)
    }
    expect(router.endpointStats('gcs')!.parser.unknownId).toBe(dialect === 'common' ? 1 : 0)
  })

  it('counts send errors (ECONNREFUSED from a UDP client whose remote is gone) and keeps routing', async () => {
    const gone = await peer(9, 9)
    const deadPort = gone.port
    gone.close()
    peers.splice(peers.indexOf(gone), 1)
    const router = await createMavlinkRouter({
      endpoints: [
        { kind: 'udp-client', name: 'dead', address: '127.0.0.1', port: deadPort },
        { kind: 'udp-server', name: 'gcs', port: 0 },
        { kind: 'udp-server', name: 'gcs2', port: 0 },
      ],
    })
    routers.push(router)
    const gcs = await peer(255, 190, router.address('gcs').port)
    const gcs2 = await peer(254, 190, router.address('gcs2').port)
    gcs2.heartbeat()
    await until(() => router.endpointStats('gcs2')!.peers === 1, 8000, 'gcs2 heard')
    const dead = () => router.endpointStats('dead')!
    for (let i = 0; i < 50 && (i < 3 || dead().drops.sendError + dead().errors === 0); i++) {
      gcs.heartbeat()
      await sleep(20)
    }
    expect(dead().drops.sendError + dead().errors).toBeGreaterThan(0)
    expect(dead().lastErrno).toBe(-111)
    await gcs2.waitFor((g) => g.sysid === 255)
  })

  it('validates its configuration with Node-shaped errors', async () => {
    expect(() => validateMavlinkRouterConfig({ endpoints: [{ kind: 'udp-server' }] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => validateMavlinkRouterConfig({ endpoints: [{ kind: 'udp-server', port: 1, name: 'a' }, { kind: 'tcp-server', port: 2, name: 'a' }] })).toThrow(/two endpoints named 'a'/)
    const fc = await peer(1, 1)
    const r1 = await createMavlinkRouter({ endpoints: [{ kind: 'udp-server', name: 'x', port: 0 }] })
    routers.push(r1)
    const taken = r1.address('x').port
    await expect(createMavlinkRouter({ endpoints: [{ kind: 'udp-server', port: taken }] })).rejects.toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', port: taken })
    void fc
  })
})
