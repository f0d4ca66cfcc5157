/**
 * The native MAC kernel's edges (its bulk differential test against node:crypto is in
 * sha256.test.ts), and the fallback route: with `DTMESH_NATIVE=0` every shared vector
 * still passes on the JS kernel + node:crypto route.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { macRoute } from '../../src/protocol/mac.js';
import { nativeMac as nativeRoute, nativeMacBuilt as nativeMac, nativeMacStatus } from '../../src/protocol/native.js';
import { HMAC_STATE_WORDS, hmacPrecompute, hmacTag16 } from '../../src/protocol/sha256.js';

const skip = nativeMac === null && !process.env.CI ? `native kernel ${nativeMacStatus}` : false;

test('native kernel: arguments out of range throw RangeError, write nothing and verify nothing', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(new Uint8Array(32).fill(7), state, 0);
  const buf = new Uint8Array(128).fill(1);
  const out = new Uint8Array(32).fill(0xee);
  hmacTag16(state, 0, buf, 0, 68, 34, out, 0);
  const good = out.slice(0, 16);
  out.fill(0xee);
  const cases = [[1, 0, 68, 0], [0, 100, 68, 0], [0, 0, 129, 0], [0, 0, 68, 17], [-1, 0, 68, 0], [0, -1, 68, 0], [2 ** 62, 0, 68, 0], [2 ** 30, 0, 68, 0], [0, 2 ** 53, 68, 0], [0, 0, 68, 2 ** 64]] as const;
  for (const [so, off, len, oo] of cases) {
    assert.throws(() => nat.tag16(state, so, buf, off, len, 34, out, oo), RangeError, `tag16(${so}, ${off}, ${len}, ${oo})`);
    assert.ok(out.every((b) => b === 0xee), `nothing written for (${so}, ${off}, ${len}, ${oo})`);
  }
  out.set(good);
  assert.equal(nativeMac.verify16(state, 0, buf, 0, 68, 34, out, 0), true, 'in range: verifies');
  assert.throws(() => nat.verify16(state, 0, buf, 0, 129, 34, out, 0), RangeError, 'message beyond the buffer');
  assert.throws(() => nat.verify16(state, 0, buf, 0, 68, 34, out, 17), RangeError, 'tag beyond the buffer');
  assert.throws(() => nat.verify16(state, 9, buf, 0, 68, 34, out, 0), RangeError, 'state beyond the array');
  assert.throws(() => nat.verify16(state, 0, buf, 0, 68, 2 ** 32, out, 0), RangeError, 'suffix beyond u32');
  assert.match(macRoute(), /native kernel/);
});

test('native kernel, bound calls: same MAC as node:crypto on 20,000 random cases; out of range and unbound throw RangeError and write nothing; 64 bindings per thread', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const state = new Int32Array(new SharedArrayBuffer(4 * HMAC_STATE_WORDS * 4));
  const bytes = new Uint8Array(new SharedArrayBuffer(4096));
  const h = nativeMac.bind(state, bytes);
  assert.ok(h >= 0);
  const keys = Array.from({ length: 4 }, (_, i) => {
    const key = randomBytes(i === 3 ? 100 : 32);
    hmacPrecompute(key, state, i * HMAC_STATE_WORDS);
    return key;
  });
  const sfx = Buffer.alloc(4);
  for (let c = 0; c < 20_000; c++) {
    const ki = c & 3;
    const n = c < 2100 ? c % 2100 : (c * 7919) % 2100;
    const off = 1 + (c % 61);
    bytes.set(randomBytes(n), off);
    const suffix = (c * 2654435761) >>> 0;
    sfx.writeUInt32BE(suffix);
    const ref = createHmac('sha256', keys[ki]!).update(bytes.subarray(off, off + n)).update(sfx).digest();
    const out = 2200 + (c % 100);
    nativeMac.tagAt(h, ki * HMAC_STATE_WORDS, off, n, suffix, out);
    assert.ok(Buffer.from(bytes.subarray(out, out + 16)).equals(ref.subarray(0, 16)), `case ${c}, n ${n}`);
    assert.equal(nativeMac.verifyAt(h, ki * HMAC_STATE_WORDS, off, n, suffix, out), true);
    bytes[out + (c % 16)]! ^= 1 << (c % 8);
    assert.equal(nativeMac.verifyAt(h, ki * HMAC_STATE_WORDS, off, n, suffix, out), false, `flipped tag accepted, case ${c}`);
  }
  bytes.fill(0xee, 3000, 3100);
  const cases = [[4 * HMAC_STATE_WORDS - 15, 0, 68, 3000], [0, 4090, 68, 3000], [0, 0, 68, 4081], [-1, 0, 68, 3000], [0, -5, 68, 3000], [0, 2 ** 32, 68, 3000], [0, 0, 68, 2 ** 32 + 3000], [0, 0.5, 68, 3000], [NaN, 0, 68, 3000]] as const;
  for (const [so, off, len, oo] of cases) {
    assert.throws(() => nat.tagAt(h, so, off, len, 34, oo), RangeError, `tagAt(${so}, ${off}, ${len}, ${oo})`);
    assert.throws(() => nat.verifyAt(h, so, off, len, 34, oo), RangeError, `verifyAt(${so}, ${off}, ${len}, ${oo})`);
  }
  assert.throws(() => nat.tagAt(h + 1000, 0, 0, 68, 34, 3000), RangeError, 'a binding number out of range');
  assert.throws(() => nat.tagAt(NaN, 0, 0, 68, 34, 3000), RangeError, 'NaN is not binding 0');
  assert.ok(bytes.subarray(3000, 3100).every((b) => b === 0xee), 'nothing written out of range or for a bad binding');
  nativeMac.unbind(h);
  assert.throws(() => nat.tagAt(h, 0, 0, 68, 34, 3000), RangeError, 'an unbound binding');
  assert.ok(bytes.subarray(3000, 3016).every((b) => b === 0xee), 'an unbound binding writes nothing');
  const taken: number[] = [];
  for (let i = 0; i < 70; i++) taken.push(nativeMac.bind(state, bytes));
  assert.ok(taken.includes(-1), 'bindings are bounded');
  assert.ok(taken.filter((t) => t >= 0).length <= 64);
  for (const t of taken) if (t >= 0) nativeMac.unbind(t);
  assert.ok(nativeMac.bind(state, bytes) >= 0, 'unbound slots are reused');
});

/** The test files that must pass on the JS route too; each registers a `MAC route under test: …` test. */
const JS_ROUTE_FILES = ['protocol/codec.test.js', 'protocol/receive.test.js', 'protocol/mutation.test.js', 'e2e/engine.test.js', 'e2e/sizes.test.js', 'e2e/unknown-sender.test.js'];

test(`DTMESH_NATIVE=0: the vector, receive, codec, mutation and engine tests and datagrams across the node:crypto crossover run on the JS kernel + node:crypto route and pass`, { skip: nativeRoute === null && `this whole run is already on the JS route (native kernel ${nativeMacStatus})` }, () => {
  const files = JS_ROUTE_FILES.map((f) => fileURLToPath(new URL(`../${f}`, import.meta.url)));
  const env: NodeJS.ProcessEnv = { ...process.env, DTMESH_NATIVE: '0' };
  delete env.NODE_TEST_CONTEXT; // a child of the runner would otherwise report to it, not print TAP
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', '--test-reporter=tap', ...files], { encoding: 'utf8', env, timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr.slice(-1000));
  assert.match(r.stdout, /^# fail 0$/m);
  assert.match(r.stdout, /^# skipped 0$/m, 'nothing skipped on the JS route');
  // every file says it ran on the JS route (assertMacRoute in test/helpers.ts checked it against the env)
  const routeLines = r.stdout.match(/^\s*ok \d+ - MAC route under test: MAC route: JS kernel below \d+ canonical bytes, node:crypto above \(native kernel off \(DTMESH_NATIVE=0\)\)$/gm) ?? [];
  assert.equal(routeLines.length, files.length, `each of ${files.length} files ran on the JS route:\n${routeLines.join('\n')}`);
  assert.doesNotMatch(r.stdout, /MAC route: native kernel/);
  const pass = Number(/^# pass (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
  assert.ok(pass >= files.length * 2, `${pass} tests passed`);
});
