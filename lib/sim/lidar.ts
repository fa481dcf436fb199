/**
 * A simulated Velodyne VLP-16 (Puck) on UDP: the sensor's 1206-byte data
 * packets at its real rate, so that links, the bus, the recorder and
 * perception see what a real LiDAR sends.
 *
 * Packet layout (VLP-16 user manual, "Data Packet Format"):
 * 12 data blocks of 100 bytes: flag 0xFFEE, azimuth (uint16 LE, hundredths
 * of a degree), 32 channel records (two firings of the 16 lasers) of
 * distance (uint16 LE, 2 mm units) and reflectivity (uint8); then a
 * timestamp (uint32 LE, µs since the top of the hour) and two factory bytes
 * (return mode 0x37 strongest / 0x38 last / 0x39 dual; product 0x22 VLP-16).
 *
 * Timing: a firing cycle is 55.296 µs, a block two cycles, a packet 12
 * blocks = 1327.1 µs, hence 753.5 packets/s in single-return mode (twice the
 * blocks per revolution in dual mode: same packet rate, half the azimuth step
 * per packet). The scene: a 20 × 30 m room with the ground 1.5 m below the
 * sensor and a box 4 m ahead, so that distances vary plausibly.
 */
import { createUdpLink, type UdpLink } from '../links/udp/link.js'

export const VLP16_PACKET_SIZE = 1206
const BLOCKS = 12
const BLOCK_SIZE = 100
const FIRING_US = 55.296
const PACKET_US = BLOCKS * 2 * FIRING_US // 1327.104
/** Elevation of laser 0…15 in degrees (VLP-16 firing order). */
const ELEVATION = [-15, 1, -13, 3, -11, 5, -9, 7, -7, 9, -5, 11, -3, 13, -1, 15]
const RETURN_MODE = { strongest: 0x37, last: 0x38, dual: 0x39 } as const

export interface SimLidarOptions {
  /** Destination port (the VLP-16 default is 2368). */
  port: number
  /** Destination address (default 127.0.0.1). */
  address?: string
  /** Rotation speed, 300–1200 rpm (default 600). */
  rpm?: number
  returnMode?: keyof typeof RETURN_MODE
  /** Stop after this many packets (default: run until closed). */
  count?: number
}

/** Distance in metres of laser `elev`° at azimuth `azDeg` in the simulated room. */
function range(azDeg: number, elev: number): number {
  const az = (azDeg * Math.PI) / 180
  const el = (elev * Math.PI) / 180
  const dx = Math.sin(az)
  const dy = Math.cos(az)
  let r = Infinity
  if (el < 0) r = 1.5 / Math.sin(-el) // ground
  const horiz = Math.cos(el)
  const wall = Math.min(dx !== 0 ? (dx > 0 ? 10 : 10) / Math.abs(dx) : Infinity, dy !== 0 ? (dy > 0 ? 18 : 12) / Math.abs(dy) : Infinity) / horiz
  r = Math.min(r, wall)
  // A 1 m box 4 m ahead, from the ground to 0.5 m above the sensor.
  if (Math.abs(azDeg - 0) < 7 || azDeg > 353) {
    const d = 4 / (dy * horiz)
    if (d > 0 && Math.abs(Math.tan(el) * 4) < 1.5) r = Math.min(r, d)
  }
  return Math.min(r, 100)
}

/**
 * Writes one VLP-16 data packet into `buf` (at least 1206 bytes).
 * @param azimuth0 Azimuth of the first block, hundredths of a degree.
 * @param step Azimuth change per block, hundredths of a degree.
 * @param stampUs Microseconds since the top of the hour of the first firing.
 */
export function writeVlp16Packet(buf: Uint8Array, azimuth0: number, step: number, stampUs: number, mode: keyof typeof RETURN_MODE = 'strongest'): void {
  const v = new DataView(buf.buffer, buf.byteOffset, VLP16_PACKET_SIZE)
  for (let b = 0; b < BLOCKS; b++) {
    const o = b * BLOCK_SIZE
    // Dual return: blocks come in pairs with the same azimuth.
    const az = Math.round(azimuth0 + (mode === 'dual' ? Math.floor(b / 2) : b) * step) % 36000
    v.setUint16(o, 0xffee, true)
    v.setUint16(o + 2, az, true)
    for (let f = 0; f < 2; f++) {
      const azF = az / 100 + (f * step) / 200
      for (let l = 0; l < 16; l++) {
        const m = range(azF, ELEVATION[l]) * (mode === 'dual' && b % 2 === 1 ? 1.02 : 1)
        const p = o + 4 + (f * 16 + l) * 3
        v.setUint16(p, Math.min(65535, Math.round(m / 0.002)), true)
        buf[p + 2] = Math.round(Math.min(255, 20 + 800 / (m + 2)))
      }
    }
  }
  v.setUint32(1200, Math.floor(stampUs) % 3_600_000_000, true)
  buf[1204] = RETURN_MODE[mode]
  buf[1205] = 0x22
}

/** Decoded header fields of a VLP-16 packet (for tests and `onbus echo`). */
export function parseVlp16Packet(b: Uint8Array): { azimuths: number[]; timestampUs: number; returnMode: number; product: number; firstDistanceM: number } | null {
  if (b.length !== VLP16_PACKET_SIZE) return null
  const v = new DataView(b.buffer, b.byteOffset, b.length)
  const azimuths: number[] = []
  for (let i = 0; i < BLOCKS; i++) {
    if (v.getUint16(i * BLOCK_SIZE, true) !== 0xffee) return null
    azimuths.push(v.getUint16(i * BLOCK_SIZE + 2, true))
  }
  return { azimuths, timestampUs: v.getUint32(1200, true), returnMode: b[1204], product: b[1205], firstDistanceM: v.getUint16(4, true) * 0.002 }
}

/** A running simulated LiDAR. */
export interface SimLidar {
  readonly packets: number
  close(): void
}

/**
 * Streams VLP-16 packets to `address:port` at the sensor's rate (~754/s). A
 * timer every 10 ms sends, in one batch, the packets due by the monotonic
 * clock, so the long-run rate is exact however the timer jitters; each
 * packet carries the time of its own first firing.
 * @example
 * const lidar = startSimLidar({ port: 2368 })
 */
export function startSimLidar(opts: SimLidarOptions): SimLidar {
  const rpm = opts.rpm ?? 600
  const mode = opts.returnMode ?? 'strongest'
  const link: UdpLink = createUdpLink({ port: 0, receive: false })
  link.on('error', () => {})
  const address = opts.address ?? '127.0.0.1'
  // hundredths of a degree per block (one block = two firing cycles)
  const step = ((rpm * 360) / 60) * 2 * FIRING_US * 1e-6 * 100
  const perPacketAz = mode === 'dual' ? step * 6 : step * 12
  const t0 = performance.now()
  const hourUs = (Date.now() % 3_600_000) * 1000
  let sent = 0
  let azimuth = 0
  const newPool = () => Array.from({ length: 64 }, () => new Uint8Array(VLP16_PACKET_SIZE))
  let pool = newPool()
  const tick = () => {
    const due = Math.floor(((performance.now() - t0) * 1000) / PACKET_US)
    const limit = opts.count ?? Infinity
    while (sent < due && sent < limit) {
      const n = Math.min(due - sent, pool.length, limit - sent)
      const batch: Uint8Array[] = []
      for (let i = 0; i < n; i++) {
        const pkt = pool[i]
        writeVlp16Packet(pkt, azimuth, step, hourUs + (sent + i) * PACKET_US, mode)
        azimuth = (azimuth + perPacketAz) % 36000
        batch.push(pkt)
      }
      // Sent at once, or queued behind a full kernel buffer keeping these
      // very buffers: then they are the queue's, and the next batch gets new ones.
      if (!link.sendBatch(batch, { port: opts.port, address })) pool = newPool()
      sent += n
    }
    if (sent >= limit) stop()
  }
  const timer = setInterval(tick, 10)
  let closed = false
  function stop(): void {
    if (closed) return
    closed = true
    clearInterval(timer)
    link.close()
  }
  return {
    get packets() {
      return sent
    },
    close: stop,
  }
}
