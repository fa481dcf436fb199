import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTcpLink, createTcpServer, type StreamLink, type StreamServer } from '../lib/index.js'
import { FileReceiver, sendFile, type TransferProgress } from '../lib/transfer/index.js'
import { chunkHeader, controlFrame, crc32c, endFrame, T_OFFER } from '../lib/transfer/protocol.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-xfer-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const open: { close(): unknown }[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
let n = 0
function dirs(): { src: string; out: string } {
  const src = join(dir, `src${n}`)
  const out = join(dir, `out${n++}`)
  mkdirSync(src, { recursive: true })
  mkdirSync(out, { recursive: true })
  return { src, out }
}

/**
 * A man in the middle between sender and receiver: forwards bytes, cuts the
 * first connection after `cutAt` bytes, and flips one bit of the byte at
 * position `flipAt` of the sender's stream on connection number `flipOn`
 * (1-based, default 1).
 */
function proxy(target: number, o: { cutAt?: number; flipAt?: number; flipOn?: number }): Promise<{ port: number; server: net.Server; stats: { cuts: number; flips: number; connections: number } }> {
  const stats = { cuts: 0, flips: 0, connections: 0 }
  const server = net.createServer((c) => {
    stats.connections++
    const first = stats.connections === 1
    const flipHere = stats.connections === (o.flipOn ?? 1)
    let passed = 0
    let total = 0
    const up = net.connect(target, '127.0.0.1')
    up.on('error', () => c.destroy())
    c.on('error', () => up.destroy())
    c.on('close', () => up.destroy())
    up.on('close', () => c.destroy())
    up.on('data', (d) => c.write(d))
    c.on('data', (d: Buffer) => {
      if (flipHere && o.flipAt !== undefined && total <= o.flipAt && total + d.length > o.flipAt && stats.flips === 0) {
        d = Buffer.from(d)
        d[o.flipAt - total] ^= 0x10
        stats.flips++
      }
      total += d.length
      if (first && o.cutAt !== undefined && passed + d.length >= o.cutAt && stats.cuts === 0) {
        stats.cuts++
        up.write(d.subarray(0, o.cutAt - passed))
        // Abrupt: both sides see the connection die mid-transfer.
        c.resetAndDestroy()
        up.resetAndDestroy()
        return
      }
      passed += d.length
      up.write(d)
    })
  })
  open.push(server)
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, server, stats })))
}

function receiver(out: string, native = true): { rx: FileReceiver; server: StreamServer } {
  const rx = new FileReceiver({ dir: out, syncEvery: 1 << 20 })
  const server = createTcpServer({ port: 0, ...(native ? rx.linkOptions() : {}) }, (link) => {
    link.on('error', () => {})
    rx.attach(link)
  })
  open.push(server)
  return { rx, server }
}

describe('verified bulk transfer', () => {
  it('sends a file over TCP; the digest matches and the file appears only when complete', async () => {
    const { src, out } = dirs()
    const data = randomBytes(5 * 1024 * 1024 + 123)
    writeFileSync(join(src, 'map.bin'), data)
    const { rx, server } = receiver(out)
    const link = createTcpLink({ port: server.port })
    open.push(link)
    const t = sendFile(link, join(src, 'map.bin'))
    const progress: TransferProgress[] = []
    t.on('progress', (p) => progress.push(p))
    let sawPartial = false
    rx.on('progress', () => {
      if (!sawPartial && existsSync(join(out, '.map.bin.onbus-part'))) {
        sawPartial = true
        expect(existsSync(join(out, 'map.bin'))).toBe(false)
      }
    })
    const r = await t.done
    expect(r).toMatchObject({ name: 'map.bin', size: data.length, sha256: sha(data), resumes: 0 })
    expect(sha(readFileSync(join(out, 'map.bin')))).toBe(sha(data))
    expect(sawPartial).toBe(true)
    expect(readdirSync(out)).toEqual(['map.bin'])
    const last = progress[progress.length - 1]
    expect(last).toMatchObject({ bytes: data.length, total: data.length, eta: 0 })
    expect(progress.every((p, i) => i === 0 || p.bytes >= progress[i - 1].bytes)).toBe(true)
    expect(progress.some((p) => p.rate > 0 && Number.isFinite(p.eta))).toBe(true)
  })

  it('a cut mid-transfer resumes from the last verified offset; a flipped byte in chunk data is refused and resent', async () => {
    const { src, out } = dirs()
    const size = 24 * 1024 * 1024
    const data = randomBytes(size)
    writeFileSync(join(src, 'fw.img'), data)
    const { rx, server } = receiver(out)
    // On the second connection (after the cut): 1000 bytes into the data of
    // its fifth chunk (frames: the offer, then 17-byte headers + 1 MiB).
    const offer = controlFrame(T_OFFER, { id: 'x'.repeat(32), name: 'fw.img', size }).length
    const flipAt = offer + 4 * (17 + (1 << 20)) + 17 + 1000
    const mitm = await proxy(server.port, { cutAt: 9 * 1024 * 1024 + 777, flipAt, flipOn: 2 })
    const link = createTcpLink({ port: mitm.port, reconnect: { initialDelay: 20 } })
    link.on('error', () => {})
    open.push(link)
    const disconnects: Error[] = []
    link.on('disconnect', ({ reason }) => disconnects.push(reason))
    const t = sendFile(link, join(src, 'fw.img'))
    const refused: number[] = []
    t.on('refused', (r: { offset: number }) => refused.push(r.offset))
    const r = await t.done
    expect(mitm.stats).toMatchObject({ cuts: 1, flips: 1 })
    expect(disconnects.length).toBe(1)
    expect(r.resumes).toBe(2)
    // Resumed from the last synced offset (a 1 MiB multiple below the cut), not from 0.
    expect(r.resumedFrom[0]).toBeGreaterThan(0)
    expect(r.resumedFrom[0]).toBeLessThanOrEqual(9 * 1024 * 1024)
    expect(refused).toEqual([r.resumedFrom[0] + 4 * (1 << 20)])
    expect(rx.stats()).toMatchObject({ files: 1, badChunks: 1, resumes: 1 })
    expect(sha(readFileSync(join(out, 'fw.img')))).toBe(sha(data))
    expect(readdirSync(out)).toEqual(['fw.img'])
  })

  it.each([true, false])('a flipped byte in a frame header corrupts the stream: the receiver hangs up, the sender resumes, the file is right (native framing: %s)', async (native) => {
    const { src, out } = dirs()
    const size = 6 * 1024 * 1024
    const data = randomBytes(size)
    writeFileSync(join(src, 'log.bin'), data)
    const { rx, server } = receiver(out, native)
    const offer = controlFrame(T_OFFER, { id: 'x'.repeat(32), name: 'log.bin', size }).length
    // The top byte of chunk 3's length field.
    const mitm = await proxy(server.port, { flipAt: offer + 3 * (17 + (1 << 20)) })
    const link = createTcpLink({ port: mitm.port, reconnect: { initialDelay: 20 } })
    link.on('error', () => {})
    open.push(link)
    const dis: Error[] = []
    link.on('disconnect', ({ reason }) => dis.push(reason))
    const r = await sendFile(link, join(src, 'log.bin')).done
    expect(rx.stats().corruptStreams).toBe(1)
    expect(r.resumes).toBeGreaterThanOrEqual(1)
    expect(sha(readFileSync(join(out, 'log.bin')))).toBe(sha(data))
  })

  it('a whole-file digest mismatch is refused: nothing appears under the name, the part is removed', async () => {
    const { out } = dirs()
    const { rx, server } = receiver(out)
    const c = createTcpLink({ port: server.port })
    open.push(c)
    await once(c, 'connect')
    const payload = Buffer.from('not what the digest says')
    const replies: Buffer[] = []
    c.on('data', (d) => replies.push(d))
    c.write(controlFrame(T_OFFER, { id: 'forged', name: 'evil.bin', size: payload.length }))
    while (!Buffer.concat(replies).includes('"offset"')) await sleep(5) // the accept
    c.write(chunkHeader(0, crc32c(payload), payload.length))
    c.write(payload)
    c.write(endFrame(createHash('sha256').update('something else').digest()))
    const refused = await once(rx, 'refused')
    expect(refused[0].code).toBe('ERR_ONBUS_TRANSFER_DIGEST_MISMATCH')
    for (let i = 0; i < 400 && !Buffer.concat(replies).includes('DIGEST_MISMATCH'); i++) await sleep(5)
    expect(readdirSync(out)).toEqual([])
    expect(Buffer.concat(replies).toString()).toContain('ERR_ONBUS_TRANSFER_DIGEST_MISMATCH')
  })

  it('refuses names that would escape the directory', async () => {
    const { out } = dirs()
    const { rx, server } = receiver(out)
    const c = createTcpLink({ port: server.port })
    open.push(c)
    await once(c, 'connect')
    c.write(controlFrame(T_OFFER, { id: 'a', name: '../../etc/passwd', size: 3 }))
    const [r] = await once(rx, 'refused')
    expect(r.code).toBe('ERR_ONBUS_TRANSFER_REFUSED')
    expect(() => sendFile(c, '/etc/hostname', { name: '../x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
  })
})
