import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { spawn, type ChildProcess } from 'node:child_process'
import { createTcpLink, createTcpServer, type StreamLink, type StreamServer } from '../lib/index.js'

const open: (StreamLink | StreamServer)[] = []
const children: ChildProcess[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
  for (const c of children.splice(0)) c.kill()
})

describe('stream link errors are Node-shaped', () => {
  it('refused connection -> ECONNREFUSED with the address, then close', async () => {
    const s = createTcpServer({ port: 0 })
    const port = s.port
    s.close()
    await once(s, 'close')
    const c = createTcpLink({ host: '127.0.0.1', port })
    open.push(c)
    const [err] = await once(c, 'error')
    expect(err).toMatchObject({ code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: '127.0.0.1', port })
    expect(err.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port} (connection refused)`)
    await once(c, 'close')
    expect(c.state).toBe('closed')
  })

  it('unanswered connection -> ETIMEDOUT with the address after connectTimeout', async () => {
    // A listener that never accepts, with its accept queue full: further SYNs
    // are dropped, like a host that does not answer.
    const py = spawn('python3', ['-c', "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"])
    children.push(py)
    const [line] = await once(py.stdout!, 'data')
    const port = Number(String(line).trim())
    const fillers = [0, 1, 2].map(() => {
      const f = createTcpLink({ port, connectTimeout: 400 })
      f.on('error', () => {})
      open.push(f)
      return f
    })
    await new Promise((r) => setTimeout(r, 100))
    const t0 = Date.now()
    const c = createTcpLink({ port, connectTimeout: 500 })
    open.push(c)
    const [err] = await once(c, 'error')
    const took = Date.now() - t0
    expect(err).toMatchObject({ code: 'ETIMEDOUT', syscall: 'connect', address: '127.0.0.1', port })
    expect(err.message).toContain(`connect ETIMEDOUT 127.0.0.1:${port}`)
    expect(took).toBeGreaterThanOrEqual(450)
    expect(took).toBeLessThan(5000)
    expect(fillers.some((f) => f.state === 'connected' || f.state === 'closed')).toBe(true)
  })

  it('busy port -> EADDRINUSE thrown by listen, with address and port', () => {
    const a = createTcpServer({ port: 0 })
    open.push(a)
    expect(() => createTcpServer({ port: a.port })).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port: a.port, message: `bind EADDRINUSE 127.0.0.1:${a.port} (address already in use)` }),
    )
  })

  it('invalid arguments throw before native code', () => {
    expect(() => createTcpLink({ port: 70000 })).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }))
    expect(() => createTcpServer({ host: 'not-an-ip' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createTcpLink({ port: 1, reconnect: { jitter: 2 } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => createTcpLink({ port: 1, highWaterMark: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  })

  it('a reset connection is reported as a disconnect with ECONNRESET-style reason', async () => {
    const server = createTcpServer({ port: 0 })
    open.push(server)
    const got = new Promise<StreamLink>((r) => server.once('connection', r))
    const c = createTcpLink({ port: server.port })
    open.push(c)
    await once(c, 'connect')
    const s = await got
    // Unread data at close makes the kernel send RST instead of FIN.
    c.write(Buffer.alloc(1000))
    await new Promise((r) => setTimeout(r, 20))
    const reasons: Error[] = []
    s.on('disconnect', ({ reason }) => reasons.push(reason))
    s.on('error', () => {})
    c.close()
    await once(s, 'close')
    expect(reasons.length).toBe(1)
    expect(['ERR_ONBUS_PEER_CLOSED', 'ECONNRESET']).toContain((reasons[0] as Error & { code: string }).code)
  })
})
