/**
 * Loading a configuration: YAML or JSON text → a checked {@link OnbusConfig},
 * or a {@link ConfigError} listing every problem with file:line:column, the
 * key and what was expected. Nothing is opened here: the daemon starts only
 * from a configuration that passed.
 */
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { configSchema } from './schema.js'

/** A link kind as the configuration checker sees it (lib/daemon/kinds.ts has the rest). */
export interface KindSchema {
  /** JSON Schema of the link's options, `kind` included (additionalProperties false). */
  schema: object
  /** Set when this build lacks the kind's module: the file is refused with this reason. */
  unavailable?: string
  /** The schema describes the options without `kind` (a module's own schema, e.g. the MAVLink router's): `kind` is taken off before checking. */
  schemaWithoutKind?: boolean
}

export interface LinkConfig {
  kind: string
  [key: string]: unknown
}

export interface TopicFeedTarget {
  link: string
  port?: number
  address?: string
}

export interface TopicConfig {
  codec?: 'raw' | 'json' | 'mavlink' | 'video'
  type?: string
  qos: Record<string, unknown>
  from?: string[]
  to?: (string | TopicFeedTarget)[]
}

export interface ModuleConfig {
  command: string
  args?: string[]
  env?: Record<string, string>
  cwd?: string
  restart?: 'always' | 'on-failure' | 'never'
  restartDelayMs?: number
}

/** A checked configuration (see docs/CLI.md for the file format). */
export interface OnbusConfig {
  version?: 1
  ipc?: { dir?: string; enabled?: boolean }
  stats?: { topic?: string; intervalMs?: number }
  links?: Record<string, LinkConfig>
  topics?: Record<string, TopicConfig>
  modules?: Record<string, ModuleConfig>
  sim?: {
    lidar?: { address?: string; port: number; rpm?: number; returnMode?: 'strongest' | 'last' | 'dual' }
    autopilot?: { port: number; address?: string; systemId?: number; signing?: boolean; keyFile?: string; flavour?: 'px4' | 'ardupilot'; attitudeHz?: number; positionHz?: number }
    camera?: { port: number; address?: string; fps?: number; clip?: string }
  }
}

/** One problem in a configuration file. */
export interface ConfigIssue {
  file: string
  /** 1-based; 0 when the position is unknown. */
  line: number
  column: number
  /** Dotted path of the offending key (`links.lidar.port`), '' for the root. */
  path: string
  message: string
}

/** Thrown for a configuration that cannot be used; `issues` has every problem, `message` all of them, one per line. */
export class ConfigError extends Error {
  readonly code = 'ERR_ONBUS_CONFIG'
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
  }
}

/** `file:line:column: path: message`, the shape compilers use (editors jump to it). */
export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.column}` : i.file
  return `${where}: ${i.path === '' ? '(root)' : i.path}: ${i.message}`
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true })
const frameValidator = ajv.compile(configSchema)
const kindValidators = new WeakMap<object, ValidateFunction>()

function kindValidator(schema: object): ValidateFunction {
  let v = kindValidators.get(schema)
  if (!v) kindValidators.set(schema, (v = ajv.compile(schema)))
  return v
}

/** Reads and checks a configuration file (YAML, or JSON, which is YAML too). */
export function loadConfig(file: string, kinds: ReadonlyMap<string, KindSchema>): OnbusConfig {
  return parseConfig(readFileSync(file, 'utf8'), file, kinds)
}

/**
 * Checks configuration text. Throws {@link ConfigError}.
 * @example
 * const cfg = parseConfig(text, 'onbus.yaml', kindSchemas())
 */
export function parseConfig(text: string, file: string, kinds: ReadonlyMap<string, KindSchema>): OnbusConfig {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true })
  const issues: ConfigIssue[] = []
  const at = (offset: number | undefined): { line: number; column: number } => {
    if (offset === undefined) return { line: 0, column: 0 }
    const p = lc.linePos(offset)
    return { line: p.line, column: p.col }
  }
  for (const e of doc.errors) issues.push({ file, ...at(e.pos[0]), path: '', message: `syntax: ${e.message.split('\n')[0]}` })
  if (issues.length) throw new ConfigError(issues)
  const data: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {}
  const locate = (path: (string | number)[], key?: string) => at(offsetOf(doc, path, key))
  const push = (path: (string | number)[], message: string, key?: string) => {
    const issue = { file, ...locate(path, key), path: [...path, ...(key !== undefined ? [key] : [])].join('.'), message }
    // Schemas with alternatives can report the same problem once per alternative: once is enough.
    if (!issues.some((i) => i.path === issue.path && i.message === issue.message && i.line === issue.line && i.column === issue.column)) issues.push(issue)
  }

  if (!frameValidator(data)) for (const e of frameValidator.errors!) report(e, [], push)
  // Go on with what has the right shape, so that one run reports every problem.
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (!isObj(data)) throw new ConfigError(sortIssues(issues))
  const cfg = data as OnbusConfig
  const linksOk = isObj(cfg.links) && Object.values(cfg.links).every((l) => isObj(l) && typeof l.kind === 'string')
  const topicsOk = isObj(cfg.topics) && Object.values(cfg.topics).every((t) => isObj(t) && isObj(t.qos) && (t.from === undefined || Array.isArray(t.from)) && (t.to === undefined || Array.isArray(t.to)))
  if (!linksOk) cfg.links = undefined
  if (!topicsOk) cfg.topics = undefined

  // Links: each against its kind.
  const known = [...kinds.keys()].sort()
  for (const [name, link] of Object.entries(cfg.links ?? {})) {
    const k = kinds.get(link.kind)
    if (!k) {
      push(['links', name, 'kind'], `unknown link kind '${link.kind}'; known kinds: ${known.join(', ')}`)
      continue
    }
    if (k.unavailable) {
      push(['links', name, 'kind'], `link kind '${link.kind}' is not available in this build: ${k.unavailable}`)
      continue
    }
    const v = kindValidator(k.schema)
    const { kind: _kind, ...rest } = link
    if (!v(k.schemaWithoutKind ? rest : link)) for (const e of v.errors!) report(e, ['links', name], push)
  }
  // Feeds name links that exist.
  const links = new Set(Object.keys(cfg.links ?? {}))
  const linkList = [...links].sort().join(', ') || '(none)'
  for (const [name, t] of Object.entries(cfg.topics ?? {})) {
    // QoS is explicit: a profile, or every policy that has no default.
    if (t.qos.profile === undefined)
      for (const k of ['reliability', 'depth', 'overflow', 'deadlineMs'])
        if (t.qos[k] === undefined) push(['topics', name, 'qos'], `missing '${k}': state it, or start from a profile (sensorData, reliable, state)`)
    if (t.qos.overflow === 'block' && (t.qos.reliability ?? (t.qos.profile === 'sensorData' ? 'best-effort' : 'reliable')) !== 'reliable')
      push(['topics', name, 'qos', 'overflow'], "'block' requires reliability 'reliable'")
    t.from?.forEach((l, i) => {
      if (!links.has(l)) push(['topics', name, 'from', i], `no link named '${l}'; links: ${linkList}`)
    })
    t.to?.forEach((x, i) => {
      const l = typeof x === 'string' ? x : x.link
      if (!links.has(l)) push(['topics', name, 'to', i], `no link named '${l}'; links: ${linkList}`)
    })
  }
  if (issues.length) throw new ConfigError(sortIssues(issues))
  return cfg
}

function sortIssues(a: ConfigIssue[]): ConfigIssue[] {
  return a.sort((x, y) => x.line - y.line || x.column - y.column)
}

/** One ajv error → an issue at the node it concerns, with the key and what was expected. */
function report(e: ErrorObject, base: (string | number)[], push: (path: (string | number)[], message: string, key?: string) => void): void {
  const path = [...base, ...e.instancePath.split('/').slice(1).map(unescapePointer)]
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties':
      return push(path, `unknown key '${String(p.additionalProperty)}'${allowedKeys(e)}`, String(p.additionalProperty))
    case 'required':
      return push(path, `missing required key '${String(p.missingProperty)}'`)
    case 'enum':
      return push(path, `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (got ${JSON.stringify(e.data)})`)
    case 'const':
      return push(path, `must be ${JSON.stringify(p.allowedValue)} (got ${JSON.stringify(e.data)})`)
    case 'type':
      return push(path, `must be of type ${String(p.type)} (got ${describe(e.data)})`)
    case 'propertyNames':
      return
    case 'pattern':
      if (e.propertyName !== undefined) return push(path, `name '${e.propertyName}' must match ${String(p.pattern)}`, e.propertyName)
      return push(path, `must match ${String(p.pattern)} (got ${JSON.stringify(e.data)})`)
    case 'if':
      return // the failing `then` branch is reported on its own
    case 'anyOf':
    case 'oneOf':
      if (path[0] === 'topics') return push(path, `must be a link name or { link, port?, address? } (got ${describe(e.data)})`)
      return push(path, `matches none of the allowed forms (got ${describe(e.data)})`)
    default:
      return push(path, `${e.message ?? 'is invalid'} (got ${JSON.stringify(e.data)})`)
  }
}

function allowedKeys(e: ErrorObject): string {
  const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties
  return props ? `; expected one of: ${Object.keys(props).join(', ')}` : ''
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'object') return 'object'
  return `${typeof v} ${JSON.stringify(v)}`
}

function unescapePointer(s: string): string | number {
  const u = s.replace(/~1/g, '/').replace(/~0/g, '~')
  return /^\d+$/.test(u) ? Number(u) : u
}

/** Source offset of the node at `path` (or of `key` inside it); the nearest existing ancestor otherwise. */
function offsetOf(doc: Document, path: (string | number)[], key?: string): number | undefined {
  let node: unknown = doc.contents
  let best: number | undefined = (node as Node | null)?.range?.[0]
  const full = key !== undefined ? [...path, key] : path
  for (let i = 0; i < full.length; i++) {
    const seg = full[i]
    if (isMap(node)) {
      const pair = node.items.find((it) => {
        const k = it.key as { value?: unknown } | null
        return k !== null && typeof k === 'object' && String(k.value) === String(seg)
      })
      if (!pair) return best
      const keyNode = pair.key as Node
      // The last segment of a key error points at the key; otherwise at the value.
      if (i === full.length - 1 && key !== undefined) return keyNode.range?.[0] ?? best
      node = pair.value
      best = (node as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? best
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg]
      best = (node as Node | null)?.range?.[0] ?? best
    } else return best
  }
  return best
}
