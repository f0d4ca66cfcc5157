/**
 * The reply sender's allocation-free path for own packets (src/pipeline/reply.ts, on a lane
 * that copies them: the native lane): one shared buffer, one queue of parallel arrays, no
 * closure per packet. What it must keep: PROTOCOL.md §3's nonce order across sockets (an
 * own packet waits behind another socket's REPLYs), the bytes of a packet whose start
 * waited (the shared buffer is signed over meanwhile), and the name of a packet the lane
 * refuses after its call returned.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { KeyRing } from '../../src/keys/keyring.js';
import { KeyTable } from '../../src/keys/keytable.js';
import { NonceCounter } from '../../src/keys/nonce.js';
import type { Lane, PacketLane } from '../../src/pipeline/lane.js';
import { ReplySender } from '../../src/pipeline/reply.js';
import { BatchRing } from '../../src/pipeline/ring.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { TYPE_PROBE } from '../../src/protocol/wire.js';

test('own packets behind another socket\'s REPLYs keep their own bytes and leave in nonce order; a refusal after the call names its packet; one during the call is false', () => {
  const root = new Uint8Array(randomBytes(32));
  const keyring = new KeyRing('t-reply', 'me', root, ['peer']);
  const table = new KeyTable(16);
  table.publish(keyring.entries());
  const ring = new BatchRing(2, 4, 2048);
  const left: Buffer[] = [];
  const done: Array<(err: Error | null) => void> = [];
  let refuseNext = false;
  const own = {
    index: 0,
    copiesOwnPackets: true,
    sendPacket(buf: Uint8Array, _port: number, _host: string, onSent: (err: Error | null) => void): boolean {
      if (refuseNext) {
        refuseNext = false;
        return false;
      }
      left.push(Buffer.from(buf)); // what the native lane's C copies
      done.push(onSent);
      return true;
    },
  } as unknown as PacketLane;
  const batchesStarted: number[] = [];
  const other = { index: 1, sendBatch: (b: number) => void batchesStarted.push(b) } as unknown as Lane;
  const failed: Array<[number, string, number, string]> = [];
  const rs = new ReplySender(ring, table, new NonceCounter(null), keyring.selfId, 2048, own, () => undefined, (type, agent, probeId, err) => void failed.push([type, agent, probeId, err.message]));

  rs.batchCollected(other, 0); // a socket thread's REPLYs, not completed yet
  assert.deepEqual(batchesStarted, [0]);
  const ids = [11, 0xfffffff0, 13];
  assert.deepEqual(ids.map((id) => rs.send(TYPE_PROBE, 'peer', '127.0.0.1', 9, id, 84)), [true, true, true], 'queued behind the other socket');
  assert.equal(left.length, 0, 'nothing leaves before the earlier nonces on the other socket');
  rs.sent(other);
  assert.equal(left.length, 3, 'all three start once the other socket completed');

  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, 't-reply', 'me', 'peer'), state, 0);
  const seen = left.map((m) => {
    assert.ok(macVerify(state, 0, null, 0, m, 0, m.length), 'each verifies under the pair key');
    const p = parsePacket(m)!;
    return { probeId: p.probeId, nonce: p.nonce };
  });
  assert.deepEqual(seen.map((x) => x.probeId), ids, 'each packet with its own bytes (the shared buffer was signed over twice meanwhile)');
  assert.ok(seen[0]!.nonce < seen[1]!.nonce && seen[1]!.nonce < seen[2]!.nonce, 'nonce order');

  done.shift()!(new Error('EPERM'));
  done.shift()!(null);
  done.shift()!(null);
  assert.deepEqual(failed, [[TYPE_PROBE, 'peer', 11, 'EPERM']], 'the refusal after the call is the first packet\'s, by its probe_id');

  refuseNext = true;
  assert.equal(rs.send(TYPE_PROBE, 'peer', '127.0.0.1', 9, 14, 84), false, 'refused during its own call');
  assert.equal(failed.length, 1, 'a refusal during the call is the return value, not an event');
  assert.equal(rs.sendPacket(TYPE_PROBE, 'peer', '127.0.0.1', 9, 15, 84) > 0, true, 'sendPacket returns the nonce');
  assert.equal(rs.pending, 1, 'the last one waits for its completion');
  done.shift()!(null);
  assert.equal(rs.pending, 0);
});
