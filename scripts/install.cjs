#!/usr/bin/env node
// Install step: use a prebuild (or an existing local build) when one loads;
// otherwise compile the addon from source with cmake-js. Nothing is downloaded:
// cmake-js builds against the headers of the `node-api-headers` package.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')
if (process.env.ONBUS_BUILD_FROM_SOURCE !== '1') {
  try {
    require('node-gyp-build')(root)
    process.exit(0)
  } catch {
    // no usable prebuild: fall through and build
  }
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js')
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: root, stdio: 'inherit' })
process.exit(r.status ?? 1)
