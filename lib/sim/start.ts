/**
 * Starts a simulated autopilot on a transport with signing on by default:
 * the link, the port (whose parser verifies with the sim's signing state) and
 * the sim in one call. The CLI (lib/sim/cli.ts) is a thin wrapper of this.
 */
import { randomBytes } from 'node:crypto'
import { createUdpLink } from '../links/udp/link.js'
import { createSerialLink } from '../links/serial/link.js'
import { MavlinkSigning } from '../mavlink/signing.js'
import { StreamMavlinkPort, UdpMavlinkPort } from '../mavlink/services/js-port.js'
import type { JsPortBase } from '../mavlink/services/js-port.js'
import { SimAutopilot } from './autopilot.js'
import type { SimAutopilotOptions } from './autopilot.js'
import { createPtyPair } from './pty.js'
import { invalidArgValue } from '../errors.js'

/** Options of {@link startSimAutopilot}: one transport, plus the sim's own options. */
export interface StartSimOptions extends Omit<SimAutopilotOptions, 'signing'> {
  /** UDP: bind address (default 127.0.0.1, port 0) and an optional fixed peer (else it answers whoever sent a good frame). */
  udp?: { address?: string; port?: number; remote?: { address: string; port: number } }
  /** A socat PTY pair; the companion opens `RunningSim.pty`. */
  pty?: boolean
  /** A serial device. */
  serial?: { path: string; baudRate?: number }
  /**
   * 32-byte signing key. Default: a generated one (in `RunningSim.key`).
   * `null` turns signing off. `'setup'`: start unsigned and take the key from a
   * SETUP_SIGNING (serial/PTY only: the spec allows key setup only over a
   * secure link).
   */
  key?: Uint8Array | null | 'setup'
  /** Keep the signing timestamp across restarts in this file. */
  timestampFile?: string
}

/** A running simulator. */
export interface RunningSim {
  sim: SimAutopilot
  port: JsPortBase
  /** The signing key, when signing is on from the start. */
  key: Buffer | undefined
  /** The bound UDP address (UDP). */
  udp?: { address: string; family: 'IPv4' | 'IPv6'; port: number }
  /** The companion's side of the PTY pair (pty). */
  pty?: string
  /** Stops the sim and closes the link (and the PTY pair). */
  close(): Promise<void>
}

/**
 * @example
 * const { sim, udp, key, close } = await startSimAutopilot({ udp: { port: 14550 } })
 * // the companion signs with `key` and talks to udp.port
 */
export async function startSimAutopilot(options: StartSimOptions = {}): Promise<RunningSim> {
  const { udp, pty, serial, key: keyOpt, timestampFile, ...simOptions } = options
  if ([udp, pty, serial].filter((x) => x !== undefined && x !== false).length !== 1) throw invalidArgValue('options', options, 'needs exactly one of udp, pty, serial')
  const setup = keyOpt === 'setup'
  if (setup && udp) throw invalidArgValue('options.key', keyOpt, "is 'setup', which a UDP link cannot take (SETUP_SIGNING belongs on a secure link)")
  const key = keyOpt === null || setup ? undefined : Buffer.from(keyOpt ?? randomBytes(32))
  const signingKey = setup ? new Uint8Array(32) : key
  const signing = signingKey ? new MavlinkSigning(timestampFile !== undefined ? { key: signingKey, timestampFile } : { key: signingKey }) : undefined
  const parserOpts = signing ? { signing } : {}
  const closers: (() => void | Promise<void>)[] = []
  const running: Partial<RunningSim> = { key }
  try {
    let port: JsPortBase
    if (udp) {
      const link = createUdpLink({ address: udp.address ?? '127.0.0.1', port: udp.port ?? 0 })
      closers.push(() => new Promise<void>((r) => link.close(() => r())))
      port = new UdpMavlinkPort(link, { ...parserOpts, ...(udp.remote ? { remote: udp.remote, learnRemote: true } : {}) })
      running.udp = link.address()
    } else {
      let path: string
      if (serial) path = serial.path
      else {
        const pair = await createPtyPair()
        closers.push(() => pair.close())
        path = pair.sim
        running.pty = pair.companion
      }
      const link = createSerialLink({ path, baudRate: serial?.baudRate ?? 921600 })
      closers.push(() => {
        link.close()
      })
      await new Promise<void>((resolve, reject) => {
        link.once('connect', resolve)
        link.once('error', reject)
      })
      port = new StreamMavlinkPort(link, parserOpts)
    }
    const sim = new SimAutopilot(port, signing ? { ...simOptions, signing, acceptSetupSigning: setup } : simOptions)
    running.sim = sim
    running.port = port
    running.close = async () => {
      sim.close()
      signing?.clock.flush()
      for (const c of closers.reverse()) await c()
    }
    return running as RunningSim
  } catch (err) {
    for (const c of closers.reverse()) await c()
    throw err
  }
}
