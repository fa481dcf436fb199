/**
 * Serial links (UARTs: flight controller telemetry, GPS, rangefinders).
 *
 * The port is opened and configured by the `serialport` package's native
 * binding (any baud rate, data bits, parity, stop bits, flow control, Linux
 * low-latency mode); onbus then reads a duplicate of the port's descriptor on
 * its own reactor, so serial data gets the same ring, framing, batches and
 * receive stamps as every other link. A tty has no kernel receive timestamp:
 * each chunk is stamped by the I/O thread when it woke for it (flagged
 * `kernelStamp: false`), which is within microseconds of the kernel's wake-up
 * and far earlier than a JavaScript callback would see it.
 *
 * A USB adapter that is unplugged reads as a hang-up: the link emits
 * `'disconnect'` (reason `ERR_ONBUS_DEVICE_GONE`) and, by default, reopens the
 * same path with backoff until the device is back.
 */
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { StreamKind, type NativeStreamSocket } from '../../../bindings/index.js'
import { errnoException, invalidArgValue, onbusError } from '../../errors.js'
import { validateBool, validateInt, validateString } from '../../util/validate.js'
import { StreamLink, validateStreamOptions, type ClientLinkOptions, type Endpoint } from '../stream/link.js'
import { loadBinding, type PortBinding } from './binding.js'

const ERRNO: Record<string, number> = { ENOENT: -2, EACCES: -13, EBUSY: -16, ENOTTY: -25, EIO: -5, EPERM: -1, ENXIO: -6, ENODEV: -19 }

/** Options of {@link createSerialLink}. */
export interface SerialLinkOptions extends ClientLinkOptions {
  /** Device path, e.g. '/dev/ttyUSB0', '/dev/serial/by-id/usb-...' (stable across replugs), '/dev/ttyAMA0'. */
  path: string
  /** Any rate the UART supports (non-standard rates go through termios2). */
  baudRate: number
  dataBits?: 5 | 6 | 7 | 8
  stopBits?: 1 | 1.5 | 2
  parity?: 'none' | 'even' | 'odd'
  /** RTS/CTS hardware flow control (default false). */
  rtscts?: boolean
  /** XON/XOFF software flow control (default false). */
  xon?: boolean
  xoff?: boolean
  /** Drop DTR on close (default true). */
  hupcl?: boolean
  /** Exclusive access (TIOCEXCL; default true). */
  exclusive?: boolean
  /**
   * Linux low-latency mode (ASYNC_LOW_LATENCY: the driver hands bytes over at
   * once instead of batching them for ~1–16 ms). Default true; devices that do
   * not support it (PTYs, some drivers) keep working, `lowLatency` says which.
   */
  lowLatency?: boolean
}

interface SerialTarget {
  port: PortBinding
  lowLatency: boolean
}

class SerialEndpoint implements Endpoint<SerialTarget> {
  readonly kind = StreamKind.Tty
  readonly openSyscall = 'open'
  constructor(private readonly o: SerialLinkOptions) {}

  async resolve(signal: AbortSignal): Promise<SerialTarget> {
    const path = this.o.path
    try {
      // access() gives the kernel's own answer (ENOENT, EACCES) with a code;
      // the binding's open error is only text.
      await access(path, constants.R_OK | constants.W_OK)
    } catch (err) {
      throw this.openError((err as { code?: string }).code ?? 'EIO')
    }
    const binding = await loadBinding()
    let port: PortBinding
    try {
      port = await binding.open({
        path,
        baudRate: this.o.baudRate,
        dataBits: this.o.dataBits ?? 8,
        stopBits: this.o.stopBits ?? 1,
        parity: this.o.parity ?? 'none',
        rtscts: this.o.rtscts ?? false,
        xon: this.o.xon ?? false,
        xoff: this.o.xoff ?? false,
        hupcl: this.o.hupcl ?? true,
        lock: this.o.exclusive ?? true,
      })
    } catch (err) {
      throw this.openError(codeFromMessage((err as Error).message), (err as Error).message)
    }
    if (signal.aborted) {
      await port.close().catch(() => {})
      throw onbusError('ERR_ONBUS_ABORTED', 'open aborted')
    }
    let lowLatency = false
    if (this.o.lowLatency ?? true) {
      try {
        await port.set({ lowLatency: true })
        lowLatency = true
      } catch {
        // PTYs and some drivers have no low-latency flag: not an error.
      }
    }
    return { port, lowLatency }
  }

  private openError(code: string, detail?: string): Error {
    const errno = ERRNO[code] ?? -5
    const hint =
      code === 'EACCES' || code === 'EPERM'
        ? `no permission to open the port: add the user to the 'dialout' group (sudo usermod -aG dialout $USER, then log in again)`
        : code === 'EBUSY'
          ? 'the port is open in another process (exclusive access)'
          : detail
    return errnoException(errno, 'open', this.o.path, undefined, hint)
  }

  open(sock: NativeStreamSocket, t: SerialTarget): number {
    if (t.port.fd === null) return -9
    // A duplicate: the binding keeps its descriptor for line settings.
    return sock.adopt(t.port.fd, StreamKind.Tty, true)
  }

  connect(): number {
    return 0
  }

  where(): { address?: string; port?: number } {
    return { address: this.o.path }
  }

  endReason(): Error {
    return onbusError('ERR_ONBUS_DEVICE_GONE', `Serial device ${this.o.path} hung up (unplugged, or the other end closed)`)
  }

  release(t: SerialTarget): void {
    t.port.close().catch(() => {})
  }
}

function codeFromMessage(m: string): string {
  if (/No such file|ENOENT/i.test(m)) return 'ENOENT'
  if (/Permission denied|EACCES/i.test(m)) return 'EACCES'
  if (/busy|Cannot lock/i.test(m)) return 'EBUSY'
  if (/Inappropriate ioctl|ENOTTY/i.test(m)) return 'ENOTTY'
  return 'EIO'
}

/**
 * A serial link: a {@link StreamLink} plus line control. Create with
 * {@link createSerialLink}.
 */
export class SerialLink extends StreamLink {
  readonly path: string
  /** Shared with the endpoint: a baud rate change applies to reopens too. */
  private readonly opts: SerialLinkOptions

  /** @internal */
  constructor(opts: SerialLinkOptions) {
    super({ reconnect: { initialDelay: 250, maxDelay: 2000 }, ...opts }, new SerialEndpoint(opts))
    this.path = opts.path
    this.opts = opts
  }

  private port(): PortBinding {
    const t = this.target as SerialTarget | undefined
    if (!t || this.state !== 'connected') throw onbusError('ERR_ONBUS_NOT_CONNECTED', `Serial port ${this.path} is not open`)
    return t.port
  }

  /** Whether low-latency mode is on for the open port. */
  get lowLatency(): boolean {
    return (this.target as SerialTarget | undefined)?.lowLatency ?? false
  }

  /** Changes the baud rate of the open port (kept for reopens too). */
  async setBaudRate(baudRate: number): Promise<void> {
    validateInt(baudRate, 'baudRate', 1, 100_000_000)
    await this.port().update({ baudRate })
    this.opts.baudRate = baudRate
  }

  /** The baud rate the port is set to now. */
  async getBaudRate(): Promise<number> {
    return (await this.port().getBaudRate()).baudRate
  }

  /** Sets modem control lines (DTR, RTS) or a break. */
  async setSignals(s: { dtr?: boolean; rts?: boolean; brk?: boolean }): Promise<void> {
    await this.port().set(s)
  }

  /** Reads modem status lines. */
  async getSignals(): Promise<{ cts: boolean; dsr: boolean; dcd: boolean }> {
    const r = await this.port().get()
    return { cts: r.cts, dsr: r.dsr, dcd: r.dcd }
  }
}

/**
 * Opens a serial port. Opening is asynchronous: `'connect'` follows, or —
 * since serial links reconnect by default — `'reconnecting'` with the reason
 * (ENOENT naming the path for a missing device, EACCES mentioning the
 * `dialout` group). Pass `reconnect: false` to get `'error'` instead.
 * @example
 * const fc = createSerialLink({ path: '/dev/serial/by-id/usb-ArduPilot_Pixhawk', baudRate: 921600 })
 * fc.onBatch((b) => mavlink.parse(b))
 */
export function createSerialLink(opts: SerialLinkOptions): SerialLink {
  validateStreamOptions(opts)
  validateString(opts.path, 'options.path')
  validateInt(opts.baudRate, 'options.baudRate', 1, 100_000_000)
  if (opts.dataBits !== undefined && ![5, 6, 7, 8].includes(opts.dataBits)) throw invalidArgValue('options.dataBits', opts.dataBits, 'must be 5, 6, 7 or 8')
  if (opts.stopBits !== undefined && ![1, 1.5, 2].includes(opts.stopBits)) throw invalidArgValue('options.stopBits', opts.stopBits, 'must be 1, 1.5 or 2')
  if (opts.parity !== undefined && !['none', 'even', 'odd'].includes(opts.parity)) throw invalidArgValue('options.parity', opts.parity, "must be 'none', 'even' or 'odd'")
  for (const k of ['rtscts', 'xon', 'xoff', 'hupcl', 'exclusive', 'lowLatency'] as const) if (opts[k] !== undefined) validateBool(opts[k], `options.${k}`)
  return new SerialLink({ ...opts })
}
