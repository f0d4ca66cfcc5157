/**
 * The dtmesh engine: receive, verify and answer mesh probes at line rate — the public
 * facade (ENGINE.md "Embedding"): options in, events and stats out.
 *
 * Flow of one datagram (the stages are src/pipeline/, one file each; pipeline.ts wires
 * them and says which run in parallel):
 *   1. lane (the socket's thread): into a batch of the shared ring      dgram-lane.ts, native-lane.ts
 *   2. dispatch (this thread): pin keys, reserve REPLY nonces, route          dispatch.ts
 *   3. verify (PARALLEL, piscina workers; small batches here)                 pool.ts, verify.ts
 *   4. collect (this thread, in dispatch order): replay check, books         collect.ts
 *   5. reply (in nonce order across sockets), back through the lane           reply.ts
 *
 * This file owns what an embedding app touches: option checks, the keys (root, roster,
 * rotation with grace), the agent's nonce counter and state-directory lock, events
 * (emitted only at safe points: a listener never runs inside a stage), stats, the own
 * packets of the prober and `close()`.
 */
import { EventEmitter } from 'node:events';
import type { Histogram } from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import { nowUs } from './clock.js';
import { DtmeshError } from './errors.js';
import { KeyRing } from './keys/keyring.js';
import { loadRootKey, parseHeartbeat, persistHeartbeat, rootKeyBytes, type Heartbeat } from './keys/keystore.js';
import { KeyTable } from './keys/keytable.js';
import { NonceCounter } from './keys/nonce.js';
import type { EngineStats } from './observe/stats.js';
import { assertValidId } from './protocol/ids.js';
import { PunchPolicy } from './protocol/punch.js';
import { ReplayFilter } from './protocol/replay.js';
import { TYPE_PROBE } from './protocol/wire.js';
import { type EngineOptions, type ResolvedOptions, resolveOptions } from './options.js';
import type { PunchStats } from './pipeline/hints.js';
import type { PacketLane } from './pipeline/lane.js';
import { type LaneKind, resolveLane } from './pipeline/native-lane.js';
import { Pipeline, type ReplyEvent, type SendErrorEvent } from './pipeline/pipeline.js';
import { reusePortSupported } from './pipeline/socket-thread.js';

export type { EngineOptions } from './options.js';
export { parseHostPort } from './options.js';
export { PUNCH_PROBE_ID_BASE, type PunchHintEvent, type PunchStats } from './pipeline/hints.js';
export type { ReplyEvent, SendErrorEvent } from './pipeline/pipeline.js';
export { TASKS_PER_WORKER } from './pipeline/pool.js';

/**
 * The engine. Create with {@link Engine.create}; it serves as soon as the promise
 * resolves (socket bound, pool up). Events: `'reply'` ({@link ReplyEvent}),
 * `'send_error'` ({@link SendErrorEvent}: an own packet the kernel refused after
 * {@link sendPacket} returned), `'punch_hint'` ({@link PunchHintEvent}), `'warning'`
 * (string), and `'error'` for an exception thrown by one of the app's own listeners.
 */
export class Engine extends EventEmitter {
  /** Verification workers. */
  readonly workers: number;
  /** Sockets serving (1 unless `sockets` was asked for and Node has `reusePort`). */
  readonly sockets: number;
  /** One line when `sockets` could not be honoured (the dgram lane on Node without `reusePort`), else null. */
  readonly socketsNote: string | null;
  /** The lane serving every socket (ENGINE.md "Lanes"): `native` or `dgram` (`auto` resolved). */
  readonly lane: LaneKind;
  /** One line when `lane: 'auto'` fell back to dgram (addon not built, not Linux), else null. */
  readonly laneNote: string | null;
  readonly batchSize: number;
  readonly maxDatagram: number;
  readonly rotationGraceMs: number;
  /** Receiver start, µs (restart fence, PROTOCOL.md §5). */
  readonly startUs: number;
  private readonly stateDir: string | null;
  private readonly maxPeers: number;
  private readonly keyring: KeyRing;
  private readonly keyTable: KeyTable;
  private readonly filter: ReplayFilter;
  private readonly nonces: NonceCounter;
  private readonly punch: PunchPolicy | null;
  private pipeline!: Pipeline;
  private graceTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private closed: Promise<EngineStats> | null = null;
  /** Events raised inside a stage, emitted once the collector settled (see {@link notify}). */
  private readonly events: Array<{ name: string; payload: unknown }> = [];
  private emitting = false;
  /** The probers' send-error hooks ({@link addSendErrorSink}). */
  private readonly sendErrorSinks: Array<(e: SendErrorEvent) => void> = [];

  private constructor(opts: EngineOptions, o: ResolvedOptions, root: Uint8Array, lane: { kind: LaneKind; note: string | null }) {
    super();
    this.lane = lane.kind;
    this.laneNote = lane.note;
    // the native lane sets SO_REUSEPORT itself, on any Node
    const canReuse = opts.separatePorts === true || lane.kind === 'native' || reusePortSupported();
    this.workers = o.workers;
    this.sockets = canReuse ? o.sockets : 1;
    this.socketsNote =
      o.sockets > 1 && !canReuse ? `${o.sockets} sockets asked for, but Node ${process.version} has no reusePort (Node >= 22.12 or >= 23.1): serving on one socket` : null;
    this.batchSize = o.batchSize;
    this.maxDatagram = o.maxDatagram;
    this.rotationGraceMs = o.rotationGraceMs;
    this.maxPeers = o.maxPeers;
    this.stateDir = opts.stateDir ?? null;
    this.punch = opts.punch === false ? null : new PunchPolicy(opts.punch ?? {});
    this.keyring = new KeyRing(opts.tenant, opts.agent, root, opts.peers);
    this.keyTable = new KeyTable(o.maxPeers);
    this.filter = new ReplayFilter(o.replayWindow, Math.max(16, this.keyring.peerSlots));
    this.publishKeys();
    this.startUs = Math.floor(nowUs());
    this.nonces = new NonceCounter(this.stateDir, opts.agent); // one agent, one counter: the state-directory lock (PROTOCOL.md §3)
    // A ceiling the counter could not persist: nonces past it may be reused after a crash.
    // Said as a 'warning' (at most once a minute: a read-only directory fails every retry),
    // counted in stats().nonce_write_errors. Called inside take(), on the send path: the
    // event goes out on a later microtask, never re-entering the engine from there.
    let warnedAt = -Infinity;
    this.nonces.onWriteError = (err) => {
      const now = performance.now();
      if (now - warnedAt < 60_000) return;
      warnedAt = now;
      queueMicrotask(() => this.notify('warning', err.message));
    };
  }

  /**
   * Validate options, load the root key, take the agent's lock on its state directory,
   * start the pool and bind the socket(s). Throws `TypeError`/`RangeError` for bad
   * options (also a `DTMESH_LANE` that names no lane when `lane` is not given) and
   * {@link DtmeshError} for key files, a second process of the same agent
   * and sockets (one line, no secret).
   */
  static async create(opts: EngineOptions): Promise<Engine> {
    const o = resolveOptions(opts);
    const lane = resolveLane(o.lane);
    if (o.dscp >= 0 && lane.kind !== 'native') {
      throw new RangeError(`options.dscp needs the native lane (lane 'native', or 'auto' where it is built); this engine would run the dgram lane`);
    }
    if (o.gso && lane.kind !== 'native') {
      throw new RangeError(`options.gso needs the native lane (lane 'native', or 'auto' where it is built); this engine would run the dgram lane`);
    }
    const root = opts.rootKey !== undefined ? rootKeyBytes(opts.rootKey, 'root key') : loadRootKey(opts.stateDir!);
    const engine = new Engine(opts, o, root, lane);
    // every socket on a shared port needs SO_REUSEPORT, the engine's own included
    const reusePort = engine.sockets > 1 && opts.separatePorts !== true;
    try {
      engine.pipeline = await Pipeline.create({
        workers: o.workers,
        batchSize: o.batchSize,
        batchesPerLane: o.batches,
        sockets: engine.sockets,
        separatePorts: opts.separatePorts === true,
        reusePort,
        host: o.host,
        port: o.port,
        recvBufferBytes: o.recvBufferBytes,
        laneOptions: { kind: lane.kind, ttl: o.ttl, dscp: o.dscp, sendBufferBytes: o.sendBufferBytes, gso: o.gso },
        maxDatagram: o.maxDatagram,
        inlineBelow: o.inlineBelow,
        verifyTimeoutMs: o.verifyTimeoutMs,
        clockWindowUs: o.clockWindowMs * 1000,
        startUs: engine.startUs,
        workerFile: opts.workerFile ?? '',
        keyring: engine.keyring,
        keyTable: engine.keyTable,
        filter: engine.filter,
        nonces: engine.nonces,
        punch: engine.punch,
        listening: (name) => engine.listenerCount(name) > 0 || (name === 'send_error' && engine.sendErrorSinks.length > 0),
        notify: (name, payload) => engine.notify(name, payload),
        settled: () => engine.flushEvents(),
      });
    } catch (e) {
      engine.nonces.close();
      throw e;
    }
    return engine;
  }

  // ---- who and where ---------------------------------------------------------------

  /** The bound address. */
  get address(): { address: string; port: number; family: string } {
    return this.pipeline.own.address();
  }

  /**
   * Where receive times come from (PROTOCOL.md §6; receive→verdict latency, `stale`, the
   * prober's RTT): `'kernel'` — the kernel's stamp of each datagram (`SO_TIMESTAMPNS`,
   * native lane), `'js'` — the engine's clock when JS saw it (dgram lane).
   */
  get timestamps(): 'kernel' | 'js' {
    return this.pipeline.timestamps;
  }

  /**
   * REPLYs to one address leave in UDP GSO runs ({@link EngineOptions.gso}): asked for, on the
   * native lane, and the kernel has `UDP_SEGMENT` (false where it refused a GSO send outright:
   * then each REPLY leaves on its own).
   */
  get gso(): boolean {
    return this.pipeline.gso;
  }

  /** One line about a capped receive buffer, or null (shown by the CLI at start). */
  get recvBufferNote(): string | null {
    return this.pipeline.own.recvBufferNote;
  }

  /**
   * The stage objects (src/pipeline/): benchmarks time the stages through their public
   * methods (`bench/responder.ts`); not for changing anything.
   */
  get stages(): Pipeline {
    return this.pipeline;
  }

  /** Ports of the extra socket threads (the listen port itself when they share it). @internal tests */
  socketThreadPorts(): number[] {
    return this.pipeline.lanes.slice(1).map((l) => l.port);
  }

  /** This agent's ID. */
  get agent(): string {
    return this.keyring.agent;
  }

  /** This agent's sender_id (PROTOCOL.md §1: `SHA-256(agent_id)[0:8]`), a copy. */
  get selfId(): Uint8Array {
    return new Uint8Array(this.keyring.selfId);
  }

  /** This tenant's ID. */
  get tenant(): string {
    return this.keyring.tenant;
  }

  /** The roster (without this agent). */
  get peers(): readonly string[] {
    return this.keyring.peers;
  }

  // ---- keys and roster (PROTOCOL.md §1) --------------------------------------------------

  /** Replace the roster. Invalid IDs, or more peers than `maxPeers`, throw and change nothing. */
  setPeers(peers: readonly string[]): void {
    this.assertRoster(peers, 'peers');
    if (this.closing) throw new DtmeshError('engine is closed: roster not changed');
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
   * previous root keeps verifying for `rotationGraceMs`), update the roster. All or
   * nothing: invalid input throws and changes nothing — no file, no roster, no timer.
   * Returns whether the root changed.
   */
  applyHeartbeat(response: unknown): { rotated: boolean } {
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

  // ---- stats ---------------------------------------------------------------------

  /**
   * Current stats: the books (the `--stats-json` document) plus `send_errors`, on Linux
   * `kernel_drops` — datagrams the kernel dropped for this socket before the engine could
   * read them (receive buffer overflow) — and the punch-hint counters.
   */
  stats(): EngineStats {
    const s = this.pipeline.stats();
    if (this.punch !== null) s.punch = this.punchStats();
    if (this.stateDir !== null) s.nonce_write_errors = this.nonces.writeErrors;
    return s;
  }

  /** The receive→verdict latency histogram (µs, HDR) itself: metrics read it at scrape time. */
  verdictLatency(): Histogram {
    return this.pipeline.books.latency;
  }

  /**
   * @internal The prober's allocation-free reply path (src/probe/prober.ts, MEASUREMENT.md
   * §1): `fn` gets every accepted REPLY (PROTOCOL.md §4) synchronously, from inside the
   * in-order collector, as one reused object that is valid only during the call; `fn` must
   * not call into the engine, and what it throws becomes a `'warning'`. Several at once
   * (concurrent `probe()` runs on one engine); the `'reply'` event still fires for its
   * listeners. {@link removeReplySink} takes it off.
   */
  addReplySink(fn: (r: ReplyEvent) => void): void {
    this.pipeline.replySinks.push(fn);
  }

  /** @internal Take a hook of {@link addReplySink} off (nothing when it is not there). */
  removeReplySink(fn: (r: ReplyEvent) => void): void {
    const sinks = this.pipeline.replySinks;
    const k = sinks.indexOf(fn);
    if (k >= 0) sinks.splice(k, 1);
  }

  /**
   * @internal A prober's hook for refused own packets: `fn` gets every {@link SendErrorEvent}
   * when and as `'send_error'` listeners do (what it throws is handled like a listener's).
   * Not an event listener, so any number of concurrent `probe()` runs do not trip Node's
   * MaxListenersExceededWarning meant for an app's leaked listeners.
   * {@link removeSendErrorSink} takes it off.
   */
  addSendErrorSink(fn: (e: SendErrorEvent) => void): void {
    this.sendErrorSinks.push(fn);
  }

  /** @internal Take a hook of {@link addSendErrorSink} off (nothing when it is not there). */
  removeSendErrorSink(fn: (e: SendErrorEvent) => void): void {
    const k = this.sendErrorSinks.indexOf(fn);
    if (k >= 0) this.sendErrorSinks.splice(k, 1);
  }

  /** Start a fresh receive→verdict latency histogram (benchmarks measure per load step). */
  resetLatency(): void {
    this.pipeline.books.latency.reset();
  }

  /** Punch-hint decisions so far (PROTOCOL.md §2). */
  punchStats(): PunchStats {
    return this.pipeline.hints.stats();
  }

  /** REPLYs re-signed on this thread because an own packet took a later nonce first (rare). */
  get resigned(): number {
    return this.pipeline.replies.resigned;
  }
  /** Batches whose worker failed and that were run again. */
  get rerunBatches(): number {
    return this.pipeline.pool.rerunBatches;
  }
  /** Batches given up because their worker hung past `verifyTimeoutMs` (counted as `overload`). */
  get hungBatches(): number {
    return this.pipeline.pool.hungBatches;
  }
  /** Batches verified on this thread (fewer than `inlineBelow` datagrams). */
  get inlineBatches(): number {
    return this.pipeline.dispatcher.inlineBatches;
  }
  /** Batches handed to the worker pool. */
  get pooledBatches(): number {
    return this.pipeline.dispatcher.pooledBatches;
  }
  /** Batches filled by the extra socket threads (`sockets` > 1). */
  get threadBatches(): number {
    return this.pipeline.dispatcher.threadBatches;
  }

  /**
   * What `util.inspect` / `console.log` show: who, where and the books — never a key,
   * a keyed state or the shared key table (PROTOCOL.md §1 "the key never appears …").
   */
  [inspect.custom](): string {
    return `Engine ${inspect(this.toJSON())}`;
  }

  /** What `JSON.stringify` shows: the same non-secret summary as `util.inspect`. */
  toJSON(): { tenant: string; agent: string; peers: number; address: string; port: number; workers: number; sockets: number; stats: EngineStats } {
    const a = this.closed !== null ? { address: '', port: 0 } : this.address;
    return { tenant: this.tenant, agent: this.agent, peers: this.peers.length, address: a.address, port: a.port, workers: this.workers, sockets: this.sockets, stats: this.stats() };
  }

  // ---- events --------------------------------------------------------------------

  /**
   * Emit `name` at a safe point: events raised while a batch is collected are queued and
   * emitted once the collector settled (the batch counted, its key-table half unpinned,
   * its sends issued), so app code — a listener that throws, or calls `close()`,
   * `setPeers()`, `applyHeartbeat()` — never runs inside a stage. A listener's exception
   * goes to the `'error'` listeners when there are any, else it is thrown on a later
   * tick (as Node's own emitters do with no `'error'` listener); the engine is whole
   * either way.
   */
  private notify(name: string, payload: unknown): void {
    this.events.push({ name, payload });
    if (this.pipeline === undefined || !this.pipeline.collector.busy) this.flushEvents();
  }

  private flushEvents(): void {
    if (this.emitting) return; // the outer flush takes what a listener queues
    this.emitting = true;
    try {
      for (let e = this.events.shift(); e !== undefined; e = this.events.shift()) {
        if (e.name === 'send_error') {
          for (const fn of [...this.sendErrorSinks]) {
            try {
              fn(e.payload as SendErrorEvent);
            } catch (err) {
              this.listenerFailed(err);
            }
          }
        }
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

  // ---- own packets (prober, PROTOCOL.md §3) ------------------------------------------

  /**
   * Send one v1 packet of `type` to `agent` at `host:port`, `size` bytes in all (50 …
   * maxDatagram), under the next nonce and the newest pair key (PROTOCOL.md §3).
   * `payload` (optional) fills the payload area from its start. Returns the nonce, or
   * -1 when the send was refused during the call (by Node, or by the kernel on the native
   * lane; counted in `send_errors`, PROTOCOL.md §4); a refusal after the call returned is
   * counted too and raises `'send_error'` ({@link SendErrorEvent}). Throws a `RangeError` for an agent not in
   * the roster, a size or a port out of range. With several sockets the packet waits
   * until every REPLY with a smaller nonce left the other sockets.
   */
  sendPacket(type: number, agent: string, host: string, port: number, probeId: number, size: number, payload?: Uint8Array): number {
    return this.pipeline.replies.sendPacket(type, agent, host, port, probeId, size, payload);
  }

  /**
   * When the packet of the last {@link sendPacket}/{@link sendProbe} left: engine-clock µs
   * (`nowUs`) taken by the native lane right before its `sendto`, if the packet left during
   * that call (NaN when it was queued behind a full socket buffer), or by the dgram lane
   * right before `socket.send` (after the signing): MEASUREMENT.md §1, the send time as
   * close to the wire as the lane allows.
   */
  lastSendUs(): number {
    const own: PacketLane = this.pipeline.own;
    return own.lastOwnSentUs ?? NaN;
  }

  /**
   * @internal {@link sendProbe} for the prober and the mesh (MEASUREMENT.md §1): true when
   * the PROBE was sent or queued, false when refused during the call — no nonce, because a
   * float return value is a heap number on every call (16 bytes per PROBE). `probeId` is
   * a u32, or the same 32 bits as an int32 (`| 0`: a small integer, never boxed).
   */
  trySendProbe(agent: string, host: string, port: number, probeId: number, size: number): boolean {
    return this.pipeline.replies.send(TYPE_PROBE, agent, host, port, probeId, size);
  }

  /** Send a PROBE (see {@link sendPacket}). */
  sendProbe(agent: string, host: string, port: number, probeId: number, size: number): number {
    return this.sendPacket(TYPE_PROBE, agent, host, port, probeId, size);
  }

  // ---- shutdown -----------------------------------------------------------------

  /**
   * Stop receiving (datagrams arriving from now on are counted as `overload`), drain
   * every in-flight batch, send its replies, stop the pool, close the sockets, release
   * the state-directory lock; resolves with the final stats, where
   * `received = accepted + Σ dropped`.
   */
  close(): Promise<EngineStats> {
    if (this.closed !== null) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      if (this.graceTimer !== null) clearTimeout(this.graceTimer);
      try {
        await this.pipeline.close();
      } finally {
        this.nonces.close();
      }
      return this.stats();
    })();
    return this.closed;
  }
}
