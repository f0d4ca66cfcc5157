/**
 * Micro-benchmarks of dtmesh's components (tinybench), one table per component:
 *
 *   codec      encodePacket / parsePacket (allocating tools), writeHeader + macSeal in place
 *   keys       derivePairKey (HKDF, RFC 5869) and hmacPrecompute (per key, RFC 2104 §4)
 *   replay     ReplayFilter.check, strict and window 1024 (PROTOCOL.md §5, RFC 6479)
 *   drops      checkDatagram per verdict (PROTOCOL.md §4): every drop reason and a valid one
 *   stages     socket-thread work per datagram: BatchRing.put, Collector.verified; worker: BatchVerifier.run
 *   mac        native kernel and JS kernel hmacTag16 vs node:crypto createHmac at 50/84/512/1400 bytes
 *   crossover  (only with --only) JS kernel vs node:crypto over canonical lengths 56, 120, … 1400:
 *              where node:crypto starts to win (src/protocol/sha256.ts KERNEL_CROSSOVER_BYTES)
 *   dgram      one socket.send on 127.0.0.1: with an address vs connected
 *   handoff    a 256-slot batch index between two threads: SharedArrayBuffer ring with
 *              Atomics.wait/notify vs a piscina task round trip, one and 4 in flight
 *
 *   npm run bench:micro                          # ≈ 20 s
 *   node dist/bench/micro.js --quick             # ≈ 3 s, coarse
 *   node dist/bench/micro.js --only mac,drops --time 500 --json out.json
 *   node dist/bench/micro.js --only crossover --time 500    # the kernel/node:crypto crossover
 *
 * Sub-microsecond operations are timed in batches (each tinybench sample is the mean of
 * a batch, reported through `overriddenDuration`), since one call is close to the
 * timer's own cost.
 */
import { TASKS_PER_WORKER } from '../src/engine.js';
import { createHmac, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Bench, type Task } from 'tinybench';
import { BatchRing } from '../src/pipeline/ring.js';
import { Collector, type CollectOutput } from '../src/pipeline/collect.js';
import type { Lane } from '../src/pipeline/lane.js';
import { MAC_LEN, OFF_MAGIC, OFF_SENDER_ID, OFF_VER } from '../src/protocol/wire.js';
import { H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_NONCE_LO, M_VERDICT, SLOT_META_WORDS } from '../src/pipeline/layout.js';
import { KE_RAW_CUR, KE_STATE_CUR } from '../src/keys/table-layout.js';
import { encodePacket, parsePacket, readU32, writeHeader } from '../src/protocol/codec.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { macSeal } from '../src/protocol/mac.js';
import { nativeMac, nativeMacStatus } from '../src/protocol/native.js';
import { literalLookup } from '../src/pipeline/udp.js';
import { checkDatagram, ReceiveResult, type ReceiveContext } from '../src/protocol/receive.js';
import { ReplayFilter } from '../src/protocol/replay.js';
import { HMAC_STATE_WORDS, hmacPrecompute, hmacTag16, KERNEL_CROSSOVER_BYTES } from '../src/protocol/sha256.js';
import { Books } from '../src/observe/stats.js';
import { V_ACCEPT, V_PENDING_REPLAY, V_REPLAY, verdictName, VERDICT_NAMES } from '../src/protocol/verdict.js';
import { BatchVerifier } from '../src/pipeline/verify.js';
import { intFlag } from '../src/cli/args.js';
import { clockTick, nowUs } from '../src/clock.js';
import { BENCH_TENANT, benchKeys, isMain, machine, machineLine, type MachineInfo, parseBenchFlags, printTable, round, runCommand, subsetFlag, writeJson } from './common.js';
import { META_WORDS, R_QUEUES, R_REQ_TAIL, R_RESP_HEAD, R_RESP_TAIL, R_STOP, type HandoffConfig } from './handoff-worker.js';

const CMD = 'bench:micro';

/** The groups run by default. */
const GROUPS = ['codec', 'keys', 'replay', 'drops', 'stages', 'mac', 'dgram', 'handoff'] as const;
/** Every group: `crossover` (≈ 44 tasks) runs only when asked for with `--only`. */
const ALL_GROUPS = [...GROUPS, 'crossover'] as const;
type Group = (typeof ALL_GROUPS)[number];

const HELP = `Usage: node dist/bench/micro.js [--quick] [--time MS] [--only LIST] [--json PATH]

Micro-benchmarks of dtmesh's components; prints one table per component and the machine.

  --time MS     time budget per task (default 250; --quick 30)
  --quick       coarse numbers in about 3 s (smoke runs)
  --only LIST   comma-separated subset of: ${ALL_GROUPS.join(', ')} (default all but
                crossover: the JS kernel vs node:crypto sweep behind KERNEL_CROSSOVER_BYTES)
  --json PATH   also write every number as JSON
  --help        this text
`;

/** One measured operation: nanoseconds per call. */
export interface MicroRow {
  group: Group;
  name: string;
  ns: number;
  /** Relative margin of error of the mean, %. */
  rme: number;
  ops_per_s: number;
}

/** The JSON document of `micro --json`. */
export interface MicroReport {
  machine: MachineInfo;
  time_ms: number;
  rows: MicroRow[];
  /** node:crypto time / the engine's kernel's time (native where built, else JS), per datagram size (bytes). */
  mac_ratio: Record<string, number>;
  /** node:crypto time / JS kernel time, per datagram size. */
  mac_ratio_js: Record<string, number>;
  /** Cost of an unknown_sender drop relative to a bad_mac drop (≪ 1: a table lookup, no HMAC). */
  unknown_vs_bad_mac: number;
  /** Piscina round trip time / ring round trip time, one in flight and pipelined (4 in flight). */
  handoff_ratio: { one: number; pipelined: number };
  /** With `--only crossover`: the first canonical length where node:crypto beat the JS kernel (null: none up to 1400), and the constant the build routes by. */
  crossover?: { measured: number | null; kernel_crossover_bytes: number };
}

let sink = 0; // results fed here so no call is optimised away

// ---- fixture -------------------------------------------------------------------------------

const PEERS = 16;
const { keyring, keyTable, writers } = benchKeys(PEERS);

function receiveContext(startUs: number): ReceiveContext {
  return {
    keys: keyTable.keys,
    keyBytes: keyTable.keyBytes,
    capacity: keyTable.capacity,
    selfHi: readU32(keyring.selfId, 0) | 0,
    selfLo: readU32(keyring.selfId, 4) | 0,
    maxDatagram: 2048,
    clockWindowUs: 5_000_000,
    startUs,
  };
}

// ---- tinybench helpers -----------------------------------------------------------------------

interface Ctx {
  bench: Bench;
  names: Array<{ group: Group; name: string }>;
}

/** A synchronous op timed `batch` calls per sample. */
function addOp(c: Ctx, group: Group, name: string, batch: number, op: (i: number) => void): void {
  let i = 0;
  c.names.push({ group, name });
  c.bench.add(`${group}: ${name}`, () => {
    const t0 = performance.now();
    for (let k = 0; k < batch; k++) op(i++);
    const dt = performance.now() - t0;
    return { overriddenDuration: dt / batch, overriddenIterationCost: dt };
  });
}

/** An asynchronous op timed `batch` completions per sample. */
function addAsyncOp(c: Ctx, group: Group, name: string, batch: number, run: (n: number) => Promise<void>): void {
  c.names.push({ group, name });
  c.bench.add(`${group}: ${name}`, async () => {
    const t0 = performance.now();
    await run(batch);
    const dt = performance.now() - t0;
    return { overriddenDuration: dt / batch, overriddenIterationCost: dt };
  });
}

function statOf(task: Task | undefined): { ns: number; rme: number } {
  const r = task?.result;
  if (!r || !('latency' in r)) {
    const why = r && 'error' in r ? `: ${r.error.message}` : '';
    throw new Error(`task '${task?.name}' did not complete (${r?.state ?? 'missing'})${why}`);
  }
  return { ns: r.latency.mean * 1e6, rme: r.latency.rme };
}

// ---- groups -------------------------------------------------------------------------------------

function codecGroup(c: Ctx): void {
  const w = writers[0]!;
  const fields = {
    type: 1,
    senderId: w.senderId,
    nonce: 1n,
    probeId: 7,
    sendTsUs: BigInt(Math.floor(nowUs())),
    payload: new Uint8Array(84 - 50).fill(0x5a),
  };
  const d = encodePacket(fields, w.state);
  const buf = new Uint8Array(new SharedArrayBuffer(4096));
  addOp(c, 'codec', 'encodePacket 84 B (allocates, incl. MAC)', 64, (i) => {
    fields.nonce = BigInt(i);
    sink ^= encodePacket(fields, w.state)[83]!;
  });
  addOp(c, 'codec', 'parsePacket 84 B (allocates)', 256, () => {
    sink ^= parsePacket(d)!.probeId;
  });
  addOp(c, 'codec', 'writeHeader in place', 1024, (i) => {
    writeHeader(buf, (i & 15) * 128, 2, w.senderId, 1_700_000_000_000_000 + i, i, 1_700_000_000_000_000);
  });
  // as the engine thread signs an own packet: the pair key's entry in its own table, MAC routed by size
  const k = keyTable.lookup(w.senderId);
  if (k < 0) throw new Error('fixture peer missing from the key table');
  addOp(c, 'codec', 'writeHeader + macSeal 84 B in place (reply)', 256, (i) => {
    const off = (i & 15) * 128;
    writeHeader(buf, off, 2, w.senderId, 1_700_000_000_000_000 + i, i, 1_700_000_000_000_000);
    macSeal(keyTable.own, k + KE_STATE_CUR, buf, off, 84, keyTable.ownBytes, (k + KE_RAW_CUR) * 4);
    sink ^= buf[off + 83]!;
  });
}

function keysGroup(c: Ctx): void {
  const r = new Uint8Array(randomBytes(32));
  const state = new Int32Array(HMAC_STATE_WORDS);
  const key = new Uint8Array(32).fill(7);
  addOp(c, 'keys', 'derivePairKey (HKDF-SHA256)', 16, (i) => {
    sink ^= derivePairKey(r, BENCH_TENANT, 'agent-a', `agent-${i & 1023}`)[0]!;
  });
  addOp(c, 'keys', 'hmacPrecompute (2 compressions)', 64, (i) => {
    key[0] = i;
    hmacPrecompute(key, state, 0);
    sink ^= state[0]!;
  });
}

function replayGroup(c: Ctx): void {
  const strict = new ReplayFilter(0, PEERS);
  const win = new ReplayFilter(1024, PEERS);
  const winRe = new ReplayFilter(1024, PEERS);
  const strictRe = new ReplayFilter(0, PEERS);
  const base = 0x10000000;
  const nStrict = new Uint32Array(PEERS);
  const nWin = new Uint32Array(PEERS);
  const nRe = new Uint32Array(PEERS);
  for (let p = 0; p < PEERS; p++) strictRe.check(p, 1, 1000, false);
  addOp(c, 'replay', 'strict, in order (accept)', 1024, (i) => {
    const p = i & (PEERS - 1);
    sink ^= strict.check(p, 1, base + ++nStrict[p]!, false);
  });
  addOp(c, 'replay', 'strict, replayed nonce (drop)', 1024, (i) => {
    sink ^= strictRe.check(i & (PEERS - 1), 1, 999, false);
  });
  addOp(c, 'replay', 'window 1024, in order (accept)', 1024, (i) => {
    const p = i & (PEERS - 1);
    sink ^= win.check(p, 1, base + ++nWin[p]!, false);
  });
  // pairs swapped: n+2, n+1, n+4, n+3, …: every other nonce is an older one inside the window
  addOp(c, 'replay', 'window 1024, pairs reordered (accept)', 1024, (i) => {
    const p = i & (PEERS - 1);
    const k = ++nRe[p]!;
    sink ^= winRe.check(p, 1, base + (k & 1 ? k + 1 : k - 1), false);
  });
  // sanity: the patterns judge as intended
  const probe = new ReplayFilter(1024, 1);
  const seq = [2, 1, 4, 3, 4].map((k) => probe.check(0, 1, base + k, false));
  if (seq.join() !== [V_ACCEPT, V_ACCEPT, V_ACCEPT, V_ACCEPT, V_REPLAY].join()) throw new Error(`replay fixture misjudged: ${seq}`);
}

function dropsGroup(c: Ctx): { expect: Array<[string, string]> } {
  const now = Math.floor(nowUs());
  const nowCell = new Float64Array([now]); // checkDatagram reads the receive time from a slot time word
  const ctx = receiveContext(now - 60_000_000);
  const half = keyTable.active;
  const mem = new Uint8Array(new SharedArrayBuffer(8 * 256));
  const result = new ReceiveResult();
  const w = writers[1]!;
  const make = (slot: number, edit: (d: Uint8Array, off: number) => void, tsUs = now): number => {
    const off = slot * 256;
    w.write(mem, off, 84, slot, tsUs);
    edit(mem, off);
    return off;
  };
  const selfState = new Int32Array(HMAC_STATE_WORDS);
  const reseal = (d: Uint8Array, off: number): void => macSeal(w.state, 0, d, off, 84);
  const cases: Array<[string, number, string]> = [
    ['malformed (bad magic)', make(0, (d, o) => (d[o + OFF_MAGIC] = 0x45)), 'malformed'],
    ['downgrade (ver 0)', make(1, (d, o) => ((d[o + OFF_VER] = 0), reseal(d, o))), 'downgrade'],
    ['reflected (own sender_id)', make(2, (d, o) => (d.set(keyring.selfId, o + OFF_SENDER_ID), reseal(d, o))), 'reflected'],
    ['unknown_sender (lookup, no HMAC)', make(3, (d, o) => (d.set(senderIdOf('stranger'), o + OFF_SENDER_ID), macSeal(selfState, 0, d, o, 84))), 'unknown_sender'],
    ['bad_mac (one HMAC)', make(4, (d, o) => (d[o + 83] ^= 1)), 'bad_mac'],
    ['stale (HMAC, then clock)', make(5, () => undefined, now - 10_000_000), 'stale'],
    ['valid (pending replay check)', make(6, () => undefined), 'pending'],
  ];
  const expect: Array<[string, string]> = [];
  for (const [name, off, want] of cases) {
    const v = checkDatagram(ctx, half, mem, off, 84, nowCell, 0, result);
    const got = v === V_PENDING_REPLAY ? 'pending' : verdictName(v);
    if (got !== want) throw new Error(`drop fixture '${name}' judged ${got}, expected ${want}`);
    expect.push([name, got]);
    addOp(c, 'drops', name, 512, () => {
      sink ^= checkDatagram(ctx, half, mem, off, 84, nowCell, 0, result);
    });
  }
  return { expect };
}

function stagesGroup(c: Ctx): void {
  const SLOTS = 256;
  const ring = new BatchRing(4, SLOTS, 2048);
  const now = Math.floor(nowUs());
  const src = new Uint8Array(84 * SLOTS);
  for (let i = 0; i < SLOTS; i++) writers[i & (PEERS - 1)]!.write(src, i * 84, 84, i, now);
  const msgs = Array.from({ length: SLOTS }, (_, i) => Buffer.from(src.buffer, i * 84, 84));
  // BatchRing.put: the one copy per datagram on the socket thread
  let b = ring.take();
  addOp(c, 'stages', 'socket: BatchRing.put 84 B', SLOTS, (i) => {
    const k = i & (SLOTS - 1);
    if (k === 0) {
      ring.release(b);
      b = ring.take();
    }
    ring.put(b, msgs[k]!, now, '127.0.0.1', 40000);
  });
  // The clock read each REPLY's send_ts_us takes after its PROBE is verified (verify.ts)
  addOp(c, 'stages', 'verify: clockTick (one per REPLY)', SLOTS, () => clockTick());
  // Verify a full batch on this thread (what a worker does per task), PROBEs: verify + sign
  const vb = ring.take();
  for (let i = 0; i < SLOTS; i++) ring.put(vb, msgs[i]!, now, '127.0.0.1', 40000);
  const h = ring.layout.headerIndex(vb);
  ring.ints[h + H_COUNT] = SLOTS;
  ring.ints[h + H_KEY_HALF] = keyTable.active;
  ring.ints[h + H_NONCE_HI] = 0x10000;
  ring.ints[h + H_NONCE_LO] = 0;
  const vcfg = {
    batchSab: ring.sab,
    batches: 4,
    slots: SLOTS,
    maxDatagram: 2048,
    keySab: keyTable.sab,
    keyCapacity: keyTable.capacity,
    selfId: keyring.selfId,
    clockWindowUs: 5_000_000,
    startUs: now - 60_000_000,
  };
  const verifier = new BatchVerifier(vcfg);
  verifier.run(vb, now);
  for (let i = 0; i < SLOTS; i++) {
    const v = ring.ints[ring.layout.metaIndex(ring.layout.slotNumber(vb, i)) + M_VERDICT]!;
    if (v !== V_PENDING_REPLAY) throw new Error(`verifier fixture slot ${i} judged ${VERDICT_NAMES[v] ?? v}`);
  }
  let runs = 0;
  addOp(c, 'stages', 'worker: BatchVerifier.run, PROBE 84 B (verify + sign), per datagram', SLOTS, (i) => {
    if ((i & (SLOTS - 1)) === 0) runs += verifier.run(vb, now);
  });
  // the collector stage (src/pipeline/collect.ts) through its public seam, as the dispatcher
  // drives it: expect (dispatch order), then verified → replay check, counters, latency
  // histogram, key-half unpin, accepted PROBEs handed on for their REPLY; per datagram
  const filter = new ReplayFilter(0, PEERS);
  const books = new Books();
  let replies = 0;
  const out: CollectOutput = { reply: () => void replies++, deliver: () => undefined, collected: () => undefined, settled: () => undefined };
  const collector = new Collector(ring, filter, books, keyTable, out, new BatchVerifier(vcfg, { keys: keyTable.own, keyBytes: keyTable.ownBytes }));
  const lane = { index: 0 } as Lane; // the collector only hands it back to out.collected
  let nonce = 1;
  addOp(c, 'stages', 'socket: Collector.verified per datagram (accept, strict)', SLOTS, (i) => {
    if ((i & (SLOTS - 1)) !== 0) return;
    for (let k = 0; k < SLOTS; k++) {
      const mi = ring.layout.metaIndex(ring.layout.slotNumber(vb, k));
      ring.ints[mi + M_VERDICT] = V_PENDING_REPLAY;
      ring.ints[mi + M_NONCE_LO] = nonce++;
    }
    ring.ints[h + H_KEY_HALF] = keyTable.pin(); // what the dispatcher pins, the collector unpins
    collector.expect(vb, lane);
    collector.verified(vb);
  });
  sink ^= runs ^ replies;
}

const MAC_SIZES = [50, 84, 512, 1400];

function macGroup(c: Ctx): void {
  const key = new Uint8Array(randomBytes(32));
  const keyBuf = Buffer.from(key);
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(key, state, 0);
  const mem = new Uint8Array(new SharedArrayBuffer(16 * 2048));
  for (let i = 0; i < mem.length; i++) mem[i] = (i * 2654435761) >>> 24;
  const suffix = Buffer.alloc(4);
  const out = new Uint8Array(16);
  for (const size of MAC_SIZES) {
    const body = size - MAC_LEN;
    const views = Array.from({ length: 16 }, (_, s) => Buffer.from(mem.buffer, s * 2048, body));
    // same answer from both
    hmacTag16(state, 0, mem, 0, body, body - 34, out, 0);
    suffix.writeUInt32BE(body - 34, 0);
    const ref = createHmac('sha256', keyBuf).update(views[0]!).update(suffix).digest();
    if (Buffer.compare(ref.subarray(0, 16), Buffer.from(out)) !== 0) throw new Error(`kernel and node:crypto disagree at ${size} B`);
    const batch = size > 500 ? 64 : 256;
    addOp(c, 'mac', `kernel hmacTag16 ${size} B`, batch, (i) => {
      hmacTag16(state, 0, mem, (i & 15) * 2048, body, body - 34, out, 0);
      sink ^= out[0]!;
    });
    if (nativeMac !== null) {
      const nat = nativeMac;
      nat.tag16(state, 0, mem, 0, body, body - 34, out, 0);
      if (Buffer.compare(ref.subarray(0, 16), Buffer.from(out)) !== 0) throw new Error(`native kernel and node:crypto disagree at ${size} B`);
      addOp(c, 'mac', `native tag16 ${size} B`, batch, (i) => {
        nat.tag16(state, 0, mem, (i & 15) * 2048, body, body - 34, out, 0);
        sink ^= out[0]!;
      });
      // as the engine calls it: bound once to the key state and the bytes (tag written after each datagram's body)
      const binding = nat.bind(state, mem);
      addOp(c, 'mac', `native bound tagAt ${size} B (the engine)`, batch, (i) => {
        nat.tagAt(binding, 0, (i & 15) * 2048, body, body - 34, (i & 15) * 2048 + body);
        sink ^= mem[(i & 15) * 2048 + body]!;
      });
    }
    addOp(c, 'mac', `node:crypto createHmac ${size} B`, batch, (i) => {
      suffix.writeUInt32BE(body - 34, 0);
      sink ^= createHmac('sha256', keyBuf).update(views[i & 15]!).update(suffix).digest()[0]!;
    });
  }
}

/** Canonical lengths at the JS kernel's cost steps (L ≡ 56 mod 64), where it is worst off against node:crypto. */
const CROSSOVER_LENGTHS = Array.from({ length: 22 }, (_, i) => 56 + 64 * i);

/**
 * The JS kernel's cost is a step function — `ceil((L + 9) / 64) + 1` compressions for
 * canonical length L — while node:crypto's grows with L: the crossover is the first
 * step start where node:crypto wins. node:crypto gets its most favourable form, one
 * `update` of a contiguous canonical view prepared outside the timed loop.
 */
function crossoverGroup(c: Ctx): void {
  const SLOTS = 16;
  const SLOT_BYTES = 2048;
  const key = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
  const keyBuf = Buffer.from(key);
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(key, state, 0);
  const mem = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES));
  for (let i = 0; i < mem.length; i++) mem[i] = (i * 2654435761) >>> 24;
  const canon = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES));
  const out = new Uint8Array(16);
  for (const L of CROSSOVER_LENGTHS) {
    const body = L - 4;
    const views = Array.from({ length: SLOTS }, (_, s) => {
      canon.set(mem.subarray(s * SLOT_BYTES, s * SLOT_BYTES + body), s * SLOT_BYTES);
      new DataView(canon.buffer).setUint32(s * SLOT_BYTES + body, body);
      return Buffer.from(canon.buffer, s * SLOT_BYTES, L);
    });
    hmacTag16(state, 0, mem, SLOT_BYTES, body, body, out, 0);
    if (Buffer.compare(createHmac('sha256', keyBuf).update(views[1]!).digest().subarray(0, 16), Buffer.from(out)) !== 0) throw new Error(`kernel and node:crypto disagree at L = ${L}`);
    addOp(c, 'crossover', `kernel hmacTag16 L=${L}`, 64, (i) => {
      hmacTag16(state, 0, mem, (i & (SLOTS - 1)) * SLOT_BYTES, body, body, out, 0);
      sink ^= out[0]!;
    });
    addOp(c, 'crossover', `node:crypto createHmac L=${L}`, 64, (i) => {
      sink ^= createHmac('sha256', keyBuf).update(views[i & (SLOTS - 1)]!).digest()[0]!;
    });
  }
}

async function dgramGroup(c: Ctx, cleanups: Array<() => Promise<void>>): Promise<void> {
  const bind = async (opts: Partial<dgram.SocketOptions> = {}): Promise<dgram.Socket> => {
    const s = dgram.createSocket({ type: 'udp4', ...opts } as dgram.SocketOptions);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return s;
  };
  const target = await bind(); // never read: the kernel drops what overflows, the sender's cost is the same
  const a = await bind();
  const b = await bind();
  const e = await bind({ lookup: literalLookup }); // the engine's socket options (src/pipeline/udp.ts)
  const port = target.address().port;
  b.connect(port, '127.0.0.1');
  await new Promise<void>((r) => b.once('connect', () => r()));
  const msg = Buffer.alloc(84, 0x5a);
  cleanups.push(async () => {
    for (const s of [a, b, e, target]) s.close();
  });
  // Each sample ends when the last send of its batch has been handed to the kernel (sends
  // complete in order). `everyCallback` false is what the engine's socket thread does: a
  // completion callback on a batch's last send only; socket `e` has its lookup (src/pipeline/udp.ts).
  const toHostPort = (name: string, s: dgram.Socket, everyCallback: boolean): void =>
    addAsyncOp(c, 'dgram', name, 64, (n) => new Promise((resolve) => {
      let left = n;
      const done = (): void => void (--left === 0 && resolve());
      for (let i = 0; i < n - 1; i++) {
        if (everyCallback) s.send(msg, port, '127.0.0.1', done);
        else s.send(msg, port, '127.0.0.1');
      }
      s.send(msg, port, '127.0.0.1', everyCallback ? done : () => resolve());
    }));
  toHostPort('send 84 B to HOST, PORT (as the responders reply)', a, true);
  toHostPort('send 84 B to HOST, PORT, callback on the last of 64 only', a, false);
  toHostPort('send 84 B to HOST, PORT, literalLookup (engine sockets)', e, true);
  toHostPort('send 84 B to HOST, PORT, literalLookup, callback on the last only (the engine)', e, false);
  addAsyncOp(c, 'dgram', 'send 84 B on a connected socket', 64, (n) => new Promise((resolve) => {
    let left = n;
    const done = (): void => void (--left === 0 && resolve());
    for (let i = 0; i < n; i++) b.send(msg, done);
  }));
}

interface Ring {
  push(b: number): void;
  popSync(): number;
  popAsync(): Promise<number>;
  stop(): Promise<void>;
}

/** A ring worker thread and the main thread's side of its two queues. */
async function startRing(workerFile: string, metaSab: SharedArrayBuffer, slots: number, spinUs: number): Promise<Ring> {
  const DEPTH = 8; // queue capacity, ≥ batches in flight
  const ctrlSab = new SharedArrayBuffer((R_QUEUES + 2 * DEPTH) * 4);
  const ctrl = new Int32Array(ctrlSab);
  const cfg: HandoffConfig = { mode: 'ring', ctrl: ctrlSab, depth: DEPTH, meta: metaSab, slots, spinUs };
  const worker = new Worker(workerFile, { workerData: cfg });
  await new Promise<void>((r, j) => (worker.once('online', () => r()), worker.once('error', j)));
  const mask = DEPTH - 1;
  const spinMs = spinUs / 1000;
  const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: boolean; value: Promise<string> | string } }).waitAsync;
  const take = (h: number): number => {
    const b = ctrl[R_QUEUES + DEPTH + (h & mask)]!;
    Atomics.store(ctrl, R_RESP_HEAD, h + 1);
    return b;
  };
  return {
    push(b: number): void {
      const t = Atomics.load(ctrl, R_REQ_TAIL);
      ctrl[R_QUEUES + (t & mask)] = b;
      Atomics.store(ctrl, R_REQ_TAIL, t + 1);
      Atomics.notify(ctrl, R_REQ_TAIL);
    },
    popSync(): number {
      const h = Atomics.load(ctrl, R_RESP_HEAD);
      if (spinMs > 0) {
        const t0 = performance.now();
        while (Atomics.load(ctrl, R_RESP_TAIL) === h && performance.now() - t0 < spinMs);
      }
      while (Atomics.load(ctrl, R_RESP_TAIL) === h) Atomics.wait(ctrl, R_RESP_TAIL, h, 1000);
      return take(h);
    },
    async popAsync(): Promise<number> {
      const h = Atomics.load(ctrl, R_RESP_HEAD);
      while (Atomics.load(ctrl, R_RESP_TAIL) === h) {
        const r = waitAsync(ctrl, R_RESP_TAIL, h, 1000);
        if (r.async) await r.value;
      }
      return take(h);
    },
    async stop(): Promise<void> {
      Atomics.store(ctrl, R_STOP, 1);
      Atomics.notify(ctrl, R_REQ_TAIL);
      await worker.terminate();
    },
  };
}

/** Spin of the "spin, then wait" ring variant, µs. */
const RING_SPIN_US = 50;

async function handoffGroup(c: Ctx, cleanups: Array<() => Promise<void>>): Promise<void> {
  const SLOTS = 256;
  const BATCHES = 8;
  const workerFile = fileURLToPath(new URL('./handoff-worker.js', import.meta.url));
  const metaSab = new SharedArrayBuffer(BATCHES * SLOTS * META_WORDS * 4);
  const ring = await startRing(workerFile, metaSab, SLOTS, 0);
  const spin = await startRing(workerFile, metaSab, SLOTS, RING_SPIN_US);
  const pcfg: HandoffConfig = { mode: 'piscina', meta: metaSab, slots: SLOTS };
  const pool = new Piscina({ filename: workerFile, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, concurrentTasksPerWorker: TASKS_PER_WORKER, workerData: pcfg });
  const pool4 = new Piscina({ filename: workerFile, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, concurrentTasksPerWorker: 4, workerData: pcfg });
  await Promise.all([pool.run(0), pool4.run(0)]);
  cleanups.push(async () => {
    await Promise.all([ring.stop(), spin.stop(), pool.destroy(), pool4.destroy()]);
  });
  let next = 0;
  const viaRing = (r: Ring, inflight: number, async: boolean) => async (n: number): Promise<void> => {
    for (let i = 0; i < inflight; i++) r.push(next++ % BATCHES);
    for (let i = 0; i < n; i++) {
      sink ^= async ? await r.popAsync() : r.popSync();
      if (i + inflight < n) r.push(next++ % BATCHES);
    }
  };
  const viaPool = (p: Piscina, inflight: number) => (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      let issued = 0;
      let done = 0;
      const issue = (): void => {
        const b = issued++ % BATCHES;
        p.run(b).then((r: number) => {
          sink ^= r;
          if (++done === n) resolve();
          else if (issued < n) issue();
        }, reject);
      };
      for (let i = 0; i < Math.min(inflight, n); i++) issue();
    });
  addAsyncOp(c, 'handoff', 'ring, Atomics.wait both sides, 1 in flight', 64, viaRing(ring, 1, false));
  addAsyncOp(c, 'handoff', 'ring, Atomics.wait both sides, 4 in flight', 64, viaRing(ring, 4, false));
  addAsyncOp(c, 'handoff', 'ring, main side Atomics.waitAsync, 1 in flight', 64, viaRing(ring, 1, true));
  addAsyncOp(c, 'handoff', 'ring, main side Atomics.waitAsync, 4 in flight', 64, viaRing(ring, 4, true));
  addAsyncOp(c, 'handoff', `ring, spin ${RING_SPIN_US} µs then Atomics.wait, 1 in flight`, 64, viaRing(spin, 1, false));
  addAsyncOp(c, 'handoff', `ring, spin ${RING_SPIN_US} µs then Atomics.wait, 4 in flight`, 64, viaRing(spin, 4, false));
  addAsyncOp(c, 'handoff', 'piscina task round trip, 1 in flight', 64, viaPool(pool, 1));
  addAsyncOp(c, 'handoff', `piscina, 4 in flight, concurrentTasksPerWorker ${TASKS_PER_WORKER} (engine)`, 64, viaPool(pool, 4));
  addAsyncOp(c, 'handoff', 'piscina, 4 in flight, concurrentTasksPerWorker 4', 64, viaPool(pool4, 4));
}

// ---- command -----------------------------------------------------------------------------------

/** `micro` entry: parse flags, run the groups, print the tables; resolves with an exit code. */
export async function microCommand(argv: string[]): Promise<number> {
  return runCommand(CMD, async () => {
    const v = parseBenchFlags(CMD, argv, ['time', 'only', 'json'], ['quick']);
    if (v.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const quick = v.quick === true;
    const timeMs = intFlag(CMD, v, 'time', 1, 60_000) ?? (quick ? 30 : 250);
    const groups: Group[] = subsetFlag(CMD, v, 'only', ALL_GROUPS) ?? [...GROUPS];
    const m = machine();
    process.stdout.write(`${machineLine(m)}\n${timeMs} ms per task; ns per call (mean of batch means, ±rme)\n`);
    const bench = new Bench({ time: timeMs, warmupTime: quick ? 10 : 100, iterations: quick ? 4 : 16, warmupIterations: quick ? 2 : 8, throws: true });
    const c: Ctx = { bench, names: [] };
    const cleanups: Array<() => Promise<void>> = [];
    try {
      if (groups.includes('codec')) codecGroup(c);
      if (groups.includes('keys')) keysGroup(c);
      if (groups.includes('replay')) replayGroup(c);
      if (groups.includes('drops')) dropsGroup(c);
      if (groups.includes('stages')) stagesGroup(c);
      if (groups.includes('mac')) macGroup(c);
      if (groups.includes('crossover')) crossoverGroup(c);
      if (groups.includes('dgram')) await dgramGroup(c, cleanups);
      if (groups.includes('handoff')) await handoffGroup(c, cleanups);
      await bench.run();
    } finally {
      for (const f of cleanups) await f();
    }
    const rows: MicroRow[] = c.names.map(({ group, name }) => {
      const s = statOf(bench.getTask(`${group}: ${name}`));
      return { group, name, ns: round(s.ns, 1), rme: round(s.rme, 1), ops_per_s: Math.round(1e9 / s.ns) };
    });
    const find = (g: Group, prefix: string): number => rows.find((r) => r.group === g && r.name.startsWith(prefix))?.ns ?? NaN;
    for (const g of groups) {
      const rs = rows.filter((r) => r.group === g);
      process.stdout.write(`\n${g}\n`);
      printTable(['operation', 'ns/op', '±%', 'ops/s'], rs.map((r) => [r.name, r.ns >= 100 ? r.ns.toFixed(0) : r.ns.toFixed(1), r.rme.toFixed(1), r.ops_per_s.toLocaleString('en-US')]));
    }
    const macRatio: Record<string, number> = {};
    const macRatioJs: Record<string, number> = {};
    if (groups.includes('mac')) {
      process.stdout.write(`\nmac: kernels vs node:crypto (ratio = node:crypto time / kernel time; > 1: kernel faster); native kernel: ${nativeMacStatus}\n`);
      printTable(
        ['datagram', 'native ns', 'JS kernel ns', 'node:crypto ns', 'node:crypto / native', 'node:crypto / JS'],
        MAC_SIZES.map((s) => {
          const k = find('mac', `kernel hmacTag16 ${s} B`);
          const n = find('mac', `node:crypto createHmac ${s} B`);
          const nat = nativeMac !== null ? find('mac', `native tag16 ${s} B`) : NaN;
          macRatioJs[String(s)] = round(n / k);
          macRatio[String(s)] = round(n / (nativeMac !== null ? nat : k));
          return [`${s} B`, nativeMac !== null ? nat.toFixed(0) : '-', k.toFixed(0), n.toFixed(0), nativeMac !== null ? (n / nat).toFixed(2) : '-', (n / k).toFixed(2)];
        }),
      );
    }
    let crossover: MicroReport['crossover'];
    if (groups.includes('crossover')) {
      let measured: number | null = null;
      process.stdout.write(`\ncrossover: JS kernel vs node:crypto by canonical length (ratio = node:crypto time / kernel time; < 1: node:crypto faster)\n`);
      printTable(
        ['canonical', 'compressions', 'kernel ns', 'node:crypto ns', 'ratio'],
        CROSSOVER_LENGTHS.map((L) => {
          const k = find('crossover', `kernel hmacTag16 L=${L}`);
          const n = find('crossover', `node:crypto createHmac L=${L}`);
          if (measured === null && n < k) measured = L;
          return [L, Math.ceil((L + 9) / 64) + 1, k.toFixed(0), n.toFixed(0), (n / k).toFixed(2)];
        }),
      );
      crossover = { measured, kernel_crossover_bytes: KERNEL_CROSSOVER_BYTES };
      process.stdout.write(`measured crossover: ${measured ?? `> ${CROSSOVER_LENGTHS[CROSSOVER_LENGTHS.length - 1]}`} canonical bytes; the build routes by KERNEL_CROSSOVER_BYTES = ${KERNEL_CROSSOVER_BYTES}\n`);
    }
    let unknownVsBad = NaN;
    if (groups.includes('drops')) {
      unknownVsBad = find('drops', 'unknown_sender') / find('drops', 'bad_mac');
      process.stdout.write(`\ndrops: unknown_sender costs ${(unknownVsBad * 100).toFixed(1)} % of a bad_mac (table lookup, no HMAC)\n`);
    }
    const handoff = { one: NaN, pipelined: NaN };
    if (groups.includes('handoff')) {
      handoff.one = find('handoff', 'piscina task round trip, 1') / find('handoff', 'ring, Atomics.wait both sides, 1');
      handoff.pipelined = find('handoff', `piscina, 4 in flight, concurrentTasksPerWorker ${TASKS_PER_WORKER}`) / find('handoff', 'ring, Atomics.wait both sides, 4');
      process.stdout.write(
        `handoff: piscina / ring = ${handoff.one.toFixed(2)} (1 in flight), ${handoff.pipelined.toFixed(2)} (4 in flight, engine's piscina config)\n`,
      );
    }
    if (typeof v.json === 'string') {
      const doc: MicroReport = {
        machine: m,
        time_ms: timeMs,
        rows,
        mac_ratio: macRatio,
        mac_ratio_js: macRatioJs,
        unknown_vs_bad_mac: round(unknownVsBad, 3),
        handoff_ratio: { one: round(handoff.one), pipelined: round(handoff.pipelined) },
        ...(crossover ? { crossover } : {}),
      };
      writeJson(v.json, doc);
      process.stdout.write(`wrote ${v.json}\n`);
    }
    if (sink === 0x7fff_ffff) process.stdout.write('\n');
    return 0;
  });
}

if (isMain(import.meta.url)) {
  process.exitCode = await microCommand(process.argv.slice(2));
}
