import { describe, it, expect, afterAll } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
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
    expect(nobody.stderr).toMatch(/onbus send-file: Error \[ECONNREFUSED\]: No connection to 127\.0\.0\.1:1 within 1500 ms/)
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
