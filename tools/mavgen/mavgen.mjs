#!/usr/bin/env node
// mavgen: generates typed TypeScript for MAVLink dialects from the official XML
// message definitions.
//
//   node tools/mavgen/mavgen.mjs                      # the repo's own set
//   node tools/mavgen/mavgen.mjs --out DIR [--runtime SPEC] my_dialect.xml ...
//   node tools/mavgen/mavgen.mjs --check              # exit 1 if the committed output is stale
//
// One TypeScript module per XML file (includes become imports), so a dialect
// that includes common.xml shares common's message classes instead of copying
// them. The wire rules follow the MAVLink serialization spec:
//  - wire order: the non-extension fields sorted by the size of their base type,
//    largest first, stable for equal sizes; extension fields (after
//    <extensions/>) follow in XML order, unsorted;
//  - CRC_EXTRA: X.25 CRC over "NAME " then, for each non-extension field in
//    wire order, "type " "name " and (for arrays) the array length as one byte,
//    folded to a byte as (crc & 0xff) ^ (crc >> 8). uint8_t_mavlink_version
//    counts as uint8_t.
import { readFileSync, writeFileSync, mkdirSync, existsSync, readdirSync } from 'node:fs'
import { dirname, resolve, basename, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseXml } from './xml.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const REPO = resolve(HERE, '../..')
/**
 * The official MAVLink XML definitions. They are not copied into this repo:
 * the build reads them from the project's shared data (`../shared/data/...`
 * beside the checkout) or from `ONBUS_MAVLINK_DEFINITIONS`; the generated
 * TypeScript in lib/mavlink/generated is committed, so nothing else needs them.
 */
export const DEFINITIONS_DIR = process.env.ONBUS_MAVLINK_DEFINITIONS
  ? resolve(process.env.ONBUS_MAVLINK_DEFINITIONS)
  : resolve(REPO, '..', 'shared', 'data', 'mavlink', 'message_definitions', 'v1.0')
/** True when the official definitions are reachable (the generator and its tests need them). */
export const HAVE_DEFINITIONS = existsSync(join(DEFINITIONS_DIR, 'common.xml'))
/** What the repo generates by default, into lib/mavlink/generated. */
export const DEFAULT_INPUTS = ['common.xml', 'ardupilotmega.xml', 'test.xml'].map((f) => join(DEFINITIONS_DIR, f))
export const DEFAULT_OUT = join(REPO, 'lib', 'mavlink', 'generated')
export const DEFAULT_RUNTIME = '../codec.js'

const TYPE_SIZE = {
  char: 1,
  int8_t: 1,
  uint8_t: 1,
  uint8_t_mavlink_version: 1,
  int16_t: 2,
  uint16_t: 2,
  int32_t: 4,
  uint32_t: 4,
  float: 4,
  int64_t: 8,
  uint64_t: 8,
  double: 8,
}

/** Names the message base class uses; a field may not take them. */
const RESERVED_FIELD_NAMES = new Set(['constructor', 'toObject', 'toJSON', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'])

// ---------------------------------------------------------------- CRC

/** X.25 (CRC-16/MCRF4XX) as MAVLink uses it. */
export function x25(bytes, crc = 0xffff) {
  for (const b of bytes) {
    let tmp = (b ^ (crc & 0xff)) & 0xff
    tmp = (tmp ^ (tmp << 4)) & 0xff
    crc = ((crc >> 8) ^ (tmp << 8) ^ (tmp << 3) ^ (tmp >> 4)) & 0xffff
  }
  return crc
}

const ascii = (s) => Array.from(s, (c) => c.charCodeAt(0))

/** CRC_EXTRA of a message (fields in wire order). */
export function crcExtra(msg) {
  let crc = x25(ascii(msg.name + ' '))
  for (const f of msg.wireFields) {
    if (f.extension) continue
    crc = x25(ascii((f.baseType === 'uint8_t_mavlink_version' ? 'uint8_t' : f.baseType) + ' '), crc)
    crc = x25(ascii(f.name + ' '), crc)
    if (f.arrayLength) crc = x25([f.arrayLength], crc)
  }
  return (crc & 0xff) ^ (crc >> 8)
}

// ---------------------------------------------------------------- model

function childText(el, name) {
  const c = el.children.find((k) => k.name === name)
  return c ? c.text : undefined
}

function parseIntValue(raw, where) {
  const s = raw.trim()
  let v
  if (/^0x[0-9a-f]+$/i.test(s)) v = parseInt(s, 16)
  else if (/^0b[01]+$/i.test(s)) v = parseInt(s.slice(2), 2)
  else if (/^\d+\*\*\d+$/.test(s)) {
    const [b, e] = s.split('**').map(Number)
    v = b ** e
  } else if (/^-?\d+$/.test(s)) v = parseInt(s, 10)
  else throw new Error(`${where}: cannot read the value '${raw}'`)
  if (!Number.isSafeInteger(v)) throw new Error(`${where}: value ${raw} is beyond 2^53`)
  return v
}

function notes(el) {
  const out = {}
  const dep = el.children.find((k) => k.name === 'deprecated' || k.name === 'superseded')
  if (dep) {
    const by = dep.attrs.replaced_by ? ` Replaced by ${dep.attrs.replaced_by}.` : ''
    out.deprecated = `${dep.name === 'superseded' ? 'Superseded' : 'Deprecated'} since ${dep.attrs.since ?? '?'}.${by} ${dep.text.trim()}`.trim()
  }
  if (el.children.some((k) => k.name === 'wip')) out.wip = true
  return out
}

/** Reads one definition file into the generator's model. */
export function readDefinition(path) {
  const root = parseXml(readFileSync(path, 'utf8'))
  if (root.name !== 'mavlink') throw new Error(`${path}: root element is <${root.name}>, expected <mavlink>`)
  const file = {
    path,
    module: basename(path, '.xml').toLowerCase().replace(/[^a-z0-9_]/g, '_'),
    includes: [],
    version: undefined,
    enums: [],
    messages: [],
  }
  for (const el of root.children) {
    if (el.name === 'include') {
      // beside the including file first, then the official set, so
      // a user's dialect can include common.xml without copying it
      const name = el.text.trim()
      const local = resolve(dirname(path), name)
      file.includes.push(existsSync(local) || !existsSync(join(DEFINITIONS_DIR, name)) ? local : join(DEFINITIONS_DIR, name))
    }
    else if (el.name === 'version') file.version = parseIntValue(el.text, `${path}: <version>`)
    else if (el.name === 'enums') {
      for (const e of el.children.filter((k) => k.name === 'enum')) {
        const en = {
          name: e.attrs.name,
          bitmask: e.attrs.bitmask === 'true',
          description: childText(e, 'description'),
          ...notes(e),
          entries: [],
        }
        let next = 0
        for (const k of e.children.filter((c) => c.name === 'entry')) {
          const value = k.attrs.value !== undefined ? parseIntValue(k.attrs.value, `${path}:${k.line} ${k.attrs.name}`) : next
          next = value + 1
          const params = k.children
            .filter((c) => c.name === 'param')
            .map((p) => ({ index: Number(p.attrs.index), label: p.attrs.label, units: p.attrs.units, text: p.text.trim(), reserved: p.attrs.reserved === 'true' }))
          en.entries.push({ name: k.attrs.name, value, description: childText(k, 'description'), params, ...notes(k), file: path })
        }
        file.enums.push(en)
      }
    } else if (el.name === 'messages') {
      for (const m of el.children.filter((k) => k.name === 'message')) {
        const msg = {
          id: parseIntValue(m.attrs.id, `${path}:${m.line} message id`),
          name: m.attrs.name,
          description: childText(m, 'description'),
          ...notes(m),
          fields: [],
          file: path,
        }
        let extension = false
        for (const f of m.children) {
          if (f.name === 'extensions') extension = true
          else if (f.name === 'field') {
            const t = /^([a-z0-9_]+)(?:\[(\d+)\])?$/.exec(f.attrs.type)
            if (!t || !(t[1] in TYPE_SIZE)) throw new Error(`${path}:${f.line} ${msg.name}.${f.attrs.name}: unknown type '${f.attrs.type}'`)
            const arrayLength = t[2] ? Number(t[2]) : 0
            if (t[2] && (arrayLength < 1 || arrayLength > 255)) throw new Error(`${path}:${f.line}: bad array length`)
            msg.fields.push({
              name: f.attrs.name,
              baseType: t[1],
              arrayLength,
              size: TYPE_SIZE[t[1]] * (arrayLength || 1),
              enum: f.attrs.enum,
              bitmaskField: f.attrs.display === 'bitmask',
              units: f.attrs.units,
              description: f.text.trim(),
              extension,
            })
          }
        }
        layout(msg)
        file.messages.push(msg)
      }
    }
  }
  return file
}

/** Wire order, offsets, lengths and CRC_EXTRA of a message. */
function layout(msg) {
  const base = msg.fields.filter((f) => !f.extension)
  const ext = msg.fields.filter((f) => f.extension)
  // Array.prototype.sort is stable, which the spec's ordering needs.
  base.sort((a, b) => TYPE_SIZE[b.baseType] - TYPE_SIZE[a.baseType])
  msg.wireFields = [...base, ...ext]
  let off = 0
  for (const f of msg.wireFields) {
    f.offset = off
    off += f.size
  }
  msg.minLength = base.reduce((s, f) => s + f.size, 0)
  msg.maxLength = off
  if (msg.maxLength > 255) throw new Error(`${msg.file}: ${msg.name} payload is ${msg.maxLength} bytes (> 255)`)
  msg.crcExtra = crcExtra(msg)
}

/** Loads the given files and everything they include. */
export function loadDefinitions(paths) {
  const files = new Map()
  const visit = (p, chain) => {
    const abs = resolve(p)
    if (chain.includes(abs)) throw new Error(`include cycle: ${[...chain, abs].map((x) => basename(x)).join(' -> ')}`)
    if (files.has(abs)) return files.get(abs)
    if (!existsSync(abs)) throw new Error(`definition not found: ${abs}${chain.length ? ` (included from ${chain[chain.length - 1]})` : ''}`)
    const f = readDefinition(abs)
    files.set(abs, f)
    f.includeFiles = f.includes.map((inc) => visit(inc, [...chain, abs]))
    return f
  }
  const roots = paths.map((p) => visit(p, []))
  const modules = new Map()
  for (const f of files.values()) {
    const other = modules.get(f.module)
    if (other) throw new Error(`two definition files map to the module name '${f.module}': ${other.path} and ${f.path}`)
    modules.set(f.module, f)
  }
  for (const f of files.values()) resolveFile(f)
  return { files, roots }
}

/** Transitive include closure in depth-first order, the file itself last. */
function closure(f, seen = new Set(), out = []) {
  if (seen.has(f)) return out
  seen.add(f)
  for (const inc of f.includeFiles) closure(inc, seen, out)
  out.push(f)
  return out
}

/**
 * Decides, per file, which enums it emits itself and which it re-exports from
 * an include. A file emits an enum when it defines entries for it, or when two
 * of its includes export different (extended) versions of it: the module then
 * holds the merged one, so `export *` never meets two different bindings.
 */
function resolveFile(f) {
  if (f.visible) return
  for (const inc of f.includeFiles) resolveFile(inc)
  const visible = new Map() // enum name -> { owner: file, entries }
  const conflicts = new Set()
  for (const inc of f.includeFiles) {
    for (const [name, info] of inc.visible) {
      const cur = visible.get(name)
      if (!cur) visible.set(name, info)
      else if (cur.owner !== info.owner) conflicts.add(name)
    }
  }
  f.localEnums = []
  const own = new Map(f.enums.map((e) => [e.name, e]))
  for (const name of new Set([...conflicts, ...own.keys()])) {
    // merged definition: what the includes see, then this file's entries
    let head
    const entries = []
    const byName = new Map()
    const add = (e) => {
      const prev = byName.get(e.name)
      if (prev) {
        if (prev.value !== e.value) throw new Error(`${f.path}: enum entry ${e.name} has two values (${prev.value} in ${prev.file}, ${e.value} in ${e.file})`)
        return
      }
      byName.set(e.name, e)
      entries.push(e)
    }
    for (const inc of f.includeFiles) {
      const info = inc.visible.get(name)
      if (!info) continue
      head ??= info.def
      info.entries.forEach(add)
    }
    const mine = own.get(name)
    if (mine) {
      head ??= mine
      mine.entries.forEach(add)
    }
    const def = { ...head, bitmask: head.bitmask || Boolean(mine?.bitmask), entries }
    const info = { owner: f, entries, def }
    visible.set(name, info)
    f.localEnums.push(info)
  }
  f.visible = visible
  const all = closure(f)
  f.version = all.slice().reverse().find((x) => x.version !== undefined)?.version ?? 0
  // duplicate message ids/names within the dialect
  const ids = new Map()
  const names = new Map()
  for (const file of all) {
    for (const m of file.messages) {
      const a = ids.get(m.id)
      if (a && a !== m) throw new Error(`message id ${m.id} is defined twice: ${a.name} (${a.file}) and ${m.name} (${m.file})`)
      const b = names.get(m.name)
      if (b && b !== m) throw new Error(`message ${m.name} is defined twice: ${b.file} and ${m.file}`)
      ids.set(m.id, m)
      names.set(m.name, m)
    }
  }
}

// ---------------------------------------------------------------- emit

export function className(msgName) {
  const s = msgName
    .toLowerCase()
    .split('_')
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('')
  return /^[0-9]/.test(s) ? `M${s}` : s
}

function doc(lines, indent = '') {
  const text = lines
    .filter((l) => l !== undefined && l !== null && String(l).trim() !== '')
    .map((l) => String(l).replace(/\s+/g, ' ').trim().replace(/\*\//g, '*\\/'))
  if (text.length === 0) return ''
  if (text.length === 1) return `${indent}/** ${text[0]} */\n`
  return `${indent}/**\n${text.map((t) => `${indent} * ${t}`).join('\n')}\n${indent} */\n`
}

const SCALAR_TS = {
  char: 'string',
  int8_t: 'number',
  uint8_t: 'number',
  uint8_t_mavlink_version: 'number',
  int16_t: 'number',
  uint16_t: 'number',
  int32_t: 'number',
  uint32_t: 'number',
  float: 'number',
  double: 'number',
  int64_t: 'bigint',
  uint64_t: 'bigint',
}
const ARRAY_TS = {
  int8_t: 'Int8Array',
  uint8_t: 'Uint8Array',
  int16_t: 'Int16Array',
  uint16_t: 'Uint16Array',
  int32_t: 'Int32Array',
  uint32_t: 'Uint32Array',
  float: 'Float32Array',
  double: 'Float64Array',
  int64_t: 'BigInt64Array',
  uint64_t: 'BigUint64Array',
}
const DV = {
  int8_t: 'Int8',
  uint8_t: 'Uint8',
  uint8_t_mavlink_version: 'Uint8',
  int16_t: 'Int16',
  uint16_t: 'Uint16',
  int32_t: 'Int32',
  uint32_t: 'Uint32',
  float: 'Float32',
  double: 'Float64',
  int64_t: 'BigInt64',
  uint64_t: 'BigUint64',
}
// array reader/writer helpers in the runtime, by base type
const ARR_FN = {
  int8_t: 'I8',
  uint8_t: 'U8',
  int16_t: 'I16',
  uint16_t: 'U16',
  int32_t: 'I32',
  uint32_t: 'U32',
  float: 'F32',
  double: 'F64',
  int64_t: 'I64',
  uint64_t: 'U64',
}

function fieldTypes(f, file) {
  const enumInfo = f.enum ? file.visible.get(f.enum) : undefined
  const isBitmask = f.bitmaskField || (enumInfo && enumInfo.def.bitmask)
  if (f.arrayLength) {
    if (f.baseType === 'char') return { get: 'string', set: 'string' }
    const t = ARRAY_TS[f.baseType]
    const el = f.baseType.endsWith('64_t') ? 'bigint | number' : 'number'
    return { get: t, set: `ArrayLike<${el}>` }
  }
  if (f.baseType.endsWith('64_t')) return { get: 'bigint', set: 'bigint | number' }
  if (enumInfo && !isBitmask && enumInfo.entries.length > 0) return { get: f.enum, set: f.enum, enumRef: f.enum }
  return { get: SCALAR_TS[f.baseType], set: SCALAR_TS[f.baseType] }
}

// scalar readers in the runtime, by type
const READ = {
  int8_t: 'i8',
  int16_t: 'i16',
  uint16_t: 'u16',
  int32_t: 'i32',
  uint32_t: 'u32',
  float: 'f32',
  double: 'f64',
  int64_t: 'i64',
  uint64_t: 'u64',
}

function getterExpr(f) {
  const o = f.offset
  if (f.arrayLength) {
    if (f.baseType === 'char') return `rStr(this._b, ${o}, ${f.arrayLength})`
    return `r${ARR_FN[f.baseType]}(this._b, ${o}, ${f.arrayLength})`
  }
  if (f.baseType === 'char') return `String.fromCharCode(this._b[${o}])`
  if (f.baseType === 'uint8_t' || f.baseType === 'uint8_t_mavlink_version') return `this._b[${o}]`
  return `${READ[f.baseType]}(this._b, ${o})`
}

function setterStmt(f) {
  const o = f.offset === 0 ? 'o' : `o + ${f.offset}`
  const d = `d.${f.name}`
  if (f.arrayLength) {
    if (f.baseType === 'char') return `wStr(v, ${o}, ${f.arrayLength}, ${d})`
    return `w${ARR_FN[f.baseType]}(v, ${o}, ${f.arrayLength}, ${d})`
  }
  if (f.baseType === 'char') return `v.setUint8(${o}, wChar(${d}))`
  if (f.baseType.endsWith('64_t')) return `v.set${DV[f.baseType]}(${o}, big(${d}), true)`
  if (f.baseType === 'uint8_t_mavlink_version') return `v.setUint8(${o}, ${d} ?? MAVLINK_VERSION)`
  const dv = DV[f.baseType]
  return TYPE_SIZE[f.baseType] === 1 ? `v.set${dv}(${o}, ${d} ?? 0)` : `v.set${dv}(${o}, ${d} ?? 0, true)`
}

function enumValueName(e) {
  return /^[A-Za-z_$][\w$]*$/.test(e.name) ? e.name : JSON.stringify(e.name)
}

function emitEnum(info) {
  const e = info.def
  let s = doc([e.description, e.bitmask ? 'Bitmask: values combine with `|`.' : undefined, e.wip ? 'Work in progress: may change.' : undefined, e.deprecated ? `@deprecated ${e.deprecated}` : undefined])
  s += `export const ${e.name} = {\n`
  for (const en of info.entries) {
    const params = en.params
      .filter((p) => p.text || p.label)
      .map((p) => `Param ${p.index}${p.label ? ` (${p.label}${p.units ? `, ${p.units}` : ''})` : ''}: ${p.reserved ? 'reserved' : p.text}`)
    s += doc([en.description, ...params, en.wip ? 'Work in progress: may change.' : undefined, en.deprecated ? `@deprecated ${en.deprecated}` : undefined], '  ')
    s += `  ${enumValueName(en)}: ${en.value},\n`
  }
  s += `} as const\n`
  s += info.entries.length > 0 ? `export type ${e.name} = (typeof ${e.name})[keyof typeof ${e.name}]\n` : `export type ${e.name} = number\n`
  return s
}

function emitMessage(m, file, usedEnums) {
  const cls = className(m.name)
  for (const f of m.fields) {
    if (!/^[A-Za-z_$][\w$]*$/.test(f.name)) throw new Error(`${m.file}: ${m.name}.${f.name} is not a valid identifier`)
    if (f.name.startsWith('_') || RESERVED_FIELD_NAMES.has(f.name)) throw new Error(`${m.file}: ${m.name}.${f.name} collides with a name the runtime reserves`)
  }
  const types = new Map(m.fields.map((f) => [f, fieldTypes(f, file)]))
  for (const t of types.values()) if (t.enumRef) usedEnums.add(t.enumRef)
  const fieldDoc = (f) => [
    f.description,
    f.units ? `Units: ${f.units}.` : undefined,
    f.enum ? `Values: {@link ${f.enum}}${f.bitmaskField || file.visible.get(f.enum)?.def.bitmask ? ' (bitmask)' : ''}.` : f.bitmaskField ? 'Bitmask.' : undefined,
    f.extension ? 'MAVLink 2 extension field (0 when the sender did not send it).' : undefined,
    f.baseType === 'uint8_t_mavlink_version' ? `Filled with MAVLINK_VERSION (${file.version}) when not given.` : undefined,
  ]
  let s = ''
  // data interface: base fields required, extensions optional
  s += doc([`Fields of {@link ${cls}} for encoding. Extension fields may be left out (they are sent as 0).`])
  s += `export interface ${cls}Data {\n`
  for (const f of m.fields) {
    const optional = f.extension || f.baseType === 'uint8_t_mavlink_version'
    s += doc(fieldDoc(f), '  ')
    s += `  ${f.name}${optional ? '?' : ''}: ${types.get(f).set}\n`
  }
  s += '}\n\n'
  s += doc([
    `${m.name} (id ${m.id}). ${m.description ?? ''}`,
    m.wip ? 'Work in progress: may change.' : undefined,
    m.deprecated ? `@deprecated ${m.deprecated}` : undefined,
    'Fields are read from the payload when touched. Arrays are returned as fresh typed-array copies, `char[]` fields as strings (UTF-8, up to the first NUL).',
  ])
  s += `export class ${cls} extends MavlinkMessage {\n`
  s += `  static readonly def: MessageDef<${cls}, ${cls}Data> = {\n`
  s += `    id: ${m.id},\n    name: '${m.name}',\n    crcExtra: ${m.crcExtra},\n    minLength: ${m.minLength},\n    maxLength: ${m.maxLength},\n`
  s += '    fields: [\n'
  for (const f of m.wireFields) {
    const enumInfo = f.enum ? file.visible.get(f.enum) : undefined
    const bitmask = f.bitmaskField || Boolean(enumInfo?.def.bitmask)
    const args = [`'${f.name}'`, `'${f.baseType}'`, f.offset, f.arrayLength, f.extension ? 1 : 0]
    if (f.enum || bitmask) args.push(f.enum ? `'${f.enum}'` : 'undefined', bitmask ? 1 : 0)
    s += `      F(${args.join(', ')}),\n`
  }
  s += '    ],\n'
  s += `    decode: (v) => new ${cls}(v),\n`
  s += `    encode: (d, v, o) => {\n`
  for (const f of m.wireFields) s += `      ${setterStmt(f)}\n`
  s += '    },\n  }\n'
  for (const f of m.wireFields) {
    s += '\n'
    s += doc(fieldDoc(f), '  ')
    const cast = types.get(f).enumRef ? ` as ${types.get(f).enumRef}` : ''
    s += `  get ${f.name}(): ${types.get(f).get} {\n    return ${getterExpr(f)}${cast}\n  }\n`
  }
  s += '}\n'
  return s
}

/** Emits the TypeScript module of one definition file. */
export function emitModule(f, runtime = DEFAULT_RUNTIME) {
  const used = new Set()
  const body = []
  for (const info of f.localEnums) body.push(emitEnum(info))
  const msgs = f.messages.slice().sort((a, b) => a.id - b.id)
  const classes = new Set()
  for (const m of msgs) {
    const cls = className(m.name)
    if (classes.has(cls) || classes.has(`${cls}Data`)) throw new Error(`${f.path}: class name ${cls} of ${m.name} collides with another generated name`)
    classes.add(cls)
    classes.add(`${cls}Data`)
    body.push(emitMessage(m, f, used))
  }
  for (const info of f.localEnums) {
    if (classes.has(info.def.name)) throw new Error(`${f.path}: enum ${info.def.name} collides with a message class name`)
  }
  const helpers = new Set(['MavlinkMessage', 'F', 'defineDialect'])
  const code = body.join('\n')
  for (const h of ['rStr', 'wStr', 'wChar', 'big', ...Object.values(READ), ...Object.values(ARR_FN).flatMap((a) => [`r${a}`, `w${a}`])]) {
    if (new RegExp(`\\b${h}\\(`).test(code)) helpers.add(h)
  }
  const imports = new Map() // module -> Set(enum)
  for (const name of used) {
    const info = f.visible.get(name)
    if (info.owner === f) continue
    if (!imports.has(info.owner.module)) imports.set(info.owner.module, new Set())
    imports.get(info.owner.module).add(name)
  }
  let s = `// Generated by tools/mavgen/mavgen.mjs from ${basename(f.path)}. Do not edit: change the XML or the generator.\n`
  s += '/* eslint-disable */\n'
  s += `import { ${[...helpers].sort().join(', ')} } from '${runtime}'\n`
  s += `import type { Dialect, MessageDef } from '${runtime}'\n`
  for (const inc of f.includeFiles) s += `import { DIALECT as ${inc.module}_DIALECT } from './${inc.module}.js'\n`
  for (const [mod, names] of [...imports].sort()) s += `import type { ${[...names].sort().join(', ')} } from './${mod}.js'\n`
  for (const inc of f.includeFiles) s += `export * from './${inc.module}.js'\n`
  s += '\n'
  s += doc([`MAVLink protocol version this dialect declares (the value of HEARTBEAT.mavlink_version).`])
  s += `export const MAVLINK_VERSION = ${f.version}\n\n`
  s += body.join('\n')
  s += '\n'
  s += doc([`The ${basename(f.path, '.xml')} dialect: its own messages and those of the files it includes.`])
  s += `export const DIALECT: Dialect = defineDialect('${basename(f.path, '.xml')}', MAVLINK_VERSION, [\n`
  for (const m of msgs) s += `  ${className(m.name)}.def,\n`
  s += `], [${f.includeFiles.map((i) => `${i.module}_DIALECT`).join(', ')}])\n`
  return s
}

/**
 * Generates the modules for `inputs` (and their includes).
 * @returns {Map<string, string>} file name -> contents
 */
export function generate(inputs = DEFAULT_INPUTS, { runtime = DEFAULT_RUNTIME } = {}) {
  const { files } = loadDefinitions(inputs)
  const out = new Map()
  for (const f of files.values()) out.set(`${f.module}.ts`, emitModule(f, runtime))
  return out
}

function main(argv) {
  let out = DEFAULT_OUT
  let runtime
  let check = false
  let ifDefinitions = false
  const inputs = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--out') out = resolve(argv[++i])
    else if (a === '--runtime') runtime = argv[++i]
    else if (a === '--check') check = true
    else if (a === '--if-definitions') ifDefinitions = true
    else if (a === '-h' || a === '--help') {
      console.log('usage: mavgen [--out DIR] [--runtime MODULE] [--check] [--if-definitions] [definition.xml ...]')
      return 0
    } else inputs.push(resolve(a))
  }
  if (!inputs.length && !HAVE_DEFINITIONS) {
    const where = `the official MAVLink definitions are not at ${DEFINITIONS_DIR} (set ONBUS_MAVLINK_DEFINITIONS to their v1.0 folder)`
    if (ifDefinitions) {
      console.warn(`mavgen: ${where}; keeping the committed lib/mavlink/generated`)
      return 0
    }
    throw new Error(where)
  }
  // Output outside this repo imports the runtime from the installed package.
  runtime ??= relative(REPO, out).startsWith('..') ? 'onbus/mavlink' : DEFAULT_RUNTIME
  const files = generate(inputs.length ? inputs : DEFAULT_INPUTS, { runtime })
  if (check) {
    const stale = [...files].filter(([name, text]) => !existsSync(join(out, name)) || readFileSync(join(out, name), 'utf8') !== text)
    const extra = existsSync(out) ? readdirSync(out).filter((n) => n.endsWith('.ts') && !files.has(n)) : []
    if (stale.length || extra.length) {
      console.error(`mavgen: ${out} is stale: ${[...stale.map(([n]) => n), ...extra.map((n) => `${n} (not generated)`)].join(', ')}`)
      return 1
    }
    console.log(`mavgen: ${files.size} modules up to date`)
    return 0
  }
  mkdirSync(out, { recursive: true })
  let written = 0
  for (const [name, text] of files) {
    const p = join(out, name)
    if (existsSync(p) && readFileSync(p, 'utf8') === text) continue
    writeFileSync(p, text)
    written++
  }
  console.log(`mavgen: ${files.size} modules in ${relative(process.cwd(), out) || '.'} (${written} written)`)
  return 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (err) {
    console.error(`mavgen: ${err.message}`)
    process.exitCode = 1
  }
}
