/**
 * Command microservice (client side): COMMAND_LONG and COMMAND_INT with
 * COMMAND_ACK matching, MAV_RESULT_IN_PROGRESS, retries and timeouts, one
 * promise per command.
 *
 * Matching: an ACK belongs to a command when it comes from the command's
 * target (any component when the target component is 0), carries the same
 * command id, and its target_system/target_component (when not 0, as MAVLink 1
 * senders leave them) are ours. The protocol allows one command of a given id
 * in flight per target, because the ACK carries nothing else to tell two
 * apart: a second command with the same id for the same target waits in a
 * queue until the first settles (`sameCommand: 'queue'`, the default), or is
 * refused at once with ERR_MAVLINK_COMMAND_BUSY (`'reject'`). Commands of
 * different ids run concurrently.
 */
import { EventEmitter } from 'node:events'
import type { MavlinkEncoder } from '../encoder.js'
import type { MavlinkPort } from '../port.js'
import { CommandAck, CommandInt, CommandLong, MAV_FRAME, MAV_RESULT } from '../generated/common.js'
import { enumName } from '../codec.js'
import { addressedTo, checkTarget, count, fromTarget, positive, serviceError } from './common.js'
import type { MavlinkServiceError, MavlinkTarget } from './common.js'

/** What a command resolved with (result is always MAV_RESULT_ACCEPTED). */
export interface CommandResult {
  command: number
  result: number
  /** Last progress reported (0-100) with IN_PROGRESS, if any. */
  progress?: number
  result_param2: number
  /** Sends made (1 = no retry). */
  attempts: number
}

/** Per-command options. */
export interface CommandOptions {
  /** Time to wait for an ACK after each send (ms). */
  timeoutMs?: number
  /** Retransmissions after the first send. */
  retries?: number
  /** After MAV_RESULT_IN_PROGRESS: time to wait for the next ACK (ms); each progress ACK extends it. */
  inProgressTimeoutMs?: number
  /** Called with each IN_PROGRESS progress value (0-100; 255 = unknown). */
  onProgress?: (progress: number) => void
  /** Aborts the wait (rejects with ERR_MAVLINK_COMMAND_ABORTED; nothing more is sent). */
  signal?: AbortSignal
}

/** Options of {@link CommandClient}. */
export interface CommandClientOptions {
  /** Default 1000 ms. */
  timeoutMs?: number
  /** Default 3. */
  retries?: number
  /** Default 5000 ms. */
  inProgressTimeoutMs?: number
  /** A second command with the same id to the same target: 'queue' (default) or 'reject'. */
  sameCommand?: 'queue' | 'reject'
}

/** COMMAND_INT fields besides target and command. */
export interface CommandIntParams {
  frame?: number
  current?: number
  autocontinue?: number
  param1?: number
  param2?: number
  param3?: number
  param4?: number
  /** Latitude (degE7) or local x. */
  x?: number
  y?: number
  /** Altitude / z, float. */
  z?: number
}

interface Pending {
  key: string
  target: MavlinkTarget
  command: number
  kind: 'long' | 'int'
  build: (attempt: number) => Uint8Array
  opts: Required<Pick<CommandOptions, 'timeoutMs' | 'retries' | 'inProgressTimeoutMs'>> & CommandOptions
  attempts: number
  inProgress: boolean
  progress?: number
  timer?: NodeJS.Timeout
  resolve: (r: CommandResult) => void
  reject: (e: MavlinkServiceError) => void
  started: boolean
  onAbort?: () => void
}

/** The error code for a MAV_RESULT other than ACCEPTED: ERR_MAVLINK_COMMAND_DENIED, ..._UNSUPPORTED, ... */
export function commandErrorCode(result: number): string {
  const name = enumName(MAV_RESULT, result)
  return `ERR_MAVLINK_COMMAND_${name ? name.replace(/^MAV_RESULT_/, '') : `RESULT_${result}`}`
}

/**
 * @example
 * const cmd = new CommandClient(port, encoder)
 * await cmd.long({ system: 1, component: 1 }, MAV_CMD.MAV_CMD_COMPONENT_ARM_DISARM, [1])
 * // rejects with err.code 'ERR_MAVLINK_COMMAND_DENIED' (err.result, err.result_param2) or '..._TIMEOUT'
 *
 * Events: `'progress'` ({ command, target, progress }), `'retry'` ({ command, target, attempt }),
 * `'unmatched-ack'` (CommandAck for no command of ours in flight, e.g. a late duplicate).
 */
export class CommandClient extends EventEmitter {
  private readonly inflight = new Map<string, Pending>()
  private readonly queues = new Map<string, Pending[]>()
  private readonly defaults: { timeoutMs: number; retries: number; inProgressTimeoutMs: number }
  private readonly sameCommand: 'queue' | 'reject'
  private readonly unsubscribe: () => void
  /** Counters. */
  readonly stats = { sent: 0, retries: 0, acks: 0, unmatchedAcks: 0, timeouts: 0 }

  constructor(
    private readonly port: MavlinkPort,
    private readonly encoder: MavlinkEncoder,
    options: CommandClientOptions = {},
  ) {
    super()
    this.defaults = {
      timeoutMs: positive(options.timeoutMs, 'options.timeoutMs', 1000),
      retries: count(options.retries, 'options.retries', 3),
      inProgressTimeoutMs: positive(options.inProgressTimeoutMs, 'options.inProgressTimeoutMs', 5000),
    }
    this.sameCommand = options.sameCommand ?? 'queue'
    this.unsubscribe = port.onFrame((frame) => {
      const ack = frame.as(CommandAck)
      if (ack === undefined) return
      if (!addressedTo(this.encoder, ack.target_system, ack.target_component)) return
      this.stats.acks++
      // targets with component 0 accept the ACK from any component of the system
      let p = this.inflight.get(`${frame.sysid}:${frame.compid}:${ack.command}`)
      if (p === undefined) p = this.inflight.get(`${frame.sysid}:0:${ack.command}`)
      // a broadcast command (target system 0) settles on the first ACK from anyone
      if (p === undefined) p = this.inflight.get(`0:0:${ack.command}`)
      if (p === undefined || !fromTarget(p.target, frame.sysid, frame.compid)) {
        this.stats.unmatchedAcks++
        this.emit('unmatched-ack', ack, frame.sysid, frame.compid)
        return
      }
      this.onAck(p, ack.result, ack.progress, ack.result_param2)
    })
  }

  /**
   * Sends a COMMAND_LONG (params 1-7, missing ones 0) and resolves on
   * MAV_RESULT_ACCEPTED. Each retransmission increments `confirmation`.
   */
  long(target: MavlinkTarget, command: number, params: readonly number[] = [], options: CommandOptions = {}): Promise<CommandResult> {
    const t = checkTarget(target)
    if (params.length > 7) throw new RangeError(`COMMAND_LONG has 7 params, got ${params.length}`)
    const p = [0, 0, 0, 0, 0, 0, 0].map((d, i) => params[i] ?? d)
    return this.submit(t, command, 'long', options, (attempt) =>
      this.encoder.encode(CommandLong, {
        target_system: t.system,
        target_component: t.component,
        command: command as never,
        confirmation: Math.min(attempt, 255),
        param1: p[0], param2: p[1], param3: p[2], param4: p[3], param5: p[4], param6: p[5], param7: p[6],
      }),
    )
  }

  /** Sends a COMMAND_INT (positions as scaled integers) and resolves on MAV_RESULT_ACCEPTED. */
  int(target: MavlinkTarget, command: number, params: CommandIntParams = {}, options: CommandOptions = {}): Promise<CommandResult> {
    const t = checkTarget(target)
    const bytes = this.encoder.encode.bind(this.encoder)
    return this.submit(t, command, 'int', options, () =>
      bytes(CommandInt, {
        target_system: t.system,
        target_component: t.component,
        frame: (params.frame ?? MAV_FRAME.MAV_FRAME_GLOBAL) as never,
        command: command as never,
        current: params.current ?? 0,
        autocontinue: params.autocontinue ?? 0,
        param1: params.param1 ?? 0, param2: params.param2 ?? 0, param3: params.param3 ?? 0, param4: params.param4 ?? 0,
        x: params.x ?? 0, y: params.y ?? 0, z: params.z ?? 0,
      }),
    )
  }

  /** Commands in flight. */
  get pending(): number {
    return this.inflight.size
  }

  private submit(target: MavlinkTarget, command: number, kind: 'long' | 'int', options: CommandOptions, build: (attempt: number) => Uint8Array): Promise<CommandResult> {
    if (!Number.isInteger(command) || command < 0 || command > 65535) throw new RangeError(`command must be an integer 0..65535, got ${command}`)
    const opts = {
      ...options,
      timeoutMs: positive(options.timeoutMs, 'options.timeoutMs', this.defaults.timeoutMs),
      retries: count(options.retries, 'options.retries', this.defaults.retries),
      inProgressTimeoutMs: positive(options.inProgressTimeoutMs, 'options.inProgressTimeoutMs', this.defaults.inProgressTimeoutMs),
    }
    const key = `${target.system}:${target.component}:${command}`
    return new Promise<CommandResult>((resolve, reject) => {
      const p: Pending = { key, target, command, kind, build, opts, attempts: 0, inProgress: false, resolve, reject, started: false }
      if (opts.signal?.aborted) {
        reject(this.error(p, 'ERR_MAVLINK_COMMAND_ABORTED', 'aborted before sending'))
        return
      }
      if (opts.signal) {
        p.onAbort = () => this.finish(p, this.error(p, 'ERR_MAVLINK_COMMAND_ABORTED', 'aborted'))
        opts.signal.addEventListener('abort', p.onAbort, { once: true })
      }
      if (!this.inflight.has(key)) {
        this.start(p)
        return
      }
      if (this.sameCommand === 'reject') {
        this.finish(p, this.error(p, 'ERR_MAVLINK_COMMAND_BUSY', 'a command with this id is already in flight to this target'))
        return
      }
      const q = this.queues.get(key) ?? []
      q.push(p)
      this.queues.set(key, q)
    })
  }

  private start(p: Pending): void {
    p.started = true
    this.inflight.set(p.key, p)
    this.transmit(p)
  }

  private transmit(p: Pending): void {
    p.attempts++
    if (p.attempts > 1) {
      this.stats.retries++
      this.emit('retry', { command: p.command, target: p.target, attempt: p.attempts })
    }
    this.stats.sent++
    this.port.send(p.build(p.attempts - 1))
    this.arm(p, p.opts.timeoutMs)
  }

  private arm(p: Pending, ms: number): void {
    clearTimeout(p.timer)
    p.timer = setTimeout(() => {
      if (!p.inProgress && p.attempts <= p.opts.retries) {
        this.transmit(p)
        return
      }
      this.stats.timeouts++
      const what = p.inProgress ? `no further ACK within ${ms} ms after IN_PROGRESS` : `no ACK after ${p.attempts} attempt(s) of ${ms} ms`
      this.finish(p, this.error(p, 'ERR_MAVLINK_COMMAND_TIMEOUT', what))
    }, ms)
  }

  private onAck(p: Pending, result: number, progress: number, resultParam2: number): void {
    if (result === MAV_RESULT.MAV_RESULT_IN_PROGRESS) {
      // the spec: no more retransmissions, wait for the final ACK
      p.inProgress = true
      p.progress = progress
      p.opts.onProgress?.(progress)
      this.emit('progress', { command: p.command, target: p.target, progress })
      this.arm(p, p.opts.inProgressTimeoutMs)
      return
    }
    if (result === MAV_RESULT.MAV_RESULT_ACCEPTED) {
      const r: CommandResult = { command: p.command, result, result_param2: resultParam2, attempts: p.attempts }
      if (p.progress !== undefined) r.progress = p.progress
      this.finish(p, null, r)
      return
    }
    const name = enumName(MAV_RESULT, result) ?? String(result)
    this.finish(p, this.error(p, commandErrorCode(result), `answered ${name}`, { result, result_param2: resultParam2 }))
  }

  private error(p: Pending, code: string, what: string, extra: Partial<MavlinkServiceError> = {}): MavlinkServiceError {
    const kind = p.kind === 'long' ? 'COMMAND_LONG' : 'COMMAND_INT'
    return serviceError(code, `${kind} ${p.command} to ${p.target.system}/${p.target.component}: ${what}`, {
      command: p.command,
      target: p.target,
      attempts: p.attempts,
      ...extra,
    })
  }

  private finish(p: Pending, err: MavlinkServiceError | null, r?: CommandResult): void {
    clearTimeout(p.timer)
    if (p.onAbort) p.opts.signal?.removeEventListener('abort', p.onAbort)
    if (p.started) {
      if (this.inflight.get(p.key) === p) this.inflight.delete(p.key)
      const q = this.queues.get(p.key)
      const next = q?.shift()
      if (q && q.length === 0) this.queues.delete(p.key)
      if (next) this.start(next)
    } else {
      const q = this.queues.get(p.key)
      if (q) {
        const i = q.indexOf(p)
        if (i >= 0) q.splice(i, 1)
        if (q.length === 0) this.queues.delete(p.key)
      }
    }
    if (err) p.reject(err)
    else p.resolve(r as CommandResult)
  }

  /** Stops listening; commands in flight and queued reject with ERR_MAVLINK_COMMAND_ABORTED. */
  close(): void {
    this.unsubscribe()
    for (const q of [...this.queues.values()]) for (const p of [...q]) this.finish(p, this.error(p, 'ERR_MAVLINK_COMMAND_ABORTED', 'client closed'))
    for (const p of [...this.inflight.values()]) this.finish(p, this.error(p, 'ERR_MAVLINK_COMMAND_ABORTED', 'client closed'))
  }
}
