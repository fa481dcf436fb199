/**
 * One MAVLink frame (v1 or v2) as the parser delivers it.
 *
 * Ownership: the parser hands the same frame object to every callback and its
 * bytes live in the chunk that was pushed (or in the parser's carry-over
 * buffer), so a frame and its `bytes`/`payload` views are valid until the
 * callback returns. `clone()` makes a frame that owns a copy; `message` makes
 * a message that owns a copy of the payload, so either may be kept.
 */
import type { MavlinkMessage, MessageClass, MessageDef } from './codec.js'

export const STX_V1 = 0xfe
export const STX_V2 = 0xfd
export const HEADER_V1 = 6
export const HEADER_V2 = 10
export const SIGNATURE_LENGTH = 13
/** Incompatibility flag: the frame is signed. The only one MAVLink 2 defines. */
export const IFLAG_SIGNED = 0x01
/** Largest frame: v2 header + 255-byte payload + CRC + signature. */
export const MAX_FRAME_LENGTH = HEADER_V2 + 255 + 2 + SIGNATURE_LENGTH

/**
 * Decodes a payload (as sent, possibly truncated) into a message that owns a
 * zero-extended copy of it.
 */
export function decodePayload<M extends MavlinkMessage>(def: MessageDef<M>, payload: Uint8Array): M {
  return decodeFrom(def, payload, 0, payload.length)
}

function decodeFrom<M extends MavlinkMessage>(def: MessageDef<M>, src: Uint8Array, at: number, len: number): M {
  const own = new Uint8Array(Math.max(def.maxLength, len, 1))
  // a byte loop beats subarray()+set() for payloads this small (no view object)
  for (let k = 0; k < len; k++) own[k] = src[at + k]
  return def.decode(own)
}

export class MavlinkFrame {
  /** 1 or 2. */
  version: 1 | 2 = 2
  /** Buffer the frame's bytes are in, from `offset` for `length` bytes. */
  buffer: Uint8Array = new Uint8Array(0)
  offset = 0
  length = 0
  /** Payload length as sent (MAVLink 2 drops trailing zero bytes). */
  payloadLength = 0
  incompatFlags = 0
  compatFlags = 0
  seq = 0
  sysid = 0
  compid = 0
  msgid = 0
  /** The frame carries a signature. */
  signed = false
  /** The signature was checked against the key (false when the parser has no signing configured). */
  verified = false
  /** Link id of the signature (signed frames). */
  linkId = 0
  /** Timestamp of the signature, 10 µs units since 2015-01-01 (signed frames). */
  timestamp = 0
  /** The dialect's descriptor, or undefined for an id the dialect lacks (passed through undecoded). */
  def: MessageDef | undefined = undefined
  private cached: MavlinkMessage | undefined = undefined

  /** @internal Called by the parser before each delivery. */
  reset(): void {
    this.cached = undefined
  }

  /** The whole frame as sent (a view): forward this to relay it untouched. */
  get bytes(): Uint8Array {
    return this.buffer.subarray(this.offset, this.offset + this.length)
  }

  /** The payload as sent, not zero-extended (a view). */
  get payload(): Uint8Array {
    const p = this.payloadOffset
    return this.buffer.subarray(p, p + this.payloadLength)
  }

  private get payloadOffset(): number {
    return this.offset + (this.version === 2 ? HEADER_V2 : HEADER_V1)
  }

  /** Message name, or undefined for an unknown id. */
  get name(): string | undefined {
    return this.def?.name
  }

  /**
   * The decoded message (cached per delivery), or undefined for an unknown id.
   * It owns a zero-extended copy of the payload and may be kept.
   */
  get message(): MavlinkMessage | undefined {
    if (this.cached === undefined && this.def !== undefined) this.cached = decodeFrom(this.def, this.buffer, this.payloadOffset, this.payloadLength)
    return this.cached
  }

  /**
   * The message as `cls` if the frame carries that message, else undefined.
   * @example
   * const hb = frame.as(Heartbeat)
   * if (hb) console.log(hb.custom_mode)
   */
  as<M extends MavlinkMessage>(cls: MessageClass<M>): M | undefined {
    if (this.msgid !== cls.def.id) return undefined
    if (this.cached instanceof cls) return this.cached
    const m = decodeFrom(cls.def, this.buffer, this.payloadOffset, this.payloadLength)
    this.cached = m
    return m
  }

  /** A frame that owns a copy of its bytes (for keeping beyond the callback). */
  clone(): MavlinkFrame {
    const f = new MavlinkFrame()
    f.version = this.version
    f.buffer = this.bytes.slice()
    f.offset = 0
    f.length = this.length
    f.payloadLength = this.payloadLength
    f.incompatFlags = this.incompatFlags
    f.compatFlags = this.compatFlags
    f.seq = this.seq
    f.sysid = this.sysid
    f.compid = this.compid
    f.msgid = this.msgid
    f.signed = this.signed
    f.verified = this.verified
    f.linkId = this.linkId
    f.timestamp = this.timestamp
    f.def = this.def
    f.cached = this.cached
    return f
  }
}
