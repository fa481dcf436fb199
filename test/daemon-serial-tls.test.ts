import { describe, it, expect, afterAll } from 'vitest'
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCommandServer, createSerialLink, type CommandLink } from '../lib/index.js'
import { Daemon } from '../lib/daemon/daemon.js'

const haveSocat = spawnSync('socat', ['-V']).status === 0
const haveOpenssl = spawnSync('openssl', ['version']).status === 0
if (!haveSocat) console.log('daemon serial test skipped: socat is not installed (apt-get install socat)')
if (!haveOpenssl) console.log('daemon TLS command link test skipped: openssl is not installed')

const dir = mkdtempSync(join(tmpdir(), 'onbus-daemon-kinds-'))
chmodSync(dir, 0o755)
const kids: ChildProcess[] = []
afterAll(() => {
  for (const k of kids) k.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe('daemon link kinds on real devices and peers', () => {
  it.skipIf(!haveSocat)('serial: NMEA lines from a PTY feed a topic (delimited framing); a topic writes back to the port', async () => {
    const a = join(dir, 'gps-a')
    const b = join(dir, 'gps-b')
    kids.push(spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' }))
    for (let i = 0; i < 200 && !(existsSync(a) && existsSync(b)); i++) await sleep(10)
    const file = join(dir, 'serial.yaml')
    writeFileSync(
      file,
      `ipc: { enabled: false }
links:
  gps: { kind: serial, path: ${a}, baudRate: 115200, framing: { type: delimited, delimiter: "\\r\\n" } }
topics:
  gps/nmea: { qos: { profile: sensorData, depth: 64 }, from: [gps] }
  gps/config: { qos: { profile: reliable }, to: [gps] }
`,
    )
    const d = await Daemon.start({ file })
    const peer = createSerialLink({ path: b, baudRate: 115200 })
    try {
      const got: string[] = []
      d.bus.topic<Uint8Array>('gps/nmea').subscribe((m) => got.push(Buffer.from(m).toString()))
      await until(() => peer.state === 'connected', 'the peer end open')
      peer.write('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n$GPRMC,123519,A*6A\r\n')
      await until(() => got.length === 2, 'two NMEA sentences')
      expect(got[0]).toBe('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47')
      expect(got[1]).toBe('$GPRMC,123519,A*6A')
      let back = ''
      peer.on('data', (x: Buffer) => (back += x.toString()))
      d.bus.topic<Uint8Array>('gps/config').publish(Buffer.from('$PMTK220,100*2F\r\n'))
      await until(() => back === '$PMTK220,100*2F\r\n', 'the topic written to the port')
      const s = d.snapshot().links.find((l) => l.name === 'gps')!
      expect(s).toMatchObject({ kind: 'serial', rxMessages: 2, connections: 1 })
    } finally {
      peer.close()
      await d.close()
    }
  }, 30_000)

  it.skipIf(!haveOpenssl)('tls-command: a mutually authenticated command link (certificate files relative to the configuration) feeds a topic', async () => {
    const o = (...x: string[]) => execFileSync('openssl', x, { cwd: dir, stdio: 'pipe' })
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    o('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ca')
    for (const n of ['gcs', 'vehicle']) {
      o('req', ...ec, '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`)
      o('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.crt`, '-days', '2')
    }
    const r = (n: string) => readFileSync(join(dir, n))
    let conn: CommandLink | null = null
    const gcs = await createCommandServer({ cert: r('gcs.crt'), key: r('gcs.key'), ca: r('ca.crt') }, (l) => (conn = l))
    const file = join(dir, 'tls.yaml')
    writeFileSync(
      file,
      `ipc: { enabled: false }
links:
  uplink: { kind: tls-command, host: 127.0.0.1, port: ${gcs.port}, cert: vehicle.crt, key: vehicle.key, ca: ca.crt, reconnect: true }
topics:
  commands: { qos: { profile: reliable }, from: [uplink] }
  telemetry: { qos: { profile: sensorData }, to: [uplink] }
`,
    )
    const d = await Daemon.start({ file })
    try {
      const got: string[] = []
      d.bus.topic<Uint8Array>('commands').subscribe((m) => got.push(Buffer.from(m).toString()))
      await until(() => conn !== null && d.snapshot().links[0].connections === 1, 'the command link up')
      conn!.write('ARM')
      await until(() => got.join('') === 'ARM', 'a command from the ground station')
      let back = ''
      conn!.on('data', (x: Buffer) => (back += x.toString()))
      d.bus.topic<Uint8Array>('telemetry').publish(Buffer.from('BATT 87%'))
      await until(() => back === 'BATT 87%', 'telemetry to the ground station')
    } finally {
      await d.close()
      gcs.close()
    }
  }, 30_000)
})
