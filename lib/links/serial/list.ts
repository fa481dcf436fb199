/**
 * Lists serial ports with their USB vendor and product ids.
 */
import { readdir, readFile, readlink, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { loadBinding, type SerialPortInfo } from './binding.js'

/**
 * Lists the serial ports of this machine, as `serialport` reports them
 * (which asks udev). Where udev's tool is absent (minimal containers, some
 * companion-computer images), the same information is read from sysfs.
 * @example
 * const fc = (await listSerialPorts()).find((p) => p.vendorId === '26ac') // a Pixhawk
 */
export async function listSerialPorts(): Promise<SerialPortInfo[]> {
  try {
    const b = await loadBinding()
    return await b.list()
  } catch (err) {
    const code = (err as { code?: string }).code
    // No udevadm (ENOENT on spawn) or no serialport package: sysfs has it.
    if (code === 'ENOENT' || code === 'ERR_ONBUS_SERIALPORT_MISSING') return listFromSysfs()
    throw err
  }
}

async function readTrim(p: string): Promise<string | undefined> {
  try {
    return (await readFile(p, 'utf8')).trim() || undefined
  } catch {
    return undefined
  }
}

/**
 * Reads /sys/class/tty: ports with a device behind them (USB, platform
 * UARTs), skipping the legacy 8250 placeholders that have no hardware.
 * @internal exported for tests (`root` points at a fake sysfs)
 */
export async function listFromSysfs(root = '/sys', devRoot = '/dev'): Promise<SerialPortInfo[]> {
  const classDir = join(root, 'class/tty')
  let names: string[]
  try {
    names = await readdir(classDir)
  } catch {
    return []
  }
  const out: SerialPortInfo[] = []
  for (const name of names.sort()) {
    const dev = join(classDir, name, 'device')
    let devPath: string
    try {
      devPath = await realpath(dev)
    } catch {
      continue // virtual tty (console, pty)
    }
    let driver = ''
    try {
      driver = (await readlink(join(dev, 'driver'))).split('/').pop() ?? ''
    } catch {
      // no driver link
    }
    if (driver === 'serial8250' && !(await readTrim(join(classDir, name, 'device/resources')))) {
      // ttyS placeholders without a UART behind them are not ports
      const irq = await readTrim(join(classDir, name, 'irq'))
      if (!irq || irq === '0') continue
    }
    const info: SerialPortInfo = { path: join(devRoot, name) }
    // Walk up from the interface to the USB device holding idVendor.
    let p = devPath
    for (let i = 0; i < 6 && p.length > 1; i++) {
      const vid = await readTrim(join(p, 'idVendor'))
      if (vid) {
        info.vendorId = vid
        info.productId = await readTrim(join(p, 'idProduct'))
        info.manufacturer = await readTrim(join(p, 'manufacturer'))
        info.serialNumber = await readTrim(join(p, 'serial'))
        info.locationId = p.split('/').pop()
        info.pnpId = `usb-${info.manufacturer ?? ''}_${await readTrim(join(p, 'product')) ?? ''}_${info.serialNumber ?? ''}`.replace(/\s+/g, '_')
        break
      }
      p = join(p, '..')
    }
    out.push(info)
  }
  return out
}
