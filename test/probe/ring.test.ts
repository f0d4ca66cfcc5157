/**
 * The prober's per-probe ring (src/probe/ring.ts, MEASUREMENT.md §4): bounded by the
 * in-flight window, never overwriting an undecided or young entry, probe_id wrapping
 * safely past 2^32; the final state of every entry it reuses kept in its bounded history
 * (so a reply long after its probe is still a duplicate or late, MEASUREMENT.md §1).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HISTORY_PER_ENTRY, ProbeRing, ST_FORGOTTEN, ST_IN_FLIGHT, ST_LATE, ST_LOST, ST_NOT_SENT, ST_RECEIVED } from '../../src/probe/ring.js';

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

const FATES = [ST_RECEIVED, ST_LOST, ST_NOT_SENT, ST_LATE] as const;

test('property: a probe the ring no longer holds keeps its final state in the history — exact for the last HISTORY_PER_ENTRY × (first capacity) probes, through wraps and growth, and never a wrong one (at worst ST_FORGOTTEN)', () => {
  let grew = 0;
  let forgot = 0;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 0, max: 900 }), fc.nat()), { minLength: 1, maxLength: 400, size: 'max' }), (ops) => {
      const ring = new ProbeRing(1);
      const cap0 = ring.capacity;
      const keepUs = 100;
      const fate: number[] = [];
      let t = 0;
      for (const [k, [sends, decide, seed]] of ops.entries()) {
        for (let i = 0; i < sends; i++) ring.next((t += 3), keepUs);
        for (let i = 0; i < decide && ring.oldest < ring.scheduled; i++) {
          const st = FATES[(seed + i) % FATES.length]!;
          ring.state[ring.slot(ring.oldest)] = st;
          fate[ring.oldest] = st;
          ring.oldest++;
        }
        if (k % 16 !== 15 && k !== ops.length - 1) continue; // checked every 16 steps and at the end (each check walks ~35 k seqs)
        // every seq the ring or its history may hold, and a few hundred older ones
        for (let s = Math.max(0, ring.scheduled - (HISTORY_PER_ENTRY + 1) * ring.capacity - 300); s < ring.scheduled; s++) {
          if (ring.holds(s)) {
            assert.equal(ring.fateOf(s), ST_FORGOTTEN, `seq ${s} is in the ring: fateOf says nothing of it`);
            assert.equal(ring.state[ring.slot(s)], s < ring.oldest ? fate[s] : ST_IN_FLIGHT, `seq ${s} in the ring keeps its state`);
            continue;
          }
          assert.ok(s < ring.oldest, `seq ${s} left the ring decided`);
          const got = ring.fateOf(s);
          if (s >= ring.scheduled - HISTORY_PER_ENTRY * cap0) assert.equal(got, fate[s], `seq ${s} of ${ring.scheduled}: its final state`);
          else if (got === ST_FORGOTTEN) forgot++;
          else assert.equal(got, fate[s], `seq ${s}: its state or forgotten`);
        }
      }
      if (ring.grown > 0) grew++;
    }),
    { numRuns: 25, endOnFailure: true }, // no shrinking: a 400-step case takes minutes to shrink
  );
  assert.ok(grew > 0 && forgot > 0, `the runs made the ring grow (${grew} runs) and the history forget (${forgot} probes)`);
});

test('the history is bounded too: a steady run keeps ring and history at their first size; a probe older than HISTORY_PER_ENTRY ring lengths before the ring is ST_FORGOTTEN', () => {
  const ring = new ProbeRing(1000);
  const cap = ring.capacity;
  const bytes = ring.bytes;
  assert.equal(bytes, cap * 17 + cap * HISTORY_PER_ENTRY / 4, '17 bytes an entry in the ring, 2 bits a probe of history');
  const n = 3 * cap * HISTORY_PER_ENTRY;
  const fate = (s: number): number => FATES[(s * 7) % FATES.length]!;
  for (let t = 0; t < n; t++) {
    ring.next(t, 2000);
    while (ring.oldest < ring.scheduled && ring.sentAt[ring.slot(ring.oldest)]! <= t - 500) {
      ring.state[ring.slot(ring.oldest)] = fate(ring.oldest);
      ring.oldest++;
    }
  }
  assert.equal(ring.capacity, cap, 'never grew');
  assert.equal(ring.bytes, bytes);
  const newestGone = ring.scheduled - cap - 1; // the ring holds the last `cap`
  assert.equal(ring.holds(newestGone), false);
  assert.equal(ring.holds(newestGone + 1), true);
  const oldestKept = newestGone - cap * HISTORY_PER_ENTRY + 1;
  for (const s of [newestGone, newestGone - 1, oldestKept + 1, oldestKept]) assert.equal(ring.fateOf(s), fate(s), `seq ${s} in the history`);
  assert.equal(ring.fateOf(oldestKept - 1), ST_FORGOTTEN, 'one older than the history');
  assert.equal(ring.fateOf(0), ST_FORGOTTEN);
});

test('after the ring grows, the entries it no longer holds are not "held" (their slots are empty): a reply for one is judged by the history', () => {
  const ring = new ProbeRing(1); // 1024 entries
  for (let t = 0; t < 1024; t++) ring.next(1e9 + t, 10);
  for (; ring.oldest < 1000; ring.oldest++) ring.state[ring.slot(ring.oldest)] = ST_RECEIVED;
  for (let t = 1024; t < 2024; t++) ring.next(1e9 + t, 10); // seqs 0 … 999 leave the ring for the history
  ring.next(1e9 + 2024, 10); // seq 1000, in flight, would be overwritten: the ring doubles
  assert.equal(ring.capacity, 2048);
  assert.equal(ring.grown, 1);
  for (const s of [0, 500, 999]) {
    assert.equal(ring.holds(s), false, `seq ${s} left before the ring grew`);
    assert.equal(ring.fateOf(s), ST_RECEIVED, `seq ${s} received, per the history`);
  }
  for (const s of [1000, 2024]) assert.equal(ring.holds(s), true, `seq ${s} in the ring`);
});

test('a ring that grows late in a run keeps its whole history exact and answers ST_FORGOTTEN, never a wrong state, for what is older', () => {
  const ring = new ProbeRing(1);
  const cap = ring.capacity;
  const kept = cap * HISTORY_PER_ENTRY;
  const fate = (s: number): number => FATES[(s * 5 + (s >> 7)) % FATES.length]!;
  const decideUpTo = (n: number): void => {
    for (; ring.oldest < n; ring.oldest++) ring.state[ring.slot(ring.oldest)] = fate(ring.oldest);
  };
  let t = 1e9;
  for (let s = 0; s < 3 * kept; s++) {
    ring.next(t++, 10);
    decideUpTo(ring.scheduled - 10); // a steady window of 10 in flight
  }
  const before = ring.scheduled;
  for (let s = 0; s < cap; s++) ring.next(t++, 10); // nothing decided: the ring doubles
  assert.equal(ring.grown, 1);
  decideUpTo(ring.scheduled);
  const left = before - 10; // the oldest seq in the ring when it grew: the first undecided one
  assert.equal(ring.holds(left), true);
  assert.equal(ring.holds(left - 1), false);
  for (let s = left - kept; s < left; s++) assert.equal(ring.fateOf(s), fate(s), `seq ${s}, in the history when the ring grew`);
  for (let s = left - 2 * kept; s < left - kept; s++) assert.equal(ring.fateOf(s), ST_FORGOTTEN, `seq ${s}, older than the history when the ring grew`);
});

test('answeredLate: a lost probe answered late becomes ST_LATE where its state is kept — its ring entry, or its 2 bits of history (neighbours untouched) — and keeps it as it leaves the ring and as the ring grows; a probe not lost is left as it is', () => {
  const ring = new ProbeRing(1); // 1024 entries
  const fate = (s: number): number => [ST_RECEIVED, ST_LOST, ST_NOT_SENT][s % 3]!;
  for (let t = 0; t < 1024; t++) ring.next(1e9 + t, 10);
  for (; ring.oldest < 1024; ring.oldest++) ring.state[ring.slot(ring.oldest)] = fate(ring.oldest);
  ring.answeredLate(4); // lost, in the ring
  ring.answeredLate(3); // received: stays so
  assert.equal(ring.state[ring.slot(4)], ST_LATE);
  assert.equal(ring.state[ring.slot(3)], ST_RECEIVED);
  for (let t = 1024; t < 2048; t++) ring.next(1e9 + t, 10); // seqs 0 … 1023 leave the ring for the history
  assert.equal(ring.holds(4), false);
  assert.equal(ring.fateOf(4), ST_LATE, 'seq 4 left the ring answered late');
  for (const s of [7, 10, 1021]) {
    assert.equal(ring.fateOf(s), ST_LOST);
    ring.answeredLate(s); // lost, in the history
    assert.equal(ring.fateOf(s), ST_LATE, `seq ${s}, answered late in the history`);
  }
  ring.answeredLate(9); // received
  ring.answeredLate(11); // never sent
  for (let s = 0; s < 1024; s++) assert.equal(ring.fateOf(s), [4, 7, 10, 1021].includes(s) ? ST_LATE : fate(s), `seq ${s}`);
  ring.next(1e9 + 2048, 1e9); // seq 1024, too young to overwrite: the ring doubles, the history with it
  assert.equal(ring.grown, 1);
  for (const s of [4, 7, 10, 1021]) assert.equal(ring.fateOf(s), ST_LATE, `seq ${s} after the ring grew`);
});
