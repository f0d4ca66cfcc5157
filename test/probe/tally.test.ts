/**
 * The prober's figures (src/probe/tally.ts, MEASUREMENT.md §2) against exact
 * computations: mean/stddev, RFC 3550 jitter, RFC 5481 IPDV, relative one-way delays
 * under a clock offset of days (3 significant digits apply to the delay, not the offset).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Ipdv, OffsetDelay, Tally } from '../../src/probe/tally.js';

test('RTT mean and stddev are exact; jitter follows RFC 3550 §6.4.1', () => {
  const t = new Tally();
  const xs = [100, 120, 90, 300, 110];
  let j = 0;
  xs.forEach((x, i) => {
    t.receive(x);
    if (i > 0) j += (Math.abs(x - xs[i - 1]!) - j) / 16;
  });
  const mean = xs.reduce((a, b) => a + b) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  const r = t.rttSummary();
  assert.equal(r.mean, Math.round(mean * 10) / 10);
  assert.equal(r.stddev, Math.round(sd * 10) / 10);
  assert.equal(r.min, 90);
  assert.equal(r.max, 300);
  assert.equal(t.jitterUs, Math.round(j * 10) / 10);
});

test('IPDV (RFC 5481): mean, extremes and |IPDV| of consecutive pairs', () => {
  const ipdv = new Ipdv();
  for (const v of [10, -10, 30, -5]) ipdv.record(v);
  const s = ipdv.summary();
  assert.equal(s.pairs, 4);
  assert.equal(s.mean, 6.3);
  assert.equal(s.mean_abs, 13.8);
  assert.equal(s.min, -10);
  assert.equal(s.max, 30);
  assert.equal(s.abs_p99, 30);
});

test('one-way delays: relative to their own minimum, µs-exact under a clock offset of two days; absolute only on request', () => {
  const o = new OffsetDelay();
  const offset = 2 * 86_400e6; // the peer's clock is two days ahead
  const xs: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const v = offset + 5000 + (i % 100) * 10 - (i % 7 === 0 ? 3000 : 0); // some below the first sample
    xs.push(v);
    o.record(v);
  }
  xs.sort((a, b) => a - b);
  const min = xs[0]!;
  const r = o.relative();
  assert.equal(r.count, 10_000);
  assert.equal(r.min, 0);
  assert.equal(r.max, xs.at(-1)! - min);
  for (const [q, got] of [[50, r.p50], [90, r.p90], [99, r.p99]] as const) {
    const exact = xs[Math.ceil((q / 100) * xs.length) - 1]! - min;
    assert.ok(Math.abs(got - exact) <= Math.max(1, exact / 1000), `p${q} ${got} ≈ ${exact} (3 significant digits of the delay)`);
  }
  assert.equal(o.absolute().min, min);
});

test('reset() (the prober\'s phase switch, in place) leaves a tally, an IPDV and a one-way delay exactly as new ones: the same figures after the same samples, nothing of before', () => {
  const snap = (t: Tally, i: Ipdv, o: OffsetDelay): string =>
    JSON.stringify({ t: { ...t, rtt: undefined }, rtt: t.rttSummary(), jitter: t.jitterUs, i: i.summary(), rel: o.relative(), abs: o.absolute(), out: o.outOfRange });
  const feed = (t: Tally, i: Ipdv, o: OffsetDelay, base: number): void => {
    for (const [k, v] of [120, 95, 3000, 101.4, 99.6].entries()) {
      t.receive(v + base);
      t.sent++;
      if (k === 2) t.lost++, t.late++, t.duplicates++, t.reordered++, t.unmatched++;
      i.record(v - 100 + base);
      o.record(1e9 + v + base);
    }
  };
  const fresh = [new Tally(), new Ipdv(), new OffsetDelay()] as const;
  feed(...fresh, 0);
  const used = [new Tally(), new Ipdv(), new OffsetDelay()] as const;
  feed(...used, 7_000); // other values, other extremes, another first one-way delay
  used[2].record(1e9 + 120 + 7e7); // and one out of range
  used[1].record(50_000); // extremes beyond any the second feed reaches
  used[1].record(-50_000);
  used[0].reset();
  used[1].reset();
  used[2].reset();
  assert.equal(snap(...used), snap(new Tally(), new Ipdv(), new OffsetDelay()), 'reset = new');
  feed(...used, 0);
  assert.equal(snap(...used), snap(...fresh), 'the same samples give the same figures');
});

test('reported percentiles never leave [min, max]: min and max are exact, HDR percentiles are bucket tops, so each is clamped (one RTT of 8000 µs: p50 8000, not 8003)', () => {
  const one = new Tally();
  one.receive(8000);
  assert.deepEqual(one.rttSummary(), { min: 8000, p50: 8000, p90: 8000, p99: 8000, p999: 8000, max: 8000, mean: 8000, stddev: 0 });
  const o = new OffsetDelay(); // a first sample, then one 8000 µs above and one 8000 µs below it
  for (const v of [1e9, 1e9 + 8000, 1e9 - 8000]) o.record(v);
  assert.deepEqual(o.relative(), { count: 3, min: 0, p50: 8000, p90: 16_000, p99: 16_000, max: 16_000 });
  assert.deepEqual(o.absolute(), { count: 3, min: 1e9 - 8000, p50: 1e9, p90: 1e9 + 8000, p99: 1e9 + 8000, max: 1e9 + 8000 });
  const ipdv = new Ipdv();
  ipdv.record(-8000);
  const s = ipdv.summary();
  assert.equal(s.abs_p50, 8000);
  assert.equal(s.abs_p99, 8000);
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 59_000_000, noNaN: true }), { minLength: 1, maxLength: 200 }), fc.double({ min: -1e12, max: 1e12, noNaN: true }), (xs, offset) => {
      const t = new Tally();
      const d = new OffsetDelay();
      const i = new Ipdv();
      for (const x of xs) {
        t.receive(x);
        d.record(offset + x);
        i.record(x - xs[0]!);
      }
      const r = t.rttSummary();
      const inOrder = (what: string, ...v: number[]): void => v.slice(1).forEach((b, k) => assert.ok(v[k]! <= b, `${what}: ${v.join(' ≤ ')}`));
      inOrder('rtt', r.min, r.p50, r.p90, r.p99, r.p999, r.max);
      for (const [name, q] of [['relative', d.relative()], ['absolute', d.absolute()]] as const) inOrder(`owd ${name}`, q.min, q.p50, q.p90, q.p99, q.max);
      const p = i.summary();
      const maxAbs = Math.max(Math.abs(p.min), Math.abs(p.max));
      inOrder('ipdv', 0, p.abs_p50, p.abs_p99, maxAbs);
    }),
    { numRuns: 300 },
  );
});
