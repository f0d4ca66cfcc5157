/**
 * The mesh prober's verdict on each reply (src/probe/mesh.ts, MEASUREMENT.md §1), through a
 * fake engine that stamps sends and emits `'reply'` events with chosen receive times: a
 * probe is judged by when its reply ARRIVED (`recvUs`), not when the loop handled it; a
 * reply to a probe this run sent is never `unmatched`, however old; the reported RTT
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

  /** b's REPLY to `probeId`, received at `recvUs`. */
  reply(probeId: number, recvUs: number): void {
    const r: ReplyEvent = { from: 'b', probeId, recvUs, sendTsUs: recvUs, length: 84 };
    this.emit('reply', r);
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
  m.start();
  await until(5000, () => e.sent.length === 1, 'the probe sent');
  const { probeId, at } = e.sent[0]!;
  // the prober ticks every 1 ms: let it sweep past the deadline (5 ms) before the reply, stamped at 3 ms, is handled
  await until(5000, () => nowUs() >= at + 10_000 || fig().lost > 0, 'the deadline passed');
  const handledAfterUs = nowUs() - at;
  e.reply(probeId, at + 3000);
  await m.stop();
  const f = fig();
  assert.deepEqual([f.sent, f.received, f.lost, f.late], [1, 1, 0, 0], `sent, received, lost, late; reply handled ${Math.round(handledAfterUs)} µs after the send (${JSON.stringify(f)})`);
  assert.deepEqual([f.rtt_us.min, f.rtt_us.max], [3000, 3000], 'its RTT is its receive stamp − its send stamp');
  assert.deepEqual([intervals.length, intervals[0]!.received, intervals[0]!.lost, intervals[0]!.late, intervals[0]!.rtt_us.p50], [1, 1, 0, 0, 3000], `the burst's record (${JSON.stringify(intervals[0])})`);
});
