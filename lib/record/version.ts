import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

function versionOf(candidates: string[]): string {
  for (const c of candidates) {
    try {
      const v = (require(c) as { name?: string; version?: string })
      if (v.version) return v.version
    } catch {
      // try the next location (source tree vs dist/)
    }
  }
  return 'unknown'
}

/** onbus's version (package.json, from lib/ or dist/lib/). */
export const onbusVersion = versionOf(['../../package.json', '../../../package.json'])
/** @mcap/core's identifier with its version (`mcap-ts-<version>`). */
export { LIBRARY_IDENTIFIER as mcapLibrary } from '@mcap/core'
