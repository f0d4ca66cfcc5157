/**
 * Property: no single-bit change of a valid datagram is ever accepted — through the
 * engine's verify + collect stages (TestReceiver), in strict and window mode.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { macRoute } from '../../src/protocol/mac.js';
import { assertMacRoute, TestPeer, TestReceiver, wallUs } from '../helpers.js';

test(`MAC route under test: ${macRoute()}`, () => {
  assertMacRoute();
});

const runs = process.env.DTMESH_SLOW ? 20000 : 2000;

for (const replayWindow of [0, 128]) {
  test(`every single-bit flip of a valid datagram is dropped (replayWindow ${replayWindow})`, async () => {
    const root = new Uint8Array(randomBytes(32));
    const peer = await TestPeer.open(root, 't', 'b', 'a');
    peer.close();
    const now = wallUs();
    const rx = new TestReceiver({ root, tenant: 't', me: 'a', peers: ['a', 'b'], startUs: now - 1_000_000, replayWindow, maxDatagram: 2048 });
    let probes = 0;
    fc.assert(
      fc.property(fc.integer({ min: 50, max: 400 }), fc.nat(), fc.integer({ min: 1, max: 3 }), (size, bitSeed, type) => {
        const valid = peer.packet({ size, type: type === 3 ? 1 : type, probeId: bitSeed });
        if (valid[5] === 1) probes++;
        const bit = bitSeed % (valid.length * 8);
        const bad = new Uint8Array(valid);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        assert.notEqual(rx.judge(bad, now), 'accept', `flip of bit ${bit} of a ${size}-byte datagram`);
        // the original, judged after its mutant, is still accepted (a drop never moved state)
        assert.equal(rx.judge(valid, now), 'accept');
      }),
      { numRuns: runs },
    );
    assert.equal(rx.replies.length, probes, 'only the original PROBEs were answered');
  });
}
