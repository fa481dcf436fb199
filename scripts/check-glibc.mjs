#!/usr/bin/env node
// Fails when a prebuild would not load on the oldest supported systems:
//   - any GLIBC_ symbol version above 2.31 (Debian 11, Ubuntu 20.04, JetPack 5);
//   - any dependency on libstdc++ (GLIBCXX_, CXXABI_, libstdc++.so.6 NEEDED):
//     prebuilds link it statically;
//   - any libgcc_s version above GCC_7.0.0 (every supported system's is newer);
//   - an ELF machine that does not match its prebuilds/<platform>-<arch>/ folder;
//   - on 32-bit ARM, anything beyond ARMv7-A / VFPv3-D16 / hard-float.
//
//   node scripts/check-glibc.mjs                 every prebuilds/*/*.node
//   node scripts/check-glibc.mjs a.node b.node   these files
//
// Reads the version-needs section with `readelf -V` (binutils; readelf reads
// every architecture's ELF, so no cross binutils are needed).
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const MAX = { GLIBC: process.env.ONBUS_GLIBC_MAX ?? '2.31', GCC: '7.0.0' }
const MACHINES = { 62: 'x64', 183: 'arm64', 40: 'arm' }

const cmp = (a, b) => {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d) return d
  }
  return 0
}

function readelf(args, file) {
  return execFileSync('readelf', ['-W', ...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 })
}

export function checkFile(file) {
  const problems = []
  const b = readFileSync(file)
  if (b.readUInt32BE(0) !== 0x7f454c46) return { problems: ['not an ELF file'], summary: '' }
  const arch = MACHINES[b.readUInt16LE(18)] ?? `machine ${b.readUInt16LE(18)}`
  const folder = basename(dirname(file))
  if (folder.startsWith('linux-') && folder !== `linux-${arch}`) problems.push(`ELF is ${arch} but sits in ${folder}/`)

  if (arch === 'arm') {
    // The armv7 prebuild must not need more than Node's linux-armv7l baseline:
    // ARMv7-A, VFPv3-D16, hard-float calling convention.
    const attrs = readelf(['-A'], file)
    const tag = (name) => new RegExp(`${name}: (.*)`).exec(attrs)?.[1]?.trim() ?? '(none)'
    if (tag('Tag_CPU_arch') !== 'v7') problems.push(`Tag_CPU_arch ${tag('Tag_CPU_arch')}, expected v7`)
    if (!/^VFPv3-D16$|^VFPv2$/.test(tag('Tag_FP_arch'))) problems.push(`Tag_FP_arch ${tag('Tag_FP_arch')}, expected VFPv3-D16`)
    if (tag('Tag_ABI_VFP_args') !== 'VFP registers') problems.push(`not hard-float (Tag_ABI_VFP_args ${tag('Tag_ABI_VFP_args')})`)
  }

  const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
  if (needed.some((n) => n.startsWith('libstdc++'))) problems.push('links libstdc++.so dynamically')

  // Version needs: "Name: GLIBC_2.17  Flags: none  Version: 3"
  const versions = [...readelf(['-V'], file).matchAll(/Name: ([A-Z]+)_([0-9][0-9.]*)\s+Flags/g)].map((m) => [m[1], m[2]])
  // Which symbols need each version: "... UND pthread_create@GLIBC_2.17 (3)"
  const syms = readelf(['--dyn-syms'], file)
  const users = (tag) =>
    [...syms.matchAll(new RegExp(`\\sUND\\s+([^@\\s]+)@${tag.replace(/\./g, '\\.')}\\b`, 'g'))].map((m) => m[1])

  const maxOf = {}
  for (const [kind, v] of versions) {
    if (!maxOf[kind] || cmp(v, maxOf[kind]) > 0) maxOf[kind] = v
    const tag = `${kind}_${v}`
    if (kind === 'GLIBCXX' || kind === 'CXXABI') problems.push(`needs ${tag} (${users(tag).join(', ')})`)
    else if (MAX[kind] && cmp(v, MAX[kind]) > 0) problems.push(`needs ${tag} > ${kind}_${MAX[kind]} (${users(tag).join(', ')})`)
  }
  const summary = `${arch}; NEEDED ${needed.join(' ')}; newest ${Object.entries(maxOf).map(([k, v]) => `${k}_${v}`).join(' ')}`
  return { problems, summary }
}

function main() {
  let files = process.argv.slice(2)
  if (files.length === 0) {
    const dir = join(root, 'prebuilds')
    if (existsSync(dir)) {
      for (const d of readdirSync(dir)) {
        for (const f of readdirSync(join(dir, d))) if (f.endsWith('.node')) files.push(join(dir, d, f))
      }
    }
    if (files.length === 0) {
      console.error('check-glibc: no prebuilds/*/*.node (run `npm run prebuild` first)')
      process.exit(1)
    }
  }
  let failed = 0
  for (const f of files) {
    const { problems, summary } = checkFile(f)
    const name = relative(process.cwd(), f) || f
    if (problems.length) {
      failed++
      console.log(`FAIL ${name}: ${summary}`)
      for (const p of problems) console.log(`     ${p}`)
    } else {
      console.log(`ok   ${name}: ${summary}`)
    }
  }
  console.log(`check-glibc: ${files.length - failed} passed, ${failed} failed (floor GLIBC_${MAX.GLIBC}, no GLIBCXX/CXXABI)`)
  process.exit(failed ? 1 : 0)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
