/**
 * A verification worker that hangs rather than dies (ENGINE.md: "No datagram … may crash,
 * stall or wedge the receiver"; "A worker that dies is replaced"). The fixture
 * test/fixtures/hang-worker.ts never finishes one batch until the test releases it.
 *
 * Observed behaviour (src/engine.ts has no per-task deadline): the in-order collector
 * waits for the hung batch, so every later batch — verified or not — waits behind it;
 * no reply leaves, the ring fills and further datagrams are shed as `overload`, and
 * `close()` does not resolve. Once the batch finishes, everything held is collected in
 * order and the books balance. The first test records that; the second states what the
 * spec asks for (bounded wedge: the hung batch counted, serving going on) as a `todo`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../src/engine.js';
import { DROP_REASONS } from '../../src/verdict.js';
import { HANG_PROBE_ID } from '../fixtures/hang-worker.js';
import { TestPeer, until, within } from '../helpers.js';

const tenant = 'tenant-hang';
const root = new Uint8Array(randomBytes(32));
const workerFile = fileURLToPath(new URL('../fixtures/hang-worker.js', import.meta.url));

async function hungEngine(): Promise<{ engine: Engine; peer: TestPeer; release: () => void }> {
  const releaseFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-hang-')), 'release');
  process.env.DTMESH_HANG_RELEASE = releaseFile;
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['prober'], workers: 2, batchSize: 4, batches: 8, inlineBelow: 0, workerFile });
  delete process.env.DTMESH_HANG_RELEASE;
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  return { engine, peer, release: () => fs.writeFileSync(releaseFile, '') };
}

test('observed: one hung batch holds every later batch and close() until it finishes; then all is collected in order and the books balance', async () => {
  const { engine, peer, release } = await hungEngine();
  try {
    const port = engine.address.port;
    for (let i = 0; i < 4; i++) await peer.send(peer.packet({ probeId: i }), port);
    assert.equal(await peer.waitFor(4, 5000), 4, 'served before the hang');
    await peer.send(peer.packet({ probeId: HANG_PROBE_ID }), port);
    for (let i = 0; i < 200; i++) await peer.send(peer.packet({ probeId: 100 + i }), port);
    await until(5000, () => engine.stats().received === 205, 'every datagram received');
    await new Promise((r) => setTimeout(r, 1000));
    const wedged = engine.stats();
    assert.equal(peer.received.length, 4, 'no reply leaves while the batch hangs (later batches wait behind it)');
    assert.ok(wedged.dropped.overload > 0, `the ring filled: ${wedged.dropped.overload} shed as overload`);
    const closing = engine.close();
    const early = await Promise.race([closing.then(() => 'closed'), new Promise((r) => setTimeout(() => r('pending'), 1000))]);
    assert.equal(early, 'pending', 'close() waits for the hung batch');
    release();
    const s = await within(20_000, closing, 'close() after the release');
    assert.equal(s.received, s.accepted + DROP_REASONS.reduce((a, r) => a + s.dropped[r], 0), 'books balance');
    assert.equal(s.dropped.replay, 0);
    assert.equal(await peer.waitFor(s.accepted, 5000), s.accepted, 'every accepted probe answered once released');
  } finally {
    release();
    peer.close();
    await within(20_000, engine.close(), 'engine.close()');
  }
});

test('a hung worker does not wedge the receiver: the batch is given up after a deadline and counted, serving goes on', { todo: 'src/engine.ts has no deadline on a pool task: one hung batch stalls all replies and close() (see the test above); reported to the lead' }, async () => {
  const { engine, peer, release } = await hungEngine();
  try {
    const port = engine.address.port;
    await peer.send(peer.packet({ probeId: HANG_PROBE_ID }), port);
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 20; i++) await peer.send(peer.packet({ probeId: i }), port);
    assert.equal(await peer.waitFor(20, 10_000), 20, 'later probes answered while one batch hangs');
  } finally {
    release();
    peer.close();
    await within(20_000, engine.close(), 'engine.close()');
  }
});
