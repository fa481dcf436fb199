/**
 * A simulated RTP camera: loops a pre-encoded H.264 / H.265 clip through an
 * {@link RtpSender} at the clip's frame rate, RTCP on, as a vehicle's camera
 * or video encoder would stream it. Part of the daemon's simulated vehicle,
 * and a stream source for tests that need a live camera without an encoder.
 *
 * The clip must start with a keyframe (an encoder's stream does). Looping
 * restarts at that keyframe; RTP timestamps keep increasing across loops. A
 * keyframe request (RTCP PLI/FIR) makes the next frame sent the clip's next
 * keyframe (the camera skips ahead to it), as a real encoder would insert one.
 */
import { EventEmitter } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../bindings/index.js'
import { invalidArgValue, onbusError } from '../errors.js'
import { isKeyframeNal, nalType, splitAccessUnits, type VideoCodec } from '../video/annexb.js'
import { collectParameterSets, type ParameterSets } from '../video/sdp.js'
import { createRtpSender, type RtpSender, type RtpSenderOptions } from '../video/sender.js'

/** The clip shipped with the repository: 320×240, 30 fps, 2 s, H.264 constrained baseline, keyframe every second. */
export const DEFAULT_CAMERA_CLIP = 'assets/video/camera-320x240-30fps.h264'

/** Options of {@link createSimCamera}. */
export interface SimCameraOptions extends Omit<RtpSenderOptions, 'codec' | 'parameterSets'> {
  /** Annex-B clip file (absolute, or relative to the package root). Default {@link DEFAULT_CAMERA_CLIP}. */
  clip?: string
  /** Codec of the clip; default from the file extension (`.h265`/`.hevc` → h265), else h264. */
  codec?: VideoCodec
  /** Frames per second. Default 30. */
  fps?: number
  /** Start streaming at once (default true). */
  autostart?: boolean
}

/**
 * A simulated camera. Create with {@link createSimCamera}.
 * Events: `'frame'` (index sent), `'keyframe-request'`, `'error'`, `'close'`.
 */
export class SimCamera extends EventEmitter {
  readonly sender: RtpSender
  readonly fps: number
  readonly codec: VideoCodec
  /** The clip's access units. */
  readonly frames: Uint8Array[][]
  private readonly keyIndex: number[]
  private next = 0
  private sent = 0
  private timer: NodeJS.Timeout | null = null
  private t0 = 0
  private started = 0
  private jumpToKey = false
  private closed = false

  /** @internal use {@link createSimCamera} */
  constructor(o: SimCameraOptions) {
    super()
    const clip = o.clip ?? DEFAULT_CAMERA_CLIP
    const path = clip.startsWith('/') ? clip : join(packageRoot(), clip)
    if (!existsSync(path)) throw onbusError('ERR_ONBUS_SIM_CLIP', `camera clip not found: ${path}`)
    this.codec = o.codec ?? (/\.(h265|hevc|265)$/i.test(path) ? 'h265' : 'h264')
    this.fps = o.fps ?? 30
    if (!(this.fps > 0 && this.fps <= 1000)) throw invalidArgValue('options.fps', o.fps, 'must be in (0, 1000]')
    this.frames = splitAccessUnits(readFileSync(path), this.codec)
    this.keyIndex = []
    this.frames.forEach((au, i) => {
      if (au.some((n) => isKeyframeNal(nalType(n, this.codec), this.codec))) this.keyIndex.push(i)
    })
    if (this.frames.length === 0 || this.keyIndex[0] !== 0) throw onbusError('ERR_ONBUS_SIM_CLIP', `camera clip must start with a keyframe: ${path}`)
    const ps: ParameterSets = {}
    for (const au of this.frames) collectParameterSets(au, this.codec, ps)
    const { clip: _c, fps: _f, autostart, codec: _k, ...senderOpts } = o
    this.sender = createRtpSender({ ...senderOpts, codec: this.codec, parameterSets: ps })
    this.sender.on('error', (e) => this.emit('error', e))
    this.sender.on('keyframe-request', (r) => {
      this.jumpToKey = true
      this.emit('keyframe-request', r)
    })
    if (autostart ?? true) this.start()
  }

  /** Frames sent so far. */
  get framesSent(): number {
    return this.sent
  }

  /** SDP of the stream (parameter sets from the clip). */
  sdp(): string {
    return this.sender.sdp({ sessionName: 'onbus simulated camera', framerate: this.fps })
  }

  /** Starts (or resumes) streaming. */
  start(): void {
    if (this.timer || this.closed) return
    this.t0 = performance.now()
    this.started = this.sent
    this.tick()
  }

  /** Pauses streaming (the sender stays open). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private tick(): void {
    this.timer = null
    if (this.closed) return
    if (this.jumpToKey) {
      this.jumpToKey = false
      // The next keyframe at or after the current position (wrapping to the clip's start).
      this.next = this.keyIndex.find((k) => k >= this.next) ?? 0
    }
    const i = this.next
    this.sender.sendFrame(this.frames[i], { ptsUs: Math.round((this.sent * 1e6) / this.fps) })
    this.sent++
    this.next = (i + 1) % this.frames.length
    this.emit('frame', i)
    // Schedule against the start time, not the last tick, so timer lateness does not accumulate.
    const due = this.t0 + ((this.sent - this.started) * 1000) / this.fps
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - performance.now()))
  }

  /** Stops and closes the sender (RTCP BYE). */
  close(cb?: () => void): void {
    this.stop()
    if (this.closed) {
      if (cb) process.nextTick(cb)
      return
    }
    this.closed = true
    this.sender.close(() => {
      this.emit('close')
      cb?.()
    })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await new Promise<void>((r) => this.close(r))
  }
}

/**
 * Starts a simulated camera streaming RTP to `host:port`.
 * @example
 * const cam = createSimCamera({ host: '127.0.0.1', port: 5600 })
 * writeFileSync('cam.sdp', cam.sdp())
 */
export function createSimCamera(opts: SimCameraOptions): SimCamera {
  return new SimCamera(opts)
}
