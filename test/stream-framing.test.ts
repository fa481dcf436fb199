import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { createTcpLink, createTcpServer, type StreamLink, type StreamServer, type FramingOptions, type ClientLinkOptions } from '../lib/index.js'
import { streamNative } from '../bindings/index.js'

const open: (StreamLink | StreamServer)[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A server link with `opts` (the receiver) and a raw client link (the sender). */
async function pair(opts: ClientLinkOptions): Promise<{ rx: StreamLink; tx: StreamLink }> {
  const server = createTcpServer({ port: 0, ...opts })
  open.push(server)
  const got = new Promise<StreamLink>((r) => server.once('connection', r))
  const tx = createTcpLink({ port: server.port })
  open.push(tx)
  await once(tx, 'connect')
  const rx = await got
  open.push(rx)
  return { rx, tx }
}

function lengthFrame(payload: Buffer, size = 2): Buffer {
  const h = Buffer.alloc(size)
  if (size === 1) h.writeUInt8(payload.length)
  else if (size === 2) h.writeUInt16BE(payload.length)
  else h.writeUInt32BE(payload.length)
  return Buffer.concat([h, payload])
}

async function collect(rx: StreamLink, n: number, timeoutMs = 5000): Promise<{ frames: Buffer[]; payloads: Buffer[] }> {
  const frames: Buffer[] = []
  const payloads: Buffer[] = []
  rx.onBatch((b) => {
    for (let i = 0; i < b.length; i++) {
      frames.push(b.copy(i))
      payloads.push(Buffer.from(b.payload(i)))
    }
  })
  const t0 = Date.now()
  while (frames.length < n && Date.now() - t0 < timeoutMs) await sleep(5)
  return { frames, payloads }
}

describe('native framing', () => {
  it('length-prefixed: frames split byte by byte and packed many per write come out whole', async () => {
    const { rx, tx } = await pair({ framing: { type: 'length' } })
    const payloads = Array.from({ length: 200 }, (_, i) => Buffer.alloc(i * 7, i))
    const wire = Buffer.concat(payloads.map((p) => lengthFrame(p)))
    const p = collect(rx, 200)
    // First 50 frames one byte at a time, the rest in one write.
    const cut = Buffer.concat(payloads.slice(0, 50).map((p) => lengthFrame(p))).length
    for (let i = 0; i < cut; i++) {
      tx.write(wire.subarray(i, i + 1))
      if (i % 97 === 0) await sleep(1)
    }
    tx.write(wire.subarray(cut))
    const got = await p
    expect(got.payloads.length).toBe(200)
    for (let i = 0; i < 200; i++) expect(got.payloads[i].equals(payloads[i])).toBe(true)
    expect(got.frames[3].length).toBe(2 + 21)
    expect(rx.stats().rxRecords).toBe(200)
  })

  it('length-prefixed, little-endian 4-byte length after a magic, length counting the whole frame', async () => {
    const framing: FramingOptions = { type: 'length', magic: '\xfd\xfe', lengthSize: 4, littleEndian: true, adjust: 0 }
    const { rx, tx } = await pair({ framing })
    const frame = (p: Buffer) => {
      const h = Buffer.alloc(6)
      h[0] = 0xfd
      h[1] = 0xfe
      h.writeUInt32LE(6 + p.length, 2)
      return Buffer.concat([h, p])
    }
    const p = collect(rx, 3)
    tx.write(Buffer.concat([frame(Buffer.from('one')), Buffer.from('garbage!'), frame(Buffer.from('two')), Buffer.from([0xfd]), frame(Buffer.from('three'))]))
    const got = await p
    expect(got.payloads.map(String)).toEqual(['one', 'two', 'three'])
    const s = rx.stats()
    expect(s.garbageBytes).toBe(9)
    expect(s.discardedBytes).toBe(9)
  })

  it('delimited: NMEA lines with \\r\\n, delimiter left out', async () => {
    const { rx, tx } = await pair({ framing: { type: 'delimited', delimiter: '\r\n' } })
    const lines = ['$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47', '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A', '$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48']
    const p = collect(rx, 300)
    const wire = Buffer.from(Array.from({ length: 100 }, () => lines.map((l) => l + '\r\n').join('')).join(''))
    // Odd-sized writes so that delimiters straddle reads.
    for (let off = 0; off < wire.length; off += 37) tx.write(wire.subarray(off, off + 37))
    const got = await p
    expect(got.frames.length).toBe(300)
    expect(got.frames.slice(0, 3).map(String)).toEqual(lines)
    expect(got.frames.every((f, i) => f.toString() === lines[i % 3])).toBe(true)
  })

  it('an oversize frame is a frameError event, then framing resynchronises; memory stays bounded', async () => {
    const { rx, tx } = await pair({ framing: { type: 'delimited' }, maxFrameSize: 1024, rxBufferSize: 16384 })
    const errors: (Error & { code: string; declared: number; max: number })[] = []
    rx.on('frameError', (e) => errors.push(e))
    const p = collect(rx, 2, 10_000)
    // 16 MiB without a delimiter: far more than the ring; must be streamed away.
    tx.write('first\n')
    const junk = Buffer.alloc(1 << 20, 0x41)
    for (let i = 0; i < 16; i++) if (!tx.write(junk)) await once(tx, 'drain')
    tx.write('\nsecond\n')
    const got = await p
    expect(got.frames.map(String)).toEqual(['first', 'second'])
    expect(errors.length).toBe(1)
    expect(errors[0].code).toBe('ERR_ONBUS_FRAME_TOO_LARGE')
    expect(errors[0].max).toBe(1024)
    const s = rx.stats()
    expect(s.oversizeFrames).toBe(1)
    expect(s.discardedBytes).toBe(16 * (1 << 20) + 1)
    expect(rx.state).toBe('connected')
  })

  it('length-prefixed without magic: an oversize declared length is skipped as it streams, next frame intact', async () => {
    const { rx, tx } = await pair({ framing: { type: 'length', lengthSize: 4 }, maxFrameSize: 4096 })
    const errors: (Error & { declared: number })[] = []
    rx.on('frameError', (e) => errors.push(e))
    const p = collect(rx, 2, 10_000)
    tx.write(lengthFrame(Buffer.from('a'), 4))
    tx.write(lengthFrame(Buffer.alloc(3 << 20, 7), 4))
    tx.write(lengthFrame(Buffer.from('b'), 4))
    const got = await p
    expect(got.payloads.map(String)).toEqual(['a', 'b'])
    expect(errors.length).toBe(1)
    expect(errors[0].declared).toBe(4 + (3 << 20))
  })

  it('garbage on a framed link is counted and framing resumes at the next magic', async () => {
    const { rx, tx } = await pair({ framing: { type: 'length', magic: 'OB', lengthSize: 1 } })
    const f = (s: string) => Buffer.concat([Buffer.from('OB'), Buffer.from([s.length]), Buffer.from(s)])
    const p = collect(rx, 2)
    tx.write(Buffer.concat([Buffer.from('\x00\x01\x02noiseO'), f('x'), Buffer.from('zzz'), f('y')]))
    const got = await p
    expect(got.payloads.map(String)).toEqual(['x', 'y'])
    expect(rx.stats().garbageBytes).toBe(9 + 3)
  })

  it('frames stay contiguous across the ring end: partial frames are moved to the start, none is corrupted', async () => {
    const { rx, tx } = await pair({ framing: { type: 'length', lengthSize: 4 }, maxFrameSize: 8192, rxBufferSize: 32768 })
    const n = 3000
    const payloads = Array.from({ length: n }, (_, i) => {
      const b = Buffer.alloc(4 + ((i * 2654435761) % 5000))
      b.fill(i & 0xff)
      b.writeUInt32BE(i, 0)
      return b
    })
    const p = collect(rx, n, 20_000)
    for (const pl of payloads) if (!tx.write(lengthFrame(pl, 4))) await once(tx, 'drain')
    const got = await p
    expect(got.payloads.length).toBe(n)
    const bad = got.payloads.findIndex((p, i) => !p.equals(payloads[i]))
    if (bad >= 0) console.log('first bad', bad, got.payloads[bad].length, payloads[bad].length, got.payloads[bad].subarray(0, 16), payloads[bad].subarray(0, 16), rx.stats())
    expect(bad).toBe(-1)
    expect(rx.stats().ringWraps).toBeGreaterThan(0)
  })

  it('batch views are released when the handler returns', async () => {
    const { rx, tx } = await pair({ framing: { type: 'delimited' } })
    let kept: { len(i: number): number } | null = null
    const got = new Promise<void>((resolve) =>
      rx.onBatch((b) => {
        kept = b
        resolve()
      }),
    )
    tx.write('x\n')
    await got
    expect(() => kept!.len(0)).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_BATCH_RELEASED' }))
  })

  it('a plug-in framer (a type-tagged native external, as the MAVLink link hands out) frames the link; anything else is refused', async () => {
    let made = 0
    const create = () => {
      made++
      return streamNative.StreamSocket.makeFramer({ kind: 'delimited', delimiter: Uint8Array.from([0x7e]), includeDelimiter: false, skipEmpty: true })!
    }
    const { rx, tx } = await pair({ framing: { type: 'custom', create } })
    expect(made).toBe(1)
    const p = collect(rx, 3)
    tx.write('~one~two~~three~')
    const got = await p
    expect(got.frames.map(String)).toEqual(['one', 'two', 'three'])
    // An external is single-use (ownership moves to the socket), and a plain object is not a framer.
    const ext = create()
    const bad = createTcpLink({ port: 1, framing: { type: 'custom', create: () => ({ not: 'a framer' }) } })
    const err = await new Promise<Error>((r) => bad.once('error', r))
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'setFramer' })
    expect(ext).toBeTruthy()
  })

  it('rejects bad framing options before reaching native code', () => {
    expect(() => createTcpLink({ port: 1, framing: { type: 'length', lengthSize: 3 as 2 } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createTcpLink({ port: 1, framing: { type: 'delimited', delimiter: '' } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createTcpLink({ port: 1, framing: { type: 'bogus' } as unknown as FramingOptions })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createTcpLink({ port: 1, maxFrameSize: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  })
})
