/**
 * src/pipeline/collect.ts: why the collector must take batches in dispatch order. The same
 * verified batches of one in-order sender, collected in dispatch order, give no replay;
 * collected in the order they completed (any disorder at all), they give false `replay`
 * drops. The engine-level proof under real disorder is test/e2e/disorder.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { test } from 'node:test';
import { BatchRing } from '../../src/pipeline/ring.js';
import { collectBatch, type CollectSink } from '../../src/pipeline/collect.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { KeyTable } from '../../src/keys/keytable.js';
import { H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO } from '../../src/pipeline/layout.js';
import { ReplayFilter } from '../../src/protocol/replay.js';
import { Books } from '../../src/observe/stats.js';
import { V_ACCEPT, V_BAD_MAC, V_REPLAY } from '../../src/protocol/verdict.js';
import { TYPE_REPLY } from '../../src/protocol/wire.js';
import { BatchVerifier } from '../../src/pipeline/verify.js';
import { TestPeer, wallUs } from '../helpers.js';

const tenant = 't-collect';
const root = new Uint8Array(randomBytes(32));
const BATCHES = 16;
const SLOTS = 8;

/** Verify BATCHES batches of in-order probes from one sender, then collect them in `order`; the replay drops. */
function collectInOrder(peer: TestPeer, order: readonly number[]): { replay: number; accepted: number } {
  const keyring = new KeyRing(tenant, 'resp', root, ['prober']);
  const keyTable = new KeyTable(64);
  keyTable.publish(keyring.entries());
  const ring = new BatchRing(BATCHES, SLOTS, 2048);
  const now = wallUs();
  const verifier = new BatchVerifier({
    batchSab: ring.sab, batches: BATCHES, slots: SLOTS, maxDatagram: 2048,
    keySab: keyTable.sab, keyCapacity: keyTable.capacity, selfId: keyring.selfId, clockWindowUs: 5_000_000, startUs: now - 1_000_000,
  });
  let replyNonce = 1;
  for (let k = 0; k < BATCHES; k++) {
    const b = ring.take();
    for (let i = 0; i < SLOTS; i++) ring.put(b, peer.packet({ probeId: k * SLOTS + i }), now, '127.0.0.1', 9);
    const h = ring.layout.headerIndex(b);
    ring.ints[h + H_COUNT] = SLOTS;
    ring.ints[h + H_KEY_HALF] = keyTable.pin();
    ring.ints[h + H_NONCE_HI] = 0;
    ring.ints[h + H_NONCE_LO] = replyNonce;
    replyNonce += SLOTS;
    ring.dispatched(b);
    verifier.run(b);
  }
  const dispatchOrder: number[] = [];
  for (let b = ring.head(); b >= 0; b = ring.head()) {
    dispatchOrder.push(b);
    ring.popHead();
  }
  const filter = new ReplayFilter(0, keyring.peerSlots);
  const books = new Books();
  const sink: CollectSink = { reply: () => {}, deliver: () => {} };
  for (const k of order) collectBatch(ring, dispatchOrder[k]!, filter, books, sink, wallUs());
  return { replay: books.verdicts[V_REPLAY]!, accepted: books.judged() - books.verdicts[V_REPLAY]! };
}

test('collectBatch in dispatch order: no replay; in completion order (a recorded disorder): false replays', async () => {
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const dispatch = Array.from({ length: BATCHES }, (_, k) => k);
    assert.deepEqual(collectInOrder(peer, dispatch), { replay: 0, accepted: BATCHES * SLOTS });
    // completion order of the first 16 batches of one test/e2e/disorder.test.ts run (dispatch ranks,
    // read from its DTMESH_DISORDER_LOG)
    const recorded = [2, 0, 3, 6, 1, 7, 4, 9, 10, 5, 12, 11, 14, 8, 13, 15];
    const r = collectInOrder(peer, recorded);
    // a batch collected after a later-dispatched one loses all its 8 probes: 0, 1, 4, 5, 11, 8 and 13 here
    assert.equal(r.replay, 7 * SLOTS, 'judged in completion order, in-order probes become false replays');
  } finally {
    peer.close();
  }
});

test('property: any completion order other than dispatch order makes false replays; dispatch order never does', async () => {
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    fc.assert(
      fc.property(fc.shuffledSubarray(Array.from({ length: BATCHES }, (_, k) => k), { minLength: BATCHES, maxLength: BATCHES }), (order) => {
        const { replay } = collectInOrder(peer, order);
        const late = order.filter((k, i) => order.slice(0, i).some((j) => j > k)).length;
        assert.equal(replay, late * SLOTS, `order ${order.join(',')}`);
      }),
      { numRuns: 60 },
    );
  } finally {
    peer.close();
  }
});

test('collectBatch: a REPLY that fails only the replay check (a verbatim copy of one accepted) goes to sink.duplicate, still counted replay; a copied PROBE or a forged REPLY does not', async () => {
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const keyring = new KeyRing(tenant, 'resp', root, ['prober']);
    const keyTable = new KeyTable(64);
    keyTable.publish(keyring.entries());
    const ring = new BatchRing(1, SLOTS, 2048);
    const now = wallUs();
    const verifier = new BatchVerifier({
      batchSab: ring.sab, batches: 1, slots: SLOTS, maxDatagram: 2048,
      keySab: keyTable.sab, keyCapacity: keyTable.capacity, selfId: keyring.selfId, clockWindowUs: 5_000_000, startUs: now - 1_000_000,
    });
    const reply = peer.packet({ type: TYPE_REPLY, probeId: 7 });
    const probe = peer.packet({ probeId: 8 });
    const forged = Uint8Array.from(reply);
    forged[forged.length - 1]! ^= 1;
    const b = ring.take();
    for (const d of [reply, probe, reply, probe, forged]) ring.put(b, d, now, '127.0.0.1', 9);
    const h = ring.layout.headerIndex(b);
    ring.ints[h + H_COUNT] = 5;
    ring.ints[h + H_KEY_HALF] = keyTable.pin();
    ring.dispatched(b);
    verifier.run(b);
    const dups: number[] = [];
    const delivered: number[] = [];
    const books = new Books();
    collectBatch(ring, b, new ReplayFilter(1024, keyring.peerSlots), books, { reply: () => {}, deliver: (s) => delivered.push(s), duplicate: (s) => dups.push(s) }, wallUs());
    const slot = (i: number): number => ring.layout.slotNumber(b, i);
    assert.deepEqual(delivered, [slot(0)], 'the first copy of the REPLY is delivered');
    assert.deepEqual(dups, [slot(2)], 'its verbatim copy is a duplicate, and only it');
    assert.deepEqual([books.verdicts[V_ACCEPT], books.verdicts[V_REPLAY], books.verdicts[V_BAD_MAC]], [2, 2, 1], 'the copies are still replay drops in the books');
  } finally {
    peer.close();
  }
});
