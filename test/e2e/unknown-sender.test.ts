/**
 * "Junk at line rate does not starve valid traffic: unknown senders cost a table lookup,
 * not an HMAC" (ENGINE.md; SECURITY.md "DoS by junk"), counted over real UDP.
 *
 * How the MACs are counted without a seam in src/: on the JS route (`DTMESH_NATIVE=0`) a
 * datagram whose canonical input is at least KERNEL_CROSSOVER_BYTES is MAC'd by
 * node:crypto's `createHmac`, which this file wraps with a counter
 * (`module.syncBuiltinESMExports()` makes src/protocol/mac.ts's `import { createHmac }`
 * see the wrapper). With `inlineBelow` above the batch size every batch is verified on
 * this thread, so every MAC the engine computes is counted. Under the native kernel the
 * MAC is invisible from JS: the test then skips, and test/protocol/native.test.ts runs
 * this file with DTMESH_NATIVE=0.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { KERNEL_CROSSOVER_BYTES, macRoute } from '../../src/protocol/mac.js';
import { nativeMac, nativeMacStatus } from '../../src/protocol/native.js';
import { assertMacRoute, TestPeer, until, within } from '../helpers.js';

const tenant = 'tenant-junk';
const root = new Uint8Array(randomBytes(32));
const SIZE = KERNEL_CROSSOVER_BYTES + 100; // canonical input above the crossover: node:crypto on the JS route

test(`MAC route under test: ${macRoute()}`, () => {
  assertMacRoute();
});

test('an unknown sender costs a lookup, not an HMAC: 300 strangers cost 0 MACs, 300 bad MACs from a roster member cost 300, 50 valid probes cost 100 (verify + sign)', { skip: nativeMac !== null && `the native kernel's MACs are not observable from JS (native.test.ts runs this file with DTMESH_NATIVE=0; native kernel ${nativeMacStatus})` }, async () => {
  const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  const real = crypto.createHmac;
  let macs = 0;
  crypto.createHmac = ((...a: Parameters<typeof real>) => {
    macs++;
    return real(...a);
  }) as typeof real;
  syncBuiltinESMExports();
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['prober'], workers: 1, batchSize: 64, inlineBelow: 65 });
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  const stranger = await TestPeer.open(root, tenant, 'stranger', 'resp'); // valid MAC under a pair key, but not in the roster
  try {
    const port = engine.address.port;
    const phase = async (send: () => Uint8Array, n: number): Promise<number> => {
      const before = macs;
      const received = engine.stats().received;
      for (let i = 0; i < n; i++) await peer.send(send(), port);
      await until(10_000, () => engine.stats().received >= received + n, `${n} datagrams received`);
      return macs - before;
    };
    assert.equal(await phase(() => stranger.packet({ size: SIZE }), 300), 0, 'unknown_sender: no HMAC');
    assert.equal(engine.stats().dropped.unknown_sender, 300);
    const badMac = (): Uint8Array => {
      const d = peer.packet({ size: SIZE });
      d[d.length - 1]! ^= 1;
      return d;
    };
    assert.equal(await phase(badMac, 300), 300, 'bad_mac: one HMAC each (no rotation grace, so one key)');
    assert.equal(engine.stats().dropped.bad_mac, 300);
    assert.equal(await phase(() => peer.packet({ size: SIZE }), 50), 100, 'valid probe: verify + sign its REPLY');
    assert.equal(await peer.waitFor(50, 5000), 50);
    assert.equal(engine.pooledBatches, 0, 'every batch verified on this thread, where the counter is');
  } finally {
    crypto.createHmac = real;
    syncBuiltinESMExports();
    peer.close();
    stranger.close();
    await within(15_000, engine.close(), 'engine.close()');
  }
});
