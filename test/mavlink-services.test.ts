// MAVLink microservices against the simulated autopilot over an in-memory
// port pair with seeded loss: commands (ACK matching, IN_PROGRESS, retries,
// timeouts, errors), parameters (list with gap filling, get, set, both value
// encodings), heartbeat tracking and connection loss, mission round trip.
import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import {
  CommandClient,
  CommandLong,
  HeartbeatService,
  MAV_AUTOPILOT,
  MAV_CMD,
  MAV_FRAME,
  MAV_PARAM_TYPE,
  MAV_RESULT,
  MAV_TYPE,
  MavlinkEncoder,
  MissionClient,
  ParamClient,
  createMemoryPortPair,
  decodeParamValue,
  detectParamEncoding,
  encodeParamValue,
  type MavlinkServiceError,
  type MissionPlanItem,
} from '../lib/mavlink/index.js'
import { SimAutopilot, SIM_PARAMS } from '../lib/sim/autopilot.js'

const VEHICLE = { system: 1, component: 1 }
// under the ARM emulator every turn of the loop is several times slower: the
// retry timers stretch with it, so a slow machine cannot exhaust the retries
const K = process.env.ONBUS_EMULATOR ? 5 : 1
const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c()
})

function setup(opts: { loss?: number; seed?: number; sim?: ConstructorParameters<typeof SimAutopilot>[1] } = {}) {
  const [gcs, vehiclePort] = createMemoryPortPair({ loss: opts.loss ?? 0, seed: opts.seed ?? 1 })
  // fast telemetry is noise for these tests
  const sim = new SimAutopilot(vehiclePort, { attitudeHz: 0, positionHz: 0, statusHz: 0, timesyncRequestHz: 0, ...opts.sim })
  const enc = new MavlinkEncoder({ sysid: 255, compid: 190 })
  closers.push(() => {
    sim.close()
    gcs.close()
    vehiclePort.close()
  })
  return { gcs, vehiclePort, sim, enc }
}

async function rejection(p: Promise<unknown>): Promise<MavlinkServiceError> {
  try {
    await p
  } catch (err) {
    return err as MavlinkServiceError
  }
  throw new Error('expected a rejection')
}

describe('command protocol', () => {
  it('ARM is ACCEPTED; TAKEOFF reports IN_PROGRESS with progress, then ACCEPTED', async () => {
    const { gcs, sim, enc } = setup({ sim: { takeoffMs: 600 * K } })
    const cmd = new CommandClient(gcs, enc, { timeoutMs: 300 * K })
    closers.push(() => cmd.close())
    const r = await cmd.long(VEHICLE, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1])
    expect(r).toMatchObject({ result: MAV_RESULT.MAV_RESULT_ACCEPTED, attempts: 1 })
    expect(sim.armed).toBe(true)
    const progress: number[] = []
    // the per-send timeout (300 ms) is shorter than the takeoff (600 ms): only
    // IN_PROGRESS extending the wait lets this resolve
    const t = await cmd.long(VEHICLE, MAV_CMD.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, NaN, 0, 0, 5], { onProgress: (p) => progress.push(p), inProgressTimeoutMs: 2000 * K })
    expect(t.result).toBe(MAV_RESULT.MAV_RESULT_ACCEPTED)
    expect(progress.length).toBeGreaterThanOrEqual(1)
    expect(progress[0]).toBe(0)
    expect(t.attempts).toBe(1)
    expect(sim.altitude).toBe(5)
    expect(sim.stats.acks.IN_PROGRESS).toBeGreaterThanOrEqual(1)
  })

  it('rejects DENIED and UNSUPPORTED with Node-shaped errors carrying result and result_param2', async () => {
    const { gcs, enc } = setup()
    const cmd = new CommandClient(gcs, enc)
    closers.push(() => cmd.close())
    const denied = await rejection(cmd.long(VEHICLE, MAV_CMD.MAV_CMD_NAV_TAKEOFF))
    expect(denied).toBeInstanceOf(Error)
    expect(denied.code).toBe('ERR_MAVLINK_COMMAND_DENIED')
    expect(denied.result).toBe(MAV_RESULT.MAV_RESULT_DENIED)
    expect(denied.result_param2).toBe(1)
    expect(denied.command).toBe(MAV_CMD.MAV_CMD_NAV_TAKEOFF)
    const unsup = await rejection(cmd.int(VEHICLE, MAV_CMD.MAV_CMD_DO_SET_ROI_LOCATION, { frame: MAV_FRAME.MAV_FRAME_GLOBAL, x: 473977420, y: 85455940, z: 10 }))
    expect(unsup.code).toBe('ERR_MAVLINK_COMMAND_UNSUPPORTED')
    expect(unsup.result).toBe(MAV_RESULT.MAV_RESULT_UNSUPPORTED)
  })

  it('retransmits with confirmation incremented and times out with ERR_MAVLINK_COMMAND_TIMEOUT', async () => {
    const { gcs, vehiclePort, sim, enc } = setup({ sim: { silentCommands: [MAV_CMD.MAV_CMD_DO_SET_MODE] } })
    const confirmations: number[] = []
    closers.push(vehiclePort.onFrame((f) => {
      const m = f.as(CommandLong)
      if (m) confirmations.push(m.confirmation)
    }))
    const cmd = new CommandClient(gcs, enc, { timeoutMs: 60 * K, retries: 3 })
    closers.push(() => cmd.close())
    const err = await rejection(cmd.long(VEHICLE, MAV_CMD.MAV_CMD_DO_SET_MODE, [1, 4]))
    expect(err.code).toBe('ERR_MAVLINK_COMMAND_TIMEOUT')
    expect(err.attempts).toBe(4)
    expect(confirmations).toEqual([0, 1, 2, 3])
    expect(sim.stats.commands).toBe(4)
    expect(cmd.stats.timeouts).toBe(1)
  })

  it('every command completes under 30 % seeded loss, by retransmission', async () => {
    const { gcs, sim, enc } = setup({ loss: 0.3, seed: 42 })
    const cmd = new CommandClient(gcs, enc, { timeoutMs: 40 * K, retries: 10 })
    closers.push(() => cmd.close())
    for (let i = 0; i < 30; i++) {
      const arm = i % 2 === 0 ? 1 : 0
      await cmd.long(VEHICLE, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [arm])
      expect(sim.armed).toBe(arm === 1)
    }
    expect(cmd.stats.retries).toBeGreaterThan(0)
    expect(gcs.stats().dropped).toBeGreaterThan(0)
  })

  it('runs different command ids concurrently; the same id to the same target queues (or is refused with sameCommand: reject)', async () => {
    const { gcs, sim, enc } = setup({ sim: { takeoffMs: 300 } })
    const cmd = new CommandClient(gcs, enc, { timeoutMs: 200 * K, inProgressTimeoutMs: 1000 * K })
    closers.push(() => cmd.close())
    await cmd.long(VEHICLE, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1])
    const order: string[] = []
    const takeoff = cmd.long(VEHICLE, MAV_CMD.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, 0, 0, 0, 3]).then(() => order.push('takeoff'))
    const version = cmd.long(VEHICLE, MAV_CMD.MAV_CMD_REQUEST_MESSAGE, [148]).then(() => order.push('version'))
    const unsupported = rejection(cmd.long(VEHICLE, MAV_CMD.MAV_CMD_DO_SET_SERVO, [9, 1500])).then((e) => order.push(e.code))
    expect(cmd.pending).toBe(3)
    await Promise.all([takeoff, version, unsupported])
    // the quick ones finished while the takeoff was still in progress
    expect(order[2]).toBe('takeoff')
    // two REQUEST_MESSAGE at once: the second waits for the first's ACK
    const acksBefore = sim.stats.acks.ACCEPTED ?? 0
    const a = cmd.long(VEHICLE, MAV_CMD.MAV_CMD_REQUEST_MESSAGE, [148])
    const b = cmd.long(VEHICLE, MAV_CMD.MAV_CMD_REQUEST_MESSAGE, [148])
    expect(cmd.pending).toBe(1)
    await Promise.all([a, b])
    expect((sim.stats.acks.ACCEPTED ?? 0) - acksBefore).toBe(2)
    const strict = new CommandClient(gcs, enc, { sameCommand: 'reject' })
    closers.push(() => strict.close())
    const first = strict.long(VEHICLE, MAV_CMD.MAV_CMD_REQUEST_MESSAGE, [148])
    const busy = await rejection(strict.long(VEHICLE, MAV_CMD.MAV_CMD_REQUEST_MESSAGE, [148]))
    expect(busy.code).toBe('ERR_MAVLINK_COMMAND_BUSY')
    await first
  })

  it('a broadcast command (system 0) settles on the first ACK', async () => {
    const { gcs, sim, enc } = setup()
    const cmd = new CommandClient(gcs, enc)
    closers.push(() => cmd.close())
    await cmd.long({ system: 0, component: 0 }, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1])
    expect(sim.armed).toBe(true)
  })

  it('ignores an ACK for another system and counts it as unmatched', async () => {
    const { gcs, vehiclePort, enc } = setup()
    const other = new MavlinkEncoder({ sysid: 7, compid: 1 })
    const cmd = new CommandClient(gcs, enc, { timeoutMs: 100 * K, retries: 0 })
    closers.push(() => cmd.close())
    const p = rejection(cmd.long({ system: 7, component: 1 }, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1]))
    // an ACK from system 7 but for a different command, then one addressed to someone else
    vehiclePort.send(other.encode((await import('../lib/mavlink/index.js')).CommandAck, { command: MAV_CMD.MAV_CMD_NAV_LAND, result: MAV_RESULT.MAV_RESULT_ACCEPTED, target_system: 255, target_component: 190 }))
    vehiclePort.send(other.encode((await import('../lib/mavlink/index.js')).CommandAck, { command: MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, result: MAV_RESULT.MAV_RESULT_ACCEPTED, target_system: 254, target_component: 0 }))
    expect((await p).code).toBe('ERR_MAVLINK_COMMAND_TIMEOUT')
    expect(cmd.stats.unmatchedAcks).toBe(1)
  })
})

describe('parameter protocol', () => {
  for (const flavour of ['px4', 'ardupilot'] as const) {
    const encoding = flavour === 'px4' ? 'bytewise' : 'c_cast'
    it(`${flavour} (${encoding}): lists all ${SIM_PARAMS.length} parameters under 30 % loss by filling gaps, with exact values`, async () => {
      const { gcs, enc } = setup({ loss: 0.3, seed: flavour === 'px4' ? 7 : 8, sim: { flavour } })
      const params = new ParamClient(gcs, enc, { target: VEHICLE, encoding, timeoutMs: 60 * K, retries: 8, listQuietMs: 60 * K })
      closers.push(() => params.close())
      const all = await params.list()
      expect(all.size).toBe(SIM_PARAMS.length)
      expect(params.stats.gapReads).toBeGreaterThan(0)
      for (const p of SIM_PARAMS) {
        const got = all.get(p.id)!
        expect(got.type).toBe(p.type)
        const want = p.type === MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32 || encoding === 'c_cast' ? Math.fround(p.value) : p.value
        expect(got.value, p.id).toBe(encoding === 'c_cast' && p.type !== MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32 ? Math.trunc(want) : want)
      }
      // the one value a float cannot carry: -2147483000 as INT32 (c_cast rounds it)
      const cal = all.get('CAL_ACC0_ID')!
      if (encoding === 'bytewise') expect(cal.value).toBe(-2147483000)
      else expect(cal.value).toBe(Math.fround(-2147483000))
    })

    it(`${flavour} (${encoding}): get by name, set confirmed by PARAM_VALUE, out-of-bounds set rejected, unknown name times out`, async () => {
      const { gcs, sim, enc } = setup({ loss: 0.2, seed: 3, sim: { flavour } })
      const params = new ParamClient(gcs, enc, { target: VEHICLE, encoding, timeoutMs: 60 * K, retries: 8 })
      closers.push(() => params.close())
      const v = await params.get('MPC_XY_VEL_MAX')
      expect(v).toMatchObject({ id: 'MPC_XY_VEL_MAX', value: 12, type: MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32 })
      const s = await params.set('MPC_XY_VEL_MAX', 8.5)
      expect(s.value).toBe(8.5)
      expect(sim.params.find((p) => p.id === 'MPC_XY_VEL_MAX')!.value).toBe(8.5)
      // integer types through the encoding, including a negative INT16 (a NaN pattern byte-wise would be INT32 -1)
      await params.get('IMU_GYRO_CUTOFF')
      expect((await params.set('IMU_GYRO_CUTOFF', -90)).value).toBe(-90)
      await params.get('MAV_RADIO_ID')
      expect((await params.set('MAV_RADIO_ID', -4194305)).value).toBe(encoding === 'bytewise' ? -4194305 : Math.trunc(Math.fround(-4194305)))
      expect(sim.params.find((p) => p.id === 'MAV_RADIO_ID')!.value).toBe(encoding === 'bytewise' ? -4194305 : Math.fround(-4194305))
      const rejected = await rejection(params.set('MPC_XY_VEL_MAX', 50))
      expect(rejected.code).toBe('ERR_MAVLINK_PARAM_REJECTED')
      expect((rejected as unknown as { actual: { value: number } }).actual.value).toBe(8.5)
      const missing = await rejection(new ParamClient(gcs, enc, { target: VEHICLE, encoding, timeoutMs: 30 * K, retries: 2 }).get('NO_SUCH_PARAM'))
      expect(missing.code).toBe('ERR_MAVLINK_PARAM_TIMEOUT')
      expect(missing.attempts).toBe(3)
    })
  }
})

describe('PARAM_ERROR', () => {
  it('rejects at once with the error the target names (unknown parameter, value out of range)', async () => {
    const { gcs, enc } = setup({ sim: { paramErrors: true } })
    const params = new ParamClient(gcs, enc, { target: VEHICLE, encoding: 'bytewise', timeoutMs: 2000 * K })
    closers.push(() => params.close())
    const t0 = Date.now()
    const missing = await rejection(params.get('NO_SUCH_PARAM'))
    expect(missing.code).toBe('ERR_MAVLINK_PARAM_DOES_NOT_EXIST')
    expect(missing.attempts).toBe(1)
    expect(Date.now() - t0).toBeLessThan(2000 * K) // answered, not timed out
    await params.get('MPC_XY_VEL_MAX')
    const range = await rejection(params.set('MPC_XY_VEL_MAX', 50))
    expect(range.code).toBe('ERR_MAVLINK_PARAM_VALUE_OUT_OF_RANGE')
    expect((await params.set('MPC_XY_VEL_MAX', 5)).value).toBe(5)
    expect(params.stats.errors).toBe(2)
  })
})

describe('parameter value encodings', () => {
  const T = MAV_PARAM_TYPE
  it('byte-wise puts the value bytes in the field; C-cast sends (float)value', () => {
    expect(encodeParamValue(-1, T.MAV_PARAM_TYPE_INT32, 'bytewise')).toBe(0xffffffff)
    expect(encodeParamValue(-1, T.MAV_PARAM_TYPE_INT32, 'c_cast')).toBe(0xbf800000)
    expect(encodeParamValue(200, T.MAV_PARAM_TYPE_UINT8, 'bytewise')).toBe(0xc8)
    expect(encodeParamValue(200, T.MAV_PARAM_TYPE_UINT8, 'c_cast')).toBe(0x43480000)
    expect(encodeParamValue(-2, T.MAV_PARAM_TYPE_INT8, 'bytewise')).toBe(0xfe)
    expect(encodeParamValue(-2, T.MAV_PARAM_TYPE_INT16, 'bytewise')).toBe(0xfffe)
    expect(encodeParamValue(1.5, T.MAV_PARAM_TYPE_REAL32, 'bytewise')).toBe(0x3fc00000)
    expect(encodeParamValue(1.5, T.MAV_PARAM_TYPE_REAL32, 'c_cast')).toBe(0x3fc00000)
    expect(decodeParamValue(0xffbfffff, T.MAV_PARAM_TYPE_INT32, 'bytewise')).toBe(-4194305) // a signalling-NaN pattern
    expect(decodeParamValue(encodeParamValue(16777217, T.MAV_PARAM_TYPE_INT32, 'c_cast'), T.MAV_PARAM_TYPE_INT32, 'c_cast')).toBe(16777216)
    expect(decodeParamValue(0xc0200000, T.MAV_PARAM_TYPE_INT32, 'c_cast')).toBe(-2) // -2.5f truncates toward zero
    expect(() => encodeParamValue(1, T.MAV_PARAM_TYPE_INT64, 'bytewise')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => encodeParamValue(256, T.MAV_PARAM_TYPE_UINT8, 'c_cast')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => encodeParamValue(1.5, T.MAV_PARAM_TYPE_INT32, 'bytewise')).toThrow(RangeError)
  })

  it('round-trips random values of every 8-32-bit type in both encodings (C-cast within float precision)', () => {
    let seed = 12345
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
    const ranges: [number, number, number][] = [
      [T.MAV_PARAM_TYPE_UINT8, 0, 0xff], [T.MAV_PARAM_TYPE_INT8, -0x80, 0x7f], [T.MAV_PARAM_TYPE_UINT16, 0, 0xffff],
      [T.MAV_PARAM_TYPE_INT16, -0x8000, 0x7fff], [T.MAV_PARAM_TYPE_UINT32, 0, 0xffffffff], [T.MAV_PARAM_TYPE_INT32, -0x80000000, 0x7fffffff],
    ]
    for (const [type, lo, hi] of ranges) {
      for (let i = 0; i < 500; i++) {
        const v = lo + Math.floor(rnd() * (hi - lo + 1))
        expect(decodeParamValue(encodeParamValue(v, type, 'bytewise'), type, 'bytewise')).toBe(v)
        expect(decodeParamValue(encodeParamValue(v, type, 'c_cast'), type, 'c_cast')).toBe(Math.trunc(Math.fround(v)))
      }
    }
    for (let i = 0; i < 500; i++) {
      const f = Math.fround((rnd() - 0.5) * 1e6)
      for (const e of ['bytewise', 'c_cast'] as const) expect(decodeParamValue(encodeParamValue(f, T.MAV_PARAM_TYPE_REAL32, e), T.MAV_PARAM_TYPE_REAL32, e)).toBe(f)
    }
  })

  for (const flavour of ['px4', 'ardupilot'] as const) {
    it(`detects the ${flavour} simulator's encoding from AUTOPILOT_VERSION`, async () => {
      const { gcs, enc } = setup({ sim: { flavour } })
      const cmd = new CommandClient(gcs, enc)
      closers.push(() => cmd.close())
      expect(await detectParamEncoding(gcs, cmd, VEHICLE)).toBe(flavour === 'px4' ? 'bytewise' : 'c_cast')
    })
  }
})

describe('heartbeat', () => {
  it('tracks systems and components, link quality from sequence gaps, connection-lost and connection-regained', async () => {
    const [gcs, vehiclePort] = createMemoryPortPair({ loss: 0.2, seed: 11 })
    closers.push(() => gcs.close())
    const enc = new MavlinkEncoder({ sysid: 255, compid: 190 })
    const hb = new HeartbeatService(gcs, enc, { rateHz: 5, deadlineMs: 800 })
    closers.push(() => hb.close())
    const systems: number[] = []
    hb.on('system', (c) => systems.push(c.sysid))
    const fast = { heartbeatHz: 10, attitudeHz: 100, positionHz: 0, statusHz: 0, timesyncRequestHz: 0 }
    let sim = new SimAutopilot(vehiclePort, { ...fast, flavour: 'ardupilot' })
    closers.push(() => sim.close())
    const [c] = await once(hb, 'component')
    expect(systems).toEqual([1])
    await new Promise((r) => setTimeout(r, 1500))
    const info = hb.get(1, 1)!
    expect(info).toBe(c)
    expect(info.type).toBe(MAV_TYPE.MAV_TYPE_QUADROTOR)
    expect(info.autopilot).toBe(MAV_AUTOPILOT.MAV_AUTOPILOT_ARDUPILOTMEGA)
    expect(info.connected).toBe(true)
    // 20 % of frames dropped by the seeded generator: the quality shows it
    expect(info.lost).toBeGreaterThan(0)
    expect(info.linkQuality).toBeGreaterThan(0.6)
    expect(info.linkQuality).toBeLessThan(0.95)
    // the vehicle saw our heartbeats too
    expect(hb.sent).toBeGreaterThanOrEqual(5)
    sim.close()
    const [lost] = await once(hb, 'connection-lost')
    expect(lost.sysid).toBe(1)
    expect(info.connected).toBe(false)
    sim = new SimAutopilot(vehiclePort, fast)
    const [back] = await once(hb, 'connection-regained')
    expect(back.connected).toBe(true)
    expect(back.autopilot).toBe(MAV_AUTOPILOT.MAV_AUTOPILOT_PX4)
    expect(hb.components().length).toBe(1)
  })
})

describe('mission protocol (MISSION_ITEM_INT)', () => {
  it('uploads and downloads 25 items under 20 % loss, and clears', async () => {
    const { gcs, sim, enc } = setup({ loss: 0.2, seed: 5, sim: { missionTimeoutMs: 100 * K } })
    const missions = new MissionClient(gcs, enc, { target: VEHICLE, timeoutMs: 80 * K, retries: 10 })
    closers.push(() => missions.close())
    const items: MissionPlanItem[] = Array.from({ length: 25 }, (_, i) => ({
      frame: MAV_FRAME.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
      command: MAV_CMD.MAV_CMD_NAV_WAYPOINT,
      current: i === 0 ? 1 : 0,
      autocontinue: 1,
      param1: i,
      param2: 2,
      param3: 0,
      param4: NaN,
      x: 473977420 + i * 1000,
      y: 85455940 - i * 1000,
      z: 20 + i,
    }))
    await missions.upload(items)
    expect(sim.missions.get(0)!.length).toBe(25)
    const back = await missions.download()
    expect(back.length).toBe(25)
    for (let i = 0; i < items.length; i++) {
      const { param4, ...rest } = items[i]
      expect(back[i]).toMatchObject(rest)
      expect(back[i].param4).toBeNaN()
      void param4
    }
    await missions.clear()
    expect(await missions.download()).toEqual([])
  })

  it('times out an upload when nobody answers', async () => {
    const [gcs] = createMemoryPortPair()
    closers.push(() => gcs.close())
    const missions = new MissionClient(gcs, new MavlinkEncoder({ sysid: 255, compid: 190 }), { target: VEHICLE, timeoutMs: 30 * K, retries: 2 })
    const err = await rejection(missions.upload([]))
    expect(err.code).toBe('ERR_MAVLINK_MISSION_TIMEOUT')
  })
})
