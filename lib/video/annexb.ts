/**
 * Annex-B byte streams (ITU-T H.264 / H.265 Annex B): start-code splitting
 * into NAL units, NAL header fields, and grouping NAL units into access units
 * (one coded picture each) the way an encoder's elementary stream is cut.
 *
 * Every function returns views (`subarray`) over the input: no NAL byte is
 * copied, so the views are valid as long as the caller keeps the input.
 */

import type { VideoCodec } from './types.js'
export type { VideoCodec } from './types.js'

/** H.264 NAL unit types (ITU-T H.264 Table 7-1) used here. */
export const H264_NAL = { SLICE: 1, IDR: 5, SEI: 6, SPS: 7, PPS: 8, AUD: 9, STAP_A: 24, FU_A: 28 } as const
/** H.265 NAL unit types (ITU-T H.265 Table 7-1) used here. */
export const H265_NAL = { IRAP_FIRST: 16, IRAP_LAST: 23, VPS: 32, SPS: 33, PPS: 34, AUD: 35, PREFIX_SEI: 39, AP: 48, FU: 49 } as const

/**
 * Splits an Annex-B byte stream at its start codes (`00 00 01`, `00 00 00 01`)
 * into NAL units, without start codes and without trailing zero bytes.
 * Bytes before the first start code are ignored (a stream cut mid-NAL).
 * @example
 * for (const nal of splitNals(au)) console.log(nalType(nal, 'h264'))
 */
export function splitNals(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  const n = buf.length
  let start = -1
  let i = 0
  while (i + 2 < n) {
    // Skip fast: a start code needs buf[i+2] <= 1.
    if (buf[i + 2] > 1) {
      i += 3
      continue
    }
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      if (start >= 0) pushTrimmed(out, buf, start, i)
      start = i + 3
      i += 3
      continue
    }
    i++
  }
  if (start >= 0) pushTrimmed(out, buf, start, n)
  return out
}

function pushTrimmed(out: Uint8Array[], buf: Uint8Array, start: number, end: number): void {
  // The zero byte of a four-byte start code, and trailing_zero_8bits, belong to no NAL.
  while (end > start && buf[end - 1] === 0) end--
  if (end > start) out.push(buf.subarray(start, end))
}

/** The NAL unit type of `nal` (first header byte(s)). */
export function nalType(nal: Uint8Array, codec: VideoCodec): number {
  return codec === 'h264' ? nal[0] & 0x1f : (nal[0] >> 1) & 0x3f
}

/** Size of the NAL unit header: 1 byte (H.264) or 2 (H.265). */
export function nalHeaderSize(codec: VideoCodec): number {
  return codec === 'h264' ? 1 : 2
}

/** True for a coded slice (VCL NAL unit). */
export function isVcl(type: number, codec: VideoCodec): boolean {
  return codec === 'h264' ? type >= 1 && type <= 5 : type <= 31
}

/** True for a NAL unit that makes its access unit a random-access point: IDR (H.264), IRAP (H.265). */
export function isKeyframeNal(type: number, codec: VideoCodec): boolean {
  return codec === 'h264' ? type === H264_NAL.IDR : type >= H265_NAL.IRAP_FIRST && type <= H265_NAL.IRAP_LAST
}

/** True for a parameter set: SPS/PPS (H.264), VPS/SPS/PPS (H.265). */
export function isParameterSet(type: number, codec: VideoCodec): boolean {
  return codec === 'h264' ? type === H264_NAL.SPS || type === H264_NAL.PPS : type >= H265_NAL.VPS && type <= H265_NAL.PPS
}

/** True when a VCL NAL unit is the first slice of its picture (first_mb_in_slice = 0 / first_slice_segment_in_pic_flag). */
function firstSliceOfPicture(nal: Uint8Array, codec: VideoCodec): boolean {
  // H.264: first_mb_in_slice is ue(v); it is 0 exactly when its first bit is 1.
  if (codec === 'h264') return nal.length > 1 && (nal[1] & 0x80) !== 0
  return nal.length > 2 && (nal[2] & 0x80) !== 0
}

/** True for a non-VCL NAL unit that, after a picture's slices, starts the next access unit (H.264 7.4.1.2.3, H.265 7.4.2.4.4). */
function startsAccessUnit(type: number, codec: VideoCodec): boolean {
  if (codec === 'h264') return type === 6 || type === 7 || type === 8 || type === 9 || (type >= 14 && type <= 18)
  return (type >= 32 && type <= 35) || type === 39 || (type >= 41 && type <= 44) || (type >= 48 && type <= 55)
}

/**
 * Groups an Annex-B stream's NAL units into access units (one picture each,
 * with the parameter sets, SEI and delimiters that precede it).
 * @example
 * const aus = splitAccessUnits(readFileSync('clip.h264'), 'h264')
 * for (const au of aus) sender.sendFrame(au, { ptsUs: i++ * 33_333 })
 */
export function splitAccessUnits(buf: Uint8Array | Uint8Array[], codec: VideoCodec): Uint8Array[][] {
  const nals = Array.isArray(buf) ? buf : splitNals(buf)
  const aus: Uint8Array[][] = []
  let cur: Uint8Array[] = []
  let hasVcl = false
  for (const nal of nals) {
    if (nal.length < nalHeaderSize(codec)) continue
    const t = nalType(nal, codec)
    if (hasVcl && ((isVcl(t, codec) && firstSliceOfPicture(nal, codec)) || startsAccessUnit(t, codec))) {
      aus.push(cur)
      cur = []
      hasVcl = false
    }
    cur.push(nal)
    if (isVcl(t, codec)) hasVcl = true
  }
  if (cur.length > 0) aus.push(cur)
  return aus
}

const START_CODE = new Uint8Array([0, 0, 0, 1])

/** Joins NAL units into one Annex-B buffer with four-byte start codes (copies). */
export function toAnnexB(nals: Uint8Array[]): Buffer {
  let len = 0
  for (const n of nals) len += 4 + n.length
  const out = Buffer.allocUnsafe(len)
  let o = 0
  for (const n of nals) {
    out.set(START_CODE, o)
    out.set(n, o + 4)
    o += 4 + n.length
  }
  return out
}
