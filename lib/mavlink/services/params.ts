/**
 * Parameter microservice (client side): list with gap filling, get, set, and
 * the two encodings of a value in PARAM_VALUE/PARAM_SET's float field.
 *
 * Values travel as the raw 32 bits of the `param_value` field, never through
 * a JavaScript float: in the byte-wise encoding an INT32 of -1 is the bit
 * pattern of a NaN, and a float round trip may change a NaN's bits.
 */
import { EventEmitter } from 'node:events'
import type { MessageDef } from '../codec.js'
import type { MavlinkEncoder } from '../encoder.js'
import type { MavlinkPort } from '../port.js'
import { AutopilotVersion, MAV_CMD, MAV_PARAM_ERROR, MAV_PARAM_TYPE, MAV_PROTOCOL_CAPABILITY, ParamError, ParamRequestList, ParamRequestRead, ParamSet, ParamValue } from '../generated/common.js'
import { enumName } from '../codec.js'
import type { CommandClient } from './command.js'
import type { ParamSetData, ParamValueData } from '../generated/common.js'
import { addressedTo, checkTarget, count, fromTarget, positive, serviceError } from './common.js'
import type { MavlinkTarget } from './common.js'
import { outOfRange } from '../../errors.js'

/**
 * How a value sits in the float field. 'bytewise' (PX4,
 * MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE): the value's own bytes,
 * little-endian, in the field's 4 bytes; 64-bit types cannot be sent.
 * 'c_cast' (ArduPilot, MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST): the value
 * converted to float (integers above 2^24 lose precision).
 */
export type ParamEncoding = 'bytewise' | 'c_cast'

const scratch = new DataView(new ArrayBuffer(8))

function intRange(type: number): [number, number] | undefined {
  switch (type) {
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT8: return [0, 0xff]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT8: return [-0x80, 0x7f]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT16: return [0, 0xffff]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT16: return [-0x8000, 0x7fff]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT32: return [0, 0xffffffff]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT32: return [-0x80000000, 0x7fffffff]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT64: return [0, Number.MAX_SAFE_INTEGER]
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT64: return [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]
    default: return undefined
  }
}

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 1 || type > 10) throw outOfRange('type', 'a MAV_PARAM_TYPE (1-10)', type)
}

/**
 * The 32 bits to put in `param_value` for `value` of `type`.
 * @example
 * encodeParamValue(-1, MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT32, 'bytewise') // 0xffffffff
 * encodeParamValue(-1, MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT32, 'c_cast')   // 0xbf800000 (-1.0f)
 */
export function encodeParamValue(value: number, type: number, encoding: ParamEncoding): number {
  checkType(type)
  if (typeof value !== 'number' || Number.isNaN(value)) throw outOfRange('value', 'a number', value)
  const range = intRange(type)
  if (range !== undefined) {
    if (!Number.isInteger(value) || value < range[0] || value > range[1]) throw outOfRange('value', `an integer from ${range[0]} to ${range[1]} for MAV_PARAM_TYPE ${type}`, value)
  }
  if (encoding === 'c_cast') {
    scratch.setFloat32(0, value, true)
    return scratch.getUint32(0, true)
  }
  if (encoding !== 'bytewise') throw outOfRange('encoding', "'bytewise' or 'c_cast'", encoding)
  scratch.setUint32(0, 0, true)
  switch (type) {
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT8: scratch.setUint8(0, value); break
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT8: scratch.setInt8(0, value); break
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT16: scratch.setUint16(0, value, true); break
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT16: scratch.setInt16(0, value, true); break
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT32: scratch.setUint32(0, value, true); break
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT32: scratch.setInt32(0, value, true); break
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32: scratch.setFloat32(0, value, true); break
    default: throw outOfRange('type', 'a type of at most 32 bits in the byte-wise encoding', type)
  }
  return scratch.getUint32(0, true)
}

/** The value `bits` (the raw `param_value` field) stands for. */
export function decodeParamValue(bits: number, type: number, encoding: ParamEncoding): number {
  checkType(type)
  scratch.setUint32(0, bits >>> 0, true)
  if (encoding === 'c_cast') {
    const f = scratch.getFloat32(0, true)
    // C: (int)f truncates toward zero
    return intRange(type) !== undefined ? Math.trunc(f) : f
  }
  switch (type) {
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT8: return scratch.getUint8(0)
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT8: return scratch.getInt8(0)
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT16: return scratch.getUint16(0, true)
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT16: return scratch.getInt16(0, true)
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_UINT32: return scratch.getUint32(0, true)
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_INT32: return scratch.getInt32(0, true)
    case MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32: return scratch.getFloat32(0, true)
    default: throw outOfRange('type', 'a type of at most 32 bits in the byte-wise encoding', type)
  }
}

const VALUE_OFFSET = ParamValue.def.fields.find((f) => f.name === 'param_value')!.offset
const SET_VALUE_OFFSET = ParamSet.def.fields.find((f) => f.name === 'param_value')!.offset

/** The raw bits of a decoded PARAM_VALUE's `param_value`. */
export function paramValueBits(msg: ParamValue): number {
  const b = msg._b
  const o = VALUE_OFFSET
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
}

/** The raw bits of a decoded PARAM_SET's `param_value`. */
export function paramSetBits(msg: ParamSet): number {
  const b = msg._b
  const o = SET_VALUE_OFFSET
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
}

/** PARAM_VALUE / PARAM_SET descriptors that take `param_value` as raw bits (`bits`), bypassing the float. */
export const ParamValueRaw: MessageDef<ParamValue, Omit<ParamValueData, 'param_value'> & { bits: number }> = {
  ...ParamValue.def,
  encode(data, view, offset) {
    ParamValue.def.encode({ ...data, param_value: 0 }, view, offset)
    view.setUint32(offset + VALUE_OFFSET, data.bits >>> 0, true)
  },
}
export const ParamSetRaw: MessageDef<ParamSet, Omit<ParamSetData, 'param_value'> & { bits: number }> = {
  ...ParamSet.def,
  encode(data, view, offset) {
    ParamSet.def.encode({ ...data, param_value: 0 }, view, offset)
    view.setUint32(offset + SET_VALUE_OFFSET, data.bits >>> 0, true)
  },
}

/** One parameter. */
export interface Param {
  id: string
  value: number
  type: number
  index: number
  /** The raw `param_value` bits as received. */
  bits: number
}

/** Options of {@link ParamClient}. */
export interface ParamClientOptions {
  /** The system/component whose parameters these are. */
  target: MavlinkTarget
  /** Default 'c_cast'; PX4 uses 'bytewise'. */
  encoding?: ParamEncoding
  /** Wait per request (get, set, one gap-fill read), ms. Default 1000. */
  timeoutMs?: number
  /** Retries per request. Default 3. */
  retries?: number
  /** During a list: the stream counts as stalled after this much silence (ms); then gaps are filled. Default 500. */
  listQuietMs?: number
}

interface Waiter {
  match: (p: Param) => boolean
  done: (p: Param) => void
  /** A PARAM_ERROR for this request (name or index), if the target sends them. */
  failed?: (id: string, index: number, error: number) => void
}

/**
 * @example
 * const params = new ParamClient(port, encoder, { target: { system: 1, component: 1 }, encoding: 'bytewise' })
 * const all = await params.list()
 * await params.set('MPC_XY_VEL_MAX', 8)
 *
 * Events: `'value'` (Param) for every PARAM_VALUE from the target.
 */
export class ParamClient extends EventEmitter {
  readonly target: MavlinkTarget
  encoding: ParamEncoding
  /** Every parameter seen, by id. */
  readonly cache = new Map<string, Param>()
  /** The target's parameter count, from its last PARAM_VALUE. */
  total: number | undefined
  readonly stats = { requests: 0, retries: 0, gapReads: 0, values: 0, errors: 0 }
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly quietMs: number
  private waiters: Waiter[] = []
  private readonly unsubscribe: () => void

  constructor(
    private readonly port: MavlinkPort,
    private readonly encoder: MavlinkEncoder,
    options: ParamClientOptions,
  ) {
    super()
    this.target = checkTarget(options.target, 'options.target')
    this.encoding = options.encoding ?? 'c_cast'
    if (this.encoding !== 'c_cast' && this.encoding !== 'bytewise') throw outOfRange('options.encoding', "'bytewise' or 'c_cast'", this.encoding)
    this.timeoutMs = positive(options.timeoutMs, 'options.timeoutMs', 1000)
    this.retries = count(options.retries, 'options.retries', 3)
    this.quietMs = positive(options.listQuietMs, 'options.listQuietMs', 500)
    this.unsubscribe = port.onFrame((frame) => {
      if (!fromTarget(this.target, frame.sysid, frame.compid)) return
      const e = frame.as(ParamError)
      if (e !== undefined) {
        if (!addressedTo(this.encoder, e.target_system, e.target_component)) return
        this.stats.errors++
        for (const w of [...this.waiters]) w.failed?.(e.param_id, e.param_index, e.error)
        return
      }
      const m = frame.as(ParamValue)
      if (m === undefined) return
      const bits = paramValueBits(m)
      let value: number
      try {
        value = decodeParamValue(bits, m.param_type, this.encoding)
      } catch {
        value = NaN // a type this encoding cannot carry: keep the bits, report no value
      }
      const p: Param = { id: m.param_id, value, type: m.param_type, index: m.param_index, bits }
      this.stats.values++
      this.total = m.param_count
      this.cache.set(p.id, p)
      this.emit('value', p)
      for (const w of this.waiters) if (w.match(p)) w.done(p)
    })
  }

  /**
   * Reads every parameter: PARAM_REQUEST_LIST, then (when the stream goes
   * quiet with indices missing) PARAM_REQUEST_READ by index for each gap,
   * with retries. Rejects with ERR_MAVLINK_PARAM_TIMEOUT (`missing` lists the
   * indices) when gaps remain after the retries.
   */
  list(options: { signal?: AbortSignal } = {}): Promise<Map<string, Param>> {
    return new Promise((resolve, reject) => {
      const byIndex = new Map<number, Param>()
      let expected: number | undefined
      let listAttempts = 0
      let quiet: NodeJS.Timeout | undefined
      const gapTries = new Map<number, number>()
      let settled = false
      const finish = (err: Error | null): void => {
        if (settled) return
        settled = true
        clearTimeout(quiet)
        this.waiters = this.waiters.filter((x) => x !== w)
        options.signal?.removeEventListener('abort', onAbort)
        if (err) reject(err)
        else {
          const out = new Map<string, Param>()
          for (const i of [...byIndex.keys()].sort((a, b) => a - b)) {
            const p = byIndex.get(i)!
            out.set(p.id, p)
          }
          resolve(out)
        }
      }
      const onAbort = (): void => finish(serviceError('ERR_MAVLINK_PARAM_ABORTED', 'parameter list aborted'))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      const requestList = (): void => {
        listAttempts++
        if (listAttempts > 1) this.stats.retries++
        this.stats.requests++
        this.port.send(this.encoder.encode(ParamRequestList, { target_system: this.target.system, target_component: this.target.component }))
        rearm()
      }
      const rearm = (): void => {
        clearTimeout(quiet)
        quiet = setTimeout(onQuiet, expected === undefined ? this.timeoutMs : this.quietMs)
      }
      const onQuiet = (): void => {
        if (expected === undefined) {
          if (listAttempts > this.retries) finish(serviceError('ERR_MAVLINK_PARAM_TIMEOUT', `no PARAM_VALUE from ${this.target.system}/${this.target.component} after ${listAttempts} PARAM_REQUEST_LIST`, { target: this.target, attempts: listAttempts }))
          else requestList()
          return
        }
        const missing: number[] = []
        for (let i = 0; i < expected; i++) if (!byIndex.has(i)) missing.push(i)
        if (missing.length === 0) return finish(null)
        const exhausted = missing.filter((i) => (gapTries.get(i) ?? 0) > this.retries)
        if (exhausted.length > 0) {
          const err = serviceError('ERR_MAVLINK_PARAM_TIMEOUT', `parameter list incomplete: ${missing.length} of ${expected} missing after ${this.retries} retries`, { target: this.target })
          ;(err as unknown as { missing: number[] }).missing = missing
          return finish(err)
        }
        // re-request the gaps, a bounded burst at a time so a slow link is not flooded
        for (const i of missing.slice(0, 32)) {
          gapTries.set(i, (gapTries.get(i) ?? 0) + 1)
          this.stats.gapReads++
          this.stats.requests++
          this.port.send(this.encoder.encode(ParamRequestRead, { target_system: this.target.system, target_component: this.target.component, param_id: '', param_index: i }))
        }
        quiet = setTimeout(onQuiet, this.timeoutMs)
      }
      const w: Waiter = {
        match: () => true,
        done: (p) => {
          if (p.index < 0 || p.index === 0xffff) return // an answer to a read by name carries index -1 in some stacks
          expected = this.total
          byIndex.set(p.index, p)
          if (expected !== undefined && byIndex.size >= expected) {
            let all = true
            for (let i = 0; i < expected && all; i++) all = byIndex.has(i)
            if (all) return finish(null)
          }
          if (gapTries.size === 0) rearm()
        },
      }
      this.waiters.push(w)
      requestList()
    })
  }

  /**
   * Reads one parameter by name (or index) with retries. A PARAM_ERROR
   * answer rejects at once (ERR_MAVLINK_PARAM_DOES_NOT_EXIST, …); targets
   * that stay silent on unknown names end in ERR_MAVLINK_PARAM_TIMEOUT.
   */
  get(id: string | number): Promise<Param> {
    const byName = typeof id === 'string'
    if (byName && (id.length === 0 || Buffer.byteLength(id) > 16)) throw outOfRange('id', 'a name of 1 to 16 bytes', id)
    return this.request(
      (p) => (byName ? p.id === id : p.index === id),
      () => this.encoder.encode(ParamRequestRead, { target_system: this.target.system, target_component: this.target.component, param_id: byName ? id : '', param_index: byName ? -1 : id }),
      `read of ${JSON.stringify(id)}`,
      byName ? { id } : { index: id },
    )
  }

  /**
   * Sets a parameter and resolves with the PARAM_VALUE that confirms it.
   * `type` defaults to the cached type (a `get`/`list` first), else REAL32.
   * Rejects with ERR_MAVLINK_PARAM_TIMEOUT, ERR_MAVLINK_PARAM_REJECTED
   * when the target answers with a different value (`actual` on the error),
   * or ERR_MAVLINK_PARAM_<error> when it answers PARAM_ERROR (`result`).
   */
  async set(id: string, value: number, type?: number): Promise<Param> {
    if (id.length === 0 || Buffer.byteLength(id) > 16) throw outOfRange('id', 'a name of 1 to 16 bytes', id)
    const t = type ?? this.cache.get(id)?.type ?? MAV_PARAM_TYPE.MAV_PARAM_TYPE_REAL32
    const bits = encodeParamValue(value, t, this.encoding)
    const p = await this.request(
      (p) => p.id === id,
      () => this.encoder.encode(ParamSetRaw, { target_system: this.target.system, target_component: this.target.component, param_id: id, param_type: t as never, bits }),
      `set of ${JSON.stringify(id)}`,
      { id },
    )
    if (p.bits !== bits) {
      const err = serviceError('ERR_MAVLINK_PARAM_REJECTED', `set of ${JSON.stringify(id)} to ${value}: the target kept ${p.value}`, { target: this.target })
      ;(err as unknown as { actual: Param }).actual = p
      throw err
    }
    return p
  }

  private request(match: (p: Param) => boolean, build: () => Uint8Array, what: string, key: { id?: string; index?: number }): Promise<Param> {
    return new Promise((resolve, reject) => {
      let attempts = 0
      let timer: NodeJS.Timeout | undefined
      const w: Waiter = {
        match,
        done: (p) => {
          clearTimeout(timer)
          this.waiters = this.waiters.filter((x) => x !== w)
          resolve(p)
        },
        failed: (id, index, error) => {
          if (key.id !== undefined ? id !== key.id : index !== key.index) return
          clearTimeout(timer)
          this.waiters = this.waiters.filter((x) => x !== w)
          const name = enumName(MAV_PARAM_ERROR, error) ?? String(error)
          reject(serviceError(`ERR_MAVLINK_PARAM_${name.replace(/^MAV_PARAM_ERROR_/, '')}`, `parameter ${what} on ${this.target.system}/${this.target.component}: PARAM_ERROR ${name}`, { target: this.target, result: error, attempts }))
        },
      }
      const send = (): void => {
        attempts++
        if (attempts > 1) this.stats.retries++
        this.stats.requests++
        this.port.send(build())
        timer = setTimeout(() => {
          if (attempts <= this.retries) return send()
          this.waiters = this.waiters.filter((x) => x !== w)
          reject(serviceError('ERR_MAVLINK_PARAM_TIMEOUT', `parameter ${what} on ${this.target.system}/${this.target.component}: no PARAM_VALUE after ${attempts} attempt(s)`, { target: this.target, attempts }))
        }, this.timeoutMs)
      }
      this.waiters.push(w)
      send()
    })
  }

  close(): void {
    this.unsubscribe()
  }
}

/** Whether a PARAM_SET / PARAM_REQUEST_* is for this encoder's system and component. */
export function paramRequestForUs(enc: MavlinkEncoder, targetSystem: number, targetComponent: number): boolean {
  return addressedTo(enc, targetSystem, targetComponent)
}

/**
 * Asks the target for AUTOPILOT_VERSION (MAV_CMD_REQUEST_MESSAGE) and returns
 * the parameter encoding its capabilities announce, or undefined when it
 * announces neither. Rejects when the command fails or no AUTOPILOT_VERSION
 * arrives within `timeoutMs` (ERR_MAVLINK_PARAM_TIMEOUT).
 * @example
 * const encoding = (await detectParamEncoding(port, cmd, vehicle)) ?? 'c_cast'
 */
export async function detectParamEncoding(port: MavlinkPort, commands: CommandClient, target: MavlinkTarget, timeoutMs = 3000): Promise<ParamEncoding | undefined> {
  const t = checkTarget(target)
  let off: () => void = () => {}
  let timer: NodeJS.Timeout | undefined
  const version = new Promise<bigint>((resolve, reject) => {
    off = port.onFrame((frame) => {
      if (!fromTarget(t, frame.sysid, frame.compid)) return
      const v = frame.as(AutopilotVersion)
      if (v) resolve(v.capabilities)
    })
    timer = setTimeout(() => reject(serviceError('ERR_MAVLINK_PARAM_TIMEOUT', `no AUTOPILOT_VERSION from ${t.system}/${t.component} within ${timeoutMs} ms`, { target: t })), timeoutMs)
  })
  try {
    const [caps] = await Promise.all([version, commands.long(t, MAV_CMD.MAV_CMD_REQUEST_MESSAGE, [AutopilotVersion.def.id])])
    const C = MAV_PROTOCOL_CAPABILITY
    if (caps & BigInt(C.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE)) return 'bytewise'
    if (caps & BigInt(C.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST)) return 'c_cast'
    return undefined
  } finally {
    off()
    clearTimeout(timer)
  }
}
