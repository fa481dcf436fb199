// Helpers for the MAVLink tests: a seeded PRNG and random field values that
// survive the wire exactly (floats are already float32, strings ASCII).
import type { FieldDef, MessageDef } from '../lib/mavlink/index.js'

/** mulberry32: small, seeded, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1))
}

function bigRand(r: () => number, signed: boolean): bigint {
  const hi = BigInt(randInt(r, 0, 0xffffffff))
  const lo = BigInt(randInt(r, 0, 0xffffffff))
  const u = (hi << 32n) | lo
  return signed ? BigInt.asIntN(64, u) : u
}

function scalar(r: () => number, type: FieldDef['type']): number | bigint | string {
  // a fifth of the values are zero, so trailing-zero truncation gets exercised
  const zero = r() < 0.2
  switch (type) {
    case 'char':
      return zero ? '\0' : String.fromCharCode(randInt(r, 0x20, 0x7e))
    case 'int8_t':
      return zero ? 0 : randInt(r, -128, 127)
    case 'uint8_t':
    case 'uint8_t_mavlink_version':
      return zero ? 0 : randInt(r, 0, 255)
    case 'int16_t':
      return zero ? 0 : randInt(r, -32768, 32767)
    case 'uint16_t':
      return zero ? 0 : randInt(r, 0, 65535)
    case 'int32_t':
      return zero ? 0 : randInt(r, -2147483648, 2147483647)
    case 'uint32_t':
      return zero ? 0 : randInt(r, 0, 4294967295)
    case 'float':
      return zero ? 0 : Math.fround((r() - 0.5) * 10 ** randInt(r, -3, 8))
    case 'double':
      return zero ? 0 : (r() - 0.5) * 10 ** randInt(r, -3, 12)
    case 'int64_t':
      return zero ? 0n : bigRand(r, true)
    case 'uint64_t':
      return zero ? 0n : bigRand(r, false)
  }
}

export function randomValue(r: () => number, f: FieldDef): unknown {
  if (f.arrayLength === 0) return scalar(r, f.type)
  if (f.type === 'char') {
    const n = r() < 0.2 ? 0 : randInt(r, 1, f.arrayLength)
    let s = ''
    for (let i = 0; i < n; i++) s += String.fromCharCode(randInt(r, 0x20, 0x7e))
    return s
  }
  const a: unknown[] = []
  for (let i = 0; i < f.arrayLength; i++) a.push(scalar(r, f.type))
  return a
}

/** Random data for every field of a message (extensions included unless `base`). */
export function randomData(r: () => number, def: MessageDef, base = false): Record<string, unknown> {
  const d: Record<string, unknown> = {}
  for (const f of def.fields) if (!(base && f.extension)) d[f.name] = randomValue(r, f)
  return d
}

/** A value as the decoder returns it, normalised for comparison. */
export function norm(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>)
  return v
}

/** Compares decoded fields with the data that was encoded; returns the first mismatch or ''. */
export function mismatch(def: MessageDef, data: Record<string, unknown>, read: (name: string) => unknown, base = false, only?: ReadonlySet<string>): string {
  for (const f of def.fields) {
    if (base && f.extension) continue
    if (only && !only.has(f.name)) continue
    let want = data[f.name]
    let got = norm(read(f.name))
    if (f.type === 'char' && f.arrayLength === 0) {
      want = want === '\0' ? '\0' : want
      if (typeof got === 'number') got = String.fromCharCode(got)
    }
    if (Array.isArray(want)) {
      if (!Array.isArray(got) || got.length !== want.length || want.some((x, k) => x !== (got as unknown[])[k])) return `${def.name}.${f.name}: ${String(want)} != ${String(got)}`
    } else if (want !== got) return `${def.name}.${f.name}: ${String(want)} != ${String(got)}`
  }
  return ''
}
