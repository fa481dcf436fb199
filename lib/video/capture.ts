/**
 * Capture and replay of RTP (or any UDP) streams, for benchmarks and
 * reproducible tests: record the datagrams arriving on a port with their
 * arrival times, replay them later over UDP with the original timing.
 *
 * File format (`.rtpcap`, little-endian, no padding):
 *
 *     header  16 bytes: magic "ONBUSCAP" (8) | u32 version = 1 | u32 flags
 *     record  per datagram: u64 time_ns | u32 length | length bytes of payload
 *
 * `time_ns` is the kernel receive stamp (CLOCK_REALTIME, ns) or, when the
 * kernel gave none, the realtime clock when the batch was read. With flag
 * bit 0 (`CAPTURE_FLAG_RTP_TIMING`) the times were derived from the RTP
 * timestamps instead (see {@link recordGstStream}): all packets of a frame
 * at the frame's time plus 10 µs per packet, i.e. the burst a live encoder
 * emits per frame. Replay only uses differences between times.
 *
 * Command line:
 *
 *     node dist/lib/video/capture.js record --port 5004 --out clip.rtpcap [--address 127.0.0.1] [--idle 2000] [--duration 10000]
 *     node dist/lib/video/capture.js replay clip.rtpcap --to 127.0.0.1:5004 [--speed 1]
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isIP } from 'node:net'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createUdpLink, type UdpLink } from '../links/udp/index.js'
import { invalidArgValue, onbusError } from '../errors.js'
import { now } from '../time.js'
import type { VideoCodec } from './types.js'

export const CAPTURE_MAGIC = 'ONBUSCAP'
export const CAPTURE_VERSION = 1
/** Times were derived from RTP timestamps, not measured on arrival. */
export const CAPTURE_FLAG_RTP_TIMING = 1

/** One recorded datagram. */
export interface CapturedPacket {
  /** Arrival (or derived) time, ns. */
  timeNs: bigint
  data: Buffer
}

export interface Capture {
  flags: number
  packets: CapturedPacket[]
}

/** Serialises packets into the `.rtpcap` format. */
export function encodeCapture(packets: CapturedPacket[], flags = 0): Buffer {
  let len = 16
  for (const p of packets) len += 12 + p.data.length
  const out = Buffer.alloc(len)
  out.write(CAPTURE_MAGIC, 0, 'latin1')
  out.writeUInt32LE(CAPTURE_VERSION, 8)
  out.writeUInt32LE(flags, 12)
  let o = 16
  for (const p of packets) {
    out.writeBigUInt64LE(p.timeNs, o)
    out.writeUInt32LE(p.data.length, o + 8)
    p.data.copy(out, o + 12)
    o += 12 + p.data.length
  }
  return out
}

/** Parses a `.rtpcap` buffer; throws `ERR_ONBUS_CAPTURE_FORMAT` on a bad header or a truncated record. */
export function decodeCapture(buf: Buffer): Capture {
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== CAPTURE_MAGIC) throw onbusError('ERR_ONBUS_CAPTURE_FORMAT', 'not an onbus capture (bad magic)')
  const version = buf.readUInt32LE(8)
  if (version !== CAPTURE_VERSION) throw onbusError('ERR_ONBUS_CAPTURE_FORMAT', `unsupported capture version ${version}`)
  const flags = buf.readUInt32LE(12)
  const packets: CapturedPacket[] = []
  let o = 16
  while (o < buf.length) {
    if (o + 12 > buf.length) throw onbusError('ERR_ONBUS_CAPTURE_FORMAT', `truncated record header at byte ${o}`)
    const len = buf.readUInt32LE(o + 8)
    if (o + 12 + len > buf.length) throw onbusError('ERR_ONBUS_CAPTURE_FORMAT', `truncated record at byte ${o}`)
    packets.push({ timeNs: buf.readBigUInt64LE(o), data: buf.subarray(o + 12, o + 12 + len) })
    o += 12 + len
  }
  return { flags, packets }
}

/** Reads a `.rtpcap` file into memory. */
export function readCapture(path: string): Capture {
  return decodeCapture(readFileSync(path))
}

/** Writes a `.rtpcap` file (atomically: a temporary file renamed into place). */
export function writeCapture(path: string, packets: CapturedPacket[], flags = 0): void {
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o644)
  try {
    writeSync(fd, encodeCapture(packets, flags))
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

export interface CaptureOptions {
  /** Port to listen on (0: ephemeral, see `port`). */
  port?: number
  /** Default 127.0.0.1. */
  address?: string
  /** Stop after this long. */
  durationMs?: number
  /** Stop when nothing arrived for this long after the first datagram. */
  idleMs?: number
  maxPackets?: number
  signal?: AbortSignal
}

/** A running recording. */
export interface CaptureSession {
  /** The port being recorded. */
  port: number
  /** Stops now. */
  stop(): void
  /** Resolves with what was recorded once stopped (by `stop`, duration, idle, count or signal). */
  done: Promise<{ packets: CapturedPacket[]; kernelDrops: number }>
}

/**
 * Records the datagrams arriving on a UDP port, with their kernel receive
 * times, in memory (write them with {@link writeCapture}).
 * @example
 * const rec = startCapture({ idleMs: 500 })
 * // point the stream at rec.port ...
 * const { packets } = await rec.done
 * writeCapture('clip.rtpcap', packets)
 */
export function startCapture(opts: CaptureOptions = {}): CaptureSession {
  const link: UdpLink = createUdpLink({ address: opts.address ?? '127.0.0.1', port: opts.port ?? 0, rcvBuf: 32 << 20, rxSlots: 8192, maxDatagramSize: 65535 })
  const packets: CapturedPacket[] = []
  let kernelDrops = 0
  let lastArrival = 0
  let resolve!: (v: { packets: CapturedPacket[]; kernelDrops: number }) => void
  const done = new Promise<{ packets: CapturedPacket[]; kernelDrops: number }>((r) => (resolve = r))
  const timers: NodeJS.Timeout[] = []
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    for (const t of timers) clearTimeout(t)
    clearInterval(idleTimer)
    link.close(() => resolve({ packets, kernelDrops }))
  }
  link.onBatch((b) => {
    const readAt = now('realtime')
    for (let i = 0; i < b.length && !stopped; i++) {
      packets.push({ timeNs: b.rxTime(i) ?? readAt, data: b.copy(i) })
      kernelDrops = b.kernelDrops(i)
      if (opts.maxPackets !== undefined && packets.length >= opts.maxPackets) stop()
    }
    lastArrival = performance.now()
  })
  if (opts.durationMs !== undefined) timers.push(setTimeout(stop, opts.durationMs))
  const idleTimer = setInterval(() => {
    if (opts.idleMs !== undefined && lastArrival > 0 && performance.now() - lastArrival > opts.idleMs) stop()
  }, Math.max(10, Math.min(100, (opts.idleMs ?? 100) / 4)))
  opts.signal?.addEventListener('abort', stop, { once: true })
  return { port: link.address().port, stop, done }
}

export interface ReplayOptions {
  host: string
  port: number
  /** Playback speed factor (2 = twice as fast). Default 1. */
  speed?: number
  /** Send through this link (e.g. to measure from a known source port); default a fresh send-only link. */
  link?: UdpLink
  signal?: AbortSignal
}

/**
 * Replays captured datagrams to `host:port` with their original spacing:
 * every timer tick sends, in one `sendBatch`, all the datagrams that are due.
 * Resolves when the last was sent.
 * @example
 * await replayCapture(readCapture('1080p30.rtpcap'), { host: '127.0.0.1', port: 5004 })
 */
export async function replayCapture(capture: Capture | string, opts: ReplayOptions): Promise<{ packets: number; bytes: number; durationMs: number }> {
  const cap = typeof capture === 'string' ? readCapture(capture) : capture
  const speed = opts.speed ?? 1
  if (!(speed > 0)) throw invalidArgValue('options.speed', speed, 'must be positive')
  const v6 = isIP(opts.host) === 6
  const loop = v6 ? opts.host === '::1' : opts.host.startsWith('127.')
  const link = opts.link ?? createUdpLink({ receive: false, sndBuf: 8 << 20, family: v6 ? 6 : 4, address: loop ? opts.host : v6 ? '::' : '0.0.0.0' })
  const pk = cap.packets
  let bytes = 0
  const t0 = performance.now()
  try {
    if (pk.length === 0) return { packets: 0, bytes: 0, durationMs: 0 }
    const first = pk[0].timeNs
    let i = 0
    while (i < pk.length) {
      if (opts.signal?.aborted) break
      const nowMs = performance.now() - t0
      const batch: Buffer[] = []
      while (i < pk.length && Number(pk[i].timeNs - first) / 1e6 / speed <= nowMs + 0.5) {
        batch.push(pk[i].data)
        bytes += pk[i].data.length
        i++
      }
      if (batch.length) link.sendBatch(batch, { port: opts.port, address: opts.host })
      if (i < pk.length) {
        const wait = Number(pk[i].timeNs - first) / 1e6 / speed - (performance.now() - t0)
        await new Promise((r) => setTimeout(r, Math.max(0, wait)))
      }
    }
    return { packets: i, bytes, durationMs: performance.now() - t0 }
  } finally {
    if (!opts.link) await new Promise<void>((r) => link.close(() => r()))
  }
}

/**
 * Rewrites capture times from the RTP timestamps (90 kHz): each frame (one
 * RTP timestamp) at its presentation time, its packets 10 µs apart. For
 * streams recorded faster than real time.
 */
export function retimeFromRtp(packets: CapturedPacket[], clockRate = 90000): CapturedPacket[] {
  if (packets.length === 0) return packets
  const t0 = packets[0].timeNs
  const ts0 = packets[0].data.readUInt32BE(4)
  let unwrapped = 0
  let prevTs = ts0
  let prevFrameNs = -1n
  let prevTime = 0n
  let k = 0
  return packets.map((p) => {
    const ts = p.data.readUInt32BE(4)
    unwrapped += (ts - prevTs) | 0 // signed 32-bit difference: survives the wrap
    prevTs = ts
    const frameNs = t0 + BigInt(Math.round((unwrapped * 1e9) / clockRate))
    k = frameNs === prevFrameNs ? k + 1 : 0
    prevFrameNs = frameNs
    // Never backwards (B-frames, or a source that is not RTP): replay order is capture order.
    let t = frameNs + BigInt(k) * 10_000n
    if (t < prevTime) t = prevTime
    prevTime = t
    return { timeNs: t, data: p.data }
  })
}

/** Options of {@link recordGstStream}. */
export interface GstStreamOptions {
  width: number
  height: number
  fps: number
  bitrateKbps: number
  seconds: number
  codec: VideoCodec
  /** rtph26xpay mtu. Default 1400. */
  mtu?: number
  /** Output file; default a cache file in the temp directory named after the parameters. */
  path?: string
  /** Record again even if the file exists. */
  force?: boolean
}

/**
 * Encodes a moving test pattern with GStreamer (`videotestsrc ! x264enc|x265enc
 * ! rtph264pay|rtph265pay mtu=… ! udpsink`), records the RTP packets and
 * writes them as a `.rtpcap` file (times derived from the RTP timestamps, so
 * the encoder's speed on this machine does not matter). The file is a cache:
 * an existing one is returned without recording again. Throws when a
 * sequence number is missing from the recording (a capture with gaps is not
 * a benchmark input).
 * @example
 * const path = await recordGstStream({ width: 1920, height: 1080, fps: 30, bitrateKbps: 8000, seconds: 10, codec: 'h264' })
 * await replayCapture(path, { host: '127.0.0.1', port })
 */
export async function recordGstStream(o: GstStreamOptions): Promise<string> {
  const mtu = o.mtu ?? 1400
  const dir = join(tmpdir(), 'onbus-rtpcap')
  const path = o.path ?? join(dir, `${o.codec}-${o.width}x${o.height}-${o.fps}fps-${o.bitrateKbps}k-${o.seconds}s-mtu${mtu}.rtpcap`)
  if (!o.force && existsSync(path)) {
    const fd = openSync(path, 'r')
    const head = Buffer.alloc(16)
    readSync(fd, head, 0, 16, 0)
    closeSync(fd)
    if (head.toString('latin1', 0, 8) === CAPTURE_MAGIC) return path
  }
  if (!o.path) mkdirSync(dir, { recursive: true })
  const frames = Math.round(o.fps * o.seconds)
  const rec = startCapture({ idleMs: 1500 })
  const enc =
    o.codec === 'h264'
      ? `x264enc bitrate=${o.bitrateKbps} speed-preset=ultrafast tune=zerolatency key-int-max=${o.fps * 2} bframes=0 ! rtph264pay mtu=${mtu} config-interval=-1 pt=96`
      : `x265enc bitrate=${o.bitrateKbps} speed-preset=ultrafast tune=zerolatency key-int-max=${o.fps * 2} ! rtph265pay mtu=${mtu} config-interval=-1 pt=97`
  const pipeline =
    `videotestsrc num-buffers=${frames} pattern=smpte horizontal-speed=4 ! video/x-raw,format=I420,width=${o.width},height=${o.height},framerate=${o.fps}/1 ! ` +
    `${enc} ! udpsink host=127.0.0.1 port=${rec.port} sync=false buffer-size=8388608`
  const child = spawn('sh', ['-c', `exec gst-launch-1.0 -q ${pipeline}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const code = await new Promise<number | null>((r) => {
    child.once('exit', (c) => r(c))
    child.once('error', () => r(-1))
  })
  if (code !== 0) {
    rec.stop()
    await rec.done
    throw onbusError('ERR_ONBUS_GST', `gst-launch-1.0 failed (${code}): ${stderr.trim() || 'is GStreamer with x264enc/x265enc installed?'}`)
  }
  const { packets } = await rec.done
  // Every sequence number must be there, in order (loopback, one sender).
  let gaps = 0
  for (let i = 1; i < packets.length; i++) if (((packets[i].data.readUInt16BE(2) - packets[i - 1].data.readUInt16BE(2)) & 0xffff) !== 1) gaps++
  if (packets.length === 0 || gaps > 0)
    throw onbusError('ERR_ONBUS_CAPTURE_GAPS', `recording has ${packets.length === 0 ? 'no packets' : `${gaps} sequence gaps (kernel drops?)`}; not written`)
  try {
    writeCapture(path, retimeFromRtp(packets), CAPTURE_FLAG_RTP_TIMING)
  } catch (err) {
    rmSync(path, { force: true })
    throw err
  }
  return path
}

/** The command line tool (see the file comment). Resolves with the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      address: { type: 'string' },
      out: { type: 'string' },
      idle: { type: 'string' },
      duration: { type: 'string' },
      to: { type: 'string' },
      speed: { type: 'string' },
    },
  })
  const [cmd, file] = positionals
  if (cmd === 'record' && values.port !== undefined && values.out) {
    const ac = new AbortController()
    process.once('SIGINT', () => ac.abort())
    const rec = startCapture({
      port: Number(values.port),
      address: values.address,
      idleMs: values.idle !== undefined ? Number(values.idle) : undefined,
      durationMs: values.duration !== undefined ? Number(values.duration) : undefined,
      signal: ac.signal,
    })
    console.log(JSON.stringify({ recording: rec.port }))
    const { packets, kernelDrops } = await rec.done
    writeCapture(values.out, packets)
    console.log(JSON.stringify({ packets: packets.length, kernelDrops, out: values.out }))
    return 0
  }
  if (cmd === 'replay' && file && values.to) {
    const i = values.to.lastIndexOf(':')
    const r = await replayCapture(file, { host: values.to.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(values.to.slice(i + 1)), speed: values.speed ? Number(values.speed) : 1 })
    console.log(JSON.stringify(r))
    return 0
  }
  console.error('usage: capture.js record --port P --out FILE [--address A] [--idle MS] [--duration MS]\n       capture.js replay FILE --to HOST:PORT [--speed X]')
  return 2
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main().then((code) => (process.exitCode = code))
