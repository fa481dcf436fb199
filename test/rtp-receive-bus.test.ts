/**
 * receiver.publishTo(topic): frames onto a bus topic, in-process and to a
 * perception process on the other side of the shared-memory IPC transport
 * (test/fixtures/rtp-perception.mjs, from dist/).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBus, createIpcTransport, qosProfiles } from '../lib/bus/index.js'
import { createRtpReceiver, videoFrameCodec, type VideoFrameData } from '../lib/video/receiver.js'
import { waitFor } from './helpers/rtp-receive.js'
import { emulatorLimit } from './helpers/emulator.js'

// Every check runs with the receiver on onbus's I/O thread and on the JavaScript thread (libuv poll).
const THREADS = ['io', 'js'] as const

// Without kernel stamps (qemu-user) frames carry no receive time.
const noStamps = emulatorLimit('timestamping')

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c()
})

function rtp(seq: number, ts: number, payload: Buffer, marker: boolean): Buffer {
  const h = Buffer.alloc(12)
  h[0] = 0x80
  h[1] = (marker ? 0x80 : 0) | 96
  h.writeUInt16BE(seq, 2)
  h.writeUInt32BE(ts, 4)
  h.writeUInt32BE(0xcafe, 8)
  return Buffer.concat([h, payload])
}
const SPS = Buffer.from([0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0])
/** Frame k: SPS + an IDR for k = 0, a P slice of k-dependent bytes after. */
function frame(k: number): Buffer[] {
  const body = Buffer.alloc(3000 + k * 100, k)
  if (k === 0) return [rtp(0, 0, SPS, false), rtp(1, 0, Buffer.concat([Buffer.from([0x65]), body]).subarray(0, 1200), true)]
  return [rtp(k + 1, k * 3000, Buffer.concat([Buffer.from([0x41]), body]).subarray(0, 1000), true)]
}

async function sendFrames(port: number, n: number): Promise<void> {
  const s = createSocket('udp4')
  for (let k = 0; k < n; k++) for (const p of frame(k)) await new Promise<void>((r) => s.send(p, port, '127.0.0.1', () => r()))
  s.close()
}

for (const thread of THREADS) {
  describe(`RTP receiver → bus (thread: ${thread})`, () => {
    it('publishTo(topic) delivers every frame with its metadata to an in-process subscriber', async () => {
      const bus = createBus({ name: 'rtp-bus' })
      const rx = createRtpReceiver({ thread, port: 0, codec: 'h264', rtcp: false })
      cleanup.push(() => rx.close(), () => bus.close())
      const t = bus.topic('camera/front', { qos: qosProfiles.sensorData, codec: videoFrameCodec })
      const got: { f: VideoFrameData; rx: bigint | undefined }[] = []
      t.subscribe((f, meta) => got.push({ f, rx: meta.rxTime }))
      const att = rx.publishTo(t)
      const direct: VideoFrameData[] = []
      rx.on('frame', (f) => direct.push(f.copy()))
      await sendFrames(rx.ports().rtp, 5)
      expect(await waitFor(() => got.length === 5)).toBe(true)
      expect(att.stats().published).toBe(5)
      for (let k = 0; k < 5; k++) {
        expect(got[k].f.rtpTimestamp).toBe(direct[k].rtpTimestamp)
        expect(got[k].f.complete).toBe(true)
        expect(Buffer.from(got[k].f.data).equals(Buffer.from(direct[k].data))).toBe(true)
        const last = direct[k].rxLast
        if (!noStamps) expect(got[k].rx).toBe(BigInt(last!.sec) * 1_000_000_000n + BigInt(last!.nsec))
      }
      expect(got[0].f.keyframe).toBe(true)
      expect(Buffer.from(got[0].f.parameterSets.sps!).equals(SPS)).toBe(true)
    })

    it('a perception process gets the frames through the IPC transport, byte for byte', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'onbus-rtp-bus-'))
      const bus = createBus({ name: 'camera-node' })
      const ipc = createIpcTransport({ dir })
      bus.addTransport(ipc)
      const rx = createRtpReceiver({ thread, port: 0, codec: 'h264', rtcp: false })
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }), () => ipc.close(), () => bus.close(), () => rx.close())
      const t = bus.topic('camera/front', { qos: qosProfiles.sensorData, codec: videoFrameCodec })
      rx.publishTo(t)
      const hashes: string[] = []
      rx.on('frame', (f) => hashes.push(createHash('sha256').update(f.data).digest('hex')))

      const script = fileURLToPath(new URL('./fixtures/rtp-perception.mjs', import.meta.url))
      const child = spawn(process.execPath, [script, dir], { stdio: ['pipe', 'pipe', 'inherit'] })
      cleanup.push(() => child.kill())
      const lines: Record<string, unknown>[] = []
      let buf = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d
        let i: number
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, i)))
          buf = buf.slice(i + 1)
        }
      })
      // The child's subscriber is announced to us: our forwarder for the topic exists.
      const forwarded = () => bus.info().topics.some((x) => x.name === 'camera/front' && x.subscribers.some((s) => s.forwarder !== undefined))
      expect(await waitFor(forwarded, 15_000)).toBe(true)
      await sendFrames(rx.ports().rtp, 6)
      expect(await waitFor(() => lines.filter((l) => l.ev === 'frame').length === 6, 15_000)).toBe(true)
      const frames = lines.filter((l) => l.ev === 'frame')
      expect(frames.map((l) => l.sha)).toEqual(hashes)
      expect(frames.map((l) => l.rtpTimestamp)).toEqual([0, 3000, 6000, 9000, 12000, 15000])
      expect(frames.every((l) => l.complete === true && (noStamps !== undefined || l.rxTime !== null))).toBe(true)
      expect(frames[0]).toMatchObject({ keyframe: true, sps: SPS.toString('hex') })
      child.stdin.end()
    })
  })
}
