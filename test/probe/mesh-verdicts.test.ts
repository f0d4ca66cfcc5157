/**
 * The mesh prober's verdict on each reply (src/probe/mesh.ts, MEASUREMENT.md §1), through a
 * fake engine that stamps sends and emits `'reply'` events with chosen receive times: a
 * probe is judged by when its reply ARRIVED (`recvUs`), not when the loop handled it; a
 * reply to a probe the ring forgot is `late` or `duplicate` by its probe's fate while the
 * history of final states holds it (`unmatched` beyond, as in the prober); the reported RTT
 * percentiles lie within [min, max] (MEASUREMENT.md §2).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { nowUs } from '../../src/clock.js';
import type { Engine, ReplyEvent } from '../../src/engine.js';
import { MeshProber, type MeshInterval, type MeshSchedule, type PeerFigures } from '../../src/probe/mesh.js';
import { until } from '../helpers.js';

/** The part of Engine the mesh prober uses: sends are stamped with the clock at the call, replies are emitted by the test. */
class FakeEngine extends EventEmitter {
  readonly agent = 'a';
  readonly maxDatagram = 2048;
  /** Every probe sent: its probe_id and send stamp (µs). */
  readonly sent: Array<{ probeId: number; at: number }> = [];
  /** Called after each send (the prober sets the probe's state after the call returns: answer on a later tick). */
  onSend: (probeId: number, at: number) => void = () => {};
  private last = NaN;

  trySendProbe(_agent: string, _host: string, _port: number, probeId: number): boolean {
    const at = nowUs();
    this.last = at;
    this.sent.push({ probeId, at });
    this.onSend(probeId, at);
    return true;
  }

  lastSendUs(): number {
    return this.last;
  }

  private readonly sinks: Array<(r: ReplyEvent) => void> = [];

  addReplySink(fn: (r: ReplyEvent) => void): void {
    this.sinks.push(fn);
  }

  removeReplySink(fn: (r: ReplyEvent) => void): void {
    this.sinks.splice(this.sinks.indexOf(fn) >>> 0, 1);
  }

  /** b's REPLY to `probeId`, received at `recvUs` (`replay`: a copy the engine dropped as replay). */
  reply(probeId: number, recvUs: number, replay = false): void {
    const r: ReplyEvent = { from: 'b', probeId, recvUs, sendTsUs: recvUs, length: 84, replay };
    for (const fn of this.sinks) fn(r);
  }
}

function mesh(schedule: MeshSchedule): { e: FakeEngine; m: MeshProber; intervals: MeshInterval[]; fig: () => PeerFigures } {
  const e = new FakeEngine();
  const m = new MeshProber(e as unknown as Engine, schedule);
  const intervals: MeshInterval[] = [];
  m.on('interval', (i: MeshInterval) => intervals.push(i));
  m.setTargets([{ agent: 'b', host: '127.0.0.1', port: 9 }]);
  return { e, m, intervals, fig: () => m.figures()[0]! };
}

/** Busy-wait until the clock reads `t` µs (the event loop stalled meanwhile, as a GC pause or a slow tick does). */
function stallUntil(t: number): void {
  while (nowUs() < t) {
    /* stalled */
  }
}

const ZERO_RTT = { min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };

test('a reply stamped 8 ms after its send, grace 5 ms, is lost and late — never received, no RTT — even when the loop handles it before any sweep ran', async () => {
  const { e, m, intervals, fig } = mesh({ burst: 1, rate: 1000, everyS: 60, size: 84, graceMs: 5 });
  // the loop stalls right after the send; the kernel stamps the reply at 8 ms; the loop handles it at 9 ms, before its next tick
  e.onSend = (id, at) =>
    process.nextTick(() => {
      stallUntil(at + 9000);
      e.reply(id, at + 8000);
    });
  m.start();
  await until(5000, () => fig().received + fig().late > 0, 'the reply handled');
  await m.stop();
  const f = fig();
  assert.deepEqual([f.sent, f.received, f.lost, f.late, f.unmatched], [1, 0, 1, 1, 0], `sent, received, lost, late, unmatched (${JSON.stringify(f)})`);
  assert.deepEqual(f.rtt_us, ZERO_RTT, 'a late reply never moves the RTT figures');
  assert.equal(intervals.length, 1);
  const i = intervals[0]!;
  assert.deepEqual([i.sent, i.received, i.lost, i.late, i.loss_pct], [1, 0, 1, 1, 100], `the burst's record (${JSON.stringify(i)})`);
  assert.deepEqual(i.rtt_us, ZERO_RTT);
});

test('a reply stamped 3 ms after its send, grace 5 ms, is received with its 3 ms RTT even when the loop handles it after the deadline passed (the sweep waits a settle margin)', async () => {
  const { e, m, intervals, fig } = mesh({ burst: 1, rate: 1000, everyS: 60, size: 84, graceMs: 5 });
  // right after the send, in one tick (no timer to be late on a busy machine): the prober
  // sweeps as if 10 ms had passed — past the 5 ms deadline, within the settle margin — and
  // only then is the reply, stamped at 3 ms, handled
  const handledAfterUs = 10_000;
  e.onSend = (id, at) =>
    process.nextTick(() => {
      (m as unknown as { sweep(now: number): void }).sweep(at + handledAfterUs);
      e.reply(id, at + 3000);
    });
  m.start();
  await until(5000, () => fig().received + fig().lost > 0, 'the reply handled');
  await m.stop();
  const f = fig();
  assert.deepEqual([f.sent, f.received, f.lost, f.late], [1, 1, 0, 0], `sent, received, lost, late; reply handled ${Math.round(handledAfterUs)} µs after the send (${JSON.stringify(f)})`);
  assert.deepEqual([f.rtt_us.min, f.rtt_us.max], [3000, 3000], 'its RTT is its receive stamp − its send stamp');
  assert.deepEqual([intervals.length, intervals[0]!.received, intervals[0]!.lost, intervals[0]!.late, intervals[0]!.rtt_us.p50], [1, 1, 0, 0, 3000], `the burst's record (${JSON.stringify(intervals[0])})`);
});

test('a copy of a REPLY the engine dropped as replay (the network duplicated it) is a duplicate when its probe was received, and adds nothing when it was lost (its first copy was late) — MEASUREMENT.md §1', async () => {
  const { e, m, fig } = mesh({ burst: 2, rate: 1000, everyS: 60, size: 84, graceMs: 5 });
  e.onSend = (id, at) => {
    if (id === 0) process.nextTick(() => e.reply(0, at + 1000)); // probe 0 answered in 1 ms; probe 1 never
  };
  m.start();
  await until(5000, () => fig().received === 1 && fig().lost === 1, 'probe 0 received, probe 1 lost');
  e.reply(0, nowUs(), true);
  e.reply(0, nowUs(), true);
  e.reply(1, nowUs(), true);
  await m.stop();
  const f = fig();
  assert.deepEqual([f.sent, f.received, f.lost, f.late, f.duplicate, f.unmatched], [2, 1, 1, 0, 2, 0], `sent, received, lost, late, duplicate, unmatched (${JSON.stringify(f)})`);
  assert.deepEqual([f.rtt_us.min, f.rtt_us.max], [1000, 1000], 'a copy never moves the RTT figures');
});

test('a probe is late at most once: a second, distinct REPLY (fresh nonce: no replay drop) for a probe answered late is a duplicate, as one for a probe received in time is — never late again, never an RTT (MEASUREMENT.md §1, PROTOCOL.md §4)', async () => {
  const { e, m, intervals, fig } = mesh({ burst: 3, rate: 1000, everyS: 60, size: 84, graceMs: 5 });
  e.onSend = (id, at) => {
    // probe 0 never answered (lost by the sweep); probe 1 answered in 1 ms, then again;
    // probe 2 answered 8 ms after its send (past its 5 ms deadline: late), then again at 9 ms
    if (id === 1)
      process.nextTick(() => {
        e.reply(1, at + 1000);
        e.reply(1, at + 2000);
      });
    if (id === 2)
      process.nextTick(() => {
        e.reply(2, at + 8000);
        e.reply(2, at + 9000);
      });
  };
  try {
    m.start();
    await until(5000, () => intervals.length === 1, 'the burst final');
    const i = intervals[0]!;
    assert.deepEqual([i.sent, i.received, i.lost, i.late, i.duplicate, i.unmatched], [3, 1, 2, 1, 2, 0], `the burst's record: sent, received, lost, late, duplicate, unmatched (${JSON.stringify(i)})`);
    // probe 0, declared lost by the sweep: answered late, then again (distinct REPLYs)
    e.reply(0, nowUs());
    e.reply(0, nowUs());
  } finally {
    await m.stop();
  }
  const f = fig();
  assert.deepEqual([f.sent, f.received, f.lost, f.late, f.duplicate, f.unmatched], [3, 1, 2, 2, 3, 0], `sent, received, lost, late, duplicate, unmatched (${JSON.stringify(f)})`);
  assert.ok(f.late <= f.lost, 'late stays a subset of lost');
  assert.deepEqual([f.rtt_us.min, f.rtt_us.max], [1000, 1000], 'a further reply never moves the RTT figures');
});

test('a probe is late at most once after it left the ring too: its late state is kept in the history of final states, so a further distinct REPLY is a duplicate; a copy the engine dropped as replay still adds nothing', async () => {
  // ring = 2 × max(burst, rate × (grace + settle)) + 64 = 764 probes; the history of final states 8 × 764 = 6112 more
  const { e, m, fig } = mesh({ burst: 20, rate: 5000, everyS: 0.004, size: 84, graceMs: 20 });
  e.onSend = (id, at) => {
    // probe 0 never answered; probe 3 answered 30 ms after its send (past its 20 ms deadline: late, while the ring holds it); the rest at once
    if (id === 3) process.nextTick(() => e.reply(3, at + 30_000));
    else if (id !== 0) process.nextTick(() => e.reply(id, nowUs()));
  };
  const counts = (): number[] => [fig().late, fig().duplicate, fig().unmatched];
  const delta = (before: number[]): number[] => counts().map((v, i) => v - before[i]!);
  try {
    m.start();
    await until(20_000, () => e.sent.length >= 1500, '1500 probes sent: probes 0 and 3 left the ring');
    let before = counts();
    e.reply(0, nowUs());
    assert.deepEqual(delta(before), [1, 0, 0], 'probe 0, lost long ago: its first reply is late');
    before = counts();
    e.reply(0, nowUs());
    assert.deepEqual(delta(before), [0, 1, 0], 'probe 0 again, a distinct REPLY: a duplicate, not late a second time');
    before = counts();
    e.reply(3, nowUs());
    assert.deepEqual(delta(before), [0, 1, 0], 'probe 3, answered late while in the ring: a further distinct REPLY is a duplicate');
    before = counts();
    e.reply(0, nowUs(), true);
    e.reply(3, nowUs(), true);
    assert.deepEqual(delta(before), [0, 0, 0], 'copies the engine dropped as replay of late-answered probes: nothing (their first copy was counted late)');
  } finally {
    await m.stop();
  }
  const f = fig();
  assert.equal(f.late, 2, `probes 0 and 3, late once each (${JSON.stringify(f)})`);
  assert.ok(f.late <= f.lost, `late stays a subset of lost (${JSON.stringify(f)})`);
  assert.equal(f.sent, f.received + f.lost, `sent = received + lost at the end (${JSON.stringify(f)})`);
});

test('a reply to a probe the ring has forgotten is late (its probe was lost) or duplicate (it was received); older than the history of final states, unmatched (its fate unknown, as in the prober); an id this run never sent is unmatched', async () => {
  // ring = 2 × max(burst, rate × (grace + settle)) + 64 = 764 probes; the history of final states 8 × 764 = 6112 more
  const { e, m, fig } = mesh({ burst: 20, rate: 5000, everyS: 0.004, size: 84, graceMs: 20 });
  e.onSend = (id) => {
    if (id !== 0) process.nextTick(() => e.reply(id, nowUs())); // b answers every probe at once, but probe 0
  };
  const counts = (): number[] => [fig().late, fig().duplicate, fig().unmatched];
  const delta = (before: number[]): number[] => counts().map((v, i) => v - before[i]!);
  try {
    m.start();
    await until(20_000, () => e.sent.length >= 1500, '1500 probes sent: probes 0 and 1 left the ring');
    let before = counts();
    e.reply(0, nowUs());
    assert.deepEqual(delta(before), [1, 0, 0], 'probe 0, lost long ago: its reply is late');
    before = counts();
    e.reply(1, nowUs());
    assert.deepEqual(delta(before), [0, 1, 0], 'probe 1, received: a second reply is a duplicate');
    before = counts();
    e.reply(1, nowUs(), true);
    e.reply(0, nowUs(), true);
    assert.deepEqual(delta(before), [0, 1, 0], 'copies the engine dropped as replay: of received probe 1 a duplicate; of lost probe 0 nothing (its first copy was counted late)');
    before = counts();
    e.reply(e.sent.length + 1000, nowUs());
    assert.deepEqual(delta(before), [0, 0, 1], 'an id this run has not sent yet: unmatched');
    before = counts();
    e.reply(e.sent.length + 1000, nowUs(), true);
    assert.deepEqual(delta(before), [0, 0, 0], 'its copy: counted once, as its first');
    await until(30_000, () => e.sent.length >= 8000, '8000 probes sent: probes 0 and 1 older than the history too');
    before = counts();
    e.reply(0, nowUs());
    e.reply(1, nowUs());
    assert.deepEqual(delta(before), [0, 0, 2], 'older than the history: whether they were received is no longer known: unmatched, never late (late stays a subset of lost)');
    before = counts();
    e.reply(1, nowUs(), true);
    assert.deepEqual(delta(before), [0, 0, 0], 'a copy of that: counted once, as its first');
  } finally {
    await m.stop();
  }
  const f = fig();
  assert.equal(f.unmatched, 3, JSON.stringify(f));
  assert.equal(f.sent, f.received + f.lost, `sent = received + lost at the end (${JSON.stringify(f)})`);
});

test('the cumulative RTT figures lie within [min, max]: one RTT of 8000 µs reads 8000 everywhere (the HDR bucket top is 8003); RTTs 8000 and 9001 read p99 9001, not 9007', async () => {
  for (const [rtts, want] of [
    [[8000], { min: 8000, mean: 8000, p50: 8000, p90: 8000, p99: 8000, max: 8000 }],
    [[8000, 9001], { min: 8000, p99: 9001, max: 9001 }],
  ] as const) {
    const { e, m, fig } = mesh({ burst: rtts.length, rate: 1000, everyS: 60, size: 84, graceMs: 1000 });
    e.onSend = (id, at) => process.nextTick(() => e.reply(id, at + rtts[id]!));
    m.start();
    await until(5000, () => fig().received === rtts.length, 'every reply handled');
    await m.stop();
    const r = fig().rtt_us;
    for (const [k, v] of Object.entries(want)) assert.equal(r[k as keyof typeof r], v, `${k} of RTTs ${rtts.join(', ')}: ${JSON.stringify(r)}`);
    for (const k of ['mean', 'p50', 'p90', 'p99'] as const) assert.ok(r[k] >= r.min && r[k] <= r.max, `${k} ${r[k]} within [${r.min}, ${r.max}]`);
  }
});
