/** The outgoing nonce counter (PROTOCOL.md §3): starts at max(last_persisted + 1, now_us); a restart never goes backwards. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { NONCE_FILE, NONCE_RESERVE, NonceCounter } from '../src/nonce.js';
import { wallUs } from './helpers.js';

test('starts at the clock in µs without a state dir, and only goes up', () => {
  const before = wallUs();
  const c = new NonceCounter(null);
  const a = c.take();
  assert.ok(a >= before);
  const b = c.take(10);
  assert.equal(b, a + 1);
  assert.equal(c.take(), b + 10);
});

test('a restart never goes backwards, even when the counter ran far ahead of the clock', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-nonce-'));
  const first = new NonceCounter(dir);
  first.take(3 * NONCE_RESERVE); // far ahead of the clock, past two persisted ceilings
  const last = first.take();
  const persisted = Number(fs.readFileSync(path.join(dir, NONCE_FILE), 'utf8'));
  assert.ok(persisted > last, 'the persisted ceiling is ahead of every nonce used');
  assert.equal(fs.statSync(path.join(dir, NONCE_FILE)).mode & 0o777, 0o600);
  const second = new NonceCounter(dir); // the process restarts
  assert.ok(second.take() > last);
});
