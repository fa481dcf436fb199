import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTcpLink, createTcpServer, createUnixLink, createUnixServer, type StreamLink, type StreamServer } from '../lib/index.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-sendfile-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const open: (StreamLink | StreamServer)[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const fds = () => readdirSync('/proc/self/fd').length

async function pair(): Promise<{ tx: StreamLink; got: () => Buffer; size: () => number }> {
  const parts: Buffer[] = []
  let n = 0
  const server = createTcpServer({ port: 0 }, (l) =>
    l.onBatch((b) => {
      for (let i = 0; i < b.length; i++) {
        parts.push(b.copy(i))
        n += b.len(i)
      }
    }),
  )
  open.push(server)
  const tx = createTcpLink({ port: server.port })
  open.push(tx)
  await once(tx, 'connect')
  return { tx, got: () => Buffer.concat(parts), size: () => n }
}

describe('sendFile (sendfile(2), no copy through user space)', () => {
  it('sends files in order with writes around them, from a path or a descriptor, with offset and length', async () => {
    const data = randomBytes(20 << 20)
    const path = join(dir, 'a.bin')
    writeFileSync(path, data)
    const { tx, got, size } = await pair()
    const before = fds()
    const done: string[] = []
    tx.write('<head>')
    tx.sendFile(path, {}, (err) => done.push(`file:${err}`))
    tx.write('<mid>')
    const fd = openSync(path, 'r')
    tx.sendFile(fd, { offset: 1000, length: 5000 }, (err) => done.push(`part:${err}`))
    tx.write('<tail>', () => done.push('tail'))
    const total = 6 + data.length + 5 + 5000 + 6
    while (size() < total) await sleep(5)
    const want = Buffer.concat([Buffer.from('<head>'), data, Buffer.from('<mid>'), data.subarray(1000, 6000), Buffer.from('<tail>')])
    expect(createHash('sha256').update(got()).digest('hex')).toBe(createHash('sha256').update(want).digest('hex'))
    expect(done).toEqual(['file:null', 'part:null', 'tail'])
    // The path was opened and closed by the link; the descriptor given is left open.
    closeSync(fd)
    expect(fds()).toBe(before)
    expect(tx.stats().txBytes).toBe(total)
  })

  it('a file shorter than the length asked fails the link with ENODATA and closes what it opened', async () => {
    const path = join(dir, 'short.bin')
    writeFileSync(path, Buffer.alloc(100))
    const { tx } = await pair()
    const errs: Error[] = []
    tx.on('error', (e) => errs.push(e))
    const cbErr = new Promise<Error | null>((r) => tx.sendFile(path, { length: 200 }, r))
    await once(tx, 'close')
    expect(errs[0]).toMatchObject({ code: 'ENODATA', syscall: 'sendfile' })
    expect(await cbErr).toBeTruthy()
  })

  it('is refused on seqpacket links', async () => {
    const name = `onbus-sf-${process.pid}`
    const s = createUnixServer({ path: name, abstract: true, type: 'seqpacket' })
    open.push(s)
    const c = createUnixLink({ path: name, abstract: true, type: 'seqpacket' })
    open.push(c)
    await once(c, 'connect')
    expect(() => c.sendFile(join(dir, 'a.bin'))).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_NOT_SUPPORTED' }))
  })
})
