/**
 * The load generator of the end-to-end benchmark: valid PROBEs (PROTOCOL.md §2, from
 * `peers` distinct senders, round-robin) sent at a paced rate to one responder on
 * 127.0.0.1, replies counted and timed.
 *
 * One run = a warm-up phase (not counted), then a measured phase, then a drain wait.
 * Every datagram of a run is sealed before the first is sent (so the generator's own
 * HMAC cost stays out of the measured window), each stamped with its scheduled send
 * time as `send_ts_us`. Sending uses a connected socket (no per-send address lookup),
 * paced in small bursts: between bursts the thread sleeps (Atomics.wait, ≤ 50 µs)
 * rather than spinning, so it leaves the CPU to the responder on a 2-core machine.
 * A reply is matched by its probe_id; RTT = its arrival − our own record of the send.
 *
 * Runs as a child process of bench/e2e.ts (`fork`, IPC messages {@link LoadgenRequest}),
 * or in-process through {@link LoadGenerator}.
 *
 * With `generator: 'c'` a run is made by the C program bench/c/prober.c instead (same
 * peers, presealed datagrams, warm-up and checks; `sendmmsg` in bursts, wake-ups at most
 * every {@link C_PACE_US} µs, RTT ended by the kernel's receive stamp), spawned by this
 * process: the Node generator tops out near 80-90 k/s on a 2-core machine, below what the
 * C responder holds, so only the C one shows the machine's limit.
 */
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { MIN_DATAGRAM, OFF_PROBE_ID, OFF_TYPE, TYPE_REPLY } from '../src/protocol/wire.js';
import { readU32 } from '../src/protocol/codec.js';
import { macVerify } from '../src/protocol/mac.js';
import { nowUs } from '../src/clock.js';
import { readKernelDrops } from '../src/observe/kernel-drops.js';
import { BENCH_RESPONDER, BENCH_TENANT, benchPeer, benchRoot, isMain, percentile, ProbeWriter, round, threadCpu } from './common.js';

/** One run of the generator. */
export interface LoadSpec {
  host: string;
  port: number;
  /** Offered rate, datagrams per second. */
  rate: number;
  warmupMs: number;
  durationMs: number;
  /** Longest wait for replies after the last send. */
  drainMs: number;
  /** Datagram size, bytes (default 84). */
  size: number;
  /** Distinct senders (round-robin). */
  peers: number;
  /** Source sockets (default 1); peer p always sends from socket p mod sources, so each peer is one flow. */
  sources?: number;
  /** Check type and MAC of every n-th reply (0: never — the echo server returns PROBEs). */
  verifyEvery: number;
  /** Never sleep between bursts (keeps a core busy; replies are read at once). Node generator only. */
  spin?: boolean;
  /** Which generator makes the run (default node); `c` needs `cBin` (bench/c/prober, built by bench/cbuild.ts) and one source socket. */
  generator?: 'node' | 'c';
  cBin?: string;
  /** C generator: each burst of PROBEs as one UDP GSO send (prober `--gso`), one send call per burst (bench `--gen-gso`). */
  gso?: boolean;
}

/** What a run measured (the measured phase only, unless named `warm_*`). */
export interface LoadResult {
  rate: number;
  sent: number;
  replies: number;
  /** 1 − replies / sent. */
  loss: number;
  /** Rate actually achieved in the measured phase, datagrams/s. */
  achieved_rate: number;
  /** The generator could not hold the offered rate (achieved < 97 %). */
  gen_limited: boolean;
  rtt_us: { p50: number; p90: number; p99: number; max: number };
  warm_sent: number;
  warm_replies: number;
  duplicates: number;
  unmatched: number;
  /** Replies that failed the type/MAC check (must be 0). */
  bad_replies: number;
  /** Replies checked. */
  verified: number;
  send_errors: number;
  /**
   * Datagrams the generator's own sockets dropped for want of room during the measured phase
   * (the kernel's count: SO_MEMINFO in the C generator, /proc/net/udp in the node one, read
   * at the end of the warm-up and after the drain): replies the responder sent and the
   * generator lost itself, which are in `loss` but are not the responder's. null where the
   * kernel does not say.
   */
  gen_rx_drops: number | null;
  /** Generator CPU per datagram in the measured phase, µs (send + receive + bookkeeping). */
  gen_us_per_datagram: number;
  window_s: number;
  /** The generator that made the run; RTTs end at the JS receive callback (node) or the kernel's receive stamp (c, see {@link gen_timestamps}). */
  generator: 'node' | 'c';
  /** Where this run's RTTs end, as the generator reports it: `kernel` (SO_TIMESTAMPNS on every reply) or `user` (the C generator's clock after recvmmsg, where the kernel gave no stamp) or `js` (node). */
  gen_timestamps: 'kernel' | 'user' | 'js';
  /** PROBEs (warm-up included) that left in UDP GSO messages (`LoadSpec.gso`; 0 when the kernel refused them or without it). */
  gen_gso_sent: number;
}

/** Messages to the generator process. */
export type LoadgenRequest = { type: 'run'; spec: LoadSpec } | { type: 'exit' };
/** Messages from the generator process. */
export type LoadgenMessage = { type: 'ready'; /** This host's Node/V8 flags (`process.execArgv`). */ execArgv: string[] } | { type: 'warm' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

/** Largest run, bytes of prebuilt datagrams (bounds memory whatever the flags). */
export const MAX_RUN_BYTES = 256 << 20;

const MAX_BURST = 64;
/** The C generator's longest sleep between wake-ups, µs (the Node one's {@link MAX_SLEEP_MS}). */
export const C_PACE_US = 50;
/** Longest sleep between bursts, ms: replies wait at most this long (plus timer slack) to be read. */
const MAX_SLEEP_MS = 0.05;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Paced PROBE sender and reply counter; keeps one nonce counter per peer across runs. */
export class LoadGenerator {
  private readonly root = benchRoot();
  private readonly writers: ProbeWriter[] = [];

  private writer(i: number): ProbeWriter {
    while (this.writers.length <= i) this.writers.push(new ProbeWriter(this.root, BENCH_TENANT, benchPeer(this.writers.length), BENCH_RESPONDER));
    return this.writers[i]!;
  }

  /** Run `spec`; `onWarm` is called when the warm-up phase has been sent. */
  async run(spec: LoadSpec, onWarm: () => void = () => undefined): Promise<LoadResult> {
    const { rate, size, peers } = spec;
    const warmN = Math.round((rate * spec.warmupMs) / 1000);
    const measN = Math.max(1, Math.round((rate * spec.durationMs) / 1000));
    const N = warmN + measN;
    if (N * size > MAX_RUN_BYTES) throw new RangeError(`a run of ${N} datagrams of ${size} bytes exceeds ${MAX_RUN_BYTES >> 20} MiB: lower the rate or the duration`);
    if (size < MIN_DATAGRAM) throw new RangeError(`datagram size must be at least ${MIN_DATAGRAM}`);
    if (spec.generator === 'c') return runC(spec, warmN, measN, onWarm);
    for (let p = 0; p < peers; p++) this.writer(p);

    const nSources = Math.max(1, Math.min(peers, spec.sources ?? 1));
    let sendErrors = 0;
    const sockets: dgram.Socket[] = [];
    for (let k = 0; k < nSources; k++) {
      const socket = dgram.createSocket('udp4');
      sockets.push(socket);
      await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
      try {
        socket.setRecvBufferSize(4 << 20);
        socket.setSendBufferSize(4 << 20);
      } catch {
        // capped by the system; fine
      }
      socket.on('error', () => void sendErrors++);
      socket.connect(spec.port, spec.host);
      await new Promise<void>((r) => socket.once('connect', () => r()));
    }
    const socket = sockets[0]!;

    // Seal everything first, each datagram stamped with its scheduled send time.
    const intervalUs = 1e6 / rate;
    const genEstimateUs = N * 1.2 + 20_000; // sealing costs ≈ 0.8-1.0 µs per datagram
    const t0Wall = nowUs() + genEstimateUs;
    const mem = Buffer.allocUnsafe(N * size);
    const views: Buffer[] = new Array(N);
    for (let i = 0; i < N; i++) {
      this.writers[i % peers]!.write(mem, i * size, size, i, t0Wall + i * intervalUs);
      views[i] = mem.subarray(i * size, (i + 1) * size);
    }
    const sendT = new Float64Array(N); // performance.now() at send, ms
    const got = new Uint8Array(N);
    const rtts = new Float64Array(measN);
    let nRtt = 0;
    let replies = 0;
    let warmReplies = 0;
    let duplicates = 0;
    let unmatched = 0;
    let bad = 0;
    let verified = 0;
    let checkCountdown = spec.verifyEvery;
    const onReply = (m: Buffer): void => {
      const now = performance.now();
      if (m.length < OFF_PROBE_ID + 4) return void unmatched++;
      const id = readU32(m, OFF_PROBE_ID);
      if (id >= N || sendT[id] === 0) return void unmatched++;
      if (got[id] !== 0) return void duplicates++;
      got[id] = 1;
      if (spec.verifyEvery > 0 && --checkCountdown === 0) {
        checkCountdown = spec.verifyEvery;
        verified++;
        const w = this.writers[id % peers]!;
        if (m.length !== size || m[OFF_TYPE] !== TYPE_REPLY || !macVerify(w.state, 0, null, 0, m, 0, m.length)) bad++;
      }
      if (id < warmN) warmReplies++;
      else {
        replies++;
        rtts[nRtt++] = now - sendT[id]!;
      }
    };
    for (const s of sockets) s.on('message', onReply);
    const socketDrops = (): number | null => {
      let n = 0;
      for (const s of sockets) {
        const d = readKernelDrops(s.address().port, 4, '127.0.0.1');
        if (d === null) return null;
        n += d;
      }
      return n;
    };

    // Wait for the planned start, then pace.
    while (nowUs() < t0Wall - 1000) await new Promise((r) => setTimeout(r, 1));
    const t0 = performance.now() + Math.max(0, (t0Wall - nowUs()) / 1000);
    let i = 0;
    let tWarm = t0;
    let tEnd = t0;
    let cpuWarm = threadCpu();
    let dropsWarm: number | null = 0; // fresh sockets: none before the first send
    let warmed = warmN === 0;
    if (warmed) onWarm();
    await new Promise<void>((resolve) => {
      const step = (): void => {
        const now = performance.now();
        const due = Math.min(N, Math.floor(((now - t0) * rate) / 1000) + 1);
        let burst = 0;
        while (i < due && burst < MAX_BURST) {
          if (!warmed && i === warmN) {
            warmed = true;
            dropsWarm = socketDrops(); // read before the measured phase starts: its cost stays in the warm-up
            tWarm = performance.now();
            cpuWarm = threadCpu();
            onWarm();
          }
          sendT[i] = performance.now();
          if (nSources === 1) socket.send(views[i]!);
          else sockets[(i % peers) % nSources]!.send(views[i]!);
          i++;
          burst++;
        }
        if (i >= N) {
          tEnd = performance.now();
          resolve();
          return;
        }
        if (i < due) {
          setImmediate(step); // behind schedule: let replies in, then catch up
          return;
        }
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (spec.spin) {
          setImmediate(step);
          return;
        }
        if (wait > 2) {
          setTimeout(step, wait - 1);
          return;
        }
        if (wait > 0.02) Atomics.wait(sleeper, 0, 0, Math.min(wait, MAX_SLEEP_MS));
        setImmediate(step);
      };
      step();
    });
    if (warmN === 0) tWarm = sendT[0]!;
    const cpuEnd = threadCpu();
    const drainUntil = performance.now() + spec.drainMs;
    while (replies + warmReplies < N && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 2));
    const dropsEnd = socketDrops();
    const rxDrops = dropsEnd !== null && dropsWarm !== null ? dropsEnd - dropsWarm : null;
    for (const s of sockets) s.close();

    const windowMs = Math.max(1e-3, tEnd - tWarm);
    const achieved = measN > 1 ? ((measN - 1) * 1000) / windowMs : rate;
    const sorted = rtts.subarray(0, nRtt).sort();
    const us = (ms: number): number => round(ms * 1000, 1);
    return {
      rate,
      sent: measN,
      replies,
      loss: 1 - replies / measN,
      achieved_rate: Math.round(achieved),
      gen_limited: achieved < 0.97 * rate,
      rtt_us: { p50: us(percentile(sorted, 50)), p90: us(percentile(sorted, 90)), p99: us(percentile(sorted, 99)), max: us(nRtt ? sorted[nRtt - 1]! : 0) },
      warm_sent: warmN,
      warm_replies: warmReplies,
      duplicates,
      unmatched,
      bad_replies: bad,
      verified,
      send_errors: sendErrors,
      gen_rx_drops: rxDrops,
      gen_us_per_datagram: round((cpuEnd.mainUs - cpuWarm.mainUs) / measN, 2),
      window_s: round(windowMs / 1000, 3),
      generator: 'node',
      gen_timestamps: 'js',
      gen_gso_sent: 0,
    };
  }
}

/** What bench/c/prober prints (the fields used here). */
interface CProberResult {
  sent: number;
  /** Its socket's own drops (SO_MEMINFO), -1 where the kernel does not say. */
  rx_drops: number;
  received: number;
  duplicates: number;
  unmatched: number;
  bad: number;
  replay: number;
  send_errors: number;
  offered_pps: number;
  duration_s: number;
  warm_sent: number;
  warm_received: number;
  verified: number;
  cpu_us: number;
  gso_sent: number;
  /** `kernel` when every reply's receive time was the kernel's stamp, else `user`. */
  timestamps: 'kernel' | 'user';
  rtt_us: { p50: number; p90: number; p99: number; max: number };
}

/** One run by the C generator (bench/c/prober in load-generator mode). */
async function runC(spec: LoadSpec, warmN: number, measN: number, onWarm: () => void): Promise<LoadResult> {
  if (!spec.cBin) throw new Error('the C generator needs cBin (bench/c/prober)');
  if ((spec.sources ?? 1) > 1) throw new Error('the C generator sends from one socket: use the node generator for several sources');
  const root = Buffer.from(benchRoot()).toString('hex');
  const agents = Array.from({ length: spec.peers }, (_, i) => benchPeer(i)).join(',');
  const args = ['--root', root, '--tenant', BENCH_TENANT, '--agent', agents, '--target', `${BENCH_RESPONDER}@${spec.host}:${spec.port}`];
  args.push('--rate', String(spec.rate), '--count', String(warmN + measN), '--warmup-count', String(warmN), '--size', String(spec.size));
  args.push('--grace-ms', String(Math.max(1, Math.round(spec.drainMs))), '--verify-every', String(spec.verifyEvery), '--burst', String(MAX_BURST), '--preseal', '--pace-us', String(C_PACE_US));
  if (spec.gso === true) args.push('--gso');
  const child = spawn(spec.cBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let warmed = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => void (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (!warmed && /^warm$/m.test(err)) {
      warmed = true;
      onWarm();
    }
  });
  const code = await new Promise<number | string>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(sig ?? c ?? 0));
  });
  const why = err.replace(/^warm\n/gm, '').trim();
  if (code !== 0) throw new Error(`bench/c/prober exited ${code}${why ? `: ${why}` : ''}`);
  const j = JSON.parse(out) as CProberResult;
  if (!warmed) onWarm();
  return {
    rate: spec.rate,
    sent: j.sent,
    replies: j.received,
    loss: j.sent > 0 ? 1 - j.received / j.sent : 1,
    achieved_rate: Math.round(j.offered_pps),
    gen_limited: j.offered_pps < 0.97 * spec.rate,
    rtt_us: { p50: j.rtt_us.p50, p90: j.rtt_us.p90, p99: j.rtt_us.p99, max: j.rtt_us.max },
    warm_sent: j.warm_sent,
    warm_replies: j.warm_received,
    duplicates: j.duplicates,
    unmatched: j.unmatched,
    bad_replies: j.bad + j.replay,
    verified: j.verified,
    send_errors: j.send_errors,
    gen_rx_drops: j.rx_drops >= 0 ? j.rx_drops : null,
    gen_us_per_datagram: round(j.cpu_us / Math.max(1, j.sent), 2),
    window_s: round(j.duration_s, 3),
    generator: 'c',
    gen_timestamps: j.timestamps,
    gen_gso_sent: j.gso_sent,
  };
}

// ---- child process entry ------------------------------------------------------------------------

if (isMain(import.meta.url) && process.send !== undefined) {
  const gen = new LoadGenerator();
  const send = (m: LoadgenMessage): void => void process.send?.(m);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: LoadgenRequest) => {
    if (m.type === 'exit') process.exit(0);
    if (m.type === 'run') {
      gen.run(m.spec, () => send({ type: 'warm' })).then(
        (result) => send({ type: 'result', result }),
        (e: unknown) => send({ type: 'error', message: (e as Error)?.message ?? String(e) }),
      );
    }
  });
  send({ type: 'ready', execArgv: process.execArgv });
}
