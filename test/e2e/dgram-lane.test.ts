/**
 * The dgram lane (src/pipeline/dgram-lane.ts) on its own, with a fake sink, over real UDP
 * on 127.0.0.1: stage 1 hands its batches on by index with their counts, sheds (and
 * counts) what arrives when every batch is out, stage 5 sends exactly the slots marked
 * `F_SEND` in slot order and reports `sent` once they left, and a stopped lane drains.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { test } from 'node:test';
import { DgramLane } from '../../src/pipeline/dgram-lane.js';
import { F_SEND, M_FLAGS, M_LENGTH } from '../../src/pipeline/layout.js';
import { BatchRing } from '../../src/pipeline/ring.js';
import { RecordingSink, until, within } from '../helpers.js';

test('dgram lane: full batches by index, overload counted when every batch is out, F_SEND slots sent in order, drain', async () => {
  const ring = new BatchRing(2, 4, 2048);
  const lane = await DgramLane.open({ index: 0, ring, host: '127.0.0.1', port: 0, reusePort: false, recvBufferBytes: 1 << 20 });
  const sink = new RecordingSink();
  lane.start(sink);
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  const got: Buffer[] = [];
  peer.on('message', (m) => got.push(m));
  try {
    const send = (i: number): Promise<void> => new Promise((r) => peer.send(Buffer.from([i, i, i]), lane.port, '127.0.0.1', () => r()));
    for (let i = 0; i < 10; i++) await send(i); // 2 batches of 4 fill up, then 2 are shed
    await until(5000, () => lane.counts.received === 10, 'received');
    assert.deepEqual(sink.batches.map(([, n]) => n), [4, 4], 'two full batches handed on');
    assert.equal(lane.counts.overload, 2, 'no batch left: shed and counted');
    // stage 5: mark slots 1 and 3 of the first batch (as the collector would), echoing the request as the "reply"
    const [b] = sink.batches[0]!;
    for (const i of [1, 3]) {
      const s = ring.layout.slotNumber(b, i);
      const mi = ring.layout.metaIndex(s);
      ring.ints[mi + M_FLAGS] = ring.ints[mi + M_FLAGS]! | F_SEND;
      ring.bytes.copyWithin(ring.layout.replyOffset(s), ring.layout.datagramOffset(s), ring.layout.datagramOffset(s) + ring.ints[mi + M_LENGTH]!);
    }
    lane.sendBatch(b);
    await until(5000, () => got.length === 2 && sink.sentCount === 1, 'the two marked REPLYs and the sent report');
    assert.deepEqual(got.map((m) => m[0]), [1, 3], 'exactly the marked slots, in slot order');
    // the batch is free again: a partial one is held until the sink agrees
    await send(42);
    await until(5000, () => lane.counts.received === 11, 'received');
    assert.equal(sink.batches.length, 2, 'a partial batch waits while the sink says no');
    sink.partial = true;
    lane.kick();
    assert.deepEqual(sink.batches[2]![1], 1, 'handed on once the sink agrees');
    // nothing marked: the unit completes at once
    lane.sendBatch(sink.batches[1]![0]);
    assert.equal(sink.sentCount, 2);
    lane.stop();
    assert.equal(sink.drainedCount, 0, 'one batch is still with the pipeline');
    lane.sendBatch(sink.batches[2]![0]);
    assert.equal(sink.drainedCount, 1, 'everything back: drained');
    assert.equal(lane.drained, true);
    await send(7);
    await until(5000, () => lane.counts.received === 12, 'received');
    assert.equal(lane.counts.overload, 3, 'after stop(), arrivals are overload');
  } finally {
    peer.close();
    await within(5000, lane.close(), 'lane.close()');
  }
});
