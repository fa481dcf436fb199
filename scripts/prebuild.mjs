#!/usr/bin/env node
// Builds the portable prebuilds that `npm pack` ships, in node-gyp-build's
// layout (see docs/ARM.md for why not prebuildify):
//
//   prebuilds/linux-x64/onbus.napi.glibc.node         host compiler
//   prebuilds/linux-arm64/onbus.napi.glibc.node       aarch64-linux-gnu-g++
//   prebuilds/linux-arm/onbus.napi.armv7.glibc.node   arm-linux-gnueabihf-g++
//
// Each one is built by cmake-js into its own build-<target>/ directory with
// libstdc++ linked statically and glibc symbols pinned to GLIBC_2.31
// (cmake/glibc-compat.cmake), then stripped. scripts/check-glibc.mjs verifies them.
//
//   npm run prebuild                       all three
//   npm run prebuild -- arm64 armv7        some (also: ONBUS_PREBUILD_TARGETS=arm64,armv7)
//
// Cross compilers: apt-get install g++-aarch64-linux-gnu g++-arm-linux-gnueabihf
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)

export const TARGETS = {
  x64: {
    dir: 'linux-x64',
    file: 'onbus.napi.glibc.node',
    arch: 'x64',
    triple: null, // the host toolchain (this script builds x64 only on an x64 host)
    machine: 62, // EM_X86_64
  },
  arm64: {
    dir: 'linux-arm64',
    file: 'onbus.napi.glibc.node',
    arch: 'arm64',
    triple: 'aarch64-linux-gnu',
    toolchain: 'cmake/toolchains/aarch64-linux-gnu.cmake',
    machine: 183, // EM_AARCH64
  },
  armv7: {
    dir: 'linux-arm',
    // node-gyp-build matches the armv7 tag against process.config.variables.arm_version
    // ('7' in Node's official linux-armv7l build).
    file: 'onbus.napi.armv7.glibc.node',
    arch: 'arm',
    triple: 'arm-linux-gnueabihf',
    toolchain: 'cmake/toolchains/arm-linux-gnueabihf.cmake',
    machine: 40, // EM_ARM
  },
}

/** Where the prebuild of `name` lands, relative to the package root. */
export function prebuildPath(name) {
  const t = TARGETS[name]
  return join('prebuilds', t.dir, t.file)
}

// npm runs a script named "prebuild" before every `npm run build` (pre-hook).
// Only an explicit `npm run prebuild` should cross-compile: the npm process's
// title (its /proc cmdline) says which script was asked for.
function invokedAsBuildHook() {
  if (process.env.npm_lifecycle_event !== 'prebuild') return false
  let pid = process.ppid
  for (let depth = 0; depth < 4 && pid > 1; depth++) {
    let cmd, stat
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      return false
    }
    const words = cmd.trim().split(/\s+/)
    if (/(^|\/)npm(-cli\.js)?$/.test(words[0]) || words.some((w) => /npm-cli\.js$/.test(w))) {
      return !words.includes('prebuild')
    }
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  }
  return false
}

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status ?? r.signal}`)
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

function elfMachine(file) {
  const b = readFileSync(file)
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`)
  return b.readUInt16LE(18)
}

export function buildTarget(name) {
  const t = TARGETS[name]
  if (!t) throw new Error(`unknown target ${name} (one of ${Object.keys(TARGETS).join(', ')})`)
  if (name === 'x64' && process.arch !== 'x64') throw new Error('the x64 prebuild is built on an x64 host')
  const prefix = t.triple ? `${t.triple}-` : ''
  if (!have(`${prefix}g++`)) {
    throw new Error(`${prefix}g++ not found: apt-get install g++-${t.triple ?? ''}`.replace(/-$/, ''))
  }
  const out = `build-${name}`
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js')
  const args = [cmakeJs, 'compile', '--out', out, '--arch', t.arch, '--parallel', '2',
    '--CDONBUS_STATIC_LIBSTDCXX=ON', '--CDONBUS_GLIBC_COMPAT=ON']
  if (t.toolchain) args.push(`--CDCMAKE_TOOLCHAIN_FILE=${join(root, t.toolchain)}`)
  const started = Date.now()
  run(process.execPath, args)
  const built = join(root, out, 'Release', 'onbus.node')
  if (elfMachine(built) !== t.machine) throw new Error(`${built}: ELF machine ${elfMachine(built)}, expected ${t.machine}`)

  const destDir = join(root, 'prebuilds', t.dir)
  rmSync(destDir, { recursive: true, force: true })
  mkdirSync(destDir, { recursive: true })
  const dest = join(destDir, t.file)
  copyFileSync(built, dest)
  run(`${prefix}strip`, ['--strip-unneeded', dest])
  console.log(`prebuild ${name}: ${dest} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  return dest
}

function main() {
  if (invokedAsBuildHook()) {
    console.log('prebuild: skipped (npm runs "prebuild" before "build"; run `npm run prebuild` to cross-compile)')
    return
  }
  const fromArgs = process.argv.slice(2).filter((a) => !a.startsWith('-'))
  const fromEnv = (process.env.ONBUS_PREBUILD_TARGETS ?? '').split(',').filter(Boolean)
  const names = fromArgs.length ? fromArgs : fromEnv.length ? fromEnv : Object.keys(TARGETS)
  for (const n of names) buildTarget(n)
  const all = existsSync(join(root, 'prebuilds'))
    ? readdirSync(join(root, 'prebuilds')).flatMap((d) => readdirSync(join(root, 'prebuilds', d)).map((f) => `prebuilds/${d}/${f}`))
    : []
  console.log(`prebuilds: ${all.join(', ')}`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (err) {
    console.error(`prebuild: ${err.message}`)
    process.exit(1)
  }
}
