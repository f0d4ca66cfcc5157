/**
 * No datagram, peer or embedding app can crash or wedge the engine (PROTOCOL.md §4 u1 and
 * "a send the kernel refuses is counted", §3 nonce order across sockets, §1 heartbeats).
 * Real UDP on 127.0.0.1, real worker threads; the port-0 datagrams come through a raw
 * socket (test/fixtures/rawudp.py), as an on-path attacker would re-inject a captured
 * probe — skipped, with the reason printed, where the system refuses raw sockets.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSecretKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { Engine } from '../../src/engine.js';
import { initRootKey, loadRootKey, rootKeyPath, TENANT_FILE } from '../../src/keys/keystore.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { PunchPolicy } from '../../src/protocol/punch.js';
import { unanswerable } from '../../src/pipeline/udp.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { RawSender } from '../fixtures/raw.js';
import { repoRoot, tempDir, TestPeer, toHex, within } from '../helpers.js';

const tenant = 'tenant-hostile-peer';
const sumDrops = (d: Record<string, number>): number => DROP_REASONS.reduce((a, r) => a + d[r]!, 0);

/** One valid probe from `peer` answered by `engine` (the engine still serves). */
async function answers(engine: Engine, peer: TestPeer): Promise<boolean> {
  const n = peer.received.length;
  await peer.send(peer.packet(), engine.address.port);
  return (await peer.waitFor(n + 1, 3000)) > n;
}

test('unanswerable sources: port 0, unspecified, multicast, broadcast and reserved, also inside IPv4-mapped IPv6', () => {
  const yes: Array<[string, number]> = [
    ['127.0.0.1', 0],
    ['0.0.0.0', 4000],
    ['0.1.2.3', 4000],
    ['224.0.0.1', 4000],
    ['239.255.255.250', 4000],
    ['240.0.0.1', 4000],
    ['255.255.255.255', 4000],
    ['::', 4000],
    ['ff02::1', 4000],
    ['FF0E::1', 4000],
    ['::ffff:224.0.0.1', 4000],
    ['::ffff:0.0.0.0', 4000],
    ['::1', 0],
  ];
  const no: Array<[string, number]> = [
    ['127.0.0.1', 1],
    ['10.1.2.3', 65535],
    ['223.255.255.255', 4000],
    ['1.0.0.0', 4000],
    ['::1', 4000],
    ['ff::1', 4000],
    ['fe80::1', 4000],
    ['2001:db8::1', 4000],
    ['::ffff:127.0.0.1', 4000],
  ];
  for (const [a, p] of yes) assert.equal(unanswerable(a, p), true, `${a}:${p} is unanswerable`);
  for (const [a, p] of no) assert.equal(unanswerable(a, p), false, `${a}:${p} can be answered`);
});

test('a validly signed PROBE re-sent from source port 0 is malformed, answered never, and the engine serves on (raw socket)', async (t) => {
  const raw = await RawSender.open();
  if (raw === null) {
    t.diagnostic(`skipped: ${RawSender.why}`);
    console.log(`# port-0 raw-socket case skipped: ${RawSender.why}`);
    t.skip(RawSender.why);
    return;
  }
  const root = new Uint8Array(randomBytes(32));
  for (const sockets of [1, 2]) {
    const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p'], workers: 2, sockets, separatePorts: true });
    const peer = await TestPeer.open(root, tenant, 'p', 'resp');
    try {
      const ports = [engine.address.port, ...engine.socketThreadPorts()];
      for (const port of ports) {
        for (let i = 0; i < 3; i++) await raw.send(0, port, peer.packet({ probeId: 1000 + i })); // captured, dropped, re-injected from port 0
      }
      for (const port of ports) {
        const n = peer.received.length;
        await peer.send(peer.packet({ probeId: 7 }), port);
        assert.equal(await peer.waitFor(n + 1, 3000), n + 1, `sockets=${sockets}: port ${port} still answers a valid probe`);
      }
      const s = await within(10_000, engine.close(), 'close');
      assert.equal(s.dropped.malformed, 3 * ports.length, `sockets=${sockets}: every port-0 datagram is malformed`);
      assert.equal(s.accepted, ports.length, `sockets=${sockets}: only the valid probes are accepted`);
      assert.equal(s.received, s.accepted + sumDrops(s.dropped), 'books balance');
      assert.equal(s.send_errors, 0, 'nothing was even tried towards port 0');
    } finally {
      peer.close();
      await engine.close();
    }
  }
  raw.close();
});

test('sends the kernel refuses are counted as send_errors, the batch is released, the engine serves on', async () => {
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p'], workers: 1 });
  const peer = await TestPeer.open(root, tenant, 'p', 'resp');
  try {
    // EMSGSIZE from the kernel (asynchronous) and a refused address (EINVAL/ENETUNREACH) for the engine's own packets
    const big = engine.sendPacket(1, 'p', '127.0.0.1', peer.socket.address().port, 1, engine.maxDatagram);
    assert.ok(big > 0);
    assert.throws(() => engine.sendProbe('p', '127.0.0.1', 0, 1, 84), RangeError, 'port 0 is an argument error, said at once');
    engine.sendProbe('p', '224.0.0.1', 9, 1, 84); // multicast: may be refused, or leave; either way no throw
    for (let i = 0; i < 3; i++) engine.sendProbe('p', '255.255.255.255', 9, 1, 84); // broadcast without SO_BROADCAST: EACCES from the kernel
    const deadline = Date.now() + 3000;
    while (engine.stats().send_errors < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(engine.stats().send_errors >= 3, `each broadcast refusal is counted (send_errors ${engine.stats().send_errors})`);
    assert.ok(await answers(engine, peer), 'still answers');
    const s = await within(10_000, engine.close(), 'close');
    assert.equal(s.received, s.accepted + sumDrops(s.dropped));
  } finally {
    peer.close();
    await engine.close();
  }
});

test('a throwing reply listener: the error goes to the error listeners, the books balance, the engine serves on and closes', async () => {
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'a', peers: ['p'], workers: 2, batchSize: 16 });
  const peer = await TestPeer.open(root, tenant, 'p', 'a');
  const errors: unknown[] = [];
  engine.on('error', (e) => errors.push(e));
  let replies = 0;
  engine.on('reply', () => {
    replies++;
    throw new Error('app bug');
  });
  try {
    // signed REPLYs from p: accepted, delivered to the listeners, which throw
    for (let i = 0; i < 50; i++) await peer.send(peer.packet({ type: 2, probeId: i }), engine.address.port);
    const deadline = Date.now() + 5000;
    while (replies < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(replies, 50, 'every accepted REPLY reached the listener');
    assert.equal(errors.length, 50, 'every exception reached the error listener');
    assert.ok(await answers(engine, peer), 'the engine still answers a probe');
    engine.setPeers(['p', 'q']); // the key table is not stuck pinned: a roster change applies
    assert.deepEqual(engine.peers, ['p', 'q']);
    const s = await within(10_000, engine.close(), 'close');
    assert.equal(s.accepted, 51);
    assert.equal(s.received, s.accepted + sumDrops(s.dropped));
  } finally {
    peer.close();
    await engine.close();
  }
});

test('without an error listener a listener exception is thrown on a later tick, and the engine stays whole (child process)', () => {
  // in a child: an uncaughtException handler keeps the process alive, as an app might
  const script = `
    import { Engine } from './dist/src/engine.js';
    import { TestPeer } from './dist/test/helpers.js';
    import { createSecretKey, randomBytes } from 'node:crypto';
    const root = new Uint8Array(randomBytes(32));
    let uncaught = 0;
    process.on('uncaughtException', () => uncaught++);
    const engine = await Engine.create({ rootKey: root, tenant: 't', agent: 'a', peers: ['p'], workers: 1 });
    const peer = await TestPeer.open(root, 't', 'p', 'a');
    engine.on('reply', () => { throw new Error('app bug'); });
    for (let i = 0; i < 5; i++) await peer.send(peer.packet({ type: 2, probeId: i }), engine.address.port);
    await new Promise((r) => setTimeout(r, 300));
    engine.setPeers(['p', 'q']);
    await peer.send(peer.packet(), engine.address.port);
    const got = await peer.waitFor(1, 3000);
    const s = await Promise.race([engine.close(), new Promise((r) => setTimeout(() => r(null), 10000))]);
    peer.close();
    console.log(JSON.stringify({ uncaught, got, balanced: s !== null && s.received === s.accepted + Object.values(s.dropped).reduce((a, b) => a + b, 0), peers: engine.peers }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { uncaught: number; got: number; balanced: boolean; peers: string[] };
  assert.deepEqual(out, { uncaught: 5, got: 1, balanced: true, peers: ['p', 'q'] });
});

test('close(), setPeers() and applyHeartbeat() called from inside a listener: books balance, close resolves', async () => {
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'a', peers: ['p'], workers: 2, batchSize: 8, inlineBelow: 0 });
  const peer = await TestPeer.open(root, tenant, 'p', 'a');
  let closing: Promise<unknown> | null = null;
  let n = 0;
  engine.on('reply', () => {
    n++;
    if (n === 3) engine.setPeers(['p', 'x']);
    if (n === 5) engine.applyHeartbeat({ tenant_id: tenant, mesh_root_key: Buffer.from(root).toString('base64'), peers: ['p', 'y'] });
    if (n === 10) closing = engine.close();
  });
  try {
    for (let i = 0; i < 40; i++) void peer.send(peer.packet({ type: 2, probeId: i }), engine.address.port);
    const deadline = Date.now() + 5000;
    while (closing === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(closing !== null, 'the listener closed the engine');
    const s = (await within(10_000, closing as Promise<Awaited<ReturnType<Engine['close']>>>, 'close from a listener')) as Awaited<ReturnType<Engine['close']>>;
    assert.equal(s.received, s.accepted + sumDrops(s.dropped), 'books balance');
    assert.deepEqual(engine.peers, ['p', 'y']);
  } finally {
    peer.close();
    await engine.close();
  }
});

test('a heartbeat that fails validation changes nothing: no file written, roster and root kept, no timer armed', async () => {
  const dir = tempDir('dtmesh-hb-');
  const root = initRootKey(dir, false);
  const before = fs.readFileSync(rootKeyPath(dir));
  const engine = await Engine.create({ stateDir: dir, tenant, agent: 'a', peers: ['p'], workers: 1, maxPeers: 2, rotationGraceMs: 20 });
  const peer = await TestPeer.open(root, tenant, 'p', 'a');
  try {
    const newRoot = randomBytes(32);
    const bad = { tenant_id: tenant, mesh_root_key: newRoot.toString('base64'), peers: ['p', 'q', 'r'] };
    assert.throws(() => engine.applyHeartbeat(bad), /3 peers; options.maxPeers is 2/);
    assert.throws(() => engine.setPeers(['p', 'q', 'r']), /maxPeers/);
    assert.deepEqual(fs.readFileSync(rootKeyPath(dir)), before, 'key file untouched');
    assert.equal(fs.existsSync(path.join(dir, TENANT_FILE)), false, 'tenant.json not written');
    assert.deepEqual(engine.peers, ['p'], 'roster unchanged');
    await new Promise((r) => setTimeout(r, 100)); // past the grace period: a timer armed by the failed heartbeat would have fired (and thrown)
    assert.ok(await answers(engine, peer), 'the old root still verifies: not rotated');
    // and a valid one still applies, all of it
    assert.deepEqual(engine.applyHeartbeat({ ...bad, peers: ['p', 'q'] }), { rotated: true });
    assert.deepEqual(loadRootKey(dir), new Uint8Array(newRoot));
    assert.deepEqual(engine.peers, ['p', 'q']);
  } finally {
    peer.close();
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with several sockets, the packets reaching a peer carry strictly increasing nonces (REPLYs from a socket thread, own PROBEs from the engine)', async () => {
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p'], workers: 2, sockets: 2, separatePorts: true, batchSize: 16 });
  const peer = await TestPeer.open(root, tenant, 'p', 'resp');
  try {
    const threadPort = engine.socketThreadPorts()[0]!;
    const peerPort = peer.socket.address().port;
    const rounds = 200;
    const judged = (): number => {
      const st = engine.stats();
      return st.replied + st.dropped.overload;
    };
    const until = Date.now() + 20_000;
    for (let i = 0; i < rounds; i++) {
      // at most three rounds ahead of the engine: the REPLYs of the last rounds are still on their way while
      // the next own PROBE leaves, but the thread's batches are not all taken (an unpaced burst on a slow
      // CI host had 480 of 800 shed as overload, and the order was then checked on few REPLYs)
      while (judged() < (i - 3) * 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
      for (let j = 0; j < 4; j++) void peer.send(peer.packet({ probeId: i * 4 + j }), threadPort); // REPLYs leave the thread's socket
      await new Promise((r) => setImmediate(r));
      engine.sendProbe('p', '127.0.0.1', peerPort, 0x10000 + i, 84); // own PROBEs leave the engine's socket
    }
    // every own PROBE and every REPLY the engine sent arrives (a probe shed as overload while the thread's batches
    // wait their turn is counted there, not lost: 2 cores, and the order holds batches back)
    while ((judged() < rounds * 4 || peer.received.length < rounds + engine.stats().replied) && Date.now() < until) await peer.waitFor(peer.received.length + 1, 100);
    const s = engine.stats();
    assert.equal(peer.received.length, rounds + s.replied, `every REPLY and PROBE sent arrived (${JSON.stringify(s.dropped)})`);
    assert.equal(s.replied + s.dropped.overload, rounds * 4, 'each probe answered or counted overload');
    assert.ok(s.replied >= rounds * 2, `most probes answered (${s.replied} of ${rounds * 4})`);
    let last = -1n;
    let inversions = 0;
    let own = 0;
    for (const m of peer.received) {
      const p = parsePacket(m)!;
      if (p.type === 1) own++;
      if (p.nonce <= last) inversions++;
      last = p.nonce > last ? p.nonce : last;
    }
    assert.equal(own, rounds);
    assert.equal(inversions, 0, 'a packet arrived after one with a larger nonce (a strict-mode peer drops it as replay)');
  } finally {
    peer.close();
    await engine.close();
  }
});

test('inspect, console.log and JSON.stringify of an engine show no key bytes', async () => {
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'a', peers: ['p', 'q'], workers: 1 });
  try {
    const secrets = [toHex(root), Buffer.from(root).toString('base64'), toHex(derivePairKey(root, tenant, 'a', 'p')), toHex(derivePairKey(root, tenant, 'a', 'q'))];
    const bytesList = Array.from(root.subarray(0, 6)).join(', ');
    for (const text of [inspect(engine, { depth: Infinity, showHidden: true }), JSON.stringify(engine), `${engine}`]) {
      for (const s of secrets) assert.ok(!text.includes(s), 'no key in the text');
      assert.ok(!text.includes(bytesList), 'no key bytes listed');
    }
    assert.match(inspect(engine), /agent: 'a'/);
  } finally {
    await engine.close();
  }
  // an options object holding the key as a KeyObject prints no bytes either, and the engine runs on it
  const opts = { rootKey: createSecretKey(root), tenant, agent: 'a', peers: ['p'], workers: 1 };
  const text = inspect(opts, { depth: Infinity, showHidden: true }) + JSON.stringify(opts);
  assert.ok(!text.includes(toHex(root)) && !text.includes(Buffer.from(root).toString('base64')) && !text.includes(Array.from(root.subarray(0, 6)).join(', ')));
  const e2 = await Engine.create(opts);
  const peer = await TestPeer.open(root, tenant, 'p', 'a');
  try {
    assert.ok(await answers(e2, peer), 'a KeyObject root key verifies like the bytes');
  } finally {
    peer.close();
    await e2.close();
  }
});

test('punch policy: a grant whose burst cannot be sent gives its tokens back; a wrong-family hint charges nothing', async () => {
  const p = new PunchPolicy({ punchBurst: 2, perTargetPerMinute: 1, overallPerMinute: 10, allowLoopback: true });
  const addr = new Uint8Array([10, 0, 0, 1]);
  assert.equal(p.judge(1, 2, true, 4, addr, 0, 4000, 1000), 2);
  assert.equal(p.judge(1, 2, true, 4, addr, 0, 4000, 1001), -4, 'bucket of 1: rate limited');
  p.refund(1, 2);
  assert.equal(p.granted, 0);
  assert.equal(p.judge(1, 2, true, 4, addr, 0, 4000, 1002), 2, 'the refunded token pays for the next burst');

  // engine: IPv6 hints to an IPv4 socket are refused as wrong_family before any token is charged
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'a', peers: ['p', 'q'], workers: 1, punch: { perTargetPerMinute: 1, allowLoopback: true } });
  const hinter = await TestPeer.open(root, tenant, 'p', 'a');
  const target = await TestPeer.open(root, tenant, 'q', 'a');
  const decisions: string[] = [];
  engine.on('punch_hint', (e: { decision: string }) => decisions.push(e.decision));
  try {
    const q = Buffer.from(target.senderId);
    const v6 = Buffer.concat([q, Buffer.from([6, 0x0f, 0xa0]), Buffer.from('00000000000000000000000000000001', 'hex')]);
    const port = target.socket.address().port;
    const v4 = Buffer.concat([q, Buffer.from([4, port >> 8, port & 255, 127, 0, 0, 1])]);
    for (let i = 0; i < 3; i++) await hinter.send(hinter.packet({ type: 3, payload: v6, size: 50 + v6.length }), engine.address.port);
    await hinter.send(hinter.packet({ type: 3, payload: v4, size: 50 + v4.length }), engine.address.port);
    const deadline = Date.now() + 3000;
    while (decisions.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(decisions, ['wrong_family', 'wrong_family', 'wrong_family', 'sent'], 'the one token per minute still pays for the IPv4 burst');
    assert.ok((await target.waitFor(1, 3000)) >= 1, 'the burst reached the target');
  } finally {
    hinter.close();
    target.close();
    await engine.close();
  }
});
