/**
 * Human text for the errno values onbus reports most; Node's own
 * `getSystemErrorMap()` provides the rest where it exists.
 */
import * as util from 'node:util'

const map: Map<number, [string, string]> | undefined = (util as unknown as { getSystemErrorMap?: () => Map<number, [string, string]> }).getSystemErrorMap?.()

/** Description of a positive errno, or '' if unknown. */
export function strerror(errno: number): string {
  const e = map?.get(-Math.abs(errno))
  return e ? e[1] : ''
}
