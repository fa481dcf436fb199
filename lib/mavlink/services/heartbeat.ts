/**
 * Heartbeat microservice: our own HEARTBEAT at a fixed rate, and a table of
 * every (system, component) seen on the port with its last heartbeat, link
 * quality (from sequence-number gaps) and connection state.
 */
import { EventEmitter } from 'node:events'
import type { MavlinkEncoder } from '../encoder.js'
import type { MavlinkPort } from '../port.js'
import { Heartbeat, MAV_AUTOPILOT, MAV_STATE, MAV_TYPE } from '../generated/common.js'
import type { HeartbeatData } from '../generated/common.js'
import { count, positive } from './common.js'

/** What is known about one (system, component). */
export interface ComponentInfo {
  sysid: number
  compid: number
  /** From its last HEARTBEAT (undefined until one arrived). */
  type?: number
  autopilot?: number
  baseMode?: number
  customMode?: number
  systemStatus?: number
  mavlinkVersion?: number
  /** Receive time (CLOCK_REALTIME ns) of its last frame / last HEARTBEAT. */
  lastSeenNs: bigint
  lastHeartbeatNs?: bigint
  /** Monotonic ms of the last HEARTBEAT (what the deadline is measured on). */
  lastHeartbeatMs?: number
  heartbeats: number
  /** False after 'connection-lost' until the next HEARTBEAT. Undefined until the first HEARTBEAT. */
  connected?: boolean
  /** Frames received from it, and frames missing by its sequence numbers. */
  received: number
  lost: number
  /** received / (received + lost), 1 when nothing was lost. */
  linkQuality: number
  /** Last sequence number seen. */
  lastSeq: number
}

/** Options of {@link HeartbeatService}. */
export interface HeartbeatOptions {
  /** Send our HEARTBEAT at this rate (Hz); 0 sends none. Default 1. */
  rateHz?: number
  /** Our HEARTBEAT fields (defaults: onboard controller, no autopilot, active). */
  heartbeat?: Partial<HeartbeatData>
  /** A component whose HEARTBEAT is older than this is reported lost (ms). Default 3500 (three missed beats at 1 Hz, plus margin). */
  deadlineMs?: number
  /** A sequence gap above this counts as a restart or reordering, not loss. Default 128. */
  maxSeqGap?: number
  /** Monotonic clock in ms (tests inject one). */
  clock?: () => number
}

/**
 * @example
 * const hb = new HeartbeatService(port, encoder, { deadlineMs: 3000 })
 * hb.on('component', (c) => console.log('new', c.sysid, c.compid))
 * hb.on('connection-lost', (c) => console.warn('lost', c.sysid))
 *
 * Events: `'system'` (info of the first component seen of a new system id),
 * `'component'` (info), `'heartbeat'` (info), `'connection-lost'` (info),
 * `'connection-regained'` (info).
 */
export class HeartbeatService extends EventEmitter {
  private readonly table = new Map<number, ComponentInfo>()
  private readonly systems = new Set<number>()
  private readonly deadlineMs: number
  private readonly maxSeqGap: number
  private readonly clock: () => number
  private readonly unsubscribe: () => void
  private readonly timers: NodeJS.Timeout[] = []
  private own: HeartbeatData
  /** HEARTBEATs we sent. */
  sent = 0

  constructor(
    private readonly port: MavlinkPort,
    private readonly encoder: MavlinkEncoder,
    options: HeartbeatOptions = {},
  ) {
    super()
    const rate = options.rateHz ?? 1
    if (typeof rate !== 'number' || !(rate >= 0) || rate > 1000) throw new RangeError(`options.rateHz must be 0..1000, got ${rate}`)
    this.deadlineMs = positive(options.deadlineMs, 'options.deadlineMs', 3500)
    this.maxSeqGap = count(options.maxSeqGap, 'options.maxSeqGap', 128)
    this.clock = options.clock ?? (() => performance.now())
    this.own = {
      type: MAV_TYPE.MAV_TYPE_ONBOARD_CONTROLLER,
      autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_INVALID,
      base_mode: 0,
      custom_mode: 0,
      system_status: MAV_STATE.MAV_STATE_ACTIVE,
      ...options.heartbeat,
    }
    this.unsubscribe = port.onFrame((frame, rxTimeNs) => {
      const key = frame.sysid | (frame.compid << 8)
      let c = this.table.get(key)
      const fresh = c === undefined
      if (c === undefined) {
        c = { sysid: frame.sysid, compid: frame.compid, lastSeenNs: rxTimeNs, heartbeats: 0, received: 0, lost: 0, linkQuality: 1, lastSeq: frame.seq }
        this.table.set(key, c)
      } else {
        const gap = (frame.seq - c.lastSeq - 1) & 0xff
        if (gap > 0 && gap <= this.maxSeqGap) c.lost += gap
        c.lastSeq = frame.seq
      }
      c.received++
      c.linkQuality = c.received / (c.received + c.lost)
      c.lastSeenNs = rxTimeNs
      if (fresh) {
        if (!this.systems.has(frame.sysid)) {
          this.systems.add(frame.sysid)
          this.emit('system', c)
        }
        this.emit('component', c)
      }
      const hb = frame.as(Heartbeat)
      if (hb === undefined) return
      c.type = hb.type
      c.autopilot = hb.autopilot
      c.baseMode = hb.base_mode
      c.customMode = hb.custom_mode
      c.systemStatus = hb.system_status
      c.mavlinkVersion = hb.mavlink_version
      c.lastHeartbeatNs = rxTimeNs
      c.lastHeartbeatMs = this.clock()
      c.heartbeats++
      const wasLost = c.connected === false
      c.connected = true
      this.emit('heartbeat', c)
      if (wasLost) this.emit('connection-regained', c)
    })
    // the deadline is checked at a quarter of its length: a loss is reported
    // between deadlineMs and 1.25 × deadlineMs after the last heartbeat
    const check = setInterval(() => this.checkDeadlines(), Math.max(10, this.deadlineMs / 4))
    check.unref()
    this.timers.push(check)
    if (rate > 0) {
      this.beat()
      const t = setInterval(() => this.beat(), 1000 / rate)
      t.unref()
      this.timers.push(t)
    }
  }

  /** Changes fields of our HEARTBEAT (mode, status) from the next beat on. */
  update(fields: Partial<HeartbeatData>): void {
    this.own = { ...this.own, ...fields }
  }

  /** Sends one HEARTBEAT now. */
  beat(): void {
    this.port.send(this.encoder.encode(Heartbeat, this.own))
    this.sent++
  }

  /** Every (system, component) seen. */
  components(): ComponentInfo[] {
    return [...this.table.values()]
  }

  /** One component, if seen. */
  get(sysid: number, compid: number): ComponentInfo | undefined {
    return this.table.get(sysid | (compid << 8))
  }

  /** System ids seen. */
  systemIds(): number[] {
    return [...this.systems]
  }

  private checkDeadlines(): void {
    const now = this.clock()
    for (const c of this.table.values()) {
      if (c.connected === true && c.lastHeartbeatMs !== undefined && now - c.lastHeartbeatMs > this.deadlineMs) {
        c.connected = false
        this.emit('connection-lost', c)
      }
    }
  }

  /** Stops sending and tracking. */
  close(): void {
    for (const t of this.timers.splice(0)) clearInterval(t)
    this.unsubscribe()
  }
}
