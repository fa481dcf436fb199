/**
 * How topics become MCAP channels and schemas.
 *
 * - MAVLink topics (codec name `mavlink` or `mavlink:<dialect>`; one complete
 *   v1/v2 frame per message) get one channel per (topic, message id), with
 *   message encoding `mavlink` and a schema per message: name
 *   `mavlink.<dialect>.<MESSAGE>`, encoding `onbus.mavlink-json`, data the
 *   JSON description of the message generated from its definition (id, CRC
 *   extra, lengths, every field with type, wire offset, array length,
 *   extension flag, enum name, and the enums' values). That is enough to
 *   decode a payload without onbus or the XML. Frames whose id the dialect
 *   does not know go to a channel without schema (schema id 0).
 * - `json` topics: message encoding `json`, no schema.
 * - Everything else: the codec's bytes, message encoding `raw` for `rawCodec`
 *   and the codec's name otherwise (e.g. `flatbuffers:onbus.example.Pose`),
 *   no schema.
 *
 * Channel metadata: `onbus.topic`, `onbus.codec`, `onbus.qos` (JSON), and for
 * MAVLink channels `mavlink.msgid`.
 */
import type { Dialect, MessageDef } from '../mavlink/codec.js'
import * as apm from '../mavlink/generated/ardupilotmega.js'

/** Schema encoding of MAVLink message definitions (see the module comment). */
export const MAVLINK_SCHEMA_ENCODING = 'onbus.mavlink-json'
/** Message encoding of MAVLink channels: one complete frame per message. */
export const MAVLINK_MESSAGE_ENCODING = 'mavlink'

/** The dialect used when none is given: ardupilotmega (includes common, minimal, standard and the other dialects it pulls in). */
export const defaultDialect: Dialect = apm.DIALECT

/** True for a codec name that carries MAVLink frames. */
export function isMavlinkCodec(name: string): boolean {
  return name === 'mavlink' || name.startsWith('mavlink:')
}

/** The message id of a complete MAVLink frame, or -1 when the bytes are not one. */
export function mavlinkMsgId(frame: Uint8Array): number {
  if (frame.length >= 10 && frame[0] === 0xfd) return frame[7] | (frame[8] << 8) | (frame[9] << 16)
  if (frame.length >= 6 && frame[0] === 0xfe) return frame[5]
  return -1
}

const enumTables = apm as unknown as Record<string, unknown>

/** The JSON description of one MAVLink message (the schema data). */
export function mavlinkSchema(def: MessageDef, dialect: Dialect): { name: string; encoding: string; data: Uint8Array } {
  const enums: Record<string, Record<string, number>> = {}
  for (const f of def.fields) {
    if (f.enum && !(f.enum in enums)) {
      const t = enumTables[f.enum]
      if (t && typeof t === 'object') enums[f.enum] = t as Record<string, number>
    }
  }
  const desc = {
    dialect: dialect.name,
    id: def.id,
    name: def.name,
    crcExtra: def.crcExtra,
    minLength: def.minLength,
    maxLength: def.maxLength,
    fields: def.fields.map((f) => ({
      name: f.name,
      type: f.type,
      offset: f.offset,
      arrayLength: f.arrayLength,
      extension: f.extension,
      ...(f.enum ? { enum: f.enum } : {}),
      ...(f.bitmask ? { bitmask: true } : {}),
    })),
    enums,
  }
  return { name: `mavlink.${dialect.name}.${def.name}`, encoding: MAVLINK_SCHEMA_ENCODING, data: new TextEncoder().encode(JSON.stringify(desc)) }
}

/** MCAP message encoding for a codec name (non-MAVLink). */
export function messageEncodingOf(codec: string): string {
  if (codec === 'json') return 'json'
  return codec
}
