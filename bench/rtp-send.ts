/**
 * RTP send benchmark: CPU to packetise and send H.264 video, onbus
 * RtpSender vs a straightforward `dgram` + JavaScript FU-A packetiser (the
 * baseline, written here) vs GStreamer (`filesrc ! h264parse ! rtph264pay !
 * udpsink`), in one run.
 *
 *   node dist/bench/rtp-send.js [--quick] [--runs 3] [--seconds 10] [--repeat 6] [--only 1080p30,2160p30]
 *
 * `--quick` (bench/run.ts --quick): one run, 1080p30 only, the clip twice.
 *
 * Prints one JSON object per line: { name, value, unit, baseline, ratio, runs,
 * note } where `baseline` is the dgram figure of the same run and `ratio` =
 * value ÷ baseline (lower is better). Progress goes to stderr.
 *
 * Method: a clip is encoded once with GStreamer (videotestsrc, x264enc
 * ultrafast/zerolatency at the stream's bitrate, Annex-B) and split into
 * access units; the clip is repeated `--repeat` times (one minute of video by
 * default). After one unmeasured warm-up pass (JIT), each implementation sends it as fast as it
 * can (no pacing: the figure is the cost per frame, scaled to CPU seconds
 * per minute of video) to a UDP sink process on loopback that discards.
 * CPU = user + system of the sending process (getrusage; for GStreamer the
 * child's rusage). On loopback the kernel's receive path runs inside the
 * sender's send call, so every figure includes it equally. MTU 1400.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createRtpSender } from '../lib/video/sender.js'
import { splitAccessUnits, splitNals } from '../lib/video/annexb.js'

interface Row {
  name: string
  value: number
  unit: string
  baseline?: number
  baselineName?: string
  ratio?: number
  runs?: number[]
  note?: string
}
const emit = (r: Row) => console.log(JSON.stringify(r))
const log = (s: string) => process.stderr.write(s + '\n')
const round = (x: number) => Math.round(x * 1000) / 1000
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
const cpuS = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

const STREAMS: Record<string, { w: number; h: number; kbps: number }> = {
  '1080p30': { w: 1920, h: 1080, kbps: 8000 },
  '2160p30': { w: 3840, h: 2160, kbps: 40000 },
}

/** The sink: a child process that reads and discards datagrams, printing its port. */
async function startSink(): Promise<{ port: number; stop: () => void }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--sink'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d) => resolve(JSON.parse(String(d)).port)))
  return { port, stop: () => child.kill() }
}

function sink(): void {
  const s = createSocket({ type: 'udp4', recvBufferSize: 16 << 20 })
  s.on('message', () => {})
  s.bind(0, '127.0.0.1', () => console.log(JSON.stringify({ port: s.address().port })))
}

/** The baseline: RFC 6184 single NAL / FU-A written plainly, one dgram send per packet. */
async function sendDgram(aus: Uint8Array[][], port: number): Promise<void> {
  const sock = createSocket('udp4')
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
  sock.connect(port, '127.0.0.1')
  await new Promise((r) => sock.once('connect', r))
  let seq = 0
  const ssrc = 0x12345678
  const max = 1400 - 12
  let pending = 0
  let drained: (() => void) | null = null
  const sent = () => {
    if (--pending === 0 && drained) drained()
  }
  for (let f = 0; f < aus.length; f++) {
    const ts = (f * 3000) >>> 0
    const pkts: Buffer[] = []
    for (const nal of aus[f]) {
      if (nal.length <= max) pkts.push(Buffer.concat([Buffer.alloc(12), nal]))
      else {
        for (let off = 1; off < nal.length; off += max - 2) {
          const end = Math.min(nal.length, off + max - 2)
          const h = Buffer.from([(nal[0] & 0xe0) | 28, (off === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | (nal[0] & 0x1f)])
          pkts.push(Buffer.concat([Buffer.alloc(12), h, nal.subarray(off, end)]))
        }
      }
    }
    pkts.forEach((p, i) => {
      p[0] = 0x80
      p[1] = 96 | (i === pkts.length - 1 ? 0x80 : 0)
      p.writeUInt16BE(seq++ & 0xffff, 2)
      p.writeUInt32BE(ts, 4)
      p.writeUInt32BE(ssrc, 8)
      pending++
      sock.send(p, sent)
    })
    // Let the callbacks run every few frames so the send queue stays bounded, as a real sender at frame rate would.
    if (f % 4 === 3) await new Promise((r) => setImmediate(r))
  }
  if (pending > 0) await new Promise<void>((r) => (drained = r))
  sock.close()
}

async function sendOnbus(aus: Uint8Array[][], port: number, gso: boolean): Promise<void> {
  const tx = createRtpSender({ host: '127.0.0.1', port, codec: 'h264', mtu: 1400, gso, rtcp: false, sndBuf: 8 << 20 })
  for (let f = 0; f < aus.length; f++) {
    tx.sendFrame(aus[f], { rtpTimestamp: f * 3000 })
    if (f % 4 === 3) await new Promise((r) => setImmediate(r))
  }
  // Wait for anything the kernel pushed back to leave.
  while (tx.stats().queuedPackets > 0) await new Promise((r) => setTimeout(r, 1))
  await new Promise<void>((r) => tx.close(r))
}

/** GStreamer's CPU (child rusage via bash's `time`). */
function sendGst(clip: string, port: number): number {
  const r = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time gst-launch-1.0 -q filesrc location=${clip} ! h264parse ! rtph264pay mtu=1400 ! udpsink host=127.0.0.1 port=${port} sync=false >/dev/null`], { encoding: 'utf8' })
  const [u, s] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
  return u + s
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '10' }, repeat: { type: 'string', default: '6' }, only: { type: 'string' }, sink: { type: 'boolean' }, quick: { type: 'boolean' } } })
  if (values.sink) return sink()
  if (values.quick) {
    values.runs = '1'
    values.repeat = '2'
    values.only ??= '1080p30'
  }
  const runs = Number(values.runs)
  const seconds = Number(values.seconds)
  const which = values.only ? values.only.split(',') : Object.keys(STREAMS)
  const dir = mkdtempSync(join(tmpdir(), 'onbus-rtp-send-'))
  const sk = await startSink()
  try {
    for (const name of which) {
      const s = STREAMS[name]
      const clip = join(dir, `${name}.h264`)
      log(`encoding ${name} (${seconds} s at ${s.kbps} kbit/s)...`)
      const enc = spawnSync('sh', ['-c',
        `gst-launch-1.0 -q videotestsrc num-buffers=${seconds * 30} pattern=smpte horizontal-speed=4 ! video/x-raw,format=I420,width=${s.w},height=${s.h},framerate=30/1 ! ` +
        `x264enc bitrate=${s.kbps} speed-preset=ultrafast tune=zerolatency key-int-max=60 bframes=0 ! video/x-h264,stream-format=byte-stream,alignment=au ! filesink location=${clip}`])
      if (enc.status !== 0) throw new Error(`encoding failed: ${enc.stderr}`)
      const one = readFileSync(clip)
      const bytes = Buffer.concat(Array.from({ length: Number(values.repeat) }, () => one))
      writeFileSync(clip, bytes)
      const aus = splitAccessUnits(splitNals(bytes), 'h264')
      await sendDgram(aus, sk.port)
      await sendOnbus(aus, sk.port, true)
      const videoS = aus.length / 30
      const perMin = (cpu: number) => (cpu / videoS) * 60
      const res: Record<string, number[]> = { dgram: [], onbus: [], onbus_nogso: [], gst: [] }
      for (let r = 0; r < runs; r++) {
        for (const impl of ['dgram', 'onbus', 'onbus_nogso', 'gst'] as const) {
          let cpu: number
          if (impl === 'gst') cpu = sendGst(clip, sk.port)
          else {
            const c0 = cpuS()
            if (impl === 'dgram') await sendDgram(aus, sk.port)
            else await sendOnbus(aus, sk.port, impl === 'onbus')
            cpu = cpuS() - c0
          }
          res[impl].push(round(perMin(cpu)))
          log(`${name} run ${r + 1} ${impl}: ${round(perMin(cpu))} CPU s per video minute`)
        }
      }
      const base = median(res.dgram)
      for (const impl of ['onbus', 'onbus_nogso', 'gst', 'dgram'] as const) {
        const v = median(res[impl])
        emit({
          name: `rtp.send.${name}_${s.kbps / 1000}M.cpu_per_video_min.${impl}`,
          value: v,
          unit: 's',
          baseline: base,
          baselineName: 'dgram+JS FU-A',
          ratio: round(v / base),
          runs: res[impl],
          note: `${aus.length} frames, ${(bytes.length / 1e6).toFixed(1)} MB, mtu 1400, sent unpaced to a discarding sink; baseline dgram + JS FU-A`,
        })
      }
    }
  } finally {
    sk.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
