/**
 * Issue 11: would-block with a full send buffer, for real (test/pipeline/native-lane.test.ts
 * fakes EAGAIN; on plain loopback a UDP send never blocks, the kernel frees the buffer
 * during the call). A network namespace whose loopback has a token-bucket qdisc (8 Mbit/s)
 * holds each datagram's send-buffer charge until it drains, so the native lane with a
 * 16 KiB send buffer meets EAGAIN: own packets and a batch of REPLYs must all arrive, in
 * the order they were handed to the lane, with no send error. Needs root, `ip netns` and
 * `tc` (iproute2); skipped with a printed reason otherwise. Traffic stays in the namespace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeLane, nativeLaneStatus } from '../../src/protocol/native.js';

const ns = `dtwb-${process.pid % 100_000}`;
const fixture = fileURLToPath(new URL('../fixtures/wouldblock.js', import.meta.url));

function sh(args: string[], timeout = 15_000): { ok: boolean; out: string; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout });
  return { ok: r.status === 0, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function whyNot(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (nativeLane === null) return process.env.CI ? null : `the native lane is ${nativeLaneStatus}`;
  if (process.getuid?.() !== 0) return 'not root';
  if (!sh(['ip', '-V']).ok) return 'no iproute2 (ip)';
  if (!sh(['tc', '-V']).ok) return 'no tc (iproute2)';
  return null;
}

const reason = whyNot();
if (reason !== null) process.stdout.write(`# native-wouldblock: real would-block test SKIPPED: ${reason}\n`);

test('native lane, a full send buffer for real (netns loopback behind an 8 Mbit/s tbf, 16 KiB SO_SNDBUF): EAGAIN queues in order — 400 own packets and 4 REPLYs all arrive in the order handed over, none refused', { skip: reason ?? false }, () => {
  assert.ok(nativeLane !== null, `CI: the native lane was not built (${nativeLaneStatus})`);
  sh(['ip', 'netns', 'del', ns]);
  try {
    for (const cmd of [
      ['ip', 'netns', 'add', ns],
      ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
      ['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '8mbit', 'burst', '16kb', 'latency', '2s'],
    ]) {
      const r = sh(cmd);
      assert.ok(r.ok, `${cmd.join(' ')}: ${r.err}`);
    }
    const run = sh(['ip', 'netns', 'exec', ns, process.execPath, fixture], 40_000);
    assert.ok(run.ok, `fixture: ${run.err}`);
    const r = JSON.parse(run.out.trim()) as { queued: number; received: number; order_kept: boolean; completions_in_order: boolean; send_errors: number; batch_sent: number };
    assert.ok(r.queued >= 100, `the kernel said EAGAIN and most own packets waited in the lane's queue (${r.queued} of 400)`);
    assert.equal(r.received, 404, 'nothing lost');
    assert.equal(r.order_kept, true, 'the wire order is the order handed to the lane, REPLYs included');
    assert.equal(r.completions_in_order, true, 'each own packet completed, in order, without an error');
    assert.equal(r.send_errors, 0);
    assert.equal(r.batch_sent, 1, "the REPLY batch's send completed");
  } finally {
    sh(['ip', 'netns', 'del', ns]);
  }
});
