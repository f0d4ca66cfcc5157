/** packets.json and replies.json: encode, parse, canonical input, MAC; REPLY construction. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalBytes, encodePacket, parsePacket } from '../../src/protocol/codec.js';
import { createHmac } from 'node:crypto';
import { macRoute, macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { assertMacRoute, hex, loadVectors, TestReceiver, toHex } from '../helpers.js';

const packets = loadVectors('packets.json').packets;
const replies = loadVectors('replies.json');

test(`MAC route under test: ${macRoute()}`, () => {
  assertMacRoute();
});

function state(key: Uint8Array): Int32Array {
  const s = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(key, s, 0);
  return s;
}

test('encode gives the vector wire bytes; parse gives back the fields; canonical matches; MAC verifies', () => {
  assert.ok(packets.length > 0);
  for (const v of packets) {
    const key = hex(v.pair_key);
    const f = { type: v.type, senderId: hex(v.sender_id), nonce: BigInt(v.nonce), probeId: v.probe_id, sendTsUs: BigInt(v.send_ts_us), payload: hex(v.payload) };
    const wire = encodePacket(f, state(key));
    assert.equal(toHex(wire), v.wire);
    const p = parsePacket(hex(v.wire))!;
    assert.equal(p.type, v.type);
    assert.equal(toHex(p.senderId), v.sender_id);
    assert.equal(p.nonce, BigInt(v.nonce));
    assert.equal(p.probeId, v.probe_id);
    assert.equal(p.sendTsUs, BigInt(v.send_ts_us));
    assert.equal(toHex(p.payload), v.payload);
    assert.equal(toHex(canonicalBytes(hex(v.wire))), v.canonical);
    const w = hex(v.wire);
    assert.equal(macVerify(state(key), 0, null, 0, w, 0, w.length), true);
    // the route that takes the raw key (node:crypto from the crossover up on the JS route; the native
    // kernel where built) agrees, and the trailer is what an independent createHmac computes
    assert.equal(macVerify(state(key), 0, key, 0, w, 0, w.length), true);
    const ref = createHmac('sha256', key).update(hex(v.canonical)).digest().subarray(0, 16);
    assert.equal(toHex(w.subarray(w.length - 16)), toHex(ref), 'trailer = HMAC-SHA256(pair_key, canonical)[0:16]');
    w[w.length - 1]! ^= 1;
    assert.equal(macVerify(state(key), 0, null, 0, w, 0, w.length), false);
  }
});

test('REPLY to a verified PROBE is built byte for byte as replies.json says (same length as the request)', () => {
  assert.ok(replies.replies.length > 0);
  for (const v of replies.replies) {
    const req = hex(v.request);
    const sendTs = Number(parsePacket(req)!.sendTsUs);
    const rx = new TestReceiver({
      root: hex(replies.root), tenant: replies.tenant, me: replies.replier, peers: [replies.replier, replies.requester],
      startUs: 0, replayWindow: 0, maxDatagram: 2048,
    });
    assert.equal(toHex(rx.keyring.selfId), v.replier_sender_id);
    assert.equal(toHex(rx.keyring.pairKey(replies.requester)), v.pair_key);
    // the reply nonce comes from the batch's reserved base (slot 0)
    (rx as any).nonce = Number(v.reply_nonce);
    const verdicts = rx.judgeAll([req], sendTs, Number(v.reply_send_ts_us));
    assert.deepEqual(verdicts, ['accept']);
    assert.equal(rx.replies.length, 1);
    assert.equal(toHex(rx.replies[0]!), v.reply);
    assert.equal(rx.replies[0]!.length, req.length);
  }
});
