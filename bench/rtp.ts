/**
 * RTP video receive benchmark: onbus's native receiver against a
 * straightforward `dgram` + JavaScript depacketiser and against GStreamer
 * (`udpsrc ! rtph264depay ! fakesink`), on loopback, in one run.
 *
 *   node dist/bench/rtp.js [--quick] [--runs 3] [--seconds 10] [--only 1080p,2160p]
 *
 * Prints one JSON object per line: { name, value, unit, baseline, baselineName,
 * ratio, runs } (ratio = onbus ÷ baseline; lower is better for CPU and
 * latency), like bench/run.ts's other modules. Progress goes to stderr.
 *
 * The onbus receiver runs once per thread mode each round: `rtp.<stream>.*`
 * rows are `thread: 'io'` (the default), `rtp.<stream>.js.*` `thread: 'js'`.
 *
 * Method:
 * - Streams: H.264 1080p30 at ~8 Mbit/s and 2160p30 at ~40 Mbit/s, encoded
 *   once by GStreamer (x264enc ultrafast/zerolatency, rtph264pay mtu 1400)
 *   and recorded to a .rtpcap file in the temp directory (lib/video/capture:
 *   recordGstStream; packet times derived from the RTP timestamps), reused by
 *   later runs.
 * - Each receiver runs in its own child process and gets the same capture,
 *   replayed with its original timing over UDP by this process. CPU = the
 *   child's user + system time (all threads; /proc/<pid>/stat) during the
 *   replay, per minute of video. Runs of the three are interleaved.
 * - Latency (onbus): kernel receive stamp of a frame's last packet → the
 *   frame handler (both CLOCK_REALTIME). dgram cannot see kernel stamps: its
 *   figure is from the 'message' callback of the last packet → the frame
 *   handler, a lower bound of the same path (the kernel → JavaScript part is
 *   missing). So both are also measured from a common reference: the time
 *   the replay was due to send the frame's last packet → the frame handler
 *   (`latency_from_send_*`; includes the replay's own timer lateness, the
 *   same for both). The first 15 frames of each run are left out (cold code).
 *   GStreamer: CPU only (its frames end in fakesink).
 * - CPU comes in clock ticks (10 ms): use --seconds 10 or more for figures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { args, emit, RealtimeClock, Samples } from './common.js'

const opt = args()
const SELF = fileURLToPath(import.meta.url)
const TICK = 100 // USER_HZ: /proc/<pid>/stat times are in clock ticks
const WARM_FRAMES = 15 // the first frames run cold code (JIT): not in the latency figures

function procCpuSec(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / TICK // utime, stime (fields 14, 15)
  } catch {
    return NaN
  }
}

// ------------------------------------------------------------------ children

/** A straightforward JavaScript H.264 depacketiser: single NAL, STAP-A, FU-A; AUs by marker bit; no reordering. */
class JsDepay {
  private parts: Buffer[] = []
  private fu: Buffer[] | null = null
  private static SC = Buffer.from([0, 0, 0, 1])
  frames = 0
  push(p: Buffer): Buffer | null {
    if (p.length < 12 || p[0] >> 6 !== 2) return null
    let off = 12 + 4 * (p[0] & 0x0f)
    if (p[0] & 0x10) off += 4 + 4 * p.readUInt16BE(off + 2)
    let end = p.length
    if (p[0] & 0x20) end -= p[end - 1]
    if (off >= end) return null
    const pl = p.subarray(off, end)
    const type = pl[0] & 0x1f
    if (type >= 1 && type <= 23) this.parts.push(JsDepay.SC, pl)
    else if (type === 24) {
      for (let o = 1; o + 2 <= pl.length; ) {
        const n = pl.readUInt16BE(o)
        o += 2
        if (o + n > pl.length) break
        this.parts.push(JsDepay.SC, pl.subarray(o, o + n))
        o += n
      }
    } else if (type === 28 && pl.length > 2) {
      if (pl[1] & 0x80) this.fu = [JsDepay.SC, Buffer.from([(pl[0] & 0xe0) | (pl[1] & 0x1f)])]
      if (this.fu) this.fu.push(pl.subarray(2))
      if (pl[1] & 0x40 && this.fu) {
        this.parts.push(...this.fu)
        this.fu = null
      }
    }
    if (p[1] & 0x80) {
      const au = Buffer.concat(this.parts)
      this.parts = []
      this.frames++
      return au
    }
    return null
  }
}

async function child(kind: string, capPath: string): Promise<void> {
  const { native } = await import('../bindings/index.js')
  const { readCapture } = await import('../lib/video/capture.js')
  const clock = new RealtimeClock(() => native.clockNs(0))
  const lat = new Samples(1 << 16)
  // When the replay was due to send each frame's last packet (ns after the
  // replay's start): the common reference for every receiver.
  const due = new Map<number, number>()
  const cap = readCapture(capPath)
  const first = cap.packets[0].timeNs
  for (const p of cap.packets) due.set(p.data.readUInt32BE(4), Number(p.timeNs - first))
  const latSend = new Samples(1 << 16)
  let start = NaN
  const fromSend = (rtpTs: number, now: number) => {
    const d = due.get(rtpTs)
    if (d !== undefined && frames > WARM_FRAMES) latSend.add(now - (start + d))
  }
  let frames = 0
  let bytes = 0
  let port = 0
  let close: () => void = () => {}
  if (kind === 'onbus' || kind === 'onbus-js') {
    const { createRtpReceiver } = await import('../lib/video/receiver.js')
    const thread = kind === 'onbus-js' ? 'js' : 'io'
    const rx = createRtpReceiver({ port: 0, codec: 'h264', latencyMs: 50, rtcp: false, rcvBuf: 16 << 20, thread })
    rx.on('frame', (f) => {
      const now = clock.now()
      frames++
      bytes += f.data.length
      if (f.rxLast && frames > WARM_FRAMES) lat.add(now - clock.kernel(f.rxLast.sec, f.rxLast.nsec))
      fromSend(f.rtpTimestamp, now)
    })
    port = rx.ports().rtp
    close = () => rx.close()
  } else {
    const sock = createSocket({ type: 'udp4', recvBufferSize: 16 << 20 })
    const d = new JsDepay()
    sock.on('message', (m) => {
      const t = clock.now()
      const au = d.push(m)
      if (au) {
        frames++
        bytes += au.length
        const now = clock.now()
        if (frames > WARM_FRAMES) lat.add(now - t)
        fromSend(m.readUInt32BE(4), now)
      }
    })
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    port = sock.address().port
    close = () => sock.close()
  }
  emit({ ready: true, port })
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const [cmd, arg] = line.trim().split(' ')
    if (cmd === 'reset') {
      frames = bytes = 0
      lat.clear()
      latSend.clear()
      clock.calibrate()
      emit({ reset: true })
    } else if (cmd === 'start') {
      start = clock.kernelNs(BigInt(arg))
    } else if (cmd === 'report') emit({ frames, bytes, latency: lat.summary(), latencyFromSend: latSend.summary() })
  })
  rl.on('close', () => {
    close()
    process.exit(0)
  })
}

// ------------------------------------------------------------------ parent

interface Peer {
  proc: ChildProcess
  port: number
  next(): Promise<Record<string, unknown>>
}

function startNodeChild(kind: string, capPath: string): Promise<Peer> {
  const proc = spawn(process.execPath, [SELF, '--child', kind, '--capture', capPath], { stdio: ['pipe', 'pipe', 'inherit'] })
  const queue: Record<string, unknown>[] = []
  const waiters: ((v: Record<string, unknown>) => void)[] = []
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    if (!l.startsWith('{')) return
    const v = JSON.parse(l)
    const w = waiters.shift()
    if (w) w(v)
    else queue.push(v)
  })
  const next = () => new Promise<Record<string, unknown>>((r) => (queue.length ? r(queue.shift()!) : waiters.push(r)))
  return next().then((ready) => ({ proc, port: ready.port as number, next }))
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  const p = s.address().port
  s.close()
  return p
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)] : NaN
}

async function main(): Promise<void> {
  const quick = opt.quick === 'true'
  const runs = Number(opt.runs ?? (quick ? 1 : 3))
  const seconds = Number(opt.seconds ?? (quick ? 3 : 10))
  const only = opt.only ? new Set(opt.only.split(',')) : null
  const gst = spawnSync('gst-inspect-1.0', ['--exists', 'x264enc'], { stdio: 'ignore' }).status === 0
  if (!gst) {
    console.error('rtp bench: GStreamer with x264enc is needed to record the streams (gstreamer1.0-plugins-ugly); skipped')
    return
  }
  const { recordGstStream, readCapture, replayCapture } = await import('../lib/video/capture.js')
  const { native } = await import('../bindings/index.js')
  const streams = [
    { name: '1080p', width: 1920, height: 1080, kbps: 8000 },
    { name: '2160p', width: 3840, height: 2160, kbps: 40000 },
  ].filter((s) => !only || only.has(s.name))
  for (const s of streams) {
    console.error(`rtp bench: recording ${s.name}30 H.264 ${s.kbps} kbit/s, ${seconds} s (cached in the temp directory)`)
    const path = await recordGstStream({ width: s.width, height: s.height, fps: 30, bitrateKbps: s.kbps, seconds, codec: 'h264' })
    const cap = readCapture(path)
    const videoMin = seconds / 60
    const res: Record<string, { cpu: number[]; p50: number[]; p99: number[]; s50: number[]; s99: number[]; frames: number[] }> = {}
    const add = (k: string, cpu: number, r?: Record<string, unknown>) => {
      const e = (res[k] ??= { cpu: [], p50: [], p99: [], s50: [], s99: [], frames: [] })
      e.cpu.push(cpu / videoMin)
      if (r) {
        const l = r.latency as { p50: number; p99: number }
        const ls = r.latencyFromSend as { p50: number; p99: number }
        e.p50.push(l.p50)
        e.p99.push(l.p99)
        e.s50.push(ls.p50)
        e.s99.push(ls.p99)
        e.frames.push(r.frames as number)
      }
    }
    for (let run = 0; run < runs; run++) {
      for (const kind of ['onbus', 'onbus-js', 'dgram']) {
        const peer = await startNodeChild(kind, path)
        peer.proc.stdin!.write('reset\n')
        await peer.next()
        const c0 = procCpuSec(peer.proc.pid!)
        peer.proc.stdin!.write(`start ${native.clockNs(0)}\n`)
        await replayCapture(cap, { host: '127.0.0.1', port: peer.port })
        await new Promise((r) => setTimeout(r, 300))
        const c1 = procCpuSec(peer.proc.pid!)
        peer.proc.stdin!.write('report\n')
        const r = await peer.next()
        peer.proc.stdin!.end()
        add(kind, c1 - c0, r)
        console.error(`  ${s.name} ${kind}: ${r.frames} frames, cpu ${(c1 - c0).toFixed(2)} s, latency ${JSON.stringify(r.latency)}, from send ${JSON.stringify(r.latencyFromSend)}`)
      }
      const port = await freePort()
      const g = spawn('gst-launch-1.0', ['-q', 'udpsrc', `port=${port}`, 'address=127.0.0.1', 'buffer-size=16777216', 'caps=application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96', '!', 'rtph264depay', '!', 'fakesink'], { stdio: 'ignore' })
      await new Promise((r) => setTimeout(r, 1500)) // pipeline start-up (not measured)
      const c0 = procCpuSec(g.pid!)
      await replayCapture(cap, { host: '127.0.0.1', port })
      await new Promise((r) => setTimeout(r, 300))
      const c1 = procCpuSec(g.pid!)
      g.kill('SIGINT')
      add('gstreamer', c1 - c0)
      console.error(`  ${s.name} gstreamer: cpu ${(c1 - c0).toFixed(2)} s`)
    }
    // rtp.<stream>.* = the default (I/O-thread) receiver; rtp.<stream>.js.* = thread: 'js'.
    for (const [kind, tag] of [['onbus', ''], ['onbus-js', '.js']] as const) {
      const on = res[kind]
      const n = `rtp.${s.name}${tag}`
      for (const [base, label] of [['dgram', 'dgram+js-depay'], ['gstreamer', 'gst rtph264depay']] as const) {
        const b = res[base]
        if (!b) continue
        emit({ name: `${n}.cpu_s_per_min`, value: median(on.cpu), unit: 's/min', baseline: median(b.cpu), baselineName: label, ratio: median(on.cpu) / median(b.cpu), runs: on.cpu })
      }
      emit({ name: `${n}.latency_p50`, value: median(on.p50), unit: 'us', baseline: median(res.dgram.p50), baselineName: 'dgram+js-depay (last packet callback → frame)', ratio: median(on.p50) / median(res.dgram.p50), runs: on.p50 })
      emit({ name: `${n}.latency_p99`, value: median(on.p99), unit: 'us', baseline: median(res.dgram.p99), baselineName: 'dgram+js-depay (last packet callback → frame)', ratio: median(on.p99) / median(res.dgram.p99), runs: on.p99 })
      emit({ name: `${n}.latency_from_send_p50`, value: median(on.s50), unit: 'us', baseline: median(res.dgram.s50), baselineName: 'dgram+js-depay', ratio: median(on.s50) / median(res.dgram.s50), runs: on.s50 })
      emit({ name: `${n}.latency_from_send_p99`, value: median(on.s99), unit: 'us', baseline: median(res.dgram.s99), baselineName: 'dgram+js-depay', ratio: median(on.s99) / median(res.dgram.s99), runs: on.s99 })
      emit({ name: `${n}.frames`, value: median(on.frames), unit: 'frames', baseline: median(res.dgram.frames), baselineName: 'dgram+js-depay', ratio: median(on.frames) / median(res.dgram.frames), runs: on.frames })
    }
  }
}

if (opt.child) await child(opt.child, opt.capture)
else await main()
