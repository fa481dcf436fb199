/**
 * The bus between processes (lib/bus/ipc): discovery through a runtime
 * directory, small messages over seqpacket both ways, large messages through
 * a memfd ring read in place by the other process, a peer's exit noticed and
 * its endpoints removed. The children are real processes (test/children/ipc-peer.mjs, from dist/).
 */
import { describe, it, expect, afterEach } from 'vitest'
import { mkdtempSync, rmSync, statSync, existsSync, chmodSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBus, createIpcTransport, jsonCodec, rawCodec, qosProfiles, type Bus, type IpcTransport, type IpcPeerLostEvent } from '../lib/bus/index.js'
import { Peer, until, sleep } from './children/ipc-harness.js'

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f()
})

function setup(opts: { shmSlots?: number; stallTimeoutMs?: number } = {}): { dir: string; bus: Bus; ipc: IpcTransport } {
  const dir = mkdtempSync(join(tmpdir(), 'onbus-ipc-'))
  const bus = createBus({ name: 'parent' })
  const ipc = createIpcTransport({ dir, shmSlots: opts.shmSlots ?? 4, shmSlotSize: 4 << 20, stallTimeoutMs: opts.stallTimeoutMs ?? 1000 })
  bus.addTransport(ipc)
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  cleanup.push(() => {
    bus.close()
    ipc.close()
  })
  return { dir, bus, ipc }
}

function child(dir: string, mode: string, n = 0): Peer {
  const p = new Peer([dir, mode, String(n)])
  cleanup.push(() => p.kill())
  return p
}

const topics = (bus: Bus) => ({
  small: bus.topic('small', { qos: qosProfiles.reliable, codec: jsonCodec<{ i?: number; stop?: boolean }>() }),
  echo: bus.topic('echo', { qos: qosProfiles.reliable, codec: jsonCodec<{ back: { i: number } }>() }),
  frames: bus.topic('frames', { qos: { ...qosProfiles.sensorData, depth: 4 }, codec: rawCodec }),
})

/** The parent's forwarder for `topic` exists: the child's subscriber was announced. */
const forwarded = (bus: Bus, topic: string) => () => bus.info().topics.some((t) => t.name === topic && t.subscribers.some((s) => s.forwarder !== undefined))

describe('bus between processes', () => {
  it('delivers small messages both ways, in order, with seq and source', async () => {
    const { dir, bus, ipc } = setup()
    const { small, echo } = topics(bus)
    const back: number[] = []
    echo.subscribe((v, m) => {
      back.push(v.back.i)
      expect(m.source).toBe('echoer')
    })
    const c = child(dir, 'sub')
    await until(forwarded(bus, 'small'), 'the child to subscribe')
    expect(ipc.peerList().map((p) => p.pid)).toEqual([c.pid])
    const pub = small.publisher({ name: 'planner' })
    for (let i = 0; i < 500; i++) expect(pub.publish({ i })).toBe(true)
    await until(() => back.length === 500, 'the echoes')
    expect(back).toEqual([...Array(500).keys()])
    // The child's log reaches us over its stdout pipe, which can trail the
    // echoes (the IPC path) on a loaded machine: wait for all of it.
    await until(() => c.of('small').length >= 500, "the child's log")
    const got = c.of('small')
    expect(got.map((l) => l.seq)).toEqual([...Array(500).keys()].map((i) => i + 1))
    expect(got.every((l) => l.source === 'planner')).toBe(true)
  })

  it('receives a child publisher with reliable back-pressure (1000 messages, none lost)', async () => {
    const { dir, bus } = setup()
    const t = bus.topic('fromchild', { qos: qosProfiles.reliable, codec: jsonCodec<{ i: number }>() })
    const got: number[] = []
    // A slow async subscriber with a small queue makes the proxy push back on the socket.
    t.subscribe(
      async (v) => {
        got.push(v.i)
        if (v.i % 100 === 0) await sleep(5)
      },
      { qos: { depth: 8, overflow: 'block' } },
    )
    const c = child(dir, 'pub', 1000)
    await c.line((l) => l.ev === 'published')
    await until(() => got.length === 1000, '1000 messages')
    expect(got).toEqual([...Array(1000).keys()])
  })

  it('carries large frames through shared memory: loaned slots, and copies of plain buffers', async () => {
    const { dir, bus, ipc } = setup()
    const { frames } = topics(bus)
    const c = child(dir, 'sub')
    await until(forwarded(bus, 'frames'), 'the child to subscribe')
    const pub = frames.publisher({ name: 'camera' })
    for (let k = 1; k <= 6; k++) {
      const loan = ipc.loan(4 << 20)
      expect(loan).not.toBeNull()
      loan!.bytes.fill(k & 0xff)
      expect(loan!.publish(pub)).toBe(true)
      await c.line((l) => l.ev === 'frame' && l.seq === k)
    }
    // A plain 1 MiB buffer (not loaned) is copied into a slot once.
    const plain = new Uint8Array(1 << 20).fill(7)
    pub.publish(plain)
    const f = await c.line((l) => l.ev === 'frame' && l.seq === 7)
    expect(f).toMatchObject({ len: 1 << 20, ok: true, shared: true })
    const frames6 = c.of('frame')
    expect(frames6.every((l) => l.ok === true && l.shared === true)).toBe(true)
    expect(frames6.slice(0, 6).every((l) => l.len === 4 << 20)).toBe(true)
    await until(() => ipc.stats().shmFree === 4, 'every slot released')
    expect(ipc.stats()).toMatchObject({ sentShm: 7, dropped: 0, reclaimed: 0 })
  })

  it('drops and reports a message larger than a slot, and refuses loans that cannot fit', async () => {
    const { dir, bus, ipc } = setup()
    const { frames } = topics(bus)
    const drops: { reason: string; count: number }[] = []
    ipc.on('drop', (e: { reason: string; count: number }) => drops.push(e))
    const c = child(dir, 'sub')
    await until(forwarded(bus, 'frames'), 'the child to subscribe')
    frames.publish(new Uint8Array((4 << 20) + 1))
    expect(drops).toEqual([expect.objectContaining({ reason: 'too-large', count: 1 })])
    expect(() => ipc.loan((4 << 20) + 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    frames.publish(new Uint8Array(100_000).fill(1))
    const f = await c.line((l) => l.ev === 'frame')
    expect(f).toMatchObject({ seq: 2, len: 100_000, ok: false, shared: true }) // seq 1 was the dropped one; its bytes are 1, not seq & 0xff
    expect(ipc.stats().dropped).toBe(1)
  })

  it('notices a peer that exits: its endpoints are removed and its socket file is gone', async () => {
    const { dir, bus, ipc } = setup()
    const { small } = topics(bus)
    const c = child(dir, 'sub')
    await until(forwarded(bus, 'small'), 'the child to subscribe')
    const ready = await c.line((l) => l.ev === 'ready')
    expect(existsSync(join(dir, `${String(ready.id)}.sock`))).toBe(true)
    const lost = new Promise<IpcPeerLostEvent>((r) => ipc.once('peer-lost', r))
    small.publish({ stop: true })
    const e = await lost
    expect(e).toMatchObject({ pid: c.pid, id: ready.id })
    expect(e.endpoints).toBeGreaterThanOrEqual(3)
    expect((await c.exited).code).toBe(0)
    await until(() => !forwarded(bus, 'small')(), 'the forwarder to close')
    expect(bus.info().topics.find((t) => t.name === 'echo')!.publishers.filter((p) => p.remote)).toEqual([])
    expect(existsSync(join(dir, `${String(ready.id)}.sock`))).toBe(false)
  })

  it('makes the runtime directory 0700 and its socket 0600, and refuses a directory others can enter', () => {
    const { dir, ipc } = setup()
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(ipc.path).mode & 0o777).toBe(0o600)
    expect(readdirSync(dir)).toContain(`${ipc.id}.sock`)
    const loose = mkdtempSync(join(tmpdir(), 'onbus-ipc-loose-'))
    cleanup.push(() => rmSync(loose, { recursive: true, force: true }))
    chmodSync(loose, 0o755)
    const bus2 = createBus({ name: 'loose' })
    cleanup.push(() => bus2.close())
    expect(() => bus2.addTransport(createIpcTransport({ dir: loose }))).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_IPC_UNSAFE_DIR' }))
  })

  it('finds peers that start later, and two buses of one process too', async () => {
    const { dir, bus, ipc } = setup()
    const { small } = topics(bus)
    const got: number[] = []
    small.subscribe((v) => got.push(v.i!))
    await sleep(50)
    const bus2 = createBus({ name: 'second' })
    const ipc2 = createIpcTransport({ dir })
    bus2.addTransport(ipc2)
    cleanup.push(() => {
      bus2.close()
      ipc2.close()
    })
    await until(() => ipc.peerList().length === 1 && ipc2.peerList().length === 1, 'both to see each other')
    const t2 = bus2.topic('small', { qos: qosProfiles.reliable, codec: jsonCodec<{ i?: number }>() })
    const p2 = t2.publisher()
    await until(() => small.info().publishers.some((p) => p.remote !== undefined), 'the proxy')
    for (let i = 0; i < 10; i++) p2.publish({ i })
    await until(() => got.length === 10, 'ten messages')
    expect(got).toEqual([...Array(10).keys()])
  })
})
