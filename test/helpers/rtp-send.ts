/**
 * GStreamer / FFmpeg helpers for the RTP send tests (H4's; test/helpers/video.ts is the receive side's): tool detection with a
 * stated reason, encoding a test clip, waiting for a peer's UDP port to be
 * bound, and stopping a peer so that it flushes its output.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync, existsSync, statSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRtpSender, type RtpSender, type RtpSenderOptions } from '../../lib/video/sender.js'
import { collectParameterSets, type ParameterSets } from '../../lib/video/sdp.js'
import { Rtp } from '../../lib/video/types.js'

const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

/** Undefined when every GStreamer element is installed; else the reason to skip. */
export function missingGst(elements: string[]): string | undefined {
  if (!which('gst-launch-1.0') || !which('gst-inspect-1.0')) return 'gst-launch-1.0 / gst-inspect-1.0 not installed (apt: gstreamer1.0-tools)'
  const missing = elements.filter((e) => spawnSync('gst-inspect-1.0', ['--exists', e]).status !== 0)
  return missing.length ? `GStreamer elements missing: ${missing.join(', ')} (apt: gstreamer1.0-plugins-good/-ugly/-bad, gstreamer1.0-libav)` : undefined
}

/** Undefined when ffmpeg is installed with the decoder; else the reason to skip. */
export function missingFfmpeg(decoder: string): string | undefined {
  if (!which('ffmpeg')) return 'ffmpeg not installed (apt: ffmpeg)'
  const r = spawnSync('ffmpeg', ['-hide_banner', '-decoders'], { encoding: 'utf8' })
  return r.stdout.includes(` ${decoder} `) ? undefined : `ffmpeg lacks the ${decoder} decoder`
}

export function skipReason(reason: string | undefined): boolean {
  if (reason) console.warn(`skipping: ${reason}`)
  return reason !== undefined
}

export function tempDir(prefix = 'onbus-video-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Encodes `frames` frames of a moving test pattern into an Annex-B file with GStreamer; returns the bytes. */
export function encodeClip(o: { codec: 'h264' | 'h265'; width: number; height: number; frames: number; fps?: number; kbps?: number; keyInt?: number; dir: string }): Buffer {
  const fps = o.fps ?? 30
  const out = join(o.dir, `clip-${o.width}x${o.height}-${o.frames}.${o.codec}`)
  const enc =
    o.codec === 'h264'
      ? `x264enc key-int-max=${o.keyInt ?? 30} bframes=0 speed-preset=ultrafast tune=zerolatency bitrate=${o.kbps ?? 3000} ! video/x-h264,stream-format=byte-stream,alignment=au`
      : `x265enc key-int-max=${o.keyInt ?? 30} speed-preset=ultrafast tune=zerolatency bitrate=${o.kbps ?? 3000} ! video/x-h265,stream-format=byte-stream,alignment=au`
  const pipeline = `videotestsrc num-buffers=${o.frames} horizontal-speed=8 ! video/x-raw,format=I420,width=${o.width},height=${o.height},framerate=${fps}/1 ! ${enc} ! filesink location=${out}`
  const r = spawnSync('sh', ['-c', `gst-launch-1.0 -q ${pipeline}`], { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0 || !existsSync(out)) throw new Error(`encoding failed: ${r.stderr}`)
  return readFileSync(out)
}

/** A UDP port pair (p, p+1) free at the moment of asking. */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const a = createSocket('udp4')
    await new Promise<void>((r) => a.bind(0, '127.0.0.1', r))
    const p = a.address().port
    const b = createSocket('udp4')
    const ok = p % 2 === 0 && (await new Promise<boolean>((r) => {
      b.once('error', () => r(false))
      b.bind(p + 1, '127.0.0.1', () => r(true))
    }))
    a.close()
    try {
      b.close()
    } catch {
      /* never bound */
    }
    if (ok) return p
  }
  throw new Error('no free UDP port pair')
}

/** True when some process has a UDP socket bound to `port` (from /proc/net/udp{,6}). */
export function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      if (readFileSync(f, 'utf8').split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex))) return true
    } catch {
      /* no IPv6 */
    }
  }
  return false
}

export async function until(cond: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, stepMs))
  }
  return cond()
}

export interface Peer {
  child: ChildProcess
  output: () => string
  /** SIGINT (gst-launch -e turns it into EOS, ffmpeg finishes its file) and waits for exit; SIGKILL after `graceMs`. */
  stop: (graceMs?: number) => Promise<number | null>
}

export function startPeer(cmd: string, args: string[]): Peer {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return {
    child,
    output: () => out,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      const code = await exited
      clearTimeout(t)
      return code
    },
  }
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface SendRun {
  /** Frames the peer decoded (raw I420 bytes written / frame size). */
  decoded: number
  sender: ReturnType<RtpSender['stats']>
  peerOutput: string
}

/** Parameter sets of a clip's first access unit. */
export function clipParameterSets(aus: Uint8Array[][], codec: 'h264' | 'h265'): ParameterSets {
  const ps: ParameterSets = {}
  for (const au of aus) collectParameterSets(au, codec, ps)
  return ps
}

/**
 * Starts `peer` (which must bind `port` and write raw I420 frames to `out`),
 * sends the access units through an onbus RtpSender at `fps`, waits until
 * the peer wrote every frame (or went quiet), stops it and counts frames.
 */
export async function sendThrough(o: {
  peer: (port: number, out: string, dir: string) => Peer
  aus: Uint8Array[][]
  width: number
  height: number
  dir: string
  fps?: number
  sender: Omit<RtpSenderOptions, 'host' | 'port'>
  /** Route RTP through something (a relay): gets the peer's port, returns the port to send to. RTCP still goes to the peer's port + 1. */
  via?: (port: number) => number
  /** Called with the sender before the first frame (attach listeners). */
  onSender?: (s: RtpSender) => void
}): Promise<SendRun> {
  const port = await freePortPair()
  const out = join(o.dir, `out-${port}.yuv`)
  const frameSize = (o.width * o.height * 3) / 2
  const peer = o.peer(port, out, o.dir)
  try {
    if (!(await until(() => udpPortBound(port) || peer.child.exitCode !== null, 20_000))) throw new Error(`peer never bound port ${port}: ${peer.output()}`)
    if (peer.child.exitCode !== null) throw new Error(`peer exited: ${peer.output()}`)
    await sleep(300) // bound is not yet PLAYING: give the pipeline a moment
    const sender = o.via
      ? createRtpSender({ host: '127.0.0.1', port: o.via(port), rtcp: { port: port + 1 }, ...o.sender })
      : createRtpSender({ host: '127.0.0.1', port, ...o.sender })
    o.onSender?.(sender)
    const interval = 1000 / (o.fps ?? 30)
    const t0 = performance.now()
    for (let i = 0; i < o.aus.length; i++) {
      sender.sendFrame(o.aus[i], { ptsUs: Math.round((i * 1e6) / (o.fps ?? 30)) })
      const wait = t0 + (i + 1) * interval - performance.now()
      if (wait > 0) await sleep(wait)
    }
    let last = -1
    let quietSince = Date.now()
    await until(() => {
      const s = fileSize(out)
      if (s !== last) {
        last = s
        quietSince = Date.now()
      }
      return s >= o.aus.length * frameSize || Date.now() - quietSince > 3000
    }, 30_000, 100)
    const stats = sender.stats()
    await new Promise<void>((r) => sender.close(r))
    await peer.stop()
    const size = fileSize(out)
    return { decoded: size / frameSize, sender: stats, peerOutput: peer.output() }
  } finally {
    await peer.stop(2000)
  }
}

/** A gst-launch receiver: udpsrc → rtpjitterbuffer → depay → avdec → raw I420 file. */
export function gstReceiver(codec: 'h264' | 'h265'): (port: number, out: string) => Peer {
  const enc = codec === 'h264' ? 'H264' : 'H265'
  return (port, out) =>
    startPeer('gst-launch-1.0', [
      '-e',
      'udpsrc', 'address=127.0.0.1', `port=${port}`, 'buffer-size=8388608',
      `caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=${enc},payload=${Rtp.DEFAULT_PT[codec]}`,
      '!', 'rtpjitterbuffer', 'latency=500',
      '!', `rtp${codec}depay`,
      '!', `avdec_${codec}`,
      '!', 'videoconvert', '!', 'video/x-raw,format=I420',
      '!', 'filesink', `location=${out}`,
    ])
}

/** An ffmpeg receiver reading the sender's SDP; writes raw I420 frames. */
export function ffmpegReceiver(sdpText: (port: number) => string): (port: number, out: string, dir: string) => Peer {
  return (port, out, dir) => {
    const sdpPath = join(dir, `stream-${port}.sdp`)
    writeFileSync(sdpPath, sdpText(port))
    return startPeer('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'info',
      '-protocol_whitelist', 'file,udp,rtp',
      '-threads', '1',
      '-i', sdpPath,
      '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-y', out,
    ])
  }
}

/** GStreamer reading the sender's SDP (sdpdemux sets up udpsrc and rtpbin from it); writes raw I420 frames. */
export function gstSdpReceiver(codec: 'h264' | 'h265', sdpText: (port: number) => string): (port: number, out: string, dir: string) => Peer {
  return (port, out, dir) => {
    const sdpPath = join(dir, `gst-${port}.sdp`)
    writeFileSync(sdpPath, sdpText(port))
    return startPeer('gst-launch-1.0', [
      '-e',
      'filesrc', `location=${sdpPath}`, '!', 'sdpdemux', 'latency=500',
      '!', `rtp${codec}depay`, '!', `avdec_${codec}`,
      '!', 'videoconvert', '!', 'video/x-raw,format=I420',
      '!', 'filesink', `location=${out}`,
    ])
  }
}
