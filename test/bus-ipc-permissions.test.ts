/**
 * Only processes of the same user reach a bus: the runtime directory is 0700,
 * sockets 0600, memfds 0600 and passed only by SCM_RIGHTS to checked peers,
 * and both ends of every connection check SO_PEERCRED. Tested with a second
 * uid (`nobody`), which needs root; skipped with the reason otherwise.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBus, createIpcTransport, jsonCodec, qosProfiles, type IpcRefusedEvent } from '../lib/bus/index.js'
import { Peer, until, sleep } from './children/ipc-harness.js'

const NOBODY = 65534
const intruder = fileURLToPath(new URL('./children/ipc-intruder.mjs', import.meta.url))
const peerScript = fileURLToPath(new URL('./children/ipc-peer.mjs', import.meta.url))
const dist = fileURLToPath(new URL('../dist/bindings/index.js', import.meta.url))

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to run a child as another uid (nobody)'
  for (const f of [intruder, peerScript, dist, process.execPath]) {
    const r = spawnSync('test', ['-r', f], { uid: NOBODY, gid: NOBODY })
    if (r.status !== 0) return `${f} is not readable by uid ${NOBODY}`
  }
  return null
}
const reason = skipReason()
if (reason) console.log(`[skip] bus-ipc-permissions: ${reason}`)
const haveSocat = spawnSync('socat', ['-V']).status === 0

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f()
})

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'onbus-ipc-'))
  const bus = createBus({ name: 'owner' })
  const ipc = createIpcTransport({ dir, shmSlots: 2, shmSlotSize: 1 << 20 })
  bus.addTransport(ipc)
  const refused: IpcRefusedEvent[] = []
  ipc.on('refused', (e: IpcRefusedEvent) => refused.push(e))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  cleanup.push(() => {
    bus.close()
    ipc.close()
  })
  // Make the ring exist (its descriptor is what the intruder goes after).
  ipc.loan(16)!.cancel()
  return { dir, bus, ipc, refused }
}

function runIntruder(dir: string, path: string, ringFd: number): Record<string, Record<string, unknown>> {
  const r = spawnSync(process.execPath, [intruder, dir, path, String(process.pid), String(ringFd)], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 10_000 })
  const out: Record<string, Record<string, unknown>> = {}
  for (const l of r.stdout.split('\n')) if (l.startsWith('{')) out[(JSON.parse(l) as { ev: string }).ev] = JSON.parse(l)
  if (!out.connect) throw new Error(`intruder failed: ${r.stderr}`)
  return out
}

describe.skipIf(reason !== null)('bus between processes: permissions (second uid)', () => {
  it('owner-only files: directory 0700, socket 0600, ring memfd 0600 and sealed', () => {
    const { dir, ipc } = setup()
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(ipc.path).mode & 0o777).toBe(0o600)
    expect(statSync(`/proc/self/fd/${ipc.ringFd}`).mode & 0o777).toBe(0o600)
  })

  it('another uid can neither list the directory, open the ring through /proc, nor connect', () => {
    const { dir, ipc, refused } = setup()
    const r = runIntruder(dir, ipc.path, ipc.ringFd)
    expect(r.readdir.code).toBe('EACCES')
    expect(r['open-ring'].code).toBe('EACCES')
    expect(r.connect.rc).toBe(-13) // the 0700 directory stops it before any socket
    expect(refused).toEqual([])
  })

  it('with the directory opened up by mistake, SO_PEERCRED still refuses on both ends', async () => {
    const { dir, bus, ipc, refused } = setup()
    chmodSync(dir, 0o755)
    chmodSync(ipc.path, 0o777)
    const r = runIntruder(dir, ipc.path, ipc.ringFd)
    // The intruder's own check: its peer (the owner) is uid 0, not nobody.
    expect(r.connect).toMatchObject({ rc: -13, uid: 0, pid: process.pid })
    // The owner's check on accept: reported, closed, nothing read.
    await until(() => refused.length >= 1, 'the refusal on accept')
    expect(refused[0]).toMatchObject({ direction: 'in', uid: NOBODY, code: 'EACCES' })

    if (haveSocat) {
      // A client that skips its own check and sends a forged announcement and message: the owner still reads nothing.
      const got: unknown[] = []
      bus.topic('small', { qos: qosProfiles.reliable, codec: jsonCodec() }).subscribe((v) => got.push(v))
      const hello = '\x01{"proc":"0-forged","pid":1,"bus":"x"}'
      const s = spawnSync('socat', ['-t', '1', '-', `UNIX-CONNECT:${ipc.path},type=5`], { input: hello, uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 5000 })
      expect(s.error).toBeUndefined()
      await until(() => refused.length >= 2, 'the refusal of the socat client')
      expect(refused[1]).toMatchObject({ direction: 'in', uid: NOBODY })
      await sleep(50)
      expect(got).toEqual([])
      expect(ipc.peerList()).toEqual([])
    }
  })

  it('a bus process of another uid cannot join the owner\'s directory (it refuses to start)', async () => {
    const { dir, ipc } = setup()
    const p = new Peer([dir, 'sub'], { uid: NOBODY, gid: NOBODY })
    cleanup.push(() => p.kill())
    const end = await p.exited
    expect(end.code).not.toBe(0)
    expect(p.stderr).toMatch(/ERR_ONBUS_IPC_UNSAFE_DIR|EACCES/)
    expect(ipc.peerList()).toEqual([])
    expect(ipc.stats().peers).toBe(0)
  })
})
