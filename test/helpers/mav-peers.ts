/**
 * Independent MAVLink peers for the router tests: node:dgram / node:net
 * sockets with the TypeScript MavlinkEncoder/MavlinkParser, so the router is
 * checked against code that shares nothing with its native path.
 */
import { createSocket, type Socket } from 'node:dgram'
import { connect, type Socket as NetSocket } from 'node:net'
import { Attitude, CommandLong, Heartbeat, MAV_AUTOPILOT, MAV_STATE, MAV_TYPE, MavlinkEncoder, MavlinkParser } from '../../lib/mavlink/index.js'
import { crcAccumulate, crcCalculate } from '../../lib/mavlink/crc.js'

export interface Got {
  msgid: number
  sysid: number
  compid: number
  bytes: Uint8Array
}

abstract class Peer {
  readonly got: Got[] = []
  readonly enc: MavlinkEncoder
  private waiters: (() => void)[] = []
  constructor(readonly sysid: number, readonly compid: number) {
    this.enc = new MavlinkEncoder({ sysid, compid })
  }
  protected onFrame = (f: { msgid: number; sysid: number; compid: number; bytes: Uint8Array }): void => {
    this.got.push({ msgid: f.msgid, sysid: f.sysid, compid: f.compid, bytes: f.bytes.slice() })
    for (const w of this.waiters.splice(0)) w()
  }
  abstract sendRaw(bytes: Uint8Array): void
  heartbeat(): Uint8Array {
    const b = this.enc.encode(Heartbeat, { type: MAV_TYPE.MAV_TYPE_GCS, autopilot: MAV_AUTOPILOT.MAV_AUTOPILOT_INVALID, base_mode: 0, custom_mode: 0, system_status: MAV_STATE.MAV_STATE_ACTIVE })
    this.sendRaw(b)
    return b
  }
  attitude(): Uint8Array {
    const b = this.enc.encode(Attitude, { time_boot_ms: 1, roll: 0.1, pitch: 0.2, yaw: 0.3, rollspeed: 0, pitchspeed: 0, yawspeed: 0 })
    this.sendRaw(b)
    return b
  }
  command(targetSystem: number, targetComponent: number, command = 400): Uint8Array {
    const b = this.enc.encode(CommandLong, { target_system: targetSystem, target_component: targetComponent, command, confirmation: 0, param1: 1, param2: 0, param3: 0, param4: 0, param5: 0, param6: 0, param7: 0 } as never)
    this.sendRaw(b)
    return b
  }
  count(pred: (g: Got) => boolean): number {
    return this.got.filter(pred).length
  }
  /** Resolves when `pred` holds for some received frame; rejects after `ms`. */
  async waitFor(pred: (g: Got) => boolean, ms = 8000, what = 'frame'): Promise<Got> {
    const deadline = Date.now() + ms
    for (;;) {
      const hit = this.got.find(pred)
      if (hit) return hit
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`peer ${this.sysid}/${this.compid}: timed out waiting for ${what} (got ${this.got.length} frames)`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }
  /** Waits until `pred` holds for at least `n` frames. */
  async waitCount(pred: (g: Got) => boolean, n: number, ms = 8000): Promise<void> {
    const deadline = Date.now() + ms
    while (this.count(pred) < n) {
      if (Date.now() > deadline) throw new Error(`peer ${this.sysid}: ${this.count(pred)} of ${n} frames`)
      await sleep(10)
    }
  }
}

export class UdpPeer extends Peer {
  readonly sock: Socket
  private parser = new MavlinkParser({ datagram: true })
  target: { address: string; port: number } | undefined
  private constructor(sysid: number, compid: number) {
    super(sysid, compid)
    this.sock = createSocket('udp4')
    this.sock.on('message', (m) => this.parser.push(m, this.onFrame))
  }
  static async open(sysid: number, compid: number, target?: { port: number }): Promise<UdpPeer> {
    const p = new UdpPeer(sysid, compid)
    await new Promise<void>((r) => p.sock.bind(0, '127.0.0.1', () => r()))
    if (target) p.target = { address: '127.0.0.1', port: target.port }
    return p
  }
  get port(): number {
    return this.sock.address().port
  }
  sendRaw(bytes: Uint8Array): void {
    if (!this.target) throw new Error('UdpPeer has no target')
    this.sock.send(bytes, this.target.port, this.target.address)
  }
  close(): void {
    this.sock.close()
  }
}

export class TcpPeer extends Peer {
  private parser = new MavlinkParser()
  private constructor(sysid: number, compid: number, readonly sock: NetSocket) {
    super(sysid, compid)
    sock.on('data', (d) => this.parser.push(d, this.onFrame))
    sock.on('error', () => {})
  }
  static async connect(sysid: number, compid: number, port: number): Promise<TcpPeer> {
    const s = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve)
      s.once('error', reject)
    })
    return new TcpPeer(sysid, compid, s)
  }
  static wrap(sysid: number, compid: number, sock: NetSocket): TcpPeer {
    return new TcpPeer(sysid, compid, sock)
  }
  sendRaw(bytes: Uint8Array): void {
    this.sock.write(bytes)
  }
  close(): void {
    this.sock.destroy()
  }
}

/** A MAVLink 2 frame with an id outside every dialect (CRC made with `crcExtra`). */
export function unknownFrame(sysid: number, compid: number, msgid = 0xabcde, payload = [1, 2, 3, 4, 5], crcExtra = 77): Uint8Array {
  const f = new Uint8Array(10 + payload.length + 2)
  f.set([0xfd, payload.length, 0, 0, 7, sysid, compid, msgid & 255, (msgid >> 8) & 255, msgid >> 16], 0)
  f.set(payload, 10)
  let crc = crcCalculate(f, 1, 10 + payload.length)
  crc = crcAccumulate(crcExtra, crc)
  f[10 + payload.length] = crc & 255
  f[11 + payload.length] = crc >> 8
  return f
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Polls `cond` until true; rejects after `ms`. */
export async function until(cond: () => boolean, ms = 8000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
