/**
 * The batch ring's bookkeeping (src/batch.ts): ownership split for extra socket threads,
 * and the send ledger that decides when a collected batch may be reused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchRing, replyView, SendLedger } from '../src/batch.js';

test('a ring owning 3 of 6 batches hands out only those three, then -1; released ones come back', () => {
  const ring = new BatchRing(6, 4, 100, 3);
  const got = [ring.take(), ring.take(), ring.take()];
  assert.deepEqual([...got].sort(), [0, 1, 2]);
  assert.equal(ring.take(), -1, 'batches 3-5 belong to socket threads');
  ring.release(got[1]!);
  assert.equal(ring.freeCount, 1);
  assert.equal(ring.take(), got[1]);
});

test('send ledger: a batch is free only once every tracked send issued before it was closed has completed, oldest first', () => {
  const freed: number[] = [];
  let after = 0;
  const l = new SendLedger(4, (b) => void freed.push(b), () => void after++);
  l.issued += 2; // batch 2: two tracked sends
  l.closeBatch(2);
  l.closeBatch(0); // batch 0: no sends of its own, but it waits behind batch 2's
  l.issued += 1; // batch 3: one
  l.closeBatch(3);
  assert.equal(l.idle, false);
  l.release();
  assert.deepEqual(freed, []);
  l.done++;
  l.release();
  assert.deepEqual(freed, [], 'one of batch 2 sends still out');
  l.done++;
  l.release();
  assert.deepEqual(freed, [2, 0]);
  l.onSent(); // the completion callback does the same, then tells the owner
  assert.deepEqual(freed, [2, 0, 3]);
  assert.equal(after, 1);
  assert.equal(l.idle, true);
});

test('replyView: one view per slot, reused while the length stays, remade when it changes', () => {
  const bytes = Buffer.from(new SharedArrayBuffer(1024));
  const views: Array<Buffer | undefined> = new Array(4).fill(undefined);
  const v1 = replyView(views, bytes, 100, 2, 84);
  assert.equal(v1.length, 84);
  assert.equal(v1.byteOffset, 100);
  assert.equal(replyView(views, bytes, 100, 2, 84), v1, 'same length: the same view, nothing allocated');
  const v2 = replyView(views, bytes, 100, 2, 60);
  assert.notEqual(v2, v1);
  assert.equal(v2.length, 60);
  bytes[100] = 7;
  assert.equal(v2[0], 7, 'a view over the ring, not a copy');
});
