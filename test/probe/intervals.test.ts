/**
 * The prober's intervals (src/probe/intervals.ts, MEASUREMENT.md §3): they cover the planned
 * span of sending and end with the last probe's — never an empty or zero-length interval
 * after it, the last holds every probe, and every arrival is in an emitted interval.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type IntervalFigures, Intervals } from '../../src/probe/intervals.js';

const I = 100_000; // 0.1 s

/** Probes sent at `sends` µs after a start at 0 (none decided until the end), a planned span, then the end of sending; the emitted intervals. */
function run(sends: number[], plannedUs: number, periodUs: number, arrivals: number[] = []): IntervalFigures[] {
  const out: IntervalFigures[] = [];
  const iv = new Intervals(I, (f) => out.push(f));
  iv.begin(0, plannedUs);
  const events = [...sends.map((t) => ({ t, send: true })), ...arrivals.map((t) => ({ t, send: false }))].sort((a, b) => a.t - b.t);
  for (const e of events) {
    if (e.send) iv.at(iv.indexOf(e.t)).sent++;
    else iv.arrival(e.t).late++;
    iv.settle(e.t, sends[0]!); // the first probe still in flight: nothing final yet
  }
  const last = sends.at(-1)!;
  iv.stopSending(last, last + periodUs);
  iv.settle(Infinity, Infinity);
  return out;
}

test('the last send a little behind schedule: no interval after the planned span (neither the empty one of its send period nor a few-µs one holding it); the last holds every probe', () => {
  const period = 1000; // 1000 pps, 300 probes planned: 0.3 s, three intervals
  const onTime = Array.from({ length: 300 }, (_, k) => k * period);
  for (const lag of [0, 800, 1500, 40_000]) {
    const sends = onTime.map((t) => t + lag);
    const out = run(sends, 300 * period, period);
    const shape = JSON.stringify(out.map((f) => [f.start_s, f.duration_s, f.sent]));
    assert.deepEqual(out.map((f) => f.start_s), [0, 0.1, 0.2], `lag ${lag} µs: ${shape}`);
    assert.equal(out.reduce((a, f) => a + f.sent, 0), 300, `lag ${lag} µs: every probe in an interval ${shape}`);
    assert.ok(out.every((f) => f.sent > 0 && f.duration_s >= 0.1), `lag ${lag} µs: none empty or short ${shape}`);
    // a last probe past the window: the last interval runs to the end of its send period
    const last = sends.at(-1)!;
    assert.equal(out[2]!.duration_s, last >= 300_000 ? (last + period - 200_000) / 1e6 : 0.1, `lag ${lag} µs: the last interval's length ${shape}`);
  }
});

test('a span that ends inside an interval: the last is shorter; arrivals in a window after the last probe\'s go to the last interval', () => {
  const period = 3000; // 100 probes at 333 pps: 0.3 s planned
  const sends = Array.from({ length: 100 }, (_, k) => k * period);
  const out = run(sends, 250_000, period); // planned 0.25 s: intervals 0, 1, 2 (2 is half)
  assert.deepEqual(out.map((f) => f.start_s), [0, 0.1, 0.2]);
  // a plan of 0.25 s but probes until 0.297 s: the last holds them all and runs to the end of sending
  assert.deepEqual(out.map((f) => f.sent), [34, 33, 33]);
  assert.equal(out[2]!.duration_s, 0.1);
  const short = run(sends.slice(0, 84), 250_000, period); // the last probe at 0.249 s, its period until 0.252 s
  assert.equal(short[2]!.duration_s, 0.052, 'sending ended at 0.252 s: the last interval is 0.052 s');
  // no plan (rate 0 with a count): a late reply in a window no probe was sent in still counts, in the last interval
  const arrivals = run(sends.slice(0, 60), Infinity, 1, [190_000, 250_000]);
  assert.deepEqual(arrivals.map((f) => f.start_s), [0, 0.1]);
  assert.equal(arrivals.reduce((a, f) => a + f.late, 0), 2, 'both arrivals are in an emitted interval');
});

test('property: whatever the sends, lag and plan, the intervals are consecutive from 0, none empty of probes and none 0 s long, the last is the last probe\'s, and Σ sent = probes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2000 }), // probes
      fc.integer({ min: 50, max: 5000 }), // period, µs
      fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 50 }), // lateness pattern, µs
      fc.boolean(), // planned (rate > 0) or not (rate 0 with a count)
      (n, period, lags, planned) => {
        let prev = -Infinity;
        const sends = Array.from({ length: n }, (_, k) => (prev = Math.max(prev, k * period + lags[k % lags.length]!)));
        const out = run(sends, planned ? n * period : Infinity, planned ? period : 1);
        const shape = JSON.stringify(out.map((f) => [f.index, f.start_s, f.duration_s, f.sent]));
        assert.deepEqual(out.map((f) => f.index), out.map((_, k) => k), shape);
        assert.equal(out.reduce((a, f) => a + f.sent, 0), n, shape);
        const lastPlanned = Math.ceil((n * period) / I - 1e-9) - 1;
        for (const f of out) {
          assert.ok(f.duration_s > 0, `interval ${f.index} is 0 s long: ${shape}`);
          // a planned interval may be empty when the generator fell behind a whole interval; never one past the last probe
          if (f.index === out.length - 1) assert.ok(f.sent > 0, `the last interval holds the last probe: ${shape}`);
          if (planned) assert.ok(f.index <= lastPlanned, `interval ${f.index} past the planned span: ${shape}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});
