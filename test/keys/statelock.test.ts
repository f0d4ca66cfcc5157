/**
 * One agent, one nonce counter (PROTOCOL.md §3): a second counter of the same agent on
 * one state directory — in this process or another — is refused with one line; other
 * agents on the directory are not; a SIGKILLed holder leaves the lock free. Both ways of
 * holding it: flock from the native addon, and the PID-file fallback.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import fsModule from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DtmeshError } from '../../src/errors.js';
import { NonceCounter } from '../../src/keys/nonce.js';
import { nativeLockFd, nativeMacStatus } from '../../src/protocol/native.js';
import { agentFileTag, lockFileName, StateLock } from '../../src/keys/statelock.js';
import { tempDir } from '../helpers.js';

const HOLDER = fileURLToPath(new URL('../fixtures/hold-nonce.js', import.meta.url));
const flockSkip = nativeLockFd === null && !process.env.CI ? `native addon ${nativeMacStatus}` : false;
const KINDS = [
  ['flock', flockSkip],
  ['pidfile', false],
] as const;

function tmp(): string {
  return tempDir('dtmesh-lock-');
}

/** Start a holder process; resolves once it printed its first line. */
function holder(dir: string, agent: string, kind: string): Promise<{ child: ReturnType<typeof spawn>; line: string }> {
  const child = spawn(process.execPath, [HOLDER, dir, agent, kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ child, line: out.trim() });
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`holder exited ${code} before saying anything`));
    });
  });
}

function secondProcess(dir: string, agent: string, kind: string): { status: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [HOLDER, dir, agent, kind], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, lines: r.stdout.trim().split('\n') };
}

test('the lock file is named by the agent sender_id in hex, never by the raw ID', () => {
  const agent = 'agent/../ünï cödé ✓';
  assert.match(agentFileTag(agent), /^[0-9a-f]{16}$/);
  assert.equal(lockFileName(agent), `mesh-agent-${agentFileTag(agent)}.lock`);
  assert.notEqual(agentFileTag('a'), agentFileTag('b'));
});

for (const [kind, skip] of KINDS) {
  test(`${kind}: the same agent twice in one process is refused with one line; another agent on the directory works; close frees it`, { skip }, () => {
    const dir = tmp();
    const a = new NonceCounter(dir, 'agent-a', { lock: kind });
    assert.throws(
      () => new NonceCounter(dir, 'agent-a', { lock: kind }),
      (e: unknown) => e instanceof DtmeshError && !e.message.includes('\n') && /agent "agent-a" is already running on state directory .* \(pid \d+\)/.test(e.message),
    );
    const b = new NonceCounter(dir, 'agent-b', { lock: kind });
    assert.ok(b.take() > 0);
    a.close();
    a.close(); // idempotent
    const again = new NonceCounter(dir, 'agent-a', { lock: kind });
    assert.ok(again.take() > 0);
    again.close();
    b.close();
  });

  test(`${kind}: a second process of the same agent is refused with one line naming the holder; a SIGKILLed holder leaves the lock free`, { skip }, async () => {
    const dir = tmp();
    const { child, line } = await holder(dir, 'agent-a', kind);
    try {
      assert.equal(line, `held ${child.pid}`);
      const second = secondProcess(dir, 'agent-a', kind);
      assert.equal(second.status, 3);
      assert.equal(second.lines.length, 1, 'one line');
      assert.match(second.lines[0]!, new RegExp(`^agent "agent-a" is already running on state directory .* \\(pid ${child.pid}\\)`));
      assert.throws(() => new NonceCounter(dir, 'agent-a', { lock: kind }), DtmeshError, 'refused in this process as well');
      const other = new NonceCounter(dir, 'agent-b', { lock: kind });
      other.close();
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const after = new NonceCounter(dir, 'agent-a', { lock: kind }); // the holder crashed: free again
    after.close();
  });
}

for (const [kind, skip] of KINDS) {
  test(`${kind}: the same directory through a symlink is the same lock (never taken twice in one process)`, { skip }, () => {
    const dir = tmp();
    const link = path.join(tmp(), 'state-link');
    fs.symlinkSync(dir, link);
    const a = StateLock.acquire(dir, 'agent-a', { kind });
    assert.throws(
      () => StateLock.acquire(link, 'agent-a', { kind }),
      (e: unknown) => e instanceof DtmeshError && new RegExp(`agent "agent-a" is already running on state directory .* \\(pid ${process.pid}\\)`).test(e.message),
    );
    assert.ok(a.held);
    if (kind === 'pidfile') assert.equal(fs.readFileSync(path.join(dir, lockFileName('agent-a')), 'utf8'), `${process.pid}\n`, 'the first lock file is untouched');
    a.release();
    const b = StateLock.acquire(link, 'agent-a', { kind }); // free again, by either path
    assert.throws(() => StateLock.acquire(dir, 'agent-a', { kind }), DtmeshError);
    b.release();
  });
}

test('the PID-file fallback: a lock file naming a dead PID is stale and taken over; one naming a live process is respected', () => {
  const dir = tmp();
  const file = path.join(dir, lockFileName('agent-a'));
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(file, `${dead.stdout}\n`);
  const lock = StateLock.acquire(dir, 'agent-a', { kind: 'pidfile' });
  assert.equal(lock.kind, 'pidfile');
  assert.equal(fs.readFileSync(file, 'utf8'), `${process.pid}\n`);
  lock.release();
  assert.equal(fs.existsSync(file), false, 'released: the PID file is gone');
  fs.writeFileSync(file, `${process.ppid}\n`); // alive and not us
  assert.throws(() => StateLock.acquire(dir, 'agent-a', { kind: 'pidfile' }), /already running .*\(pid \d+\).*delete/);
});

test('flock honours a live PID-file holder (mixed builds), and ignores the PID a crashed flock holder left', { skip: flockSkip }, () => {
  const dir = tmp();
  const file = path.join(dir, lockFileName('agent-a'));
  fs.writeFileSync(file, `${process.ppid}\n`);
  assert.throws(() => StateLock.acquire(dir, 'agent-a', { kind: 'flock' }), DtmeshError);
  fs.writeFileSync(file, `${process.ppid} flock\n`); // written by a flock holder; the flock itself is free, so that holder is gone
  const lock = StateLock.acquire(dir, 'agent-a', { kind: 'flock' });
  assert.equal(lock.kind, 'flock');
  lock.release();
});

test('the PID-file fallback: the lock file never exists without its PID, so a racing start cannot read it as stale and win too', () => {
  const dir = tmp();
  const file = path.join(dir, lockFileName('agent-a'));
  const statelockUrl = new URL('../../src/keys/statelock.js', import.meta.url).href;
  const competitor = `import { StateLock } from ${JSON.stringify(statelockUrl)};
try { StateLock.acquire(process.argv[1], 'agent-a', { kind: 'pidfile' }); process.stdout.write('held'); }
catch (e) { process.stdout.write(e.message); }`;
  // After every fs call acquire makes, the moment the lock file first exists, a second
  // process tries to take it: before, that was the instant between open(O_EXCL) and the
  // PID write, which it read as "pid 0, stale" (2 of 60 fresh-directory races).
  let competed: string | null = null;
  let inHook = false;
  const names = ['openSync', 'writeSync', 'closeSync', 'linkSync', 'renameSync', 'rmSync', 'unlinkSync'] as const;
  const mutable = fsModule as unknown as Record<string, (...args: unknown[]) => unknown>;
  const saved = names.map((n) => mutable[n]!);
  names.forEach((n, i) => {
    mutable[n] = function (this: unknown, ...args: unknown[]) {
      const r = saved[i]!.apply(this, args);
      if (!inHook && competed === null && fs.existsSync(file)) {
        inHook = true;
        const c = spawnSync(process.execPath, ['--input-type=module', '-e', competitor, dir], { encoding: 'utf8', timeout: 10_000 });
        competed = `${c.stdout}${c.stderr}`;
        inHook = false;
      }
      return r;
    };
  });
  syncBuiltinESMExports();
  let lock: StateLock;
  try {
    lock = StateLock.acquire(dir, 'agent-a', { kind: 'pidfile' });
  } finally {
    names.forEach((n, i) => (mutable[n] = saved[i]!));
    syncBuiltinESMExports();
  }
  assert.notEqual(competed, null, 'the hook saw the lock file appear');
  assert.match(competed!, new RegExp(`^agent "agent-a" is already running on state directory .* \\(pid ${process.pid}\\)`), 'the racing start is refused');
  assert.equal(fs.readFileSync(file, 'utf8'), `${process.pid}\n`);
  assert.deepEqual(fs.readdirSync(dir), [lockFileName('agent-a')], 'no temp file left');
  lock.release();
});

for (const [kind, skip] of KINDS) {
  test(`${kind}: a FIFO as the lock file stops the start at once with one line naming it (never blocks)`, { skip }, () => {
    const dir = tmp();
    const file = path.join(dir, lockFileName('agent-a'));
    assert.equal(spawnSync('mkfifo', ['-m', '600', file]).status, 0, 'mkfifo');
    // in a child process, bounded: the old code blocked for ever opening or reading it
    const second = secondProcess(dir, 'agent-a', kind === 'flock' ? 'auto' : 'pidfile');
    assert.equal(second.status, 3, `refused, not blocked: ${JSON.stringify(second)}`);
    assert.deepEqual(second.lines, [`the agent lock file ${file} is a FIFO: it must be a regular file with no other hard links; remove it while no agent runs on this state directory`]);
    assert.ok(fs.lstatSync(file).isFIFO(), 'left alone');
  });
}

test('flock: a lock file with another hard link is refused, and the linked file is not truncated', { skip: flockSkip }, () => {
  const dir = tmp();
  const file = path.join(dir, lockFileName('agent-a'));
  const victim = path.join(tmp(), 'precious');
  fs.writeFileSync(victim, 'precious data\n');
  fs.linkSync(victim, file);
  assert.throws(
    () => StateLock.acquire(dir, 'agent-a', { kind: 'flock' }),
    (e: unknown) => e instanceof DtmeshError && e.message === `the agent lock file ${file} has 2 hard links (for an instant while a process without the native addon takes it, or for good after a backup hard-linked it): it must be a regular file with no other hard links; remove it while no agent runs on this state directory`,
  );
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious data\n');
  fs.rmSync(file);
  StateLock.acquire(dir, 'agent-a', { kind: 'flock' }).release();
});
