/**
 * `sockets` / `serve --sockets N` (src/pipeline/thread-lane.ts): extra socket threads hand their
 * batches to the one in-order collector and send the REPLYs it marks. Real UDP on
 * 127.0.0.1, real worker threads. On Node without `reusePort` the hand-off is tested with
 * each socket thread on its own port (`separatePorts`); the shared port itself is tested
 * where Node has `reusePort` (≥ 22.12 / 23.1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { reusePortSupported } from '../../src/pipeline/socket-thread.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { probeRun, TestPeer } from '../helpers.js';

const tenant = 'tenant-sockets';
const root = new Uint8Array(randomBytes(32));
const sumDrops = (d: Record<string, number>): number => DROP_REASONS.reduce((a, r) => a + d[r]!, 0);

function replyNoncesIncreasing(peer: TestPeer, with_: string): void {
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, peer.agent, with_), state, 0);
  let last = -1n;
  peer.received.forEach((m, i) => {
    const p = parsePacket(m)!;
    assert.equal(p.type, 2, 'REPLY');
    assert.equal(p.probeId, i, `${peer.agent}: replies in probe order`);
    assert.ok(p.nonce > last, `${peer.agent}: reply nonces strictly increasing`);
    last = p.nonce;
    assert.ok(macVerify(state, 0, null, 0, m, 0, m.length), `${peer.agent}: reply MAC verifies under the pair key`);
  });
}

test('reusePort is known to exist from Node 22.12 and 23.1 on', () => {
  for (const [v, ok] of [['20.20.2', false], ['22.11.0', false], ['22.12.0', true], ['22.23.3', true], ['23.0.0', false], ['23.1.0', true], ['24.0.0', true]] as const) {
    assert.equal(reusePortSupported(v), ok, v);
  }
});

test('3 sockets (each on its own port here): every socket answers its peer, one replay filter spans all sockets, books exact', async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p0', 'p1', 'p2'], workers: 2, sockets: 3, separatePorts: true });
  const peers = await Promise.all(['p0', 'p1', 'p2'].map((a) => TestPeer.open(root, tenant, a, 'resp')));
  try {
    assert.equal(engine.sockets, 3);
    assert.equal(engine.socketsNote, null);
    const ports = [engine.address.port, ...engine.socketThreadPorts()];
    assert.equal(new Set(ports).size, 3, 'three distinct ports');
    const N = 3000;
    await Promise.all(peers.map((p, k) => probeRun(p, ports[k]!, N)));
    for (const p of peers) {
      assert.equal(p.received.length, N, `${p.agent}: every probe answered`);
      replyNoncesIncreasing(p, 'resp');
    }
    assert.ok(engine.threadBatches > 0, 'socket threads handed batches over');
    // a PROBE accepted on socket 1, replayed verbatim to socket 0 and socket 2: one filter, so both are replays
    const captured = peers[1]!.packet({ probeId: 9 });
    await peers[1]!.send(captured, ports[1]!);
    await peers[1]!.waitFor(N + 1, 5000);
    await peers[1]!.send(captured, ports[0]!);
    await peers[1]!.send(captured, ports[2]!);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(peers[1]!.received.length, N + 1, 'replays are not answered on any socket');
    const s = await engine.close();
    assert.equal(s.received, 3 * N + 3);
    assert.equal(s.accepted, 3 * N + 1);
    assert.equal(s.replied, 3 * N + 1);
    assert.equal(s.dropped.replay, 2);
    assert.equal(s.received, s.accepted + sumDrops(s.dropped));
    assert.equal(s.latency_us.count, s.received - s.dropped.overload);
  } finally {
    for (const p of peers) p.close();
    await engine.close();
  }
});

test('3 sockets: closing during a burst at every socket drains them all, received = accepted + Σ dropped', async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p0', 'p1', 'p2'], workers: 2, sockets: 3, separatePorts: true, batches: 2, batchSize: 64 });
  const peers = await Promise.all(['p0', 'p1', 'p2'].map((a) => TestPeer.open(root, tenant, a, 'resp')));
  try {
    const ports = [engine.address.port, ...engine.socketThreadPorts()];
    const N = 4000;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < N; i++) for (let k = 0; k < 3; k++) sends.push(peers[k]!.send(peers[k]!.packet({ probeId: i }), ports[k]!));
    await Promise.all(sends.slice(0, 3 * N / 2));
    const s = await engine.close(); // mid-burst: the rest arrives while draining or not at all
    await Promise.all(sends);
    assert.ok(s.received > 0 && s.accepted > 0, `traffic was served (${s.received} received)`);
    assert.equal(s.received, s.accepted + sumDrops(s.dropped), JSON.stringify(s));
    assert.equal(s.replied, s.accepted);
    assert.equal(s.dropped.replay, 0, 'one sender per socket never looks replayed');
  } finally {
    for (const p of peers) p.close();
    await engine.close();
  }
});

test('without reusePort, sockets > 1 serves on one socket and says so in one line', { skip: reusePortSupported() && `Node ${process.version} has reusePort` }, async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p0'], workers: 1, sockets: 4 });
  try {
    assert.equal(engine.sockets, 1);
    assert.match(engine.socketsNote ?? '', /^4 sockets asked for, but Node v[\d.]+ has no reusePort \(Node >= 22\.12 or >= 23\.1\): serving on one socket$/);
    const peer = await TestPeer.open(root, tenant, 'p0', 'resp');
    await probeRun(peer, engine.address.port, 100);
    peer.close();
    assert.equal(peer.received.length, 100);
  } finally {
    await engine.close();
  }
});

test('with reusePort, 2 sockets share the listen port and flows from 16 source ports reach both', { skip: !reusePortSupported() && `Node ${process.version} has no reusePort (needs >= 22.12 / 23.1)` }, async () => {
  const agents = Array.from({ length: 16 }, (_, i) => `src${i}`);
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: agents, workers: 2, sockets: 2 });
  const peers = await Promise.all(agents.map((a) => TestPeer.open(root, tenant, a, 'resp')));
  try {
    assert.equal(engine.sockets, 2);
    assert.deepEqual(engine.socketThreadPorts(), [engine.address.port], 'the socket thread is bound to the listen port');
    await Promise.all(peers.map((p) => probeRun(p, engine.address.port, 300, 32))); // 16 × 32 under one socket's ring: nothing shed as overload
    for (const p of peers) replyNoncesIncreasing(p, 'resp');
    assert.ok(engine.threadBatches > 0, 'the kernel spread some flows to the socket thread');
    const s = await engine.close();
    assert.equal(s.received, 16 * 300);
    assert.equal(s.accepted, 16 * 300);
  } finally {
    for (const p of peers) p.close();
    await engine.close();
  }
});
