/**
 * The native lane's addon entry points against misuse and odd input (src/native/lane.c,
 * src/pipeline/native-lane.ts), over loopback only:
 *
 * - a send before `laneAttach` is refused (a RangeError from C; `false` from the lane),
 *   never a write through the counters it does not have yet — run in a child process,
 *   since the old failure was a segfault.
 *
 * With `CI` set these fail (never skip) when the native lane was not built.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeLane, nativeLaneStatus } from '../../src/protocol/native.js';

const skip = nativeLane === null && !process.env.CI ? `native lane ${nativeLaneStatus}` : false;
const nativeJs = fileURLToPath(new URL('../../src/protocol/native.js', import.meta.url));
const laneJs = fileURLToPath(new URL('../../src/pipeline/native-lane.js', import.meta.url));
const ringJs = fileURLToPath(new URL('../../src/pipeline/ring.js', import.meta.url));

/** Run an ES module snippet in a fresh node (a crash there cannot take the test runner down); its exit status, signal and output. */
function child(code: string): { status: number | null; signal: string | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, signal: r.signal, out: r.stdout.trim(), err: r.stderr.trim() };
}

test('native lane: a send before laneAttach is refused with a RangeError (was a segfault: C wrote the counters it did not have yet)', { skip }, () => {
  const r = child(`
    import { nativeLane as n } from ${JSON.stringify(nativeJs)};
    const h = n.laneOpen('127.0.0.1', 0, 4, false, 0, 0, -1, -1, true, false);
    const port = n.laneInfo(h)[1];
    let out;
    try { out = 'returned ' + n.laneSendTo(h, Buffer.alloc(60), 0, 60, '127.0.0.1', port); }
    catch (e) { out = e.name + ': ' + e.message; }
    n.laneClose(h);
    process.stdout.write(out);
  `);
  assert.equal(r.signal, null, `the child was killed by ${r.signal} (stderr: ${r.err})`);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /^RangeError: laneSendTo: .*not attached/);
});

test('native lane: NativeLane.sendPacket before start() is refused and counted, not handed to C', { skip }, () => {
  const r = child(`
    import { NativeLane } from ${JSON.stringify(laneJs)};
    import { BatchRing } from ${JSON.stringify(ringJs)};
    const lane = await NativeLane.open({ index: 0, ring: new BatchRing(2, 4, 256), host: '127.0.0.1', port: 0, reusePort: false, recvBufferBytes: 1 << 16 });
    const ok = lane.sendPacket(Buffer.alloc(60), lane.port, '127.0.0.1', () => {});
    process.stdout.write(JSON.stringify({ ok, sendErrors: lane.counts.sendErrors }));
    await lane.close();
  `);
  assert.equal(r.signal, null, `the child was killed by ${r.signal} (stderr: ${r.err})`);
  assert.equal(r.status, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), { ok: false, sendErrors: 1 });
});
