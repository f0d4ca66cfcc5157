/**
 * The prober: exact loss / late / reorder / duplicate accounting against scripted
 * responders (MEASUREMENT.md §1), send errors counted, RTT percentiles against scripted
 * delays, forged and replayed replies dropped by the engine's verification (never
 * matched), and the CLI pair `serve` + `probe --json`, and `--metrics`.
 * Every wait is bounded ({@link within}, {@link until}) and fails naming what hung.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { nowUs } from '../../src/clock.js';
import { Engine } from '../../src/engine.js';
import { probe, type ProbeProgress, type ProbeReport } from '../../src/probe/prober.js';
import { nativeLane } from '../../src/protocol/native.js';
import { encodePacket, parsePacket } from '../../src/protocol/codec.js';
import { senderIdOf } from '../../src/protocol/ids.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { repoRoot, startServe, stateDir, tempDir, wallUs } from '../helpers.js';
import { assertValidReport } from '../probe/validate.js';

const tenant = 't-probe';
const root = new Uint8Array(randomBytes(32));

/**
 * Every wait in this file goes through here: `p` settles within `ms` or the test fails
 * naming what never came (a hung promise would otherwise only meet the runner's timeout).
 */
async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll `cond` every 5 ms; fail naming `what` if it is still false after `ms`. */
async function until(what: string, ms: number, cond: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Bound on one probe() run here: the longest runs send for ~1 s and wait out a ≤ 2 s deadline; 30 s is far beyond any slow machine. */
const RUN_MS = 30_000;
/** Deadline of runs that test no late reply: far above any loopback RTT, so a loaded 2-core CI machine (the JS kernel pass) never turns a slow reply into a loss. */
const NO_LATE_MS = 2000;

/**
 * A scripted responder "resp" (not the engine): answers PROBEs with correctly signed
 * REPLYs, but `script` may drop, hold back, delay or duplicate them. Every REPLY is
 * signed when it leaves (fresh nonce), so one held back is still accepted by the
 * prober's strict replay filter — it is the matcher that must judge it.
 */
async function scriptedResponder(
  script: (probeId: number, send: () => void, sendLater: (afterProbeId: number) => void, sendAfterMs: (ms: number) => void, sendAs: (probeId: number) => void) => void,
  clockUs: () => number = wallUs, // the REPLY's send_ts_us
) {
  const sock = dgram.createSocket('udp4');
  await within('responder bind', 5000, new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r())));
  // this responder shares the test's event loop with the prober: the default 208 KiB buffer (≈ 90 probes) overflows
  // during a stall on a loaded 2-core CI machine (seen: 19 of 500 probes gone), which no script asked for
  sock.setRecvBufferSize(4 << 20);
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, 'resp', 'prober'), state, 0);
  let nonce = BigInt(wallUs());
  const held = new Map<number, () => void>(); // after probe id → send
  const timers = new Set<NodeJS.Timeout>();
  sock.on('close', () => timers.forEach(clearTimeout));
  sock.on('message', (m, rinfo) => {
    const p = parsePacket(m)!;
    const sendAs = (probeId: number): void => {
      const reply = encodePacket({ type: 2, senderId: senderIdOf('resp'), nonce: ++nonce, probeId, sendTsUs: BigInt(Math.round(clockUs())), payload: p.payload }, state);
      try {
        sock.send(reply, rinfo.port, rinfo.address);
      } catch {
        // the socket was closed: the test is over
      }
    };
    const send = (): void => sendAs(p.probeId);
    const sendAfterMs = (ms: number): void => {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, ms);
      timers.add(t);
    };
    script(p.probeId, send, (after) => held.set(after, send), sendAfterMs, sendAs);
    const h = held.get(p.probeId);
    if (h) {
      held.delete(p.probeId);
      h();
    }
  });
  return sock;
}

/**
 * A responder that answers every probe at once but the 3rd, 6th and 10th of the run, which it
 * answers `holdMs` later — and, given `againMs`, a second time `againMs` after that: a
 * distinct REPLY (signed when it leaves, fresh nonce), which no replay check drops.
 */
function holdingResponder(holdMs: number, againMs?: number): ReturnType<typeof scriptedResponder> {
  let first = -1;
  const held = new Set([2, 5, 9]);
  return scriptedResponder((id, send, _later, sendAfterMs) => {
    if (first < 0) first = id;
    if (!held.has((id - first) >>> 0)) return send();
    sendAfterMs(holdMs);
    if (againMs !== undefined) sendAfterMs(holdMs + againMs);
  });
}

async function proberEngine(): Promise<Engine> {
  return within('prober engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1 }));
}

test('loss is exact: a responder that drops chosen probes', async () => {
  const engine = await proberEngine();
  let first = -1;
  const dropped = new Set([3, 10, 11, 499]);
  const resp = await scriptedResponder((id, send) => {
    if (first < 0) first = id;
    if (!dropped.has((id - first) >>> 0)) send();
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 500, rate: 5000, graceMs: NO_LATE_MS }));
    assert.equal(r.sent, 500);
    assert.equal(r.received, 496, `replies missing: the prober engine's drops this run ${JSON.stringify(r.dropped)}, kernel drops ${engine.stats().kernel_drops}`);
    assert.equal(r.lost, 4);
    assert.equal(r.late, 0);
    assert.equal(r.in_flight, 0);
    assert.equal(r.duplicates, 0);
    assert.equal(r.reordered, 0);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('two probe() runs at once on one engine each get every reply (each run has its own reply hook; the other run\'s replies are unmatched, never taken from it)', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, send) => send());
  try {
    const run = (): Promise<ProbeReport> => within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 300, rate: 3000, graceMs: NO_LATE_MS }));
    const [a, b] = await Promise.all([run(), run()]);
    for (const r of [a, b]) {
      assert.equal(r.sent, 300);
      assert.equal(r.received, 300, `each run gets its own replies: ${JSON.stringify({ received: r.received, lost: r.lost, unmatched: r.unmatched })}`);
      assert.equal(r.lost, 0);
    }
    const again = await run(); // the runs took their hooks off: a third, alone, still gets every reply
    assert.equal(again.received, 300);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('twelve probe() runs at once on one engine: each gets every reply, and Node prints no MaxListenersExceededWarning (the runs hook the engine internally, not as event listeners)', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, send) => send());
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const runs = Array.from({ length: 12 }, () => within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 50, rate: 1000, graceMs: NO_LATE_MS })));
    for (const r of await Promise.all(runs)) assert.equal(r.received, 50);
    await new Promise((r) => setImmediate(r)); // process warnings are emitted on a later tick
    assert.deepEqual(warnings.filter((w) => w.includes('MaxListeners')), []);
    assert.equal(engine.listenerCount('send_error'), 0, 'no run left a listener behind');
  } finally {
    process.off('warning', onWarning);
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('an abort that cuts sending short is in the report: interrupted is its reason when a string, else "aborted"; a run that ran its course, or aborted only while its last probes are waited out, has null', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, send) => send());
  const silent = await scriptedResponder(() => undefined);
  try {
    const cut = async (reason?: unknown): Promise<ProbeReport> => {
      const ac = new AbortController();
      const run = probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100_000, rate: 1000, graceMs: NO_LATE_MS, signal: ac.signal });
      setTimeout(() => (reason === undefined ? ac.abort() : ac.abort(reason)), 100);
      return within('aborted probe run', RUN_MS, run);
    };
    for (const [reason, want] of [['SIGINT', 'SIGINT'], [undefined, 'aborted'], [new Error('x'), 'aborted'], ['', 'aborted']] as const) {
      const r = await cut(reason);
      assert.ok(r.sent > 0 && r.sent < 100_000, `cut short (${r.sent} sent)`);
      assert.equal(r.interrupted, want, `reason ${String(reason)}`);
      assertValidReport(r, `aborted with ${String(reason)}`);
    }
    const whole = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 50, rate: 1000, graceMs: NO_LATE_MS }));
    assert.equal(whole.interrupted, null, 'ran its course');
    // no reply: the 20 probes are waited out for 500 ms; the abort comes once all 20 were sent
    const ac = new AbortController();
    const late = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: silent.address().port, count: 20, rate: 1000, graceMs: 500, progressMs: 10, signal: ac.signal, onProgress: (p) => p.sent === 20 && ac.abort('SIGTERM') }));
    assert.ok(ac.signal.aborted, 'the abort came');
    assert.deepEqual([late.sent, late.lost, late.interrupted], [20, 20, null], 'every probe was sent: nothing was cut short');
  } finally {
    resp.close();
    silent.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('probe() refuses a bad port, host or durationS up front (RangeError), before any probe leaves — durationS also when a count is given', async () => {
  const engine = await proberEngine();
  try {
    const base = { agent: 'resp', host: '127.0.0.1', port: 9, count: 5, rate: 1000 };
    for (const port of [0, -1, 65536, 1.5, Number.NaN]) await assert.rejects(probe(engine, { ...base, port }), (e: Error) => e instanceof RangeError && /port/.test(e.message), `port ${port}`);
    for (const host of ['', 5 as unknown as string]) await assert.rejects(probe(engine, { ...base, host }), (e: Error) => e instanceof RangeError && /host/.test(e.message), `host ${String(host)}`);
    for (const durationS of [-1, 0, Number.NaN]) await assert.rejects(probe(engine, { ...base, durationS }), (e: Error) => e instanceof RangeError && /durationS/.test(e.message), `durationS ${durationS} with count`);
    assert.equal(engine.stats().send_errors, 0, 'nothing was sent');
    await assert.rejects(probe(engine, { agent: 'resp', host: '127.0.0.1', port: 9, durationS: Infinity }), /durationS must be finite when no count is given/);
  } finally {
    await within('engine close', 10_000, engine.close());
  }
});

test('a reply after its deadline is late: never received, never an RTT; in-flight probes are never lost (MEASUREMENT.md §1)', async () => {
  const engine = await proberEngine();
  const graceMs = 400;
  // Held back 700 ms: a timer never fires early, so these arrive ≥ 300 ms past their
  // deadline; they are early probes (sent in the first 0.1 s of a 1 s run whose end waits
  // ≥ 0.45 s more), so each reaches the prober while it is still listening.
  const resp = await holdingResponder(700);
  const progress: ProbeProgress[] = [];
  try {
    const r = await within(
      'probe run',
      RUN_MS,
      probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 100, graceMs, progressMs: 50, onProgress: (p) => progress.push(p) }),
    );
    assert.equal(r.sent, 100);
    assert.equal(r.received, 97, 'late replies are never received');
    assert.equal(r.lost, 3, 'a late reply leaves its probe lost');
    assert.ok(r.rtt_us.max < graceMs * 1000, `RTT max ${r.rtt_us.max} µs: late replies never enter the RTT figures`);
    assert.equal(r.late, 3, 'each held-back reply came after its deadline');
    assert.equal(r.in_flight, 0);
    assert.equal(r.sent, r.received + r.lost + r.in_flight);
    assert.equal(r.duplicates, 0, 'late is not duplicate');
    assert.equal(r.unmatched, 0, 'late is not unmatched');
    assert.equal(r.grace_ms, graceMs);
    assert.equal(r.grace_rule, '--grace-ms');
    assert.ok(progress.length > 0, 'progress was reported');
    for (const p of progress) assert.equal(p.sent, p.received + p.lost + p.inFlight, `sent = received + lost + in flight in ${JSON.stringify(p)}`);
    // Before 0.4 s no probe is past its deadline (the first left at 0 s), so nothing may be
    // lost yet — the held-back ones are in flight, not lost.
    const early = progress.filter((p) => p.elapsedS < graceMs / 1000);
    assert.ok(early.length > 0, 'a progress line came before the first deadline');
    for (const p of early) assert.equal(p.lost, 0, `nothing lost before any deadline (in flight ${p.inFlight}) at ${p.elapsedS} s`);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a reply after its deadline but inside the sweep\'s settle margin is late, not received: onReply judges it against the deadline itself (grace 200 ms, replies held 225 ms; the sweep would wait to 250 ms)', async () => {
  const engine = await proberEngine();
  const graceMs = 200;
  // Held 225 ms: past the 200 ms deadline, so late; a timer never fires early (≤ ~1 ms
  // against the µs clock), so each arrives ≥ 224 ms after its send. The sweep declares a
  // probe lost only after deadline + VERIFY_SETTLE_US (250 ms), so a reply arriving before
  // that is judged by onReply — which must call it late. One that a busy machine delays
  // past 250 ms is late through the sweep instead: the assertions hold either way.
  const resp = await holdingResponder(225);
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 100, graceMs }));
    const books = JSON.stringify({ sent: r.sent, received: r.received, lost: r.lost, late: r.late, rtt_max: r.rtt_us.max, dropped: r.dropped });
    assert.equal(r.sent, 100);
    assert.equal(r.late, 3, `each held-back reply came after its deadline: ${books}`);
    assert.equal(r.lost, 3, `a late reply leaves its probe lost: ${books}`);
    assert.equal(r.received, 97, `late replies are never received: ${books}`);
    assert.ok(r.rtt_us.max < graceMs * 1000, `RTT max ${r.rtt_us.max} µs: a reply past the deadline never enters the RTT figures`);
    assert.equal(r.in_flight, 0);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a probe is late at most once: a second, distinct REPLY for a probe answered late is a duplicate, never late again, never received, never an RTT — whether its first reply came before the sweep declared it lost (held 225 ms, grace 200) or after (held 700 ms, grace 400)', async () => {
  for (const [holdMs, graceMs] of [
    [225, 200],
    [700, 400],
  ] as const) {
    const engine = await proberEngine();
    // each held probe answered twice: at holdMs and 100 ms later, both past its deadline
    const resp = await holdingResponder(holdMs, 100);
    try {
      const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 100, graceMs, intervalS: 0.25 }));
      const books = JSON.stringify({ holdMs, sent: r.sent, received: r.received, lost: r.lost, late: r.late, duplicates: r.duplicates, unmatched: r.unmatched, rtt_max: r.rtt_us.max, dropped: r.dropped });
      assert.equal(r.sent, 100);
      assert.equal(r.late, 3, `each held probe is late once, however many replies it gets: ${books}`);
      assert.equal(r.lost, 3, books);
      assert.equal(r.duplicates, 3, `each held probe's second REPLY is a duplicate: ${books}`);
      assert.equal(r.received, 97, books);
      assert.equal(r.unmatched, 0, books);
      assert.equal(r.dropped.replay, 0, `no copy: every second REPLY passed verification: ${books}`);
      assert.ok(r.rtt_us.max < graceMs * 1000, `RTT max ${r.rtt_us.max} µs: no reply past the deadline enters the RTT figures`);
      for (const k of ['late', 'duplicates'] as const) assert.equal(r.intervals.reduce((a, f) => a + f[k], 0), r[k], `Σ interval ${k} = ${k}`);
    } finally {
      resp.close();
      await within('engine close', 10_000, engine.close());
    }
  }
});

test('the default deadline follows the RTT: every reply held 400 ms raises it above its 1000 ms floor, none is late', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, send, _later, sendAfterMs) => sendAfterMs(400));
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 20, rate: 100 }));
    assert.equal(r.received, 20, 'a 400 ms RTT is within the 1000 ms floor');
    assert.equal(r.late, 0);
    assert.equal(r.grace_rule, 'max(1000 ms, 3 × RTT p99 so far), never lowered, at most 60000 ms');
    // Every RTT is ≥ 400 ms (a timer never fires early), so 3 × p99 ≥ 1200 ms; 1140 allows
    // the histogram's 3 significant digits and timer rounding.
    assert.ok(r.grace_ms >= 1140, `deadline ${r.grace_ms} ms = 3 × p99 ${r.rtt_us.p99} µs, above the floor`);
    assert.ok(r.grace_ms <= (3 * r.rtt_us.max) / 1000 + 1, `deadline ${r.grace_ms} ms never exceeds 3 × the largest RTT ${r.rtt_us.max} µs`);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a send that throws mid-run is counted in send_errors, not sent, and the run finishes', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, send) => send());
  let removed = false;
  try {
    const r = await within(
      'probe run',
      RUN_MS,
      probe(engine, {
        agent: 'resp',
        host: '127.0.0.1',
        port: resp.address().port,
        count: 40,
        rate: 200,
        graceMs: 200,
        progressMs: 50,
        onProgress: (p) => {
          // Mid-run roster change: from here on engine.sendProbe throws a RangeError.
          if (!removed && p.sent >= 5) {
            removed = true;
            engine.setPeers([]);
          }
        },
      }),
    );
    assert.ok(removed, 'the roster was changed during the run');
    assert.ok(r.send_errors > 0, 'sends after the roster change failed');
    assert.equal(r.sent + r.send_errors, 40, 'every scheduled probe is either sent or a send error');
    assert.equal(r.received + r.lost, r.sent);
    assert.equal(r.in_flight, 0);
    assert.equal(r.unmatched, 0);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('reordering and duplicates are exact: a responder that swaps two replies and repeats one', async () => {
  const engine = await proberEngine();
  let first = -1;
  const resp = await scriptedResponder((id, send, sendLater) => {
    if (first < 0) first = id;
    const seq = (id - first) >>> 0;
    if (seq === 20) sendLater((id + 1) >>> 0); // 20's reply leaves after 21's: one reordered
    else if (seq === 50) {
      send();
      send(); // a second, freshly signed REPLY for the same probe: a duplicate, not a success
    } else send();
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 2000, graceMs: NO_LATE_MS }));
    assert.equal(r.received, 100);
    assert.equal(r.lost, 0);
    assert.equal(r.late, 0, 'a duplicate is not late');
    assert.equal(r.reordered, 1);
    assert.equal(r.duplicates, 1);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a reply for a probe older than the ring still counts as what it is (MEASUREMENT.md §1): 2 s after its probe, a second reply for a received probe is a duplicate, the only reply of a lost one is late — late ⊆ lost', async () => {
  const engine = await proberEngine();
  let first = -1;
  // 5000 probes at 2000 pps (2.5 s): probe 10 is answered at once and again 2 s later,
  // probe 20 only 2 s later — both reach the prober while it still sends, ~4000 probes on,
  // where the ring (sized by rate × deadline) has long reused their entries
  const resp = await scriptedResponder((id, send, _later, sendAfterMs) => {
    if (first < 0) first = id;
    const seq = (id - first) >>> 0;
    if (seq === 10) {
      send();
      sendAfterMs(2000);
    } else if (seq === 20) sendAfterMs(2000);
    else send();
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 5000, rate: 2000, graceMs: 100, warmupS: 0, intervalS: 0.5 }));
    assertValidReport(JSON.parse(JSON.stringify(r)));
    assert.ok(r.memory.ring_entries < 4000, `the ring (${r.memory.ring_entries} entries) no longer holds probes 4000 back: the test tests the history beyond it`);
    assert.equal(r.sent, 5000);
    assert.equal(r.duplicates, 1, `the second reply for received probe 10 is a duplicate: ${JSON.stringify({ received: r.received, lost: r.lost, late: r.late, duplicates: r.duplicates, unmatched: r.unmatched })}`);
    assert.equal(r.late, r.lost, 'every late reply is of a lost probe (each probe here is answered once in time or once late, never twice late)');
    assert.ok(r.lost >= 1, 'probe 20, answered 2 s after its send, is lost');
    assert.equal(r.received + r.lost, 5000);
    assert.equal(r.unmatched, 0);
    for (const k of ['late', 'duplicates'] as const) assert.equal(r.intervals.reduce((a, f) => a + f[k], 0), r[k], `Σ interval ${k} = ${k}`);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a probe is late at most once also beyond the ring: a lost probe answered 2 s after its send and again 100 ms later (distinct REPLYs) is late once, then a duplicate — its late state kept in the ring\'s history', async () => {
  const engine = await proberEngine();
  let first = -1;
  // 5000 probes at 2000 pps (2.5 s): probe 20 is answered only 2 s after its send and again
  // 100 ms later, ~4000 probes on, where the ring (sized by rate × deadline) has long reused its entry
  const resp = await scriptedResponder((id, send, _later, sendAfterMs) => {
    if (first < 0) first = id;
    if ((id - first) >>> 0 !== 20) return send();
    sendAfterMs(2000);
    sendAfterMs(2100);
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 5000, rate: 2000, graceMs: 100, warmupS: 0, intervalS: 0.5 }));
    const books = JSON.stringify({ received: r.received, lost: r.lost, late: r.late, duplicates: r.duplicates, unmatched: r.unmatched, ring_entries: r.memory.ring_entries });
    assert.ok(r.memory.ring_entries < 4000, `the ring (${r.memory.ring_entries} entries) no longer holds probes 4000 back: the test tests the history beyond it`);
    assert.equal(r.sent, 5000);
    assert.ok(r.lost >= 1, `probe 20, answered 2 s after its send, is lost: ${books}`);
    assert.equal(r.late, r.lost, `every lost probe here is answered late once, probe 20 twice: late once per probe (late ⊆ lost): ${books}`);
    assert.equal(r.duplicates, 1, `probe 20's second REPLY is a duplicate: ${books}`);
    assert.equal(r.received + r.lost, 5000);
    assert.equal(r.unmatched, 0, books);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

/**
 * 100 measured probes at 2000 pps (plus `extra`) against a responder that answers each and
 * answers every 10th (ids 3, 13, 23, … from its first) a second time as an id this run
 * never used.
 */
async function runAnsweringEveryTenthTwice(extra: Partial<Parameters<typeof probe>[1]>): Promise<ProbeReport> {
  const engine = await proberEngine();
  let first = -1;
  const resp = await scriptedResponder((id, send, _later, _after, sendAs) => {
    if (first < 0) first = id;
    send();
    if (((id - first) >>> 0) % 10 === 3) sendAs((id + 0x40000000) >>> 0); // an id this run never used
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 2000, graceMs: NO_LATE_MS, ...extra }));
    assertValidReport(JSON.parse(JSON.stringify(r)));
    return r;
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
}

test('unmatched: a verified REPLY for a probe this run never sent is counted unmatched, never received', async () => {
  const r = await runAnsweringEveryTenthTwice({});
  assert.equal(r.received, 100);
  assert.equal(r.unmatched, 10);
  assert.equal(r.duplicates, 0);
  assert.equal(r.late, 0);
  assert.equal(r.lost, 0);
});

test('unmatched replies of the warm-up (both halves) count for the run and land in the first interval: Σ intervals unmatched = unmatched', async () => {
  const r = await runAnsweringEveryTenthTwice({ warmupS: 0.2, intervalS: 0.02 });
  assert.equal(r.received, 100);
  const expected = Math.floor((r.warmup.probes + 100 - 4) / 10) + 1; // ids 3, 13, 23, … of every probe sent
  assert.equal(r.unmatched, expected, `${r.warmup.probes} warm-up probes + 100: every 10th answered twice`);
  assert.equal(r.intervals.reduce((a, f) => a + f.unmatched, 0), r.unmatched, 'the intervals hold every unmatched reply, the warm-up\'s too');
});

test('RTT percentiles land where scripted delays put them: every 5th reply held 100 ms', async () => {
  const engine = await proberEngine();
  let first = -1;
  const resp = await scriptedResponder((id, send, _later, sendAfterMs) => {
    if (first < 0) first = id;
    if (((id - first) >>> 0) % 5 === 2) sendAfterMs(100);
    else send();
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 200, rate: 400, graceMs: 500 }));
    assert.equal(r.received, 200);
    // 80 % are answered at once: loopback RTT is well under 1 ms, so a p50 under 50 ms
    // leaves 50× for a noisy 2-core machine and still tells the two groups apart.
    assert.ok(r.rtt_us.p50 < 50_000, `p50 ${r.rtt_us.p50} µs sits among the immediate replies`);
    // 20 % are held ≥ 100 ms (a timer never fires early; 95 ms allows timer rounding and
    // the histogram's 3 digits), so p90 and p99 sit among the held ones.
    assert.ok(r.rtt_us.p90 >= 95_000, `p90 ${r.rtt_us.p90} µs sits among the held replies`);
    assert.ok(r.rtt_us.p99 >= 95_000, `p99 ${r.rtt_us.p99} µs sits among the held replies`);
    // Order between the groups, not an absolute bound: the held replies are at least 2× the median.
    assert.ok(r.rtt_us.p90 >= 2 * r.rtt_us.p50, `p90 ${r.rtt_us.p90} µs ≥ 2 × p50 ${r.rtt_us.p50} µs`);
    assert.ok(r.rtt_us.min < 95_000, `min ${r.rtt_us.min} µs is an immediate reply`);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a forged or replayed reply injected at the prober is dropped and counted, never matched as received (the replayed one is a duplicate); a later run on the same engine reports only its own drops', async () => {
  const engine = await proberEngine();
  const captured: Buffer[] = [];
  const resp = await scriptedResponder((_id, send) => send());
  resp.on('message', () => undefined);
  const spy = dgram.createSocket('udp4');
  await within('spy bind', 5000, new Promise<void>((r) => spy.bind(0, '127.0.0.1', () => r())));
  try {
    // capture replies by wrapping the scripted responder's sends
    const origSend = resp.send.bind(resp) as (...a: unknown[]) => void;
    (resp as any).send = (msg: Buffer, ...rest: unknown[]) => {
      captured.push(Buffer.from(msg));
      origSend(msg, ...rest);
    };
    const run = within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 200, rate: 1000, graceMs: NO_LATE_MS }));
    await until('20 replies captured', 10_000, () => captured.length >= 20);
    const port = engine.address.port;
    const forged = Buffer.from(captured[10]!);
    forged.writeUInt32BE((forged.readUInt32BE(22) + 150) >>> 0, 22); // aim at a probe not yet answered
    spy.send(forged, port, '127.0.0.1'); // MAC no longer matches
    spy.send(captured[5]!, port, '127.0.0.1'); // a verbatim replay of an accepted reply
    const r = await run;
    assert.equal(r.sent, 200);
    assert.equal(r.received, 200);
    assert.equal(r.duplicates, 1, 'the verbatim copy of an accepted reply: a duplicate (MEASUREMENT.md §1), though verification dropped it as a replay');
    assert.equal(r.late, 0);
    assert.equal(r.dropped.bad_mac, 1);
    assert.equal(r.dropped.replay, 1);
    // a second run on the same engine: its `dropped` is its own (a delta), not the engine's lifetime total
    const again = await within('second probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 50, rate: 1000, graceMs: NO_LATE_MS }));
    assert.equal(again.received, 50);
    for (const k of DROP_REASONS) assert.equal(again.dropped[k], 0, `second run: dropped.${k} is this run's (${again.dropped[k]}); the engine's total is ${engine.stats().dropped[k]}`);
    assert.equal(engine.stats().dropped.bad_mac, 1, 'the engine still counts the first run’s drop');
  } finally {
    spy.close();
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

const cli = path.join(repoRoot, 'dist', 'cli.js');

/** Run the CLI to its exit, bounded: killed and failed after `ms`. */
async function runCli(args: string[], ms: number): Promise<{ code: number | null; out: string; err: string }> {
  const c = spawn(process.execPath, [cli, ...args]);
  let o = '';
  let e = '';
  c.stdout.on('data', (d) => (o += d));
  c.stderr.on('data', (d) => (e += d));
  const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) => c.on('exit', (code) => resolve({ code, out: o, err: e })));
  try {
    return await within(`dtmesh ${args[0]}`, ms, exited);
  } catch (err) {
    c.kill('SIGKILL');
    throw err;
  }
}

test('CLI: probe --count 20000 --rate 20000 against serve → 20000 received, 0 lost, 0 late, 0 duplicates, 0 reordered; --metrics serves the same books', async () => {
  const dir = tempDir('dtmesh-probe-');
  assert.equal(spawnSync(process.execPath, [cli, 'keys', 'init', '--state-dir', dir], { timeout: 30_000 }).status, 0);
  const child = spawn(process.execPath, [cli, 'serve', '--state-dir', dir, '--tenant', 't', '--agent', 'A', '--peers', 'A,B', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  try {
    await until('serve prints its listening and metrics lines', 15_000, () => /metrics at http:\/\/127\.0\.0\.1:(\d+)/.test(out) && /listening on 127\.0\.0\.1:(\d+)/.test(out));
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const mport = Number(/metrics at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const json = path.join(dir, 'probe.json');
    // 1 s of sending plus at most the 1 s default floor of the deadline; 60 s bounds a stalled run.
    const p = await runCli(['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${port}`, '--count', '20000', '--rate', '20000', '--warmup', '0', '--json', json], 60_000);
    assert.equal(p.code, 0, p.err);
    const r = JSON.parse(fs.readFileSync(json, 'utf8'));
    // The first report's keys keep their names and order; context and new figures come around them.
    const legacy = ['sent', 'received', 'lost', 'duplicates', 'reordered', 'rtt_us', 'jitter_us', 'offered_pps', 'achieved_pps', 'throughput_bps', 'duration_s', 'dropped', 'late', 'in_flight', 'send_errors', 'grace_ms', 'grace_rule'];
    assert.deepEqual(Object.keys(r).filter((k) => legacy.includes(k)), legacy);
    assert.deepEqual(Object.keys(r.rtt_us).filter((k) => ['min', 'p50', 'p90', 'p99', 'p999', 'max'].includes(k)), ['min', 'p50', 'p90', 'p99', 'p999', 'max']);
    assertValidReport(r, 'probe --json');
    assert.equal(r.config.replay_window, 1024, 'the prober verifies replies in window mode by default');
    assert.deepEqual(Object.keys(r.dropped), [...DROP_REASONS]);
    assert.equal(r.sent, 20000);
    assert.equal(r.received, 20000);
    assert.equal(r.lost, 0);
    assert.equal(r.late, 0);
    assert.equal(r.in_flight, 0);
    assert.equal(r.send_errors, 0);
    assert.equal(r.duplicates, 0);
    assert.equal(r.reordered, 0);
    assert.ok(r.grace_ms >= 1000, `default deadline ${r.grace_ms} ms is at least its 1000 ms floor`);
    assert.match(r.grace_rule, /^max\(1000 ms, 3 × RTT p99/);
    // The schedule sends probe k no earlier than k / rate, so the prober can never run
    // ahead of --rate: 1 % covers the rounding of the span (one probe period in 20000).
    assert.ok(r.offered_pps <= 20000 * 1.01, `pacing never runs ahead of --rate (offered ${r.offered_pps} pps)`);
    // Falling behind is the machine, not the prober's books: below half the rate on
    // loopback would mean the pacing loop itself is broken, not a noisy neighbour.
    assert.ok(r.offered_pps >= 10000, `paced near --rate (offered ${r.offered_pps} pps)`);
    assert.match(p.out, /sent 20000, received 20000, lost 0 \(0\.000 %\), late 0/);
    // the generator's own health, CPU included: 20000 probes in ~1 s cost this process some CPU, never more than the machine has
    assert.match(p.out, /^generator \(yield\): lateness p50 \d+ p99 \d+ max \d+ µs, largest burst \d+, event-loop delay p99 \d+ µs, GC \d+ pauses \(max [\d.]+ ms\), CPU \d+\.\d\d cores/m);
    assert.ok(r.generator.cpu_cores > 0 && r.generator.cpu_cores <= os.cpus().length, `cpu_cores ${r.generator.cpu_cores}`);
    const text = await within(
      'GET /metrics',
      10_000,
      new Promise<string>((resolve, reject) =>
        http.get(`http://127.0.0.1:${mport}/metrics`, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        }).on('error', reject),
      ),
    );
    assert.match(text, /^dtmesh_received_total 20000$/m);
    assert.match(text, /^dtmesh_accepted_total 20000$/m);
    assert.match(text, /^dtmesh_replied_total 20000$/m);
    assert.match(text, /^dtmesh_dropped_total\{reason="bad_mac"\} 0$/m);
    assert.match(text, /^dtmesh_verdict_latency_seconds_count 20000$/m);
    // an unreachable target: one line, exit 1 (no warm-up: its 1 s would outlast the progress period, a second stderr line)
    const dead = await runCli(['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', 'A@127.0.0.1:9', '--count', '5', '--grace-ms', '200', '--warmup', '0'], 30_000);
    assert.equal(dead.code, 1);
    assert.equal(dead.err.trim().split('\n').length, 1);
    assert.match(dead.err, /no verified REPLY from A/);
    assert.match(dead.out, /lost 5 \(100\.000 %\), late 0/);
    const bad = await runCli(['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', 'nonsense'], 30_000);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--target must be AGENT@HOST:PORT/);
    const badGrace = await runCli(['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', 'A@127.0.0.1:9', '--grace-ms', '60001'], 30_000);
    assert.equal(badGrace.code, 2);
    assert.match(badGrace.err, /--grace-ms must be an integer from 0 to 60000/);
  } finally {
    child.kill('SIGTERM');
  }
});

test('kernel_drops: replies the kernel dropped at the prober\'s own socket (receive buffer full while the prober did not read) are counted in the report, and are exactly the probes lost', { skip: process.platform !== 'linux' && 'the kernel\'s per-socket drop count comes from /proc/net/udp (Linux)' }, async () => {
  // the smallest receive buffer (4 KiB asked, ~8 KiB given: a handful of datagrams) and a
  // responder on this same event loop: while the loop is blocked, probes queue at the
  // responder (4 MiB buffer) and are answered in one burst after it, faster than the prober reads
  const engine = await within('prober engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1, recvBufferBytes: 4096 }));
  const resp = await scriptedResponder((_id, send) => send());
  const stall = setTimeout(() => {
    const end = performance.now() + 80;
    while (performance.now() < end) {
      /* the prober's event loop blocked 80 ms */
    }
  }, 150);
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 2000, rate: 5000, graceMs: NO_LATE_MS }));
    assertValidReport(r);
    assert.ok(r.kernel_drops !== null && r.kernel_drops > 0, `the burst overflowed the prober's buffer: kernel_drops ${r.kernel_drops}`);
    assert.equal(r.lost, r.kernel_drops, `every lost probe is a reply the kernel dropped at the prober (dropped ${JSON.stringify(r.dropped)})`);
    assert.equal(r.received + r.lost, r.sent);
    assert.equal(r.in_flight, 0);
  } finally {
    clearTimeout(stall);
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('the send time is the lane\'s stamp at the send call (engine.lastSendUs), not the schedule\'s clock before signing: a stamp 15 ms later shortens every RTT by 15 ms', async () => {
  for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
    const engine = await within('prober engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1, lane }));
    const resp = await scriptedResponder((_id, _send, _later, sendAfterMs) => sendAfterMs(30)); // every reply 30 ms after its probe (a Node timer may fire up to ~1 ms early against the µs clock)
    try {
      const run = (): Promise<ProbeReport> => within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 50, rate: 500, graceMs: NO_LATE_MS, warmupS: 0 }));
      const real = await run();
      assert.ok(real.rtt_us.p50 >= 27_000 && real.rtt_us.p50 < 60_000, `${lane}: RTT from the lane's stamp ≈ 30 ms (${real.rtt_us.p50} µs)`);
      const stamp = engine.lastSendUs.bind(engine);
      assert.ok(Number.isFinite(stamp()), `${lane}: the lane stamps its sends`);
      (engine as { lastSendUs: () => number }).lastSendUs = () => stamp() + 15_000; // as if the packet had left 15 ms after the call
      const shifted = await run();
      assert.equal(shifted.received, 50);
      // 15 ms ± the responder timer's jitter between the two runs; with the schedule's clock the shift is ~0
      assert.ok(real.rtt_us.p50 - shifted.rtt_us.p50 >= 8_000 && real.rtt_us.p50 - shifted.rtt_us.p50 <= 22_000, `${lane}: the prober took its send times from the lane (p50 ${real.rtt_us.p50} → ${shifted.rtt_us.p50} µs)`);
    } finally {
      resp.close();
      await within('engine close', 10_000, engine.close());
    }
  }
});

test('the last interval ends sending: never an empty or zero-length one after it when the last sends are a little behind schedule (--duration and --count), and every probe is in an interval', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, _send, _later, sendAfterMs) => sendAfterMs(5)); // RTT ≥ 5 ms: a stamp moved 1.5 ms later stays positive
  const stamp = engine.lastSendUs.bind(engine);
  try {
    // 300 probes at 1000 pps in 0.1 s intervals: sending ends on the third interval's end.
    // Every send stamped 0.8 ms (the last period then runs past that end with no probe in
    // it) or 1.5 ms (the last probe itself is stamped past it) after the schedule's clock.
    for (const lagUs of [800, 1500]) {
      (engine as { lastSendUs: () => number }).lastSendUs = () => stamp() + lagUs;
      for (const run of [{ durationS: 0.3 }, { count: 300 }]) {
        const what = `${JSON.stringify(run)}, sends ${lagUs} µs behind`;
        const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, rate: 1000, graceMs: NO_LATE_MS, warmupS: 0, intervalS: 0.1, ...run }));
        assertValidReport(JSON.parse(JSON.stringify(r)));
        const shape = r.intervals.map((f) => `${f.index}:${f.start_s}+${f.duration_s} s sent ${f.sent}`).join(', ');
        assert.deepEqual(r.intervals.map((f) => f.start_s), [0, 0.1, 0.2], `${what}: three intervals (${shape})`);
        for (const f of r.intervals) {
          assert.ok(f.duration_s >= 0.09, `${what}: interval ${f.index} is ${f.duration_s} s long (${shape})`);
          assert.ok(f.sent > 0, `${what}: interval ${f.index} holds probes (${shape})`);
        }
        for (const k of ['sent', 'received', 'lost'] as const) assert.equal(r.intervals.reduce((a, f) => a + f[k], 0), r[k], `${what}: Σ interval ${k} = ${k} (${shape})`);
      }
    }
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('one-way delays: samples more than 60 s from the first (a clock step) are in no figure and counted in owd_us.out_of_range, per direction: count + out_of_range = received', async () => {
  // a clock window wider than the step (the default, 5 s, drops those replies as stale before any figure sees them)
  const engine = await within('prober engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1, clockWindowMs: 3_600_000 }));
  let replies = 0;
  // the responder's clock steps 120 s ahead after its 40th reply
  const resp = await scriptedResponder((_id, send) => send(), () => wallUs() + (replies++ >= 40 ? 120e6 : 0));
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 1000, graceMs: NO_LATE_MS, warmupS: 0, clockSynced: true }));
    assertValidReport(JSON.parse(JSON.stringify(r)));
    assert.equal(r.received, 100);
    const o = r.owd_us;
    assert.deepEqual(o.out_of_range, { forward: 60, reverse: 60 }, 'the 60 replies after the step, in each direction');
    for (const d of ['forward', 'reverse'] as const) {
      assert.equal(o.relative[d].count + o.out_of_range[d], r.received, `${d}: every sample is in the figures or in out_of_range`);
      assert.equal(o.absolute![d].count, o.relative[d].count);
    }
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('one-way delays, absolute (clockSynced): a responder whose clock runs 50 ms ahead reads forward ≈ +50 ms, reverse ≈ −50 ms (MEASUREMENT.md §2: forward = REPLY send_ts_us − probe send, reverse = reply receive − REPLY send_ts_us)', async () => {
  const engine = await proberEngine();
  const resp = await scriptedResponder((_id, send) => send(), () => wallUs() + 50_000);
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 1000, graceMs: NO_LATE_MS, warmupS: 0, clockSynced: true }));
    assert.equal(r.received, 100);
    const a = r.owd_us.absolute!;
    assert.ok(a.forward.p50 > 40_000, `forward p50 ${a.forward.p50} µs: the REPLY's stamp is 50 ms ahead of the probe's send`);
    assert.ok(a.reverse.p50 < -40_000, `reverse p50 ${a.reverse.p50} µs: the reply arrives 50 ms "before" its stamp`);
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('one-way delays, relative: a responder that answers 3 probes in 4 only 20 ms after they arrive, stamping send_ts_us when it answers, puts the 20 ms in the forward leg (probe send → REPLY stamp), none in the reverse (stamp → reply receive)', async () => {
  const engine = await proberEngine();
  let n = 0;
  // the hold is between the probe's arrival and the REPLY's stamp: forward grows by it, reverse not
  const resp = await scriptedResponder((_id, send, _later, sendAfterMs) => {
    if (n++ % 4 === 0) send();
    else sendAfterMs(20);
  });
  try {
    const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 500, graceMs: NO_LATE_MS, warmupS: 0 }));
    assert.equal(r.received, 100);
    const { forward, reverse } = r.owd_us.relative;
    const figures = JSON.stringify(r.owd_us.relative);
    // a Node timer may fire ~1 ms early against the µs clock: ≥ 18 ms
    assert.ok(forward.p50 >= 18_000, `forward p50 ${forward.p50} µs (3 in 4 held 20 ms): ${figures}`);
    assert.ok(reverse.p50 < 10_000, `reverse p50 ${reverse.p50} µs (no leg back was held): ${figures}`);
    assert.equal(r.owd_us.absolute, null, 'absolute figures only with clockSynced');
  } finally {
    resp.close();
    await within('engine close', 10_000, engine.close());
  }
});

test('a probe the kernel refuses never left (MEASUREMENT.md §1 "Sent"): probes to the broadcast address without SO_BROADCAST are send_errors, neither sent nor lost, in the totals and in every interval — on both lanes (native: refused during the call; dgram: after it)', async () => {
  for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
    const engine = await within('prober engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1, lane }));
    const refusals: string[] = [];
    engine.on('send_error', (e: { error: string }) => refusals.push(e.error));
    try {
      const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '255.255.255.255', port: 9, count: 40, rate: 2000, graceMs: 200, warmupS: 0, intervalS: 0.01 }));
      assert.deepEqual([r.sent, r.send_errors, r.received, r.lost, r.in_flight], [0, 40, 0, 0, 0], `${lane}: ${JSON.stringify({ sent: r.sent, send_errors: r.send_errors, lost: r.lost })}`);
      assert.equal(r.offered_pps, 0, `${lane}: nothing left, nothing offered`);
      assert.equal(r.intervals.reduce((a, f) => a + f.sent + f.lost, 0), 0, `${lane}: no interval counts a refused probe as sent or lost`);
      // native: the kernel refuses during sendProbe's own call, which returns -1 (no event); dgram: Node's callback says so after it returned
      if (lane === 'native') assert.equal(refusals.length, 0, 'native: refused during the call, sendProbe returned -1');
      else {
        assert.equal(refusals.length, 40, 'dgram: one send_error event per refused probe');
        assert.match(refusals[0]!, /E[A-Z]+/, `the kernel's reason: ${refusals[0]}`);
      }
      assert.equal(engine.stats().send_errors, 40, `${lane}: the engine counts them too`);
    } finally {
      await within('engine close', 10_000, engine.close());
    }
  }
});

test('the warm-up rehearses the measured phase into figures it throws away: the rehearsal\'s refused probes are in no send_errors and no interval, and every warm-up probe (both halves) is in warmup.probes', async () => {
  for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
    const engine = await within('prober engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1, lane }));
    // Every send attempt, with its time: how many the warm-up made depends on how the machine
    // kept up (a phase drops its backlog at its start; a loaded CI host once made 66 of 400),
    // so the checks count the attempts themselves, not the schedule's figure.
    const calls: number[] = [];
    const trySend = engine.trySendProbe.bind(engine);
    engine.trySendProbe = (...a: Parameters<Engine['trySendProbe']>) => (calls.push(nowUs()), trySend(...a));
    try {
      // 2000 pps for 1 s (the default): ≈ 2000 warm-up probes, the second half (from 0.5 s on) the rehearsal; every one refused
      const r = await within('probe run', RUN_MS, probe(engine, { agent: 'resp', host: '255.255.255.255', port: 9, count: 40, rate: 2000, graceMs: 200, warmupS: 1, intervalS: 0.01 }));
      assert.deepEqual([r.sent, r.send_errors, r.received, r.lost, r.in_flight], [0, 40, 0, 0, 0], `${lane}: only the measured phase's refusals count (${JSON.stringify({ sent: r.sent, send_errors: r.send_errors })})`);
      assert.equal(r.warmup.probes, calls.length - 40, `${lane}: every attempt before the measured 40 is a warm-up probe`);
      // an attempt 0.5 s after the first is in the rehearsal (the prober's clock started before the first;
      // only a stall of 0.5 s from the start would leave the rehearsal no attempt after that)
      const rehearsed = calls.slice(0, r.warmup.probes).filter((t) => t - calls[0]! >= 0.5e6).length;
      assert.ok(rehearsed > 0, `${lane}: the rehearsal's probes are warm-up probes too (${rehearsed} of ${r.warmup.probes} made after 0.5 s)`);
      assert.equal(r.intervals.reduce((a, f) => a + f.sent + f.lost, 0), 0, `${lane}: no interval holds a rehearsal probe`);
      assert.equal(engine.stats().send_errors, calls.length, `${lane}: the engine counted every refusal, the warm-up's too`);
    } finally {
      await within('engine close', 10_000, engine.close());
    }
  }
});

test("'send_error' names the refused packet itself, also when an earlier packet's host name is still being looked up (its completion comes later than the refusal's)", async () => {
  for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
    const engine = await within('engine start', 10_000, Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp', 'other'], workers: 1, lane }));
    const resp = await scriptedResponder(() => undefined);
    const events: string[] = [];
    engine.on('send_error', (e: { agent: string; probeId: number }) => events.push(`${e.agent}/${e.probeId}`));
    try {
      const port = resp.address().port;
      const a = engine.sendProbe('resp', 'localhost', port, 1, 84); // a name: looked up first, completes later
      const b = engine.sendProbe('other', '255.255.255.255', 9, 2, 84); // refused by the kernel
      assert.ok(a >= 0, `${lane}: the named one was handed on`);
      await until(`${lane}: the named probe arrived`, 5000, () => engine.stats().send_errors >= 1 && events.length + (b < 0 ? 1 : 0) >= 1);
      await new Promise((r) => setTimeout(r, 100));
      if (b < 0) assert.deepEqual(events, [], `${lane}: refused during its call: -1, no event`);
      else assert.deepEqual(events, ['other/2'], `${lane}: the event names the refused packet, not the one looked up meanwhile`);
      assert.equal(engine.stats().send_errors, 1, `${lane}: one refusal counted`);
    } finally {
      resp.close();
      await within('engine close', 10_000, engine.close());
    }
  }
});

test('at full speed (rate 0) the prober reads replies faster than it sends probes: a fast responder\'s replies do not pile up and overflow the prober\'s own socket (kernel_drops at most a stall\'s worth, not a third of them) — on both lanes', { skip: process.platform !== 'linux' && 'the kernel\'s per-socket drop count comes from /proc/net/udp (Linux)' }, async () => {
  // Each loop turn reads at most 32 datagrams (libuv's UDP read loop; lane.c WAKE_BUDGET) and a
  // prober that is behind sends SEND_CHUNK per turn: at 64 (before) the replies of half of every
  // turn's probes stayed queued until the prober's buffer was full (this test at 64: ~22 000 of
  // the 60 000 replies dropped at the prober, on either lane). At 16 none pile up; what a stall
  // of the prober can still drop is bounded by its buffer (the dgram lane's is capped by
  // net.core.rmem_max, 208 KiB by default: a few hundred replies), hence 1 %, not 0.
  const dir = stateDir();
  const serveLane = nativeLane !== null ? 'native' : 'dgram'; // the faster responder: its replies come back as fast as the prober sends
  const served = await startServe(['--state-dir', dir, '--tenant', 't', '--agent', 'A', '--peers', 'A,B', '--listen', '127.0.0.1:0', '--lane', serveLane]);
  try {
    for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
      const engine = await within('prober engine start', 10_000, Engine.create({ stateDir: dir, tenant: 't', agent: 'B', peers: ['A'], workers: 1, lane }));
      try {
        const r = await within('probe run', RUN_MS, probe(engine, { agent: 'A', host: '127.0.0.1', port: served.port, count: 60_000, rate: 0, graceMs: NO_LATE_MS, warmupS: 0 }));
        assert.ok(r.kernel_drops !== null && r.kernel_drops <= r.sent / 100, `${lane}: replies dropped at the prober's own socket: ${r.kernel_drops} (${r.lost} lost of ${r.sent}, offered ${r.offered_pps} pps)`);
        assert.equal(r.received + r.lost, r.sent);
      } finally {
        await within('engine close', 10_000, engine.close());
      }
    }
  } finally {
    await served.stop();
  }
});
