/**
 * Loads the `serialport` package (its native binding opens and configures
 * ports; onbus's reactor then reads the port's descriptor). Loaded lazily, so
 * that programs without serial links do not need it, and typed here by the
 * few calls onbus makes, so that onbus compiles without it.
 */
import { onbusError } from '../../errors.js'

/** What `serialport`'s binding reports about a port. */
export interface SerialPortInfo {
  path: string
  manufacturer?: string
  serialNumber?: string
  pnpId?: string
  locationId?: string
  /** USB vendor id, 4 hex digits (e.g. '0403' for FTDI). */
  vendorId?: string
  /** USB product id, 4 hex digits. */
  productId?: string
}

/** @internal the subset of @serialport/bindings-cpp's LinuxPortBinding onbus uses */
export interface PortBinding {
  fd: number | null
  close(): Promise<void>
  update(o: { baudRate: number }): Promise<void>
  set(o: { brk?: boolean; cts?: boolean; dsr?: boolean; dtr?: boolean; rts?: boolean; lowLatency?: boolean }): Promise<void>
  get(): Promise<{ cts: boolean; dsr: boolean; dcd: boolean; lowLatency?: boolean }>
  getBaudRate(): Promise<{ baudRate: number }>
  flush(): Promise<void>
}

/** @internal */
export interface Binding {
  list(): Promise<SerialPortInfo[]>
  open(o: Record<string, unknown>): Promise<PortBinding>
}

let cached: Promise<Binding> | null = null

/** @internal */
export function loadBinding(): Promise<Binding> {
  cached ??= (async () => {
    const name = 'serialport'
    let mod: { SerialPort?: { binding?: Binding } }
    try {
      mod = (await import(name)) as typeof mod
    } catch (err) {
      cached = null
      const e = onbusError('ERR_ONBUS_SERIALPORT_MISSING', `Serial links need the 'serialport' package (npm install serialport): ${(err as Error).message}`)
      throw e
    }
    const b = mod.SerialPort?.binding
    if (!b) throw onbusError('ERR_ONBUS_SERIALPORT_MISSING', "The 'serialport' package has no SerialPort.binding (version 10 or later is needed)")
    return b
  })()
  return cached
}
