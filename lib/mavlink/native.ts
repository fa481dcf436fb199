/**
 * The native MAVLink parser (native/mavlink/parse.h) as JavaScript sees it:
 * dialect tables handed over once, a parser handle per link that frames
 * stream links on the I/O thread and parses UDP batches in one call.
 *
 * @internal Used by {@link MavlinkLink}; the router uses the same dialect handle.
 */
import { native } from '../../bindings/index.js'
import type { Dialect, MessageDef } from './codec.js'

/** A native dialect table (msgid → CRC_EXTRA, lengths, target field offsets). */
export interface NativeMavlinkDialect {
  size(): number
}

export interface NativeMavlinkParser {
  /** A framer external for a stream link's `framing: { type: 'custom', create }` (one per connection). */
  createFramer(): object
  /**
   * Parses datagrams `first .. first+count-1` of `spans` (offset, length pairs
   * into `ring`); writes {@link PARSE_OUT_WORDS} words per frame into `out`.
   * Returns frames + datagramsDone * 2^21.
   */
  parseBatch(ring: Uint8Array, spans: Uint32Array, first: number, count: number, out: Uint32Array): number
  /** Counters, in {@link NATIVE_COUNTERS} order. */
  stats(out: Float64Array): void
  /**
   * Sets (or clears, with null) the MAVLink 2 signing key: signed frames are
   * then checked natively (parseBatch record flags {@link REC_SIG_CHECKED} /
   * {@link REC_SIG_GOOD}; framer tag bits 24-31, see {@link tagSigStatus}).
   * Returns the key's generation (1, 2, ...; one per call).
   */
  setSigningKey(key: Uint8Array | null): number
}

interface NativeMavlinkAddon {
  MavlinkDialect: {
    new (ids: Uint32Array, lens: Uint8Array, targets: Int16Array): NativeMavlinkDialect
    sha256(data: Uint8Array, impl: number): Uint8Array | undefined
  }
  MavlinkParser: new (dialect: NativeMavlinkDialect, forwardUnknown: boolean, acceptV1: boolean) => NativeMavlinkParser
}

const addon = native as unknown as NativeMavlinkAddon

/** Words per frame record written by `parseBatch`. */
export const PARSE_OUT_WORDS = 6
/** Flag bits of a parseBatch record's word 5, bits 24-31: signature checked with the key set now. */
export const REC_SIG_CHECKED = 4
/** ... and it matched. */
export const REC_SIG_GOOD = 8
/** Bit of a framer tag's status byte (tag >>> 24): the signature matched. */
export const TAG_SIG_GOOD = 0x80

/**
 * The status byte a framer puts in tag bits 24-31 for a frame it checked with
 * key generation `gen` (a signature not checked: 0): bits 0-6 the generation
 * ((gen - 1) % 127 + 1), bit 7 {@link TAG_SIG_GOOD}.
 */
export function tagSigGeneration(gen: number): number {
  return ((gen - 1) % 127) + 1
}

/**
 * SHA-256 by the native implementation (native/util/sha256.h): `impl` 0 the
 * one the addon uses, 1 the portable one, 2 the one using the CPU's SHA-256
 * instructions (SHA-NI, ARMv8 SHA2; undefined when there is none). Test hook.
 * @internal
 */
export function nativeSha256(data: Uint8Array, impl = 0): Uint8Array | undefined {
  return addon.MavlinkDialect.sha256(data, impl)
}

/** Frames + datagrams packing of `parseBatch`'s result. */
export const PARSE_DONE_SHIFT = 2 ** 21

/** Order of the native counters (parse.h Counters; rejections in Reject order). */
export const NATIVE_COUNTERS = [
  'bytesIn',
  'bytesAccepted',
  'bytesDiscarded',
  'frames',
  'unknownId',
  'bad_crc',
  'truncated',
  'bad_length',
  'incompat_flags',
  'unknown_dropped',
] as const

/** Payload offset of a uint8 field named `name`, or -1. */
function fieldOffset(def: MessageDef, name: string): number {
  const f = def.fields.find((x) => x.name === name)
  return f !== undefined && f.arrayLength === 0 && (f.type === 'uint8_t' || f.type === 'int8_t') ? f.offset : -1
}

/**
 * The tables of `dialect` for the native parser: per id its CRC_EXTRA, its
 * MAVLink 1 and 2 payload lengths, and where target_system/target_component
 * sit in the payload (-1: no such field).
 */
export function dialectTables(dialect: Dialect): { ids: Uint32Array; lens: Uint8Array; targets: Int16Array } {
  const n = dialect.messages.size
  const ids = new Uint32Array(n)
  const lens = new Uint8Array(n * 3)
  const targets = new Int16Array(n * 2)
  let i = 0
  for (const def of dialect.messages.values()) {
    ids[i] = def.id
    lens[i * 3] = def.crcExtra
    lens[i * 3 + 1] = def.minLength
    lens[i * 3 + 2] = def.maxLength
    targets[i * 2] = fieldOffset(def, 'target_system')
    targets[i * 2 + 1] = fieldOffset(def, 'target_component')
    i++
  }
  return { ids, lens, targets }
}

const handles = new WeakMap<Dialect, NativeMavlinkDialect>()

/** The native table of a dialect, built once per dialect object. */
export function nativeDialect(dialect: Dialect): NativeMavlinkDialect {
  let h = handles.get(dialect)
  if (h === undefined) {
    const t = dialectTables(dialect)
    h = new addon.MavlinkDialect(t.ids, t.lens, t.targets)
    handles.set(dialect, h)
  }
  return h
}

/** A native parser handle (counters shared by its datagram parser and the framers it creates). */
export function nativeParser(dialect: Dialect, forwardUnknown: boolean, acceptV1: boolean): NativeMavlinkParser {
  return new addon.MavlinkParser(nativeDialect(dialect), forwardUnknown, acceptV1)
}
