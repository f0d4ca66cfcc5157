/**
 * The pipeline: the engine's stages wired together (ENGINE.md "Shape"). Flow of one
 * datagram:
 *
 *   1. lane (sequential, the lane's thread; dgram-lane.ts or native-lane.ts): the socket
 *      hands over the datagram; it is copied once into the next slot of the lane's
 *      filling batch with its receive time (a source no reply can go to is flagged) —
 *      by JS per datagram (dgram), or by the kernel itself, `recvmmsg` straight into the
 *      slots with kernel timestamps (native). No free batch → counted `overload`
 *      (nothing blocks, memory never grows).
 *   2. dispatch (sequential, this thread; dispatch.ts): a full batch — or a partial one
 *      once the pool is idle or it is small — pins the key-table half, reserves REPLY
 *      nonces in dispatch order (PROTOCOL.md §3) and goes on by index: verified here if
 *      small (fewer than `inlineBelow`), else to the pool.
 *   3. verify (PARALLEL, piscina workers; pool.ts, verify.ts): unconditional drops, key
 *      lookup, HMAC, clock (PROTOCOL.md §4 u1–c3) in place; REPLYs of passing PROBEs
 *      signed into the slot.
 *   4. collect (sequential, in dispatch order, this thread; collect.ts): a batch whose
 *      pinned half a later publish replaced is judged again under the newest roster
 *      here; replay check (PROTOCOL.md §5), verdict counters, receive→verdict latency histogram; accepted
 *      REPLYs become events, accepted PUNCH_HINTs are judged (hints.ts).
 *   5. reply (sequential; reply.ts, then the lane): each collected batch is one unit of
 *      the send order and goes back to the lane that received it, which sends its marked
 *      REPLYs and reuses the batch once they left; own packets are units of lane 0.
 *
 * With `sockets` > 1, extra socket threads are lanes too (thread-lane.ts): stages 1 and
 * 5 run there, stages 2–4 here, so there is one replay filter and one nonce counter.
 *
 * This class owns the stages and the drain; the {@link Engine} facade owns options, keys,
 * events and the public API.
 */
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { KeyRing } from '../keys/keyring.js';
import type { KeyTable } from '../keys/keytable.js';
import type { NonceCounter } from '../keys/nonce.js';
import { readKernelDrops } from '../observe/kernel-drops.js';
import { Books, type EngineStats } from '../observe/stats.js';
import { readU32, readU64Number } from '../protocol/codec.js';
import { warmUpMac } from '../protocol/mac.js';
import type { PunchPolicy } from '../protocol/punch.js';
import type { ReplayFilter } from '../protocol/replay.js';
import { OFF_PROBE_ID, OFF_SEND_TS, TYPE_PUNCH_HINT, TYPE_REPLY } from '../protocol/wire.js';
import { Collector, type CollectOutput } from './collect.js';
import type { DgramLane } from './dgram-lane.js';
import { Dispatcher } from './dispatch.js';
import { HintHandler, type PunchHintEvent } from './hints.js';
import type { Lane, LaneSink } from './lane.js';
import { M_LENGTH, M_PEER } from './layout.js';
import { type LaneSocketOptions, NativeLane, openLane } from './native-lane.js';
import { VerifyPool } from './pool.js';
import { ReplySender } from './reply.js';
import { BatchRing } from './ring.js';
import type { SocketThreadConfig } from './socket-thread.js';
import { ThreadLane } from './thread-lane.js';
import { BatchVerifier, type VerifyConfig } from './verify.js';

/**
 * An own packet (a PROBE, a punch burst's PROBE) refused after `sendPacket` returned its
 * nonce — by the kernel (the dgram lane's callback; a send queued behind a full buffer) or
 * by Node — counted in `send_errors` (PROTOCOL.md §4): it never left. A refusal during the
 * call makes `sendPacket` return -1 instead, with no event.
 */
export interface SendErrorEvent {
  /** The packet's type byte (PROTOCOL.md §2: 1 = PROBE). */
  type: number;
  /** The agent it was for. */
  agent: string;
  /** Its probe_id. */
  probeId: number;
  /** What the kernel said, one line. */
  error: string;
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
  /**
   * A copy of a REPLY already accepted: it passed every check but the replay check
   * (PROTOCOL.md §4 c4) and is counted `replay` in the engine's books. Only the
   * prober's reply hooks ({@link Engine.addReplySink}) get these, to count duplicates
   * (MEASUREMENT.md §1); the `'reply'` event is for accepted REPLYs only (always false).
   */
  replay: boolean;
}

/** What the engine gives its pipeline (resolved and validated options, keys, callbacks). */
export interface PipelineConfig {
  workers: number;
  batchSize: number;
  /** Batches per lane. */
  batchesPerLane: number;
  /** Lanes: the engine's own socket plus `sockets - 1` socket threads. */
  sockets: number;
  /** Socket threads bind their own ephemeral ports instead of sharing the listen port (tests on Node without reusePort). */
  separatePorts: boolean;
  reusePort: boolean;
  host: string;
  port: number;
  recvBufferBytes: number;
  /** The lane kind (resolved: never `auto`) and socket options of every socket. */
  laneOptions: LaneSocketOptions;
  maxDatagram: number;
  inlineBelow: number;
  verifyTimeoutMs: number;
  clockWindowUs: number;
  startUs: number;
  workerFile: string;
  keyring: KeyRing;
  keyTable: KeyTable;
  filter: ReplayFilter;
  nonces: NonceCounter;
  punch: PunchPolicy | null;
  /** Whether anyone listens for event `name`. */
  listening: (name: string) => boolean;
  /** Raise an engine event (the engine emits it at a safe point). */
  notify: (name: string, payload: unknown) => void;
  /** The collector caught up: app code may run. */
  settled: () => void;
}

const defaultWorkerFile = fileURLToPath(new URL('../../workers/verify.js', import.meta.url));

/** The pipeline; see the file header. */
export class Pipeline implements LaneSink, CollectOutput {
  readonly ring: BatchRing;
  readonly books = new Books();
  /** The engine's own lane (lane 0): a {@link DgramLane} or a {@link NativeLane}, by `laneOptions.kind`. */
  readonly own: DgramLane | NativeLane;
  readonly lanes: Lane[];
  readonly dispatcher: Dispatcher;
  readonly collector: Collector;
  readonly replies: ReplySender;
  readonly hints: HintHandler;
  readonly pool: VerifyPool;
  private readonly inline: BatchVerifier;
  /** Judges again, under the engine thread's newest table, a batch verified under a replaced half (collect.ts). */
  private readonly newest: BatchVerifier;
  /**
   * @internal The probers' reply hooks ({@link Engine.addReplySink}; one per `probe()` run,
   * several at once on one engine): every accepted REPLY, handed synchronously from inside
   * the collector as one reused {@link ReplyEvent}, valid only during the call. A `'reply'`
   * event is a fresh object queued and emitted after the collector settles, with its
   * wrapper and the emitter's argument array: three allocations per REPLY, a share of the
   * prober's young-generation collections (heap sampling, note on issue 12 of 2026-12-02).
   */
  readonly replySinks: Array<(r: ReplyEvent) => void> = [];
  /** The one object {@link replySinks} get (its times start as doubles: V8 keeps them in place). */
  private readonly replyView: ReplyEvent = { from: '', probeId: 0.5, recvUs: 0.5, sendTsUs: 0.5, length: 0, replay: false };
  private drainedWait: (() => void) | null = null;
  private finalKernelDrops: number | null = null;
  private socketClosed = false;

  private constructor(
    private readonly cfg: PipelineConfig,
    ring: BatchRing,
    inline: BatchVerifier,
    newest: BatchVerifier,
    pool: VerifyPool,
    own: DgramLane | NativeLane,
  ) {
    this.ring = ring;
    this.inline = inline;
    this.newest = newest;
    this.pool = pool;
    this.own = own;
    this.lanes = [own];
    this.collector = new Collector(ring, cfg.filter, this.books, cfg.keyTable, this, newest);
    this.replies = new ReplySender(ring, cfg.keyTable, cfg.nonces, cfg.keyring.selfId, cfg.maxDatagram, own, () => this.checkDrained(), (type, agent, probeId, err) => {
      if (cfg.listening('send_error')) cfg.notify('send_error', { type, agent, probeId, error: err.message } satisfies SendErrorEvent);
    });
    this.dispatcher = new Dispatcher(ring, cfg.keyTable, cfg.nonces, this.collector, pool, inline, cfg.inlineBelow, () => {
      for (const l of this.lanes) l.kick();
    });
    this.hints = new HintHandler(ring, cfg.keyTable, cfg.keyring, cfg.punch, this.replies, own.address().family === 'IPv6', () => cfg.listening('punch_hint'), (e: PunchHintEvent) =>
      cfg.notify('punch_hint', e),
    );
  }

  /**
   * Start the pool (and wait until every worker has loaded), bind the engine's socket,
   * start the socket threads. Throws a one-line `DtmeshError` when a socket cannot bind;
   * nothing is left running then.
   */
  static async create(cfg: PipelineConfig): Promise<Pipeline> {
    const lanesTotal = cfg.sockets;
    const ring = new BatchRing(cfg.batchesPerLane * lanesTotal, cfg.batchSize, cfg.maxDatagram, cfg.batchesPerLane);
    const vcfg: VerifyConfig = {
      batchSab: ring.sab,
      batches: ring.layout.batches,
      slots: cfg.batchSize,
      maxDatagram: cfg.maxDatagram,
      keySab: cfg.keyTable.sab,
      keyCapacity: cfg.keyTable.capacity,
      selfId: cfg.keyring.selfId,
      clockWindowUs: cfg.clockWindowUs,
      startUs: cfg.startUs,
    };
    const inline = new BatchVerifier(vcfg);
    const newest = new BatchVerifier(vcfg, { keys: cfg.keyTable.own, keyBytes: cfg.keyTable.ownBytes });
    const closeVerifiers = (): void => {
      inline.close();
      newest.close();
    };
    warmUpMac(); // this thread verifies small batches and signs own packets
    const warn = (m: string): void => cfg.notify('warning', m);
    let pool: VerifyPool;
    try {
      pool = await VerifyPool.start(cfg.workerFile || defaultWorkerFile, vcfg, cfg.workers, ring, cfg.verifyTimeoutMs, warn);
    } catch (e) {
      closeVerifiers();
      throw e;
    }
    let own: DgramLane | NativeLane;
    try {
      own = await openLane({ index: 0, ring, host: cfg.host, port: cfg.port, reusePort: cfg.reusePort, recvBufferBytes: cfg.recvBufferBytes }, cfg.laneOptions);
    } catch (e) {
      await pool.destroy();
      closeVerifiers();
      throw e;
    }
    const p = new Pipeline(cfg, ring, inline, newest, pool, own);
    own.start(p);
    try {
      for (let k = 1; k < lanesTotal; k++) {
        const tc: SocketThreadConfig = {
          index: k,
          batchSab: ring.sab,
          batches: ring.layout.batches,
          slots: cfg.batchSize,
          maxDatagram: cfg.maxDatagram,
          firstBatch: k * cfg.batchesPerLane,
          perLane: cfg.batchesPerLane,
          host: cfg.host,
          port: cfg.separatePorts ? 0 : own.port,
          reusePort: cfg.reusePort,
          recvBufferBytes: cfg.recvBufferBytes,
          laneOptions: cfg.laneOptions,
        };
        p.lanes.push(await ThreadLane.start(tc, p));
      }
    } catch (e) {
      await p.close();
      throw e;
    }
    return p;
  }

  /**
   * The verifier that runs small batches on this thread (stage 3 inline; the dispatcher
   * calls its `run`): benchmarks time it apart from dispatch (`bench/responder.ts`).
   */
  get inlineVerifier(): BatchVerifier {
    return this.inline;
  }

  /** Where the slots' receive times come from: the kernel's stamps (native lane) or the JS clock (dgram lane). */
  get timestamps(): 'kernel' | 'js' {
    return this.own instanceof NativeLane ? this.own.timestamps : 'js';
  }

  /** The engine's own socket sends REPLY runs as UDP GSO messages (native lane, `gso` asked for, the kernel has it). */
  get gso(): boolean {
    return this.own instanceof NativeLane && this.own.gso;
  }

  // ---- LaneSink: what the lanes hand on ------------------------------------------

  filled(lane: Lane, b: number, count: number): void {
    this.dispatcher.dispatch(lane, b, count);
  }

  takePartial(_lane: Lane, count: number): boolean {
    return this.dispatcher.takePartial(count);
  }

  sent(lane: Lane): void {
    this.replies.sent(lane);
    this.checkDrained();
  }

  drained(): void {
    this.checkDrained();
  }

  failed(lane: Lane, why: string): void {
    this.replies.laneFailed(lane);
    this.cfg.notify('warning', why);
    this.checkDrained();
  }

  // ---- CollectOutput: what the collector hands on ------------------------------------

  reply(b: number, s: number, i: number): void {
    this.replies.reply(b, s, i);
  }

  deliver(s: number, type: number): void {
    if (type === TYPE_REPLY) {
      if (this.replySinks.length > 0) this.toSinks(this.readReply(s, this.replyView));
      if (this.cfg.listening('reply')) this.cfg.notify('reply', this.readReply(s, { from: '', probeId: 0, recvUs: 0, sendTsUs: 0, length: 0, replay: false }));
    } else if (type === TYPE_PUNCH_HINT) this.hints.judge(s, performance.now());
  }

  duplicate(s: number): void {
    if (this.replySinks.length === 0) return;
    const r = this.readReply(s, this.replyView);
    r.replay = true;
    this.toSinks(r);
    r.replay = false;
  }

  /** Hand `r` to every reply hook; a hook that throws is one warning, never the collector's end. */
  private toSinks(r: ReplyEvent): void {
    const sinks = this.replySinks;
    for (let k = 0; k < sinks.length; k++) {
      try {
        sinks[k]!(r);
      } catch (e) {
        this.cfg.notify('warning', `reply hook failed: ${(e as Error).message}`);
      }
    }
  }

  collected(lane: Lane, b: number): void {
    this.replies.batchCollected(lane, b);
    this.hints.run(); // own bursts after the batch's REPLYs: nonce order
  }

  settled(): void {
    this.checkDrained();
    this.cfg.settled();
  }

  /** The accepted REPLY of slot `s`, written into `r` (returned). */
  private readReply(s: number, r: ReplyEvent): ReplyEvent {
    const { layout, ints, bytes, times } = this.ring;
    const off = layout.datagramOffset(s);
    const mi = layout.metaIndex(s);
    r.from = this.cfg.keyring.agentOf(ints[mi + M_PEER]!) ?? '';
    r.probeId = readU32(bytes, off + OFF_PROBE_ID);
    r.recvUs = times[layout.timeIndex(s)]!;
    r.sendTsUs = readU64Number(bytes, off + OFF_SEND_TS);
    r.length = ints[mi + M_LENGTH]!;
    return r;
  }

  // ---- books ---------------------------------------------------------------------

  /** The books, every lane's counts included, plus kernel drops of the engine's socket. */
  stats(): EngineStats {
    const s = this.books.snapshot();
    for (const l of this.lanes) {
      const c = l.counts;
      s.received += c.received;
      s.dropped.overload += c.overload;
      s.send_errors += c.sendErrors;
    }
    const kd = this.socketClosed ? this.finalKernelDrops : this.kernelDrops();
    if (kd !== null) s.kernel_drops = kd;
    s.lane = this.cfg.laneOptions.kind;
    if (this.own instanceof NativeLane && this.own.timestamps === 'kernel') s.unstamped = this.own.unstampedReceives;
    return s;
  }

  private kernelDrops(): number | null {
    const a = this.own.address();
    return readKernelDrops(a.port, a.family as 'IPv4' | 'IPv6', a.address);
  }

  // ---- drain and close -------------------------------------------------------------

  /** Nothing filling, in flight or sending, in any lane (once stopped). */
  private idle(): boolean {
    return !this.collector.pending && this.replies.pending === 0 && this.lanes.every((l) => l.drained);
  }

  private checkDrained(): void {
    if (this.drainedWait !== null && this.idle()) this.drainedWait();
  }

  /**
   * Stop every lane (datagrams from now on are `overload`), drain every batch in flight,
   * send its REPLYs, stop the pool, close the sockets.
   */
  async close(): Promise<void> {
    this.dispatcher.closing = true;
    for (const l of this.lanes) l.stop();
    if (!this.idle()) await new Promise<void>((resolve) => (this.drainedWait = resolve));
    this.drainedWait = null;
    await this.pool.destroy();
    this.inline.close();
    this.newest.close();
    this.finalKernelDrops = this.kernelDrops();
    this.socketClosed = true;
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}
