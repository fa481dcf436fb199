/**
 * Mission microservice (client side), MISSION_ITEM_INT protocol: upload
 * (MISSION_COUNT → MISSION_REQUEST_INT × n → MISSION_ACK), download
 * (MISSION_REQUEST_LIST → MISSION_COUNT → MISSION_REQUEST_INT/MISSION_ITEM_INT
 * × n → MISSION_ACK) and clear, with retries and timeouts.
 *
 * In an upload the vehicle drives the transfer (it re-requests items it
 * missed); we resend MISSION_COUNT while nothing was requested and the last
 * item sent when the vehicle goes quiet (so a lost item or a lost final ACK is
 * repeated), and give up after `retries` timeouts without progress. In a download we drive it and
 * re-request each item up to `retries` times.
 */
import type { MavlinkEncoder } from '../encoder.js'
import type { MavlinkPort } from '../port.js'
import type { MavlinkFrame } from '../frame.js'
import {
  MAV_MISSION_RESULT,
  MAV_MISSION_TYPE,
  MissionAck,
  MissionClearAll,
  MissionCount,
  MissionItemInt,
  MissionRequest,
  MissionRequestInt,
  MissionRequestList,
} from '../generated/common.js'
import type { MissionItemIntData } from '../generated/common.js'
import { enumName } from '../codec.js'
import { addressedTo, checkTarget, count, fromTarget, positive, serviceError } from './common.js'
import type { MavlinkTarget } from './common.js'

/** One mission item: MISSION_ITEM_INT without target, seq and mission_type. */
export type MissionPlanItem = Omit<MissionItemIntData, 'target_system' | 'target_component' | 'seq' | 'mission_type'>

/** Options of {@link MissionClient}. */
export interface MissionClientOptions {
  target: MavlinkTarget
  /** Wait per step (ms). Default 1500. */
  timeoutMs?: number
  /** Retries per step. Default 4. */
  retries?: number
}

/** The error code for a MISSION_ACK result other than ACCEPTED: ERR_MAVLINK_MISSION_DENIED, ... */
export function missionErrorCode(result: number): string {
  const name = enumName(MAV_MISSION_RESULT, result)
  return `ERR_MAVLINK_MISSION_${name ? name.replace(/^MAV_MISSION_/, '') : `RESULT_${result}`}`
}

/** Item fields of a decoded MISSION_ITEM_INT. */
export function itemFromMessage(m: MissionItemInt): MissionPlanItem {
  return {
    frame: m.frame, command: m.command, current: m.current, autocontinue: m.autocontinue,
    param1: m.param1, param2: m.param2, param3: m.param3, param4: m.param4, x: m.x, y: m.y, z: m.z,
  }
}

type Handler = (frame: MavlinkFrame) => void

/**
 * @example
 * const missions = new MissionClient(port, encoder, { target: { system: 1, component: 1 } })
 * await missions.upload([{ frame: MAV_FRAME.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command: MAV_CMD.MAV_CMD_NAV_WAYPOINT,
 *   current: 0, autocontinue: 1, param1: 0, param2: 0, param3: 0, param4: 0, x: 473977420, y: 85455940, z: 20 }])
 * const items = await missions.download()
 */
export class MissionClient {
  readonly target: MavlinkTarget
  readonly stats = { uploads: 0, downloads: 0, retries: 0 }
  private readonly timeoutMs: number
  private readonly retries: number
  private handler: Handler | undefined
  private busy = false
  private readonly unsubscribe: () => void

  constructor(
    private readonly port: MavlinkPort,
    private readonly encoder: MavlinkEncoder,
    options: MissionClientOptions,
  ) {
    this.target = checkTarget(options.target, 'options.target')
    this.timeoutMs = positive(options.timeoutMs, 'options.timeoutMs', 1500)
    this.retries = count(options.retries, 'options.retries', 4)
    this.unsubscribe = port.onFrame((frame) => {
      if (this.handler !== undefined && fromTarget(this.target, frame.sysid, frame.compid)) this.handler(frame)
    })
  }

  /** One transfer at a time per client (the protocol has one per vehicle and mission type). */
  private run<T>(body: (settle: (err: Error | null, v?: T) => void, arm: (onTimeout: () => void) => void) => void): Promise<T> {
    if (this.busy) return Promise.reject(serviceError('ERR_MAVLINK_MISSION_BUSY', 'a mission transfer is already running on this client', { target: this.target }))
    this.busy = true
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const settle = (err: Error | null, v?: T): void => {
        clearTimeout(timer)
        this.handler = undefined
        this.busy = false
        if (err) reject(err)
        else resolve(v as T)
      }
      const arm = (onTimeout: () => void): void => {
        clearTimeout(timer)
        timer = setTimeout(onTimeout, this.timeoutMs)
      }
      try {
        body(settle, arm)
      } catch (err) {
        settle(err as Error) // e.g. an item the encoder refuses: the client stays usable
      }
    })
  }

  private t() {
    return { target_system: this.target.system, target_component: this.target.component }
  }

  /** Uploads `items` as the vehicle's mission of `missionType` (replacing it). */
  upload(items: readonly MissionPlanItem[], missionType: number = MAV_MISSION_TYPE.MAV_MISSION_TYPE_MISSION): Promise<void> {
    if (items.length > 65535) return Promise.reject(new RangeError(`at most 65535 items, got ${items.length}`))
    return this.run<void>((settle, arm) => {
      this.stats.uploads++
      let misses = 0
      let requested = false
      const sendCount = (): void => {
        this.port.send(this.encoder.encode(MissionCount, { ...this.t(), count: items.length, mission_type: missionType as never }))
        arm(onTimeout)
      }
      const onTimeout = (): void => {
        if (++misses > this.retries) {
          settle(serviceError('ERR_MAVLINK_MISSION_TIMEOUT', `mission upload to ${this.target.system}/${this.target.component}: no ${requested ? 'request or ACK' : 'MISSION_REQUEST_INT'} after ${misses} timeout(s)`, { target: this.target }))
          return
        }
        this.stats.retries++
        if (!requested) sendCount()
        else {
          // the item or the vehicle's next request/ACK was lost: resending the
          // last item makes the vehicle repeat its answer (the spec's recovery)
          sendItem(lastSeq)
          arm(onTimeout)
        }
      }
      let lastSeq = 0
      const sendItem = (seq: number): void => {
        lastSeq = seq
        this.port.send(this.encoder.encode(MissionItemInt, { ...this.t(), ...items[seq], seq, mission_type: missionType as never }))
      }
      this.handler = (frame) => {
        const req = frame.as(MissionRequestInt) ?? frame.as(MissionRequest)
        if (req !== undefined) {
          if (!addressedTo(this.encoder, req.target_system, req.target_component) || req.mission_type !== missionType) return
          const item = items[req.seq]
          if (item === undefined) return
          requested = true
          misses = 0
          sendItem(req.seq)
          arm(onTimeout)
          return
        }
        const ack = frame.as(MissionAck)
        if (ack === undefined || !addressedTo(this.encoder, ack.target_system, ack.target_component) || ack.mission_type !== missionType) return
        if (ack.type === MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED) settle(null)
        else settle(serviceError(missionErrorCode(ack.type), `mission upload refused: ${enumName(MAV_MISSION_RESULT, ack.type) ?? ack.type}`, { result: ack.type, target: this.target }))
      }
      sendCount()
    })
  }

  /** Downloads the vehicle's mission of `missionType`. */
  download(missionType: number = MAV_MISSION_TYPE.MAV_MISSION_TYPE_MISSION): Promise<MissionPlanItem[]> {
    return this.run<MissionPlanItem[]>((settle, arm) => {
      this.stats.downloads++
      let total: number | undefined
      const items: MissionPlanItem[] = []
      let tries = 0
      const ack = (type: number): void => {
        this.port.send(this.encoder.encode(MissionAck, { ...this.t(), type: type as never, mission_type: missionType as never }))
      }
      const step = (): void => {
        tries++
        if (total === undefined) this.port.send(this.encoder.encode(MissionRequestList, { ...this.t(), mission_type: missionType as never }))
        else this.port.send(this.encoder.encode(MissionRequestInt, { ...this.t(), seq: items.length, mission_type: missionType as never }))
        arm(() => {
          if (tries > this.retries) {
            ack(MAV_MISSION_RESULT.MAV_MISSION_OPERATION_CANCELLED)
            const what = total === undefined ? 'MISSION_COUNT' : `item ${items.length} of ${total}`
            settle(serviceError('ERR_MAVLINK_MISSION_TIMEOUT', `mission download from ${this.target.system}/${this.target.component}: no ${what} after ${tries} attempt(s)`, { target: this.target }))
            return
          }
          this.stats.retries++
          step()
        })
      }
      const next = (): void => {
        tries = 0
        if (items.length === total) {
          ack(MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED)
          settle(null, items)
          return
        }
        step()
      }
      this.handler = (frame) => {
        const c = frame.as(MissionCount)
        if (c !== undefined) {
          if (total !== undefined || !addressedTo(this.encoder, c.target_system, c.target_component) || c.mission_type !== missionType) return
          total = c.count
          next()
          return
        }
        const it = frame.as(MissionItemInt)
        if (it !== undefined) {
          if (total === undefined || it.seq !== items.length || it.mission_type !== missionType) return
          items.push(itemFromMessage(it))
          next()
        }
      }
      step()
    })
  }

  /** Clears the vehicle's mission of `missionType`. */
  clear(missionType: number = MAV_MISSION_TYPE.MAV_MISSION_TYPE_MISSION): Promise<void> {
    return this.run<void>((settle, arm) => {
      let tries = 0
      const send = (): void => {
        tries++
        this.port.send(this.encoder.encode(MissionClearAll, { ...this.t(), mission_type: missionType as never }))
        arm(() => (tries > this.retries ? settle(serviceError('ERR_MAVLINK_MISSION_TIMEOUT', 'mission clear: no MISSION_ACK', { target: this.target })) : send()))
      }
      this.handler = (frame) => {
        const ack = frame.as(MissionAck)
        if (ack === undefined || !addressedTo(this.encoder, ack.target_system, ack.target_component) || ack.mission_type !== missionType) return
        if (ack.type === MAV_MISSION_RESULT.MAV_MISSION_ACCEPTED) settle(null)
        else settle(serviceError(missionErrorCode(ack.type), `mission clear refused: ${enumName(MAV_MISSION_RESULT, ack.type) ?? ack.type}`, { result: ack.type, target: this.target }))
      }
      send()
    })
  }

  close(): void {
    this.unsubscribe()
  }
}
