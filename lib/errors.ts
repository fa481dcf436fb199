/**
 * Node-shaped errors: `code`, `errno`, `syscall`, and `address`/`port` where
 * they apply, built the way Node's own `dgram`/`net` build them
 * (`exceptionWithHostPort`), so callers can branch on `err.code` exactly as
 * they do for Node's sockets.
 */
import { getSystemErrorName } from 'node:util'
import { strerror } from './util/strerror.js'

/** An error from a system call. `errno` is negative, as in Node. */
export interface OnbusSystemError extends Error {
  code: string
  errno: number
  syscall: string
  address?: string
  port?: number
  /** For batched sends: the index of the datagram the error belongs to. */
  index?: number
}

/**
 * Builds a Node-shaped system error from a negative errno.
 * @example
 * throw errnoException(-98, 'bind', '127.0.0.1', 9000) // EADDRINUSE
 */
export function errnoException(errno: number, syscall: string, address?: string, port?: number, extra?: string): OnbusSystemError {
  const neg = errno > 0 ? -errno : errno
  let code: string
  try {
    code = getSystemErrorName(neg)
  } catch {
    code = `Unknown system error ${neg}`
  }
  let where = ''
  if (address !== undefined) where = port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`
  const detail = strerror(-neg)
  const message = `${syscall} ${code}${where}${detail ? ` (${detail})` : ''}${extra ? `: ${extra}` : ''}`
  const err = new Error(message) as OnbusSystemError
  err.code = code
  err.errno = neg
  err.syscall = syscall
  if (address !== undefined) err.address = address
  if (port !== undefined && port > 0) err.port = port
  Error.captureStackTrace?.(err, errnoException)
  return err
}

type ErrCtor = TypeErrorConstructor | RangeErrorConstructor | ErrorConstructor

function codeError(Base: ErrCtor, code: string, message: string): Error & { code: string } {
  const err = new Base(message) as Error & { code: string }
  err.code = code
  return err
}

/** `TypeError` with code `ERR_INVALID_ARG_TYPE`. */
export function invalidArgType(name: string, expected: string, actual: unknown): TypeError & { code: string } {
  return codeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${describe(actual)}`) as TypeError & { code: string }
}

/** `TypeError` with code `ERR_INVALID_ARG_VALUE`. */
export function invalidArgValue(name: string, value: unknown, reason: string): TypeError & { code: string } {
  return codeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' ${reason}. Received ${describe(value)}`) as TypeError & { code: string }
}

/** `RangeError` with code `ERR_OUT_OF_RANGE`. */
export function outOfRange(name: string, range: string, actual: unknown): RangeError & { code: string } {
  return codeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be ${range}. Received ${describe(actual)}`) as RangeError & { code: string }
}

/** `RangeError` with code `ERR_SOCKET_BAD_PORT`. */
export function badPort(name: string, port: unknown): RangeError & { code: string } {
  return codeError(RangeError, 'ERR_SOCKET_BAD_PORT', `${name} should be >= 0 and < 65536. Received ${describe(port)}.`) as RangeError & { code: string }
}

/** `Error` with code `ERR_SOCKET_DGRAM_NOT_RUNNING` (the link is closed). */
export function notRunning(): Error & { code: string } {
  return codeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running: the link is closed')
}

/** `Error` with a given `ERR_*` code. */
export function onbusError(code: string, message: string): Error & { code: string } {
  return codeError(Error, code, message)
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'undefined'
  if (typeof v === 'string') return `type string ('${v.length > 28 ? v.slice(0, 25) + '...' : v}')`
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `type ${typeof v} (${String(v)})`
  if (typeof v === 'function') return `function ${(v as { name?: string }).name || '<anonymous>'}`
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'Object'}`
  return `type ${typeof v}`
}
