import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createTcpLink, createTcpServer, type StreamLink, type StreamServer } from '../lib/index.js'

const open: (StreamLink | StreamServer)[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const fds = () => readdirSync('/proc/self/fd').length
const child = new URL('./children/stream-exit.mjs', import.meta.url).pathname
const haveDist = existsSync(new URL('../dist/lib/index.js', import.meta.url))

describe('stream link lifecycle', () => {
  it('no descriptor leaks over 100 connect/accept/close cycles', async () => {
    const server = createTcpServer({ port: 0 }, (l) => l.close())
    open.push(server)
    const before = fds()
    for (let i = 0; i < 100; i++) {
      const c = createTcpLink({ port: server.port })
      c.on('error', () => {})
      await once(c, 'connect')
      if (c.state !== 'closed') await once(c, 'close')
    }
    await sleep(50)
    expect(fds()).toBe(before)
  })

  it('close() is idempotent, safe inside a data handler, and close comes on the next tick', async () => {
    const server = createTcpServer({ port: 0 }, (l) => l.write('a\nb\nc\n'))
    open.push(server)
    const c = createTcpLink({ port: server.port, framing: { type: 'delimited' } })
    const seen: string[] = []
    let closes = 0
    c.on('close', () => closes++)
    c.on('data', (d) => {
      seen.push(d.toString())
      c.close()
      c.close()
      expect(closes).toBe(0)
    })
    await once(c, 'close')
    await sleep(20)
    expect(seen).toEqual(['a'])
    expect(closes).toBe(1)
    expect(c.fd).toBe(-1)
    let cb = false
    c.close(() => (cb = true))
    await sleep(5)
    expect(cb).toBe(true)
  })

  it('an AbortSignal closes the link; Symbol.asyncDispose closes and waits', async () => {
    const server = createTcpServer({ port: 0 })
    open.push(server)
    const ac = new AbortController()
    const c = createTcpLink({ port: server.port, signal: ac.signal })
    await once(c, 'connect')
    ac.abort()
    expect(c.closed).toBe(true)
    {
      await using d = createTcpLink({ port: server.port })
      await once(d, 'connect')
    }
    await sleep(5)
    expect(server.stats().accepted).toBe(2)
  })

  it.skipIf(!haveDist)('a process exits promptly with links open, and with unref\'d links the loop ends', () => {
    const a = spawnSync(process.execPath, [child, 'exit'], { timeout: 10_000, encoding: 'utf8' })
    expect(a.status).toBe(0)
    expect(a.stdout).toContain('exiting with links open')
    const b = spawnSync(process.execPath, [child, 'unref'], { timeout: 10_000, encoding: 'utf8' })
    expect(b.signal).toBe(null)
    expect(b.status).toBe(0)
  })

  it.skipIf(!haveDist)('a worker that ends with links open releases every descriptor', () => {
    const out = execFileSync(process.execPath, [child, 'worker'], { timeout: 10_000, encoding: 'utf8' })
    const r = JSON.parse(out.trim().split('\n').pop()!)
    expect(r.opened).toBeGreaterThanOrEqual(r.before + 3)
    expect(r.after).toBe(r.before)
  })
})
if (!haveDist) console.log('stream-lifecycle: child-process tests skipped: dist/ not built (npm run build:ts)')
