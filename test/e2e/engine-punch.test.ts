/**
 * PUNCH_HINTs end to end (PROTOCOL.md §2): a verified hint makes the engine send a burst
 * of PROBEs to the named peer at the given address; forged, replayed, stale and
 * other-tenant hints send nothing; unknown targets and loopback (unless allowed) are
 * refused; a hint flood produces at most the rate limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine, type PunchHintEvent } from '../../src/engine.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { senderIdOf } from '../../src/protocol/ids.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { TestPeer, wallUs } from '../helpers.js';

const tenant = 'punch';
const root = new Uint8Array(randomBytes(32));

function hintPayload(target: string, port: number, addr = [127, 0, 0, 1]): Uint8Array {
  const p = new Uint8Array(15);
  p.set(senderIdOf(target), 0);
  p[8] = 4;
  p[9] = port >> 8;
  p[10] = port & 0xff;
  p.set(addr, 11);
  return p;
}

const settle = (ms = 200): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a verified hint sends punchBurst PROBEs to the target; hostile hints send nothing; a flood is bounded by the rate limit', async () => {
  const engine = await Engine.create({
    rootKey: root, tenant, agent: 'a', peers: ['b', 'c'], workers: 1,
    punch: { allowLoopback: true, punchBurst: 4, perTargetPerMinute: 3, overallPerMinute: 5 },
  });
  const b = await TestPeer.open(root, tenant, 'b', 'a'); // the hinting peer
  const c = await TestPeer.open(root, tenant, 'c', 'a'); // the hint's target
  const other = await TestPeer.open(new Uint8Array(randomBytes(32)), 'other-tenant', 'b', 'a');
  const events: PunchHintEvent[] = [];
  engine.on('punch_hint', (e: PunchHintEvent) => events.push(e));
  const acState = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, 'a', 'c'), acState, 0);
  try {
    const port = engine.address.port;
    const cPort = c.socket.address().port;
    const hint = b.packet({ type: 3, payload: hintPayload('c', cPort) });
    await b.send(hint, port);
    assert.equal(await c.waitFor(4, 3000), 4, 'a burst of 4 PROBEs reached the target');
    for (const m of c.received) {
      const p = parsePacket(m)!;
      assert.equal(p.type, 1);
      assert.ok(macVerify(acState, 0, null, 0, m, 0, m.length), 'signed under the a–c pair key');
    }
    assert.equal(events.at(-1)!.decision, 'sent');
    assert.equal(events.at(-1)!.address, '127.0.0.1');
    assert.equal(b.received.length, 0, 'hints never get a reply');

    // hostile hints: nothing sent
    const forged = b.packet({ type: 3, payload: hintPayload('c', cPort) });
    forged[forged.length - 1]! ^= 1;
    const s0 = engine.stats();
    await b.send(forged, port); // bad_mac
    await b.send(hint, port); // replay
    await b.send(b.packet({ type: 3, payload: hintPayload('c', cPort), sendTsUs: wallUs() - 10_000_000 }), port); // stale
    await other.send(other.packet({ type: 3, payload: hintPayload('c', cPort) }), port); // other tenant: bad_mac
    await settle();
    const s1 = engine.stats();
    assert.equal(s1.dropped.bad_mac - s0.dropped.bad_mac, 2);
    assert.equal(s1.dropped.replay - s0.dropped.replay, 1);
    assert.equal(s1.dropped.stale - s0.dropped.stale, 1);
    assert.equal(c.received.length, 4, 'no burst for a forged, replayed, stale or other-tenant hint');

    // verified but refused: unknown target, bad address
    await b.send(b.packet({ type: 3, payload: hintPayload('stranger', cPort) }), port);
    await b.send(b.packet({ type: 3, payload: hintPayload('c', cPort, [224, 0, 0, 1]) }), port);
    await b.send(b.packet({ type: 3, payload: hintPayload('c', cPort, [0, 0, 0, 0]) }), port);
    await settle();
    assert.deepEqual(events.slice(-3).map((e) => e.decision), ['unknown_target', 'bad_address', 'bad_address']);
    assert.equal(c.received.length, 4);

    // a flood of 50 verified hints: at most the per-target bucket (3 per minute, 1 used) → 2 more bursts
    for (let i = 0; i < 50; i++) await b.send(b.packet({ type: 3, payload: hintPayload('c', cPort) }), port);
    await settle(400);
    assert.equal(c.received.length, 4 + 2 * 4, 'a hint flood produces at most the limit');
    const ps = engine.punchStats();
    assert.equal(ps.granted, 3);
    assert.equal(ps.probes, 12);
    assert.equal(ps.refused.rate_limited, 48);
  } finally {
    b.close();
    c.close();
    other.close();
    await engine.close();
  }
});

test('loopback targets are refused unless explicitly allowed', async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'a', peers: ['b', 'c'], workers: 1 });
  const b = await TestPeer.open(root, tenant, 'b', 'a');
  const c = await TestPeer.open(root, tenant, 'c', 'a');
  const events: PunchHintEvent[] = [];
  engine.on('punch_hint', (e: PunchHintEvent) => events.push(e));
  try {
    await b.send(b.packet({ type: 3, payload: hintPayload('c', c.socket.address().port) }), engine.address.port);
    await settle(300);
    assert.equal(engine.stats().accepted, 1, 'the hint itself verified');
    assert.equal(events[0]!.decision, 'loopback_not_allowed');
    assert.equal(c.received.length, 0);
  } finally {
    b.close();
    c.close();
    await engine.close();
  }
});
