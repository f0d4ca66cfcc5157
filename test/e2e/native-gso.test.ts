/**
 * UDP GSO for REPLYs on the native lane (engine option `gso`, `serve --gso`; src/native/lane.c
 * pump): over real UDP on 127.0.0.1 and ::1, bursts from several peers with runs of one peer
 * and one length broken by other peers and other lengths. With GSO the kernel cuts each run
 * into the very datagrams a lane without it sends: every peer gets every REPLY as its own
 * datagram of its probe's length, in order, verifying, byte-identical (up to nonce, time and
 * MAC) to what an engine without GSO sends — and the runs did leave as GSO messages (the
 * lane's counter), else the test proves nothing. A GSO send the kernel refuses outright
 * (injected EIO: a device that cannot segment) goes again one REPLY per message, nothing lost
 * or counted as an error, and GSO is off from then on. The CLI: `--gso` in the start line;
 * with the dgram lane a one-line error.
 *
 * With `CI` set these fail (never skip) when the native lane was not built.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import type { NativeLane } from '../../src/pipeline/native-lane.js';
import { parsePacket } from '../../src/protocol/codec.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macVerify } from '../../src/protocol/mac.js';
import { nativeLane, nativeLaneStatus } from '../../src/protocol/native.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { OFF_NONCE, OFF_SEND_TS } from '../../src/protocol/wire.js';
import { cliPath, startServe, stateDir, TestPeer, until } from '../helpers.js';

const skip = nativeLane === null && !process.env.CI ? `native lane ${nativeLaneStatus}` : false;
const tenant = 'tenant-gso';
const root = new Uint8Array(randomBytes(32));

interface Peer {
  crafter: TestPeer;
  sock: dgram.Socket;
  host: string;
  got: Map<number, Buffer[]>;
}

async function openPeer(agent: string, v6: boolean): Promise<Peer> {
  const crafter = await TestPeer.open(root, tenant, agent, 'resp');
  let sock = crafter.socket;
  if (v6) {
    sock = dgram.createSocket('udp6');
    await new Promise<void>((r) => sock.bind(0, '::1', () => r()));
    sock.setRecvBufferSize(4 << 20);
  }
  const got = new Map<number, Buffer[]>();
  sock.removeAllListeners('message');
  sock.on('message', (m, r) => {
    const l = got.get(r.port) ?? [];
    l.push(m);
    got.set(r.port, l);
  });
  return { crafter, sock, host: v6 ? '::1' : '127.0.0.1', got };
}

/** Runs of [peer, count, size]: one peer and one length per run, broken by the next. */
const RUNS: Array<[number, number, number]> = [
  [0, 12, 84], [1, 5, 84], [0, 3, 200], [0, 7, 84], [2, 14, 84], [1, 1, 300], [2, 20, 84], [0, 2, 84], [1, 9, 120], [1, 6, 84], [0, 1, 84], [2, 1, 84], [0, 16, 84],
];

/** Every peer's probes of one burst, in the order they go out (probe IDs from `firstId`). */
function burst(peers: Peer[], firstId: number): Array<{ p: Peer; d: Uint8Array }> {
  const next = peers.map(() => firstId);
  const out: Array<{ p: Peer; d: Uint8Array }> = [];
  for (const [i, n, size] of RUNS) for (let k = 0; k < n; k++) out.push({ p: peers[i]!, d: peers[i]!.crafter.packet({ probeId: next[i]!++, size }) });
  return out;
}

/** Send without yielding: the engines (this thread) read the whole burst only afterwards, so batches hold the runs. */
function sendAll(items: Array<{ p: Peer; d: Uint8Array }>, ports: number[]): void {
  for (const port of ports) for (const { p, d } of items) p.sock.send(d, port, p.host);
}

/** Check one engine's REPLYs to `p`: each its own datagram of its probe's length, in order, verifying; masked bytes returned. */
function repliesOf(p: Peer, port: number, sent: Uint8Array[]): string[] {
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, p.crafter.agent, 'resp'), state, 0);
  const got = p.got.get(port) ?? [];
  assert.deepEqual(got.map((m) => parsePacket(m)?.probeId), sent.map((d) => parsePacket(d)!.probeId), `${p.crafter.agent}: a REPLY per probe, in order`);
  let last = -1n;
  return got.map((m, k) => {
    const r = parsePacket(m)!;
    assert.equal(r.type, 2, 'a REPLY');
    assert.equal(m.length, sent[k]!.length, 'as long as its probe');
    assert.ok(r.nonce > last, 'nonces increase');
    last = r.nonce;
    assert.ok(macVerify(state, 0, null, 0, m, 0, m.length), 'the MAC verifies under the pair key');
    const b = Buffer.from(m);
    b.fill(0, OFF_NONCE, OFF_NONCE + 8);
    b.fill(0, OFF_SEND_TS, OFF_SEND_TS + 8);
    b.fill(0, b.length - 16);
    return b.toString('hex');
  });
}

for (const [listen, v6] of [['127.0.0.1:0', false], ['[::1]:0', true]] as const) {
  test(`gso, listen ${listen}: bursts with runs per peer and length — every REPLY its own datagram, in order, byte-identical to the lane without GSO; runs left as GSO messages`, { skip }, async () => {
    const agents = ['p0', 'p1', 'p2'];
    const common = { rootKey: root, tenant, agent: 'resp', peers: agents, workers: 1, listen, lane: 'native' as const, punch: false as const };
    const plain = await Engine.create(common);
    const gso = await Engine.create({ ...common, gso: true });
    const peers = await Promise.all(agents.map((a) => openPeer(a, v6)));
    try {
      assert.equal(plain.gso, false);
      assert.equal(gso.gso, true, 'this kernel has UDP GSO (Linux >= 4.18)');
      const items = [...burst(peers, 1), ...burst(peers, 1000)];
      const ports = [plain.address.port, gso.address.port];
      sendAll(items.slice(0, items.length / 2), ports);
      await until(10_000, () => plain.stats().replied === items.length / 2 && gso.stats().replied === items.length / 2, 'the first burst answered');
      sendAll(items.slice(items.length / 2), ports);
      await until(10_000, () => peers.every((p) => ports.every((port) => (p.got.get(port)?.length ?? 0) === items.filter((x) => x.p === p).length)), 'every REPLY arrived');
      for (const p of peers) {
        const sent = items.filter((x) => x.p === p).map((x) => x.d);
        assert.deepEqual(repliesOf(p, gso.address.port, sent), repliesOf(p, plain.address.port, sent), `${p.crafter.agent}: the same REPLY bytes with and without GSO`);
      }
      const lg = gso.stages.own as NativeLane;
      const lp = plain.stages.own as NativeLane;
      assert.ok(lg.gsoSent > 0, 'runs left as GSO messages');
      assert.ok(lg.gsoSent <= items.length);
      assert.equal(lp.gsoSent, 0, 'none without the option');
      for (const e of [plain, gso]) {
        const s = e.stats();
        assert.equal(s.send_errors, 0);
        assert.equal(s.replied, items.length);
      }
      process.stdout.write(`# gso ${listen}: ${lg.gsoSent} of ${items.length} REPLYs left inside GSO messages\n`);
    } finally {
      for (const p of peers) {
        p.crafter.close();
        if (p.sock !== p.crafter.socket) p.sock.close();
      }
      await plain.close();
      await gso.close();
    }
  });
}

test('gso: a GSO send the kernel refuses outright (EIO, a device that cannot segment) goes again one REPLY per message — nothing lost, no send error — and GSO is off from then on', { skip }, async () => {
  const e = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p0', 'p1', 'p2'], workers: 1, listen: '127.0.0.1:0', lane: 'native', gso: true, punch: false });
  const peers = await Promise.all(['p0', 'p1', 'p2'].map((a) => openPeer(a, false)));
  try {
    const lane = e.stages.own as NativeLane;
    assert.equal(e.gso, true);
    lane.injectSendFaults(0, 0, 1);
    const items = burst(peers, 1);
    sendAll(items, [e.address.port]);
    await until(10_000, () => peers.every((p) => (p.got.get(e.address.port)?.length ?? 0) === items.filter((x) => x.p === p).length), 'every REPLY arrived');
    for (const p of peers) repliesOf(p, e.address.port, items.filter((x) => x.p === p).map((x) => x.d));
    assert.equal(e.stats().send_errors, 0);
    assert.equal(e.gso, false, 'off after the refusal');
    assert.equal(lane.gsoSent, 0, 'the refused message was sent again one by one, and no GSO message after it');
    // and the lane goes on without it
    const more = burst(peers, 500);
    sendAll(more, [e.address.port]);
    await until(10_000, () => e.stats().replied === items.length + more.length, 'the next burst answered');
    assert.equal(lane.gsoSent, 0);
    assert.equal(e.stats().send_errors, 0);
  } finally {
    for (const p of peers) p.crafter.close();
    await e.close();
  }
});

test('serve --gso: said in the start line; with --lane dgram a one-line error', { skip }, async () => {
  const dir = stateDir();
  const srv = await startServe(['--state-dir', dir, '--tenant', 't', '--agent', 'resp', '--peers', 'p0', '--listen', '127.0.0.1:0', '--lane', 'native', '--gso', '--workers', '1']);
  try {
    assert.match(srv.out(), /listening on 127\.0\.0\.1:\d+ with 1 workers, 1 socket, 1 peers, native lane, UDP GSO, replay window 1024\n/);
    assert.equal(await srv.stop(), 0, srv.err());
  } finally {
    srv.child.kill('SIGKILL');
  }
  const bad = spawnSync(process.execPath, [cliPath, 'serve', '--state-dir', dir, '--tenant', 't', '--agent', 'resp', '--peers', 'p0', '--listen', '127.0.0.1:0', '--lane', 'dgram', '--gso'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /gso needs the native lane/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(bad.stderr.trim().split('\n').length <= 2, bad.stderr);
});
