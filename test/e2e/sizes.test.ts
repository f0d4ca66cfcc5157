/**
 * Datagram sizes across the MAC route's crossover up to maxDatagram, through the engine
 * over real UDP (PROTOCOL.md §2, §3): every size is answered with a REPLY exactly as long
 * as its PROBE whose trailer an independent `createHmac` confirms; one byte over
 * maxDatagram is `malformed`. On the JS route (`DTMESH_NATIVE=0`, which
 * test/protocol/native.test.ts runs this file under) a canonical input of
 * KERNEL_CROSSOVER_BYTES or more goes to node:crypto, so both of its MAC paths are
 * crossed, on the engine's thread (inline) and in the workers (pool).
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { canonicalBytes, parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { KERNEL_CROSSOVER_BYTES, macRoute } from '../../src/protocol/mac.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { assertMacRoute, TestPeer, within } from '../helpers.js';

const tenant = 'tenant-sizes';
const root = new Uint8Array(randomBytes(32));
const pairKey = derivePairKey(root, tenant, 'prober', 'resp');
const MAX = 2048;
/** Datagram length whose canonical input (length - 16 + 4) is exactly the crossover. */
const X = KERNEL_CROSSOVER_BYTES + 12;

test(`MAC route under test: ${macRoute()}`, () => {
  assertMacRoute();
});

for (const [inlineBelow, where] of [[0, 'in the workers'], [4096, 'on the engine thread']] as const) {
  test(`sizes 50 … ${MAX} B across the ${KERNEL_CROSSOVER_BYTES}-byte crossover, verified ${where}: each answered by a REPLY as long as its PROBE, MAC checked by createHmac; ${MAX + 1} B is malformed`, async () => {
    const sizes = [50, 84, 300, X - 2, X - 1, X, X + 1, X + 2, 1024, 1400, MAX - 1, MAX];
    const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['prober'], workers: 2, maxDatagram: MAX, inlineBelow, batchSize: 4 });
    const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
    try {
      const port = engine.address.port;
      for (const [i, size] of sizes.entries()) await peer.send(peer.packet({ probeId: i, size }), port);
      assert.equal(await peer.waitFor(sizes.length, 10_000), sizes.length, 'every size answered');
      await peer.send(peer.packet({ probeId: 99, size: MAX + 1 }), port);
      const s0 = Date.now();
      while (engine.stats().received < sizes.length + 1 && Date.now() - s0 < 5000) await new Promise((r) => setTimeout(r, 10));
      for (const m of peer.received) {
        const p = parsePacket(m)!;
        assert.equal(p.type, 2, 'REPLY');
        assert.equal(m.length, sizes[p.probeId], `reply to the ${sizes[p.probeId]}-byte probe is as long as it`);
        const ref = createHmac('sha256', pairKey).update(canonicalBytes(m)).digest().subarray(0, 16);
        assert.ok(ref.equals(m.subarray(m.length - 16)), `${m.length}-byte reply: MAC = HMAC-SHA256(pair_key, canonical)[0:16]`);
      }
      assert.deepEqual(peer.received.map((m) => parsePacket(m)!.probeId), sizes.map((_, i) => i));
      const s = await within(15_000, engine.close(), 'engine.close()');
      assert.equal(s.received, sizes.length + 1);
      assert.equal(s.accepted, sizes.length);
      assert.equal(s.dropped.malformed, 1, `${MAX + 1} B is longer than maxDatagram`);
      assert.equal(DROP_REASONS.reduce((a, r) => a + s.dropped[r], 0), 1);
      if (inlineBelow === 0) assert.ok(engine.inlineBatches === 0 && engine.pooledBatches > 0, 'verified in the workers');
      else assert.ok(engine.pooledBatches === 0 && engine.inlineBatches > 0, 'verified on the engine thread');
    } finally {
      peer.close();
      await within(15_000, engine.close(), 'engine.close()');
    }
  });
}
