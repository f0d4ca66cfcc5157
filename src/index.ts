/**
 * dtmesh — the public API: the engine and its options, the verdict names, the codec and
 * the prober (CONVENTIONS.md "small public API"). The CLI is a thin layer over these.
 */
export { Engine, parseHostPort, type EngineOptions, type PunchHintEvent, type ReplyEvent, type SendErrorEvent } from './engine.js';
export { MeshAgent, type MeshAgentOptions } from './probe/agent.js';
export type { MeshSchedule, MeshInterval, PeerAddress, PeerFigures } from './probe/mesh.js';
export { probe, type ProbeOptions, type ProbeProgress, type ProbeReport } from './probe/prober.js';
export { DROP_REASONS, VERDICT_NAMES, type DropReason, type VerdictName } from './protocol/verdict.js';
export type { EngineStats, LatencySummary, DropCounts } from './observe/stats.js';
export { encodePacket, parsePacket, canonicalBytes, type PacketFields } from './protocol/codec.js';
export { senderIdOf, idProblem } from './protocol/ids.js';
export { derivePairKey } from './protocol/keys.js';
export { hmacPrecompute, HMAC_STATE_WORDS } from './protocol/sha256.js';
export { initRootKey, loadRootKey, parseHeartbeat, rootFingerprint } from './keys/keystore.js';
export { engineRegistry, serveMetrics, HdrHistogramMetric } from './observe/metrics.js';
export { DtmeshError } from './errors.js';
