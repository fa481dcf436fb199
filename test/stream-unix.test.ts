import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createUnixLink, createUnixServer, type StreamLink, type StreamServer } from '../lib/index.js'

const open: (StreamLink | StreamServer)[] = []
const dir = mkdtempSync(join(tmpdir(), 'onbus-unix-'))
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let seq = 0
const abstractName = () => `onbus-test-${process.pid}-${seq++}`

describe('Unix stream links', () => {
  it('filesystem path: echo, owner-only permissions, peer credentials, file removed on close', async () => {
    const path = join(dir, 'a.sock')
    const server = createUnixServer({ path }, (l) => l.on('data', (d) => l.write(d)))
    open.push(server)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(server.address()).toEqual({ path, abstract: false })
    const c = createUnixLink({ path })
    open.push(c)
    await once(c, 'connect')
    expect(c.peerCredentials()).toMatchObject({ pid: process.pid, uid: process.getuid!() })
    c.write('over unix')
    const [d, info] = await once(c, 'data')
    expect(d.toString()).toBe('over unix')
    expect(typeof info.rxTime).toBe('bigint')
    server.close()
    await once(server, 'close')
    expect(existsSync(path)).toBe(false)
  })

  it('abstract namespace: no file, echo works', async () => {
    const name = abstractName()
    const server = createUnixServer({ path: name, abstract: true }, (l) => l.on('data', (d) => l.write(d)))
    open.push(server)
    expect(server.address()).toEqual({ path: name, abstract: true })
    expect(existsSync(name)).toBe(false)
    const c = createUnixLink({ path: name, abstract: true })
    open.push(c)
    await once(c, 'connect')
    c.write('abstract')
    const [d] = await once(c, 'data')
    expect(d.toString()).toBe('abstract')
  })

  it('busy path or name -> EADDRINUSE; missing path -> ENOENT naming it', async () => {
    const path = join(dir, 'busy.sock')
    writeFileSync(path, '')
    expect(() => createUnixServer({ path })).toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind', address: path }))
    const name = abstractName()
    open.push(createUnixServer({ path: name, abstract: true }))
    expect(() => createUnixServer({ path: name, abstract: true })).toThrow(expect.objectContaining({ code: 'EADDRINUSE', address: `@${name}` }))
    const missing = join(dir, 'missing.sock')
    const c = createUnixLink({ path: missing })
    open.push(c)
    const [err] = await once(c, 'error')
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'connect', address: missing })
    expect(err.message).toContain(missing)
    await once(c, 'close')
  })
})

describe('Unix seqpacket links', () => {
  it('keeps message boundaries both ways; each record is one message', async () => {
    const name = abstractName()
    const serverGot: Buffer[] = []
    const server = createUnixServer({ path: name, abstract: true, type: 'seqpacket' }, (l) =>
      l.onBatch((b) => {
        for (let i = 0; i < b.length; i++) {
          serverGot.push(b.copy(i))
          l.write(b.copy(i))
        }
      }),
    )
    open.push(server)
    const c = createUnixLink({ path: name, abstract: true, type: 'seqpacket' })
    open.push(c)
    await once(c, 'connect')
    const msgs = Array.from({ length: 100 }, (_, i) => Buffer.alloc(1 + i * 13, i))
    const back: Buffer[] = []
    c.on('data', (d) => back.push(d))
    c.writev(msgs)
    while (back.length < 100) await sleep(5)
    expect(serverGot.map((b) => b.length)).toEqual(msgs.map((m) => m.length))
    expect(back.every((b, i) => b.equals(msgs[i]))).toBe(true)
  })

  it('a message longer than maxFrameSize is truncated and flagged, the next one is whole', async () => {
    const name = abstractName()
    const infos: { len: number; size: number; truncated: boolean }[] = []
    const server = createUnixServer({ path: name, abstract: true, type: 'seqpacket', maxFrameSize: 100 }, (l) =>
      l.onBatch((b) => {
        for (let i = 0; i < b.length; i++) infos.push({ len: b.len(i), size: b.size(i), truncated: b.truncated(i) })
      }),
    )
    open.push(server)
    const c = createUnixLink({ path: name, abstract: true, type: 'seqpacket' })
    open.push(c)
    await once(c, 'connect')
    c.write(Buffer.alloc(500))
    c.write(Buffer.alloc(50))
    while (infos.length < 2) await sleep(5)
    expect(infos).toEqual([
      { len: 100, size: 500, truncated: true },
      { len: 50, size: 50, truncated: false },
    ])
  })
})
