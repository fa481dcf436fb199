import { describe, it, expect } from 'vitest'
import {
  Attitude,
  AttitudeQuaternion,
  DIALECT,
  Heartbeat,
  MAV_AUTOPILOT,
  MAV_CMD,
  MAV_MODE_FLAG,
  MAV_STATE,
  MAV_TYPE,
  MAVLINK_VERSION,
  MavlinkEncoder,
  MavlinkParser,
  Statustext,
  enumName,
  flagNames,
  testDialect,
  ardupilotmega,
} from '../lib/mavlink/index.js'
import type { MavlinkFrame } from '../lib/mavlink/index.js'
import { mismatch, prng, randomData } from './mavlink-random.js'

function parseAll(parser: MavlinkParser, bytes: Uint8Array): MavlinkFrame[] {
  const out: MavlinkFrame[] = []
  parser.push(bytes, (f) => out.push(f.clone()))
  return out
}

// generous: the whole suite also runs under QEMU (scripts/qemu.mjs), many times slower
describe('MAVLink codec', { timeout: 120_000 }, () => {
  it('round-trips TEST_TYPES (every field type) with random values', () => {
    const r = prng(1)
    const def = testDialect.TestTypes.def
    for (const version of [2] as const) {
      const enc = new MavlinkEncoder({ sysid: 7, compid: 9, version })
      const parser = new MavlinkParser({ dialect: testDialect.DIALECT })
      for (let k = 0; k < 200; k++) {
        const data = randomData(r, def)
        const frames = parseAll(parser, enc.encode(def, data))
        expect(frames.length).toBe(1)
        const msg = frames[0].as(testDialect.TestTypes)!
        expect(mismatch(def, data, (n) => (msg as unknown as Record<string, unknown>)[n])).toBe('')
        expect(frames[0].version).toBe(version)
      }
      expect(parser.stats.rejected.bad_crc).toBe(0)
    }
  })

  it('round-trips every message of common and ardupilotmega, v2 and (ids up to 255) v1', () => {
    const r = prng(2)
    for (const version of [1, 2] as const) {
      const enc = new MavlinkEncoder({ sysid: 3, compid: 4, version })
      const parser = new MavlinkParser({ dialect: ardupilotmega.DIALECT })
      let n = 0
      for (const def of ardupilotmega.DIALECT.messages.values()) {
        if (version === 1 && def.id > 255) continue
        for (let k = 0; k < 3; k++) {
          const data = randomData(r, def, version === 1)
          const frames = parseAll(parser, enc.encode(def, data))
          expect(frames.length).toBe(1)
          const msg = frames[0].message as unknown as Record<string, unknown>
          expect(mismatch(def, data, (name) => msg[name], version === 1)).toBe('')
          n++
        }
      }
      expect(parser.stats.frames).toBe(n)
      expect(parser.stats.bytesDiscarded).toBe(0)
    }
  })

  it('getters read the right bytes and types', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const bytes = enc.encode(Heartbeat, {
      type: MAV_TYPE.MAV_TYPE_QUADROTOR,
      autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_PX4,
      base_mode: MAV_MODE_FLAG.MAV_MODE_FLAG_SAFETY_ARMED | MAV_MODE_FLAG.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
      custom_mode: 0x12345678,
      system_status: MAV_STATE.MAV_STATE_ACTIVE,
    })
    // 10 header + 9 payload + 2 CRC; custom_mode (uint32) is first on the wire
    expect(bytes.length).toBe(21)
    expect(Array.from(bytes.subarray(10, 14))).toEqual([0x78, 0x56, 0x34, 0x12])
    const [f] = parseAll(new MavlinkParser(), bytes)
    const hb = f.as(Heartbeat)!
    expect(hb.type).toBe(2)
    expect(hb.autopilot).toBe(12)
    expect(hb.custom_mode).toBe(0x12345678)
    expect(hb.mavlink_version).toBe(MAVLINK_VERSION)
    expect(enumName(MAV_TYPE, hb.type)).toBe('MAV_TYPE_QUADROTOR')
    expect(flagNames(MAV_MODE_FLAG, hb.base_mode)).toEqual(['MAV_MODE_FLAG_CUSTOM_MODE_ENABLED', 'MAV_MODE_FLAG_SAFETY_ARMED'])
    expect(f.message).toBeInstanceOf(Heartbeat)
    expect(f.name).toBe('HEARTBEAT')
    expect(hb.toJSON()).toMatchObject({ type: 2, custom_mode: 0x12345678 })
  })

  it('MAVLink 2 drops trailing zero bytes on send and zero-extends on receive', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const bytes = enc.encode(Attitude, { time_boot_ms: 5, roll: 0, pitch: 0, yaw: 0, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
    expect(bytes[1]).toBe(1) // only the first payload byte is left
    const [f] = parseAll(new MavlinkParser(), bytes)
    expect(f.payloadLength).toBe(1)
    const a = f.as(Attitude)!
    expect(a.time_boot_ms).toBe(5)
    expect(a.yawspeed).toBe(0)
    // an all-zero payload keeps one byte
    const z = enc.encode(Attitude, { time_boot_ms: 0, roll: 0, pitch: 0, yaw: 0, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
    expect(z[1]).toBe(1)
  })

  it('extension fields: sent in v2, absent in v1 and read as zero', () => {
    const q = { time_boot_ms: 1, q1: 1, q2: 0, q3: 0, q4: 0, rollspeed: 0.5, pitchspeed: 0, yawspeed: 0, repr_offset_q: [0.25, 0.5, 0.75, 1] }
    const def = AttitudeQuaternion.def
    expect(def.minLength).toBe(32)
    expect(def.maxLength).toBe(48)
    const v2 = new MavlinkEncoder({ sysid: 1, compid: 1 }).encode(AttitudeQuaternion, q)
    const v1 = new MavlinkEncoder({ sysid: 1, compid: 1, version: 1 }).encode(AttitudeQuaternion, q)
    expect(v2[1]).toBe(48)
    expect(v1[1]).toBe(32)
    const frames = parseAll(new MavlinkParser(), new Uint8Array([...v2, ...v1]))
    expect(Array.from(frames[0].as(AttitudeQuaternion)!.repr_offset_q)).toEqual([0.25, 0.5, 0.75, 1])
    expect(Array.from(frames[1].as(AttitudeQuaternion)!.repr_offset_q)).toEqual([0, 0, 0, 0])
    expect(frames[1].as(AttitudeQuaternion)!.rollspeed).toBe(0.5)
  })

  it('strings: UTF-8, cut at a character boundary, full length without NUL', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const parser = new MavlinkParser()
    const full = 'x'.repeat(50)
    const fr = parseAll(parser, enc.encode(Statustext, { severity: 6, text: full }))
    expect(fr[0].as(Statustext)!.text).toBe(full)
    const utf = 'höhe ✓ ' + 'é'.repeat(30) // 2-byte chars straddle byte 50
    const m = parseAll(parser, enc.encode(Statustext, { severity: 6, text: utf }))[0].as(Statustext)!
    expect(utf.startsWith(m.text)).toBe(true)
    expect(Buffer.byteLength(m.text)).toBeLessThanOrEqual(50)
    expect(Buffer.byteLength(m.text)).toBeGreaterThanOrEqual(49)
  })

  it('a message outlives its frame: it owns a copy of the payload', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const bytes = enc.encode(Attitude, { time_boot_ms: 42, roll: 1, pitch: 2, yaw: 3, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
    let kept: Attitude | undefined
    new MavlinkParser().push(bytes, (f) => {
      kept = f.as(Attitude)
    })
    bytes.fill(0)
    expect(kept!.time_boot_ms).toBe(42)
    expect(kept!.yaw).toBe(3)
  })

  it('v1 refuses message ids above 255', () => {
    const enc = new MavlinkEncoder({ sysid: 1, compid: 1, version: 1 })
    const def = DIALECT.byName.get('SETUP_SIGNING')!
    expect(() => enc.encode(def, {})).toThrow(RangeError)
  })

  it('dialects compose: ardupilotmega has common and its own messages, shares common classes', () => {
    expect(ardupilotmega.DIALECT.messages.get(0)).toBe(Heartbeat.def)
    expect(ardupilotmega.DIALECT.byName.get('AHRS2')).toBeDefined()
    expect(DIALECT.byName.get('AHRS2')).toBeUndefined()
    expect(ardupilotmega.Heartbeat).toBe(Heartbeat)
    // MAV_CMD in ardupilotmega is common's plus ArduPilot's entries
    expect(Object.keys(ardupilotmega.MAV_CMD).length).toBeGreaterThan(Object.keys(MAV_CMD).length)
    expect(ardupilotmega.MAV_CMD.MAV_CMD_NAV_WAYPOINT).toBe(16)
    expect(ardupilotmega.MAV_CMD.MAV_CMD_DO_SEND_BANNER).toBe(42428)
  })
})
