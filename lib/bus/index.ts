/**
 * The bus: typed topics with explicit QoS, in-process delivery without copies,
 * links attached in one line, introspection, and the transport seam.
 * Design and measurements: docs/BUS.md.
 * @packageDocumentation
 */
export { createBus, Bus } from './bus.js'
export type { BusOptions, TopicOptions, BusInfo } from './bus.js'
export { Topic } from './topic.js'
export type { TopicInfo, TopicStats, PublisherInfo, SubscriberInfo, LatencyFigures, EndpointDescriptor, Forwarder, ForwarderOptions, ForwarderSink } from './topic.js'
export { Publisher } from './publisher.js'
export type { PublisherOptions, PublisherStats } from './publisher.js'
export { Subscription } from './subscription.js'
export type { SubscribeOptions, SubscriptionStats, MessageHandler, Message } from './subscription.js'
export { copyMeta } from './meta.js'
export type { MessageMeta } from './meta.js'
export { qosProfiles, qosConflicts } from './qos.js'
export type { QoS, TopicQoS, Reliability, Overflow, Durability, PolicyConflict } from './qos.js'
export type { QosMismatchEvent, DeadlineMissedEvent, LivelinessEvent, DropEvent, DropReason, MatchEvent } from './events.js'
export { attachLink } from './link.js'
export type { Attachment, AttachmentStats, AttachOptions, BatchLike, BatchSource, DatagramSink, SendToOptions } from './link.js'
export type { Transport, TransportHost } from './transport.js'
export { createLoopbackTransportPair } from './loopback.js'
export { monotonicNs } from './clock.js'
export * from '../codecs/index.js'
export * from './ipc/index.js'
