/**
 * Responder host of the end-to-end benchmark: a child process (`fork`, IPC) that runs one
 * responder at a time — the dtmesh Engine (real piscina workers), the naive baseline
 * (bench/naive.ts), the echo ceiling (bench/echo.ts) or the C responder (the machine's
 * limit: bench/c/responder.c, recvmmsg/sendmmsg, same checks and REPLY, run as its own
 * process by bench/cresponder.ts) — on an ephemeral 127.0.0.1 port, so that it has the
 * process (and a core) to itself. For `c` the host only relays: its counts come from the
 * C process's `stats` line, its CPU from /proc/<pid> of the C process.
 *
 * Protocol: `start` → `ready {port}` (the responder is built on the first `start` and
 * kept for the next ones, so its JIT-compiled code — main thread and workers — stays
 * warm from one load step to the next); `mark` (the load generator finished its
 * warm-up) → `marked`; `report` → `report {report}`: counts, CPU and (engine) stats of
 * the window since the mark. The engine's receive→verdict histogram is reset at each
 * mark, so its percentiles cover that window only. `exit` closes it and exits.
 *
 * With `stages`, the engine's main-thread stages are timed by wrapping the public methods
 * of its stage objects (`engine.stages`, bench only: see {@link instrumentEngine}).
 */
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine.js';
import type { Pipeline } from '../src/pipeline/pipeline.js';
import type { EngineStats } from '../src/observe/stats.js';
import { GcPauses, type GcSummary } from '../src/observe/gc-pauses.js';
import { BENCH_RESPONDER, BENCH_TENANT, benchPeer, benchRoot, isMain, round, threadCpu, type ThreadCpu } from './common.js';
import { EchoResponder, type BaselineCounts } from './echo.js';
import { NaiveResponder } from './naive.js';
import { CResponder } from './cresponder.js';

/** The five responders: the engine on its dgram lane (`engine`) and on its native lane (`native`, ENGINE.md "Lanes"), the naive baseline, the echo ceiling, the C responder. */
export type ResponderKind = 'engine' | 'native' | 'naive' | 'echo' | 'c';

/** Every responder kind, in the order the benchmark measures them. */
export const RESPONDER_KINDS: readonly ResponderKind[] = ['engine', 'native', 'naive', 'echo', 'c'];

/** The engine's lane for a responder kind (`engine`: dgram, `native`: native), else null. */
export function engineLane(kind: ResponderKind): 'dgram' | 'native' | null {
  return kind === 'engine' ? 'dgram' : kind === 'native' ? 'native' : null;
}

/** How to start a responder. */
export interface ResponderSpec {
  kind: ResponderKind;
  /** Probing peers in the roster. */
  peers: number;
  /** Engine workers (default: the engine's own default). */
  workers?: number;
  /** Engine batch size (default: the engine's own). */
  batchSize?: number;
  /** Time the engine's socket-thread stages. */
  stages?: boolean;
  /** The engine's `inlineBelow` option (undefined: its default). */
  inlineBelow?: number;
  /** The engine's `sockets` option (undefined: 1). */
  sockets?: number;
  /** UDP GSO for REPLY runs: the engine's `gso` option (native lane) and the C responder's `--gso`. */
  gso?: boolean;
}

/** Socket-thread time per stage, µs per received datagram (exclusive of nested stages). */
export type StageTimes = Record<string, number>;

/** What a responder did between `mark` and `report`. */
export interface ResponderReport {
  kind: ResponderKind;
  received: number;
  replied: number;
  dropped: Record<string, number>;
  window_s: number;
  /** CPU µs per received datagram: the socket (main) thread, and every other thread (workers, GC helpers); for `c`, the whole C process (single-threaded) as `main_us`. */
  cpu: { main_us: number; other_us: number; source: ThreadCpu['source'] };
  /**
   * Engine only: its stats now; `latency_window` says whether the histogram covers the
   * window only; `timestamps` where its receive→verdict starts (`engine.timestamps`): the
   * kernel's receive stamp (native lane, SO_TIMESTAMPNS) or the JS clock read in the dgram
   * lane's message listener, which leaves out the time in the socket buffer.
   */
  engine?: { stats: EngineStats; latency_window: boolean; overload: number; timestamps: 'kernel' | 'js' };
  /** C responder only: receive (kernel stamp) → verdict over the window, µs (the machine's own tail, beside the engine's); absent where it had no kernel stamps (it records nothing then). */
  verdict_us?: { p50: number; p99: number };
  /**
   * Every responder but `c` (which has no GC): the GC pauses of this host's main thread —
   * the thread that reads the socket — that began in the window. Each stops the receiving,
   * so one pause of a few ms in a 1-3 s window can set a p99 by itself.
   */
  gc?: GcSummary;
  /** Engine with `stages`: exclusive µs per datagram of each wrapped stage ({@link STAGE}), and calls per datagram. */
  stages?: { us: StageTimes; calls: StageTimes; timer_ns: number };
}

/** Messages to the host. */
export type ResponderRequest = { type: 'start'; spec: ResponderSpec } | { type: 'mark' } | { type: 'report' } | { type: 'exit' };
/** Messages from the host. */
export type ResponderMessage =
  | { type: 'ready'; port: number; /** The C responder's own pid (its CPU is not this process's). */ pid?: number; /** This host's Node/V8 flags (`process.execArgv`). */ execArgv: string[] }
  | { type: 'marked' }
  | { type: 'report'; report: ResponderReport }
  | { type: 'error'; message: string };

// ---- stage instrumentation (engine) ---------------------------------------------------------------

/**
 * The stages the breakdown times, by the name it prints (src/pipeline/, flow numbers of
 * pipeline.ts). Exclusive wall time of each: a stage's time excludes the timed stages
 * it calls.
 */
export const STAGE = {
  /** Node's JS side of a receive: the dgram handle's `onmessage` (Buffer, rinfo, emit). */
  receiveNode: '1 receive: dgram JS (handle.onmessage)',
  /** The lane's `'message'` listener: one copy into the filling batch (dgram-lane.ts). */
  receiveCopy: '1 receive: copy into batch (lane message listener)',
  /** `DgramLane.kick`: a partial batch handed over after the loop turn's reads. */
  flush: '1 flush: partial batch (lane.kick)',
  /** `Dispatcher.dispatch`: header, key pin, nonce reservation, routing (dispatch.ts). */
  dispatch: '2 dispatch (nonces, pin, route)',
  /** `Pipeline.inlineVerifier.run`: a small batch verified and its REPLYs signed on this thread (verify.ts). */
  verifyInline: '3 verify inline (HMAC, sign REPLYs)',
  /** `VerifyPool.verify`: a batch handed to piscina (pool.ts). */
  verifyPool: '3 verify: pool hand-off (pool.verify)',
  /** `Collector.verified`: in-order collect: replay check, counters, histogram (collect.ts). */
  collect: '4 collect (replay, counters, histogram)',
  /** `ReplySender.reply`: an accepted PROBE's REPLY nonce and send mark (reply.ts). */
  reply: '5 reply (nonce, mark)',
  /** `ReplySender.batchCollected`: the batch becomes a unit of the send order. */
  sendOrder: '5 reply: send order (batchCollected)',
  /** `DgramLane.sendBatch`: the marked REPLYs walked, the send ledger (dgram-lane.ts, ledger.ts). */
  sendBatch: '5 send: lane.sendBatch (ledger)',
  /** The dgram socket's `send` (argument checks, lookup, queueing to a nextTick). */
  sendNode: '5 send: dgram JS (socket.send)',
  /** The dgram handle's `send`: the `sendmsg` itself. */
  sendmsg: '5 send: sendmsg (handle.send)',
  /** `ReplySender.sent`: a lane's send unit completed. */
  sent: '5 sent (replies.sent)',
  /** `HintHandler.run`: own punch bursts after a collected batch (hints.ts). */
  hints: 'hints (own bursts, hints.run)',
} as const;

/** Exclusive µs and calls per stage since the last reset. */
export interface StageClock {
  excl: Map<string, number>;
  calls: Map<string, number>;
  reset(): void;
}

/** The dgram socket's internal state (Node ≥ 20 keeps it under a symbol described 'state symbol'). */
function dgramHandle(socket: object): Record<string, any> | null {
  const sym = Object.getOwnPropertySymbols(socket).find((x) => x.description === 'state symbol');
  const handle = sym === undefined ? undefined : (socket as Record<symbol, { handle?: Record<string, any> }>)[sym]?.handle;
  return handle && typeof handle.send === 'function' && typeof handle.onmessage === 'function' ? handle : null;
}

/**
 * Time the engine's main-thread stages through their public seams: `engine.stages` (the
 * {@link Pipeline}) and its stage objects, whose methods the stages call on one another
 * through instance properties — so wrapping a method on the instance times every call —
 * plus Node's side of the engine's socket (`DgramLane.udpSocket`, its `'message'`
 * listener, and the dgram handle's `onmessage`/`send`). See {@link STAGE} for what each
 * one covers. Times are exclusive and wall clock; socket threads (`sockets` > 1) are
 * not timed. Throws, naming the seam, when one is missing (a renamed stage method): the
 * breakdown must fail loudly, never report "unavailable".
 */
export function instrumentEngine(engine: Engine): StageClock {
  const p = engine.stages as Pipeline | undefined;
  const missing = (seam: string): Error => new Error(`instrumentEngine: seam ${seam} is missing (src/pipeline/ changed: update bench/responder.ts)`);
  if (p === undefined || p === null) throw missing('engine.stages');
  const socket = p.own?.udpSocket;
  if (socket === undefined || typeof socket.send !== 'function') throw missing('engine.stages.own.udpSocket');
  const handle = dgramHandle(socket);
  if (handle === null) throw missing("the dgram socket's handle (onmessage, send)");
  const listeners = socket.listeners('message');
  if (listeners.length !== 1) throw missing(`the lane's one 'message' listener on engine.stages.own.udpSocket (found ${listeners.length})`);
  const inline = p.inlineVerifier;
  const methods: Array<[string, Record<string, any> | undefined, string]> = [
    ['engine.stages.own', p.own, 'kick'],
    ['engine.stages.own', p.own, 'sendBatch'],
    ['engine.stages.dispatcher', p.dispatcher, 'dispatch'],
    ['engine.stages.inlineVerifier', inline, 'run'],
    ['engine.stages.pool', p.pool, 'verify'],
    ['engine.stages.collector', p.collector, 'verified'],
    ['engine.stages.replies', p.replies, 'reply'],
    ['engine.stages.replies', p.replies, 'batchCollected'],
    ['engine.stages.replies', p.replies, 'sent'],
    ['engine.stages.hints', p.hints, 'run'],
  ];
  for (const [where, obj, name] of methods) if (obj === undefined || obj === null || typeof obj[name] !== 'function') throw missing(`${where}.${name}()`);

  const excl = new Map<string, number>();
  const calls = new Map<string, number>();
  let child = 0;
  const wrap = <F extends (...a: any[]) => any>(name: string, fn: F, self: unknown): F =>
    function (this: unknown, ...args: unknown[]) {
      const saved = child;
      child = 0;
      const t0 = performance.now();
      try {
        return fn.apply(self ?? this, args);
      } finally {
        const dt = performance.now() - t0;
        excl.set(name, (excl.get(name) ?? 0) + dt - child);
        calls.set(name, (calls.get(name) ?? 0) + 1);
        child = saved + dt;
      }
    } as F;
  const wrapMethod = (obj: Record<string, any>, name: string, stage: string): void => {
    obj[name] = wrap(stage, obj[name], obj); // an own property over the prototype's: this instance only
  };
  handle.onmessage = wrap(STAGE.receiveNode, handle.onmessage, null);
  handle.send = wrap(STAGE.sendmsg, handle.send, handle);
  const onMessage = listeners[0] as (...a: unknown[]) => void;
  socket.off('message', onMessage);
  socket.on('message', wrap(STAGE.receiveCopy, onMessage, null));
  wrapMethod(socket as unknown as Record<string, any>, 'send', STAGE.sendNode);
  wrapMethod(p.own as unknown as Record<string, any>, 'kick', STAGE.flush);
  wrapMethod(p.own as unknown as Record<string, any>, 'sendBatch', STAGE.sendBatch);
  wrapMethod(p.dispatcher as unknown as Record<string, any>, 'dispatch', STAGE.dispatch);
  wrapMethod(inline as unknown as Record<string, any>, 'run', STAGE.verifyInline);
  wrapMethod(p.pool as unknown as Record<string, any>, 'verify', STAGE.verifyPool);
  wrapMethod(p.collector as unknown as Record<string, any>, 'verified', STAGE.collect);
  wrapMethod(p.replies as unknown as Record<string, any>, 'reply', STAGE.reply);
  wrapMethod(p.replies as unknown as Record<string, any>, 'batchCollected', STAGE.sendOrder);
  wrapMethod(p.replies as unknown as Record<string, any>, 'sent', STAGE.sent);
  wrapMethod(p.hints as unknown as Record<string, any>, 'run', STAGE.hints);
  return {
    excl,
    calls,
    reset(): void {
      excl.clear();
      calls.clear();
    },
  };
}

/** Cost of one performance.now() pair, ns (the instrumentation's own overhead per wrapped call). */
function timerCostNs(): number {
  const n = 200_000;
  let x = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) x += performance.now();
  const dt = performance.now() - t0;
  return x === 0 ? 0 : ((dt / n) * 2 * 1e6);
}

// ---- host ----------------------------------------------------------------------------------------------

interface Running {
  kind: ResponderKind;
  port: number;
  engine?: Engine;
  baseline?: EchoResponder | NaiveResponder;
  c?: CResponder;
  clock: StageClock | null;
  mark?: { t: number; cpu: ThreadCpu; counts: { received: number; replied: number; dropped: Record<string, number> }; latencyReset: boolean };
}

/** GC pauses of this process's main thread, windowed by `mark`/`report`. */
const gcPauses = new GcPauses();

/** CPU of the C process (/proc/<pid>), as a ThreadCpu: all of it is its one thread. */
function cCpu(c: CResponder): ThreadCpu {
  const us = c.cpuUs();
  return { mainUs: us ?? 0, otherUs: 0, source: 'schedstat' };
}

async function countsOf(r: Running): Promise<{ received: number; replied: number; dropped: Record<string, number> }> {
  if (r.c) {
    const s = await r.c.stats();
    return { received: s.received, replied: s.replied, dropped: { ...s.dropped } };
  }
  if (r.engine) {
    const s = r.engine.stats();
    return { received: s.received, replied: s.replied, dropped: { ...s.dropped } };
  }
  const c: BaselineCounts = r.baseline!.counts();
  return { received: c.received, replied: c.replied, dropped: { ...c.dropped } };
}

async function start(spec: ResponderSpec): Promise<Running> {
  const peers = Array.from({ length: spec.peers }, (_, i) => benchPeer(i));
  const lane = engineLane(spec.kind);
  if (lane !== null) {
    if (spec.stages && lane !== 'dgram') throw new Error('the stage breakdown times the dgram lane only');
    const engine = await Engine.create({
      lane,
      rootKey: benchRoot(),
      tenant: BENCH_TENANT,
      agent: BENCH_RESPONDER,
      peers: [BENCH_RESPONDER, ...peers],
      listen: '127.0.0.1:0',
      workers: spec.workers,
      batchSize: spec.batchSize,
      inlineBelow: spec.inlineBelow,
      sockets: spec.sockets,
      gso: spec.gso,
    });
    engine.on('warning', () => undefined);
    if (spec.gso === true && !engine.gso) {
      await engine.close();
      throw new Error('--gso: this kernel has no UDP GSO (UDP_SEGMENT, Linux >= 4.18)');
    }
    let clock: StageClock | null = null;
    try {
      if (spec.stages) clock = instrumentEngine(engine);
    } catch (e) {
      await engine.close();
      throw e;
    }
    return { kind: spec.kind, port: engine.address.port, engine, clock };
  }
  if (spec.kind === 'naive') {
    const n = await NaiveResponder.start({ root: benchRoot(), tenant: BENCH_TENANT, agent: BENCH_RESPONDER, peers });
    return { kind: 'naive', port: n.port, baseline: n, clock: null };
  }
  if (spec.kind === 'c') {
    const c = await CResponder.start({ root: benchRoot(), tenant: BENCH_TENANT, agent: BENCH_RESPONDER, peers, batch: spec.batchSize, gso: spec.gso });
    return { kind: 'c', port: c.port, c, clock: null };
  }
  const echo = await EchoResponder.start();
  return { kind: 'echo', port: echo.port, baseline: echo, clock: null };
}

async function mark(r: Running): Promise<void> {
  let latencyReset = false;
  if (r.engine) {
    r.engine.resetLatency(); // the window's percentiles exclude warm-up
    latencyReset = true;
  } else if (r.c) {
    await r.c.resetLatency();
    latencyReset = true;
  }
  r.clock?.reset();
  const counts = await countsOf(r);
  r.mark = { t: performance.now(), cpu: r.c ? cCpu(r.c) : threadCpu(), counts, latencyReset };
  gcPauses.begin(r.mark.t);
}

async function report(r: Running): Promise<ResponderReport> {
  if (!r.mark) await mark(r);
  const m = r.mark!;
  const cpu = r.c ? cCpu(r.c) : threadCpu();
  const t = performance.now();
  gcPauses.end(t);
  const now = await countsOf(r);
  const cVerdict = r.c ? (await r.c.stats()).verdict_us : undefined;
  let engine: ResponderReport['engine'];
  if (r.engine) {
    const stats = r.engine.stats();
    engine = { stats, latency_window: m.latencyReset, overload: stats.dropped.overload - (m.counts.dropped.overload ?? 0), timestamps: r.engine.timestamps };
  }
  const received = now.received - m.counts.received;
  const dropped: Record<string, number> = {};
  for (const k of Object.keys(now.dropped)) dropped[k] = now.dropped[k]! - (m.counts.dropped[k] ?? 0);
  const per = (x: number): number => round(x / Math.max(1, received), 3);
  const out: ResponderReport = {
    kind: r.kind,
    received,
    replied: now.replied - m.counts.replied,
    dropped,
    window_s: round((t - m.t) / 1000, 3),
    cpu: { main_us: per(cpu.mainUs - m.cpu.mainUs), other_us: per(cpu.otherUs - m.cpu.otherUs), source: cpu.source },
    engine,
    ...(cVerdict && cVerdict.count > 0 ? { verdict_us: { p50: cVerdict.p50, p99: cVerdict.p99 } } : {}),
    ...(r.c ? {} : { gc: gcPauses.summary() }),
  };
  if (r.clock !== null) {
    const us: StageTimes = {};
    const calls: StageTimes = {};
    for (const [k, v] of r.clock.excl) us[k] = per(v * 1000);
    for (const [k, v] of r.clock.calls) calls[k] = per(v);
    out.stages = { us, calls, timer_ns: round(timerCostNs(), 1) };
  }
  return out;
}

async function close(r: Running): Promise<void> {
  if (r.engine) await r.engine.close();
  else if (r.c) await r.c.close();
  else await r.baseline!.close();
}

function sameSpec(a: ResponderSpec, b: ResponderSpec): boolean {
  return (
    a.kind === b.kind && a.peers === b.peers && a.workers === b.workers && a.batchSize === b.batchSize && !!a.stages === !!b.stages &&
    a.inlineBelow === b.inlineBelow
  );
}

if (isMain(import.meta.url) && process.send !== undefined) {
  let running: (Running & { spec: ResponderSpec }) | null = null;
  const send = (m: ResponderMessage): void => void process.send?.(m);
  const fail = (e: unknown): void => send({ type: 'error', message: (e as Error)?.message ?? String(e) });
  process.on('disconnect', () => process.exit(0));
  process.on('exit', () => void running?.c?.proc.kill('SIGKILL')); // never leave the C process behind (it also exits on stdin EOF)
  process.on('message', (m: ResponderRequest) => {
    if (m.type === 'exit') {
      const r = running;
      running = null;
      (r ? close(r) : Promise.resolve()).finally(() => process.exit(0));
    } else if (m.type === 'start') {
      if (running && sameSpec(running.spec, m.spec)) {
        send({ type: 'ready', port: running.port, pid: running.c?.proc.pid, execArgv: process.execArgv });
        return;
      }
      const old = running;
      running = null;
      (old ? close(old) : Promise.resolve())
        .then(() => start(m.spec))
        .then((r) => {
          running = { ...r, spec: m.spec };
          send({ type: 'ready', port: r.port, pid: r.c?.proc.pid, execArgv: process.execArgv });
        }, fail);
    } else if (m.type === 'mark') {
      (running ? mark(running) : Promise.resolve()).then(() => send({ type: 'marked' }), fail);
    } else if (m.type === 'report') {
      if (!running) return fail(new Error('report without a running responder'));
      report(running).then((rep) => send({ type: 'report', report: rep }), fail);
    }
  });
}
