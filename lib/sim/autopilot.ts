/**
 * A small simulated autopilot on any {@link MavlinkPort}: heartbeat,
 * attitude and global position of a slow circle, a draining battery, the
 * command protocol (ARM/DISARM, TAKEOFF with IN_PROGRESS, REQUEST_MESSAGE
 * for AUTOPILOT_VERSION, UNSUPPORTED otherwise), a parameter table of mixed
 * types in the PX4 (byte-wise) or ArduPilot (C-cast) encoding, a TIMESYNC
 * responder whose boot clock has a configured offset and drift (so a
 * companion's estimator can be checked against a known truth), and mission
 * storage (MISSION_ITEM_INT protocol).
 *
 * Signing is the port's business (a port whose parser verifies with the same
 * {@link MavlinkSigning} the encoder signs with): see lib/sim/transport.ts.
 */
import { EventEmitter } from 'node:events'
import { MavlinkEncoder } from '../mavlink/encoder.js'
import type { MavlinkSigning } from '../mavlink/signing.js'
import type { MavlinkPort } from '../mavlink/port.js'
import type { MavlinkFrame } from '../mavlink/frame.js'
import type { DataOf, MessageClass } from '../mavlink/codec.js'
import {
  Attitude,
  AutopilotVersion,
  BatteryStatus,
  CommandAck,
  CommandInt,
  CommandLong,
  GlobalPositionInt,
  Heartbeat,
  MAV_AUTOPILOT,
  MAV_BATTERY_FUNCTION,
  MAV_BATTERY_TYPE,
  MAV_CMD,
  MAV_MISSION_RESULT,
  MAV_MODE_FLAG,
  MAV_PARAM_TYPE,
  MAV_PROTOCOL_CAPABILITY,
  MAV_RESULT,
  MAV_STATE,
  MAV_TYPE,
  MissionAck,
  MissionClearAll,
  MissionCount,
  MissionItemInt,
  MissionRequest,
  MissionRequestInt,
  MissionRequestList,
  ParamRequestList,
  ParamRequestRead,
  ParamError,
  ParamSet,
  SetupSigning,
  MAV_PARAM_ERROR,
  SysStatus,
  Timesync,
} from '../mavlink/generated/common.js'
import { ParamValueRaw, decodeParamValue, encodeParamValue, paramSetBits } from '../mavlink/services/params.js'
import type { ParamEncoding } from '../mavlink/services/params.js'
import { itemFromMessage } from '../mavlink/services/mission.js'
import type { MissionPlanItem } from '../mavlink/services/mission.js'
import { realtimeNs } from '../mavlink/services/js-port.js'

/** Options of {@link SimAutopilot}. */
export interface SimAutopilotOptions {
  sysid?: number
  compid?: number
  /** 'px4' (default: MAV_AUTOPILOT_PX4, byte-wise parameters) or 'ardupilot' (ARDUPILOTMEGA, C-cast). */
  flavour?: 'px4' | 'ardupilot'
  /** Signs outgoing frames (give the same object to the port's parser to verify incoming ones). */
  signing?: MavlinkSigning
  heartbeatHz?: number
  /** Default 50. */
  attitudeHz?: number
  /** Default 10. */
  positionHz?: number
  /** SYS_STATUS and BATTERY_STATUS rate. Default 1. */
  statusHz?: number
  /** TIMESYNC requests the sim sends to the companion (as PX4 does). Default 0.5; 0 sends none. */
  timesyncRequestHz?: number
  /** The boot clock's reading at start, ns. Default 0 (time since boot). */
  clockStartNs?: number
  /** Boot clock rate error in ppm (positive: runs fast). Default 0. */
  clockDriftPpm?: number
  /** Time TAKEOFF takes (IN_PROGRESS ACKs in between), ms. Default 1500. */
  takeoffMs?: number
  /** Commands that get no ACK at all (to test timeouts). */
  silentCommands?: readonly number[]
  /** Mission upload: re-request an item after this long (ms); 8 retries. Default 250. */
  missionTimeoutMs?: number
  /** Battery drain, percent per minute. Default 2. */
  batteryDrainPerMin?: number
  /** Circle centre (degrees) and radius (m). */
  home?: { lat: number; lon: number; altM: number }
  radiusM?: number
  /** Circle period, s. Default 60. */
  periodS?: number
  /** Host clock in ns (default CLOCK_REALTIME). The boot clock is derived from it. */
  hostClock?: () => bigint
  /**
   * Install keys received in SETUP_SIGNING (into `signing`). The spec allows
   * this only over a secure link (USB, a wire): enable it for such ports only.
   * Default false (SETUP_SIGNING is ignored and counted).
   */
  acceptSetupSigning?: boolean
  /** Answer requests for unknown parameters and refused sets with PARAM_ERROR (newer PX4); default false (silence, as ArduPilot). */
  paramErrors?: boolean
}

interface SimParam {
  id: string
  type: number
  value: number
  min?: number
  max?: number
}

const T = MAV_PARAM_TYPE
/** The parameter table: 50 entries, mixed types; some with bounds (a set outside them is refused by answering the old value). */
export const SIM_PARAMS: readonly SimParam[] = [
  { id: 'SYS_AUTOSTART', type: T.MAV_PARAM_TYPE_INT32, value: 4001 },
  { id: 'SYS_AUTOCONFIG', type: T.MAV_PARAM_TYPE_INT32, value: 0 },
  { id: 'SYS_HITL', type: T.MAV_PARAM_TYPE_INT8, value: 0 },
  { id: 'SYS_MC_EST_GROUP', type: T.MAV_PARAM_TYPE_INT32, value: 2 },
  { id: 'MAV_SYS_ID', type: T.MAV_PARAM_TYPE_INT32, value: 1, min: 1, max: 255 },
  { id: 'MAV_COMP_ID', type: T.MAV_PARAM_TYPE_INT32, value: 1, min: 1, max: 255 },
  { id: 'MAV_PROTO_VER', type: T.MAV_PARAM_TYPE_UINT8, value: 2 },
  { id: 'MAV_RADIO_ID', type: T.MAV_PARAM_TYPE_INT32, value: -1 },
  { id: 'MAV_SIGN_CFG', type: T.MAV_PARAM_TYPE_INT32, value: 1 },
  { id: 'MPC_XY_VEL_MAX', type: T.MAV_PARAM_TYPE_REAL32, value: 12, min: 0, max: 20 },
  { id: 'MPC_Z_VEL_MAX_UP', type: T.MAV_PARAM_TYPE_REAL32, value: 3 },
  { id: 'MPC_Z_VEL_MAX_DN', type: T.MAV_PARAM_TYPE_REAL32, value: 1.5 },
  { id: 'MPC_TKO_SPEED', type: T.MAV_PARAM_TYPE_REAL32, value: 1.5 },
  { id: 'MPC_LAND_SPEED', type: T.MAV_PARAM_TYPE_REAL32, value: 0.7 },
  { id: 'MPC_THR_HOVER', type: T.MAV_PARAM_TYPE_REAL32, value: 0.5 },
  { id: 'MPC_TILTMAX_AIR', type: T.MAV_PARAM_TYPE_REAL32, value: 45 },
  { id: 'MC_ROLL_P', type: T.MAV_PARAM_TYPE_REAL32, value: 6.5 },
  { id: 'MC_PITCH_P', type: T.MAV_PARAM_TYPE_REAL32, value: 6.5 },
  { id: 'MC_YAW_P', type: T.MAV_PARAM_TYPE_REAL32, value: 2.8 },
  { id: 'MC_ROLLRATE_P', type: T.MAV_PARAM_TYPE_REAL32, value: 0.15 },
  { id: 'MC_PITCHRATE_P', type: T.MAV_PARAM_TYPE_REAL32, value: 0.15 },
  { id: 'MC_YAWRATE_P', type: T.MAV_PARAM_TYPE_REAL32, value: 0.2 },
  { id: 'MC_ROLLRATE_I', type: T.MAV_PARAM_TYPE_REAL32, value: 0.2 },
  { id: 'MC_PITCHRATE_I', type: T.MAV_PARAM_TYPE_REAL32, value: 0.2 },
  { id: 'MC_ROLLRATE_D', type: T.MAV_PARAM_TYPE_REAL32, value: 0.003 },
  { id: 'MC_PITCHRATE_D', type: T.MAV_PARAM_TYPE_REAL32, value: 0.003 },
  { id: 'BAT1_N_CELLS', type: T.MAV_PARAM_TYPE_INT32, value: 4, min: 1, max: 14 },
  { id: 'BAT1_CAPACITY', type: T.MAV_PARAM_TYPE_REAL32, value: 5000 },
  { id: 'BAT1_V_CHARGED', type: T.MAV_PARAM_TYPE_REAL32, value: 4.05 },
  { id: 'BAT1_V_EMPTY', type: T.MAV_PARAM_TYPE_REAL32, value: 3.5 },
  { id: 'BAT_LOW_THR', type: T.MAV_PARAM_TYPE_REAL32, value: 0.15 },
  { id: 'BAT_CRIT_THR', type: T.MAV_PARAM_TYPE_REAL32, value: 0.07 },
  { id: 'COM_ARM_WO_GPS', type: T.MAV_PARAM_TYPE_INT8, value: 1 },
  { id: 'COM_DISARM_LAND', type: T.MAV_PARAM_TYPE_REAL32, value: 2 },
  { id: 'COM_RC_LOSS_T', type: T.MAV_PARAM_TYPE_REAL32, value: 0.5 },
  { id: 'COM_DL_LOSS_T', type: T.MAV_PARAM_TYPE_INT32, value: 10 },
  { id: 'COM_OBL_RC_ACT', type: T.MAV_PARAM_TYPE_INT32, value: 0 },
  { id: 'NAV_RCL_ACT', type: T.MAV_PARAM_TYPE_INT32, value: 2 },
  { id: 'NAV_DLL_ACT', type: T.MAV_PARAM_TYPE_INT32, value: 0 },
  { id: 'RTL_RETURN_ALT', type: T.MAV_PARAM_TYPE_REAL32, value: 30 },
  { id: 'RTL_DESCEND_ALT', type: T.MAV_PARAM_TYPE_REAL32, value: 10 },
  { id: 'GF_MAX_HOR_DIST', type: T.MAV_PARAM_TYPE_REAL32, value: 0 },
  { id: 'GF_MAX_VER_DIST', type: T.MAV_PARAM_TYPE_REAL32, value: 0 },
  { id: 'SENS_BOARD_ROT', type: T.MAV_PARAM_TYPE_INT32, value: 0 },
  { id: 'SER_TEL1_BAUD', type: T.MAV_PARAM_TYPE_UINT32, value: 921600 },
  { id: 'RC_MAP_ROLL', type: T.MAV_PARAM_TYPE_UINT8, value: 1 },
  { id: 'RC_MAP_THROTTLE', type: T.MAV_PARAM_TYPE_UINT8, value: 3 },
  { id: 'PWM_MAIN_MIN', type: T.MAV_PARAM_TYPE_UINT16, value: 1000 },
  { id: 'PWM_MAIN_MAX', type: T.MAV_PARAM_TYPE_UINT16, value: 2000 },
  { id: 'CAL_ACC0_ID', type: T.MAV_PARAM_TYPE_INT32, value: -2147483000 },
  { id: 'IMU_GYRO_CUTOFF', type: T.MAV_PARAM_TYPE_INT16, value: -40 },
]

/** Counters of the simulator. */
export interface SimStats {
  commands: number
  /** ACKs sent, by MAV_RESULT name without the prefix (ACCEPTED, IN_PROGRESS, DENIED, UNSUPPORTED, ...). */
  acks: Record<string, number>
  paramValuesSent: number
  paramSets: number
  timesyncAnswered: number
  timesyncRequests: number
  /** Answers to the sim's own TIMESYNC requests. */
  timesyncAnswersReceived: number
  missionUploads: number
  missionDownloads: number
  /** SETUP_SIGNING installed / ignored (not accepted on this port, or no signing state). */
  signingSetups: number
  signingSetupsIgnored: number
}

const RESULT_NAMES: Record<number, string> = {}
for (const [k, v] of Object.entries(MAV_RESULT)) RESULT_NAMES[v] = k.replace(/^MAV_RESULT_/, '')

interface UploadState {
  type: number
  count: number
  items: MissionPlanItem[]
  from: { sysid: number; compid: number }
  timer?: NodeJS.Timeout
  tries: number
}

/**
 * @example
 * const sim = new SimAutopilot(port, { flavour: 'px4', signing, clockDriftPpm: 200 })
 * // ... sim.close()
 *
 * Events: `'command'` ({ command, result }), `'armed'` (boolean), `'mission'` (type, items),
 * `'signing-setup'` (signing enabled after a SETUP_SIGNING).
 */
export class SimAutopilot extends EventEmitter {
  readonly encoder: MavlinkEncoder
  readonly flavour: 'px4' | 'ardupilot'
  readonly encoding: ParamEncoding
  readonly params: SimParam[]
  readonly missions = new Map<number, MissionPlanItem[]>()
  readonly stats: SimStats = {
    commands: 0, acks: {}, paramValuesSent: 0, paramSets: 0, timesyncAnswered: 0, timesyncRequests: 0,
    timesyncAnswersReceived: 0, missionUploads: 0, missionDownloads: 0, signingSetups: 0, signingSetupsIgnored: 0,
  }
  armed = false
  /** Metres above home. */
  altitude = 0
  battery = 100
  private readonly signing: MavlinkSigning | undefined
  private readonly acceptSetup: boolean
  private readonly paramErrors: boolean
  private readonly o: Required<Omit<SimAutopilotOptions, 'signing' | 'home' | 'silentCommands' | 'sysid' | 'compid' | 'flavour' | 'acceptSetupSigning' | 'paramErrors'>> & { home: { lat: number; lon: number; altM: number } }
  private readonly silent: Set<number>
  private readonly hostStart: bigint
  private readonly timers: NodeJS.Timeout[] = []
  private readonly unsubscribe: () => void
  private takeoff: { timer?: NodeJS.Timeout; progressTimer?: NodeJS.Timeout; from: { sysid: number; compid: number }; startedMs: number } | undefined
  private upload: UploadState | undefined
  private lastUpload: { type: number; count: number } | undefined
  private paramStream: NodeJS.Timeout | undefined
  private readonly pendingTimesync = new Set<bigint>()
  private closed = false

  constructor(
    private readonly port: MavlinkPort,
    options: SimAutopilotOptions = {},
  ) {
    super()
    const sysid = options.sysid ?? 1
    const compid = options.compid ?? 1
    this.flavour = options.flavour ?? 'px4'
    this.encoding = this.flavour === 'px4' ? 'bytewise' : 'c_cast'
    const enc: ConstructorParameters<typeof MavlinkEncoder>[0] = { sysid, compid }
    if (options.signing) enc.signing = options.signing
    this.encoder = new MavlinkEncoder(enc)
    this.signing = options.signing
    this.acceptSetup = options.acceptSetupSigning ?? false
    this.paramErrors = options.paramErrors ?? false
    this.o = {
      heartbeatHz: options.heartbeatHz ?? 1,
      attitudeHz: options.attitudeHz ?? 50,
      positionHz: options.positionHz ?? 10,
      statusHz: options.statusHz ?? 1,
      timesyncRequestHz: options.timesyncRequestHz ?? 0.5,
      clockStartNs: options.clockStartNs ?? 0,
      clockDriftPpm: options.clockDriftPpm ?? 0,
      takeoffMs: options.takeoffMs ?? 1500,
      missionTimeoutMs: options.missionTimeoutMs ?? 250,
      batteryDrainPerMin: options.batteryDrainPerMin ?? 2,
      home: options.home ?? { lat: 47.397742, lon: 8.545594, altM: 488 },
      radiusM: options.radiusM ?? 50,
      periodS: options.periodS ?? 60,
      hostClock: options.hostClock ?? realtimeNs,
    }
    this.silent = new Set(options.silentCommands ?? [])
    this.params = SIM_PARAMS.map((p) => ({ ...p }))
    this.hostStart = this.o.hostClock()
    this.unsubscribe = port.onFrame((frame) => this.onFrame(frame))
    this.every(this.o.heartbeatHz, () => this.sendHeartbeat())
    this.every(this.o.attitudeHz, () => this.sendAttitude())
    this.every(this.o.positionHz, () => this.sendPosition())
    this.every(this.o.statusHz, () => this.sendStatus())
    this.every(this.o.timesyncRequestHz, () => this.sendTimesyncRequest())
    this.sendHeartbeat()
  }

  private every(hz: number, fn: () => void): void {
    if (!(hz > 0)) return
    const t = setInterval(fn, 1000 / hz)
    this.timers.push(t)
  }

  /** The boot clock now (ns): clockStartNs + host time since start × (1 + drift). */
  bootTimeNs(): bigint {
    return this.bootAt(this.o.hostClock())
  }

  private bootAt(hostNs: bigint): bigint {
    const dt = Number(hostNs - this.hostStart)
    return BigInt(this.o.clockStartNs) + BigInt(Math.round(dt * (1 + this.o.clockDriftPpm / 1e6)))
  }

  /** The truth the companion's TIMESYNC estimate should find: host time (ns) of a boot-clock reading. */
  truthToHost(bootNs: bigint | number): bigint {
    const d = Number(BigInt(bootNs) - BigInt(this.o.clockStartNs))
    return this.hostStart + BigInt(Math.round(d / (1 + this.o.clockDriftPpm / 1e6)))
  }

  private send<C extends MessageClass>(cls: C, data: DataOf<C>): void {
    if (this.closed) return
    this.port.send(this.encoder.encode(cls, data))
  }

  private sendHeartbeat(): void {
    const base = MAV_MODE_FLAG.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (this.armed ? MAV_MODE_FLAG.MAV_MODE_FLAG_SAFETY_ARMED : 0)
    this.send(Heartbeat, {
      type: MAV_TYPE.MAV_TYPE_QUADROTOR,
      autopilot: this.flavour === 'px4' ? MAV_AUTOPILOT.MAV_AUTOPILOT_PX4 : MAV_AUTOPILOT.MAV_AUTOPILOT_ARDUPILOTMEGA,
      base_mode: base,
      custom_mode: this.altitude > 0 ? 4 : 1,
      system_status: this.armed ? MAV_STATE.MAV_STATE_ACTIVE : MAV_STATE.MAV_STATE_STANDBY,
    })
  }

  private bootMs(): number {
    return Number(this.bootTimeNs() / 1_000_000n) >>> 0
  }

  /** Seconds into the circle. */
  private phase(): number {
    return (2 * Math.PI * Number(this.o.hostClock() - this.hostStart)) / 1e9 / this.o.periodS
  }

  private sendAttitude(): void {
    const a = this.phase()
    const w = (2 * Math.PI) / this.o.periodS
    this.send(Attitude, {
      time_boot_ms: this.bootMs(),
      roll: 0.05 * Math.sin(3 * a),
      pitch: 0.03 * Math.cos(2 * a),
      yaw: ((a + Math.PI / 2 + Math.PI) % (2 * Math.PI)) - Math.PI,
      rollspeed: 0.15 * w * Math.cos(3 * a),
      pitchspeed: -0.06 * w * Math.sin(2 * a),
      yawspeed: w,
    })
  }

  private sendPosition(): void {
    const a = this.phase()
    const r = this.o.radiusM
    const w = (2 * Math.PI) / this.o.periodS
    const dn = r * Math.sin(a)
    const de = r * Math.cos(a)
    const lat = this.o.home.lat + dn / 111_320
    const lon = this.o.home.lon + de / (111_320 * Math.cos((this.o.home.lat * Math.PI) / 180))
    const heading = (((a + Math.PI / 2) * 180) / Math.PI + 360) % 360
    this.send(GlobalPositionInt, {
      time_boot_ms: this.bootMs(),
      lat: Math.round(lat * 1e7),
      lon: Math.round(lon * 1e7),
      alt: Math.round((this.o.home.altM + this.altitude) * 1000),
      relative_alt: Math.round(this.altitude * 1000),
      vx: Math.round(100 * r * w * Math.cos(a)),
      vy: Math.round(-100 * r * w * Math.sin(a)),
      vz: 0,
      hdg: Math.round(heading * 100),
    })
  }

  private sendStatus(): void {
    const elapsedMin = Number(this.o.hostClock() - this.hostStart) / 60e9
    this.battery = Math.max(0, 100 - elapsedMin * this.o.batteryDrainPerMin)
    const cellV = 3.5 + 0.7 * (this.battery / 100)
    const mv = Math.round(cellV * 4 * 1000)
    const sensors = 0x0020ffff
    this.send(SysStatus, {
      onboard_control_sensors_present: sensors,
      onboard_control_sensors_enabled: sensors,
      onboard_control_sensors_health: sensors,
      load: 250,
      voltage_battery: mv,
      current_battery: this.armed ? 1200 : 50,
      battery_remaining: Math.round(this.battery),
      drop_rate_comm: 0,
      errors_comm: 0,
      errors_count1: 0,
      errors_count2: 0,
      errors_count3: 0,
      errors_count4: 0,
    })
    const cell = Math.round(cellV * 1000)
    this.send(BatteryStatus, {
      id: 0,
      battery_function: MAV_BATTERY_FUNCTION.MAV_BATTERY_FUNCTION_ALL,
      type: MAV_BATTERY_TYPE.MAV_BATTERY_TYPE_LIPO,
      temperature: 2500,
      voltages: [cell, cell, cell, cell, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff],
      current_battery: this.armed ? 1200 : 50,
      current_consumed: Math.round(5000 * (1 - this.battery / 100)),
      energy_consumed: -1,
      battery_remaining: Math.round(this.battery),
    })
  }

  private sendTimesyncRequest(): void {
    const ts1 = this.bootTimeNs()
    this.pendingTimesync.add(ts1)
    if (this.pendingTimesync.size > 16) this.pendingTimesync.delete(this.pendingTimesync.values().next().value as bigint)
    this.stats.timesyncRequests++
    this.send(Timesync, { tc1: 0, ts1, target_system: 0, target_component: 0 })
  }

  private forUs(targetSystem: number, targetComponent: number): boolean {
    return (targetSystem === 0 || targetSystem === this.encoder.sysid) && (targetComponent === 0 || targetComponent === this.encoder.compid)
  }

  private onFrame(frame: MavlinkFrame): void {
    switch (frame.msgid) {
      case CommandLong.def.id: {
        const m = frame.as(CommandLong)!
        if (this.forUs(m.target_system, m.target_component)) this.onCommand(frame, m.command, [m.param1, m.param2, m.param3, m.param4, m.param5, m.param6, m.param7])
        return
      }
      case CommandInt.def.id: {
        const m = frame.as(CommandInt)!
        if (this.forUs(m.target_system, m.target_component)) this.onCommand(frame, m.command, [m.param1, m.param2, m.param3, m.param4, m.x, m.y, m.z])
        return
      }
      case Timesync.def.id: {
        const m = frame.as(Timesync)!
        if (m.tc1 === 0n) {
          if (m.target_system !== 0 && !this.forUs(m.target_system, m.target_component)) return
          this.stats.timesyncAnswered++
          this.send(Timesync, { tc1: this.bootTimeNs(), ts1: m.ts1, target_system: frame.sysid, target_component: frame.compid })
        } else if (this.pendingTimesync.delete(m.ts1)) this.stats.timesyncAnswersReceived++
        return
      }
      case ParamRequestList.def.id: {
        const m = frame.as(ParamRequestList)!
        if (this.forUs(m.target_system, m.target_component)) this.streamParams()
        return
      }
      case ParamRequestRead.def.id: {
        const m = frame.as(ParamRequestRead)!
        if (!this.forUs(m.target_system, m.target_component)) return
        const i = m.param_index >= 0 ? m.param_index : this.params.findIndex((p) => p.id === m.param_id)
        if (i >= 0 && i < this.params.length) this.sendParam(i)
        else this.paramError(frame, m.param_id, m.param_index, MAV_PARAM_ERROR.MAV_PARAM_ERROR_DOES_NOT_EXIST)
        return
      }
      case ParamSet.def.id: {
        const m = frame.as(ParamSet)!
        if (!this.forUs(m.target_system, m.target_component)) return
        const i = this.params.findIndex((p) => p.id === m.param_id)
        if (i < 0) return this.paramError(frame, m.param_id, -1, MAV_PARAM_ERROR.MAV_PARAM_ERROR_DOES_NOT_EXIST)
        const p = this.params[i]
        this.stats.paramSets++
        let v: number
        try {
          // the stored type rules (the spec: the autopilot's type is authoritative)
          v = decodeParamValue(paramSetBits(m), p.type, this.encoding)
        } catch {
          v = NaN
        }
        if (Number.isFinite(v) && (p.min === undefined || v >= p.min) && (p.max === undefined || v <= p.max)) {
          p.value = p.type === MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32 ? Math.fround(v) : v
        } else if (this.paramErrors) {
          return this.paramError(frame, p.id, i, MAV_PARAM_ERROR.MAV_PARAM_ERROR_VALUE_OUT_OF_RANGE)
        }
        // refused without PARAM_ERROR: the unchanged value tells the sender
        this.sendParam(i)
        return
      }
      case SetupSigning.def.id: {
        const m = frame.as(SetupSigning)!
        if (!this.forUs(m.target_system, m.target_component)) return
        if (!this.acceptSetup || this.signing === undefined) {
          this.stats.signingSetupsIgnored++
          return
        }
        // from now on every frame we send is signed with the new key and
        // unsigned frames are refused (an all-zero key turns signing off)
        this.signing.applySetup(m)
        this.stats.signingSetups++
        this.emit('signing-setup', this.signing.enabled)
        return
      }
      default:
        this.onMissionFrame(frame)
    }
  }

  private paramError(frame: MavlinkFrame, id: string, index: number, error: number): void {
    if (!this.paramErrors) return
    this.send(ParamError, { target_system: frame.sysid, target_component: frame.compid, param_id: id, param_index: index, error: error as never })
  }

  private sendParam(i: number): void {
    const p = this.params[i]
    this.stats.paramValuesSent++
    if (this.closed) return
    this.port.send(this.encoder.encode(ParamValueRaw, { param_id: p.id, param_type: p.type as never, param_count: this.params.length, param_index: i, bits: encodeParamValue(p.value, p.type, this.encoding) }))
  }

  private streamParams(): void {
    clearInterval(this.paramStream)
    let i = 0
    // paced as autopilots do: a burst of 10 every 5 ms
    this.paramStream = setInterval(() => {
      for (let k = 0; k < 10 && i < this.params.length; k++) this.sendParam(i++)
      if (i >= this.params.length) clearInterval(this.paramStream)
    }, 5)
  }

  private ack(to: { sysid: number; compid: number }, command: number, result: number, progress = 0, resultParam2 = 0): void {
    const name = RESULT_NAMES[result] ?? String(result)
    this.stats.acks[name] = (this.stats.acks[name] ?? 0) + 1
    this.send(CommandAck, { command: command as never, result: result as never, progress, result_param2: resultParam2, target_system: to.sysid, target_component: to.compid })
    this.emit('command', { command, result })
  }

  private onCommand(frame: MavlinkFrame, command: number, p: number[]): void {
    this.stats.commands++
    if (this.silent.has(command)) return
    const from = { sysid: frame.sysid, compid: frame.compid }
    const R = MAV_RESULT
    switch (command) {
      case MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM: {
        const arm = p[0] === 1
        if (!arm && this.takeoff) return this.ack(from, command, R.MAV_RESULT_TEMPORARILY_REJECTED)
        if (this.armed !== arm) {
          this.armed = arm
          if (!arm) this.altitude = 0
          this.emit('armed', arm)
        }
        return this.ack(from, command, R.MAV_RESULT_ACCEPTED)
      }
      case MAV_CMD.MAV_CMD_NAV_TAKEOFF: {
        if (!this.armed) return this.ack(from, command, R.MAV_RESULT_DENIED, 0, 1)
        if (this.takeoff) return this.ack(from, command, R.MAV_RESULT_IN_PROGRESS, this.takeoffProgress()) // a retransmission
        const target = Number.isFinite(p[6]) && p[6] > 0 ? p[6] : 10
        const t: NonNullable<SimAutopilot['takeoff']> = { from, startedMs: performance.now() }
        this.takeoff = t
        this.ack(from, command, R.MAV_RESULT_IN_PROGRESS, 0)
        t.progressTimer = setInterval(() => {
          this.altitude = (target * this.takeoffProgress()) / 100
          this.ack(from, command, R.MAV_RESULT_IN_PROGRESS, this.takeoffProgress())
        }, Math.max(50, this.o.takeoffMs / 3))
        t.timer = setTimeout(() => {
          clearInterval(t.progressTimer)
          this.takeoff = undefined
          this.altitude = target
          this.ack(from, command, R.MAV_RESULT_ACCEPTED, 100)
        }, this.o.takeoffMs)
        return
      }
      case MAV_CMD.MAV_CMD_REQUEST_MESSAGE: {
        if (p[0] !== AutopilotVersion.def.id) return this.ack(from, command, R.MAV_RESULT_DENIED)
        this.ack(from, command, R.MAV_RESULT_ACCEPTED)
        const C = MAV_PROTOCOL_CAPABILITY
        const caps =
          C.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | C.MAV_PROTOCOL_CAPABILITY_MISSION_INT | C.MAV_PROTOCOL_CAPABILITY_COMMAND_INT |
          (this.encoding === 'bytewise' ? C.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE : C.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST)
        this.send(AutopilotVersion, {
          capabilities: caps, flight_sw_version: 0x010e0000, middleware_sw_version: 0, os_sw_version: 0, board_version: 0,
          flight_custom_version: [], middleware_custom_version: [], os_custom_version: [], vendor_id: 0, product_id: 0, uid: 0x0b05b05,
        })
        return
      }
      default:
        return this.ack(from, command, R.MAV_RESULT_UNSUPPORTED)
    }
  }

  private takeoffProgress(): number {
    if (!this.takeoff) return 100
    return Math.min(99, Math.round(((performance.now() - this.takeoff.startedMs) / this.o.takeoffMs) * 100))
  }

  private missionAck(to: { sysid: number; compid: number }, type: number, result: number): void {
    this.send(MissionAck, { target_system: to.sysid, target_component: to.compid, type: result as never, mission_type: type as never })
  }

  private requestItem(u: UploadState): void {
    clearTimeout(u.timer)
    if (u.tries++ > 8) {
      this.upload = undefined
      this.missionAck(u.from, u.type, MAV_MISSION_RESULT.MAV_MISSION_OPERATION_CANCELLED)
      return
    }
    this.send(MissionRequestInt, { target_system: u.from.sysid, target_component: u.from.compid, seq: u.items.length, mission_type: u.type as never })
    u.timer = setTimeout(() => this.requestItem(u), this.o.missionTimeoutMs)
  }

  private onMissionFrame(frame: MavlinkFrame): void {
    const from = { sysid: frame.sysid, compid: frame.compid }
    const count = frame.as(MissionCount)
    if (count !== undefined) {
      if (!this.forUs(count.target_system, count.target_component)) return
      if (this.upload) {
        // a resent MISSION_COUNT of the same transfer: ask again for what we need
        if (this.upload.count === count.count && this.upload.type === count.mission_type) return this.requestItem(this.upload)
        clearTimeout(this.upload.timer)
      }
      if (count.count === 0) {
        this.upload = undefined
        this.missions.set(count.mission_type, [])
        return this.missionAck(from, count.mission_type, MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED)
      }
      this.upload = { type: count.mission_type, count: count.count, items: [], from, tries: 0 }
      this.requestItem(this.upload)
      return
    }
    const item = frame.as(MissionItemInt)
    if (item !== undefined) {
      const u = this.upload
      if (!this.forUs(item.target_system, item.target_component)) return
      if (u === undefined) {
        // the last item again after we finished: our ACK was lost, repeat it
        const done = this.lastUpload
        if (done && done.type === item.mission_type && item.seq === done.count - 1) this.missionAck(from, done.type, MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED)
        return
      }
      if (item.mission_type !== u.type) return
      if (item.seq !== u.items.length) return // a duplicate or out of order: our timer re-requests
      u.items.push(itemFromMessage(item))
      u.tries = 0
      if (u.items.length < u.count) return this.requestItem(u)
      clearTimeout(u.timer)
      this.upload = undefined
      this.lastUpload = { type: u.type, count: u.count }
      this.missions.set(u.type, u.items)
      this.stats.missionUploads++
      this.emit('mission', u.type, u.items)
      this.missionAck(from, u.type, MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED)
      return
    }
    const list = frame.as(MissionRequestList)
    if (list !== undefined) {
      if (!this.forUs(list.target_system, list.target_component)) return
      this.stats.missionDownloads++
      this.send(MissionCount, { target_system: from.sysid, target_component: from.compid, count: (this.missions.get(list.mission_type) ?? []).length, mission_type: list.mission_type })
      return
    }
    const req = frame.as(MissionRequestInt) ?? frame.as(MissionRequest)
    if (req !== undefined) {
      if (!this.forUs(req.target_system, req.target_component)) return
      const items = this.missions.get(req.mission_type) ?? []
      const it = items[req.seq]
      if (it === undefined) return this.missionAck(from, req.mission_type, MAV_MISSION_RESULT.MAV_MISSION_INVALID_SEQUENCE)
      this.send(MissionItemInt, { ...it, target_system: from.sysid, target_component: from.compid, seq: req.seq, mission_type: req.mission_type })
      return
    }
    const clear = frame.as(MissionClearAll)
    if (clear !== undefined) {
      if (!this.forUs(clear.target_system, clear.target_component)) return
      this.missions.set(clear.mission_type, [])
      this.missionAck(from, clear.mission_type, MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED)
    }
  }

  /** Stops every timer and stops listening. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const t of this.timers.splice(0)) clearInterval(t)
    clearInterval(this.paramStream)
    if (this.takeoff) {
      clearTimeout(this.takeoff.timer)
      clearInterval(this.takeoff.progressTimer)
    }
    if (this.upload) clearTimeout(this.upload.timer)
    this.unsubscribe()
  }
}
