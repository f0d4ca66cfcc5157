/**
 * The mesh prober's schedule (src/probe/mesh.ts, MEASUREMENT.md §4): peers' bursts are
 * spread over the period, not in lock-step; a roster change keeps the others' schedule;
 * a probe the kernel refuses is a send error, never sent nor lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { MeshProber } from '../../src/probe/mesh.js';
import { nativeLane } from '../../src/protocol/native.js';
import { startServe, stateDir, until } from '../helpers.js';

test('schedule: N peers start their bursts spread evenly over the period; peers joining later are spread among themselves; peers gone stop', async () => {
  const root = new Uint8Array(randomBytes(32));
  const peers = ['b', 'c', 'd', 'e'];
  const engine = await Engine.create({ rootKey: root, tenant: 't', agent: 'a', peers: [...peers, 'f', 'g'], workers: 1 });
  try {
    const m = new MeshProber(engine, { burst: 5, rate: 100, everyS: 2, size: 84, graceMs: 500 });
    m.setTargets(peers.map((agent, i) => ({ agent, host: '127.0.0.1', port: 9000 + i })));
    const starts = [...m.nextBursts().values()].sort((x, y) => x - y);
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    for (const g of gaps) assert.ok(Math.abs(g - 500_000) < 1000, `bursts 0.5 s apart (period 2 s / 4 peers), got ${g} µs`);
    assert.ok(starts.at(-1)! - starts[0]! < 2_000_000, 'all within one period');
    const before = m.nextBursts();
    m.setTargets([...peers.slice(1), 'f', 'g'].map((agent, i) => ({ agent, host: '127.0.0.1', port: 9100 + i })));
    const after = m.nextBursts();
    assert.equal(after.has('b'), false, 'a peer gone is no longer probed');
    for (const p of ['c', 'd', 'e']) assert.equal(after.get(p), before.get(p), `${p} keeps its place`);
    const fg = [after.get('f')!, after.get('g')!].sort((x, y) => x - y);
    assert.ok(Math.abs(fg[1]! - fg[0]! - 1_000_000) < 1000, 'the two newcomers are spread over the period too');
    assert.deepEqual(m.targets.map((t) => t.port).sort(), [9100, 9101, 9102, 9103, 9104], 'addresses updated');
    assert.throws(() => new MeshProber(engine, { burst: 0, rate: 100, everyS: 1, size: 84, graceMs: 500 }), RangeError);
  } finally {
    await engine.close();
  }
});

test('a probe the kernel refuses never left: a peer at the broadcast address gets send_errors, never sent nor lost (totals and bursts); a peer that answers nothing gets sent = lost — on both lanes', async () => {
  for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
    const engine = await Engine.create({ rootKey: new Uint8Array(randomBytes(32)), tenant: 't', agent: 'a', peers: ['b', 'c'], workers: 1, lane, listen: '127.0.0.1:0' });
    const m = new MeshProber(engine, { burst: 10, rate: 1000, everyS: 0.2, size: 84, graceMs: 100 });
    const bursts: Array<{ peer: string; sent: number; lost: number; send_errors: number }> = [];
    m.on('interval', (i) => bursts.push(i));
    try {
      m.setTargets([
        { agent: 'b', host: '255.255.255.255', port: 9 }, // refused: no SO_BROADCAST
        { agent: 'c', host: '127.0.0.1', port: 9 }, // leaves, nobody answers
      ]);
      m.start();
      await new Promise((r) => setTimeout(r, 600));
      await m.stop();
      const f = new Map(m.figures().map((x) => [x.peer, x]));
      const b = f.get('b')!;
      const c = f.get('c')!;
      assert.ok(b.send_errors >= 20, `${lane}: b's probes refused (${JSON.stringify(b)})`);
      assert.deepEqual([b.sent, b.lost, b.received], [0, 0, 0], `${lane}: b: none sent, none lost`);
      assert.ok(c.sent >= 20 && c.lost === c.sent && c.send_errors === 0, `${lane}: c: sent and lost (${JSON.stringify(c)})`);
      const bb = bursts.filter((x) => x.peer === 'b');
      assert.ok(bb.length >= 2, `${lane}: b's bursts reported`);
      assert.equal(bb.reduce((a, x) => a + x.sent + x.lost, 0), 0, `${lane}: no burst of b counts a refused probe as sent or lost`);
      assert.equal(bb.reduce((a, x) => a + x.send_errors, 0), b.send_errors, `${lane}: the bursts' send errors sum to the total (the last burst cut short by stop)`);
    } finally {
      await engine.close();
    }
  }
});

test('the mesh takes each send time from the lane\'s stamp at the send call (engine.lastSendUs), not the tick\'s start: a stamp 15 ms later shortens every RTT by 15 ms — on both lanes', async () => {
  for (const lane of nativeLane !== null ? (['dgram', 'native'] as const) : (['dgram'] as const)) {
    const root = new Uint8Array(randomBytes(32));
    const a = await Engine.create({ rootKey: root, tenant: 't', agent: 'a', peers: ['b'], workers: 1, lane, listen: '127.0.0.1:0' });
    const b = await Engine.create({ rootKey: root, tenant: 't', agent: 'b', peers: ['a'], workers: 1, listen: '127.0.0.1:0' });
    // a relay that holds every PROBE 30 ms on its way to b and passes REPLYs straight back
    const relay = dgram.createSocket('udp4');
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
    const timers = new Set<NodeJS.Timeout>();
    let from: dgram.RemoteInfo | null = null;
    relay.on('message', (m, rinfo) => {
      if (rinfo.port === b.address.port) {
        if (from !== null) relay.send(m, from.port, from.address);
        return;
      }
      from = rinfo;
      const t = setTimeout(() => {
        timers.delete(t);
        relay.send(m, b.address.port, '127.0.0.1');
      }, 30);
      timers.add(t);
    });
    const run = async (): Promise<number> => {
      const m = new MeshProber(a, { burst: 20, rate: 200, everyS: 60, size: 84, graceMs: 2000 });
      m.setTargets([{ agent: 'b', host: '127.0.0.1', port: relay.address().port }]);
      m.start();
      // the whole burst answered before stop (stop cuts a burst short): a fixed wait was a bet on the host's speed
      await until(10_000, () => (m.figures()[0]?.received ?? 0) >= 20, `${lane}: the burst's 20 replies`);
      await m.stop();
      const f = m.figures()[0]!;
      assert.equal(f.received, 20, `${lane}: every probe answered (${JSON.stringify(f)})`);
      return f.rtt_us.p50;
    };
    try {
      const real = await run();
      assert.ok(real >= 27_000 && real < 60_000, `${lane}: RTT from the lane's stamp ≈ 30 ms (${real} µs)`);
      const stamp = a.lastSendUs.bind(a);
      (a as { lastSendUs: () => number }).lastSendUs = () => stamp() + 15_000; // as if each packet had left 15 ms after the call
      const shifted = await run();
      // 15 ms ± the relay timer's jitter between the two runs; without the lane's stamp the shift is ~0
      assert.ok(real - shifted >= 8_000 && real - shifted <= 22_000, `${lane}: the mesh took its send times from the lane (p50 ${real} → ${shifted} µs)`);
    } finally {
      timers.forEach(clearTimeout);
      relay.close();
      await a.close();
      await b.close();
    }
  }
});

test('a lane stamp older than the send call (another packet\'s: this one queued behind it) is not this probe\'s send time; the time just before the call is', { skip: nativeLane === null && 'needs the native lane: its kernel receive stamps do not wait for the tick to end, a JS stamp does' }, async () => {
  const dir = stateDir();
  const served = await startServe(['--state-dir', dir, '--tenant', 't', '--agent', 'b', '--peers', 'a,b', '--listen', '127.0.0.1:0']);
  const a = await Engine.create({ stateDir: dir, tenant: 't', agent: 'a', peers: ['b'], workers: 1, lane: 'native' });
  try {
    // each send takes 20 ms more after it left, and the lane then reports the previous packet's
    // stamp: from the second probe of a tick on, a stamp from this tick but 20 ms before the call
    const stamp = a.lastSendUs.bind(a);
    const trySend = a.trySendProbe.bind(a);
    let last = NaN;
    let prev = NaN;
    a.trySendProbe = (...args: Parameters<Engine['trySendProbe']>): boolean => {
      const ok = trySend(...args);
      prev = last;
      last = stamp();
      const end = performance.now() + 20;
      while (performance.now() < end) {
        /* a slow send */
      }
      return ok;
    };
    (a as { lastSendUs: () => number }).lastSendUs = () => prev;
    // rate 1e6: the first probe in the first tick, the other nine together in the next
    const m = new MeshProber(a, { burst: 10, rate: 1_000_000, everyS: 60, size: 84, graceMs: 2000 });
    m.setTargets([{ agent: 'b', host: '127.0.0.1', port: served.port }]);
    m.start();
    await until(10_000, () => (m.figures()[0]?.received ?? 0) >= 10, "the burst's 10 replies");
    await m.stop();
    const f = m.figures()[0]!;
    // with the older stamp, eight of the ten RTTs would hold the 20 ms of the send before
    assert.ok(f.rtt_us.p50 < 10_000, `RTT p50 ${f.rtt_us.p50} µs: no other packet's send in it (${JSON.stringify(f.rtt_us)})`);
  } finally {
    await a.close();
    await served.stop();
  }
});
