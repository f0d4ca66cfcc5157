/**
 * The batch ring's bookkeeping (src/pipeline/ring.ts): ownership split for extra socket threads,
 * and the send ledger that decides when a collected batch may be reused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchRing, replyView } from '../../src/pipeline/ring.js';
import { SendLedger } from '../../src/pipeline/ledger.js';

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

test('send ledger: a send Node refuses at once or the kernel refuses later is counted, never thrown, and the batch is still freed', () => {
  const freed: number[] = [];
  const ledger = new SendLedger(4, (b) => freed.push(b), () => {});
  const callbacks: Array<(err: Error | null) => void> = [];
  let mode: 'ok' | 'throw' = 'ok';
  const socket = {
    send(_m: Uint8Array, _p: number, _a: string, cb?: (err: Error | null) => void): void {
      if (mode === 'throw') throw Object.assign(new RangeError('Port should be > 0 and < 65536'), { code: 'ERR_SOCKET_BAD_PORT' });
      if (cb) callbacks.push(cb);
    },
  };
  const view = new Uint8Array(4);
  // batch 0: two untracked, the last tracked; the kernel refuses the first (EACCES) and the last (EMSGSIZE)
  assert.equal(ledger.send(socket, view, 1, '127.0.0.1', false), true);
  assert.equal(ledger.send(socket, view, 1, '127.0.0.1', false), true);
  assert.equal(ledger.send(socket, view, 1, '127.0.0.1', true), true);
  ledger.closeBatch(0);
  // batch 1: its last (tracked) send throws at once: counted, not issued, freed with the sends before it
  mode = 'throw';
  assert.equal(ledger.send(socket, view, 0, '127.0.0.1', true), false);
  ledger.closeBatch(1);
  ledger.release();
  assert.deepEqual(freed, [], 'batch 0 still has sends out');
  callbacks[0]!(Object.assign(new Error('send EACCES'), { code: 'EACCES' }));
  callbacks[1]!(null);
  callbacks[2]!(Object.assign(new Error('send EMSGSIZE'), { code: 'EMSGSIZE' }));
  assert.deepEqual(freed, [0, 1], 'both batches move on');
  assert.equal(ledger.errors, 3, 'one synchronous and two kernel refusals');
  assert.equal(ledger.idle, true);
});
