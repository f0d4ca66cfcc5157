/**
 * The native lane's addon entry points against misuse and odd input (src/native/lane.c,
 * src/pipeline/native-lane.ts), over loopback only:
 *
 * - a send before `laneAttach` is refused (a RangeError from C; `false` from the lane),
 *   never a write through the counters it does not have yet — run in a child process,
 *   since the old failure was a segfault;
 * - IPv6 scope ids (`::1%lo`, `fe80::1%lo`) parse as Node's net.isIP and dgram take them,
 *   for bind and send, and a link-local source comes back with its `%scope` as dgram's
 *   rinfo has it (that last part in a network namespace whose loopback carries fe80::1
 *   and fe80::2: needs root and `ip`, skipped with a printed reason otherwise). Only `lo`;
 * - the receive buffer note compares the granted half of the SO_RCVBUF the kernel reports
 *   (a pure function; and as `nobody` in a child, where SO_RCVBUFFORCE is not allowed);
 * - a REPLY slot with a length that does not fit is counted once, however often a retry
 *   scans past it.
 *
 * With `CI` set these fail (never skip) when the native lane was not built.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DtmeshError } from '../../src/errors.js';
import { DgramLane } from '../../src/pipeline/dgram-lane.js';
import { NativeLane } from '../../src/pipeline/native-lane.js';
import { reportedRecvBufferNote } from '../../src/observe/kernel-drops.js';
import { F_SEND, M_FLAGS, M_LENGTH } from '../../src/pipeline/layout.js';
import { BatchRing } from '../../src/pipeline/ring.js';
import { nativeLane, nativeLaneStatus } from '../../src/protocol/native.js';
import { RecordingSink, until, within } from '../helpers.js';

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

const laneOpts = (host: string) => ({ index: 0, ring: new BatchRing(2, 4, 256), host, port: 0, reusePort: false, recvBufferBytes: 1 << 16 });
/** The one-line error `open` throws, or 'bound'. */
async function openOutcome(open: () => Promise<{ close(): Promise<void> }>): Promise<string> {
  try {
    const lane = await open();
    await lane.close();
    return 'bound';
  } catch (e) {
    assert.ok(e instanceof DtmeshError, `a one-line DtmeshError, not ${String(e)}`);
    return e.message;
  }
}
/** The outcome of one own packet: refused at once, or its callback's error ('left' when none). */
function sendOutcome(lane: NativeLane, port: number, host: string): Promise<string> {
  return within(
    5000,
    new Promise<string>((resolve) => {
      if (!lane.sendPacket(Buffer.alloc(60, 1), port, host, (err) => resolve(err === null ? 'left' : `error: ${err.message}`))) resolve('refused at once');
    }),
    `own packet to ${host}`,
  );
}
const dgramOutcome = (s: dgram.Socket, port: number, host: string): Promise<string> =>
  within(5000, new Promise<string>((resolve) => s.send(Buffer.alloc(60, 1), port, host, (err) => resolve(err ? `error: ${(err as NodeJS.ErrnoException).code}` : 'left'))), `dgram to ${host}`);

test('native lane: IPv6 %scope is taken like Node takes it — bind ::1%lo, send to ::1%lo, a send to fe80::1%lo goes to the kernel as dgram\'s does, bind fe80::1%lo fails as dgram\'s does', { skip }, async () => {
  // bind: the kernel ignores the scope of a non-link-local address; a link-local one not on lo is "not an address of this machine" on either lane
  assert.equal(await openOutcome(() => NativeLane.open(laneOpts('::1%lo'))), 'bound', 'bind ::1%lo');
  for (const host of ['fe80::1%lo']) {
    const dg = await openOutcome(() => DgramLane.open(laneOpts(host)));
    assert.notEqual(dg, 'bound', `dgram cannot bind ${host} here either`);
    assert.equal(await openOutcome(() => NativeLane.open(laneOpts(host))), dg, `bind ${host}: the same one line as the dgram lane`);
  }
  assert.match(await openOutcome(() => NativeLane.open(laneOpts('fe80::1%no-such-if0'))), /no-such-if0: its %scope names no network interface/);

  const lane = await NativeLane.open(laneOpts('::1'));
  lane.start(new RecordingSink());
  const peer = dgram.createSocket('udp6');
  await new Promise<void>((r) => peer.bind(0, '::1', () => r()));
  const got: string[] = [];
  peer.on('message', (_m, r) => got.push(r.address));
  try {
    assert.equal(await sendOutcome(lane, peer.address().port, '::1%lo'), 'left', 'to ::1%lo');
    await until(5000, () => got.length === 1, 'the datagram sent to ::1%lo');
    // whatever the kernel says about fe80::1 out of lo (no route here: ENETUNREACH), both lanes hear the same
    const dg = await dgramOutcome(peer, 9, 'fe80::1%lo');
    const nat = await sendOutcome(lane, 9, 'fe80::1%lo');
    assert.notEqual(nat, 'refused at once', 'fe80::1%lo is an address: it goes to the kernel');
    assert.equal(nat === 'left' ? 'left' : /\((E[A-Z]+)\)/.exec(nat)?.[1], dg === 'left' ? 'left' : dg.slice('error: '.length), `native "${nat}" vs dgram "${dg}"`);
    assert.equal(await sendOutcome(lane, 9, 'fe80::1%no-such-if0'), 'refused at once', 'a scope that names no interface: not an address here');
  } finally {
    peer.close();
    await lane.close();
  }
});

/** Why the link-local round trip cannot run here, or null. */
function netnsWhyNot(): string | null {
  if (skip) return skip;
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no iproute2 (ip)';
  return null;
}
const netnsReason = netnsWhyNot();
if (netnsReason !== null) process.stdout.write(`# native-lane-guards: link-local round trip SKIPPED: ${netnsReason}\n`);

test('native lane: a link-local source keeps its %scope (as dgram\'s rinfo) and a REPLY goes back to it — netns loopback with fe80::1 and fe80::2', { skip: netnsReason ?? false }, () => {
  const ns = `dtll-${process.pid % 100_000}`;
  const sh = (args: string[]): { ok: boolean; err: string } => {
    const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 15_000 });
    return { ok: r.status === 0, err: r.stderr ?? '' };
  };
  sh(['ip', 'netns', 'del', ns]);
  try {
    for (const cmd of [
      ['ip', 'netns', 'add', ns],
      ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', ns, 'addr', 'add', 'fe80::1/64', 'dev', 'lo', 'nodad'],
      ['ip', '-n', ns, 'addr', 'add', 'fe80::2/64', 'dev', 'lo', 'nodad'],
    ]) {
      const r = sh(cmd);
      assert.ok(r.ok, `${cmd.join(' ')}: ${r.err}`);
    }
    const code = `
      import * as dgram from 'node:dgram';
      import { NativeLane } from ${JSON.stringify(laneJs)};
      import { BatchRing } from ${JSON.stringify(ringJs)};
      setTimeout(() => { console.error('timed out'); process.exit(3); }, 10000).unref();
      const ring = new BatchRing(2, 4, 256);
      const lane = await NativeLane.open({ index: 0, ring, host: 'fe80::1%lo', port: 0, reusePort: false, recvBufferBytes: 1 << 16 });
      let slot = -1;
      lane.start({ filled: (_l, b, n) => { slot = ring.layout.slotNumber(b, 0); }, takePartial: () => true, sent() {}, drained() {}, failed() {} });
      const peer = dgram.createSocket('udp6');
      await new Promise((r) => peer.bind(0, 'fe80::2%lo', r));
      const back = new Promise((r) => peer.once('message', (m, ri) => r({ m: m[0], from: ri.address })));
      peer.send(Buffer.from([7]), lane.port, 'fe80::1%lo');
      while (slot < 0) await new Promise((r) => setTimeout(r, 5));
      const src = lane.slotAddress(slot);
      const sent = await new Promise((r) => { if (!lane.sendPacket(Buffer.from([8]), src.port, src.address, (e) => r(e ? e.message : 'left'))) r('refused at once'); });
      const reply = await back;
      process.stdout.write(JSON.stringify({ bound: lane.address().address, src: src.address, peer: peer.address().address, sent, reply }));
      peer.close();
      await lane.close();
    `;
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout.trim()) as { bound: string; src: string; peer: string; sent: string; reply: { m: number; from: string } };
    assert.equal(o.bound, 'fe80::1%lo', 'the bound address with its scope, as dgram\'s address()');
    assert.equal(o.src, o.peer, 'the source address as the peer\'s own dgram socket names it');
    assert.equal(o.src, 'fe80::2%lo');
    assert.equal(o.sent, 'left');
    assert.deepEqual(o.reply, { m: 8, from: 'fe80::1%lo' }, 'sent back to the address slotAddress gave');
  } finally {
    sh(['ip', 'netns', 'del', ns]);
  }
});

test('reportedRecvBufferNote (both lanes): compares the granted half of the SO_RCVBUF the kernel reports — a cap between half the request and the request is named', () => {
  const kib = 1024;
  assert.equal(reportedRecvBufferNote(4096 * kib, 8192 * kib, 212_992), null, "root's SO_RCVBUFFORCE passed rmem_max: granted in full");
  assert.equal(reportedRecvBufferNote(300_000, 600_000, null), null, 'granted in full, rmem_max unknown');
  const capped = reportedRecvBufferNote(300_000, 2 * 212_992, 212_992);
  assert.match(capped ?? '', /capped by net\.core\.rmem_max = 212992 bytes \(asked for 300000, got 212992\)/, 'reported 425984 ≥ 300000, granted 212992 < 300000');
  assert.match(reportedRecvBufferNote(300_000, 2 * 212_992, null) ?? '', /is 212992 bytes, below the 300000 asked for/, 'rmem_max unknown: the granted size');
  assert.match(reportedRecvBufferNote(8192 * kib, 2 * 4096 * kib, 4096 * kib) ?? '', /rmem_max=8388608/, 'well past the cap');
});

/**
 * How to start a child without CAP_NET_ADMIN (so SO_RCVBUFFORCE is refused, as for any
 * unprivileged user): as root with that capability out of its bounding set (util-linux
 * setpriv: the project stays readable wherever the clone is), else as `nobody` when it can
 * read the project (a private parent directory, as a fresh CI clone may have, hides it).
 */
function unprivilegedChild(): { how: { prefix: string[]; uid?: number; gid?: number } } | { why: string } {
  if (skip) return { why: skip };
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { why: 'not root on Linux (cannot start a child without CAP_NET_ADMIN)' };
  if (spawnSync('setpriv', ['--bounding-set=-net_admin', '--', process.execPath, '-e', ''], { timeout: 10_000 }).status === 0) return { how: { prefix: ['setpriv', '--bounding-set=-net_admin', '--'] } };
  const readable = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(laneJs)}, require('fs').constants.R_OK)`], { timeout: 10_000, uid: 65534, gid: 65534, cwd: '/' });
  if (readable.status !== 0) return { why: 'no setpriv (util-linux), and nobody cannot read the project (a private parent directory)' };
  return { how: { prefix: [], uid: 65534, gid: 65534 } };
}
const unpriv = unprivilegedChild();
const unprivReason = 'why' in unpriv ? unpriv.why : null;
if (unprivReason !== null) process.stdout.write(`# native-lane-guards: unprivileged receive buffer test SKIPPED: ${unprivReason}\n`);

test('native lane, without CAP_NET_ADMIN: a receive buffer capped by net.core.rmem_max between half the request and the request gets its note', { skip: unprivReason ?? false }, () => {
  const code = `
    import * as fs from 'node:fs';
    import { NativeLane } from ${JSON.stringify(laneJs)};
    import { BatchRing } from ${JSON.stringify(ringJs)};
    const rmemMax = Number(fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const asked = Math.floor(rmemMax * 1.5); // above the cap, below twice it
    const lane = await NativeLane.open({ index: 0, ring: new BatchRing(2, 4, 256), host: '127.0.0.1', port: 0, reusePort: false, recvBufferBytes: asked });
    process.stdout.write(JSON.stringify({ rmemMax, asked, note: lane.recvBufferNote }));
    await lane.close();
  `;
  const how = 'how' in unpriv ? unpriv.how : { prefix: [] };
  const [cmd, ...pre] = [...how.prefix, process.execPath];
  const r = spawnSync(cmd!, [...pre, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000, cwd: '/', ...(how.uid !== undefined ? { uid: how.uid, gid: how.gid } : {}) });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { rmemMax: number; asked: number; note: string | null };
  assert.ok(o.note !== null && o.note.includes(`net.core.rmem_max = ${o.rmemMax}`), `asked ${o.asked} with rmem_max ${o.rmemMax} without CAP_NET_ADMIN: a note, got ${o.note}`);
});

test('native lane: a REPLY slot whose length does not fit its area is one send error, however often a retry scans past it (would-block twice)', { skip }, async () => {
  const ring = new BatchRing(2, 4, 256);
  const lane = await NativeLane.open({ ...laneOpts('127.0.0.1'), ring });
  const sink = new RecordingSink();
  lane.start(sink);
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  const got: number[] = [];
  peer.on('message', (m) => got.push(m[0]!));
  try {
    for (let i = 0; i < 4; i++) await new Promise<void>((r) => peer.send(Buffer.from([i]), lane.port, '127.0.0.1', () => r()));
    await until(5000, () => sink.batches.length === 1, 'a full batch');
    const [b] = sink.batches[0]!;
    for (const i of [0, 1, 2]) {
      const s = ring.layout.slotNumber(b, i);
      const mi = ring.layout.metaIndex(s);
      ring.ints[mi + M_FLAGS] = ring.ints[mi + M_FLAGS]! | F_SEND;
      if (i === 1) ring.ints[mi + M_LENGTH] = ring.layout.slotBytes + 1; // does not fit its reply area
      else ring.bytes.copyWithin(ring.layout.replyOffset(s), ring.layout.datagramOffset(s), ring.layout.datagramOffset(s) + 1);
    }
    lane.injectSendFaults(2, 0); // the first two sendmmsg calls would block: the batch is scanned three times
    lane.sendBatch(b);
    await until(5000, () => sink.sentCount === 1 && got.length === 2, 'the batch sent once writable');
    assert.deepEqual(got, [0, 2], 'the two that fit, in slot order');
    assert.equal(lane.counts.sendErrors, 1, 'the one that does not fit, counted once');
  } finally {
    peer.close();
    await lane.close();
  }
});
