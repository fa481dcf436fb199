import { describe, it, expect } from 'vitest'
import { createUdpLink } from '../lib/index.js'
import { parseVlp16Packet, startSimLidar, VLP16_PACKET_SIZE, writeVlp16Packet } from '../lib/sim/lidar.js'
import { skipUnderEmulator } from './helpers/emulator.js'

describe('simulated VLP-16', () => {
  it('writes the sensor’s packet layout: 12 blocks, azimuth steps, timestamp, factory bytes', () => {
    const b = new Uint8Array(VLP16_PACKET_SIZE)
    writeVlp16Packet(b, 35990, 39.8, 3_599_999_999.5 + 2)
    const p = parseVlp16Packet(b)!
    expect(p.product).toBe(0x22)
    expect(p.returnMode).toBe(0x37)
    expect(p.azimuths[0]).toBe(35990)
    expect(p.azimuths[1]).toBe(30) // wraps at 360°
    expect(p.timestampUs).toBe(1) // µs since the top of the hour
    for (let i = 0; i < 12; i++) expect(b[i * 100] | (b[i * 100 + 1] << 8)).toBe(0xffee)
    // Distances in 2 mm units from the simulated room: straight ahead the -15° laser hits the box 4 m away…
    expect(p.firstDistanceM).toBeCloseTo(4 / Math.cos((15 * Math.PI) / 180), 2)
    // …to the side, the ground 1.5 m below (1.5 / sin 15° ≈ 5.8 m).
    const side = new Uint8Array(VLP16_PACKET_SIZE)
    writeVlp16Packet(side, 9000, 39.8, 0)
    expect(parseVlp16Packet(side)!.firstDistanceM).toBeCloseTo(1.5 / Math.sin((15 * Math.PI) / 180), 2)
    const dual = new Uint8Array(VLP16_PACKET_SIZE)
    writeVlp16Packet(dual, 0, 39.8, 0, 'dual')
    const d = parseVlp16Packet(dual)!
    expect(d.returnMode).toBe(0x39)
    expect(d.azimuths[0]).toBe(d.azimuths[1]) // dual return: blocks in pairs of one azimuth
  })

  it.skipIf(skipUnderEmulator('speed'))('streams ~754 packets/s over UDP with azimuth and time advancing per packet', async () => {
    const rx = createUdpLink({ port: 0, maxDatagramSize: 1280 })
    const got: Buffer[] = []
    rx.on('message', (m: Buffer) => got.push(Buffer.from(m)))
    const lidar = startSimLidar({ port: rx.address().port, rpm: 600 })
    await new Promise((r) => setTimeout(r, 2000))
    lidar.close()
    await new Promise((r) => setTimeout(r, 200))
    rx.close()
    // The sender keeps the long-run rate by the clock: 2 s ≈ 1507 packets (generous bounds for a loaded machine).
    expect(lidar.packets).toBeGreaterThan(1300)
    expect(lidar.packets).toBeLessThan(1700)
    expect(got.length).toBe(lidar.packets)
    const a = parseVlp16Packet(got[10])!
    const b = parseVlp16Packet(got[11])!
    expect(got[10].length).toBe(1206)
    expect(b.timestampUs - a.timestampUs).toBeGreaterThanOrEqual(1326)
    expect(b.timestampUs - a.timestampUs).toBeLessThanOrEqual(1328)
    // 600 rpm: 3600°/s × 1327.1 µs = 4.78° per packet, 0.398° per block.
    expect((b.azimuths[0] - a.azimuths[0] + 36000) % 36000).toBeGreaterThanOrEqual(477)
    expect((b.azimuths[0] - a.azimuths[0] + 36000) % 36000).toBeLessThanOrEqual(479)
    expect(a.azimuths[1] - a.azimuths[0]).toBeGreaterThanOrEqual(39)
    expect(a.azimuths[1] - a.azimuths[0]).toBeLessThanOrEqual(41)
  })
})
