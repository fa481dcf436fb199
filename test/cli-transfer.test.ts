import { describe, it, expect, afterAll } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliProcess, runCli } from './helpers/onbus-cli.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-cli-xfer-'))
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

describe('onbus send-file / receive-file', () => {
  it('round trip over TCP: the receiver verifies the digest, both exit 0', async () => {
    const data = randomBytes(5 << 20)
    const src = join(dir, 'map.tiles')
    writeFileSync(src, data)
    const out = join(dir, 'in')
    const rx = new CliProcess(['receive-file', '--dir', out, '--port', '0', '--once', '--json'])
    procs.push(rx)
    const listening = await rx.waitFor((r) => r.event === 'listening')
    const tx = await runCli(['send-file', src, '--port', String(listening.port), '--json', '--chunk-size', '262144'])
    expect(tx.code, tx.stderr).toBe(0)
    const want = createHash('sha256').update(data).digest('hex')
    const done = tx.json.find((r) => r.event === 'done')!
    expect(done).toMatchObject({ name: 'map.tiles', size: data.length, sha256: want })
    expect(tx.json.filter((r) => r.event === 'progress').length).toBeGreaterThan(0)
    const file = await rx.waitFor((r) => r.event === 'file')
    expect(file).toMatchObject({ name: 'map.tiles', size: data.length, sha256: want })
    expect(await rx.exited).toEqual({ code: 0, signal: null })
    expect(createHash('sha256').update(readFileSync(join(out, 'map.tiles'))).digest('hex')).toBe(want)
  }, 60_000)

  const haveOpenssl = spawnSync('openssl', ['version']).status === 0
  if (!haveOpenssl) console.log('CLI TLS transfer test skipped: openssl is not installed')
  it.skipIf(!haveOpenssl)('round trip over a mutually authenticated TLS command link; a client of another CA is refused with the reason', async () => {
    const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' })
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    for (const ca of ['ca', 'rogue-ca']) o('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=${ca}`)
    for (const [n, ca] of [['server', 'ca'], ['client', 'ca'], ['rogue', 'rogue-ca']]) {
      o('req', ...ec, '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`)
      o('x509', '-req', '-in', `${n}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${n}.crt`, '-days', '2')
    }
    const f = (n: string) => join(dir, n)
    const data = randomBytes(1 << 20)
    writeFileSync(f('mission.plan'), data)
    const rx = new CliProcess(['receive-file', '--dir', f('tls-in'), '--once', '--json', '--cert', f('server.crt'), '--key', f('server.key'), '--ca', f('ca.crt')])
    procs.push(rx)
    const l = await rx.waitFor((r) => r.event === 'listening')
    expect(l.tls).toBe(true)
    // A client whose certificate another CA signed: the server refuses it (and says why), the sender gives up.
    const rogue = await runCli(['send-file', f('mission.plan'), '--port', String(l.port), '--cert', f('rogue.crt'), '--key', f('rogue.key'), '--ca', f('ca.crt'), '--connect-timeout', '2000'])
    expect(rogue.code).toBe(1)
    expect(rogue.stderr).toMatch(/No receiver at 127\.0\.0\.1:\d+ accepted the transfer within 2000 ms/)
    const refused = await rx.waitFor((r) => r.event === 'refused-client')
    expect(refused.code).toBe('ERR_ONBUS_TLS_REFUSED')
    const tx = await runCli(['send-file', f('mission.plan'), '--port', String(l.port), '--cert', f('client.crt'), '--key', f('client.key'), '--ca', f('ca.crt'), '--json'])
    expect(tx.code, tx.stderr).toBe(0)
    const want = createHash('sha256').update(data).digest('hex')
    expect(tx.json.find((r) => r.event === 'done')).toMatchObject({ sha256: want })
    expect(await rx.exited).toEqual({ code: 0, signal: null })
    expect(createHash('sha256').update(readFileSync(f('tls-in/mission.plan'))).digest('hex')).toBe(want)
  }, 60_000)

  it('bad input: exit code 2 and a Node-shaped message; no receiver: exit code 1', async () => {
    const usage = await runCli(['send-file', join(dir, 'x'), '--port', 'seventy'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/--port must be an integer 0…65535 \(got "seventy"\)/)
    const missing = await runCli(['send-file'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/required option '--port <port>' not specified|missing required argument 'file'/)
    const src = join(dir, 'small')
    writeFileSync(src, 'x')
    const nobody = await runCli(['send-file', src, '--port', '1', '--connect-timeout', '1500'], {}, 30_000)
    expect(nobody.code).toBe(1)
    expect(nobody.stderr).toMatch(/onbus send-file: Error \[ECONNREFUSED\]: No receiver at 127\.0\.0\.1:1 accepted the transfer within 1500 ms/)
  }, 60_000)
})

describe('onbus: errors on bad input', () => {
  it('check: an invalid file is reported with file:line:column and exit code 2; a missing file exits 1', async () => {
    const f = join(dir, 'bad.yaml')
    writeFileSync(f, 'links:\n  x: { kind: udp, port: 99999 }\n')
    const r = await runCli(['check', f])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`${f}:2:`)
    expect(r.stderr).toMatch(/links\.x\.port: must be <= 65535 \(got 99999\)/)
    const ok = await runCli(['check'])
    expect(ok.code).toBe(0)
    const gone = await runCli(['run', join(dir, 'nope.yaml')])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toMatch(/onbus run: Error \[ENOENT\]: ENOENT: no such file or directory/)
  })

  it('stats and echo without a daemon say so and exit 1; unknown commands exit 2', async () => {
    const empty = mkdtempSync(join(dir, 'ipc-'))
    const s = await runCli(['stats', '--json', '--timeout', '500', '--ipc-dir', empty])
    expect(s.code).toBe(1)
    expect(s.stderr).toMatch(/\[ERR_ONBUS_NO_DAEMON\]: No onbus daemon answered/)
    const e = await runCli(['echo', 'nothing/here', '--timeout', '500', '--ipc-dir', empty])
    expect(e.code).toBe(1)
    expect(e.stderr).toMatch(/\[ERR_ONBUS_NO_TOPIC\]: No topic 'nothing\/here'/)
    const u = await runCli(['fly'])
    expect(u.code).toBe(2)
    expect(u.stderr).toMatch(/unknown command 'fly'/)
    const h = await runCli(['echo', '--help'])
    expect(h.code).toBe(0)
    expect(h.stdout).toMatch(/Usage: onbus echo \[options\] <topic>/)
  })
})
