/**
 * Builds MAVLink frames from typed message data.
 *
 * MAVLink 2: the payload's trailing zero bytes are dropped (the first byte is
 * always kept), the frame is signed when a signing state with a key is
 * given. MAVLink 1: only the non-extension fields are sent, and only message
 * ids up to 255 exist.
 */
import type { DataOf, MessageClass, MessageDef } from './codec.js'
import { CRC_INIT, crcAccumulate, crcCalculate } from './crc.js'
import { HEADER_V1, HEADER_V2, IFLAG_SIGNED, MAX_FRAME_LENGTH, SIGNATURE_LENGTH, STX_V1, STX_V2 } from './frame.js'
import { writeTimestamp } from './signing.js'
import type { MavlinkSigning } from './signing.js'
import { invalidArgType, outOfRange } from '../errors.js'

export interface MavlinkEncoderOptions {
  /** System id of this sender (1-255; 0 is for broadcast targets only, but accepted). */
  sysid: number
  /** Component id of this sender. */
  compid: number
  /** Protocol version of the frames. Default 2. */
  version?: 1 | 2
  /** Sign MAVLink 2 frames with this key and timestamp source (when its key is set). */
  signing?: MavlinkSigning
  /** Compatibility flags to put on MAVLink 2 frames. Default 0. */
  compatFlags?: number
}

/** Per-frame overrides. */
export interface EncodeOverrides {
  sysid?: number
  compid?: number
  /** Sequence number; default: the encoder's own counter (which then advances). */
  seq?: number
}

function byte(v: unknown, name: string): number {
  if (typeof v !== 'number') throw invalidArgType(name, 'of type number', v)
  if (!Number.isInteger(v) || v < 0 || v > 255) throw outOfRange(name, 'an integer from 0 to 255', v)
  return v
}

/**
 * @example
 * const enc = new MavlinkEncoder({ sysid: 1, compid: 191 })
 * const bytes = enc.encode(Heartbeat, {
 *   type: MAV_TYPE.MAV_TYPE_ONBOARD_CONTROLLER, autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_INVALID,
 *   base_mode: 0, custom_mode: 0, system_status: MAV_STATE.MAV_STATE_ACTIVE,
 * })
 */
export class MavlinkEncoder {
  sysid: number
  compid: number
  readonly version: 1 | 2
  readonly signing: MavlinkSigning | undefined
  private readonly compatFlags: number
  private seq = 0
  private readonly scratch = new Uint8Array(MAX_FRAME_LENGTH)
  private readonly view = new DataView(this.scratch.buffer)

  constructor(options: MavlinkEncoderOptions) {
    this.sysid = byte(options.sysid, 'options.sysid')
    this.compid = byte(options.compid, 'options.compid')
    const version = options.version ?? 2
    if (version !== 1 && version !== 2) throw outOfRange('options.version', '1 or 2', version)
    this.version = version
    this.signing = options.signing
    this.compatFlags = byte(options.compatFlags ?? 0, 'options.compatFlags')
    if (version === 1 && options.signing) throw outOfRange('options.version', '2 when signing', version)
  }

  /** Encodes one message into a new frame. */
  encode<C extends MessageClass>(cls: C, data: DataOf<C>, overrides?: EncodeOverrides): Uint8Array
  encode(def: MessageDef, data: unknown, overrides?: EncodeOverrides): Uint8Array
  encode(clsOrDef: MessageClass | MessageDef, data: unknown, overrides?: EncodeOverrides): Uint8Array {
    const n = this.build(clsOrDef, data, overrides)
    return this.scratch.slice(0, n)
  }

  /**
   * Encodes one message into `target` at `offset` (for batching several frames
   * into one datagram). Returns the frame's length; throws RangeError if it
   * does not fit.
   */
  encodeInto(target: Uint8Array, offset: number, clsOrDef: MessageClass | MessageDef, data: unknown, overrides?: EncodeOverrides): number {
    const n = this.build(clsOrDef, data, overrides)
    if (offset < 0 || offset + n > target.length) throw outOfRange('offset', `room for ${n} bytes in the target`, offset)
    target.set(this.scratch.subarray(0, n), offset)
    return n
  }

  private build(clsOrDef: MessageClass | MessageDef, data: unknown, overrides: EncodeOverrides | undefined): number {
    const def: MessageDef = 'def' in clsOrDef ? clsOrDef.def : clsOrDef
    if (typeof data !== 'object' || data === null) throw invalidArgType('data', 'an object', data)
    const b = this.scratch
    const sysid = overrides?.sysid ?? this.sysid
    const compid = overrides?.compid ?? this.compid
    let seq: number
    if (overrides?.seq !== undefined) seq = overrides.seq & 0xff
    else {
      seq = this.seq
      this.seq = (this.seq + 1) & 0xff
    }
    const v2 = this.version === 2
    const hdr = v2 ? HEADER_V2 : HEADER_V1
    b.fill(0, hdr, hdr + def.maxLength)
    def.encode(data, this.view, hdr)
    let len: number
    if (v2) {
      len = def.maxLength
      while (len > 1 && b[hdr + len - 1] === 0) len--
    } else {
      if (def.id > 255) throw outOfRange('message id', 'at most 255 in MAVLink 1', def.id)
      len = def.minLength
    }
    const signing = v2 && this.signing !== undefined && this.signing.enabled ? this.signing : undefined
    if (v2) {
      b[0] = STX_V2
      b[1] = len
      b[2] = signing ? IFLAG_SIGNED : 0
      b[3] = this.compatFlags
      b[4] = seq
      b[5] = sysid
      b[6] = compid
      b[7] = def.id & 0xff
      b[8] = (def.id >> 8) & 0xff
      b[9] = (def.id >> 16) & 0xff
    } else {
      b[0] = STX_V1
      b[1] = len
      b[2] = seq
      b[3] = sysid
      b[4] = compid
      b[5] = def.id
    }
    const crcAt = hdr + len
    const crc = crcAccumulate(def.crcExtra, crcCalculate(b, 1, crcAt, CRC_INIT))
    b[crcAt] = crc & 0xff
    b[crcAt + 1] = crc >>> 8
    if (!signing) return crcAt + 2
    const sigOff = crcAt + 2
    b[sigOff] = signing.linkId
    writeTimestamp(b, sigOff + 1, signing.clock.next())
    signing.sign(b, 0, sigOff + 7, b, sigOff + 7)
    return sigOff + SIGNATURE_LENGTH
  }
}
