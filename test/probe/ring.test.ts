/**
 * The prober's per-probe ring (src/probe/ring.ts, MEASUREMENT.md §4): bounded by the
 * in-flight window, never overwriting an undecided or young entry, probe_id wrapping
 * safely past 2^32.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ProbeRing, ST_IN_FLIGHT, ST_RECEIVED } from '../../src/probe/ring.js';

test('a long run at a steady in-flight window keeps the ring at its first size (memory bounded by rate × deadline, not run length)', () => {
  const ring = new ProbeRing(1000); // 1000 in flight expected → 2048 entries
  const cap = ring.capacity;
  const keepUs = 2000;
  // 1 probe per µs, decided 500 µs after its send: 10 M probes.
  for (let t = 0; t < 10_000_000; t++) {
    ring.next(t, keepUs);
    while (ring.oldest < ring.scheduled && ring.sentAt[ring.slot(ring.oldest)]! <= t - 500) {
      ring.state[ring.slot(ring.oldest)] = ST_RECEIVED;
      ring.oldest++;
    }
  }
  assert.equal(ring.scheduled, 10_000_000);
  assert.equal(ring.capacity, cap, 'never grew');
  assert.equal(ring.grown, 0);
});

test('property: the ring never loses or overwrites an entry that is undecided or younger than keepUs', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 80 })), { minLength: 1, maxLength: 300 }), (ops) => {
      const ring = new ProbeRing(1);
      const keepUs = 100;
      let t = 0;
      const sentAt: number[] = [];
      for (const [sends, decide] of ops) {
        for (let i = 0; i < sends; i++) {
          t += 3;
          const seq = ring.next(t, keepUs);
          assert.equal(seq, sentAt.length);
          sentAt.push(t);
        }
        for (let i = 0; i < decide && ring.oldest < ring.scheduled; i++) {
          ring.state[ring.slot(ring.oldest)] = ST_RECEIVED;
          ring.oldest++;
        }
        // every undecided or young seq is still held, with its own send time
        for (let s = 0; s < ring.scheduled; s++) {
          if (s >= ring.oldest || sentAt[s]! > t - keepUs) {
            assert.ok(ring.holds(s), `seq ${s} held`);
            assert.equal(ring.sentAt[ring.slot(s)], sentAt[s]);
            if (s >= ring.oldest) assert.equal(ring.state[ring.slot(s)], ST_IN_FLIGHT);
          }
        }
      }
    }),
    { numRuns: 200 },
  );
});

test('probe_id wraps at 2^32: a reply maps back to the latest seq with its id; ids never sent are not matched', () => {
  const ring = new ProbeRing(1);
  const base = 0xfffffff0;
  // Pretend 2^32 + 10 probes were scheduled (all decided), then send a few more.
  ring.scheduled = 2 ** 32 + 10;
  ring.oldest = ring.scheduled;
  for (let i = 0; i < 20; i++) ring.next(i, 0);
  const top = ring.scheduled - 1;
  for (const seq of [top, top - 5, top - 19]) {
    const id = (base + seq) >>> 0;
    assert.equal(ring.seqOf(id, base), seq, `seq ${seq} from probe_id ${id}`);
    assert.ok(ring.holds(seq));
  }
  // an id from further back than the ring holds maps to an older seq it does not hold
  const old = ring.seqOf((base + top - 5000) >>> 0, base);
  assert.equal(old, top - 5000);
  assert.equal(ring.holds(old), false);
  // a fresh ring: any id is "never sent"
  const fresh = new ProbeRing(1);
  assert.equal(fresh.seqOf(123, base), -1);
  fresh.next(0, 0);
  assert.equal(fresh.seqOf((base + 1) >>> 0, base), -(2 ** 32) + 1, 'an id ahead of the schedule is never sent (negative seq)');
});
