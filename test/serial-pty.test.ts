import { describe, it, expect, afterEach, beforeAll } from 'vitest'
import { once } from 'node:events'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSerialLink, listSerialPorts, type SerialLink, type StreamLink } from '../lib/index.js'
import { listFromSysfs } from '../lib/links/serial/list.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const haveSocat = spawnSync('socat', ['-V']).status === 0
let haveSerialport = true
try {
  await import('serialport' as string)
} catch {
  haveSerialport = false
}
const skip = !haveSocat || !haveSerialport
if (skip) console.log(`serial PTY tests skipped: ${!haveSocat ? 'socat is not installed (apt-get install socat)' : "the 'serialport' package is not installed"}`)

const dir = mkdtempSync(join(tmpdir(), 'onbus-serial-'))
chmodSync(dir, 0o755)
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const links: StreamLink[] = []
const socats: ChildProcess[] = []
afterEach(() => {
  for (const l of links.splice(0)) l.close()
  for (const s of socats.splice(0)) s.kill('SIGKILL')
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A virtual UART: two PTYs joined by socat, reachable at `${name}-a` and `${name}-b`. */
async function ptyPair(name: string, mode = '0666'): Promise<{ a: string; b: string; proc: ChildProcess }> {
  const a = join(dir, `${name}-a`)
  const b = join(dir, `${name}-b`)
  const proc = spawn('socat', [`pty,raw,echo=0,mode=${mode},link=${a}`, `pty,raw,echo=0,mode=${mode},link=${b}`], { stdio: 'ignore' })
  socats.push(proc)
  for (let i = 0; i < 200 && !(existsSync(a) && existsSync(b)); i++) await sleep(10)
  if (!existsSync(a) || !existsSync(b)) throw new Error('socat did not create the PTYs')
  return { a, b, proc }
}

function serial(opts: Parameters<typeof createSerialLink>[0]): SerialLink {
  const l = createSerialLink(opts)
  links.push(l)
  return l
}

async function gather(l: StreamLink, bytes: number, ms = 5000): Promise<Buffer> {
  const parts: Buffer[] = []
  let n = 0
  const onData = (d: Buffer) => {
    parts.push(d)
    n += d.length
  }
  l.on('data', onData)
  const t0 = Date.now()
  while (n < bytes && Date.now() - t0 < ms) await sleep(5)
  l.off('data', onData)
  return Buffer.concat(parts)
}

describe.skipIf(skip)('serial links over virtual UARTs (PTY pairs)', () => {
  beforeAll(() => {})

  for (const baudRate of [9600, 115200, 250000, 921600, 1500000]) {
    it.skipIf(skipUnderEmulator('termios2'))(`moves data both ways at ${baudRate} baud, 8N1 and other line settings, stamped on read`, async () => {
      const { a, b } = await ptyPair(`baud${baudRate}`)
      const x = serial({ path: a, baudRate })
      const y = serial({ path: b, baudRate, dataBits: 7, parity: 'even', stopBits: 2 })
      await Promise.all([once(x, 'connect'), once(y, 'connect')])
      expect(await x.getBaudRate()).toBe(baudRate)
      const msg = Buffer.from(Array.from({ length: 4096 }, (_, i) => i & 0x7f))
      const got = gather(y, msg.length)
      x.write(msg)
      expect((await got).equals(msg)).toBe(true)
      const back = once(x, 'data')
      y.write('pong')
      const [d, info] = await back
      expect(d.toString()).toBe('pong')
      expect(info.kernelStamp).toBe(false) // a tty has no kernel stamp: taken on wake-up
      const now = BigInt(Date.now()) * 1_000_000n
      expect(info.rxTime).toBeGreaterThan(now - 5_000_000_000n)
      expect(info.rxTime).toBeLessThanOrEqual(now + 1_000_000_000n)
      // A PTY has no low-latency flag; the link works without it.
      expect(typeof x.lowLatency).toBe('boolean')
    })
  }

  it('frames NMEA sentences natively on a serial link', async () => {
    const { a, b } = await ptyPair('nmea')
    const gps = serial({ path: a, baudRate: 9600, framing: { type: 'delimited', delimiter: '\r\n' } })
    const dev = serial({ path: b, baudRate: 9600 })
    await Promise.all([once(gps, 'connect'), once(dev, 'connect')])
    const lines: string[] = []
    gps.on('data', (d) => lines.push(d.toString()))
    dev.write('$GPGGA,1*00\r\n$GPRMC,2')
    await sleep(30)
    dev.write('*01\r\n')
    while (lines.length < 2) await sleep(5)
    expect(lines).toEqual(['$GPGGA,1*00', '$GPRMC,2*01'])
  })

  it('unplug (the other side goes away, the path disappears) and replug: disconnect, reconnecting, reopened by itself', async () => {
    let pair = await ptyPair('usb')
    const x = serial({ path: pair.a, baudRate: 57600, reconnect: { initialDelay: 30, maxDelay: 100 } })
    const events: string[] = []
    const reasons: string[] = []
    x.on('disconnect', ({ reason }) => {
      events.push('disconnect')
      reasons.push((reason as Error & { code: string }).code)
    })
    x.on('reconnecting', ({ error }) => {
      events.push('reconnecting')
      reasons.push((error as Error & { code: string }).code)
    })
    x.on('connect', () => events.push('connect'))
    await once(x, 'connect')
    // Unplug: socat exits, closing both PTYs and removing their links.
    pair.proc.kill('SIGTERM')
    await once(x, 'disconnect')
    for (let i = 0; i < 100 && existsSync(pair.a); i++) await sleep(10)
    expect(existsSync(pair.a)).toBe(false)
    while (events.filter((e) => e === 'reconnecting').length < 2) await sleep(5)
    expect(x.state).not.toBe('connected')
    // Replug: the same path comes back. Listen first: with a 30-100 ms retry
    // the link can reopen the path before ptyPair() has returned.
    const reconnected = once(x, 'connect')
    pair = await ptyPair('usb')
    await reconnected
    const y = serial({ path: pair.b, baudRate: 57600 })
    await once(y, 'connect')
    const got = once(y, 'data')
    x.write('back again')
    expect(String((await got)[0])).toBe('back again')
    expect(events[0]).toBe('connect')
    expect(events[1]).toBe('disconnect')
    expect(reasons[0]).toBe('ERR_ONBUS_DEVICE_GONE')
    expect(reasons).toContain('ENOENT')
    expect(events[events.length - 1]).toBe('connect')
    expect(x.stats()).toMatchObject({ connects: 2, disconnects: 1 })
  })

  it('a missing device is ENOENT naming the path', async () => {
    const path = join(dir, 'ttyNOPE0')
    const x = serial({ path, baudRate: 115200, reconnect: false })
    const [err] = await once(x, 'error')
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', address: path })
    expect(err.message).toContain(path)
    // With reconnection (the serial default) the same error is the reason of each retry.
    const y = serial({ path, baudRate: 115200 })
    const [r] = await once(y, 'reconnecting')
    expect(r.error).toMatchObject({ code: 'ENOENT', address: path })
  })

  const canDrop = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0 && existsSync(new URL('../dist/lib/index.js', import.meta.url))
  it.skipIf(!canDrop)('permission denied on a tty is EACCES and the message names the dialout group', async () => {
    const { a } = await ptyPair('perm', '0600')
    const child = new URL('./children/stream-serial-open.mjs', import.meta.url).pathname
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, child, a], { encoding: 'utf8', timeout: 10_000 })
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
    expect(out).toMatchObject({ code: 'EACCES', syscall: 'open', address: a })
    expect(out.message).toContain('dialout')
  })
  if (!canDrop) console.log('serial EACCES test skipped: needs root, setpriv (util-linux) and a built dist/')
})

describe('serial port listing', () => {
  it('reads USB vendor and product ids from sysfs when udev is not there', async () => {
    const root = mkdtempSync(join(tmpdir(), 'onbus-sysfs-'))
    const usb = join(root, 'devices/pci0000:00/usb1/1-1')
    const intf = join(usb, '1-1:1.0/ttyUSB0')
    mkdirSync(intf, { recursive: true })
    writeFileSync(join(usb, 'idVendor'), '0403\n')
    writeFileSync(join(usb, 'idProduct'), '6001\n')
    writeFileSync(join(usb, 'manufacturer'), 'FTDI\n')
    writeFileSync(join(usb, 'product'), 'FT232R USB UART\n')
    writeFileSync(join(usb, 'serial'), 'A50285BI\n')
    mkdirSync(join(root, 'class/tty/ttyUSB0'), { recursive: true })
    symlinkSync(join(usb, '1-1:1.0'), join(root, 'class/tty/ttyUSB0/device'))
    mkdirSync(join(root, 'class/tty/tty0'), { recursive: true }) // virtual: no device
    const ports = await listFromSysfs(root, '/dev')
    rmSync(root, { recursive: true, force: true })
    expect(ports).toEqual([
      { path: '/dev/ttyUSB0', vendorId: '0403', productId: '6001', manufacturer: 'FTDI', serialNumber: 'A50285BI', locationId: '1-1', pnpId: 'usb-FTDI_FT232R_USB_UART_A50285BI' },
    ])
  })

  it('listSerialPorts() answers on this machine (serialport, or sysfs without udev)', async () => {
    const ports = await listSerialPorts()
    expect(Array.isArray(ports)).toBe(true)
    for (const p of ports) expect(typeof p.path).toBe('string')
  })
})
