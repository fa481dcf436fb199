export { createCommandLink, createCommandServer, CommandLink, CommandServer, publicKeyPin } from './command.js'
export type { CommandLinkOptions, CommandServerOptions, CommandTlsOptions, CommandPeer, CommandLinkState } from './command.js'
