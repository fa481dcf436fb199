/**
 * Framing options of stream links, validated here and turned into the native
 * framer specification. Framing runs on the I/O thread (native/framer.h):
 * JavaScript receives one record per frame and never re-scans bytes.
 */
import type { NativeFramerSpec } from '../../../bindings/index.js'
import { invalidArgType, invalidArgValue } from '../../errors.js'
import { validateBool, validateFunction, validateInt } from '../../util/validate.js'

/**
 * How a stream link cuts its bytes into records.
 *
 * - `'raw'` (default): one record per read, as the kernel delivered it.
 * - `{ type: 'length' }`: length-prefixed frames; `lengthSize` 1, 2 or 4
 *   bytes (default 2), big-endian unless `littleEndian`, at `lengthOffset`
 *   (default: right after `magic`, else 0); the value counts the payload only
 *   unless `adjust` says otherwise (total frame size = value + adjust). With a
 *   `magic`, a bad or oversize frame resynchronises on the next magic;
 *   without, an oversize frame is skipped by its declared length.
 * - `{ type: 'delimited' }`: frames end with `delimiter` (default `'\n'`;
 *   e.g. `'\r\n'` for NMEA); the delimiter is left out unless
 *   `includeDelimiter`.
 * - `{ type: 'custom', create }`: `create()` returns a native framer made by
 *   another onbus class (the MAVLink link); called once per connection.
 */
export type FramingOptions =
  | 'raw'
  | {
      type: 'length'
      lengthSize?: 1 | 2 | 4
      littleEndian?: boolean
      lengthOffset?: number
      adjust?: number
      magic?: Uint8Array | string
    }
  | { type: 'delimited'; delimiter?: Uint8Array | string; includeDelimiter?: boolean; skipEmpty?: boolean }
  | { type: 'custom'; create: () => object }

/** @internal A function giving the native spec for each new connection (null = raw). */
export type FramerFactory = () => NativeFramerSpec | null

function bytes(v: Uint8Array | string, name: string): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'latin1')
  if (v instanceof Uint8Array) return v
  throw invalidArgType(name, 'a string or Uint8Array', v)
}

/** @internal */
export function framerFactory(f: FramingOptions | undefined): FramerFactory {
  if (f === undefined || f === 'raw') return () => null
  if (f === null || typeof f !== 'object') throw invalidArgValue('options.framing', f, "must be 'raw' or an object with a type")
  switch (f.type) {
    case 'length': {
      const lengthSize = f.lengthSize ?? 2
      if (lengthSize !== 1 && lengthSize !== 2 && lengthSize !== 4) throw invalidArgValue('options.framing.lengthSize', lengthSize, 'must be 1, 2 or 4')
      if (f.littleEndian !== undefined) validateBool(f.littleEndian, 'options.framing.littleEndian')
      const magic = f.magic === undefined ? undefined : bytes(f.magic, 'options.framing.magic')
      if (magic && (magic.length === 0 || magic.length > 8)) throw invalidArgValue('options.framing.magic', f.magic, 'must be 1 to 8 bytes')
      const lengthOffset = f.lengthOffset === undefined ? magic?.length ?? 0 : validateInt(f.lengthOffset, 'options.framing.lengthOffset', 0, 64)
      const adjust = f.adjust === undefined ? -1 : validateInt(f.adjust, 'options.framing.adjust', 0, 1 << 20)
      const spec = { kind: 'length' as const, lengthSize, littleEndian: f.littleEndian ?? false, lengthOffset, adjust, magic: magic ? Uint8Array.from(magic) : undefined }
      return () => spec
    }
    case 'delimited': {
      const delimiter = bytes(f.delimiter ?? '\n', 'options.framing.delimiter')
      if (delimiter.length === 0 || delimiter.length > 8) throw invalidArgValue('options.framing.delimiter', f.delimiter, 'must be 1 to 8 bytes')
      if (f.includeDelimiter !== undefined) validateBool(f.includeDelimiter, 'options.framing.includeDelimiter')
      if (f.skipEmpty !== undefined) validateBool(f.skipEmpty, 'options.framing.skipEmpty')
      const spec = { kind: 'delimited' as const, delimiter: Uint8Array.from(delimiter), includeDelimiter: f.includeDelimiter ?? false, skipEmpty: f.skipEmpty ?? false }
      return () => spec
    }
    case 'custom': {
      const create = validateFunction(f.create, 'options.framing.create') as () => object
      return () => create() as NativeFramerSpec
    }
    default:
      throw invalidArgValue('options.framing.type', (f as { type?: unknown }).type, "must be 'length', 'delimited' or 'custom'")
  }
}
