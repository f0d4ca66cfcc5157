/**
 * The pipeline's stages on their own, through their public seams (src/pipeline/): the
 * send order, the collector driven with fake lanes, the dispatcher's routing, the reply
 * sender's nonce order. No sockets, no worker threads: verification runs on this thread
 * with the workers' own code (BatchVerifier).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { KeyRing } from '../../src/keys/keyring.js';
import { KeyTable } from '../../src/keys/keytable.js';
import { KE_WORDS, keyEntryIndex } from '../../src/keys/table-layout.js';
import { NonceCounter } from '../../src/keys/nonce.js';
import { Books } from '../../src/observe/stats.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { ReplayFilter } from '../../src/protocol/replay.js';
import { V_ACCEPT, V_PENDING_REPLAY, V_REPLAY, V_STALE, V_UNKNOWN_SENDER } from '../../src/protocol/verdict.js';
import { Collector, type CollectOutput } from '../../src/pipeline/collect.js';
import { Dispatcher } from '../../src/pipeline/dispatch.js';
import { HintHandler, type PunchHintEvent } from '../../src/pipeline/hints.js';
import { PunchPolicy } from '../../src/protocol/punch.js';
import { senderIdOf } from '../../src/protocol/ids.js';
import { TYPE_PUNCH_HINT } from '../../src/protocol/wire.js';
import type { LaneCounts, PacketLane } from '../../src/pipeline/lane.js';
import { F_SEND, H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_FLAGS, M_LENGTH, M_VERDICT } from '../../src/pipeline/layout.js';
import type { VerifyPool } from '../../src/pipeline/pool.js';
import { ReplySender } from '../../src/pipeline/reply.js';
import { BatchRing } from '../../src/pipeline/ring.js';
import { SendOrder } from '../../src/pipeline/sendorder.js';
import { BatchVerifier } from '../../src/pipeline/verify.js';
import { TestPeer, wallUs } from '../helpers.js';

const tenant = 'tenant-stages';
const root = new Uint8Array(randomBytes(32));

/** A lane that records what the pipeline asks of it. */
class FakeLane implements PacketLane {
  readonly counts: LaneCounts = { received: 0, overload: 0, sendErrors: 0 };
  readonly drained = false;
  readonly port = 0;
  readonly sentBatches: number[] = [];
  readonly packets: Uint8Array[] = [];
  constructor(readonly index: number) {}
  sendBatch(b: number): void {
    this.sentBatches.push(b);
  }
  sendPacket(buf: Uint8Array): boolean {
    this.packets.push(buf);
    return true;
  }
  kick(): void {}
  stop(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The send order as it was (array of unit objects, findIndex + splice): the model the ring-based one must match. */
class ModelOrder {
  private readonly units: Array<{ lane: number; start: () => void; started: boolean }> = [];
  private pumping = false;
  submit(lane: number, start: () => void): void {
    this.units.push({ lane, start, started: false });
    this.pump();
  }
  complete(lane: number): void {
    const i = this.units.findIndex((u) => u.lane === lane && u.started);
    if (i < 0) return;
    this.units.splice(i, 1);
    this.pump();
  }
  dropLane(lane: number): void {
    for (let i = this.units.length - 1; i >= 0; i--) if (this.units[i]!.lane === lane) this.units.splice(i, 1);
    this.pump();
  }
  get pending(): number {
    return this.units.length;
  }
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let again = true; again; ) {
        again = false;
        const lane = this.units.length > 0 ? this.units[0]!.lane : -1;
        for (let i = 0; i < this.units.length && this.units[i]!.lane === lane; i++) {
          const u = this.units[i]!;
          if (!u.started) {
            u.started = true;
            u.start();
            again = true;
            break;
          }
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}

test('send order (ring of batch units, no allocation per batch) starts units exactly as the array model: random submits, completions, lanes dropped, past its first growth', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('batch' as const), lane: fc.integer({ min: 0, max: 3 }) }),
          fc.record({ op: fc.constant('own' as const), lane: fc.constant(0), completeAtOnce: fc.boolean() }),
          fc.record({ op: fc.constant('complete' as const), lane: fc.integer({ min: 0, max: 3 }) }),
          fc.record({ op: fc.constant('drop' as const), lane: fc.integer({ min: 1, max: 3 }) }),
        ),
        { minLength: 1, maxLength: 400 },
      ),
      (ops) => {
        const got: string[] = [];
        const want: string[] = [];
        const o = new SendOrder((lane, b) => got.push(`b${b}@${lane}`));
        const m = new ModelOrder();
        let n = 0;
        for (const x of ops) {
          if (x.op === 'batch') {
            const b = n++;
            o.submitBatch(x.lane, b);
            m.submit(x.lane, () => want.push(`b${b}@${x.lane}`));
          } else if (x.op === 'own') {
            const id = n++;
            o.submit(0, () => {
              got.push(`p${id}`);
              if (x.completeAtOnce) o.complete(0);
            });
            m.submit(0, () => {
              want.push(`p${id}`);
              if (x.completeAtOnce) m.complete(0);
            });
          } else if (x.op === 'complete') {
            o.complete(x.lane);
            m.complete(x.lane);
          } else {
            o.dropLane(x.lane);
            m.dropLane(x.lane);
          }
          assert.deepEqual(got, want);
          assert.equal(o.pending, m.pending);
        }
      },
    ),
    { seed: 20261201, numRuns: 300 },
  );
  // past 64 pending units (the first growth), with the head not at 0
  const o = new SendOrder((lane, b) => started.push(b));
  const started: number[] = [];
  for (let b = 0; b < 10; b++) o.submitBatch(0, b);
  for (let k = 0; k < 10; k++) o.complete(0);
  o.submitBatch(1, 1000); // lane 1 waits behind everything of lane 0 submitted later? no: it is first now
  for (let b = 10; b < 150; b++) o.submitBatch(0, b);
  assert.deepEqual(started, [...Array.from({ length: 10 }, (_, b) => b), 1000], 'lane 0 waits behind the lane-1 unit');
  o.complete(1);
  assert.equal(started.length, 11 + 140, 'then all 140 lane-0 units start, in order');
  assert.deepEqual(started.slice(11), Array.from({ length: 140 }, (_, k) => 10 + k));
  assert.equal(o.pending, 140);
});

test('send order: one lane never waits for itself; another lane waits until every earlier unit completed; a lane gone unblocks', () => {
  const o = new SendOrder();
  const started: string[] = [];
  o.submit(0, () => started.push('a0'));
  o.submit(0, () => started.push('b0'));
  assert.deepEqual(started, ['a0', 'b0'], 'same lane: both start at once');
  o.submit(1, () => started.push('c1'));
  o.submit(0, () => started.push('d0'));
  assert.deepEqual(started, ['a0', 'b0'], 'lane 1 waits behind lane 0, and d0 behind c1');
  o.complete(0);
  assert.deepEqual(started, ['a0', 'b0'], 'one of two lane-0 units completed: still waiting');
  o.complete(0);
  assert.deepEqual(started, ['a0', 'b0', 'c1']);
  o.dropLane(1); // the socket thread died: its unit never completes
  assert.deepEqual(started, ['a0', 'b0', 'c1', 'd0']);
  // a unit that completes inside its own start (nothing to send) lets the next one go
  const o2 = new SendOrder();
  const s2: string[] = [];
  o2.submit(1, () => {
    s2.push('x1');
    o2.complete(1);
  });
  o2.submit(0, () => s2.push('y0'));
  assert.deepEqual(s2, ['x1', 'y0']);
  assert.equal(o2.pending, 1);
});

/** A ring with `batches` of `slots`, a key table, a verifier and the stages around them. */
function rig(batches: number, slots: number) {
  const keyring = new KeyRing(tenant, 'resp', root, ['prober']);
  const keyTable = new KeyTable(64);
  keyTable.publish(keyring.entries());
  const ring = new BatchRing(batches, slots, 2048);
  const startUs = wallUs() - 1_000_000;
  const verifier = new BatchVerifier({
    batchSab: ring.sab, batches, slots, maxDatagram: 2048, keySab: keyTable.sab, keyCapacity: keyTable.capacity, selfId: keyring.selfId, clockWindowUs: 5_000_000, startUs,
  });
  const newest = new BatchVerifier(
    { batchSab: ring.sab, batches, slots, maxDatagram: 2048, keySab: keyTable.sab, keyCapacity: keyTable.capacity, selfId: keyring.selfId, clockWindowUs: 5_000_000, startUs },
    { keys: keyTable.own, keyBytes: keyTable.ownBytes },
  );
  const filter = new ReplayFilter(0, keyring.peerSlots);
  const books = new Books();
  const nonces = new NonceCounter(null);
  return { keyring, keyTable, ring, verifier, newest, filter, books, nonces };
}

/** A reply sender on its own lane and a collector that hands it every collected batch, over rig `r`. */
function replyRig(r: ReturnType<typeof rig>) {
  const own = new FakeLane(0);
  const sender = new ReplySender(r.ring, r.keyTable, r.nonces, r.keyring.selfId, 2048, own, () => {});
  const collector = new Collector(r.ring, r.filter, r.books, r.keyTable, {
    reply: (b, s, i) => sender.reply(b, s, i),
    deliver: () => {},
    collected: (lane, b) => sender.batchCollected(lane, b),
    settled: () => {},
  }, r.newest);
  return { own, sender, collector };
}

/** A dispatcher whose pool verifies (and signs) a batch at once but holds its collection until `release()`. */
function heldPool(r: ReturnType<typeof rig>, collector: Collector): { d: Dispatcher; release: () => void } {
  const done: Array<() => void> = [];
  const pool = { verify: (b: number, cb: () => void) => (r.verifier.run(b), done.push(cb)) } as unknown as VerifyPool;
  const d = new Dispatcher(r.ring, r.keyTable, r.nonces, collector, pool, r.verifier, 0, () => {});
  return { d, release: () => done.splice(0).forEach((cb) => cb()) };
}

/** One PROBE of `peer` dispatched through {@link heldPool}: verified and its REPLY signed, its collection held until `release()`. */
function heldProbe(r: ReturnType<typeof rig>, peer: TestPeer): ReturnType<typeof replyRig> & { b: number; release: () => void } {
  const rr = replyRig(r);
  const { d, release } = heldPool(r, rr.collector);
  const b = r.ring.take();
  r.ring.put(b, peer.packet({ probeId: 1 }), wallUs(), '127.0.0.1', 9);
  d.dispatch(rr.own, b, 1);
  return { ...rr, b, release };
}

test('collector with fake lanes: batches verified out of order are collected in dispatch order, each handed back to its own lane', async () => {
  const r = rig(8, 4);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const lanes = [new FakeLane(0), new FakeLane(1)];
    const collected: Array<[number, number]> = [];
    let settled = 0;
    const replies: number[] = [];
    const out: CollectOutput = {
      reply: (_b, s) => replies.push(s),
      deliver: () => {},
      collected: (lane, b) => collected.push([lane.index, b]),
      settled: () => settled++,
    };
    const collector = new Collector(r.ring, r.filter, r.books, r.keyTable, out, r.newest);
    const order: number[] = [];
    for (let k = 0; k < 4; k++) {
      const b = r.ring.take();
      for (let i = 0; i < 4; i++) r.ring.put(b, peer.packet({ probeId: k * 4 + i }), wallUs(), '127.0.0.1', 9);
      const h = r.ring.layout.headerIndex(b);
      r.ring.ints[h] = 4; // H_COUNT
      r.ring.ints[h + 1] = r.keyTable.pin(); // H_KEY_HALF
      collector.expect(b, lanes[k % 2]!);
      r.verifier.run(b);
      order.push(b);
    }
    // finish in the order 2, 0, 3, 1: nothing is collected before its predecessors
    collector.verified(order[2]!);
    assert.deepEqual(collected, [], 'batch 2 waits for 0 and 1');
    assert.equal(collector.pending, true);
    collector.verified(order[0]!);
    assert.deepEqual(collected, [[0, order[0]]]);
    collector.verified(order[3]!);
    collector.verified(order[1]!);
    assert.deepEqual(collected, [[0, order[0]], [1, order[1]], [0, order[2]], [1, order[3]]], 'dispatch order, each to the lane that received it');
    assert.equal(collector.pending, false);
    assert.equal(r.books.verdicts[V_ACCEPT], 16);
    assert.equal(r.books.verdicts[V_REPLAY], 0, 'no false replay from the disorder');
    assert.equal(replies.length, 16);
    assert.ok(settled >= 2);
  } finally {
    peer.close();
  }
});

test('dispatcher: small batches verified here, large ones to the pool; a partial batch waits while the pool is busy', async () => {
  const r = rig(8, 128);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const lane = new FakeLane(0);
    const collected: number[] = [];
    const collector = new Collector(r.ring, r.filter, r.books, r.keyTable, { reply: () => {}, deliver: () => {}, collected: (_l, b) => collected.push(b), settled: () => {} }, r.newest);
    const pending: Array<() => void> = [];
    const pool = { verify: (b: number, done: () => void) => pending.push(() => (r.verifier.run(b), done())) } as unknown as VerifyPool;
    let idle = 0;
    const d = new Dispatcher(r.ring, r.keyTable, r.nonces, collector, pool, r.verifier, 64, () => idle++);
    const fill = (n: number): number => {
      const b = r.ring.take();
      for (let i = 0; i < n; i++) r.ring.put(b, peer.packet(), wallUs(), '127.0.0.1', 9);
      return b;
    };
    const small = fill(10);
    d.dispatch(lane, small, 10);
    assert.deepEqual(collected, [small], 'fewer than inlineBelow: verified and collected at once');
    assert.equal(d.inlineBatches, 1);
    const big = fill(100);
    d.dispatch(lane, big, 100);
    assert.equal(d.pooledBatches, 1);
    assert.equal(d.inVerify, 1);
    assert.equal(d.takePartial(100), false, 'a large partial batch keeps filling while the pool is busy');
    assert.equal(d.takePartial(10), true, 'a small one goes: it is verified here');
    pending.shift()!();
    assert.deepEqual(collected, [small, big]);
    assert.equal(idle, 1, 'the pool became idle: the lanes are kicked');
    assert.equal(d.takePartial(100), true);
    d.closing = true;
    assert.equal(d.takePartial(100), true);
  } finally {
    peer.close();
  }
});

test('reply sender: a REPLY whose reserved nonce was overtaken by an own packet is re-signed with a larger nonce and still verifies', async () => {
  const r = rig(4, 4);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const { own, sender, collector } = replyRig(r);
    const pending: Array<() => void> = [];
    const pool = { verify: (b: number, done: () => void) => pending.push(() => (r.verifier.run(b), done())) } as unknown as VerifyPool;
    const d = new Dispatcher(r.ring, r.keyTable, r.nonces, collector, pool, r.verifier, 0, () => {});
    // two batches dispatched (their REPLY nonces reserved), then an own packet takes a larger nonce, then they are collected
    const batches = [1, 2].map((id) => {
      const b = r.ring.take();
      r.ring.put(b, peer.packet({ probeId: id }), wallUs(), '127.0.0.1', 9);
      d.dispatch(own, b, 1);
      return b;
    });
    const ownNonce = sender.sendPacket(1, 'prober', '127.0.0.1', 9, 7, 60);
    assert.ok(ownNonce > 0);
    for (const run of pending.splice(0)) run();
    assert.deepEqual(own.sentBatches, batches, 'both batches handed back to the lane, in dispatch order');
    const state = new Int32Array(HMAC_STATE_WORDS);
    hmacPrecompute(derivePairKey(root, tenant, 'prober', 'resp'), state, 0);
    let last = BigInt(ownNonce);
    for (const b of batches) {
      const s = r.ring.layout.slotNumber(b, 0);
      const mi = r.ring.layout.metaIndex(s);
      assert.ok((r.ring.ints[mi + M_FLAGS]! & F_SEND) !== 0, 'marked to send');
      const off = r.ring.layout.replyOffset(s);
      const bytes = r.ring.bytes.subarray(off, off + r.ring.ints[mi + M_LENGTH]!);
      const nonce = parsePacket(bytes)!.nonce;
      assert.ok(nonce > last, 'after the own packet on the wire, so a larger nonce');
      last = nonce;
      assert.ok(macVerify(state, 0, null, 0, bytes, 0, bytes.length), 're-signed REPLY verifies under the pair key');
    }
    assert.equal(sender.resigned, 2);
    assert.equal(own.packets.length, 1);
  } finally {
    peer.close();
  }
});

test('verifier: each REPLY carries the clock read after its own PROBE was verified (PROTOCOL.md §3), not one time for the whole batch', async () => {
  const n = 1024;
  const r = rig(1, n);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const b = r.ring.take();
    for (let i = 0; i < n; i++) r.ring.put(b, peer.packet({ probeId: i }), wallUs(), '127.0.0.1', 9);
    const h = r.ring.layout.headerIndex(b);
    r.ring.ints[h + H_COUNT] = n;
    r.ring.ints[h + H_KEY_HALF] = r.keyTable.pin();
    r.ring.ints[h + H_NONCE_HI] = 0;
    r.ring.ints[h + H_NONCE_LO] = 1;
    r.ring.dispatched(b);
    const t0 = wallUs();
    r.verifier.run(b);
    const t1 = wallUs();
    const ts: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = r.ring.layout.slotNumber(b, i);
      const off = r.ring.layout.replyOffset(s);
      ts.push(Number(parsePacket(r.ring.bytes, off, r.ring.ints[r.ring.layout.metaIndex(s) + M_LENGTH]!)!.sendTsUs));
    }
    assert.ok(ts[0]! >= t0 - 1 && ts[n - 1]! <= t1 + 1, `inside the run: ${ts[0]}..${ts[n - 1]} in ${t0}..${t1}`);
    for (let i = 1; i < n; i++) assert.ok(ts[i]! >= ts[i - 1]!, `slot ${i}: not earlier than the REPLY before it`);
    // 1024 verifications and signatures take hundreds of µs: the last REPLY was signed well after the first
    assert.ok(ts[n - 1]! > ts[0]!, `the last REPLY's send_ts_us (${ts[n - 1]}) is later than the first's (${ts[0]})`);
  } finally {
    peer.close();
  }
});

test('reply sender: a re-signed REPLY carries the time it was re-signed, not the time it was first signed', async () => {
  const r = rig(4, 4);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const { own, sender, b, release } = heldProbe(r, peer); // verified and signed now; its collection waits
    const s = r.ring.layout.slotNumber(b, 0);
    const off = r.ring.layout.replyOffset(s);
    const signedAt = Number(parsePacket(r.ring.bytes, off, r.ring.ints[r.ring.layout.metaIndex(s) + M_LENGTH]!)!.sendTsUs);
    assert.ok(sender.sendPacket(1, 'prober', '127.0.0.1', 9, 7, 60) > 0); // overtakes the reserved nonce
    const wait = wallUs() + 5000;
    while (wallUs() < wait); // 5 ms between the first signature and the re-signing
    const before = wallUs();
    release();
    assert.equal(sender.resigned, 1);
    const resignedAt = Number(parsePacket(r.ring.bytes, off, r.ring.ints[r.ring.layout.metaIndex(s) + M_LENGTH]!)!.sendTsUs);
    assert.ok(resignedAt >= before, `re-signed at ${resignedAt}, after ${before} (first signed at ${signedAt})`);
  } finally {
    peer.close();
  }
});

test('reply sender: a REPLY whose batch was verified before a rotation took effect is re-signed under the new root (PROTOCOL.md §1: always sends under the newest)', async () => {
  const r = rig(4, 4);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const { own, sender, b, release } = heldProbe(r, peer); // verified and signed under the pinned (old-root) half; its collection waits
    const newRoot = new Uint8Array(randomBytes(32));
    assert.equal(r.keyring.rotate(newRoot), true);
    r.keyTable.publish(r.keyring.entries()); // the free half takes the new root at once
    release();
    assert.deepEqual(own.sentBatches, [b]);
    const s = r.ring.layout.slotNumber(b, 0);
    const mi = r.ring.layout.metaIndex(s);
    assert.ok((r.ring.ints[mi + M_FLAGS]! & F_SEND) !== 0, 'marked to send');
    const off = r.ring.layout.replyOffset(s);
    const bytes = r.ring.bytes.subarray(off, off + r.ring.ints[mi + M_LENGTH]!);
    const stateOf = (k: Uint8Array): Int32Array => {
      const st = new Int32Array(HMAC_STATE_WORDS);
      hmacPrecompute(derivePairKey(k, tenant, 'prober', 'resp'), st, 0);
      return st;
    };
    assert.ok(macVerify(stateOf(newRoot), 0, null, 0, bytes, 0, bytes.length), 'the REPLY verifies under the new root');
    assert.ok(!macVerify(stateOf(root), 0, null, 0, bytes, 0, bytes.length), 'and not under the old one');
    assert.equal(sender.resigned, 1);
  } finally {
    peer.close();
  }
});

test('key table: a roster and root published while the other half is still pinned are what the engine sends under at once (own packets and re-signed REPLYs), not only once the pinned batches are collected', async () => {
  const r = rig(4, 4);
  const { own, sender, collector } = replyRig(r);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const { d, release } = heldPool(r, collector);
    const b = r.ring.take();
    r.ring.put(b, peer.packet({ probeId: 1 }), wallUs(), '127.0.0.1', 9);
    d.dispatch(own, b, 1); // pins the first roster's half; its collection waits
    r.keyTable.publish(r.keyring.entries()); // a roster published now takes the free half at once...
    const b2 = r.ring.take();
    r.ring.put(b2, peer.packet({ probeId: 2 }), wallUs(), '127.0.0.1', 9);
    d.dispatch(own, b2, 1); // ...and a batch dispatched after it pins that one: neither half is free now
    const newRoot = new Uint8Array(randomBytes(32));
    r.keyring.setPeers(['prober', 'q']);
    assert.equal(r.keyring.rotate(newRoot), true);
    r.keyTable.publish(r.keyring.entries());
    assert.equal(r.keyTable.toJSON().updatePending, true, 'the workers\' update waits for a free half');
    const stateOf = (k: Uint8Array, a: string): Int32Array => {
      const st = new Int32Array(HMAC_STATE_WORDS);
      hmacPrecompute(derivePairKey(k, tenant, a, 'resp'), st, 0);
      return st;
    };
    assert.ok(sender.sendPacket(1, 'q', '127.0.0.1', 9, 7, 60) > 0, 'a peer added by the call just made can be probed');
    sender.sendPacket(1, 'prober', '127.0.0.1', 9, 8, 60);
    const [toQ, toProber] = own.packets.slice(-2);
    assert.ok(macVerify(stateOf(newRoot, 'q'), 0, null, 0, toQ!, 0, toQ!.length), 'under the new root');
    assert.ok(macVerify(stateOf(newRoot, 'prober'), 0, null, 0, toProber!, 0, toProber!.length), 'an own PROBE after the rotation is under the new root');
    assert.ok(!macVerify(stateOf(root, 'prober'), 0, null, 0, toProber!, 0, toProber!.length));
    // a PUNCH_HINT naming the member just added is judged against the same newest roster
    const events: PunchHintEvent[] = [];
    const hints = new HintHandler(r.ring, r.keyTable, r.keyring, new PunchPolicy({ allowLoopback: true }), sender, false, () => true, (e) => events.push(e));
    const hb = r.ring.take();
    const payload = new Uint8Array(15);
    payload.set(senderIdOf('q'), 0);
    payload[8] = 4;
    payload[10] = 9;
    payload.set([127, 0, 0, 1], 11);
    r.ring.put(hb, peer.packet({ type: TYPE_PUNCH_HINT, payload }), wallUs(), '127.0.0.1', 9);
    hints.judge(r.ring.layout.slotNumber(hb, 0), 1000);
    hints.run(); // its burst: PROBEs to q, signed under the new root
    assert.equal(events[0]?.decision, 'sent', `the hint about q: ${events[0]?.decision}`);
    const burst = own.packets.slice(-4);
    assert.ok(burst.every((m) => macVerify(stateOf(newRoot, 'q'), 0, null, 0, m, 0, m.length)), 'the burst went to q under the new root');
    release();
    for (const bb of [b, b2]) {
      const sl = r.ring.layout.slotNumber(bb, 0);
      const off = r.ring.layout.replyOffset(sl);
      const bytes = r.ring.bytes.subarray(off, off + r.ring.ints[r.ring.layout.metaIndex(sl) + M_LENGTH]!);
      assert.ok(macVerify(stateOf(newRoot, 'prober'), 0, null, 0, bytes, 0, bytes.length), `the REPLY of batch ${bb} is under the new root`);
    }
    assert.equal(r.keyTable.toJSON().updatePending, false, 'collected: the workers have the new roster too');
    const t = r.keyTable;
    const words = (a: Int32Array, half: number): number[] => [...a.subarray(keyEntryIndex(t.capacity, half, 0), keyEntryIndex(t.capacity, half, 0) + t.capacity * KE_WORDS)];
    assert.deepEqual(words(t.keys, t.active), words(t.own, 0), 'the workers\' half is the engine thread\'s table, word for word');
  } finally {
    peer.close();
  }
});

test('collector: a batch judged under a half that a waiting publish replaced is judged again under the newest roster — a member just added is accepted and answered under its key, one just removed is unknown_sender', async () => {
  const r = rig(4, 4);
  const { own, collector } = replyRig(r);
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  const q = await TestPeer.open(root, tenant, 'q', 'resp');
  try {
    const { d, release } = heldPool(r, collector);
    const b0 = r.ring.take();
    r.ring.put(b0, peer.packet({ probeId: 1 }), wallUs(), '127.0.0.1', 9);
    d.dispatch(own, b0, 1); // pins the first roster's half
    r.keyTable.publish(r.keyring.entries()); // takes the free half: now both are pinned or active
    r.keyring.setPeers(['q']); // q in, prober out
    r.keyTable.publish(r.keyring.entries());
    assert.equal(r.keyTable.toJSON().updatePending, true, 'the workers\' update waits for a free half');
    const b1 = r.ring.take();
    r.ring.put(b1, q.packet({ probeId: 2 }), wallUs(), '127.0.0.1', 9);
    r.ring.put(b1, peer.packet({ probeId: 3 }), wallUs(), '127.0.0.1', 9);
    r.ring.put(b1, peer.packet({ probeId: 4, sendTsUs: wallUs() - 60_000_000 }), wallUs(), '127.0.0.1', 9);
    d.dispatch(own, b1, 3); // the workers judge it under the half without q
    const L = r.ring.layout;
    const meta = (b: number, i: number): number => L.metaIndex(L.slotNumber(b, i));
    assert.equal(r.ring.ints[meta(b1, 0) + M_VERDICT], V_UNKNOWN_SENDER, 'the workers\' half does not have q yet');
    assert.equal(r.ring.ints[meta(b1, 1) + M_VERDICT], V_PENDING_REPLAY, 'nor does it know prober left');
    assert.equal(r.ring.ints[meta(b1, 2) + M_VERDICT], V_STALE, 'a minute old: stale (c3)');
    release();
    assert.equal(r.books.verdicts[V_ACCEPT], 1, 'q\'s PROBE is accepted');
    assert.equal(r.books.verdicts[V_UNKNOWN_SENDER], 3, 'every PROBE of prober, no longer a member, is unknown_sender — the stale one too: c1 comes before c3');
    assert.equal(r.books.verdicts[V_STALE], 0);
    assert.equal(collector.rejudgedBatches, 2);
    assert.equal(collector.rejudgedVerdicts, 4);
    assert.deepEqual(own.sentBatches, [b0, b1]);
    const flags = (b: number, i: number): number => r.ring.ints[meta(b, i) + M_FLAGS]!;
    assert.equal(flags(b0, 0) & F_SEND, 0, 'no REPLY to a member removed');
    assert.equal(flags(b1, 1) & F_SEND, 0);
    assert.notEqual(flags(b1, 0) & F_SEND, 0, 'q is answered');
    const sl = L.slotNumber(b1, 0);
    const bytes = r.ring.bytes.subarray(L.replyOffset(sl), L.replyOffset(sl) + r.ring.ints[meta(b1, 0) + M_LENGTH]!);
    const st = new Int32Array(HMAC_STATE_WORDS);
    hmacPrecompute(derivePairKey(root, tenant, 'q', 'resp'), st, 0);
    assert.ok(macVerify(st, 0, null, 0, bytes, 0, bytes.length), 'the REPLY to q verifies under q\'s pair key');
  } finally {
    peer.close();
    q.close();
  }
});

test('reply sender: a REPLY whose requester left the roster by a publish made inside the collection (a hook that should not, but might) is not sent and spends no nonce — never a fresh header under the old MAC', async () => {
  const r = rig(4, 4);
  const own = new FakeLane(0);
  const sender = new ReplySender(r.ring, r.keyTable, r.nonces, r.keyring.selfId, 2048, own, () => {});
  const nonceOf = (): number => (r.nonces as unknown as { nextValue: number }).nextValue;
  let nonceBefore = -1;
  const collector = new Collector(
    r.ring, r.filter, r.books, r.keyTable,
    {
      reply: (b, s, i) => {
        r.keyring.setPeers(['q']); // prober removed, from inside the collection
        r.keyTable.publish(r.keyring.entries());
        nonceBefore = nonceOf();
        sender.reply(b, s, i);
      },
      deliver: () => {},
      collected: (lane, b) => sender.batchCollected(lane, b),
      settled: () => {},
    },
    r.newest,
  );
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const { d, release } = heldPool(r, collector);
    const b = r.ring.take();
    r.ring.put(b, peer.packet({ probeId: 1 }), wallUs(), '127.0.0.1', 9);
    d.dispatch(own, b, 1);
    release();
    const mi = r.ring.layout.metaIndex(r.ring.layout.slotNumber(b, 0));
    assert.ok(nonceBefore > 0, 'the PROBE was accepted and its REPLY handed on');
    assert.equal(r.ring.ints[mi + M_FLAGS]! & F_SEND, 0, 'not marked to send');
    assert.equal(nonceOf(), nonceBefore, 'no nonce taken for it');
    assert.equal(sender.resigned, 0);
  } finally {
    peer.close();
  }
});

test('reply sender: an agent name outside the roster is refused and never cached (a long-running app trying names cannot grow it)', () => {
  const r = rig(1, 1);
  const { sender } = replyRig(r);
  for (let i = 0; i < 100; i++) assert.throws(() => sender.sendPacket(1, `stranger-${i}`, '127.0.0.1', 9, 7, 60), /not in the roster/);
  assert.equal((sender as unknown as { peerIds: Map<string, Uint8Array> }).peerIds.size, 0);
  sender.sendPacket(1, 'prober', '127.0.0.1', 9, 7, 60);
  assert.equal((sender as unknown as { peerIds: Map<string, Uint8Array> }).peerIds.size, 1, 'a roster member is cached');
});
