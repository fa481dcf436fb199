/**
 * What the services share: the target type, the error shape and the
 * "is this addressed to us" rule.
 */
import type { MavlinkEncoder } from '../encoder.js'
import { outOfRange } from '../../errors.js'

/** A system/component to talk to. Component 0 addresses every component of the system. */
export interface MavlinkTarget {
  system: number
  component: number
}

/** A MAVLink protocol error: Node-shaped (`code`), plus what the peer said. */
export interface MavlinkServiceError extends Error {
  code: string
  /** The MAV_RESULT / MAV_MISSION_RESULT the peer answered with, when it answered. */
  result?: number
  /** COMMAND_ACK.result_param2 (command-specific reason), when given. */
  result_param2?: number
  command?: number
  target?: MavlinkTarget
  /** Attempts made (first send + retries). */
  attempts?: number
}

/**
 * Builds a {@link MavlinkServiceError}.
 * @example
 * throw serviceError('ERR_MAVLINK_COMMAND_DENIED', 'ARM denied', { result: 2 })
 */
export function serviceError(code: string, message: string, extra: Partial<MavlinkServiceError> = {}): MavlinkServiceError {
  const err = new Error(message) as MavlinkServiceError
  err.code = code
  Object.assign(err, extra)
  Error.captureStackTrace?.(err, serviceError)
  return err
}

/**
 * Whether a message's target_system/target_component (0 = broadcast) includes the encoder's ids.
 * @example
 * if (!addressedTo(encoder, ack.target_system, ack.target_component)) return
 */
export function addressedTo(enc: MavlinkEncoder, targetSystem: number, targetComponent: number): boolean {
  return (targetSystem === 0 || targetSystem === enc.sysid) && (targetComponent === 0 || targetComponent === enc.compid)
}

/** Whether a frame from (sysid, compid) comes from `target` (0 = any system / any component). */
export function fromTarget(target: MavlinkTarget, sysid: number, compid: number): boolean {
  return (target.system === 0 || sysid === target.system) && (target.component === 0 || compid === target.component)
}

export function checkTarget(t: unknown, name = 'target'): MavlinkTarget {
  const o = t as MavlinkTarget
  if (typeof o !== 'object' || o === null) throw outOfRange(name, 'an object { system, component }', t)
  for (const k of ['system', 'component'] as const) {
    const v = o[k]
    if (!Number.isInteger(v) || v < 0 || v > 255) throw outOfRange(`${name}.${k}`, 'an integer from 0 to 255', v)
  }
  return { system: o.system, component: o.component }
}

export function positive(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw outOfRange(name, 'a positive number', v)
  return v
}

export function count(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw outOfRange(name, 'an integer >= 0', v)
  return v
}
