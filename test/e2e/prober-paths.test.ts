/**
 * The prober against a real `dtmesh serve` through a scripted loopback relay
 * (test/fixtures/relay.ts), MEASUREMENT.md §1: reordering in both directions is counted
 * `reordered`, never lost (prober and responder in replay-window mode); drops are lost
 * exactly and in-flight probes never are; replies past their deadline are late; a
 * copied reply is a replay drop, never a success; per-interval figures sum to the
 * totals; every report validates against the shipped schema. Each test runs on the
 * prober's dgram lane (JS receive times) and, where it is built, its native lane (kernel
 * receive stamps, send-call times): the books must not depend on the lane.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { loadRootKey } from '../../src/keys/keystore.js';
import { nativeLane } from '../../src/protocol/native.js';
import { probe, type IntervalFigures, type ProbeProgress, type ProbeReport } from '../../src/probe/prober.js';
import { type Action, type Dir, startRelay } from '../fixtures/relay.js';
import { startServe, stateDir, type Served, within } from '../helpers.js';
import { assertValidReport } from '../probe/validate.js';

const tenant = 't-paths';
let dir = '';
let serve: Served;

before(async () => {
  dir = stateDir();
  serve = await startServe(['--state-dir', dir, '--tenant', tenant, '--agent', 'resp', '--peers', 'resp,prober', '--listen', '127.0.0.1:0', '--replay-window', '1024']);
});

after(async () => {
  await serve?.stop();
});

/** The prober's lanes under test: dgram everywhere, native where the addon is built (CI builds it: test/e2e/native-lane.test.ts fails there otherwise). */
const LANES: Array<'dgram' | 'native'> = nativeLane !== null ? ['dgram', 'native'] : ['dgram'];

async function proberEngine(replayWindow: number, lane: 'dgram' | 'native'): Promise<Engine> {
  const e = await within(10_000, Engine.create({ rootKey: loadRootKey(dir), tenant, agent: 'prober', peers: ['resp'], workers: 1, replayWindow, batchSize: 16, lane }), 'prober engine start');
  assert.equal(e.stats().lane, lane, 'the prober runs on the lane under test');
  return e;
}

/** Run probe() through a relay scripted by `script`; the report, the relay's counts and the progress seen. */
async function viaRelay(lane: 'dgram' | 'native', script: (dir: Dir, seq: number) => Action, opts: { count: number; rate: number; graceMs: number; intervalS?: number; replayWindow?: number }) {
  const relay = await startRelay(serve.port, script);
  const engine = await proberEngine(opts.replayWindow ?? 1024, lane);
  const progress: ProbeProgress[] = [];
  const lines: IntervalFigures[] = [];
  try {
    const r = await within(
      30_000,
      probe(engine, { agent: 'resp', host: '127.0.0.1', port: relay.port, count: opts.count, rate: opts.rate, graceMs: opts.graceMs, intervalS: opts.intervalS, progressMs: 20, onProgress: (p) => progress.push(p), onInterval: (f) => lines.push(f) }),
      'probe run',
    );
    assertValidReport(JSON.parse(JSON.stringify(r)));
    assert.equal(r.lane, lane);
    assert.equal(r.timestamps, lane === 'native' ? 'kernel' : 'js');
    return { r, relay: relay.counts, progress, lines };
  } finally {
    relay.close();
    await within(10_000, engine.close(), 'engine close');
  }
}

/** Interval sums equal the totals (MEASUREMENT.md §3), and the emitted lines are intervals[]. */
function assertIntervalsSum(r: ProbeReport, lines: IntervalFigures[]): void {
  assert.ok(r.intervals.length > 1, `several intervals (${r.intervals.length})`);
  assert.deepEqual(lines, r.intervals, 'every interval emitted once, in order, as in intervals[]');
  r.intervals.forEach((f, i) => assert.equal(f.index, i));
  for (const k of ['sent', 'received', 'lost', 'late', 'duplicates', 'reordered', 'unmatched'] as const) {
    assert.equal(
      r.intervals.reduce((a, f) => a + f[k], 0),
      r[k],
      `Σ intervals.${k} = ${k}`,
    );
  }
  for (const f of r.intervals) assert.equal(f.sent, f.received + f.lost, `interval ${f.index}: every probe decided (none in flight)`);
}

for (const lane of LANES) {
  test(`[${lane} lane] reordering relay, both directions, serve --replay-window: lost 0, reordered = swaps; a strict prober would count the reverse swaps as loss`, async () => {
    // Swaps at disjoint positions: probes (fwd) at seq ≡ 10, replies (rev) at seq ≡ 30 (mod 50).
    const script = (d: Dir, seq: number): Action => ((d === 'fwd' && seq % 50 === 10) || (d === 'rev' && seq % 50 === 30) ? { kind: 'swap' } : { kind: 'pass' });
    const { r, relay, lines } = await viaRelay(lane, script, { count: 2000, rate: 4000, graceMs: 1000, intervalS: 0.1 });
    assert.ok(relay.fwd.swapped >= 20 && relay.rev.swapped >= 20, `the relay swapped (${relay.fwd.swapped} probes, ${relay.rev.swapped} replies)`);
    assert.equal(r.sent, 2000);
    assert.equal(r.lost, 0, 'reordering is never loss');
    assert.equal(r.received, 2000);
    assert.equal(r.reordered, relay.fwd.swapped + relay.rev.swapped, 'one reordered reply per swap');
    assert.equal(r.dropped.replay, 0);
    assert.equal(r.late + r.duplicates + r.unmatched, 0);
    assertIntervalsSum(r, lines);

    const strict = await viaRelay(lane, script, { count: 1000, rate: 4000, graceMs: 1000, replayWindow: 0 });
    assert.ok(strict.relay.rev.swapped >= 10);
    assert.equal(strict.r.dropped.replay, strict.relay.rev.swapped, 'strict mode drops each overtaken reply as a replay');
    assert.equal(strict.r.lost, strict.relay.rev.swapped, '… and that reply’s probe is lost: why the prober defaults to a window');
  });

  test(`[${lane} lane] dropping relay: lost = probes dropped + replies dropped, exactly; in-flight probes never counted lost; intervals sum to the totals`, async () => {
    // A deadline far above any loopback RTT, even on a loaded machine: every loss is the relay's.
    const graceMs = 1000;
    const script = (d: Dir, seq: number): Action => ((d === 'fwd' && seq % 97 === 5) || (d === 'rev' && seq % 89 === 7) ? { kind: 'drop' } : { kind: 'pass' });
    const { r, relay, progress, lines } = await viaRelay(lane, script, { count: 3000, rate: 3000, graceMs, intervalS: 0.2 });
    const drops = relay.fwd.dropped + relay.rev.dropped;
    assert.ok(drops >= 40, `the relay dropped ${drops}`);
    assert.equal(r.sent, 3000);
    assert.equal(r.lost, drops, 'lost = what the path dropped');
    assert.equal(r.received, 3000 - drops);
    assert.equal(r.late, 0);
    assert.equal(r.in_flight, 0);
    assert.equal(r.loss_pct, Math.round((1e5 * drops) / 3000) / 1e3);
    assert.ok(progress.length > 10);
    for (const p of progress) {
      assert.equal(p.sent, p.received + p.lost + p.inFlight, `sent = received + lost + in flight: ${JSON.stringify(p)}`);
      // A probe is lost only once its deadline passed: never more than were sent a deadline ago.
      assert.ok(p.lost <= Math.max(0, Math.ceil((p.elapsedS - graceMs / 1000) * 3000 * 1.05)), `no in-flight probe counted lost: ${JSON.stringify(p)}`);
    }
    assertIntervalsSum(r, lines);
  });

  test(`[${lane} lane] late replies (held past the deadline) are late and lost, never received; a copied reply is a duplicate (MEASUREMENT.md §1), dropped by verification as a replay`, async () => {
    // Held 900 ms with a 400 ms deadline: late by ≥ 500 ms, and (sent in the first 0.1 s of a
    // 2 s run) back well before the run ends.
    const held = new Set([5, 50, 100]);
    const script = (d: Dir, seq: number): Action => {
      if (d !== 'rev') return { kind: 'pass' };
      if (held.has(seq)) return { kind: 'delay', ms: 900 };
      if (seq % 100 === 60) return { kind: 'dup' };
      return { kind: 'pass' };
    };
    const { r, relay, lines } = await viaRelay(lane, script, { count: 2000, rate: 1000, graceMs: 400, intervalS: 0.25 });
    assert.equal(relay.rev.delayed, 3);
    assert.equal(r.late, 3, 'each held reply came after its deadline');
    assert.equal(r.lost, 3);
    assert.equal(r.received, 1997);
    assert.ok(r.rtt_us.max < 400_000, `late replies never enter the RTT (max ${r.rtt_us.max} µs)`);
    assert.ok(relay.rev.duplicated >= 19, `the relay copied ${relay.rev.duplicated} replies`);
    assert.equal(r.duplicates, relay.rev.duplicated, 'each copy of a received reply is a duplicate');
    assert.equal(r.dropped.replay, relay.rev.duplicated, '… dropped by verification as a replay, and counted there too');
    assertIntervalsSum(r, lines);
  });
}
