import { badPort, invalidArgType, outOfRange } from '../errors.js'

export function validateInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number') throw invalidArgType(name, 'of type number', v)
  if (!Number.isInteger(v) || v < min || v > max) throw outOfRange(name, `an integer >= ${min} and <= ${max}`, v)
  return v
}

export function validatePort(v: unknown, name = 'Port', allowZero = true): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) throw badPort(name, v)
  return v
}

export function validateString(v: unknown, name: string): string {
  if (typeof v !== 'string') throw invalidArgType(name, 'of type string', v)
  return v
}

export function validateBool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalidArgType(name, 'of type boolean', v)
  return v
}

export function validateFunction(v: unknown, name: string): (...args: never[]) => unknown {
  if (typeof v !== 'function') throw invalidArgType(name, 'of type function', v)
  return v as (...args: never[]) => unknown
}

export function nextPow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}
