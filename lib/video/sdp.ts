/**
 * SDP (RFC 8866) session descriptions for one RTP video stream, with the
 * codec parameters players need before the first keyframe arrives:
 * `sprop-parameter-sets` and `profile-level-id` for H.264 (RFC 6184 §8.1),
 * `sprop-vps` / `sprop-sps` / `sprop-pps` for H.265 (RFC 7798 §7.1).
 * Accepted as is by `ffmpeg -protocol_whitelist file,udp,rtp -i stream.sdp`
 * and by GStreamer's `sdpdemux`.
 */
import { isIP } from 'node:net'
import { H264_NAL, H265_NAL, nalType, type VideoCodec } from './annexb.js'
import { Rtp, RTP_VIDEO_CLOCK_RATE, type ParameterSets } from './types.js'

export type { ParameterSets } from './types.js'

export interface SdpOptions {
  codec: VideoCodec
  /** Destination address of the stream (`c=` line). */
  address: string
  /** Destination RTP port (`m=` line). */
  port: number
  payloadType?: number
  clockRate?: number
  /** RTCP port when it is not `port + 1` (`a=rtcp:`). */
  rtcpPort?: number
  /** Origin address (`o=` line); default `address`. */
  origin?: string
  sessionName?: string
  parameterSets?: ParameterSets
  /** Nominal frame rate (`a=framerate:`). */
  framerate?: number
  /** Session id (`o=` line); default derived from the time. */
  sessionId?: number
}

function ipLine(addr: string): string {
  return `IN ${isIP(addr) === 6 ? 'IP6' : 'IP4'} ${addr}`
}

const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64')

/** profile-level-id (6 hex digits) from an H.264 SPS: profile_idc, constraint flags, level_idc. */
export function h264ProfileLevelId(sps: Uint8Array): string {
  return Buffer.from(sps.subarray(1, 4)).toString('hex')
}

/**
 * Builds an SDP description of one video stream.
 * @example
 * writeFileSync('stream.sdp', generateSdp({ codec: 'h264', address: '127.0.0.1', port: 5004, parameterSets: sender.parameterSets() }))
 */
export function generateSdp(o: SdpOptions): string {
  const pt = o.payloadType ?? Rtp.DEFAULT_PT[o.codec]
  const clock = o.clockRate ?? RTP_VIDEO_CLOCK_RATE
  const ps = o.parameterSets ?? {}
  const sid = o.sessionId ?? Math.floor(Date.now() / 1000)
  const lines = [
    'v=0',
    `o=- ${sid} 1 ${ipLine(o.origin ?? o.address)}`,
    `s=${o.sessionName ?? 'onbus'}`,
    `c=${ipLine(o.address)}${isMulticast(o.address) && isIP(o.address) === 4 ? '/16' : ''}`,
    't=0 0',
    `m=video ${o.port} RTP/AVP ${pt}`,
  ]
  if (o.rtcpPort !== undefined && o.rtcpPort !== o.port + 1) lines.push(`a=rtcp:${o.rtcpPort}`)
  const fmtp: string[] = []
  if (o.codec === 'h264') {
    lines.push(`a=rtpmap:${pt} H264/${clock}`)
    fmtp.push('packetization-mode=1')
    if (ps.sps && ps.sps.length >= 4) fmtp.push(`profile-level-id=${h264ProfileLevelId(ps.sps)}`)
    if (ps.sps && ps.pps) fmtp.push(`sprop-parameter-sets=${b64(ps.sps)},${b64(ps.pps)}`)
  } else {
    lines.push(`a=rtpmap:${pt} H265/${clock}`)
    if (ps.vps) fmtp.push(`sprop-vps=${b64(ps.vps)}`)
    if (ps.sps) fmtp.push(`sprop-sps=${b64(ps.sps)}`)
    if (ps.pps) fmtp.push(`sprop-pps=${b64(ps.pps)}`)
  }
  if (fmtp.length) lines.push(`a=fmtp:${pt} ${fmtp.join(';')}`)
  if (o.framerate) lines.push(`a=framerate:${o.framerate}`)
  lines.push('a=recvonly')
  return lines.join('\r\n') + '\r\n'
}

function isMulticast(addr: string): boolean {
  if (isIP(addr) === 4) {
    const first = Number(addr.split('.')[0])
    return first >= 224 && first <= 239
  }
  return addr.toLowerCase().startsWith('ff')
}

/**
 * Picks the parameter sets out of NAL units (the last of each kind wins).
 * Returns `changed: true` when one differs from `into`.
 */
export function collectParameterSets(nals: Uint8Array[], codec: VideoCodec, into: ParameterSets): boolean {
  let changed = false
  for (const n of nals) {
    const t = nalType(n, codec)
    let key: keyof ParameterSets | undefined
    if (codec === 'h264') key = t === H264_NAL.SPS ? 'sps' : t === H264_NAL.PPS ? 'pps' : undefined
    else key = t === H265_NAL.VPS ? 'vps' : t === H265_NAL.SPS ? 'sps' : t === H265_NAL.PPS ? 'pps' : undefined
    if (!key) continue
    const old = into[key]
    if (!old || Buffer.compare(Buffer.from(old.buffer, old.byteOffset, old.byteLength), Buffer.from(n.buffer, n.byteOffset, n.byteLength)) !== 0) {
      into[key] = Uint8Array.from(n) // a copy: the caller's frame buffer may be reused
      changed = true
    }
  }
  return changed
}
