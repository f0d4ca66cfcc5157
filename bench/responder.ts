/**
 * Responder host of the end-to-end benchmark: a child process (`fork`, IPC) that runs one
 * responder at a time — the dtmesh Engine (real piscina workers), the naive baseline
 * (bench/naive.ts) or the echo ceiling (bench/echo.ts) — on an ephemeral 127.0.0.1 port,
 * so that it has the process (and a core) to itself.
 *
 * Protocol: `start` → `ready {port}` (the responder is built on the first `start` and
 * kept for the next ones, so its JIT-compiled code — main thread and workers — stays
 * warm from one load step to the next); `mark` (the load generator finished its
 * warm-up) → `marked`; `report` → `report {report}`: counts, CPU and (engine) stats of
 * the window since the mark. The engine's receive→verdict histogram is reset at each
 * mark, so its percentiles cover that window only. `exit` closes it and exits.
 *
 * With `stages`, the engine's socket-thread stages are timed by wrapping its methods
 * from outside (bench only: see {@link instrumentEngine}).
 */
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine.js';
import type { EngineStats } from '../src/observe/stats.js';
import { BENCH_RESPONDER, BENCH_TENANT, benchPeer, benchRoot, isMain, round, threadCpu, type ThreadCpu } from './common.js';
import { EchoResponder, type BaselineCounts } from './echo.js';
import { NaiveResponder } from './naive.js';

/** The three responders. */
export type ResponderKind = 'engine' | 'naive' | 'echo';

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
  /** CPU µs per received datagram: the socket (main) thread, and every other thread (workers, GC helpers). */
  cpu: { main_us: number; other_us: number; source: ThreadCpu['source'] };
  /** Engine only: its stats now; `latency_window` says whether the histogram covers the window only. */
  engine?: { stats: EngineStats; latency_window: boolean; overload: number };
  /** Engine with `stages`: exclusive µs per datagram of each wrapped stage, and calls per datagram. */
  stages?: { us: StageTimes; calls: StageTimes; timer_ns: number } | { unavailable: string };
}

/** Messages to the host. */
export type ResponderRequest = { type: 'start'; spec: ResponderSpec } | { type: 'mark' } | { type: 'report' } | { type: 'exit' };
/** Messages from the host. */
export type ResponderMessage =
  | { type: 'ready'; port: number }
  | { type: 'marked' }
  | { type: 'report'; report: ResponderReport }
  | { type: 'error'; message: string };

// ---- stage instrumentation (engine) ---------------------------------------------------------------

interface StageClock {
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
 * Time the engine's socket-thread stages by wrapping, on this one instance, the members
 * the stages are made of: the dgram handle's `onmessage` (Node's JS side of a receive:
 * Buffer and rinfo to `emit`) and `send` (the `sendmsg` itself, run from a nextTick
 * after the address lookup), and engine.ts's `onMessage` (copy into the batch),
 * `dispatch` (nonces, key pin, piscina `run`), `verified`/`collect` (in-order collect:
 * replay, counters, histogram), `sink.reply`, `socket.send` (its JS part), `onSent`,
 * `onFlush`. Times are exclusive (a stage's time excludes the wrapped stages it calls)
 * and wall clock. Returns null (and changes nothing) when a member is missing, e.g.
 * after a refactor of engine.ts: the benchmark then reports the breakdown as
 * unavailable instead of failing.
 */
export function instrumentEngine(engine: Engine): StageClock | null {
  const e = engine as unknown as Record<string, any>;
  const socket = e.socket;
  const handle = socket ? dgramHandle(socket) : null;
  const ok =
    handle !== null && typeof socket.send === 'function' && typeof e.onMessage === 'function' && typeof e.onFlush === 'function' &&
    typeof e.onSent === 'function' && typeof e.dispatch === 'function' && typeof e.collect === 'function' &&
    typeof e.verified === 'function' && e.sink && typeof e.sink.reply === 'function' && socket.listeners('message').includes(e.onMessage);
  if (!ok) return null;
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
  handle.onmessage = wrap('receive: dgram JS (Buffer, rinfo, emit)', handle.onmessage, null);
  handle.send = wrap('send: sendmsg (handle.send)', handle.send, handle);
  const onMessage = e.onMessage;
  socket.off('message', onMessage);
  socket.on('message', wrap('receive: copy into batch (onMessage)', onMessage, engine));
  socket.send = wrap('send: JS (socket.send, lookup)', socket.send, socket);
  e.dispatch = wrap('dispatch (nonces, pin, pool.run)', e.dispatch, engine);
  e.verified = wrap('verified (batch back)', e.verified, engine);
  e.collect = wrap('collect (replay, counters, histogram)', e.collect, engine);
  e.sink.reply = wrap('reply (nonce, bookkeeping)', e.sink.reply, e.sink);
  e.onSent = wrap('onSent (release batches)', e.onSent, engine);
  e.onFlush = wrap('onFlush (partial batch)', e.onFlush, engine);
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
  clock: StageClock | null;
  stagesWanted: boolean;
  mark?: { t: number; cpu: ThreadCpu; counts: { received: number; replied: number; dropped: Record<string, number> }; latencyReset: boolean };
}

function countsOf(r: Running): { received: number; replied: number; dropped: Record<string, number> } {
  if (r.engine) {
    const s = r.engine.stats();
    return { received: s.received, replied: s.replied, dropped: { ...s.dropped } };
  }
  const c: BaselineCounts = r.baseline!.counts();
  return { received: c.received, replied: c.replied, dropped: { ...c.dropped } };
}

async function start(spec: ResponderSpec): Promise<Running> {
  const peers = Array.from({ length: spec.peers }, (_, i) => benchPeer(i));
  if (spec.kind === 'engine') {
    const engine = await Engine.create({
      rootKey: benchRoot(),
      tenant: BENCH_TENANT,
      agent: BENCH_RESPONDER,
      peers: [BENCH_RESPONDER, ...peers],
      listen: '127.0.0.1:0',
      workers: spec.workers,
      batchSize: spec.batchSize,
      inlineBelow: spec.inlineBelow,
      sockets: spec.sockets,
    });
    engine.on('warning', () => undefined);
    const clock = spec.stages ? instrumentEngine(engine) : null;
    return { kind: 'engine', port: engine.address.port, engine, clock, stagesWanted: spec.stages === true };
  }
  if (spec.kind === 'naive') {
    const n = await NaiveResponder.start({ root: benchRoot(), tenant: BENCH_TENANT, agent: BENCH_RESPONDER, peers });
    return { kind: 'naive', port: n.port, baseline: n, clock: null, stagesWanted: false };
  }
  const echo = await EchoResponder.start();
  return { kind: 'echo', port: echo.port, baseline: echo, clock: null, stagesWanted: false };
}

function mark(r: Running): void {
  let latencyReset = false;
  if (r.engine) {
    r.engine.resetLatency(); // the window's percentiles exclude warm-up
    latencyReset = true;
  }
  r.clock?.reset();
  r.mark = { t: performance.now(), cpu: threadCpu(), counts: countsOf(r), latencyReset };
}

function report(r: Running): ResponderReport {
  if (!r.mark) mark(r);
  const m = r.mark!;
  const cpu = threadCpu();
  const t = performance.now();
  const now = countsOf(r);
  let engine: ResponderReport['engine'];
  if (r.engine) {
    const stats = r.engine.stats();
    engine = { stats, latency_window: m.latencyReset, overload: stats.dropped.overload - (m.counts.dropped.overload ?? 0) };
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
  };
  if (r.stagesWanted) {
    if (r.clock === null) out.stages = { unavailable: 'engine internals changed: stage wrappers not installed (see bench/responder.ts instrumentEngine)' };
    else {
      const us: StageTimes = {};
      const calls: StageTimes = {};
      for (const [k, v] of r.clock.excl) us[k] = per(v * 1000);
      for (const [k, v] of r.clock.calls) calls[k] = per(v);
      out.stages = { us, calls, timer_ns: round(timerCostNs(), 1) };
    }
  }
  return out;
}

async function close(r: Running): Promise<void> {
  if (r.engine) await r.engine.close();
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
  process.on('message', (m: ResponderRequest) => {
    if (m.type === 'exit') {
      const r = running;
      running = null;
      (r ? close(r) : Promise.resolve()).finally(() => process.exit(0));
    } else if (m.type === 'start') {
      if (running && sameSpec(running.spec, m.spec)) {
        send({ type: 'ready', port: running.port });
        return;
      }
      const old = running;
      running = null;
      (old ? close(old) : Promise.resolve())
        .then(() => start(m.spec))
        .then((r) => {
          running = { ...r, spec: m.spec };
          send({ type: 'ready', port: r.port });
        }, fail);
    } else if (m.type === 'mark') {
      if (running) mark(running);
      send({ type: 'marked' });
    } else if (m.type === 'report') {
      if (!running) return fail(new Error('report without a running responder'));
      try {
        send({ type: 'report', report: report(running) });
      } catch (e) {
        fail(e);
      }
    }
  });
}
