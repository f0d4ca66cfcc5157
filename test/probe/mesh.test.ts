/**
 * The mesh prober's schedule (src/probe/mesh.ts, MEASUREMENT.md §4): peers' bursts are
 * spread over the period, not in lock-step; a roster change keeps the others' schedule.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { MeshProber } from '../../src/probe/mesh.js';

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
