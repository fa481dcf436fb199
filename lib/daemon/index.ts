/**
 * The onbus daemon: configuration-driven links, topics and feeds, module
 * processes, reload, and its figures on `/onbus/stats`. docs/CLI.md.
 * @packageDocumentation
 */
export { Daemon, DEFAULT_STATS_TOPIC, resolveQos, packageRoot, readSigningKey } from './daemon.js'
export type { DaemonOptions, DaemonLogRecord, ReloadResult } from './daemon.js'
export { loadKinds, builtinKinds, allKinds } from './kinds.js'
export type { LinkKind, Running, KindContext, LinkCounters } from './kinds.js'
export type { StatsSnapshot, LinkFigures, TopicFigures, LatencyNs } from './stats.js'
export type { ModuleStatus } from './modules.js'
