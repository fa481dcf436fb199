import { describe, it, expect, afterAll } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCommandLink, createCommandServer, type CommandLink, type CommandServer } from '../lib/index.js'
import { FileReceiver, sendFile } from '../lib/transfer/index.js'

const haveOpenssl = spawnSync('openssl', ['version']).status === 0
if (!haveOpenssl) console.log('TLS transfer test skipped: openssl is not installed')
const dir = mkdtempSync(join(tmpdir(), 'onbus-xfer-tls-'))
const open: (CommandLink | CommandServer)[] = []
afterAll(() => {
  for (const x of open) x.close()
  rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(!haveOpenssl)('verified transfer over a TLS command link', () => {
  it('sends a file with mutual TLS and checks its digest', async () => {
    const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' })
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    o('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ca')
    for (const n of ['server', 'client']) {
      o('req', ...ec, '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`)
      o('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.crt`, '-days', '2')
    }
    const r = (n: string) => readFileSync(join(dir, n))
    const out = join(dir, 'out')
    mkdirSync(out)
    const rx = new FileReceiver({ dir: out })
    const srv = await createCommandServer({ cert: r('server.crt'), key: r('server.key'), ca: r('ca.crt') }, (l) => rx.attach(l))
    open.push(srv)
    const data = randomBytes(3 << 20)
    writeFileSync(join(dir, 'mission.plan'), data)
    const link = createCommandLink({ host: '127.0.0.1', port: srv.port, cert: r('client.crt'), key: r('client.key'), ca: r('ca.crt') })
    open.push(link)
    const res = await sendFile(link, join(dir, 'mission.plan')).done
    const want = createHash('sha256').update(data).digest('hex')
    expect(res.sha256).toBe(want)
    expect(createHash('sha256').update(readFileSync(join(out, 'mission.plan'))).digest('hex')).toBe(want)
  })
})
