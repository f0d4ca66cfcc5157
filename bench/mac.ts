/**
 * MAC of one datagram: node:crypto `createHmac('sha256', key).update(canonical).digest()`
 * versus the precomputed-key kernel `hmacTag16` (src/protocol/sha256.ts), at datagram
 * sizes 50, 84, 512 and 1400 bytes (canonical length = size − 16 + 4), then a sweep of
 * canonical lengths at the kernel's cost steps to measure the crossover.
 *
 *   node dist/bench/mac.js            # table + crossover sweep
 *   MAC_BENCH_SWEEP=0 node dist/bench/mac.js   # table only
 *   MAC_BENCH_TIME=1000 node dist/bench/mac.js # ms per task (default 500)
 *
 * Each tinybench sample times a batch of calls and reports the per-call mean through
 * `overriddenDuration` (one call is ~0.2-3 µs, too close to the timer's own cost).
 * node:crypto gets its most favourable form: a single `update` of a contiguous
 * canonical view prepared outside the timed loop.
 */
import { createHmac } from 'node:crypto';
import os from 'node:os';
import { Bench } from 'tinybench';
import type { Task } from 'tinybench';
import { HMAC_STATE_WORDS, KERNEL_CROSSOVER_BYTES, hmacPrecompute, hmacTag16 } from '../src/protocol/sha256.js';

const TIME_MS = Number(process.env.MAC_BENCH_TIME ?? 500);
const SWEEP = process.env.MAC_BENCH_SWEEP !== '0';
const SIZES = [50, 84, 512, 1400];
const TAG = 16;
const SLOTS = 64; // rotate over several datagrams so no single line stays hot in L1
const SLOT_BYTES = 4096;
const BATCH = 256;

const key = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
const keyBuf = Buffer.from(key);
const state = new Int32Array(new SharedArrayBuffer(HMAC_STATE_WORDS * 4));
hmacPrecompute(key, state, 0);

// Datagrams (header+payload, then the 16-byte tag) in a SharedArrayBuffer, like the socket ring.
const ring = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES));
for (let i = 0; i < ring.length; i++) ring[i] = (i * 2654435761) >>> 24;
// Contiguous canonical copies (datagram body || u32be(suffix)) for node:crypto's single update.
const canonRing = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES));
const out = new Uint8Array(TAG);
let sink = 0;

/** Canonical bytes for a body of `bodyLen` bytes in slot `s`; the suffix is the body length. */
function prepare(bodyLen: number): Buffer[] {
  const views: Buffer[] = [];
  for (let s = 0; s < SLOTS; s++) {
    const base = s * SLOT_BYTES;
    canonRing.set(ring.subarray(base, base + bodyLen), base);
    new DataView(canonRing.buffer).setUint32(base + bodyLen, bodyLen);
    views.push(Buffer.from(canonRing.buffer, base, bodyLen + 4));
  }
  return views;
}

function check(bodyLen: number, views: Buffer[]): void {
  hmacTag16(state, 0, ring, SLOT_BYTES, bodyLen, bodyLen, out, 0);
  const ref = createHmac('sha256', keyBuf).update(views[1]).digest();
  if (Buffer.compare(ref.subarray(0, TAG), Buffer.from(out)) !== 0) throw new Error(`kernel mismatch at body ${bodyLen}`);
}

function addPair(bench: Bench, label: string, bodyLen: number): void {
  const views = prepare(bodyLen);
  check(bodyLen, views);
  let slot = 0;
  bench.add(`node:crypto ${label}`, () => {
    const t0 = performance.now();
    for (let i = 0; i < BATCH; i++) {
      const d = createHmac('sha256', keyBuf).update(views[slot]).digest();
      sink ^= d[0];
      slot = (slot + 1) & (SLOTS - 1);
    }
    const dt = performance.now() - t0;
    return { overriddenDuration: dt / BATCH, overriddenIterationCost: dt };
  });
  bench.add(`kernel ${label}`, () => {
    const t0 = performance.now();
    for (let i = 0; i < BATCH; i++) {
      hmacTag16(state, 0, ring, slot * SLOT_BYTES, bodyLen, bodyLen, out, 0);
      sink ^= out[0];
      slot = (slot + 1) & (SLOTS - 1);
    }
    const dt = performance.now() - t0;
    return { overriddenDuration: dt / BATCH, overriddenIterationCost: dt };
  });
}

interface Stat { mean: number; p50: number; rme: number }
function stat(task: Task | undefined): Stat {
  const r = task?.result;
  if (!r || !('latency' in r)) throw new Error(`task ${task?.name} did not complete (${r?.state})`);
  return { mean: r.latency.mean * 1e6, p50: r.latency.p50 * 1e6, rme: r.latency.rme };
}

const ns = (x: number): string => x.toFixed(0);

async function main(): Promise<void> {
  const cpu = os.cpus();
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, node ${process.version} (${os.platform()} ${os.arch()}), ${TIME_MS} ms/task, batch ${BATCH}`);

  const bench = new Bench({ time: TIME_MS, warmupTime: 200, iterations: 64 });
  for (const size of SIZES) addPair(bench, `${size} B`, size - TAG);
  await bench.run();
  const rows = SIZES.map((size) => {
    const n = stat(bench.getTask(`node:crypto ${size} B`));
    const k = stat(bench.getTask(`kernel ${size} B`));
    return {
      datagram: size,
      canonical: size - TAG + 4,
      'node:crypto ns': `${ns(n.mean)} ±${n.rme.toFixed(1)}%`,
      'kernel ns': `${ns(k.mean)} ±${k.rme.toFixed(1)}%`,
      'ratio (mean)': +(n.mean / k.mean).toFixed(2),
      'ratio (p50)': +(n.p50 / k.p50).toFixed(2),
      route: size - TAG + 4 >= KERNEL_CROSSOVER_BYTES ? 'node:crypto' : 'kernel',
    };
  });
  console.table(rows);
  console.log('ratio = node:crypto time / kernel time (>1: kernel faster).');

  if (!SWEEP) return;
  // The kernel runs ceil((L + 9) / 64) + 1 compressions for canonical length L: its cost
  // steps up at L ≡ 56 (mod 64) and is flat in between, while node:crypto's grows
  // with L. So the kernel is slowest relative to node:crypto at each step start, and
  // the crossover is the first step start where node:crypto wins.
  const sweep = new Bench({ time: Math.max(100, TIME_MS / 2), warmupTime: 100, iterations: 32 });
  const steps: number[] = [];
  for (let L = 56; L <= 1400; L += 64) steps.push(L);
  for (const L of steps) addPair(sweep, `L=${L}`, L - 4);
  await sweep.run();
  let crossover = -1;
  const srows = steps.map((L) => {
    const n = stat(sweep.getTask(`node:crypto L=${L}`));
    const k = stat(sweep.getTask(`kernel L=${L}`));
    const ratio = n.p50 / k.p50;
    if (crossover < 0 && ratio < 1) crossover = L;
    return { canonical: L, compressions: Math.ceil((L + 9) / 64) + 1, 'node:crypto ns': ns(n.p50), 'kernel ns': ns(k.p50), 'ratio (p50)': +ratio.toFixed(2) };
  });
  console.table(srows);
  console.log(`measured crossover: ${crossover < 0 ? `> ${steps[steps.length - 1]}` : crossover} (canonical bytes); KERNEL_CROSSOVER_BYTES = ${KERNEL_CROSSOVER_BYTES}`);
  if (sink === 0x1234_5678) console.log(''); // keep results observable
}

await main();
