/**
 * The dtmesh engine: receive, verify and answer mesh probes at line rate.
 *
 * Flow of one datagram (ENGINE.md):
 *   1. socket (sequential, this thread): `dgram` hands us the datagram; it is copied
 *      once into the next slot of the filling batch with its receive time. No free
 *      batch → counted `overload` (nothing blocks, memory never grows).
 *   2. batch (sequential, this thread): a full batch — or a partial one once a worker
 *      is idle — pins the key table half, reserves reply nonces (PROTOCOL.md §3) and
 *      is handed to the pool by index.
 *   3. verify (PARALLEL, piscina workers): unconditional drops, key lookup, HMAC, clock
 *      (PROTOCOL.md §4 u1–c3) in place; REPLYs of passing PROBEs signed into the slot.
 *   4. collect (sequential, in batch dispatch order, this thread): replay check
 *      (PROTOCOL.md §5), verdict counters, receive→verdict latency histogram.
 *   5. reply (sequential, this thread): REPLYs of accepted PROBEs leave in nonce order;
 *      accepted REPLYs and PUNCH_HINTs become events. The batch is reused once its
 *      sends completed.
 *
 * With `sockets` > 1 (src/sockets.ts) extra socket threads do stages 1 and 5 for the
 * batches they own — on the same port — and hand them over by index; stages 2 and 4
 * stay here, so there is still one replay filter and one nonce counter.
 */
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import type { KeyObject } from 'node:crypto';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { B_FREE, B_SENDING, B_VERIFIED, BatchRing, replyView, SendLedger } from './pipeline/ring.js';
import { nowUs } from './clock.js';
import { collectBatch, type CollectSink } from './pipeline/collect.js';
import { DtmeshError } from './errors.js';
import { KeyRing } from './keys/keyring.js';
import { loadRootKey, parseHeartbeat, persistHeartbeat, rootKeyBytes, type Heartbeat } from './keys/keystore.js';
import { KeyTable } from './keys/keytable.js';
import { DEFAULT_MAX_DATAGRAM, HINT_OFF_ADDR, HINT_OFF_FAMILY, HINT_OFF_PORT, HINT_OFF_TARGET, MIN_DATAGRAM, OFF_NONCE, OFF_PAYLOAD, OFF_PROBE_ID, OFF_SEND_TS, OFF_SENDER_ID, TYPE_PROBE, TYPE_PUNCH_HINT, TYPE_REPLY } from './protocol/wire.js';
import { F_SEND, H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_ENTRY, M_FLAGS, M_LENGTH, M_PEER, M_VERDICT } from './pipeline/layout.js';
import { KE_PEER, KE_RAW_CUR, KE_STATE_CUR } from './keys/table-layout.js';
import { readKernelDrops, recvBufferNote } from './observe/kernel-drops.js';
import { NonceCounter } from './nonce.js';
import { formatHintAddress, PunchPolicy, punchRefusalName, type PunchPolicyOptions } from './protocol/punch.js';
import { readU32, readU64Number, writeHeader, writeU64Number } from './protocol/codec.js';
import { assertValidId, senderIdOf } from './protocol/ids.js';
import { macSeal, warmUpMac } from './protocol/mac.js';
import { findKeyEntry } from './protocol/receive.js';
import { assertReplayWindow, ReplayFilter } from './protocol/replay.js';
import { reusePortSupported, type EngineToSocketMessage, type SocketThreadConfig, type SocketThreadMessage } from './pipeline/socket-thread.js';
import { SendOrder } from './pipeline/sendorder.js';
import { Books, type EngineStats } from './observe/stats.js';
import { literalLookup } from './pipeline/udp.js';
import { BatchVerifier, type VerifyConfig } from './pipeline/verify.js';
import { V_OVERLOAD } from './protocol/verdict.js';
import { intOption } from './options.js';

const TWO_32 = 4294967296;

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
   * (src/sockets.ts). Needs Node ≥ 22.12 / 23.1; on older Node the engine serves on one
   * socket and says so in {@link Engine.socketsNote}.
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
}

/** An accepted REPLY (PROTOCOL.md §4), as delivered to the prober. */
export interface ReplyEvent {
  /** Agent ID of the replier. */
  from: string;
  /** probe_id copied from our PROBE. */
  probeId: number;
  /** Receive time, µs since the Unix epoch (our clock). */
  recvUs: number;
  /** Replier's send_ts_us. */
  sendTsUs: number;
  /** Datagram length. */
  length: number;
}

/** An accepted PUNCH_HINT (PROTOCOL.md §2). */
export interface PunchHintEvent {
  /** Agent ID of the sender. */
  from: string;
  /** Target sender_id, hex. */
  target: string;
  /** 4 or 6. */
  family: number;
  /** Address to probe. */
  address: string;
  /** Port to probe. */
  port: number;
  /** What the engine did: `'sent'` (a burst of PROBEs) or the policy's refusal reason. */
  decision: string;
}

/** The engine's handle on one extra socket thread. */
interface SocketLane {
  worker: Worker;
  /** Bound port (reported by the thread). */
  port: number;
  /** Reported `drained` after `stop` (or died). */
  drained: boolean;
  /** Reported `closed` (or died). */
  closed: boolean;
  /** Resolves the wait for `closed`. */
  done: (() => void) | null;
}

/** probe_ids of punch-burst PROBEs: the top 256 values (the prober never uses them). */
export const PUNCH_PROBE_ID_BASE = 0xffffff00;

/** Punch-hint bookkeeping (see {@link PunchPolicy}). */
export interface PunchStats {
  granted: number;
  probes: number;
  refused: Record<string, number>;
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
 * Batches piscina may hand one worker before it finishes the last: with 2 the next batch
 * waits in the worker, not behind a wake-up (`npm run bench:pool`: +9 % at 2 workers,
 * batch 256, 2-core Xeon VM, Node 20).
 */
export const TASKS_PER_WORKER = 2;

const defaultWorkerFile = fileURLToPath(new URL('../workers/verify.js', import.meta.url));

/**
 * The engine. Create with {@link Engine.create}; it serves as soon as the promise
 * resolves (socket bound, pool up). Events: `'reply'` ({@link ReplyEvent}),
 * `'punch_hint'` ({@link PunchHintEvent}), `'warning'` (string).
 */
export class Engine extends EventEmitter {
  /** Resolved options. */
  readonly workers: number;
  /** Sockets serving (1 unless `sockets` was asked for and Node has `reusePort`). */
  readonly sockets: number;
  /** One line when `sockets` could not be honoured (Node without `reusePort`), else null. */
  readonly socketsNote: string | null;
  readonly batchSize: number;
  readonly maxDatagram: number;
  readonly rotationGraceMs: number;
  /** Receiver start, µs (restart fence, PROTOCOL.md §5). */
  readonly startUs: number;
  private readonly stateDir: string | null;
  private readonly keyring: KeyRing;
  private readonly keyTable: KeyTable;
  private readonly filter: ReplayFilter;
  private readonly ring: BatchRing;
  private readonly books = new Books();
  private readonly nonces: NonceCounter;
  private readonly selfId: Uint8Array;
  private readonly socket: dgram.Socket;
  private pool!: Piscina;
  private inlineVerifier!: BatchVerifier;
  private readonly inlineBelow: number;
  private readonly verifyTimeoutMs: number;
  private readonly recvBufferBytes: number;
  private filling = -1;
  private inVerify = 0;
  private flushScheduled = false;
  private closing = false;
  private closed: Promise<EngineStats> | null = null;
  private drained: (() => void) | null = null;
  private lastSentNonce = 0;
  private readonly sends: SendLedger;
  private readonly batchNonce: Float64Array; // first reserved reply nonce per batch
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly peerIds = new Map<string, Uint8Array>();
  private readonly punch: PunchPolicy | null;
  private readonly maxPeers: number;
  /** Nonce order across sockets (`sockets` > 1): each batch's REPLYs and each own packet is one unit. */
  private readonly order = new SendOrder();
  /** Events raised while collecting, emitted once the batch is settled (see {@link notify}). */
  private readonly events: Array<{ name: string; payload: unknown }> = [];
  private emitting = false;
  /** REPLYs re-signed on this thread because a locally sent packet took a later nonce first (rare). */
  resigned = 0;
  /** Batches whose worker failed and that were run again. */
  rerunBatches = 0;
  /** Batches given up because their worker hung past `verifyTimeoutMs` (counted as `overload`). */
  hungBatches = 0;
  /** Batches verified on this thread (fewer than `inlineBelow` datagrams). */
  inlineBatches = 0;
  /** Batches handed to the worker pool. */
  pooledBatches = 0;
  /** Batches filled by the extra socket threads (`sockets` > 1). */
  threadBatches = 0;

  private constructor(opts: EngineOptions, root: Uint8Array, socket: dgram.Socket) {
    super();
    const cores = os.availableParallelism();
    this.workers = intOption(opts.workers, 'workers', 1, 64, Math.max(1, Math.min(2, cores)));
    this.batchSize = intOption(opts.batchSize, 'batchSize', 1, 4096, 256);
    const batches = intOption(opts.batches, 'batches', 2, 1024, 4 * this.workers + 4);
    const socketsAsked = intOption(opts.sockets, 'sockets', 1, 64, 1);
    const canReuse = opts.separatePorts === true || reusePortSupported();
    this.sockets = canReuse ? socketsAsked : 1;
    this.socketsNote =
      socketsAsked > 1 && !canReuse
        ? `${socketsAsked} sockets asked for, but Node ${process.version} has no reusePort (Node >= 22.12 or >= 23.1): serving on one socket`
        : null;
    this.maxDatagram = intOption(opts.maxDatagram, 'maxDatagram', MIN_DATAGRAM, 65507, DEFAULT_MAX_DATAGRAM);
    const clockWindowMs = intOption(opts.clockWindowMs, 'clockWindowMs', 1, 3_600_000, 5000);
    this.rotationGraceMs = intOption(opts.rotationGraceMs, 'rotationGraceMs', 0, 86_400_000, 60_000);
    const maxPeers = intOption(opts.maxPeers, 'maxPeers', 1, 1 << 20, 4096);
    this.maxPeers = maxPeers;
    this.inlineBelow = intOption(opts.inlineBelow, 'inlineBelow', 0, 4096, 64);
    this.verifyTimeoutMs = intOption(opts.verifyTimeoutMs, 'verifyTimeoutMs', 10, 600_000, 1000);
    this.recvBufferBytes = intOption(opts.recvBufferBytes, 'recvBufferBytes', 4096, 1 << 30, 4 * 1024 * 1024);
    const replayWindow = opts.replayWindow ?? 0;
    assertReplayWindow(replayWindow);
    this.stateDir = opts.stateDir ?? null;
    this.punch = opts.punch === false ? null : new PunchPolicy(opts.punch ?? {});
    this.keyring = new KeyRing(opts.tenant, opts.agent, root, opts.peers);
    this.selfId = this.keyring.selfId;
    this.keyTable = new KeyTable(maxPeers);
    this.filter = new ReplayFilter(replayWindow, Math.max(16, this.keyring.peerSlots));
    this.publishKeys();
    this.ring = new BatchRing(batches * this.sockets, this.batchSize, this.maxDatagram, batches);
    this.sends = new SendLedger(batches * this.sockets, (b) => this.ring.release(b), () => this.checkDrained());
    this.replyViews = new Array<Buffer | undefined>(batches * this.sockets * this.batchSize).fill(undefined); // dense, not a sparse dictionary
    this.batchNonce = new Float64Array(batches * this.sockets);
    this.nonces = new NonceCounter(this.stateDir);
    this.startUs = Math.floor(nowUs());
    this.socket = socket;
    this.clockWindowUs = clockWindowMs * 1000;
  }
  private readonly clockWindowUs: number;

  /**
   * Validate options, load the root key, bind the socket and start the pool. Throws
   * `TypeError`/`RangeError` for bad options and {@link DtmeshError} for key files and
   * sockets (one line, no secret).
   */
  static async create(opts: EngineOptions): Promise<Engine> {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    assertValidId(opts.tenant, 'options.tenant');
    assertValidId(opts.agent, 'options.agent');
    if (!Array.isArray(opts.peers)) throw new TypeError('options.peers must be an array of agent IDs');
    opts.peers.forEach((p, i) => assertValidId(p, `options.peers[${i}]`));
    if (opts.rootKey === undefined && opts.stateDir === undefined) {
      throw new TypeError('options.stateDir (or options.rootKey) is required');
    }
    const { host, port } = parseHostPort(opts.listen ?? '127.0.0.1:0', 'options.listen');
    const root = opts.rootKey !== undefined ? rootKeyBytes(opts.rootKey, 'root key') : loadRootKey(opts.stateDir!);
    // every socket on a shared port needs SO_REUSEPORT, the engine's own included
    const reusePort = typeof opts.sockets === 'number' && opts.sockets > 1 && opts.separatePorts !== true && reusePortSupported();
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', reusePort, lookup: literalLookup } as dgram.SocketOptions);
    let engine: Engine;
    try {
      engine = new Engine(opts, root, socket);
    } catch (e) {
      socket.close();
      throw e;
    }
    await engine.startPool(opts.workerFile ?? defaultWorkerFile);
    try {
      await engine.bind(host, port, engine.recvBufferBytes);
    } catch (e) {
      await engine.pool.destroy();
      throw e;
    }
    try {
      await engine.startSocketThreads(host, reusePort);
    } catch (e) {
      await engine.close();
      throw e;
    }
    return engine;
  }

  private bind(host: string, port: number, recvBufferBytes: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        this.socket.close();
        const why =
          e.code === 'EADDRINUSE'
            ? `${host}:${port} is already in use: pick another port with --listen or stop the other process`
            : e.code === 'EADDRNOTAVAIL'
              ? `${host} is not an address of this machine`
              : e.code === 'EACCES'
                ? `not allowed to bind ${host}:${port} (ports below 1024 need privileges)`
                : `cannot bind ${host}:${port}: ${e.code ?? e.message}`;
        reject(new DtmeshError(why));
      };
      this.socket.once('error', onError);
      this.socket.bind(port, host, () => {
        this.socket.off('error', onError);
        // every send has a callback that counts refusals; anything the socket still reports is counted the same way, never fatal
        this.socket.on('error', () => void this.books.sendErrors++);
        try {
          this.socket.setRecvBufferSize(recvBufferBytes);
        } catch {
          // capped or refused by the system; the socket still works with its default
        }
        this.recvBufferNote = recvBufferNote(recvBufferBytes, this.socket.getRecvBufferSize());
        this.socket.on('message', this.onMessage);
        resolve();
      });
    });
  }
  /** One line about a capped receive buffer, or null (shown by the CLI at start). */
  recvBufferNote: string | null = null;

  /** Start the pool and wait until every worker has loaded (one readiness task each). */
  private async startPool(filename: string): Promise<void> {
    const cfg: VerifyConfig = {
      batchSab: this.ring.sab,
      batches: this.ring.layout.batches,
      slots: this.batchSize,
      maxDatagram: this.maxDatagram,
      keySab: this.keyTable.sab,
      keyCapacity: this.keyTable.capacity,
      selfId: this.selfId,
      clockWindowUs: this.clockWindowUs,
      startUs: this.startUs,
    };
    this.inlineVerifier = new BatchVerifier(cfg);
    warmUpMac(); // this thread verifies small batches and signs outgoing probes
    this.pool = new Piscina({
      filename,
      minThreads: this.workers,
      maxThreads: this.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: TASKS_PER_WORKER,
      workerData: cfg,
    });
    await Promise.all(Array.from({ length: this.workers }, () => this.pool.run(-1)));
  }

  /**
   * Start the extra socket threads (`sockets` > 1) on the bound port and wait until each
   * has bound. Thread k fills batches `k × batches … (k+1) × batches - 1`.
   */
  private async startSocketThreads(host: string, reusePort: boolean): Promise<void> {
    const file = fileURLToPath(new URL('../workers/socket.js', import.meta.url));
    const per = this.ring.owned; // batches per socket: the engine's own are 0 … per-1
    const waits: Promise<void>[] = [];
    for (let k = 1; k < this.sockets; k++) {
      const cfg: SocketThreadConfig = {
        index: k,
        batchSab: this.ring.sab,
        batches: this.ring.layout.batches,
        slots: this.batchSize,
        maxDatagram: this.maxDatagram,
        own: Array.from({ length: per }, (_, i) => k * per + i),
        type: this.socket.address().family === 'IPv6' ? 'udp6' : 'udp4',
        host,
        port: reusePort ? this.socket.address().port : 0,
        reusePort,
        recvBufferBytes: this.recvBufferBytes,
      };
      const lane: SocketLane = { worker: new Worker(file, { workerData: cfg }), port: 0, drained: false, closed: false, done: null };
      this.lanes.push(lane);
      waits.push(
        new Promise<void>((resolve, reject) => {
          lane.worker.on('message', (m: SocketThreadMessage) => {
            if (m.t === 'ready') {
              lane.port = m.port;
              resolve();
            } else if (m.t === 'error') {
              lane.drained = lane.closed = true;
              reject(new DtmeshError(m.message));
            } else this.onLane(k, lane, m);
          });
          lane.worker.on('error', (e) => {
            // a socket thread that crashed: its batches in the pipeline are still collected; its port stops serving
            lane.drained = lane.closed = true;
            this.notify('warning', `socket thread ${k} failed: ${e.message}`);
            this.order.dropLane(k);
            lane.done?.();
            this.checkDrained();
            reject(new DtmeshError(`socket thread ${k} failed: ${e.message}`));
          });
        }),
      );
    }
    await Promise.all(waits);
  }

  /** A message from socket thread `k`: a filled batch, or its drain/close report (counts are deltas). */
  private onLane(k: number, lane: SocketLane, m: SocketThreadMessage): void {
    if (m.t === 'ready' || m.t === 'error') return;
    this.books.received += m.received;
    this.books.verdicts[V_OVERLOAD] += m.overload;
    this.books.sendErrors += m.sendErrors;
    if (m.t === 'batch') {
      this.threadBatches++;
      this.ring.count[m.b] = m.count;
      this.dispatchBatch(m.b);
    } else if (m.t === 'sent') {
      this.order.complete(k); // that batch's REPLYs left: the next socket's packets may go
      this.checkDrained();
    } else if (m.t === 'drained') {
      lane.drained = true;
      this.checkDrained();
    } else {
      lane.closed = true;
      lane.done?.();
    }
  }
  private readonly lanes: SocketLane[] = [];

  /** Ports of the extra socket threads (the listen port itself when they share it). @internal tests */
  socketThreadPorts(): number[] {
    return this.lanes.map((l) => l.port);
  }

  /**
   * What `util.inspect` / `console.log` show: who, where and the books — never a key,
   * a keyed state or the shared key table (PROTOCOL.md §1 "the key never appears …").
   */
  [inspect.custom](): string {
    return `Engine ${inspect(this.toJSON())}`;
  }

  /** What `JSON.stringify` shows: the same non-secret summary as {@link inspect.custom}. */
  toJSON(): { tenant: string; agent: string; peers: number; address: string; port: number; workers: number; sockets: number; stats: EngineStats } {
    const a = this.socketClosed ? { address: '', port: 0 } : this.socket.address();
    return { tenant: this.tenant, agent: this.agent, peers: this.peers.length, address: a.address, port: a.port, workers: this.workers, sockets: this.sockets, stats: this.stats() };
  }

  /** The bound address. */
  get address(): { address: string; port: number; family: string } {
    return this.socket.address();
  }

  /** This agent's ID. */
  get agent(): string {
    return this.keyring.agent;
  }

  /** This tenant's ID. */
  get tenant(): string {
    return this.keyring.tenant;
  }

  /** The roster (without this agent). */
  get peers(): readonly string[] {
    return this.keyring.peers;
  }

  /** Replace the roster. Invalid IDs, or more peers than `maxPeers`, throw and change nothing. */
  setPeers(peers: readonly string[]): void {
    this.assertRoster(peers, 'peers');
    this.keyring.setPeers(peers);
    this.publishKeys();
  }

  /** Everything that could make a roster change fail later, checked before anything changes. */
  private assertRoster(peers: readonly string[], what: string): void {
    if (!Array.isArray(peers)) throw new TypeError(`${what} must be an array of agent IDs`);
    peers.forEach((p, i) => assertValidId(p, `${what}[${i}]`));
    const n = new Set(peers.filter((p) => p !== this.keyring.agent)).size;
    if (n > this.maxPeers) throw new RangeError(`${what} has ${n} peers; options.maxPeers is ${this.maxPeers}`);
  }

  /**
   * Apply a heartbeat response `{"tenant_id", "mesh_root_key", "peers"?}` (PROTOCOL.md
   * §1): validate, persist the key (when the engine has a state dir), rotate (the
   * previous root keeps verifying for `rotationGraceMs`), update the roster. Invalid
   * input throws and changes nothing. Returns whether the root changed.
   */
  applyHeartbeat(response: unknown): { rotated: boolean } {
    // all or nothing: every check first, then the file, then memory (which cannot fail after the checks)
    const hb: Heartbeat = parseHeartbeat(response);
    if (hb.tenant !== this.keyring.tenant) {
      throw new TypeError(`heartbeat is for tenant '${hb.tenant}' but this engine serves '${this.keyring.tenant}'`);
    }
    if (hb.peers !== null) this.assertRoster(hb.peers, 'heartbeat peers');
    if (this.closing) throw new DtmeshError('engine is closed: heartbeat not applied');
    if (this.stateDir !== null) persistHeartbeat(this.stateDir, hb);
    if (hb.peers !== null) this.keyring.setPeers(hb.peers);
    const rotated = this.keyring.rotate(hb.root);
    if (rotated) {
      if (this.graceTimer !== null) clearTimeout(this.graceTimer);
      this.graceTimer = setTimeout(() => {
        this.graceTimer = null;
        this.keyring.endGrace();
        this.publishKeys();
      }, this.rotationGraceMs);
      this.graceTimer.unref();
    }
    this.publishKeys();
    return { rotated };
  }

  private publishKeys(): void {
    this.keyTable.publish(this.keyring.entries());
    this.filter.ensure(this.keyring.peerSlots);
  }

  /**
   * Current stats: the books (the `--stats-json` document) plus, on Linux,
   * `kernel_drops` — datagrams the kernel dropped for this socket before the engine
   * could read them (receive buffer overflow) — and the punch-hint counters.
   */
  stats(): EngineStats {
    const s = this.books.snapshot();
    s.send_errors += this.sends.errors;
    const kd = this.socketClosed ? this.finalKernelDrops : this.kernelDrops();
    if (kd !== null) s.kernel_drops = kd;
    if (this.punch !== null) s.punch = this.punchStats();
    return s;
  }

  private kernelDrops(): number | null {
    const a = this.socket.address();
    return readKernelDrops(a.port, a.family as 'IPv4' | 'IPv6', a.address);
  }
  private socketClosed = false;
  private finalKernelDrops: number | null = null;

  /** Start a fresh receive→verdict latency histogram (benchmarks measure per load step). */
  resetLatency(): void {
    this.books.latency.reset();
  }

  /** Punch-hint decisions so far (PROTOCOL.md §2). */
  punchStats(): PunchStats {
    const p = this.punch;
    return p === null ? { granted: 0, probes: 0, refused: {} } : { granted: p.granted, probes: p.probesGranted, refused: { ...p.refused } };
  }

  // ---- 1. socket ----------------------------------------------------------------

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const t = nowUs();
    this.books.received++;
    const ring = this.ring;
    let b = this.filling;
    if (b < 0) {
      b = this.closing ? -1 : ring.take();
      if (b < 0) {
        this.books.verdicts[V_OVERLOAD]++; // every batch in flight (or shutting down): shed, counted
        return;
      }
      this.filling = b;
    }
    if (ring.put(b, msg, t, rinfo.address, rinfo.port) === this.batchSize) this.dispatch();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.onFlush);
    }
  };

  /**
   * After this loop turn's reads: a partial batch small enough to verify here goes now;
   * a larger one goes to the pool once no batch is being verified there (until then it
   * keeps filling, so batches grow under load).
   */
  private readonly onFlush = (): void => {
    this.flushScheduled = false;
    const b = this.filling;
    if (b >= 0 && (this.inVerify === 0 || this.closing || this.ring.count[b]! < this.inlineBelow)) this.dispatch();
  };

  // ---- 2. batch -----------------------------------------------------------------

  private dispatch(): void {
    const b = this.filling;
    this.filling = -1;
    this.dispatchBatch(b);
  }

  /** Hand filled batch `b` (this thread's or a socket thread's) to verification. */
  private dispatchBatch(b: number): void {
    const ring = this.ring;
    const h = ring.layout.headerIndex(b);
    const count = ring.count[b]!;
    const nonce = this.nonces.take(count); // reserved in dispatch order = send order (PROTOCOL.md §3)
    ring.ints[h + H_COUNT] = count;
    ring.ints[h + H_KEY_HALF] = this.keyTable.pin();
    ring.ints[h + H_NONCE_HI] = Math.floor(nonce / TWO_32);
    ring.ints[h + H_NONCE_LO] = nonce % TWO_32;
    this.batchNonce[b] = nonce;
    ring.dispatched(b);
    if (count < this.inlineBelow) {
      // too small to pay for a pool round trip: verify here, then collect in order as usual
      this.inlineVerifier.run(b);
      this.inlineBatches++;
      ring.state[b] = B_VERIFIED;
      this.collect();
      return;
    }
    this.inVerify++;
    this.pooledBatches++;
    this.verify(b, 0);
  }

  // ---- 3. verify (parallel) -----------------------------------------------------

  /**
   * Verify batch `b` in the pool. A worker that threw or died mid-batch: piscina replaces
   * it and the batch is re-run (verification is idempotent: requests are never
   * overwritten), twice at most, then counted as shed (`overload`) so that nothing
   * vanishes. A worker that hangs instead — still busy after `verifyTimeoutMs` — is
   * aborted (piscina terminates a worker whose running task is aborted) and its batch
   * is counted as shed at once, not re-run (a batch that hangs a worker would hang the
   * next one too): one stuck worker costs one batch, never the receiver.
   */
  private verify(b: number, attempt: number): void {
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort(new Error(`verification took longer than ${this.verifyTimeoutMs} ms`));
    }, this.verifyTimeoutMs);
    this.pool.run(b, { signal: abort.signal }).then(
      () => {
        clearTimeout(timer);
        this.verified(b);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (timedOut) {
          this.hungBatches++;
          this.notify('warning', `verification worker hung for ${this.verifyTimeoutMs} ms: worker replaced, its batch of ${this.ring.count[b]} datagrams counted as overload`);
        } else if (attempt < 2 && !this.poolDestroyed) {
          this.rerunBatches++;
          this.notify('warning', `verification worker failed (${(err as Error)?.message ?? err}); re-running batch`);
          this.verify(b, attempt + 1);
          return;
        }
        const { layout, ints } = this.ring;
        for (let i = 0; i < this.ring.count[b]!; i++) ints[layout.metaIndex(layout.slotNumber(b, i)) + M_VERDICT] = V_OVERLOAD;
        this.verified(b);
      },
    );
  }
  private poolDestroyed = false;

  private verified(b: number): void {
    this.ring.state[b] = B_VERIFIED;
    this.inVerify--;
    this.collect();
    if (this.filling >= 0 && this.inVerify === 0) this.dispatch();
  }

  // ---- 4. collect (in order) ----------------------------------------------------

  /**
   * Collect every verified batch at the head of the dispatch order. Nothing in here runs
   * app code (events wait for {@link flushEvents}) and no send throws, so a batch is
   * always counted, unpinned and handed to its sender whole.
   */
  private collect(): void {
    const ring = this.ring;
    this.collectingDepth++;
    try {
      for (let b = ring.head(); b >= 0 && ring.state[b] === B_VERIFIED; b = ring.head()) {
        ring.popHead();
        this.collecting = b;
        collectBatch(ring, b, this.filter, this.books, this.sink, nowUs());
        this.flushHeld();
        this.keyTable.unpin(ring.ints[ring.layout.headerIndex(b) + H_KEY_HALF]!);
        if (this.lanes.length > 0) {
          this.orderBatchSends(b);
          continue;
        }
        ring.state[b] = B_SENDING;
        this.sends.closeBatch(b);
      }
      this.releaseSent();
    } finally {
      this.collectingDepth--;
    }
    this.flushEvents();
  }
  private collecting = -1;
  private collectingDepth = 0;

  /**
   * With several sockets (`sockets` > 1) every collected batch's REPLYs (marked
   * {@link F_SEND}) leave as one unit of the {@link SendOrder}, from the socket that
   * received the batch, once every earlier unit on another socket completed: nonce
   * order across sockets (PROTOCOL.md §3).
   */
  private orderBatchSends(b: number): void {
    const ring = this.ring;
    const k = Math.floor(b / ring.owned);
    if (k === 0) {
      ring.state[b] = B_SENDING;
      this.order.submit(0, () => this.sendMarked(b));
      return;
    }
    // a socket thread's batch: it sends the REPLYs marked F_SEND, reuses the batch and reports `sent`
    ring.state[b] = B_FREE;
    const lane = this.lanes[k - 1]!;
    if (lane.closed) return; // gone: nothing of its batches can be sent
    this.order.submit(k, () => {
      if (lane.closed) this.order.complete(k);
      else lane.worker.postMessage({ t: 'send', b } satisfies EngineToSocketMessage);
    });
  }

  /** Send this socket's batch `b`'s REPLYs marked {@link F_SEND}, in slot (= nonce) order; the last one completes the unit. */
  private sendMarked(b: number): void {
    const ring = this.ring;
    const { layout, ints } = ring;
    const n = ring.count[b]!;
    let last = -1;
    for (let i = 0; i < n; i++) {
      const s = layout.slotNumber(b, i);
      if ((ints[layout.metaIndex(s) + M_FLAGS]! & F_SEND) === 0) continue;
      if (last >= 0) this.sendReply(last, false);
      last = s;
    }
    if (last < 0 || !this.sendReply(last, true, this.onUnitSent)) this.order.complete(0); // nothing (more) to wait for
    this.sends.closeBatch(b);
    this.releaseSent();
  }

  /** Tracked completion of the engine socket's last send of a {@link SendOrder} unit. */
  private readonly onUnitSent = (err?: Error | null): void => {
    this.order.complete(0);
    this.sends.onSent(err);
  };

  // ---- 5. reply -----------------------------------------------------------------

  private readonly sink: CollectSink = {
    reply: (s: number, i: number): void => {
      const ring = this.ring;
      const off = ring.layout.replyOffset(s);
      const len = ring.ints[ring.layout.metaIndex(s) + M_LENGTH]!;
      let nonce = this.batchNonce[this.collecting]! + i;
      if (nonce <= this.lastSentNonce) nonce = this.resign(s, off, len);
      this.lastSentNonce = nonce;
      this.books.replied++;
      if (this.lanes.length > 0) {
        const mi = ring.layout.metaIndex(s);
        ring.ints[mi + M_FLAGS] = ring.ints[mi + M_FLAGS]! | F_SEND; // sent as the batch's unit, in nonce order across sockets
        return;
      }
      if (this.held >= 0) this.sendReply(this.held, false);
      this.held = s;
    },
    deliver: (s: number, type: number): void => {
      if (type === TYPE_REPLY) {
        if (this.listenerCount('reply') > 0) this.notify('reply', this.replyEvent(s));
      } else if (type === TYPE_PUNCH_HINT) {
        this.onPunchHint(s);
      }
    },
  };

  /**
   * Send the REPLY in slot `s`. Only the last REPLY of a batch is sent with a completion
   * callback (sends complete in order, so its completion frees the batch): a callback
   * costs a `process.nextTick` per send (0.05–0.13 µs of this thread over 4 runs of `npm
   * run bench:micro -- --only dgram`, e.g. 1317 vs 1257 ns per send, 2-core Xeon VM, Node 20).
   */
  private sendReply(s: number, track: boolean, onSent?: (err?: Error | null) => void): boolean {
    const ring = this.ring;
    const view = replyView(this.replyViews, ring.bytes, ring.layout.replyOffset(s), s, ring.ints[ring.layout.metaIndex(s) + M_LENGTH]!);
    return this.sends.send(this.socket, view, ring.port[s]!, ring.addr[s]!, track, onSent); // a refused send is counted, never thrown
  }
  private readonly replyViews: Array<Buffer | undefined>;

  /** The REPLY held back as its batch's last (see {@link sendReply}), or -1. */
  private held = -1;

  /** Send the held REPLY now, tracked: before any other packet takes the wire (nonce order) and at the end of each batch. */
  private flushHeld(): void {
    const s = this.held;
    if (s < 0) return;
    this.held = -1;
    this.sendReply(s, true);
  }

  /** A reply whose reserved nonce was overtaken by a locally sent packet: fresh nonce, fresh MAC here. */
  private resign(s: number, off: number, len: number): number {
    const ring = this.ring;
    const nonce = this.nonces.take();
    writeU64Number(ring.bytes, off + OFF_NONCE, nonce);
    const k = ring.ints[ring.layout.metaIndex(s) + M_ENTRY]!;
    // The pinned half may have been rewritten since; look the requester up in the active half.
    const req = ring.layout.datagramOffset(s);
    const k2 = this.keyTable.lookup(ring.bytes.subarray(req + OFF_SENDER_ID, req + OFF_SENDER_ID + 8));
    const entry = k2 >= 0 ? k2 : k;
    macSeal(this.keyTable.keys, entry + KE_STATE_CUR, ring.bytes, off, len, this.keyTable.keyBytes, (entry + KE_RAW_CUR) * 4);
    this.resigned++;
    return nonce;
  }

  private replyEvent(s: number): ReplyEvent {
    const ring = this.ring;
    const off = ring.layout.datagramOffset(s);
    const mi = ring.layout.metaIndex(s);
    return {
      from: this.keyring.agentOf(ring.ints[mi + M_PEER]!) ?? '',
      probeId: readU32(ring.bytes, off + OFF_PROBE_ID),
      recvUs: ring.times[ring.layout.timeIndex(s)]!,
      sendTsUs: readU64Number(ring.bytes, off + OFF_SEND_TS),
      length: ring.ints[mi + M_LENGTH]!,
    };
  }

  /**
   * Accepted PUNCH_HINT (PROTOCOL.md §2): the policy decides (known target, permitted
   * address, rate limits); a granted hint sends `punchBurst` PROBEs to the target at the
   * given address. Either way a `punch_hint` event says what happened.
   */
  private onPunchHint(s: number): void {
    const ring = this.ring;
    const bytes = ring.bytes;
    const off = ring.layout.datagramOffset(s) + OFF_PAYLOAD;
    const kt = this.keyTable;
    const k = findKeyEntry(kt.keys, kt.capacity, kt.active, readU32(bytes, off + HINT_OFF_TARGET) | 0, readU32(bytes, off + HINT_OFF_TARGET + 4) | 0);
    const family = bytes[off + HINT_OFF_FAMILY]!;
    const port = (bytes[off + HINT_OFF_PORT]! << 8) | bytes[off + HINT_OFF_PORT + 1]!;
    let decision: string;
    if (this.punch === null) decision = 'ignored';
    else if ((family === 6) !== (this.address.family === 'IPv6')) decision = 'wrong_family'; // this socket cannot reach that family: judged before any token is charged
    else {
      const n = this.punch.judgeHint(bytes, off, k >= 0, performance.now());
      decision = n < 0 ? punchRefusalName(n) : 'sent';
      if (n > 0) {
        const agent = this.keyring.agentOf(kt.keys[k + KE_PEER]!)!;
        const host = formatHintAddress(family, bytes, off + HINT_OFF_ADDR);
        let sent = 0;
        for (let i = 0; i < n; i++) if (this.trySendPacket(TYPE_PROBE, agent, host, port, PUNCH_PROBE_ID_BASE + i, MIN_DATAGRAM) >= 0) sent++;
        if (sent === 0) {
          // nothing left: the tokens are given back (charged only for a burst actually sent) and the collector goes on
          this.punch.refund(readU32(bytes, off + HINT_OFF_TARGET) | 0, readU32(bytes, off + HINT_OFF_TARGET + 4) | 0);
          decision = 'send_failed';
        }
      }
    }
    if (this.listenerCount('punch_hint') === 0) return;
    const mi = ring.layout.metaIndex(s);
    this.notify('punch_hint', {
      from: this.keyring.agentOf(ring.ints[mi + M_PEER]!) ?? '',
      target: bytes.subarray(off + HINT_OFF_TARGET, off + HINT_OFF_TARGET + 8).toString('hex'),
      family,
      address: formatHintAddress(family, bytes, off + HINT_OFF_ADDR),
      port,
      decision,
    } satisfies PunchHintEvent);
  }

  /** Free collected batches whose replies have all left (sends complete in FIFO order). */
  private releaseSent(): void {
    this.sends.release();
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drained !== null && this.idle()) this.drained();
  }

  /** Nothing filling, in flight or sending, here or in any socket thread (once told to stop). */
  private idle(): boolean {
    return (
      this.filling < 0 &&
      this.ring.freeCount === this.ring.owned &&
      this.ring.head() < 0 &&
      this.sends.idle &&
      this.order.pending === 0 &&
      this.lanes.every((l) => l.drained)
    );
  }

  // ---- events -------------------------------------------------------------------

  /**
   * Emit `name` once the pipeline is settled: events raised while a batch is collected
   * are queued and emitted after it (its verdicts counted, its key-table half unpinned,
   * its sends issued), so app code — a listener that throws, or calls `close()`,
   * `setPeers()`, `applyHeartbeat()` — never runs inside a stage. A listener's exception
   * goes to the `'error'` listeners when there are any, else it is thrown on a later
   * tick (as Node's own emitters do with no `'error'` listener); the engine is whole
   * either way.
   */
  private notify(name: string, payload: unknown): void {
    this.events.push({ name, payload });
    if (this.collectingDepth === 0) this.flushEvents();
  }

  private flushEvents(): void {
    if (this.emitting || this.collectingDepth > 0) return; // the outer flush takes what a listener queues
    this.emitting = true;
    try {
      for (let e = this.events.shift(); e !== undefined; e = this.events.shift()) {
        try {
          this.emit(e.name, e.payload);
        } catch (err) {
          this.listenerFailed(err);
        }
      }
    } finally {
      this.emitting = false;
    }
  }

  private listenerFailed(err: unknown): void {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (again) {
        err = again;
      }
    }
    setImmediate(() => {
      throw err;
    });
  }

  // ---- sending (prober, punch bursts) ----------------------------------------------

  /**
   * Send one v1 packet of `type` to `agent` at `host:port`, `size` bytes in all (50 …
   * maxDatagram), under the next nonce and the newest pair key (PROTOCOL.md §3).
   * `payload` (optional) fills the payload area from its start. Returns the nonce, or
   * -1 when Node refused the send at once (counted in `send_errors`, like every send
   * the kernel refuses later: PROTOCOL.md §4). Throws a `RangeError` for an agent not in
   * the roster, a size or a port out of range. With several sockets the packet waits
   * until every REPLY with a smaller nonce left the other sockets (PROTOCOL.md §3).
   */
  sendPacket(type: number, agent: string, host: string, port: number, probeId: number, size: number, payload?: Uint8Array): number {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be an integer from 1 to 65535, got ${port}`);
    let id = this.peerIds.get(agent);
    if (id === undefined) {
      id = senderIdOf(agent);
      this.peerIds.set(agent, id);
    }
    const k = this.keyTable.lookup(id);
    if (k < 0) throw new RangeError(`${agent} is not in the roster`);
    if (!Number.isInteger(size) || size < MIN_DATAGRAM || size > this.maxDatagram) {
      throw new RangeError(`size must be an integer from ${MIN_DATAGRAM} to ${this.maxDatagram}`);
    }
    const buf = Buffer.allocUnsafe(size);
    this.flushHeld(); // a REPLY already given a smaller nonce leaves first
    const nonce = this.nonces.take();
    writeHeader(buf, 0, type, this.selfId, nonce, probeId >>> 0, Math.floor(nowUs()));
    buf.fill(0, OFF_PAYLOAD, size);
    if (payload !== undefined) buf.set(payload.subarray(0, size - MIN_DATAGRAM), OFF_PAYLOAD);
    macSeal(this.keyTable.keys, k + KE_STATE_CUR, buf, 0, size, this.keyTable.keyBytes, (k + KE_RAW_CUR) * 4);
    this.lastSentNonce = nonce;
    if (this.lanes.length > 0) {
      // after every earlier REPLY of the other sockets left (nonce order across sockets, PROTOCOL.md §3)
      this.order.submit(0, () => {
        if (!this.sendOwn(buf, port, host, this.onOwnSent)) this.order.complete(0);
      });
      return nonce;
    }
    return this.sendOwn(buf, port, host) ? nonce : -1;
  }

  /**
   * {@link sendPacket} for the engine's own callers on the hot path (punch bursts): -1
   * instead of an exception for a peer left the roster or a refused send.
   */
  private trySendPacket(type: number, agent: string, host: string, port: number, probeId: number, size: number): number {
    try {
      return this.sendPacket(type, agent, host, port, probeId, size);
    } catch {
      return -1;
    }
  }

  /** Put an own packet on the socket; a refused send is counted (`send_errors`), never thrown. Returns whether it was issued. */
  private sendOwn(buf: Buffer, port: number, host: string, onSent: (err: Error | null) => void = this.onOwnError): boolean {
    try {
      this.socket.send(buf, port, host, onSent);
      return true;
    } catch {
      this.books.sendErrors++;
      return false;
    }
  }

  /** Completion of an own packet: only a refusal counts (Node drops the error of a send without a callback). */
  private readonly onOwnError = (err: Error | null): void => {
    if (err) this.books.sendErrors++;
  };

  /** Completion of an own packet sent as a {@link SendOrder} unit. */
  private readonly onOwnSent = (err: Error | null): void => {
    if (err) this.books.sendErrors++;
    this.order.complete(0);
    this.checkDrained();
  };

  /** Send a PROBE (see {@link sendPacket}). */
  sendProbe(agent: string, host: string, port: number, probeId: number, size: number): number {
    return this.sendPacket(TYPE_PROBE, agent, host, port, probeId, size);
  }

  // ---- shutdown -----------------------------------------------------------------

  /**
   * Stop receiving (datagrams arriving from now on are counted as `overload`), drain
   * every in-flight batch, send its replies, stop the pool, close the socket; resolves
   * with the final stats, where `received = accepted + Σ dropped`.
   */
  close(): Promise<EngineStats> {
    if (this.closed !== null) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      if (this.graceTimer !== null) clearTimeout(this.graceTimer);
      for (const l of this.lanes) if (!l.closed) l.worker.postMessage({ t: 'stop' } satisfies EngineToSocketMessage);
      if (this.filling >= 0) this.dispatch();
      if (!this.idle()) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = null;
      this.poolDestroyed = true;
      await this.pool.destroy();
      this.inlineVerifier.close();
      this.finalKernelDrops = this.kernelDrops();
      this.socketClosed = true;
      // socket threads close their sockets and report what arrived since they drained (overload)
      await Promise.all(
        this.lanes.map(async (l) => {
          if (!l.closed) {
            await new Promise<void>((resolve) => {
              l.done = resolve;
              l.worker.postMessage({ t: 'close' } satisfies EngineToSocketMessage);
            });
          }
          await l.worker.terminate();
        }),
      );
      await new Promise<void>((resolve) => this.socket.close(() => resolve()));
      return this.stats();
    })();
    return this.closed;
  }
}
