/**
 * A verification worker that hangs rather than dies (ENGINE.md: "No datagram … may crash,
 * stall or wedge the receiver"; "A worker that dies is replaced"). The fixture
 * test/fixtures/hang-worker.ts never finishes one batch until the test releases it.
 *
 * With a deadline on each pool task (`verifyTimeoutMs`, default 1000 ms) a hung worker is
 * aborted — piscina terminates it, a fresh one takes its place — and its batch is counted
 * as `overload`; later batches are collected in order behind it and answered. Without it
 * (before), one hung batch held every later batch, every reply and `close()` forever: the
 * first test below asserts the bounded wedge on the same traffic that showed it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../src/engine.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { HANG_PROBE_ID } from '../fixtures/hang-worker.js';
import { TestPeer, until, within, withHangRelease } from '../helpers.js';

const tenant = 'tenant-hang';
const root = new Uint8Array(randomBytes(32));
const workerFile = fileURLToPath(new URL('../fixtures/hang-worker.js', import.meta.url));

async function hungEngine(): Promise<{ engine: Engine; peer: TestPeer; release: () => void }> {
  const { started: engine, release } = await withHangRelease(() => Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['prober'], workers: 2, batchSize: 4, batches: 8, inlineBelow: 0, workerFile }));
  const peer = await TestPeer.open(root, tenant, 'prober', 'resp');
  return { engine, peer, release };
}

/** {@link hungEngine} with its warnings recorded and 4 probes served before the hang probe is sent (to `port`). */
async function servedThenHang(): Promise<{ engine: Engine; peer: TestPeer; release: () => void; warnings: string[]; port: number }> {
  const h = await hungEngine();
  const warnings: string[] = [];
  h.engine.on('warning', (m: string) => warnings.push(m));
  const port = h.engine.address.port;
  for (let i = 0; i < 4; i++) await h.peer.send(h.peer.packet({ probeId: i }), port);
  assert.equal(await h.peer.waitFor(4, 5000), 4, 'served before the hang');
  await h.peer.send(h.peer.packet({ probeId: HANG_PROBE_ID }), port);
  return { ...h, warnings, port };
}

test('one hung batch holds later batches only until its deadline; then it is counted overload, the rest answered in order, books balance', async () => {
  const { engine, peer, release, warnings, port } = await servedThenHang();
  try {
    for (let i = 0; i < 200; i++) await peer.send(peer.packet({ probeId: 100 + i }), port);
    await until(5000, () => engine.stats().received === 205, 'every datagram received');
    // within the deadline (1000 ms) plus scheduling slack on 2 busy cores, the batches behind the hung one are answered
    await until(10_000, () => engine.hungBatches === 1, 'the hung batch given up');
    const s0 = engine.stats();
    await until(10_000, () => peer.received.length === engine.stats().replied, 'the replies held behind it leave');
    assert.ok(s0.replied > 4, `later probes answered after the deadline (${s0.replied})`);
    const s = await within(10_000, engine.close(), 'close() does not wait for the hung worker');
    assert.equal(s.received, s.accepted + DROP_REASONS.reduce((a, r) => a + s.dropped[r], 0), 'books balance');
    assert.equal(s.dropped.replay, 0, 'order kept behind the hung batch');
    // overload = the hung batch's datagrams + those the lane shed while every batch was held behind it (a number that varies)
    const hung = warnings.map((w) => /its batch of (\d+) datagrams counted as overload/.exec(w)).filter((m) => m !== null);
    assert.equal(hung.length, 1, `one hung-batch warning: ${JSON.stringify(warnings)}`);
    assert.ok(s.dropped.overload >= Number(hung[0]![1]), `every datagram of the hung batch is overload (${s.dropped.overload} ≥ ${hung[0]![1]})`);
    assert.equal(s.accepted, s.replied, 'every accepted probe answered');
    await peer.waitFor(s.accepted, 5000); // replies sent during the drain: the peer reads them on a later turn
    assert.equal(peer.received.length, s.accepted, 'the peer got one reply per accepted probe');
    assert.equal(205 - new Set(peer.received.map((m) => m.readUInt32BE(22))).size, s.dropped.overload, 'every probe not answered is overload');
    let last = -1;
    for (const m of peer.received) {
      const id = m.readUInt32BE(22);
      assert.ok(id !== HANG_PROBE_ID, 'the hung probe is never answered');
      if (id >= 100) {
        assert.ok(id > last, 'replies in probe order');
        last = id;
      }
    }
  } finally {
    release();
    peer.close();
    await within(20_000, engine.close(), 'engine.close()');
  }
});

test('a hung batch is overload slot for slot: the hang probe alone in its batch, then 6 probes (fewer than the free batches, so none is shed) — overload 1, exactly the hung batch; accepted = replied = replies the peer got = 10', async () => {
  const { engine, peer, release, warnings, port } = await servedThenHang();
  try {
    await until(5000, () => engine.stats().received === 5, 'the hang probe received');
    // the lane hands over its partial batch when the socket is idle: the hang probe's batch holds it alone
    await new Promise((r) => setTimeout(r, 200));
    // 8 batches: 1 hung, 7 free — 6 datagrams fit even one batch each, so the lane sheds none
    for (let i = 0; i < 6; i++) await peer.send(peer.packet({ probeId: 100 + i }), port);
    await until(5000, () => engine.stats().received === 11, 'every datagram received');
    await until(10_000, () => engine.hungBatches === 1, 'the hung batch given up');
    await until(10_000, () => peer.received.length === 10, 'the replies held behind it leave');
    const hung = warnings.map((w) => /its batch of (\d+) datagrams counted as overload/.exec(w)).filter((m) => m !== null);
    assert.equal(hung.length, 1, `one hung-batch warning: ${JSON.stringify(warnings)}`);
    assert.equal(Number(hung[0]![1]), 1, 'the hang probe was alone in its batch');
    const s = await within(10_000, engine.close(), 'close() does not wait for the hung worker');
    assert.equal(s.received, 11);
    assert.equal(s.dropped.overload, 1, `overload is exactly the hung batch's datagrams (${JSON.stringify(s.dropped)})`);
    for (const r of DROP_REASONS) if (r !== 'overload') assert.equal(s.dropped[r], 0, `no ${r}`);
    assert.equal(s.accepted, 10);
    assert.equal(s.replied, 10);
    assert.equal(peer.received.length, 10, 'every accepted probe answered once');
    assert.deepEqual(
      peer.received.map((m) => m.readUInt32BE(22)),
      [0, 1, 2, 3, 100, 101, 102, 103, 104, 105],
      'the hung probe is never answered; the rest in order',
    );
  } finally {
    release();
    peer.close();
    await within(20_000, engine.close(), 'engine.close()');
  }
});

test('a hung worker does not wedge the receiver: the batch is given up after a deadline and counted, serving goes on', async () => {
  const { engine, peer, release } = await hungEngine();
  try {
    const port = engine.address.port;
    await peer.send(peer.packet({ probeId: HANG_PROBE_ID }), port);
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 20; i++) await peer.send(peer.packet({ probeId: i }), port);
    assert.equal(await peer.waitFor(20, 10_000), 20, 'later probes answered while one batch hangs');
  } finally {
    release();
    peer.close();
    await within(20_000, engine.close(), 'engine.close()');
  }
});
