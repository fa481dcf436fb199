// Bad input from a peer: well-framed service messages with random field
// values (CRC correct, contents nonsense) must not throw out of any service
// or the simulator, and both must keep working afterwards.
import { describe, it, expect, afterEach } from 'vitest'
import {
  CommandAck,
  CommandClient,
  CommandInt,
  CommandLong,
  HeartbeatService,
  Heartbeat,
  MAV_CMD,
  MavlinkEncoder,
  MissionAck,
  MissionClearAll,
  MissionClient,
  MissionCount,
  MissionItemInt,
  MissionRequestInt,
  MissionRequestList,
  ParamClient,
  ParamError,
  ParamRequestList,
  ParamRequestRead,
  ParamSet,
  ParamValue,
  Timesync,
  TimesyncService,
  createMemoryPortPair,
  seededRandom,
  type MessageDef,
} from '../lib/mavlink/index.js'
import { SimAutopilot } from '../lib/sim/autopilot.js'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c()
})

const MESSAGES = [Heartbeat, CommandLong, CommandInt, CommandAck, ParamValue, ParamError, ParamSet, ParamRequestRead, ParamRequestList, Timesync, MissionCount, MissionItemInt, MissionRequestInt, MissionRequestList, MissionAck, MissionClearAll]

/** A descriptor that fills the payload with random bytes, aimed at sysid/compid 1/1 half the time so handlers run. */
function randomDef(def: MessageDef, rnd: () => number): MessageDef {
  return {
    ...def,
    encode(_data, view, offset) {
      for (let i = 0; i < def.maxLength; i++) view.setUint8(offset + i, Math.floor(rnd() * 256))
      if (rnd() < 0.5) {
        for (const f of def.fields) {
          if (f.name === 'target_system') view.setUint8(offset + f.offset, rnd() < 0.5 ? 1 : 255)
          if (f.name === 'target_component') view.setUint8(offset + f.offset, rnd() < 0.5 ? 1 : 0)
        }
      }
    },
  }
}

describe('services and simulator under random well-framed messages', () => {
  it('nothing throws, and commands, parameters and missions still work afterwards', async () => {
    const [gcs, vehicle] = createMemoryPortPair()
    closers.push(() => {
      gcs.close()
      vehicle.close()
    })
    const sim = new SimAutopilot(vehicle, { attitudeHz: 0, positionHz: 0, statusHz: 0, timesyncRequestHz: 0, takeoffMs: 50, paramErrors: true })
    closers.push(() => sim.close())
    const enc = new MavlinkEncoder({ sysid: 255, compid: 190 })
    const target = { system: 1, component: 1 }
    const hb = new HeartbeatService(gcs, enc, { rateHz: 0 })
    const cmd = new CommandClient(gcs, enc, { timeoutMs: 200 })
    const params = new ParamClient(gcs, enc, { target, encoding: 'bytewise', timeoutMs: 200 })
    const ts = new TimesyncService(gcs, enc, { target, rateHz: 0 })
    const missions = new MissionClient(gcs, enc, { target, timeoutMs: 200 })
    closers.push(() => {
      for (const s of [hb, cmd, params, ts, missions]) s.close()
    })
    const rnd = seededRandom(2024)
    // the same junk goes both ways: from a fake vehicle (sysid 1) to the services and from a fake GCS to the sim
    const fakeVehicle = new MavlinkEncoder({ sysid: 1, compid: 1 })
    const fakeGcs = new MavlinkEncoder({ sysid: 255, compid: 190 })
    for (let i = 0; i < 3000; i++) {
      const def = randomDef(MESSAGES[Math.floor(rnd() * MESSAGES.length)].def, rnd)
      vehicle.send(fakeVehicle.encode(def, {}))
      gcs.send(fakeGcs.encode(def, {}))
      if (i % 100 === 0) await new Promise((r) => setImmediate(r))
    }
    await new Promise((r) => setTimeout(r, 300))
    expect(gcs.stats().listenerErrors).toBe(0)
    expect(vehicle.stats().listenerErrors).toBe(0)
    expect(gcs.stats().parser.frames).toBeGreaterThan(3000)
    // still working
    sim.close()
    const sim2 = new SimAutopilot(vehicle, { attitudeHz: 0, positionHz: 0, statusHz: 0, timesyncRequestHz: 0 })
    closers.push(() => sim2.close())
    await cmd.long(target, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1])
    expect(sim2.armed).toBe(true)
    expect((await params.get('BAT1_N_CELLS')).value).toBe(4)
    await missions.upload([])
    expect(await missions.download()).toEqual([])
    // junk TIMESYNC answers never matched a request of ours
    expect(ts.state).toBe('idle')
  })
})
