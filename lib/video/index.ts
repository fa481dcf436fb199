/**
 * RTP video: H.264 / H.265 over RTP in (receiver) and out (sender), RTCP,
 * SDP, Annex-B helpers and capture/replay. See docs/VIDEO.md.
 */
export * from './types.js'
export { createRtpReceiver, RtpReceiver, VideoFrame, videoFrameCodec } from './receiver.js'
export type { RtpReceiverOptions, RtpReceiverStats, VideoFrameData } from './receiver.js'
export { createRtpSender, RtpSender } from './sender.js'
export type { RtpSenderOptions, RtpSenderStats, RtpPacing, SendFrameOptions, ReceiverReportInfo, KeyframeRequest } from './sender.js'
export { packetize, newPacketizeCounters, RTP_HEADER_SIZE, MIN_MTU } from './packetize.js'
export type { PacketizeOptions, PacketizeCounters, AggregateMode } from './packetize.js'
export { generateSdp, collectParameterSets, h264ProfileLevelId } from './sdp.js'
export type { SdpOptions } from './sdp.js'
export {
  splitNals,
  splitAccessUnits,
  toAnnexB,
  nalType,
  nalHeaderSize,
  isVcl,
  isKeyframeNal,
  isParameterSet,
  H264_NAL,
  H265_NAL,
} from './annexb.js'
export * as rtcp from './rtcp.js'
export {
  startCapture,
  replayCapture,
  readCapture,
  writeCapture,
  encodeCapture,
  decodeCapture,
  retimeFromRtp,
  recordGstStream,
  CAPTURE_FLAG_RTP_TIMING,
} from './capture.js'
export type { Capture, CapturedPacket, CaptureOptions, CaptureSession, ReplayOptions, GstStreamOptions } from './capture.js'
