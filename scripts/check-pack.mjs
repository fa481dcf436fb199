#!/usr/bin/env node
// The published package carries its prebuilds and needs no compiler:
//   1. `npm pack` the repo; the tarball must hold every prebuild in prebuilds/;
//   2. install it into a fresh temp project whose PATH has node, npm and sh but
//      no cc/c++/gcc/g++/cmake/make/ninja, with onbus's install script allowed
//      (npm 11 skips it otherwise) so it runs as on a user's machine;
//   3. import('onbus') there and check that the addon mapped into the process is
//      the x64 prebuild, and that nothing was built (no node_modules/onbus/build);
//   4. where .arm/<arch>/ is set up (scripts/qemu.mjs), do the same under QEMU with
//      the official arm64 / armv7l Node: node-gyp-build must pick
//      prebuilds/linux-arm64/ and prebuilds/linux-arm/*.armv7.* on its own.
//
//   node scripts/check-pack.mjs [--keep]      (run `npm run prebuild` first)
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TARGETS, prebuildPath } from './prebuild.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const keep = process.argv.includes('--keep')

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout ?? ''}${r.stderr ?? ''}`)
  }
  return r.stdout ?? ''
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}

const results = []
function check(name, ok, detail = '') {
  results.push(ok)
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`)
}

// Prints the .node files mapped into this process: the addon that actually loaded.
const PROBE = `
const { readFileSync } = require('node:fs')
import('onbus').then((m) => {
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\\n')
  const nodes = [...new Set(maps.map((l) => l.split(/\\s+/)[5]).filter((p) => p && p.endsWith('.node')))]
  console.log(JSON.stringify({ arch: process.arch, version: process.version, exports: Object.keys(m).length, nodes }))
}).catch((e) => { console.error(e); process.exit(1) })
`

function main() {
  const expected = Object.keys(TARGETS).map((t) => prebuildPath(t))
  const missing = expected.filter((p) => !existsSync(join(root, p)))
  if (missing.length) {
    console.error(`check-pack: missing ${missing.join(', ')} (run \`npm run prebuild\` first)`)
    return 1
  }

  const work = mkdtempSync(join(tmpdir(), 'onbus-pack-'))
  try {
    // 1. pack (runs `prepare`: dist/ is compiled)
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root }))[0]
    const tarball = join(work, packed.filename)
    const files = packed.files.map((f) => f.path)
    for (const p of expected) check(`tarball holds ${p}`, files.includes(p))
    check('tarball holds dist/lib/index.js', files.includes('dist/lib/index.js'))
    console.log(`     ${packed.filename}: ${(packed.size / 1024).toFixed(0)} KiB packed, ${packed.entryCount} files`)

    // 2. a project whose PATH has no compiler
    const bin = join(work, 'bin')
    mkdirSync(bin)
    for (const tool of ['node', 'npm', 'npx', 'sh']) {
      const p = tool === 'node' ? process.execPath : which(tool)
      if (p) symlinkSync(p, join(bin, tool))
    }
    const env = { ...process.env, PATH: bin, CC: '/nonexistent/cc', CXX: '/nonexistent/c++' }
    delete env.ONBUS_ADDON
    delete env.PREBUILDS_ONLY
    delete env.ONBUS_BUILD_FROM_SOURCE
    const found = ['cc', 'c++', 'gcc', 'g++', 'cmake', 'make', 'ninja'].filter(
      (t) => spawnSync('sh', ['-c', `command -v ${t}`], { env }).status === 0,
    )
    check('no compiler or cmake on the install PATH', found.length === 0, found.join(' '))

    const proj = join(work, 'app')
    mkdirSync(proj)
    writeFileSync(
      join(proj, 'package.json'),
      JSON.stringify({ name: 'onbus-pack-check', private: true, version: '1.0.0', allowScripts: { onbus: true } }, null, 2),
    )
    const started = Date.now()
    const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball], {
      cwd: proj, env, encoding: 'utf8',
    })
    const log = `${inst.stdout}${inst.stderr}`
    check('npm install <tarball> succeeds without a compiler', inst.status === 0, `${((Date.now() - started) / 1000).toFixed(1)} s`)
    if (inst.status !== 0) console.log(log)
    const pkgDir = join(proj, 'node_modules', 'onbus')
    check("onbus's install script ran (and found the prebuild, since it exited 0)", /> node scripts\/install\.cjs/.test(log))
    check('nothing was compiled (no node_modules/onbus/build)', !existsSync(join(pkgDir, 'build')))

    // 3. the host loads the x64 prebuild
    const probe = (node, extraEnv = {}) => {
      const r = spawnSync(node, ['-e', PROBE], { cwd: proj, env: { ...env, ...extraEnv }, encoding: 'utf8' })
      if (r.status !== 0) return { error: `${r.stdout}${r.stderr}` }
      return JSON.parse(r.stdout.trim().split('\n').pop())
    }
    const host = probe(process.execPath)
    const want = join(pkgDir, prebuildPath(process.arch === 'arm' ? 'armv7' : process.arch))
    check(`node ${process.version} ${process.arch} loads ${prebuildPath(process.arch)}`, host.nodes?.length === 1 && host.nodes[0] === want,
      host.error ?? host.nodes?.join(' '))

    // 4. the ARM Nodes under QEMU pick their own prebuilds
    for (const arch of ['arm64', 'armv7']) {
      const wrapper = join(root, '.arm', arch, 'bin', 'node')
      if (!existsSync(wrapper)) {
        console.log(`skip ${arch} under QEMU: .arm/${arch} not set up (node scripts/qemu.mjs setup ${arch})`)
        continue
      }
      const r = probe(wrapper)
      const w = join(pkgDir, prebuildPath(arch))
      check(`${arch} Node under QEMU (${r.version ?? '?'}) loads ${prebuildPath(arch)}`, r.nodes?.length === 1 && r.nodes[0] === w,
        r.error ?? r.nodes?.join(' '))
    }
  } finally {
    if (keep) console.log(`kept ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
  const failed = results.filter((ok) => !ok).length
  console.log(`check-pack: ${results.length - failed} passed, ${failed} failed`)
  return failed ? 1 : 0
}

try {
  process.exit(main())
} catch (err) {
  console.error(`check-pack: ${err.message}`)
  process.exit(1)
}
