/** The outgoing nonce counter (PROTOCOL.md §3): starts at max(last_persisted + 1, now_us); a restart never goes backwards. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DtmeshError } from '../../src/errors.js';
import { NONCE_FILE, NONCE_LIMIT, NONCE_RESERVE, NONCE_RETRY, NonceCounter, nonceFileName } from '../../src/keys/nonce.js';
import { tempDir, wallUs } from '../helpers.js';

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
  const dir = tempDir('dtmesh-nonce-');
  const file = path.join(dir, nonceFileName('agent-a'));
  const first = new NonceCounter(dir, 'agent-a');
  first.take(3 * NONCE_RESERVE); // far ahead of the clock, past two persisted ceilings
  const last = first.take();
  const persisted = Number(fs.readFileSync(file, 'utf8'));
  assert.ok(persisted > last, 'the persisted ceiling is ahead of every nonce used');
  assert.equal(first.persistedCeiling, persisted);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  first.close();
  const second = new NonceCounter(dir, 'agent-a'); // the process restarts
  assert.ok(second.take() > last);
  second.close();
});

test('one nonce file per agent; the legacy shared mesh-nonce is a lower bound for every agent (an upgrade never goes backwards)', () => {
  const dir = tempDir('dtmesh-nonce-');
  const legacy = wallUs() + 10 * NONCE_RESERVE; // an old counter that ran ahead of the clock
  fs.writeFileSync(path.join(dir, NONCE_FILE), `${legacy}\n`);
  const a = new NonceCounter(dir, 'agent-a');
  const b = new NonceCounter(dir, 'agent-b');
  assert.ok(a.take() > legacy);
  assert.ok(b.take() > legacy);
  a.take(2 * NONCE_RESERVE);
  const aLast = a.take();
  assert.notEqual(nonceFileName('agent-a'), nonceFileName('agent-b'));
  assert.ok(fs.existsSync(path.join(dir, nonceFileName('agent-a'))) && fs.existsSync(path.join(dir, nonceFileName('agent-b'))));
  assert.equal(Number(fs.readFileSync(path.join(dir, NONCE_FILE), 'utf8')), legacy, 'the legacy file is only read');
  a.close();
  b.close();
  const b2 = new NonceCounter(dir, 'agent-b');
  assert.ok(b2.take() < aLast, "agent-b does not inherit agent-a's counter");
  b2.close();
});

test('a nonce file that cannot be read or is garbled stops the start with one line; a missing one starts from the clock', () => {
  const dir = tempDir('dtmesh-nonce-');
  const file = path.join(dir, nonceFileName('agent-a'));
  const oneLine = (re: RegExp) => (e: unknown) => e instanceof DtmeshError && !e.message.includes('\n') && re.test(e.message);
  for (const garbage of ['', 'garbage\n', '-5\n', '0\n', '1.5\n', '1e300\n', '0x10\n', '12 34\n']) {
    fs.writeFileSync(file, garbage);
    // the advice never says to delete the file: a restart from the clock can go backwards
    assert.throws(() => new NonceCounter(dir, 'agent-a'), oneLine(/does not hold a positive integer: .*only move forward(?!.*delete it)/), JSON.stringify(garbage));
  }
  fs.rmSync(file);
  fs.mkdirSync(file);
  assert.throws(() => new NonceCounter(dir, 'agent-a'), oneLine(/is a directory/));
  fs.rmdirSync(file);
  fs.writeFileSync(path.join(dir, NONCE_FILE), 'garbage');
  assert.throws(() => new NonceCounter(dir, 'agent-a'), oneLine(/mesh-nonce does not hold/), 'the legacy file too');
  fs.rmSync(path.join(dir, NONCE_FILE));
  // an unreadable file (tests run as root, which ignores modes, so EACCES cannot be made): a symlink to itself fails with ELOOP
  fs.symlinkSync(file, file);
  assert.throws(() => new NonceCounter(dir, 'agent-a'), oneLine(/cannot be read \(ELOOP\)/));
  fs.rmSync(file);
  const before = wallUs();
  const c = new NonceCounter(dir, 'agent-a'); // the lock was released by every failed start
  assert.ok(c.take() >= before);
  c.close();
});

test('a failed ceiling write on take() is counted and retried, never thrown; the counter keeps going up', () => {
  const dir = tempDir('dtmesh-nonce-');
  let fail = false;
  const writes: string[] = [];
  const c = new NonceCounter(dir, 'agent-a', {
    writeCeiling: (file, content) => {
      if (fail) throw Object.assign(new Error('EROFS'), { code: 'EROFS' });
      fs.writeFileSync(file, content);
      writes.push(content);
    },
  });
  const start = c.take();
  const ceiling = c.persistedCeiling;
  fail = true;
  c.take(NONCE_RESERVE); // crosses the ceiling: the write fails
  assert.equal(c.writeErrors, 1);
  assert.equal(c.persistedCeiling, ceiling, 'the persisted ceiling lags');
  let prev = c.take();
  for (let i = 0; i < 3; i++) {
    const v = c.take(NONCE_RETRY + 1);
    assert.ok(v > prev);
    prev = v;
  }
  assert.equal(c.writeErrors, 4, 'retried every NONCE_RETRY nonces');
  fail = false;
  const v = c.take(NONCE_RETRY + 1);
  assert.equal(c.writeErrors, 4);
  assert.ok(c.persistedCeiling > v, 'written again once the directory takes writes');
  assert.equal(Number(writes.at(-1)), c.persistedCeiling);
  assert.ok(v > start);
  c.close();
});

test('the first ceiling write failing is a clear startup error, and the lock is released', () => {
  const dir = tempDir('dtmesh-nonce-');
  const failing = (): void => {
    throw Object.assign(new Error('x'), { code: 'ENOSPC' });
  };
  assert.throws(() => new NonceCounter(dir, 'agent-a', { writeCeiling: failing }), /cannot write the nonce file .*\(ENOSPC\)/);
  new NonceCounter(dir, 'agent-a').close();
  fs.rmSync(dir, { recursive: true });
  assert.throws(() => new NonceCounter(dir, 'agent-a'), (e: unknown) => e instanceof DtmeshError && /state directory must exist/.test(e.message), 'a missing directory');
});

test('a persisted value near 2^53 is refused with one line (the counter would stick there); up to NONCE_LIMIT every nonce and ceiling stays exact', () => {
  const dir = tempDir('dtmesh-nonce-');
  const file = path.join(dir, nonceFileName('agent-a'));
  const refusedAbove = (e: unknown): boolean =>
    e instanceof DtmeshError && !e.message.includes('\n') && /above the largest usable start/.test(e.message) && /only move forward/.test(e.message) && !/delete/.test(e.message);
  for (const big of [NONCE_LIMIT + 1, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER]) {
    fs.writeFileSync(file, `${big}\n`);
    assert.throws(() => new NonceCounter(dir, 'agent-a'), refusedAbove, String(big));
  }
  for (const big of ['9007199254740993', '99999999999999999999']) {
    fs.writeFileSync(file, `${big}\n`);
    assert.throws(() => new NonceCounter(dir, 'agent-a'), refusedAbove, big);
  }
  fs.writeFileSync(file, `${NONCE_LIMIT}\n`); // the largest accepted
  const c = new NonceCounter(dir, 'agent-a');
  const a = c.take();
  const b = c.take();
  assert.equal(a, NONCE_LIMIT + 1);
  assert.equal(b, a + 1, 'consecutive, not stuck');
  assert.ok(Number.isSafeInteger(c.persistedCeiling) && Number.isSafeInteger(Number(fs.readFileSync(file, 'utf8'))));
  c.take(NONCE_RESERVE); // crosses the first ceiling
  assert.equal(c.take(), b + NONCE_RESERVE + 1);
  c.take(NONCE_RESERVE); // past 2^53: the ceiling written is still an exact integer, which the next start refuses
  const written = Number(fs.readFileSync(file, 'utf8'));
  assert.ok(Number.isSafeInteger(written) && written > NONCE_LIMIT);
  c.close();
  assert.throws(() => new NonceCounter(dir, 'agent-a'), refusedAbove, 'exhausted: refused, never restarted lower');
});

test('a failed ceiling write is reported to onWriteError once per failure with one line; writeErrors is read-only; a throwing reporter never reaches take()', () => {
  const dir = tempDir('dtmesh-nonce-');
  const file = path.join(dir, nonceFileName('agent-a'));
  let fail = false;
  const writeCeiling = (f: string, content: string): void => {
    if (fail) throw Object.assign(new Error(`EROFS: read-only file system, open '${f}'`), { code: 'EROFS' });
    fs.writeFileSync(f, content);
  };
  const reported: Error[] = [];
  const c = new NonceCounter(dir, 'agent-a', { writeCeiling, onWriteError: (e) => reported.push(e) });
  const ceiling = c.persistedCeiling;
  fail = true;
  c.take(NONCE_RESERVE + 1); // crosses the ceiling: the write fails
  assert.equal(reported.length, 1);
  const msg = reported[0]!.message;
  assert.ok(reported[0] instanceof DtmeshError && !msg.includes('\n'), msg);
  assert.ok(msg.includes(file) && msg.includes('(EROFS)') && msg.includes(`nonces from ${ceiling} on`) && /may be reused after a crash/.test(msg), msg);
  c.take(NONCE_RETRY + 1); // retried at the next crossing: fails again, reported again
  assert.equal(reported.length, 2);
  assert.equal(c.writeErrors, 2);
  c.take(10); // no crossing: no write, no report
  assert.equal(reported.length, 2);
  assert.throws(() => {
    (c as unknown as { writeErrors: number }).writeErrors = 0;
  }, TypeError);
  assert.equal(c.writeErrors, 2);
  // settable after construction (the engine attaches its warning later); a throwing one is ignored
  c.onWriteError = () => {
    throw new Error('reporter bug');
  };
  const before = c.take();
  assert.equal(c.take(NONCE_RETRY + 1), before + 1, 'take() neither throws nor skips');
  assert.equal(c.writeErrors, 3);
  fail = false;
  c.onWriteError = (e) => reported.push(e);
  c.take(NONCE_RETRY + 1);
  assert.equal(c.writeErrors, 3);
  assert.equal(reported.length, 2, 'a write that succeeds is not reported');
  assert.ok(c.persistedCeiling > before);
  c.close();
});

const HOLDER = fileURLToPath(new URL('../fixtures/hold-nonce.js', import.meta.url));

test('a FIFO, a symlink or an oversized file as the nonce file stops the start at once with one line (never blocks)', () => {
  const dir = tempDir('dtmesh-nonce-');
  const file = path.join(dir, nonceFileName('agent-a'));
  const legacy = path.join(dir, NONCE_FILE);
  // in a child process, bounded: the old code blocked for ever in open(2) on a FIFO
  const start = (): { status: number | null; out: string } => {
    const r = spawnSync(process.execPath, [HOLDER, dir, 'agent-a', 'pidfile'], { encoding: 'utf8', timeout: 10_000 });
    return { status: r.status, out: r.stdout.trim() };
  };
  for (const f of [file, legacy]) {
    assert.equal(spawnSync('mkfifo', ['-m', '600', f]).status, 0, 'mkfifo');
    const r = start();
    assert.equal(r.status, 3, `refused, not blocked: ${JSON.stringify(r)}`);
    assert.equal(r.out, `nonce file ${f} is a FIFO: it must be a regular file this user can read and write`);
    fs.rmSync(f);
  }
  const real = path.join(dir, 'elsewhere');
  fs.writeFileSync(real, `${wallUs()}\n`);
  fs.symlinkSync(real, file);
  assert.throws(() => new NonceCounter(dir, 'agent-a'), /nonce file .* cannot be read \(ELOOP\)/, 'a symlink is not followed');
  fs.rmSync(file);
  fs.writeFileSync(file, `1${' '.repeat(100)}x\n`); // an integer, then more than any integer file holds
  assert.throws(() => new NonceCounter(dir, 'agent-a'), /does not hold a positive integer/);
  fs.rmSync(file);
  new NonceCounter(dir, 'agent-a').close();
});
