import { describe, it, expect, afterEach, beforeAll } from 'vitest'
import { once } from 'node:events'
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCommandLink, createCommandServer, publicKeyPin, type CommandLink, type CommandServer } from '../lib/index.js'

const haveOpenssl = spawnSync('openssl', ['version']).status === 0
if (!haveOpenssl) console.log('TLS command-link tests skipped: openssl is not installed (apt-get install openssl)')

const dir = mkdtempSync(join(tmpdir(), 'onbus-pki-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const f = (n: string) => join(dir, n)
const read = (n: string) => readFileSync(f(n))
const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })

/** A private CA, a server, a valid client, a client of another CA, an expired client. */
function makePki(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  for (const ca of ['ca', 'ca2']) ossl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '30', '-subj', `/CN=onbus test ${ca}`)
  const leaf = (name: string, cn: string, ca: string, ext: string) => {
    ossl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    writeFileSync(f(`${name}.ext`), ext)
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`)
  }
  leaf('server', 'localhost', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  leaf('client', 'gcs-operator', 'ca', 'extendedKeyUsage=clientAuth\n')
  leaf('wrong', 'intruder', 'ca2', 'extendedKeyUsage=clientAuth\n')
  // Expired: signed by the right CA, valid for one day in 2020.
  writeFileSync(
    f('ca.cnf'),
    `[ca]\ndefault_ca=d\n[d]\ndir=.\ndatabase=index.txt\nnew_certs_dir=.\ncertificate=ca.crt\nprivate_key=ca.key\nserial=serial.txt\ndefault_md=sha256\npolicy=p\nunique_subject=no\ncopy_extensions=copy\n[p]\ncommonName=supplied\n`,
  )
  writeFileSync(f('index.txt'), '')
  writeFileSync(f('serial.txt'), '1000\n')
  ossl('req', ...ec, '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=old-operator')
  ossl('ca', '-batch', '-config', 'ca.cnf', '-in', 'expired.csr', '-out', 'expired.crt', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext')
}

const open: (CommandLink | CommandServer)[] = []
const procs: ChildProcess[] = []
afterEach(() => {
  for (const x of open.splice(0)) x.close()
  for (const p of procs.splice(0)) p.kill('SIGKILL')
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

async function server(extra: Record<string, unknown> = {}): Promise<{ srv: CommandServer; links: CommandLink[]; refusals: (Error & { code: string; reason?: string })[]; received: string[] }> {
  const links: CommandLink[] = []
  const received: string[] = []
  const refusals: (Error & { code: string; reason?: string })[] = []
  const srv = await createCommandServer({ cert: read('server.crt'), key: read('server.key'), ca: read('ca.crt'), ...extra }, (l) => {
    links.push(l)
    open.push(l)
    l.on('data', (d) => received.push(d.toString()))
  })
  srv.on('clientError', (e) => refusals.push(e))
  open.push(srv)
  return { srv, links, refusals, received }
}

/** openssl s_client as the peer; resolves with its stdout once it exits. */
function sClient(port: number, args: string[], input: string): Promise<{ out: string; code: number | null }> {
  const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', f('ca.crt'), '-quiet', ...args], { cwd: dir })
  procs.push(p)
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  p.stderr.on('data', () => {})
  p.stdin.write(input)
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill(), 5000)
    p.on('close', (code) => {
      clearTimeout(t)
      resolve({ out, code })
    })
  })
}

describe.skipIf(!haveOpenssl)('TLS 1.3 command links with mutual certificates (against openssl)', () => {
  beforeAll(() => makePki())

  it('onbus server accepts openssl s_client with a valid client certificate; both directions work', async () => {
    const { srv, links, received } = await server()
    const client = sClient(srv.port, ['-cert', f('client.crt'), '-key', f('client.key')], 'arm\n')
    while (links.length === 0) await sleep(5)
    const link = links[0]
    expect(link.secure).toBe(true)
    expect(link.peer?.subject).toContain('CN=gcs-operator')
    expect(link.peer?.pin).toBe(publicKeyPin(read('client.crt')))
    while (received.length === 0) await sleep(5)
    expect(received.join('')).toBe('arm\n')
    link.write('ack\n')
    await sleep(100)
    link.close()
    const { out } = await client
    expect(out).toContain('ack')
  })

  it('refuses a client certificate from another CA, with a clear error', async () => {
    const { srv, links, refusals } = await server()
    await sClient(srv.port, ['-cert', f('wrong.crt'), '-key', f('wrong.key')], 'x\n')
    while (refusals.length === 0) await sleep(5)
    expect(links.length).toBe(0)
    expect(refusals[0].code).toBe('ERR_ONBUS_TLS_REFUSED')
    expect(refusals[0].message).toMatch(/not signed by the trusted CA|untrusted/)
  })

  it('refuses an expired client certificate, saying it expired', async () => {
    const { srv, links, refusals } = await server()
    await sClient(srv.port, ['-cert', f('expired.crt'), '-key', f('expired.key')], 'x\n')
    while (refusals.length === 0) await sleep(5)
    expect(links.length).toBe(0)
    expect(refusals[0]).toMatchObject({ code: 'ERR_ONBUS_TLS_REFUSED', reason: 'CERT_HAS_EXPIRED' })
    expect(refusals[0].message).toContain('expired')
  })

  it('refuses a TLS client without a certificate', async () => {
    const { srv, links, refusals } = await server()
    await sClient(srv.port, [], 'x\n')
    while (refusals.length === 0) await sleep(5)
    expect(links.length).toBe(0)
    expect(refusals[0].code).toBe('ERR_ONBUS_TLS_NO_PEER_CERT')
  })

  it('refuses a plaintext client, naming it so', async () => {
    const { srv, links, refusals } = await server()
    const s = net.connect(srv.port, '127.0.0.1')
    s.on('error', () => {})
    await once(s, 'connect')
    s.write('ARM THROTTLE 100\r\n')
    await once(s, 'close')
    while (refusals.length === 0) await sleep(5)
    expect(links.length).toBe(0)
    expect(refusals[0].code).toBe('ERR_ONBUS_TLS_PLAINTEXT_REFUSED')
    expect(refusals[0].message).toContain('plaintext')
  })

  it('onbus client connects to openssl s_server (mutual TLS 1.3, private CA) and exchanges data', async () => {
    const port = await freePort()
    const p = spawn('openssl', ['s_server', '-accept', String(port), '-tls1_3', '-Verify', '1', '-verify_return_error', '-CAfile', f('ca.crt'), '-cert', f('server.crt'), '-key', f('server.key'), '-naccept', '1'], { cwd: dir })
    procs.push(p)
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    while (!out.includes('ACCEPT')) await sleep(10)
    const link = createCommandLink({ host: '127.0.0.1', port, cert: read('client.crt'), key: read('client.key'), ca: read('ca.crt'), servername: 'localhost' })
    open.push(link)
    await once(link, 'connect')
    expect(link.peer?.subject).toContain('CN=localhost')
    link.write('takeoff 10\n')
    while (!out.includes('takeoff 10')) await sleep(10)
    p.stdin.write('ok\n')
    const [d] = await once(link, 'data')
    expect(d.toString()).toContain('ok')
  })

  it('pinning: the server key pinned (no CA) connects; a wrong pin is refused', async () => {
    const { srv } = await server()
    const good = createCommandLink({ host: '127.0.0.1', port: srv.port, cert: read('client.crt'), key: read('client.key'), pins: [`sha256/${publicKeyPin(read('server.crt'))}`] })
    open.push(good)
    await once(good, 'connect')
    const bad = createCommandLink({ host: '127.0.0.1', port: srv.port, cert: read('client.crt'), key: read('client.key'), pins: [publicKeyPin(read('wrong.crt'))] })
    open.push(bad)
    const [err] = await once(bad, 'error')
    expect(err.code).toBe('ERR_ONBUS_TLS_PIN_MISMATCH')
  })

  it('the server can pin client keys as well as (or instead of) a CA', async () => {
    const { srv, links, refusals } = await server({ ca: undefined, pins: [publicKeyPin(read('client.crt'))] })
    const ok = createCommandLink({ host: '127.0.0.1', port: srv.port, cert: read('client.crt'), key: read('client.key'), ca: read('ca.crt') })
    open.push(ok)
    await once(ok, 'connect')
    const other = createCommandLink({ host: '127.0.0.1', port: srv.port, cert: read('wrong.crt'), key: read('wrong.key'), ca: read('ca.crt') })
    open.push(other)
    other.on('error', () => {})
    while (refusals.length === 0) await sleep(5)
    expect(refusals[0].code).toBe('ERR_ONBUS_TLS_PIN_MISMATCH')
    expect(links.length).toBe(1)
  })

  it('an onbus client refuses a server whose certificate is not from its CA', async () => {
    const { srv } = await server()
    const link = createCommandLink({ host: '127.0.0.1', port: srv.port, cert: read('client.crt'), key: read('client.key'), ca: read('ca2.crt') })
    open.push(link)
    const [err] = await once(link, 'error')
    expect(err.code).toBe('ERR_ONBUS_TLS_REFUSED')
  })

  it('a TLS 1.2-only peer is refused: command links speak TLS 1.3 only', async () => {
    const port = await freePort()
    const p = spawn('openssl', ['s_server', '-accept', String(port), '-tls1_2', '-cert', f('server.crt'), '-key', f('server.key'), '-naccept', '1'], { cwd: dir })
    procs.push(p)
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    while (!out.includes('ACCEPT')) await sleep(10)
    const link = createCommandLink({ host: '127.0.0.1', port, cert: read('client.crt'), key: read('client.key'), ca: read('ca.crt') })
    open.push(link)
    const [err] = await once(link, 'error')
    expect(err.code).toBe('ERR_ONBUS_TLS_REFUSED')
  })
})

describe('plaintext command links', () => {
  it('are refused unless the configuration says insecurePlaintext, which warns loudly', async () => {
    expect(() => createCommandLink({ port: 1 })).toThrow(expect.objectContaining({ code: 'ERR_ONBUS_PLAINTEXT_REFUSED' }))
    await expect(createCommandServer({})).rejects.toMatchObject({ code: 'ERR_ONBUS_PLAINTEXT_REFUSED' })
    const warnings: Error[] = []
    const onWarn = (w: Error) => warnings.push(w)
    process.on('warning', onWarn)
    const srv = await createCommandServer({ insecurePlaintext: true })
    open.push(srv)
    const link = createCommandLink({ host: '127.0.0.1', port: srv.port, insecurePlaintext: true })
    open.push(link)
    await once(link, 'connect')
    expect(link.secure).toBe(false)
    await sleep(20)
    process.off('warning', onWarn)
    expect(warnings.some((w) => (w as Error & { code: string }).code === 'ONBUS_PLAINTEXT_COMMAND_LINK' && /PLAINTEXT/.test(w.message))).toBe(true)
  })
})
