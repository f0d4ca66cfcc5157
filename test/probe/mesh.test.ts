/**
 * The mesh prober's schedule (src/probe/mesh.ts, MEASUREMENT.md §4): peers' bursts are
 * spread over the period, not in lock-step; a roster change keeps the others' schedule;
 * a probe the kernel refuses is a send error, never sent nor lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { MeshProber } from '../../src/probe/mesh.js';
import { nativeLane } from '../../src/protocol/native.js';

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
