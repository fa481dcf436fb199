/**
 * The runtime the generated message modules build on: message and dialect
 * descriptors, the lazy message base class, and the field readers/writers.
 *
 * A decoded message is a view: its getters read the payload when a field is
 * touched, so a router that never looks inside a message pays nothing for it.
 */

/** MAVLink wire types (base type of arrays). */
export type FieldType =
  | 'char'
  | 'int8_t'
  | 'uint8_t'
  | 'uint8_t_mavlink_version'
  | 'int16_t'
  | 'uint16_t'
  | 'int32_t'
  | 'uint32_t'
  | 'float'
  | 'int64_t'
  | 'uint64_t'
  | 'double'

/** One field of a message, in wire order. */
export interface FieldDef {
  readonly name: string
  readonly type: FieldType
  /** Byte offset in the (zero-extended) payload. */
  readonly offset: number
  /** 0 for a scalar, N for `type[N]`. */
  readonly arrayLength: number
  /** MAVLink 2 extension field (after `<extensions/>`). */
  readonly extension: boolean
  /** Name of the enum the field takes its values from, if any. */
  readonly enum?: string
  /** The value is a combination of flags. */
  readonly bitmask?: boolean
}

/** Everything the framing layer needs to know about one message. */
export interface MessageDef<M extends MavlinkMessage = MavlinkMessage, D = any> {
  readonly id: number
  readonly name: string
  readonly crcExtra: number
  /** Payload length without extension fields (the MAVLink 1 length). */
  readonly minLength: number
  /** Payload length with extension fields. */
  readonly maxLength: number
  readonly fields: readonly FieldDef[]
  /** Wraps a payload of at least `maxLength` bytes (zero-extended), which the message then owns. */
  decode(bytes: Uint8Array): M
  /** Writes `data` at `offset` of `view`; the `maxLength` bytes there must be zero. */
  encode(data: D, view: DataView, offset: number): void
}

/** A generated message class: `Heartbeat`, `Attitude`, ... */
export interface MessageClass<M extends MavlinkMessage = MavlinkMessage, D = any> {
  readonly def: MessageDef<M, D>
  new (bytes: Uint8Array): M
}

/** The data type a message class encodes from. */
export type DataOf<C> = C extends { def: MessageDef<any, infer D> } ? D : never

/** A set of messages, looked up by id on the receive path. */
export interface Dialect {
  readonly name: string
  /** The dialect's protocol version (HEARTBEAT.mavlink_version). */
  readonly version: number
  readonly messages: ReadonlyMap<number, MessageDef>
  readonly byName: ReadonlyMap<string, MessageDef>
}

/** Field descriptor factory (keeps the generated tables short). */
export function F(name: string, type: FieldType, offset: number, arrayLength: number, extension: 0 | 1, enumName?: string, bitmask?: 0 | 1): FieldDef {
  const f: { -readonly [K in keyof FieldDef]: FieldDef[K] } = { name, type, offset, arrayLength, extension: extension === 1 }
  if (enumName !== undefined) f.enum = enumName
  if (bitmask) f.bitmask = true
  return f
}

/**
 * Builds a dialect from its own messages and the dialects it includes. A
 * message id defined twice with different definitions is an error.
 * @example
 * const mine = defineDialect('mine', 3, [MyMessage.def], [common.DIALECT])
 */
export function defineDialect(name: string, version: number, own: readonly MessageDef[], includes: readonly Dialect[] = []): Dialect {
  const messages = new Map<number, MessageDef>()
  const add = (d: MessageDef): void => {
    const prev = messages.get(d.id)
    if (prev && prev !== d) {
      if (prev.name !== d.name || prev.crcExtra !== d.crcExtra || prev.maxLength !== d.maxLength) {
        throw new Error(`MAVLink dialect ${name}: message id ${d.id} is both ${prev.name} and ${d.name}`)
      }
      return
    }
    messages.set(d.id, d)
  }
  for (const inc of includes) for (const d of inc.messages.values()) add(d)
  for (const d of own) add(d)
  const byName = new Map<string, MessageDef>()
  for (const d of messages.values()) byName.set(d.name, d)
  return { name, version, messages, byName }
}

/**
 * Base class of the generated messages. Subclasses add one getter per field;
 * names starting with `_` are the runtime's and no MAVLink field uses them.
 */
export abstract class MavlinkMessage {
  /** The zero-extended payload (owned by this message). */
  readonly _b: Uint8Array

  constructor(bytes: Uint8Array) {
    this._b = bytes
  }

  /** The descriptor of this message's type. */
  get _def(): MessageDef {
    return (this.constructor as unknown as MessageClass).def
  }

  /** All fields as a plain object (arrays as typed-array copies). */
  toObject(): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    const self = this as unknown as Record<string, unknown>
    for (const f of this._def.fields) out[f.name] = self[f.name]
    return out
  }

  /** JSON-friendly form: bigints as strings, typed arrays as arrays. */
  toJSON(): Record<string, unknown> {
    const o = this.toObject()
    for (const k of Object.keys(o)) {
      const v = o[k]
      if (typeof v === 'bigint') o[k] = v.toString()
      else if (ArrayBuffer.isView(v)) o[k] = Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? x.toString() : x))
    }
    return o
  }
}

// ---------------------------------------------------------------- readers
// Fields are read straight from the payload bytes: constructing a DataView
// costs several hundred ns in V8 (more than the rest of a decode), so the
// multi-byte readers assemble integers with shifts and reinterpret floats
// through a small scratch buffer.

const SCRATCH = new ArrayBuffer(8)
const S8 = new Uint8Array(SCRATCH)
const SF32 = new Float32Array(SCRATCH)
const SF64 = new Float64Array(SCRATCH)
const SI64 = new BigInt64Array(SCRATCH)
const SU64 = new BigUint64Array(SCRATCH)
/** Whether this machine stores numbers little-endian (as MAVLink does). */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function load(b: Uint8Array, o: number, n: number): void {
  if (LE) for (let k = 0; k < n; k++) S8[k] = b[o + k]
  else for (let k = 0; k < n; k++) S8[n - 1 - k] = b[o + k]
}
export function i8(b: Uint8Array, o: number): number {
  return (b[o] << 24) >> 24
}
export function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8)
}
export function i16(b: Uint8Array, o: number): number {
  return ((b[o] | (b[o + 1] << 8)) << 16) >> 16
}
export function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000
}
export function i32(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)
}
export function f32(b: Uint8Array, o: number): number {
  load(b, o, 4)
  return SF32[0]
}
export function f64(b: Uint8Array, o: number): number {
  load(b, o, 8)
  return SF64[0]
}
export function u64(b: Uint8Array, o: number): bigint {
  load(b, o, 8)
  return SU64[0]
}
export function i64(b: Uint8Array, o: number): bigint {
  load(b, o, 8)
  return SI64[0]
}

const utf8 = new TextDecoder('utf-8', { fatal: false })
const utf8enc = new TextEncoder()

/** `char[n]` as a string: UTF-8, up to the first NUL. */
export function rStr(b: Uint8Array, o: number, n: number): string {
  let end = o
  let ascii = true
  while (end < o + n && b[end] !== 0) {
    if (b[end] > 0x7f) ascii = false
    end++
  }
  if (ascii) {
    // common case (names, ids): skip the decoder
    let s = ''
    for (let i = o; i < end; i++) s += String.fromCharCode(b[i])
    return s
  }
  return utf8.decode(b.subarray(o, end))
}
export function rU8(b: Uint8Array, o: number, n: number): Uint8Array {
  return b.slice(o, o + n)
}
export function rI8(b: Uint8Array, o: number, n: number): Int8Array {
  return new Int8Array(b.buffer, b.byteOffset + o, n).slice()
}
export function rU16(b: Uint8Array, o: number, n: number): Uint16Array {
  const a = new Uint16Array(n)
  for (let i = 0; i < n; i++) a[i] = u16(b, o + 2 * i)
  return a
}
export function rI16(b: Uint8Array, o: number, n: number): Int16Array {
  const a = new Int16Array(n)
  for (let i = 0; i < n; i++) a[i] = i16(b, o + 2 * i)
  return a
}
export function rU32(b: Uint8Array, o: number, n: number): Uint32Array {
  const a = new Uint32Array(n)
  for (let i = 0; i < n; i++) a[i] = u32(b, o + 4 * i)
  return a
}
export function rI32(b: Uint8Array, o: number, n: number): Int32Array {
  const a = new Int32Array(n)
  for (let i = 0; i < n; i++) a[i] = i32(b, o + 4 * i)
  return a
}
export function rF32(b: Uint8Array, o: number, n: number): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = f32(b, o + 4 * i)
  return a
}
export function rF64(b: Uint8Array, o: number, n: number): Float64Array {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = f64(b, o + 8 * i)
  return a
}
export function rU64(b: Uint8Array, o: number, n: number): BigUint64Array {
  const a = new BigUint64Array(n)
  for (let i = 0; i < n; i++) a[i] = u64(b, o + 8 * i)
  return a
}
export function rI64(b: Uint8Array, o: number, n: number): BigInt64Array {
  const a = new BigInt64Array(n)
  for (let i = 0; i < n; i++) a[i] = i64(b, o + 8 * i)
  return a
}

// ---------------------------------------------------------------- writers
// The target bytes are zero on entry, so a short array or string leaves the
// rest zero, and an absent (undefined) value writes nothing.

/** A `bigint` field accepts a safe-integer `number` too. */
export function big(x: bigint | number | undefined): bigint {
  return typeof x === 'bigint' ? x : x === undefined ? 0n : BigInt(x)
}
/** A single `char` field: the first UTF-16 unit's low byte. */
export function wChar(s: string | undefined): number {
  return s ? s.charCodeAt(0) & 0xff : 0
}
/** `char[n]`: UTF-8, cut to `n` bytes at a character boundary; NUL-terminated only if shorter. */
export function wStr(v: DataView, o: number, n: number, s: string | undefined): void {
  if (!s) return
  const dst = new Uint8Array(v.buffer, v.byteOffset + o, n)
  let ascii = s.length <= n
  for (let i = 0; ascii && i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false
  if (ascii) {
    for (let i = 0; i < s.length; i++) dst[i] = s.charCodeAt(i)
    return
  }
  // encodeInto stops before a character that would not fit whole
  utf8enc.encodeInto(s, dst)
}
type Nums = ArrayLike<number> | undefined
type Bigs = ArrayLike<bigint | number> | undefined
export function wU8(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setUint8(o + i, a[i])
}
export function wI8(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setInt8(o + i, a[i])
}
export function wU16(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setUint16(o + 2 * i, a[i], true)
}
export function wI16(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setInt16(o + 2 * i, a[i], true)
}
export function wU32(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setUint32(o + 4 * i, a[i], true)
}
export function wI32(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setInt32(o + 4 * i, a[i], true)
}
export function wF32(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setFloat32(o + 4 * i, a[i], true)
}
export function wF64(v: DataView, o: number, n: number, a: Nums): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setFloat64(o + 8 * i, a[i], true)
}
export function wU64(v: DataView, o: number, n: number, a: Bigs): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setBigUint64(o + 8 * i, big(a[i]), true)
}
export function wI64(v: DataView, o: number, n: number, a: Bigs): void {
  if (a) for (let i = 0, m = Math.min(n, a.length); i < m; i++) v.setBigInt64(o + 8 * i, big(a[i]), true)
}

// ---------------------------------------------------------------- enums

/**
 * The entry name of an enum value, or undefined.
 * @example
 * enumName(MAV_TYPE, 2) // 'MAV_TYPE_QUADROTOR'
 */
export function enumName(e: Readonly<Record<string, number>>, value: number): string | undefined {
  for (const k in e) if (e[k] === value) return k
  return undefined
}

/**
 * The names of the flags set in a bitmask value (bits without a name are
 * reported as their numeric value).
 * @example
 * flagNames(MAV_MODE_FLAG, 0x81) // ['MAV_MODE_FLAG_CUSTOM_MODE_ENABLED', 'MAV_MODE_FLAG_SAFETY_ARMED']
 */
export function flagNames(e: Readonly<Record<string, number>>, value: number): string[] {
  const out: string[] = []
  let rest = value
  const seen = new Set<number>()
  const entries = Object.entries(e).filter(([, v]) => v > 0 && Number.isInteger(Math.log2(v)))
  entries.sort((a, b) => a[1] - b[1])
  for (const [k, v] of entries) {
    if (value >= 0 && Math.floor(value / v) % 2 === 1) {
      out.push(k)
      if (!seen.has(v)) rest -= v
      seen.add(v)
    }
  }
  if (rest !== 0) out.push(String(rest))
  return out
}
