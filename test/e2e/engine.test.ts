/**
 * The engine end to end: real UDP on 127.0.0.1, real piscina workers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../src/engine.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macRoute, macVerify } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { OFF_TYPE, TYPE_PROBE, TYPE_REPLY } from '../../src/protocol/wire.js';
import { HANG_PROBE_ID } from '../fixtures/hang-worker.js';
import { assertMacRoute, TestPeer, until, wallUs, withHangRelease } from '../helpers.js';

const tenant = 'tenant-e2e';
const root = new Uint8Array(randomBytes(32));
const hangWorker = fileURLToPath(new URL('../fixtures/hang-worker.js', import.meta.url));

test(`MAC route under test: ${macRoute()}`, () => {
  assertMacRoute();
});

function sumDrops(d: Record<string, number>): number {
  return DROP_REASONS.reduce((a, r) => a + d[r]!, 0);
}

for (const [inlineBelow, path] of [[0, 'every batch through the pool'], [undefined, 'small batches verified inline (default)']] as const) {
test(`10,000 in-order probes from one sender through 2 workers (${path}): 10,000 verified replies, no replay drop, reply nonces strictly increasing, each reply as long as its request`, async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['resp', 'prober'], workers: 2, inlineBelow });
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, 'prober', 'resp'), state, 0);
  try {
    const N = 10_000;
    const sizes: number[] = [];
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < N; i++) {
      // keep at most 512 probes outstanding so no socket buffer overflows
      while (i - peer.received.length >= 512 && Date.now() < deadline) await peer.waitFor(i - 511, 1000);
      const size = 50 + (i % 251);
      sizes.push(size);
      await peer.send(peer.packet({ probeId: i, size }), engine.address.port);
    }
    assert.equal(await peer.waitFor(N, 20_000), N, 'every probe answered');
    let last = -1n;
    peer.received.forEach((m, i) => {
      const p = parsePacket(m)!;
      assert.equal(p.type, 2, 'REPLY');
      assert.equal(p.probeId, i, 'replies in probe order');
      assert.equal(m.length, sizes[i], 'reply exactly as long as its request');
      assert.ok(p.nonce > last, 'reply nonces strictly increasing');
      last = p.nonce;
      assert.ok(macVerify(state, 0, null, 0, m, 0, m.length), 'reply MAC verifies under the pair key');
    });
    const s = await engine.close();
    if (inlineBelow === 0) assert.ok(engine.pooledBatches > 0 && engine.inlineBatches === 0, 'every batch went through the pool');
    else assert.ok(engine.inlineBatches > 0, 'small batches were verified inline');
    assert.equal(s.received, N);
    assert.equal(s.accepted, N);
    assert.equal(s.replied, N);
    assert.equal(s.dropped.replay, 0);
    assert.equal(sumDrops(s.dropped), 0);
    assert.equal(s.latency_us.count, N);
  } finally {
    peer.close();
    await engine.close();
  }
});
}

test('a mixed stream of every drop reason: each counter exact, nothing sent back for any drop', async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['resp', 'prober', 'silent'], workers: 2 });
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  const stranger = await TestPeer.open(root, tenant, 'stranger', 'resp'); // not in the roster
  const otherTenant = await TestPeer.open(new Uint8Array(randomBytes(32)), 'tenant-other', 'prober', 'resp');
  try {
    const port = engine.address.port;
    const valid = peer.packet({ probeId: 1 });
    const badMac = peer.packet({ probeId: 2 });
    badMac[badMac.length - 3]! ^= 0x10;
    const plan: Array<[string, Uint8Array]> = [
      ['accept', valid],
      ['replay', valid],
      ['malformed', valid.subarray(0, 49)],
      ['malformed', (() => { const d = peer.packet(); d[0] = 0x45; return d; })()],
      ['malformed', peer.packet({ type: 4 })],
      ['malformed', peer.packet({ type: 3, size: 60 })], // PUNCH_HINT whose payload does not parse
      ['downgrade', peer.packet({ ver: 0 })],
      ['downgrade', peer.packet({ ver: 2 })],
      ['reflected', peer.packet({ senderId: engine.selfId })],
      ['unknown_sender', stranger.packet()],
      ['bad_mac', badMac],
      ['bad_mac', otherTenant.packet()], // same agent names, another tenant's keys
      ['stale', peer.packet({ sendTsUs: wallUs() - 6_000_000 })],
      ['stale', peer.packet({ sendTsUs: wallUs() + 6_000_000 })],
      ['replay', peer.packet({ nonce: 5n })],
      ['accept', peer.packet({ probeId: 3 })],
    ];
    for (const [, d] of plan) await peer.send(d, port);
    await peer.waitFor(2, 5000);
    await new Promise((r) => setTimeout(r, 300)); // anything else would have arrived by now
    const s = await engine.close();
    const want: Record<string, number> = { accept: 0 };
    for (const r of DROP_REASONS) want[r] = 0;
    for (const [v] of plan) want[v]!++;
    assert.equal(s.received, plan.length);
    assert.equal(s.accepted, want.accept);
    for (const r of DROP_REASONS) assert.equal(s.dropped[r], want[r], `dropped.${r}`);
    assert.equal(peer.received.length, 2, 'exactly the two accepted probes were answered');
    assert.deepEqual(peer.received.map((m) => parsePacket(m)!.probeId), [1, 3]);
    assert.equal(stranger.received.length + otherTenant.received.length, 0, 'nothing sent to the senders of dropped probes');
  } finally {
    peer.close();
    stranger.close();
    otherTenant.close();
    await engine.close();
  }
});

test('when every batch is in flight, datagrams are shed as overload and the books still balance', async () => {
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['resp', 'prober'], workers: 1, batches: 2, batchSize: 1, inlineBelow: 0 });
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const port = engine.address.port;
    const N = 3000;
    for (let i = 0; i < N; i++) peer.socket.send(peer.packet({ probeId: i }), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 500));
    const s = await engine.close();
    assert.ok(s.dropped.overload > 0, `overload counted (${s.dropped.overload})`);
    assert.equal(s.received, s.accepted + sumDrops(s.dropped), 'received = accepted + Σ dropped');
    assert.equal(s.replied, s.accepted);
    assert.equal(s.dropped.replay, 0, 'shedding never reorders: no false replay');
  } finally {
    peer.close();
    await engine.close();
  }
});

test('construction validates every option and names it; invalid roster updates change nothing', async () => {
  const base = { rootKey: root, tenant, agent: 'resp', peers: ['b'] };
  const bad: Array<[object, RegExp]> = [
    [{ workers: 0 }, /options\.workers must be an integer from 1 to 64/],
    [{ batchSize: 5000 }, /options\.batchSize/],
    [{ replayWindow: 100 }, /options\.replayWindow/],
    [{ maxDatagram: 49 }, /options\.maxDatagram/],
    [{ clockWindowMs: 0 }, /options\.clockWindowMs/],
    [{ listen: 'nowhere' }, /options\.listen/],
    [{ tenant: 'a|b' }, /options\.tenant/],
    [{ peers: ['ok', 'bad\u0001'] }, /options\.peers\[1\]/],
    [{ rootKey: new Uint8Array(31) }, /root key must be exactly 32 bytes/],
    [{ punch: { punchBurst: 0 } }, /options\.punchBurst/],
  ];
  for (const [o, re] of bad) await assert.rejects(Engine.create({ ...base, ...o }), re, JSON.stringify(o));
  const engine = await Engine.create({ ...base, workers: 1 });
  try {
    assert.throws(() => engine.setPeers(['c', '']), TypeError);
    assert.deepEqual(engine.peers, ['b']);
    engine.setPeers(['resp', 'c', 'c']);
    assert.deepEqual(engine.peers, ['c'], 'self ignored, duplicates folded');
  } finally {
    await engine.close();
  }
});

test('one outgoing nonce counter: REPLYs and the engine\'s own PROBEs to the same peer leave in strictly increasing nonce order', async () => {
  // pool path: a reply's nonce is reserved at dispatch and sent after the worker returns, so probes sent
  // meanwhile take later nonces and the reply must be re-signed. The first phase makes that happen for
  // certain: the hang fixture holds the batch of HANG_PROBE_ID until the test releases it, and the engine
  // sends its own PROBEs in between (left to the race of a load loop alone, CI once saw no overtaking).
  const { started: engine, release } = await withHangRelease(() => Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['prober'], workers: 2, inlineBelow: 0, workerFile: hangWorker, verifyTimeoutMs: 30_000 }));
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  try {
    const port = engine.address.port;
    const peerPort = peer.socket.address().port;
    // phase 1: one reply held in a worker while three own PROBEs leave
    await peer.send(peer.packet({ probeId: HANG_PROBE_ID }), port);
    await until(5000, () => engine.pooledBatches === 1, 'the held batch dispatched (its reply nonce reserved)');
    for (let k = 0; k < 3; k++) engine.sendProbe('prober', '127.0.0.1', peerPort, 2_000_000 + k, 60);
    assert.equal(await peer.waitFor(3, 5000), 3);
    assert.ok(peer.received.every((m) => m[OFF_TYPE] === TYPE_PROBE), 'the own PROBEs left while the reply was held');
    assert.equal(engine.resigned, 0);
    release();
    assert.equal(await peer.waitFor(4, 5000), 4);
    assert.equal(peer.received[3]![OFF_TYPE], TYPE_REPLY);
    assert.equal(engine.resigned, 1, 'the held reply, overtaken by three PROBEs, was re-signed under a fresh nonce');
    // phase 2: replies and own PROBEs interleaved under load, whatever the race gives
    const N = 3000;
    for (let i = 0; i < N; i++) {
      peer.socket.send(peer.packet({ probeId: i }), port, '127.0.0.1');
      if (i % 3 === 0) engine.sendProbe('prober', '127.0.0.1', peerPort, 1_000_000 + i, 60); // interleaved with replies in flight
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    const want = 4 + N + Math.ceil(N / 3);
    assert.equal(await peer.waitFor(want, 10_000), want);
    const state = new Int32Array(HMAC_STATE_WORDS);
    hmacPrecompute(derivePairKey(root, tenant, 'prober', 'resp'), state, 0);
    let last = -1n;
    for (const m of peer.received) {
      const p = parsePacket(m)!;
      assert.ok(p.nonce > last, 'strictly increasing on the wire, across PROBEs and REPLYs');
      assert.ok(macVerify(state, 0, null, 0, m, 0, m.length), 're-signed replies verify too');
      last = p.nonce;
    }
  } finally {
    release(); // never leave a worker held
    peer.close();
    await engine.close();
  }
});
