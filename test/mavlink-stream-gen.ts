// Random MAVLink byte streams for the native parser tests: valid frames of a
// telemetry mix and random common messages (v1, v2 with truncated payloads,
// signed), unknown ids, and bad input of every kind, with what each element is.
import { Attitude, DIALECT, GlobalPositionInt, GpsRawInt, Heartbeat, MavlinkEncoder, MavlinkSigning, SigningClock, Statustext, SysStatus, VfrHud } from '../lib/mavlink/index.js'
import type { MessageDef } from '../lib/mavlink/index.js'
import { crcAccumulate, crcCalculate } from '../lib/mavlink/crc.js'
import { prng, randInt, randomData } from './mavlink-random.js'

export const telemetry: MessageDef[] = [Heartbeat.def, Attitude.def, GlobalPositionInt.def, SysStatus.def, Statustext.def, GpsRawInt.def, VfrHud.def]
export const KEY = new Uint8Array(32).map((_, i) => i + 1)

export type Kind = 'valid' | 'signed' | 'v1' | 'unknown' | 'garbage' | 'bad_crc' | 'cut' | 'bad_length' | 'incompat'

export interface Element {
  kind: Kind
  bytes: Uint8Array
}

/** Sets a v2 frame's CRC for `crcExtra`. */
export function fixCrc(frame: Uint8Array, crcExtra: number): void {
  const len = frame[1]
  const crc = crcAccumulate(crcExtra, crcCalculate(frame, 1, 10 + len))
  frame[10 + len] = crc & 0xff
  frame[11 + len] = crc >> 8
}

const allDefs = [...DIALECT.messages.values()]

export class StreamGen {
  readonly r: () => number
  private readonly enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
  private readonly enc1 = new MavlinkEncoder({ sysid: 1, compid: 1, version: 1 })
  private readonly signing = new MavlinkSigning({ key: KEY, clock: new SigningClock() })
  private readonly encSigned = new MavlinkEncoder({ sysid: 2, compid: 1, signing: this.signing })

  constructor(seed: number) {
    this.r = prng(seed)
  }

  valid(): Uint8Array {
    const def = this.r() < 0.7 ? telemetry[randInt(this.r, 0, telemetry.length - 1)] : allDefs[randInt(this.r, 0, allDefs.length - 1)]
    return this.enc.encode(def, randomData(this.r, def))
  }

  element(kinds: readonly Kind[]): Element {
    const r = this.r
    const kind = kinds[randInt(r, 0, kinds.length - 1)]
    let bytes: Uint8Array
    switch (kind) {
      case 'valid':
        bytes = this.valid()
        break
      case 'signed': {
        const def = telemetry[randInt(r, 0, telemetry.length - 1)]
        bytes = this.encSigned.encode(def, randomData(r, def))
        break
      }
      case 'v1': {
        const def = telemetry[randInt(r, 0, 4)]
        bytes = this.enc1.encode(def, randomData(r, def))
        break
      }
      case 'unknown': {
        const len = randInt(r, 1, 40)
        bytes = new Uint8Array(12 + len)
        bytes.set([0xfd, len, 0, 0, randInt(r, 0, 255), 3, 1])
        const id = 60000 + randInt(r, 0, 1000) // not in common
        bytes[7] = id & 0xff
        bytes[8] = (id >> 8) & 0xff
        bytes[9] = id >> 16
        for (let k = 0; k < len; k++) bytes[10 + k] = randInt(r, 0, 255)
        fixCrc(bytes, randInt(r, 0, 255))
        break
      }
      case 'garbage': {
        bytes = new Uint8Array(randInt(r, 1, 60))
        // a third of the garbage bytes are start bytes: false starts
        for (let k = 0; k < bytes.length; k++) bytes[k] = r() < 0.3 ? (r() < 0.5 ? 0xfd : 0xfe) : randInt(r, 0, 255)
        break
      }
      case 'bad_crc': {
        bytes = this.valid()
        bytes[bytes.length - 1] ^= 1 + randInt(r, 0, 254)
        break
      }
      case 'cut': {
        const f = this.valid()
        bytes = f.slice(0, randInt(r, 1, f.length - 1))
        break
      }
      case 'bad_length': {
        // HEARTBEAT declaring 40 payload bytes (its maximum is 9)
        bytes = new Uint8Array(12 + 40)
        bytes.set([0xfd, 40, 0, 0, 0, 1, 1, 0, 0, 0])
        fixCrc(bytes, Heartbeat.def.crcExtra)
        break
      }
      case 'incompat': {
        bytes = this.valid()
        bytes[2] = 0x02
        fixCrc(bytes, DIALECT.messages.get(bytes[7] | (bytes[8] << 8) | (bytes[9] << 16))!.crcExtra)
        break
      }
    }
    return { kind, bytes }
  }
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
