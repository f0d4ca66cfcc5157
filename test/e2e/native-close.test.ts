/**
 * close() sends the REPLYs still queued (ENGINE.md "Lanes": would-block keeps an ordered
 * queue; src/pipeline/pipeline.ts close: "drain every batch in flight, send its REPLYs"):
 * 64 PROBEs are accepted while the native lane's socket would block (the lane's test fault:
 * every send call reports EAGAIN until released), so their REPLY batches wait in the lane's
 * queue; close() starts then, and the socket becomes writable only after. The peer must get
 * all 64 REPLYs, nonces strictly increasing, and close() must not resolve before they left.
 * Two guards make close() wait — the lane's own (its send queue is empty) and the pipeline's
 * (the reply sender has no pending unit): the first test needs either; the second reaches
 * the case only the reply sender's count covers — an own PROBE that starts, on a lane that
 * already reported drained, only once the other socket's REPLYs left (two sockets).
 * With `CI` set these fail (never skip) when the native lane was not built.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import type { NativeLane } from '../../src/pipeline/native-lane.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { TYPE_REPLY } from '../../src/protocol/wire.js';
import { nativeLane, nativeLaneStatus } from '../../src/protocol/native.js';
import { TestPeer, until, within } from '../helpers.js';

const skip = nativeLane === null && !process.env.CI ? `native lane ${nativeLaneStatus}` : false;
const tenant = 'tenant-native-close';
const root = new Uint8Array(randomBytes(32));
const N = 64;

test('native lane: close() waits for the REPLYs queued behind a socket that would block — all 64 leave, in nonce order, before close() resolves', { skip }, async () => {
  assert.ok(nativeLane !== null, `native lane ${nativeLaneStatus}: CI builds it`);
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p0'], workers: 1, lane: 'native' });
  const peer = await TestPeer.open(root, tenant, 'p0', 'resp');
  const lane = engine.stages.own as NativeLane;
  let released = false;
  try {
    assert.equal(engine.stages.lanes.length, 1, 'one socket: every REPLY leaves through this lane');
    lane.injectSendFaults(1 << 30, 0); // every send call would block until released below
    for (let i = 0; i < N; i++) await peer.send(peer.packet({ probeId: i }), engine.address.port);
    await until(10_000, () => engine.stats().accepted === N, `${N} PROBEs accepted`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(peer.received.length, 0, 'no REPLY left yet: they wait in the lane queue');
    let closed = false;
    const closing = engine.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'close() waits while REPLYs are queued');
    lane.injectSendFaults(0, 0); // writable again
    released = true;
    await within(10_000, closing, 'engine.close()');
    // the socket is closed now: whatever it had not sent is gone; what it sent reaches the peer
    assert.equal(await peer.waitFor(N, 5000), N, `all ${N} REPLYs sent before close() resolved`);
    const replies = peer.received.map((m) => parsePacket(m)!);
    assert.ok(replies.every((p) => p.type === TYPE_REPLY), 'every one a REPLY');
    assert.deepEqual(replies.map((p) => p.probeId).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i), 'one REPLY per PROBE');
    assert.ok(replies.every((p, k) => k === 0 || p.nonce > replies[k - 1]!.nonce), 'nonces strictly increasing on the wire');
    assert.equal(engine.stats().send_errors, 0);
  } finally {
    if (!released) lane.injectSendFaults(0, 0);
    peer.close();
    await engine.close();
  }
});

test('native lane, two sockets: close() waits for an own PROBE that starts on a lane already drained — it waited in the send order behind REPLYs of the other socket, then meets a socket that would block', { skip }, async (t) => {
  // The reply sender's pending units are the only record of this PROBE: the own lane reported
  // drained (nothing queued) before the PROBE could start, so a close() that looked at the lanes
  // alone would close the socket under it. Steps: own PROBE X blocks on lane 0; 64 PROBEs on the
  // socket thread's port are accepted, their REPLY units wait in the send order behind X (nonce
  // order across sockets); own PROBE Y waits behind them; close(); X is released, lane 0 drains,
  // the REPLYs leave from the thread, Y starts on lane 0 — and would block again until released.
  assert.ok(nativeLane !== null, `native lane ${nativeLaneStatus}: CI builds it`);
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p0'], workers: 1, lane: 'native', sockets: 2, separatePorts: true, batchSize: 1, batches: 160 });
  // batchSize 1: the socket thread hands on each PROBE at once (it holds a partial batch while one of its batches is with the engine)
  const peer = await TestPeer.open(root, tenant, 'p0', 'resp');
  const lane = engine.stages.own as NativeLane;
  const peerPort = peer.socket.address().port;
  let released = false;
  try {
    const [threadPort] = engine.socketThreadPorts();
    assert.ok(threadPort !== undefined && threadPort !== engine.address.port, 'a socket thread on a port of its own');
    lane.injectSendFaults(1 << 30, 0); // lane 0's send calls would block until released
    const x = engine.sendProbe('p0', '127.0.0.1', peerPort, 1_000_001, 84);
    assert.ok(x > 0 && Number.isNaN(engine.lastSendUs()), 'X queued on lane 0');
    for (let i = 0; i < N; i++) await peer.send(peer.packet({ probeId: i }), threadPort!);
    await until(10_000, () => engine.stats().accepted === N, `${N} PROBEs accepted`);
    const y = engine.sendProbe('p0', '127.0.0.1', peerPort, 1_000_002, 84);
    assert.ok(y > x, 'Y queued in the send order');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(peer.received.length, 0, 'nothing left yet: the REPLYs wait behind X, Y behind them');
    let closed = false;
    const closing = engine.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    // release X; block lane 0 again (check phase, right after the poll phase that sent X) before
    // the socket thread reports its REPLYs sent, which starts Y
    lane.injectSendFaults(0, 0);
    setImmediate(() => lane.injectSendFaults(1 << 30, 0));
    await until(10_000, () => peer.received.length >= 1 + N, `X and the ${N} REPLYs`);
    await new Promise((r) => setTimeout(r, 100));
    if (peer.received.length === 1 + N) assert.equal(closed, false, 'close() waits for Y, queued on a lane that already reported drained');
    // else Y started before lane 0 was blocked again (the socket thread's report came first): the
    // case this test is for did not arise in this run; order and completeness are still checked
    else t.diagnostic('Y left before lane 0 was blocked again: the drained-lane case did not arise this run');
    lane.injectSendFaults(0, 0);
    released = true;
    await within(10_000, closing, 'engine.close()');
    assert.equal(await peer.waitFor(N + 2, 5000), N + 2, 'X, the REPLYs and Y all left before close() resolved (the socket is closed now)');
    const got = peer.received.map((m) => parsePacket(m)!);
    assert.equal(got[0]!.probeId, 1_000_001);
    assert.equal(got[N + 1]!.probeId, 1_000_002, 'Y last');
    assert.ok(got.slice(1, N + 1).every((p) => p.type === TYPE_REPLY), 'the REPLYs between them');
    assert.ok(got.every((p, k) => k === 0 || p.nonce > got[k - 1]!.nonce), 'nonces strictly increasing on the wire, across both sockets');
    assert.equal(engine.stats().send_errors, 0);
  } finally {
    if (!released) lane.injectSendFaults(0, 0);
    peer.close();
    await engine.close();
  }
});
