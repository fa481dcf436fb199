/**
 * onbus configuration files: schema, loading, errors with file:line:column.
 * @packageDocumentation
 */
export { loadConfig, parseConfig, ConfigError, formatIssue } from './load.js'
export type { OnbusConfig, LinkConfig, TopicConfig, TopicFeedTarget, ModuleConfig, ConfigIssue, KindSchema } from './load.js'
export { configSchema, qosSchema } from './schema.js'
export { defaultConfig } from './default.js'
