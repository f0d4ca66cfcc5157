/**
 * Live key rotation (PROTOCOL.md §1): while probes flow, a heartbeat brings a new root.
 * Old-root probes keep verifying during the grace period, new-root probes verify at
 * once, replies switch to the new root immediately, old-root probes are bad_mac after
 * the grace, and no probe is lost to the switch.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { TestPeer } from '../helpers.js';

const tenant = 'rot';
/**
 * The grace period. The grace phase below sends 200 probes and waits for their replies —
 * about 50 ms on loopback — so 3 s leaves a 60× margin on a loaded 2-core machine. If it
 * were ever overrun, old-root probes would turn bad_mac and the exact counts below fail.
 */
const GRACE_MS = 3000;

function keyState(root: Uint8Array): Int32Array {
  const s = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, 'peer', 'resp'), s, 0);
  return s;
}

test('live rotation: grace for the old root, new root at once, replies under the new root, nothing lost', async () => {
  const oldRoot = new Uint8Array(randomBytes(32));
  const newRoot = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: oldRoot, tenant, agent: 'resp', peers: ['peer'], workers: 2, rotationGraceMs: GRACE_MS });
  const oldPeer = await TestPeer.open(oldRoot, tenant, 'peer', 'resp');
  const newPeer = await TestPeer.open(newRoot, tenant, 'peer', 'resp');
  const oldState = keyState(oldRoot);
  const newState = keyState(newRoot);
  const port = engine.address.port;
  // both "peers" are the same agent: one nonce sequence across the switch
  let nonce = oldPeer.nonce;
  const send = async (p: TestPeer, probeId: number): Promise<void> => {
    nonce += 1n;
    await p.send(p.packet({ nonce, probeId }), port);
  };
  try {
    for (let i = 0; i < 200; i++) await send(oldPeer, i);
    assert.equal(await oldPeer.waitFor(200, 5000), 200);
    assert.ok(oldPeer.received.every((m) => macVerify(oldState, 0, null, 0, m, 0, m.length)), 'replies under the old root before the switch');

    const rotatedAt = Date.now();
    assert.deepEqual(engine.applyHeartbeat({ tenant_id: tenant, mesh_root_key: Buffer.from(newRoot).toString('base64') }), { rotated: true });
    // during the grace: both roots verify, interleaved; replies are under the new root at once
    for (let i = 200; i < 400; i++) await send(i % 2 === 0 ? oldPeer : newPeer, i);
    const graceOld = await oldPeer.waitFor(300, 5000);
    const graceNew = await newPeer.waitFor(100, 5000);
    assert.equal(graceOld, 300, 'old-root probes keep verifying during the grace period');
    assert.equal(graceNew, 100, 'new-root probes verify at once');
    const afterSwitch = [...oldPeer.received.slice(200), ...newPeer.received];
    assert.ok(afterSwitch.every((m) => macVerify(newState, 0, null, 0, m, 0, m.length) && !macVerify(oldState, 0, null, 0, m, 0, m.length)), 'every reply after the switch is under the new root');

    await new Promise((r) => setTimeout(r, Math.max(0, GRACE_MS + 100 - (Date.now() - rotatedAt))));
    const before = engine.stats().dropped.bad_mac;
    await send(oldPeer, 1000);
    await send(newPeer, 1001);
    assert.equal(await newPeer.waitFor(101, 5000), 101);
    // the old-root probe was sent first, so it was judged in an earlier or the same batch as the
    // new-root one just answered (one sender, in order): by now its verdict is counted
    assert.equal(oldPeer.received.length, 300, 'old root after the grace: no reply');
    assert.equal(engine.stats().dropped.bad_mac, before + 1, 'old root after the grace: bad_mac');
    const s = await engine.close();
    assert.equal(s.accepted, 401);
    assert.equal(s.received, 402);
    const ids = [...oldPeer.received, ...newPeer.received].map((m) => parsePacket(m)!.probeId).sort((a, b) => a - b);
    assert.deepEqual(ids, [...Array.from({ length: 400 }, (_, i) => i), 1001], 'no probe lost to the switch');
  } finally {
    oldPeer.close();
    newPeer.close();
    await engine.close();
  }
});
