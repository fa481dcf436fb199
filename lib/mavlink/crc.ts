/**
 * X.25 CRC (CRC-16/MCRF4XX) as MAVLink computes it, table-driven: one lookup
 * per byte. Equivalent to the spec's `crc_accumulate`:
 *   tmp = b ^ (crc & 0xff); tmp ^= (tmp << 4) & 0xff
 *   crc = (crc >> 8) ^ (tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)
 */

/** T(tmp) of the accumulate step, indexed by `b ^ crc` (low byte). */
const TABLE = new Uint16Array(256)
for (let x = 0; x < 256; x++) {
  let tmp = x
  tmp = (tmp ^ (tmp << 4)) & 0xff
  TABLE[x] = ((tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xffff
}

/** The CRC's initial value. */
export const CRC_INIT = 0xffff

/** Accumulates `data[start..end)` into `crc`. */
export function crcCalculate(data: Uint8Array, start: number, end: number, crc = CRC_INIT): number {
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ data[i]) & 0xff]
  return crc
}

/** Accumulates one byte. */
export function crcAccumulate(b: number, crc: number): number {
  return (crc >>> 8) ^ TABLE[(crc ^ b) & 0xff]
}

/**
 * Whether some CRC_EXTRA byte turns the running `crc` into `received`. Each
 * extra byte gives a different result (the step is a bijection), so exactly
 * 256 of the 65536 possible checksums pass: a frame of an unknown message id
 * that passes is consistent, and random bytes pass only 1 time in 256.
 */
export function crcExtraConsistent(crc: number, received: number): boolean {
  const t = (received ^ (crc >>> 8)) & 0xffff
  // TABLE[x] = T(tmp) with T's high byte h = tmp ^ (tmp >> 5); invert it
  const h = t >>> 8
  const tmp = h ^ (h >>> 5)
  return (((tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xffff) === t
}

/** The CRC_EXTRA byte a message descriptor would carry for `crc` (for tools). */
export function crcFold(crc: number): number {
  return (crc & 0xff) ^ (crc >>> 8)
}
