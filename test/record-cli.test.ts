/**
 * `onbus record` and `onbus replay` in child processes, against a publisher
 * in a third process over IPC: record until SIGINT (exit 0, JSON summary,
 * readable file), replay onto the bus (a subscriber here gets every message
 * in order) and onto UDP, MAVLink replayed onto a PTY and parsed on the far
 * end, --recover, and usage errors (exit 2).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { McapIndexedReader } from '@mcap/core'
import { createBus, createIpcTransport, qosProfiles, rawCodec } from '../lib/bus/index.js'
import { createRecorder } from '../lib/record/index.js'
import { decompressHandlers, FileReadable } from '../lib/record/io.js'
import { createSerialLink, createUdpLink } from '../lib/links/index.js'
import { MavlinkEncoder, MavlinkParser, Heartbeat, Attitude } from '../lib/mavlink/index.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const cli = fileURLToPath(new URL('./children/cli.mjs', import.meta.url))
const pub = fileURLToPath(new URL('./children/record-ipc-pub.mjs', import.meta.url))
const built = existsSync(fileURLToPath(new URL('../dist/lib/cli/commands/record.js', import.meta.url)))
if (!built) console.warn('skipping: dist/lib/cli is not built (npm run build:ts)')
const haveSocat = spawnSync('socat', ['-V']).status === 0
if (!haveSocat) console.warn('skipping the PTY replay test: socat is not installed (apt-get install socat)')
// serialport configures the PTY with TCGETS2/TCSETS2, which qemu-user lacks.
const noTermios = skipUnderEmulator('termios2')

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f()
})

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'onbus-cli-rec-'))
  cleanup.push(() => rmSync(d, { recursive: true, force: true }))
  return d
}

interface Proc {
  p: ChildProcess
  out: string
  err: string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  waitFor(text: string, ms?: number): Promise<void>
}

function run(script: string, args: string[]): Proc {
  const p = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  cleanup.push(() => p.kill('SIGKILL'))
  const r: Proc = {
    p,
    out: '',
    err: '',
    exit: new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal }))),
    async waitFor(text, ms = 30_000) {
      const t0 = Date.now()
      while (!r.out.includes(text)) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for '${text}'; stdout: ${r.out}; stderr: ${r.err}`)
        await new Promise((res) => setTimeout(res, 20))
      }
    },
  }
  p.stdout!.on('data', (d: Buffer) => (r.out += d.toString()))
  p.stderr!.on('data', (d: Buffer) => (r.err += d.toString()))
  return r
}

const lastJson = (s: string) => JSON.parse(s.trim().split('\n').filter((l) => l.startsWith('{')).pop()!)

describe.skipIf(!built)('onbus record / replay (CLI)', () => {
  it('records another process’s topics until SIGINT, replays them onto the bus and UDP, recovers', async () => {
    const dir = tmp()
    const file = join(dir, 'flight.mcap')
    const n = 40
    const publisher = run(pub, [dir, String(n)])
    await publisher.waitFor('"ready"')
    const rec = run(cli, ['record', '-o', file, '--ipc-dir', dir, '--json'])
    await publisher.waitFor('"published"')
    // Let the last messages cross, then stop it the way a user would.
    await new Promise((r) => setTimeout(r, 500))
    rec.p.kill('SIGINT')
    const { code } = await rec.exit
    expect(rec.err).toBe('')
    expect(code).toBe(0)
    const s = lastJson(rec.out)
    expect(s.stoppedBy).toBe('SIGINT')
    expect(s.messages).toBe(3 * n)
    expect(s.dropped).toBe(0)
    publisher.p.stdin!.end()
    await publisher.exit

    const readable = await FileReadable.open(file)
    const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
    expect(Number(reader.statistics!.messageCount)).toBe(3 * n)
    await readable.close()

    // Replay onto the bus of this process (over IPC) and onto UDP.
    const bus = createBus({ name: 'replay-sink' })
    const ipc = createIpcTransport({ dir })
    bus.addTransport(ipc)
    cleanup.push(() => bus.close())
    const got: number[] = []
    bus.topic('ipc/raw', { qos: qosProfiles.sensorData, codec: rawCodec }).subscribe((v) => void got.push(v[0]))
    const rx = createUdpLink({ address: '127.0.0.1', port: 0 })
    cleanup.push(() => rx.close())
    const udp: number[] = []
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) udp.push(b.view(i)[0])
    })
    const rp = run(cli, ['replay', file, '--rate', '4', '--ipc-dir', dir, '--udp', `ipc/raw=127.0.0.1:${rx.address().port}`, '--wait', '1s', '--json'])
    const r = await rp.exit
    expect(rp.err).toBe('')
    expect(r.code).toBe(0)
    const rs = lastJson(rp.out)
    expect(rs.messages).toBe(3 * n)
    expect(rs.reader).toBe('indexed')
    const want = Array.from({ length: n }, (_, i) => (i + 1) & 0xff)
    const deadline = Date.now() + 10_000
    while ((got.length < n || udp.length < n) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    expect(got).toEqual(want)
    expect(udp).toEqual(want)

    // --recover on a complete file rewrites it (and says so).
    const fixed = join(dir, 'fixed.mcap')
    const rc = run(cli, ['record', '--recover', file, '-o', fixed, '--json'])
    expect((await rc.exit).code).toBe(0)
    const rcs = lastJson(rc.out)
    expect(rcs.complete).toBe(true)
    expect(rcs.messages).toBe(3 * n)
  }, 90_000)

  it.skipIf(!haveSocat || noTermios)('replays MAVLink onto a PTY: the far end parses every frame', async () => {
    const dir = tmp()
    const file = join(dir, 'mav.mcap')
    // A recording with MAVLink frames on a raw topic typed 'mavlink' (as the daemon's configuration says).
    const bus = createBus({ name: 'mav-rec' })
    const t = bus.topic('mavlink/rx', { qos: qosProfiles.sensorData, codec: rawCodec })
    const rec = await createRecorder({ bus, path: file, typeOf: (name) => (name === 'mavlink/rx' ? 'mavlink' : undefined) })
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const frames: Uint8Array[] = []
    for (let i = 0; i < 30; i++) {
      const f = (i % 2 ? enc.encode(Attitude, { time_boot_ms: i, roll: i / 10, pitch: 0, yaw: 0, rollspeed: 0, pitchspeed: 0, yawspeed: 0 }) : enc.encode(Heartbeat, { type: 2, autopilot: 3, base_mode: 0, custom_mode: i, system_status: 4 })).slice()
      frames.push(f)
      t.publish(f)
      await new Promise((r) => setTimeout(r, 2))
    }
    await rec.close()
    bus.close()
    {
      const readable = await FileReadable.open(file)
      const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
      const names = [...reader.channelsById.values()].map((c) => c.metadata.get('mavlink.name')).sort()
      expect(names).toEqual(['ATTITUDE', 'HEARTBEAT'])
      expect([...reader.channelsById.values()].every((c) => c.metadata.get('onbus.type') === 'mavlink')).toBe(true)
      await readable.close()
    }

    const a = join(dir, 'tty-a')
    const b = join(dir, 'tty-b')
    const socat = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' })
    cleanup.push(() => socat.kill('SIGKILL'))
    for (let i = 0; i < 300 && !(existsSync(a) && existsSync(b)); i++) await new Promise((r) => setTimeout(r, 10))
    const far = createSerialLink({ path: b, baudRate: 115200 })
    cleanup.push(() => far.close())
    const parser = new MavlinkParser()
    const parsed: string[] = []
    far.onBatch((batch) => {
      for (let i = 0; i < batch.length; i++) parser.push(batch.view(i), (f) => void parsed.push(`${f.msgid}:${f.seq}`))
    })
    const rp = run(cli, ['replay', file, '--pty', `mavlink/rx=${a}`, '--no-bus', '--json'])
    const r = await rp.exit
    expect(rp.err).toBe('')
    expect(r.code).toBe(0)
    expect(lastJson(rp.out).messages).toBe(30)
    const deadline = Date.now() + 10_000
    while (parsed.length < 30 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    expect(parsed).toEqual(frames.map((f) => `${f[7] | (f[8] << 8) | (f[9] << 16)}:${f[4]}`))
  }, 60_000)

  it('replay --loop runs until SIGINT, then exits 0 with its summary', async () => {
    const dir = tmp()
    const file = join(dir, 'loop.mcap')
    const bus = createBus({ name: 'loop-rec' })
    const t = bus.topic('pkt', { qos: qosProfiles.sensorData, codec: rawCodec })
    const rec = await createRecorder({ bus, path: file })
    for (let i = 0; i < 20; i++) {
      t.publish(new Uint8Array([i]))
      await new Promise((r) => setTimeout(r, 1))
    }
    await rec.close()
    bus.close()
    const rx = createUdpLink({ address: '127.0.0.1', port: 0 })
    cleanup.push(() => rx.close())
    let got = 0
    rx.onBatch((b) => void (got += b.length))
    const rp = run(cli, ['replay', file, '--loop', '--rate', '5', '--no-bus', '--udp', `pkt=127.0.0.1:${rx.address().port}`, '--json'])
    const deadline = Date.now() + 30_000
    while (got < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(got).toBeGreaterThanOrEqual(50)
    rp.p.kill('SIGINT')
    const r = await rp.exit
    expect(rp.err).toBe('')
    expect(r.code).toBe(0)
    const s = lastJson(rp.out)
    expect(s.stoppedBy).toBe('SIGINT')
    expect(s.loops).toBeGreaterThanOrEqual(2)
    expect(s.messages).toBeGreaterThanOrEqual(50)
  }, 60_000)

  it('usage errors exit with code 2 and say what is wrong', async () => {
    const noOut = run(cli, ['record', '--duration', '1s'])
    expect((await noOut.exit).code).toBe(2)
    expect(noOut.err).toMatch(/-o <file.mcap>/)
    const missing = run(cli, ['replay', join(tmp(), 'nope.mcap'), '--no-bus'])
    expect((await missing.exit).code).toBe(1)
    expect(missing.err).toMatch(/ENOENT/)
  }, 30_000)
})

