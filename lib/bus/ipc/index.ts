/**
 * The bus between processes of one machine: Unix seqpacket sockets for small
 * messages, memfd rings for large ones. docs/BUS.md "Between processes".
 * @packageDocumentation
 */
export { createIpcTransport, IpcTransport, IpcLoan } from './transport.js'
export type { IpcTransportOptions, IpcPeerEvent, IpcPeerLostEvent, IpcStallEvent, IpcRefusedEvent, IpcDropEvent, IpcStats } from './transport.js'
