/**
 * The engine's options (the embedding API, ENGINE.md "Embedding") with their ranges and
 * defaults, and the validation shared by the engine and its policies (CONVENTIONS.md
 * "Errors and input": construction throws `TypeError`/`RangeError` naming the option).
 */
import type { KeyObject } from 'node:crypto';
import * as os from 'node:os';
import { assertValidId } from './protocol/ids.js';
import type { PunchPolicyOptions } from './protocol/punch.js';
import { assertReplayWindow } from './protocol/replay.js';
import { DEFAULT_MAX_DATAGRAM, MIN_DATAGRAM } from './protocol/wire.js';

/**
 * `v` as an integer option in [min, max], or `dflt` when undefined. A non-number is a
 * `TypeError`, a number out of range or not an integer a `RangeError`; both name
 * `options.NAME` and the range.
 */
export function intOption(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`options.${name} must be a number (an integer from ${min} to ${max})`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`options.${name} must be an integer from ${min} to ${max}`);
  return v;
}

/** A boolean option or its default; throws a `TypeError` naming the option for anything else. */
export function boolOption(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new TypeError(`options.${name} must be true or false`);
  return v;
}

/** Engine options (the embedding API, ENGINE.md "Embedding"). */
export interface EngineOptions {
  /** Directory holding `mesh-root-key` (PROTOCOL.md §1) and the nonce ceiling. Required unless `rootKey` is given. */
  stateDir?: string;
  /**
   * The tenant root key itself (embedding and tests); when given with `stateDir`, the file
   * is not read. A secret `KeyObject` (`crypto.createSecretKey`) keeps the bytes out of
   * anything that prints the options object (PROTOCOL.md §1: the key never appears in
   * anything printed).
   */
  rootKey?: Uint8Array | KeyObject;
  /** Tenant ID. */
  tenant: string;
  /** This agent's ID. */
  agent: string;
  /** The roster (may include `agent`, which is ignored). */
  peers: readonly string[];
  /** `HOST:PORT` or `[V6]:PORT` to bind; default `127.0.0.1:0` (an ephemeral loopback port). */
  listen?: string;
  /** Verification workers, 1–64; default min(2, cores). */
  workers?: number;
  /** Datagrams per batch, 1–4096; default 256. */
  batchSize?: number;
  /** Batch buffers in the ring, 2–1024, per socket; default 4 × workers + 4. */
  batches?: number;
  /**
   * Sockets on the listen port, 1–64, default 1: the engine's own plus N-1 socket threads,
   * all bound with `reusePort` and sharing one pool and one in-order collector
   * (src/pipeline/thread-lane.ts). The native lane sets `SO_REUSEPORT` itself, on any Node;
   * the dgram lane needs Node ≥ 22.12 / 23.1 — on older Node it serves on one socket and
   * says so in {@link Engine.socketsNote}.
   */
  sockets?: number;
  /**
   * @internal Tests on Node without `reusePort`: each extra socket thread binds its own
   * ephemeral port on the listen host instead (the hand-off is the same).
   */
  separatePorts?: boolean;
  /** 0 = strict replay mode, else a window W (multiple of 64 up to 8192), PROTOCOL.md §5. */
  replayWindow?: number;
  /** Clock window in ms (PROTOCOL.md §4 c3); default 5000. */
  clockWindowMs?: number;
  /** How long the previous root's keys keep verifying after a rotation, ms; default 60000. */
  rotationGraceMs?: number;
  /** Largest accepted datagram, 50–65507; default 2048. */
  maxDatagram?: number;
  /** Most peers in the roster; default 4096. */
  maxPeers?: number;
  /**
   * Batches of fewer datagrams than this are verified on the engine's own thread, by the
   * same code the workers run; larger ones go to the pool. 0–4096, default 64. A pool
   * round trip costs this thread 20–57 µs plus ≈ 40 µs of wake-up latency each way, while
   * verifying a PROBE and signing its REPLY costs ≈ 0.35 µs with the native MAC kernel
   * (≈ 1.2 µs with the JS one), so a task must carry ≥ 64 datagrams to pay off (ENGINE.md
   * platform facts). Measured with `npm run bench -- --quick --inline-below N` (2-core Xeon
   * VM, Node 20, native kernel): max held rate 70 k/s with 0, 200 k/s with 64 and with 256;
   * receive→verdict p99 at half rate 440, 73 and 119 µs. 0 sends every batch to the pool.
   */
  inlineBelow?: number;
  /**
   * A pool task still running after this many ms is aborted (its worker replaced) and its
   * batch counted as `overload`: a hung worker never wedges the receiver. 10–600000,
   * default 1000 — a batch of 4096 datagrams takes ≈ 5–20 ms even on the JS kernel, so
   * only a stuck worker reaches it.
   */
  verifyTimeoutMs?: number;
  /** Socket receive buffer to ask for, bytes; default 4 MiB (the kernel may cap it). */
  recvBufferBytes?: number;
  /**
   * PUNCH_HINT policy (PROTOCOL.md §2): burst size, per-target and overall rate limits,
   * loopback targets; `false` ignores every hint (they are still verified and counted).
   */
  punch?: PunchPolicyOptions | false;
  /** @internal Worker entry file (tests inject faults with it). */
  workerFile?: string;
  /**
   * Which lane runs the sockets (ENGINE.md "Lanes"): `'native'` — the addon's own socket,
   * `recvmmsg`/`sendmmsg` straight into and out of the batch ring, kernel receive
   * timestamps, `SO_REUSEPORT` on any Node (Linux, when the addon was built);
   * `'dgram'` — Node's `dgram`, portable; `'auto'` — native where it was built, else dgram
   * (with one line in {@link Engine.laneNote}). Default: `DTMESH_LANE` when set (one that
   * names no lane is refused: {@link envLane}), else {@link DEFAULT_LANE}.
   */
  lane?: 'auto' | 'native' | 'dgram';
  /** IP TTL / IPv6 hop limit of every packet the engine sends, 1–255 (default: the system's). Both lanes. */
  ttl?: number;
  /** DSCP of every packet the engine sends, 0–63 (RFC 2474); needs the native lane (default: the system's, 0). */
  dscp?: number;
  /** @internal `SO_SNDBUF` of the native lane's sockets, 1024–2^30 bytes (tests shrink it to force would-block). */
  sendBufferBytes?: number;
  /**
   * UDP GSO for REPLYs (native lane only; default false): the REPLYs of one batch that go to
   * one address with one length leave as one `sendmmsg` message the kernel cuts into those
   * same datagrams, in order (`UDP_SEGMENT`, Linux ≥ 4.18) — one trip down the stack instead
   * of one per REPLY. The wire carries the same datagrams (PROTOCOL.md §2), but anything that
   * sees packets before the segmentation point (netfilter or netem on the sending host, on
   * loopback or a veth) sees such a run as one packet and drops it as one: off by default, so
   * emulated loss stays per datagram. Where the kernel lacks it, REPLYs leave one per message.
   */
  gso?: boolean;
}

/**
 * The engine's lane when neither {@link EngineOptions.lane} nor `DTMESH_LANE` names one
 * (ENGINE.md "Lanes"): `'dgram'` — the lane every existing test and benchmark was written
 * against (e.g. `sockets` > 1 on Node 20 serving one socket). `DTMESH_LANE` ({@link envLane},
 * read when an engine is created) puts a whole test or benchmark run on one lane:
 * `DTMESH_LANE=native npm test`.
 */
export const DEFAULT_LANE = 'dgram';

/**
 * The lane of the measuring commands (`dtmesh probe`, `dtmesh agent`) when neither `--lane`
 * nor `DTMESH_LANE` names one: `'auto'` — the native lane wherever it is built, because
 * its receive times are the kernel's stamps and its sends leave at the send call
 * (MEASUREMENT.md §1–2: timestamps as close to the wire as the lane allows); the dgram
 * lane, with one line saying why, elsewhere.
 */
export const MEASURE_DEFAULT_LANE = 'auto';

/** The one line for a `DTMESH_LANE` that names no lane: the engine's `TypeError` and the CLI's usage error say it alike. */
export const DTMESH_LANE_PROBLEM = 'DTMESH_LANE must be auto, native or dgram';

/**
 * The lane `DTMESH_LANE` names, or undefined when it is unset or empty (the default then
 * applies). One that names no lane (`nativ`) is refused — a `TypeError` saying
 * {@link DTMESH_LANE_PROBLEM} — rather than a silent run on the default lane. Read when it
 * is needed (an engine created without {@link EngineOptions.lane}, a command without
 * `--lane`), never at import.
 */
export function envLane(): 'auto' | 'native' | 'dgram' | undefined {
  const v = process.env.DTMESH_LANE;
  if (v === undefined || v === '') return undefined;
  if (v === 'auto' || v === 'native' || v === 'dgram') return v;
  throw new TypeError(DTMESH_LANE_PROBLEM);
}

/** Parse `HOST:PORT` / `[V6]:PORT`. Throws a `TypeError` naming `what`. */
export function parseHostPort(s: string, what = 'listen address'): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`${what} must be HOST:PORT (or [IPv6]:PORT) with a port from 0 to 65535, got '${s}'`);
  }
  return { host: m[1]!, port };
}

/**
 * `HOST:PORT` for people, as {@link parseHostPort} reads it back: an IPv6 address in
 * brackets (`[::1]:7000`, RFC 3986 §3.2.2), so its last colon is not taken for the port's.
 */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** {@link EngineOptions} checked, with every default filled in. */
export interface ResolvedOptions {
  workers: number;
  batchSize: number;
  /** Batch buffers per socket. */
  batches: number;
  /** Sockets asked for (the engine may serve fewer: Node without `reusePort`). */
  sockets: number;
  maxDatagram: number;
  clockWindowMs: number;
  rotationGraceMs: number;
  maxPeers: number;
  inlineBelow: number;
  verifyTimeoutMs: number;
  recvBufferBytes: number;
  replayWindow: number;
  host: string;
  port: number;
  lane: 'auto' | 'native' | 'dgram';
  /** -1 = the system's. */
  ttl: number;
  /** -1 = the system's. */
  dscp: number;
  /** 0 = the system's. */
  sendBufferBytes: number;
  gso: boolean;
}

/**
 * Check every option of {@link EngineOptions} (IDs, ranges, the listen address) and fill
 * in the defaults. Throws a `TypeError`/`RangeError` naming the option; changes nothing.
 */
export function resolveOptions(opts: EngineOptions): ResolvedOptions {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
  assertValidId(opts.tenant, 'options.tenant');
  assertValidId(opts.agent, 'options.agent');
  if (!Array.isArray(opts.peers)) throw new TypeError('options.peers must be an array of agent IDs');
  opts.peers.forEach((p, i) => assertValidId(p, `options.peers[${i}]`));
  if (opts.rootKey === undefined && opts.stateDir === undefined) throw new TypeError('options.stateDir (or options.rootKey) is required');
  const { host, port } = parseHostPort(opts.listen ?? '127.0.0.1:0', 'options.listen');
  const workers = intOption(opts.workers, 'workers', 1, 64, Math.max(1, Math.min(2, os.availableParallelism())));
  const replayWindow = opts.replayWindow ?? 0;
  assertReplayWindow(replayWindow);
  const lane = opts.lane ?? envLane() ?? DEFAULT_LANE; // DTMESH_LANE only when the option is not given
  if (lane !== 'auto' && lane !== 'native' && lane !== 'dgram') throw new TypeError(`options.lane must be 'auto', 'native' or 'dgram'`);
  return {
    workers,
    batchSize: intOption(opts.batchSize, 'batchSize', 1, 4096, 256),
    batches: intOption(opts.batches, 'batches', 2, 1024, 4 * workers + 4),
    sockets: intOption(opts.sockets, 'sockets', 1, 64, 1),
    maxDatagram: intOption(opts.maxDatagram, 'maxDatagram', MIN_DATAGRAM, 65507, DEFAULT_MAX_DATAGRAM),
    clockWindowMs: intOption(opts.clockWindowMs, 'clockWindowMs', 1, 3_600_000, 5000),
    rotationGraceMs: intOption(opts.rotationGraceMs, 'rotationGraceMs', 0, 86_400_000, 60_000),
    maxPeers: intOption(opts.maxPeers, 'maxPeers', 1, 1 << 20, 4096),
    inlineBelow: intOption(opts.inlineBelow, 'inlineBelow', 0, 4096, 64),
    verifyTimeoutMs: intOption(opts.verifyTimeoutMs, 'verifyTimeoutMs', 10, 600_000, 1000),
    recvBufferBytes: intOption(opts.recvBufferBytes, 'recvBufferBytes', 4096, 1 << 30, 4 * 1024 * 1024),
    replayWindow,
    host,
    port,
    lane,
    ttl: intOption(opts.ttl, 'ttl', 1, 255, -1),
    dscp: intOption(opts.dscp, 'dscp', 0, 63, -1),
    sendBufferBytes: intOption(opts.sendBufferBytes, 'sendBufferBytes', 1024, 1 << 30, 0),
    gso: boolOption(opts.gso, 'gso', false),
  };
}
