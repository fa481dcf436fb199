/**
 * GStreamer / ffmpeg helpers of the RTP video tests: which tools and elements
 * exist (tests skip naming what is missing), running a pipeline to completion,
 * and decoding an elementary stream with ffmpeg to count (and hash) frames.
 */
import { spawn, spawnSync } from 'node:child_process'

export function haveTool(cmd: string, arg = '--version'): boolean {
  const r = spawnSync(cmd, [arg], { stdio: 'ignore', timeout: 10_000 })
  return r.status === 0
}

const elementCache = new Map<string, boolean>()
/** gst-inspect-1.0 knows every element named. */
export function haveGstElements(...names: string[]): boolean {
  for (const n of names) {
    let ok = elementCache.get(n)
    if (ok === undefined) {
      const r = spawnSync('gst-inspect-1.0', ['--exists', n], { stdio: 'ignore', timeout: 10_000 })
      ok = r.status === 0
      elementCache.set(n, ok)
    }
    if (!ok) return false
  }
  return true
}

/** The reason the given GStreamer elements cannot be used, or undefined. */
export function gstMissing(...names: string[]): string | undefined {
  if (!haveTool('gst-launch-1.0')) return 'gst-launch-1.0 is not installed (apt-get install gstreamer1.0-tools)'
  const missing = names.filter((n) => !haveGstElements(n))
  return missing.length ? `GStreamer element(s) missing: ${missing.join(', ')} (gstreamer1.0-plugins-good/-ugly/-bad/-libav)` : undefined
}

export function ffmpegMissing(): string | undefined {
  return haveTool('ffmpeg', '-version') ? undefined : 'ffmpeg is not installed (apt-get install ffmpeg)'
}

/** Runs a command to its end; rejects on a non-zero exit (with its stderr). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: Uint8Array } = {}): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    p.stdout.on('data', (d: Buffer) => out.push(d))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    p.on('error', (e) => {
      clearTimeout(t)
      reject(e)
    })
    p.on('close', (code, sig) => {
      clearTimeout(t)
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err })
      else reject(new Error(`${cmd} exited with ${code ?? sig}: ${err.slice(-2000)}`))
    })
    p.stdin.on('error', () => {})
    if (opts.input) p.stdin.end(opts.input)
    else p.stdin.end()
  })
}

/** Decodes an Annex-B H.264/H.265 stream with ffmpeg; returns one MD5 per decoded frame. */
export async function decodeFrames(annexb: Uint8Array, codec: 'h264' | 'h265'): Promise<string[]> {
  const { stdout } = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', codec === 'h264' ? 'h264' : 'hevc', '-i', 'pipe:0', '-fps_mode', 'passthrough', '-f', 'framemd5', 'pipe:1'], {
    input: annexb,
  })
  return stdout
    .toString()
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').pop()!.trim())
}

/** Polls `cond` until true or the deadline; generous by design (slow machines, emulators). */
export async function waitFor(cond: () => boolean, timeoutMs = 20_000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, stepMs))
  }
  return true
}
