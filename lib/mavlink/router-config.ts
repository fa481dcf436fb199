/**
 * Configuration of the MAVLink router: a plain JSON-serialisable object, with
 * a JSON Schema (draft 2020-12 subset that ajv checks) so that the daemon's
 * configuration file can embed it and be validated as a whole.
 *
 * @example
 * const config: MavlinkRouterConfig = {
 *   endpoints: [
 *     { kind: 'uart', name: 'fc', path: '/dev/ttyAMA0', baud: 921600 },
 *     { kind: 'udp-server', name: 'gcs', address: '0.0.0.0', port: 14550 },
 *     { kind: 'tcp-server', name: 'tools', port: 5760, filters: { out: { denyMsgIds: [245] } } },
 *   ],
 * }
 */
import AjvModule from 'ajv'
import { invalidArgValue } from '../errors.js'

/** Which frames an endpoint accepts (`in`) or is sent (`out`). Allow lists win over nothing; deny lists apply after them. */
export interface MavlinkRouterFilterRule {
  /** Only these message ids pass. */
  allowMsgIds?: number[]
  /** These message ids never pass. */
  denyMsgIds?: number[]
  /** Only frames from these source system ids pass. */
  allowSrcSystems?: number[]
  /** Frames from these source system ids never pass. */
  denySrcSystems?: number[]
  /** Only frames from these source component ids pass. */
  allowSrcComponents?: number[]
  /** Frames from these source component ids never pass. */
  denySrcComponents?: number[]
}

export interface MavlinkRouterFilters {
  /** Applied to frames arriving on the endpoint (a refused frame is not routed nor learned from). */
  in?: MavlinkRouterFilterRule
  /** Applied to frames about to be sent to the endpoint. */
  out?: MavlinkRouterFilterRule
}

interface EndpointBase {
  /** Unique name (stats, events). Default: kind + address/port or path. */
  name?: string
  filters?: MavlinkRouterFilters
}

/** Binds `address:port`; sends to every peer it has heard from (up to 16, mavlink-router's "server" mode). */
export interface UdpServerEndpointConfig extends EndpointBase {
  kind: 'udp-server'
  /** Default '127.0.0.1': nothing listens on a public address unless configured. */
  address?: string
  port: number
}

/** Sends to and receives from a fixed remote `address:port`. */
export interface UdpClientEndpointConfig extends EndpointBase {
  kind: 'udp-client'
  address: string
  port: number
}

/** Listens on `address:port`; every accepted connection is an endpoint (named `<name>/<ip>:<port>`). */
export interface TcpServerEndpointConfig extends EndpointBase {
  kind: 'tcp-server'
  /** Default '127.0.0.1'. */
  address?: string
  port: number
}

/** Connects to `address:port` and reconnects with exponential backoff. */
export interface TcpClientEndpointConfig extends EndpointBase {
  kind: 'tcp-client'
  address: string
  port: number
  /** First retry delay (default 100 ms), doubling up to `reconnectMaxMs` (default 5000 ms). */
  reconnectMinMs?: number
  reconnectMaxMs?: number
}

/** A serial port or PTY, opened raw (no echo, no line discipline) at `baud`; reopened with backoff if it goes away. */
export interface UartEndpointConfig extends EndpointBase {
  kind: 'uart'
  path: string
  /** A standard rate (9600 … 4000000); omitted: left as configured (with `open: 'serialport'`, default 115200). */
  baud?: number
  /** Hardware flow control (RTS/CTS). Default false. */
  rtscts?: boolean
  /**
   * Who opens the port: 'native' (default: the router, with termios) or
   * 'serialport' (the `serialport` package, as serial links do: exclusive
   * lock, any rate the driver accepts; the router reads a duplicate of its
   * descriptor, and reopens it through serialport after a hang-up).
   */
  open?: 'native' | 'serialport'
  reconnectMinMs?: number
  reconnectMaxMs?: number
}

export type MavlinkRouterEndpointConfig =
  | UdpServerEndpointConfig
  | UdpClientEndpointConfig
  | TcpServerEndpointConfig
  | TcpClientEndpointConfig
  | UartEndpointConfig

export interface MavlinkRouterConfig {
  /** Message set whose CRC_EXTRA and target fields the router checks (default 'common'; 'ardupilotmega' includes common). Ids outside it are forwarded as broadcasts. */
  dialect?: 'common' | 'ardupilotmega'
  endpoints: MavlinkRouterEndpointConfig[]
  /**
   * Busy-poll: the reactor thread spins this many microseconds in
   * epoll_wait(0) before sleeping (default 0). Trades a core for lower,
   * steadier latency; the largest request of any link or router wins.
   */
  busyPollUs?: number
}

const idList = { type: 'array', items: { type: 'integer', minimum: 0, maximum: 16777215 }, uniqueItems: true }
const byteList = { type: 'array', items: { type: 'integer', minimum: 0, maximum: 255 }, uniqueItems: true }
const filterRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    allowMsgIds: idList,
    denyMsgIds: idList,
    allowSrcSystems: byteList,
    denySrcSystems: byteList,
    allowSrcComponents: byteList,
    denySrcComponents: byteList,
  },
}
const common = {
  name: { type: 'string', minLength: 1, maxLength: 128 },
  filters: { type: 'object', additionalProperties: false, properties: { in: filterRule, out: filterRule } },
}
const port = { type: 'integer', minimum: 0, maximum: 65535 }
const address = { type: 'string', minLength: 1 }
const reconnect = {
  reconnectMinMs: { type: 'integer', minimum: 1, maximum: 3600000 },
  reconnectMaxMs: { type: 'integer', minimum: 1, maximum: 3600000 },
}

function endpointSchema(kind: string, props: Record<string, unknown>, required: string[]): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['kind', ...required],
    properties: { kind: { const: kind }, ...common, ...props },
  }
}

/**
 * JSON Schema of {@link MavlinkRouterConfig}. The daemon embeds it under its
 * own key; `$id` lets a schema reference it.
 */
export const mavlinkRouterConfigSchema = {
  $id: 'https://onbus.dev/schema/mavlink-router.json',
  title: 'onbus MAVLink router',
  type: 'object',
  additionalProperties: false,
  required: ['endpoints'],
  properties: {
    dialect: { enum: ['common', 'ardupilotmega'] },
    busyPollUs: { type: 'integer', minimum: 0, maximum: 1000000 },
    endpoints: {
      type: 'array',
      items: {
        oneOf: [
          endpointSchema('udp-server', { address, port }, ['port']),
          endpointSchema('udp-client', { address, port }, ['address', 'port']),
          endpointSchema('tcp-server', { address, port }, ['port']),
          endpointSchema('tcp-client', { address, port, ...reconnect }, ['address', 'port']),
          endpointSchema(
            'uart',
            { path: { type: 'string', minLength: 1 }, baud: { type: 'integer', minimum: 50, maximum: 4000000 }, rtscts: { type: 'boolean' }, open: { enum: ['native', 'serialport'] }, ...reconnect },
            ['path'],
          ),
        ],
      },
    },
  },
} as const

type AjvClass = typeof AjvModule.default
const Ajv = ((AjvModule as unknown as { default?: AjvClass }).default ?? AjvModule) as AjvClass
let validator: ReturnType<InstanceType<AjvClass>['compile']> | undefined

/** The default name of an endpoint that has none. */
export function endpointDefaultName(e: MavlinkRouterEndpointConfig): string {
  if (e.kind === 'uart') return `uart:${e.path}`
  return `${e.kind}:${e.address ?? '127.0.0.1'}:${e.port}`
}

/**
 * Checks `config` against {@link mavlinkRouterConfigSchema} and the rules a
 * schema cannot state (unique names). Throws a `TypeError` with code
 * `ERR_INVALID_ARG_VALUE` naming every problem; returns the config typed.
 */
export function validateMavlinkRouterConfig(config: unknown, name = 'config'): MavlinkRouterConfig {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(mavlinkRouterConfigSchema)
  if (!validator(config)) {
    const problems = (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`)
    throw invalidArgValue(name, config, `is not a valid MAVLink router configuration (${problems.slice(0, 6).join('; ')})`)
  }
  const c = config as MavlinkRouterConfig
  const seen = new Set<string>()
  for (const e of c.endpoints) {
    const n = e.name ?? endpointDefaultName(e)
    if (seen.has(n)) throw invalidArgValue(name, config, `has two endpoints named '${n}'`)
    seen.add(n)
    if ((e.kind === 'tcp-client' || e.kind === 'uart') && e.reconnectMinMs !== undefined && e.reconnectMaxMs !== undefined && e.reconnectMinMs > e.reconnectMaxMs) {
      throw invalidArgValue(name, config, `has reconnectMinMs > reconnectMaxMs on '${n}'`)
    }
  }
  return c
}
