/**
 * `dtmesh serve` flags taking effect on real traffic (README "Commands"), the restart
 * fence across a restart on the same state directory (PROTOCOL.md §5), IPv6, the
 * --metrics text, and a --stats-json that cannot be written. Every test drives the CLI
 * as a user would and sends datagrams over real UDP on loopback.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadRootKey } from '../../src/keys/keystore.js';
import { BatchLayout } from '../../src/pipeline/layout.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { cliPath, startServe, stateDir, TestPeer, until, wallUs, within } from '../helpers.js';

const base = (dir: string): string[] => ['--state-dir', dir, '--tenant', 't', '--agent', 'resp', '--peers', 'resp,prober', '--listen', '127.0.0.1:0'];

/** Serve with `extra` flags, run `traffic`, stop with SIGTERM; the --stats-json document. */
async function served(extra: string[], traffic: (peer: TestPeer, port: number, pid: number) => Promise<void>): Promise<{ stats: any; peer: TestPeer; out: string }> {
  const dir = stateDir();
  const statsPath = path.join(dir, 'stats.json');
  const srv = await startServe([...base(dir), '--stats-json', statsPath, ...extra]);
  const peer = await TestPeer.open(loadRootKey(dir), 't', 'prober', 'resp');
  try {
    await traffic(peer, srv.port, srv.child.pid!);
    assert.equal(await srv.stop(), 0, srv.err());
  } finally {
    peer.close();
    srv.child.kill('SIGKILL');
  }
  const stats = JSON.parse(fs.readFileSync(statsPath, 'utf8'));
  assert.equal(stats.received, stats.accepted + DROP_REASONS.reduce((a: number, r) => a + stats.dropped[r], 0), 'books balance');
  return { stats, peer, out: srv.out() };
}

/** Send each datagram and wait until serve has answered `replies` in all (or 300 ms more for drops). */
async function sendAll(peer: TestPeer, port: number, ds: Uint8Array[], replies: number): Promise<void> {
  for (const d of ds) await peer.send(d, port);
  await peer.waitFor(replies, 5000);
  await new Promise((r) => setTimeout(r, 300)); // a reply that should not come would have come by now (loopback RTT < 1 ms)
}

test('--replay-window 64 and the default (1024, MEASUREMENT.md §1): a reordered pair is accepted; strict (--replay-window 0) drops the late one as replay', async () => {
  const reordered = async (peer: TestPeer, port: number, replies: number): Promise<void> => {
    const n = peer.nonce;
    await sendAll(peer, port, [peer.packet({ nonce: n + 1n, probeId: 1 }), peer.packet({ nonce: n + 3n, probeId: 3 }), peer.packet({ nonce: n + 2n, probeId: 2 })], replies);
  };
  const windowed = await served(['--replay-window', '64'], (p, port) => reordered(p, port, 3));
  assert.deepEqual([windowed.stats.accepted, windowed.stats.dropped.replay], [3, 0], 'window: the late nonce is accepted');
  assert.deepEqual(windowed.peer.received.map((m) => parsePacket(m)!.probeId), [1, 3, 2]);
  const byDefault = await served([], (p, port) => reordered(p, port, 3));
  assert.deepEqual([byDefault.stats.accepted, byDefault.stats.dropped.replay], [3, 0], 'default: a window, the late nonce is accepted');
  assert.match(byDefault.out, /, replay window 1024\n/, 'the start line says so');
  const strict = await served(['--replay-window', '0'], (p, port) => reordered(p, port, 2));
  assert.match(strict.out, /, strict replay check\n/);
  assert.deepEqual([strict.stats.accepted, strict.stats.dropped.replay], [2, 1], 'strict: the late nonce is a replay');
  assert.deepEqual(strict.peer.received.map((m) => parsePacket(m)!.probeId), [1, 3]);
});

test('--clock-window-ms 100: a probe sent 1 s ago is stale; with the default 5 s window it is accepted', async () => {
  const traffic = (replies: number) => async (peer: TestPeer, port: number): Promise<void> => {
    // a fresh probe first: the sender then has a mark, so the restart fence does not apply to the old one
    await sendAll(peer, port, [peer.packet({ probeId: 1 }), peer.packet({ probeId: 2, sendTsUs: wallUs() - 1_000_000 })], replies);
  };
  const narrow = await served(['--clock-window-ms', '100'], traffic(1));
  assert.deepEqual([narrow.stats.accepted, narrow.stats.dropped.stale], [1, 1]);
  const wide = await served([], traffic(2));
  assert.deepEqual([wide.stats.accepted, wide.stats.dropped.stale], [2, 0]);
});

test('--max-datagram 100: a valid 101-byte probe is malformed, a 100-byte one accepted; by default 101 bytes are fine', async () => {
  const traffic = (replies: number) => (peer: TestPeer, port: number) => sendAll(peer, port, [peer.packet({ size: 100, probeId: 1 }), peer.packet({ size: 101, probeId: 2 })], replies);
  const small = await served(['--max-datagram', '100'], traffic(1));
  assert.deepEqual([small.stats.accepted, small.stats.dropped.malformed], [1, 1]);
  assert.deepEqual(small.peer.received.map((m) => m.length), [100]);
  const dflt = await served([], traffic(2));
  assert.deepEqual([dflt.stats.accepted, dflt.stats.dropped.malformed], [2, 0]);
});

test('--batch reaches the engine: --batch 4096 maps a batch ring of 8 × 4096 slots (VmSize grows by its size) and both --batch 1 and --batch 4096 answer a 2,000-probe burst in order', { skip: process.platform !== 'linux' && 'reads /proc/PID/status' }, async () => {
  // No traffic pattern tells the batch size apart reliably on loopback (small batches are
  // verified inline and recycled at once), so the test looks where the size must show: the
  // SharedArrayBuffer ring is allocated once at start, 8 batches (1 worker) × slots × 2 × 2 KiB.
  const vmSizeMb = (pid: number): number => Number(/VmSize:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  const ringMb = (slots: number): number => new BatchLayout(8, slots, 2048).byteLength / 2 ** 20;
  const sizes: number[] = [];
  for (const batch of [1, 4096]) {
    const r = await served(['--workers', '1', '--batch', String(batch)], async (peer, port, pid) => {
      sizes.push(vmSizeMb(pid));
      for (let i = 0; i < 2000; i++) {
        peer.socket.send(peer.packet({ probeId: i }), port, '127.0.0.1');
        if (i % 200 === 199) await peer.waitFor(i - 100, 2000);
      }
      await peer.waitFor(2000, 5000);
    });
    assert.deepEqual([r.stats.received, r.stats.accepted, r.stats.dropped.replay], [2000, 2000, 0], `--batch ${batch}: every probe accepted`);
    assert.deepEqual(r.peer.received.map((m) => parsePacket(m)!.probeId), Array.from({ length: 2000 }, (_, i) => i));
  }
  const grew = sizes[1]! - sizes[0]!;
  const want = ringMb(4096) - ringMb(1);
  process.stdout.write(`# --batch 1 VmSize ${sizes[0]!.toFixed(0)} MB, --batch 4096 ${sizes[1]!.toFixed(0)} MB; ring ${want.toFixed(0)} MB\n`);
  // other virtual reservations of two fresh processes differ by a few MB; the ring is 135 MB
  assert.ok(grew > want * 0.8 && grew < want * 1.5, `VmSize grew ${grew.toFixed(0)} MB for a ${want.toFixed(0)} MB ring`);
});

test('restart of serve on the same state dir: a probe captured before the restart is stale in the new process (restart fence); reply nonces after the restart are larger', async () => {
  const dir = stateDir();
  const statsPath = path.join(dir, 'stats.json');
  const peer = await TestPeer.open(loadRootKey(dir), 't', 'prober', 'resp');
  try {
    const first = await startServe([...base(dir)]);
    const captured = peer.packet({ probeId: 1 });
    await sendAll(peer, first.port, [captured, peer.packet({ probeId: 2 })], 2);
    assert.equal(peer.received.length, 2, 'the first process answered');
    assert.equal(await first.stop(), 0);
    const before = peer.received.map((m) => parsePacket(m)!.nonce);
    const second = await startServe([...base(dir), '--stats-json', statsPath]);
    await sendAll(peer, second.port, [captured, peer.packet({ probeId: 3 })], 3);
    assert.equal(await second.stop(), 0);
    const s = JSON.parse(fs.readFileSync(statsPath, 'utf8'));
    assert.deepEqual([s.received, s.accepted, s.dropped.stale, s.dropped.replay], [2, 1, 1, 0], 'the replayed capture is stale, the fresh probe accepted');
    assert.deepEqual(peer.received.map((m) => parsePacket(m)!.probeId), [1, 2, 3], 'no reply to the replayed capture');
    const after = parsePacket(peer.received[2]!)!.nonce;
    assert.ok(after > before[1]! && before[1]! > before[0]!, `reply nonces keep increasing across the restart (${before.join(', ')} then ${after})`);
  } finally {
    peer.close();
  }
});

test('IPv6: serve on [::1] answers `dtmesh probe` on [::1]', async (t) => {
  const v6 = dgram.createSocket('udp6');
  const ok = await new Promise<boolean>((r) => {
    v6.once('error', () => r(false));
    v6.bind(0, '::1', () => r(true));
  });
  v6.close();
  if (!ok) {
    t.skip('::1 is not available on this machine (bind failed)');
    return;
  }
  const dir = stateDir();
  const probeDir = stateDir(dir);
  const statsPath = path.join(dir, 'stats.json');
  const srv = await startServe(['--state-dir', dir, '--tenant', 't', '--agent', 'resp', '--peers', 'prober', '--listen', '[::1]:0', '--stats-json', statsPath]);
  try {
    assert.match(srv.out(), /listening on \[::1\]:\d+/);
    const json = path.join(probeDir, 'probe.json');
    const r = spawnSync(process.execPath, [cliPath, 'probe', '--state-dir', probeDir, '--tenant', 't', '--agent', 'prober', '--target', `resp@[::1]:${srv.port}`, '--count', '200', '--rate', '2000', '--warmup', '0', '--json', json], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.deepEqual([rep.sent, rep.received, rep.lost, rep.duplicates], [200, 200, 0, 0]);
    assert.equal(await srv.stop(), 0);
    const s = JSON.parse(fs.readFileSync(statsPath, 'utf8'));
    assert.deepEqual([s.received, s.accepted, s.replied], [200, 200, 200]);
  } finally {
    srv.child.kill('SIGKILL');
  }
});

test('--metrics: the Prometheus text over HTTP counts exactly the traffic sent', async () => {
  const dir = stateDir();
  const srv = await startServe([...base(dir), '--metrics', '127.0.0.1:0']);
  const peer = await TestPeer.open(loadRootKey(dir), 't', 'prober', 'resp');
  const stranger = await TestPeer.open(loadRootKey(dir), 't', 'stranger', 'resp');
  try {
    await until(5000, () => /metrics at http:\/\/[^\s]+\/metrics/.test(srv.out()), 'the metrics line');
    const url = /metrics at (http:\/\/[^\s]+\/metrics)/.exec(srv.out())![1]!;
    const ds: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) ds.push(peer.packet({ probeId: i }));
    for (let i = 0; i < 5; i++) ds.push(stranger.packet());
    for (let i = 0; i < 3; i++) {
      const d = peer.packet();
      d[60]! ^= 1;
      ds.push(d);
    }
    ds.push(ds[0]!); // a replay
    await sendAll(peer, srv.port, ds, 20);
    const res = await within(5000, fetch(url), `GET ${url}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (line: string): number => {
      const m = new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(text);
      assert.ok(m, `metrics has ${line}`);
      return Number(m[1]);
    };
    assert.equal(value('dtmesh_received_total'), 29);
    assert.equal(value('dtmesh_accepted_total'), 20);
    assert.equal(value('dtmesh_replied_total'), 20);
    const want: Record<string, number> = { unknown_sender: 5, bad_mac: 3, replay: 1 };
    for (const r of DROP_REASONS) assert.equal(value(`dtmesh_dropped_total{reason="${r}"}`), want[r] ?? 0, r);
    assert.equal(value('dtmesh_verdict_latency_seconds_count'), 29);
    assert.equal((await within(5000, fetch(url.replace('/metrics', '/nope')), 'GET /nope')).status, 404);
    assert.equal(await srv.stop(), 0);
  } finally {
    peer.close();
    stranger.close();
    srv.child.kill('SIGKILL');
  }
});

test('--stats-json whose directory is removed during the run: serve still serves, then at shutdown prints the summary and one clear line naming the path, exit 1, no stack trace (a path bad from the start fails before listening: cli.test.ts)', async () => {
  const dir = stateDir();
  const outDir = path.join(dir, 'out');
  fs.mkdirSync(outDir);
  const bad = path.join(outDir, 'stats.json');
  const srv = await startServe([...base(dir), '--stats-json', bad]);
  const peer = await TestPeer.open(loadRootKey(dir), 't', 'prober', 'resp');
  try {
    await sendAll(peer, srv.port, [peer.packet()], 1);
    assert.equal(peer.received.length, 1, 'served until shutdown');
    fs.rmSync(outDir, { recursive: true });
    const code = await srv.stop();
    assert.equal(code, 1, 'a runtime error: exit 1');
    const err = srv.err();
    assert.equal(err.trim().split('\n').length, 1, `one line: ${err}`);
    assert.doesNotMatch(err, /\n\s+at /);
    assert.equal(err.trim(), `dtmesh serve: cannot write --stats-json ${bad}: ENOENT`);
    assert.match(srv.out(), /dtmesh serve: received 1, accepted 1, replied 1/, 'the final figures are not lost: printed instead');
  } finally {
    peer.close();
  }
});
