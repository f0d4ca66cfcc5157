/**
 * CONVENTIONS: the hot path never allocates. Measured by young-generation collections in
 * a child process with a fixed 1 MiB young generation (test/fixtures/hotpath-alloc.ts):
 * 960 000 datagrams through nonce reservation → verify → collect → send order. Before this was fixed the
 * same work allocated ~40 bytes a datagram (a float argument boxed per datagram, the send
 * order's closures and arrays per batch, `performance.now()`'s array per clock reading
 * on Node 20, uint32 nonce halves boxed in the replay check): 16-31 collections here
 * (0-1 after), one every ~0.4 s in a live engine at any rate (none in 3 s after). The
 * dispatcher's `NonceCounter.take` still boxed its counter, 16 bytes a batch (4 collections
 * here), until the field was declared with a number.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clockIsNative, nowUs } from '../../src/clock.js';

const fixture = fileURLToPath(new URL('../fixtures/hotpath-alloc.js', import.meta.url));

function run(what: 'all' | 'clock' | 'own'): { datagrams: number; collections: number; clockIsNative: boolean; replies: number; sent: number; ownBytes: number; refusedOwn: number } {
  const r = spawnSync(process.execPath, ['--min-semi-space-size=1', '--max-semi-space-size=1', fixture, what], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('nonce reservation → verify → collect → send order allocate nothing per datagram: at most 2 young-generation collections of 1 MiB in 960 000 datagrams', () => {
  const r = run('all');
  assert.equal(r.replies, r.datagrams + 50_000 * 4, 'every PROBE accepted and its REPLY marked: the accept path, REPLY signing included, is what was measured');
  assert.equal(r.sent, r.datagrams / 4 + 50_000, 'every batch went through the send order');
  assert.ok(r.collections <= 2, `${r.collections} collections of 1 MiB for ${r.datagrams} datagrams (≈ ${((r.collections * 1048576) / r.datagrams).toFixed(1)} bytes a datagram)`);
});

test('the engine clock: allocation-free where the addon is built, the same time as performance.now(), never backwards', (t) => {
  const { performance } = globalThis;
  let worst = 0;
  let last = nowUs();
  for (let i = 0; i < 10_000; i++) {
    const a = (performance.timeOrigin + performance.now()) * 1000;
    const n = nowUs();
    const b = (performance.timeOrigin + performance.now()) * 1000;
    assert.ok(n >= last, 'monotonic');
    last = n;
    const off = n < a ? a - n : n > b ? n - b : 0;
    if (off > worst) worst = off;
  }
  assert.ok(worst < 50, `nowUs() strays ${worst.toFixed(2)} µs outside the performance.now() readings around it`);
  if (!clockIsNative) {
    t.diagnostic('the addon is not built: nowUs() is performance.now(), which allocates on Node 20; the allocation check of the clock is skipped');
    return;
  }
  const r = run('clock');
  assert.equal(r.clockIsNative, true);
  assert.ok(r.collections <= 1, `${r.collections} collections of 1 MiB for ${r.datagrams / 4} clock readings (performance.now() on Node 20: ~40 bytes each)`);
});

test('own packets on a lane that copies them (the native lane: the prober\'s PROBEs) allocate at most a few heap numbers each: at most 60 young-generation collections of 1 MiB in 960 000', () => {
  const r = run('own');
  assert.equal(r.refusedOwn, 0);
  assert.equal(r.ownBytes, (r.datagrams + 50_000 * 4) * 84, 'every packet reached the lane, 84 bytes each');
  // a Buffer, two closures and a context object per packet before (over 300 collections here
  // with that path forced); now none, one or two heap numbers a packet (the clock reading, the
  // nonce), as the JIT happens to inline: 0, 15 or 30 collections in 37 runs here, 45 once
  assert.ok(r.collections <= 60, `${r.collections} collections of 1 MiB for ${r.datagrams} own packets (≈ ${((r.collections * 1048576) / r.datagrams).toFixed(1)} bytes a packet)`);
});
