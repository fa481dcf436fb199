/**
 * RTP receiver lifecycle and errors: Node-shaped errors (EADDRINUSE, bad
 * arguments), close inside a frame handler, AbortSignal, async iterator end,
 * unref() letting the process exit, and multicast on lo.
 */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { createRtpReceiver, type RtpReceiver, type VideoFrameData } from '../lib/video/receiver.js'
import { skipUnderEmulator } from './helpers/emulator.js'
import { waitFor } from './helpers/rtp-receive.js'

function pframe(seq: number): Buffer {
  const b = Buffer.alloc(16)
  b[0] = 0x80
  b[1] = 0x80 | 96
  b.writeUInt16BE(seq, 2)
  b.writeUInt32BE(seq * 3000, 4)
  b.writeUInt32BE(0x77, 8)
  b.set([0x41, 1, 2, 3], 12)
  return b
}

async function send(port: number, n: number, address = '127.0.0.1', iface?: string): Promise<void> {
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  if (iface) s.setMulticastInterface('127.0.0.1')
  for (let i = 0; i < n; i++) await new Promise<void>((r) => s.send(pframe(i + 1), port, address, () => r()))
  s.close()
}

const closed = (rx: RtpReceiver) => new Promise<void>((r) => rx.once('close', () => r()))

describe('RTP receiver lifecycle', () => {
  it('throws Node-shaped errors: EADDRINUSE with address and port, bad options before any socket', () => {
    const a = createRtpReceiver({ port: 0, codec: 'h264', rtcp: false })
    try {
      const port = a.ports().rtp
      expect(() => createRtpReceiver({ port, codec: 'h264', rtcp: false })).toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port }))
    } finally {
      a.close()
    }
    expect(() => createRtpReceiver({ port: 70000, codec: 'h264' })).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }))
    expect(() => createRtpReceiver({ port: 0, codec: 'vp8' as 'h264' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createRtpReceiver({ port: 0, codec: 'h264', latencyMs: -1 })).toThrow(RangeError)
    expect(() => createRtpReceiver({ port: 0, codec: 'h264', address: 'nope' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
  })

  it.each(['io', 'js'] as const)('close() inside a frame handler (thread: %s): no more frames, close event once, stats still readable', async (thread) => {
    const rx = createRtpReceiver({ port: 0, codec: 'h264', rtcp: false, thread })
    let n = 0
    const c = closed(rx)
    rx.on('frame', () => {
      n++
      rx.close()
      rx.close()
    })
    await send(rx.ports().rtp, 20)
    await c
    await new Promise((r) => setTimeout(r, 100))
    expect(n).toBe(1)
    expect(rx.stats().packets).toBeGreaterThanOrEqual(1)
  })

  it('AbortSignal closes the receiver and ends the async iterator', async () => {
    const ac = new AbortController()
    const rx = createRtpReceiver({ port: 0, codec: 'h264', rtcp: false, signal: ac.signal })
    const got: VideoFrameData[] = []
    const done = (async () => {
      for await (const f of rx) {
        got.push(f)
        if (got.length === 3) ac.abort()
      }
    })()
    await send(rx.ports().rtp, 3)
    await done
    expect(got.map((f) => f.rtpTimestamp)).toEqual([3000, 6000, 9000])
    expect(rx.ports().rtp).toBe(-1)
  })

  it.each(['io', 'js'] as const)('unref() lets the process exit with the receiver open; ref() keeps it alive (thread: %s)', (thread) => {
    const code = (ref: boolean) =>
      spawnSync(
        process.execPath,
        ['--input-type=module', '-e', `import { createRtpReceiver } from ${JSON.stringify(new URL('../dist/lib/video/index.js', import.meta.url).href)}; const rx = createRtpReceiver({ port: 0, codec: 'h264', thread: '${thread}' }); ${ref ? '' : 'rx.unref();'} setTimeout(() => process.exit(7), 1500).unref()`],
        { timeout: 20_000 },
      ).status
    expect(code(false)).toBe(0)
    expect(code(true)).toBe(7)
  })

  it('busyPollUs: the reactor spins before sleeping, frames still arrive; closing stops the spin', async () => {
    const rx = createRtpReceiver({ port: 0, codec: 'h264', rtcp: false, busyPollUs: 200 })
    const frames: number[] = []
    rx.on('frame', (f) => frames.push(f.rtpTimestamp))
    await send(rx.ports().rtp, 3)
    expect(await waitFor(() => frames.length === 3)).toBe(true)
    rx.close()
    expect(() => createRtpReceiver({ port: 0, codec: 'h264', busyPollUs: -1 })).toThrow(RangeError)
  })

  it("thread: 'js': while the JavaScript thread is blocked nothing is lost (the kernel buffer holds the packets), then frames come in order; bad values throw", async () => {
    const rx = createRtpReceiver({ port: 0, codec: 'h264', rtcp: false, thread: 'js' })
    try {
      const frames: number[] = []
      rx.on('frame', (f) => frames.push(f.rtpTimestamp))
      const hex = Array.from({ length: 20 }, (_, i) => pframe(i + 1).toString('hex'))
      // spawnSync blocks this thread while a child process sends the 20 frames.
      const script = `const s = require('node:dgram').createSocket('udp4'); const p = ${JSON.stringify(hex)}; let n = 0; for (const h of p) s.send(Buffer.from(h, 'hex'), ${rx.ports().rtp}, '127.0.0.1', () => { if (++n === p.length) s.close() })`
      const r = spawnSync(process.execPath, ['-e', script], { timeout: 20_000 })
      expect(r.status).toBe(0)
      expect(frames.length).toBe(0) // nothing could be delivered yet
      expect(await waitFor(() => frames.length === 20, 5000)).toBe(true)
      expect(frames).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 3000))
      expect(rx.stats().kernelDrops).toBe(0)
    } finally {
      rx.close()
    }
    expect(() => createRtpReceiver({ port: 0, codec: 'h264', thread: 'worker' as 'js' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
  })

  it.skipIf(skipUnderEmulator('multicast'))('multicast: joins a group on lo and receives what is sent to it', async () => {
    const rx = createRtpReceiver({ port: 0, codec: 'h264', rtcp: false, multicast: { group: '239.10.20.99', interface: 'lo' } })
    try {
      const frames: number[] = []
      rx.on('frame', (f) => frames.push(f.rtpTimestamp))
      await send(rx.ports().rtp, 3, '239.10.20.99', 'lo')
      expect(await waitFor(() => frames.length === 3, 5000)).toBe(true)
    } finally {
      rx.close()
    }
  })
})
