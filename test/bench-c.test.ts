/**
 * The C reference programs of the benchmarks (bench/c/), built by this test with the
 * machine's C compiler, checked against the shared vectors over UDP on 127.0.0.1:
 *
 *   - the primitives (bench/c/selftest): rfc.json and keys.json;
 *   - the C responder gives every datagram of every verdicts.json scenario exactly its
 *     verdict (its clock fixed at each step's now_us through its control channel), and
 *     answers each accepted PROBE with a REPLY whose MAC node:crypto's createHmac verifies;
 *   - its REPLY bytes equal replies.json's (nonce and clock fixed);
 *   - the C prober against a node Engine responder: received = sent, RTTs > 0, kernel
 *     timestamps.
 *
 * No C compiler: skipped with the reason printed — except under CI=true, where that fails.
 * Every wait has a deadline.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import * as dgram from 'node:dgram';
import { after, test } from 'node:test';
import { buildC, cCompiler } from '../bench/cbuild.js';
import { CResponder, type CCounts } from '../bench/cresponder.js';
import { Engine } from '../src/engine.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { hex, loadVectors, TestPeer, toHex, until, wallUs } from './helpers.js';

const CI = process.env.CI === 'true';
const noCc = cCompiler() === null ? 'no C compiler (cc / $CC not found)' : null;
if (noCc !== null) {
  if (CI) throw new Error(`bench-c tests: ${noCc}, and CI=true: the C reference programs must build on CI`);
  process.stdout.write(`# bench-c tests skipped: ${noCc}\n`);
}
const skip = noCc ?? false;

const open: Array<{ close(): unknown }> = [];
after(async () => {
  for (const x of open.splice(0)) await x.close();
});

/** A client socket on 127.0.0.1 with a queue of received datagrams. */
async function client(): Promise<{ socket: dgram.Socket; next(ms: number): Promise<Buffer | null>; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  const q: Buffer[] = [];
  let wake: (() => void) | null = null;
  socket.on('message', (m) => {
    q.push(m);
    wake?.();
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const c = {
    socket,
    async next(ms: number): Promise<Buffer | null> {
      const end = Date.now() + ms;
      while (q.length === 0) {
        const left = end - Date.now();
        if (left <= 0) return null;
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = null;
      }
      return q.shift()!;
    },
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
  open.push(c);
  return c;
}

function send(socket: dgram.Socket, port: number, d: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => socket.send(d, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
}

/** The responder's counts once it has received more than `before` datagrams (polled, with a deadline). */
async function countsAfter(r: CResponder, before: number, ms = 3000): Promise<CCounts> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await r.stats();
    if (s.received > before) return s;
    if (Date.now() > end) throw new Error(`the C responder did not receive the datagram within ${ms} ms`);
    await new Promise((res) => setTimeout(res, 2));
  }
}

/** The one verdict counted between `a` and `b`. */
function diffVerdict(a: CCounts, b: CCounts): string {
  const moved: string[] = [];
  if (b.accepted !== a.accepted) moved.push('accept');
  for (const k of Object.keys(b.dropped)) if (b.dropped[k] !== a.dropped[k]) moved.push(k);
  assert.equal(b.received - a.received, 1, 'one datagram at a time');
  assert.equal(b.verdict_us.count - a.verdict_us.count, 1, 'its receive→verdict time recorded, whatever the verdict');
  assert.ok(b.verdict_us.max >= 0 && b.verdict_us.max < 1_000_000, `a sane receive→verdict time: ${JSON.stringify(b.verdict_us)}`);
  assert.equal(moved.length, 1, `exactly one verdict counted: ${moved.join(', ')}`);
  return moved[0]!;
}

/** HMAC-SHA256(key, wire[0:34+N] || u32be(N))[0:16] by node:crypto (PROTOCOL.md §2). */
function macOf(key: Uint8Array, wire: Uint8Array): Buffer {
  const body = wire.length - 16;
  const n = Buffer.alloc(4);
  n.writeUInt32BE(body - 34, 0);
  return createHmac('sha256', key).update(wire.subarray(0, body)).update(n).digest().subarray(0, 16);
}

/** Run bench/c/selftest over `lines` (one command each); its answers, one per line. */
function selftest(lines: string[]): string[] {
  const b = buildC('selftest');
  assert.ok(b.bin, b.skip);
  const r = spawnSync(b.bin, [], { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trim().split('\n');
  assert.equal(out.length, lines.length);
  return out;
}

const hx = (s: string): string => (s === '' ? '-' : Buffer.from(s, 'utf8').toString('hex'));
const orDash = (h: string): string => (h === '' ? '-' : h);

test('C primitives: rfc.json (RFC 4231 HMAC, RFC 5869 HKDF) and keys.json (sender_ids, pair keys, invalid IDs)', { skip }, () => {
  const rfc = loadVectors('rfc.json');
  const hm = selftest(rfc.hmac_sha256.map((v: any) => `hmac ${orDash(v.key)} ${orDash(v.data)}`));
  rfc.hmac_sha256.forEach((v: any, i: number) => assert.equal(hm[i], v.mac, `RFC 4231 case ${i}`));
  const hk = selftest(rfc.hkdf_sha256.map((v: any) => `hkdf ${orDash(v.ikm)} ${orDash(v.salt)} ${orDash(v.info)} ${v.length}`));
  rfc.hkdf_sha256.forEach((v: any, i: number) => assert.equal(hk[i], v.okm, `RFC 5869 case ${i}`));
  const keys = loadVectors('keys.json');
  const ids = selftest(keys.sender_ids.map((v: any) => `sender ${hx(v.agent)}`));
  keys.sender_ids.forEach((v: any, i: number) => assert.equal(ids[i], v.sender_id, `sender_id of ${v.agent}`));
  const pk = selftest(keys.pair_keys.map((v: any) => `pair ${v.root} ${hx(v.tenant)} ${hx(v.a)} ${hx(v.b)}`));
  keys.pair_keys.forEach((v: any, i: number) => assert.equal(pk[i], v.pair_key, `pair key ${v.a}/${v.b}`));
  const bad = selftest(keys.invalid_ids.map((id: string) => `id ${hx(id)}`));
  keys.invalid_ids.forEach((id: string, i: number) => assert.match(bad[i]!, /^invalid: /, `invalid ID ${JSON.stringify(id)} rejected`));
  const good = selftest(keys.sender_ids.map((v: any) => `id ${hx(v.agent)}`));
  assert.ok(good.every((g) => g === 'valid'), good.join(', '));
});

interface Scenario {
  name: string;
  receiver: { root: string; prev_root: string | null; tenant: string; me: string; peers: string[]; start_us: string; replay_window: number; max_datagram: number };
  steps: Array<{ datagram: string; now_us: string; verdict: string }>;
}

test('C responder: every verdicts.json scenario over UDP gets exactly its verdicts; accepted PROBEs get a REPLY createHmac verifies', { skip, timeout: 60_000 }, async () => {
  const { scenarios } = loadVectors<{ scenarios: Scenario[] }>('verdicts.json');
  const seen = new Set<string>();
  let replies = 0;
  for (const sc of scenarios) {
    const rc = sc.receiver;
    const root = hex(rc.root);
    const resp = await CResponder.start({
      root,
      prevRoot: rc.prev_root ? hex(rc.prev_root) : null,
      tenant: rc.tenant,
      agent: rc.me,
      peers: rc.peers,
      startUs: BigInt(rc.start_us),
      replayWindow: rc.replay_window,
      maxDatagram: rc.max_datagram,
    });
    const cl = await client();
    try {
      const meId = senderIdOf(rc.me);
      let prev = await resp.stats();
      for (const [i, st] of sc.steps.entries()) {
        await resp.setNow(BigInt(st.now_us));
        const d = hex(st.datagram);
        await send(cl.socket, resp.port, d);
        const counts = await countsAfter(resp, prev.received);
        const got = diffVerdict(prev, counts);
        prev = counts;
        assert.equal(got, st.verdict, `${sc.name} step ${i}`);
        seen.add(got);
        if (got === 'accept' && d[5] === 1) {
          const reply = await cl.next(2000);
          assert.ok(reply, `${sc.name} step ${i}: a REPLY`);
          assert.equal(reply.length, d.length, 'a REPLY is exactly as long as its PROBE');
          assert.equal(toHex(reply.subarray(0, 5)), toHex(d.subarray(0, 5)), 'magic, version');
          assert.equal(reply[5], 2, 'type REPLY');
          assert.equal(toHex(reply.subarray(6, 14)), toHex(meId), "the replier's sender_id");
          assert.equal(toHex(reply.subarray(22, 26)), toHex(d.subarray(22, 26)), 'probe_id copied');
          assert.equal(toHex(reply.subarray(34, reply.length - 16)), toHex(d.subarray(34, d.length - 16)), 'payload copied');
          assert.equal(reply.readBigUInt64BE(26), BigInt(st.now_us), "send_ts_us = the replier's clock when it signs");
          const sender = rc.peers.find((p) => toHex(senderIdOf(p)) === toHex(d.subarray(6, 14)))!;
          const key = derivePairKey(root, rc.tenant, rc.me, sender);
          assert.equal(toHex(reply.subarray(reply.length - 16)), toHex(macOf(key, reply)), 'REPLY MAC (node:crypto createHmac)');
          replies++;
        }
      }
      // nothing else came back: drops send nothing
      assert.equal(await cl.next(50), null, `${sc.name}: no datagram besides the REPLYs`);
      await resp.resetLatency();
      assert.equal((await resp.stats()).verdict_us.count, 0, 'reset-latency empties the receive→verdict histogram');
      const fin = await resp.close();
      assert.ok(fin, 'final counts on SIGTERM');
      assert.equal(fin.received, sc.steps.length);
    } finally {
      await resp.close();
    }
  }
  for (const v of ['accept', 'malformed', 'downgrade', 'reflected', 'unknown_sender', 'bad_mac', 'stale', 'replay']) assert.ok(seen.has(v), `verdict ${v} exercised`);
  assert.ok(replies > 0, 'REPLYs checked');
});

test('C responder: REPLY bytes equal replies.json (nonce and clock fixed)', { skip, timeout: 30_000 }, async () => {
  const v = loadVectors<{ root: string; tenant: string; replier: string; requester: string; replies: Array<{ request: string; reply_nonce: string; reply_send_ts_us: string; reply: string }> }>('replies.json');
  for (const [i, r] of v.replies.entries()) {
    // one responder per reply: its first REPLY nonce is the vector's
    const resp = await CResponder.start({ root: hex(v.root), tenant: v.tenant, agent: v.replier, peers: [v.replier, v.requester], startUs: 1, nonceStart: r.reply_nonce });
    try {
      await resp.setNow(BigInt(r.reply_send_ts_us));
      const cl = await client();
      await send(cl.socket, resp.port, hex(r.request));
      const reply = await cl.next(3000);
      assert.ok(reply, `reply ${i}`);
      assert.equal(toHex(reply), r.reply, `reply ${i} byte for byte`);
    } finally {
      await resp.close();
    }
  }
});

test('C responder --gso: runs to one address leave as GSO messages, and the REPLYs are byte for byte those of the responder without it (nonce and clock fixed)', { skip, timeout: 30_000 }, async () => {
  const root = new Uint8Array(32).fill(9);
  const opts = { root, tenant: 't', agent: 'resp', peers: ['p0', 'p1'], startUs: 1, nonceStart: 1000 };
  const now = BigInt(wallUs());
  const plain = await CResponder.start(opts);
  const gso = await CResponder.start({ ...opts, gso: true });
  const peers = await Promise.all(['p0', 'p1'].map((a) => TestPeer.open(root, 't', a, 'resp')));
  try {
    for (const r of [plain, gso]) await r.setNow(now);
    // stopped while the burst goes out, so its batches hold runs: p0 ×20, p1 ×5, p0 ×10 (84 B), p0 ×4 (200 B), p1 ×12
    const runs: Array<[number, number, number]> = [[0, 20, 84], [1, 5, 84], [0, 10, 84], [0, 4, 200], [1, 12, 84]];
    const ids = [0, 0];
    const burst = runs.flatMap(([i, n, size]) => Array.from({ length: n }, () => ({ p: peers[i]!, d: peers[i]!.packet({ probeId: ++ids[i]!, size }) })));
    const got: Array<Map<TestPeer, string[]>> = [];
    for (const r of [plain, gso]) {
      r.proc.kill('SIGSTOP');
      for (const { p, d } of burst) await new Promise<void>((res) => p.socket.send(d, r.port, '127.0.0.1', () => res()));
      r.proc.kill('SIGCONT');
      await until(10_000, () => peers.every((p) => p.received.length === burst.filter((x) => x.p === p).length), 'every REPLY');
      got.push(new Map(peers.map((p) => [p, p.received.splice(0).map((m) => m.toString('hex'))])));
    }
    for (const p of peers) assert.deepEqual(got[1]!.get(p), got[0]!.get(p), `${p.agent}: the same REPLYs, byte for byte, each its own datagram`);
    const [sp, sg] = [await plain.stats(), await gso.stats()];
    assert.equal(sp.replied, burst.length);
    assert.equal(sg.replied, burst.length);
    assert.equal(sp.gso_sent, 0);
    assert.ok(sg.gso_sent > 0 && sg.gso_sent <= burst.length, `GSO messages carried ${sg.gso_sent} REPLYs`);
    assert.equal(sg.send_errors + sp.send_errors, 0);
  } finally {
    for (const p of peers) p.close();
    await plain.close();
    await gso.close();
  }
});

test('C responder --gso with --batch 512: a run of 300 REPLYs to one address leaves in GSO messages of at most 64 segments (past the kernel’s UDP_MAX_SEGMENTS, 64 or 128, a GSO send is EINVAL), every one of them', { skip, timeout: 30_000 }, async () => {
  const root = new Uint8Array(32).fill(11);
  const resp = await CResponder.start({ root, tenant: 't', agent: 'resp', peers: ['p0'], batch: 512, gso: true });
  const peer = await TestPeer.open(root, 't', 'p0', 'resp');
  try {
    resp.proc.kill('SIGSTOP');
    for (let id = 1; id <= 300; id++) await new Promise<void>((res) => peer.socket.send(peer.packet({ probeId: id }), resp.port, '127.0.0.1', () => res()));
    resp.proc.kill('SIGCONT');
    await until(10_000, () => peer.received.length === 300, 'every REPLY');
    const s = await resp.stats();
    assert.equal(s.replied, 300);
    assert.equal(s.send_errors, 0);
    assert.equal(s.gso_sent, 300, 'every REPLY left in a GSO message (none sent again one by one after a refused one)');
    assert.ok(peer.received.every((m) => m.length === 84), 'each REPLY its own datagram');
  } finally {
    peer.close();
    await resp.close();
  }
});

/** Run bench/c/prober with `args`; its stdout and stderr (rejects on a non-zero exit). */
function runProber(bin: string, args: string[]): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let so = '';
    let se = '';
    p.stdout.on('data', (d: Buffer) => (so += d.toString('utf8')));
    p.stderr.on('data', (d: Buffer) => (se += d.toString('utf8')));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code, sig) => {
      clearTimeout(t);
      if (code === 0) resolve({ out: so, err: se });
      else reject(new Error(`prober exited ${sig ?? code}: ${se}`));
    });
  });
}

/** The C prober's binary and a one-worker node Engine `resp` of `tenant` whose roster holds `agents`, keyed by a root of `fill` bytes. */
async function proberAndEngine(fill: number, tenant: string, agents: string[]): Promise<{ bin: string; root: Uint8Array; engine: Engine }> {
  const b = buildC('prober');
  assert.ok(b.bin, b.skip);
  const root = new Uint8Array(32).fill(fill);
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['resp', ...agents], listen: '127.0.0.1:0', workers: 1 });
  engine.on('warning', () => undefined);
  return { bin: b.bin!, root, engine };
}

test('C prober against a node Engine responder on loopback: received = sent, RTTs > 0, kernel timestamps', { skip, timeout: 30_000 }, async () => {
  const { bin, root, engine } = await proberAndEngine(7, 't-c', ['cprober']);
  try {
    const { out } = await runProber(bin, ['--root', toHex(root), '--tenant', 't-c', '--agent', 'cprober', '--target', `resp@127.0.0.1:${engine.address.port}`, '--rate', '2000', '--count', '500', '--grace-ms', '2000']);
    const j = JSON.parse(out.trim());
    assert.equal(j.sent, 500);
    assert.equal(j.received, j.sent, JSON.stringify(j));
    assert.equal(j.lost, 0);
    assert.equal(j.bad, 0);
    assert.equal(j.replay, 0);
    assert.equal(j.timestamps, 'kernel');
    assert.ok(j.rtt_us.min > 0 && j.rtt_us.p50 > 0 && j.rtt_us.p99 >= j.rtt_us.p50 && j.rtt_us.max >= j.rtt_us.p99, JSON.stringify(j.rtt_us));
    const s = engine.stats();
    assert.equal(s.replied, 500, 'the engine answered every probe');
    assert.equal(s.accepted, 500);
  } finally {
    await engine.close();
  }
});

test('C prober: replies its own socket drops are counted (rx_drops, SO_MEMINFO) — with a 4 KiB buffer read every 5 ms, lost = rx_drops exactly; with the default buffer none', { skip, timeout: 30_000 }, async () => {
  const b = buildC('prober');
  assert.ok(b.bin, b.skip);
  const root = new Uint8Array(32).fill(8);
  const resp = await CResponder.start({ root, tenant: 't-d', agent: 'resp', peers: ['cprober'] });
  try {
    const args = ['--root', toHex(root), '--tenant', 't-d', '--agent', 'cprober', '--target', `resp@127.0.0.1:${resp.port}`, '--rate', '20000', '--count', '4000', '--grace-ms', '500'];
    const starved = JSON.parse((await runProber(b.bin!, [...args, '--rcvbuf', '4096', '--pace-us', '5000'])).out.trim());
    assert.ok(starved.rx_drops > 0, `a 4 KiB buffer read every 5 ms drops replies: ${JSON.stringify(starved)}`);
    assert.equal(starved.lost, starved.rx_drops, 'on loopback every lost reply was dropped at the prober’s own socket');
    assert.equal(starved.sent, starved.received + starved.rx_drops);
    const fine = JSON.parse((await runProber(b.bin!, args)).out.trim());
    assert.equal(fine.rx_drops, 0, JSON.stringify(fine));
    assert.equal(fine.lost, 0);
    const s = await resp.stats();
    assert.equal(s.replied, 8000, 'the responder answered every probe of both runs');
  } finally {
    await resp.close();
  }
});

test('C prober --gso: each burst leaves as one GSO message the kernel cuts into the same PROBEs — the engine authenticates every one, none arrives malformed', { skip, timeout: 30_000 }, async () => {
  const { bin, root, engine } = await proberAndEngine(10, 't-s', ['cprober']);
  // waking every 2 ms at 20 k/s, about 40 probes fall due together: bursts of many
  const args = ['--root', toHex(root), '--tenant', 't-s', '--agent', 'cprober', '--target', `resp@127.0.0.1:${engine.address.port}`, '--rate', '20000', '--count', '2000', '--burst', '64', '--pace-us', '2000', '--grace-ms', '1000'];
  try {
    const gso = JSON.parse((await runProber(bin, [...args, '--gso'])).out.trim());
    assert.ok(gso.gso_sent > 1000, `most probes left in GSO messages: ${JSON.stringify(gso)}`);
    assert.deepEqual([gso.sent, gso.received, gso.lost, gso.send_errors, gso.bad], [2000, 2000, 0, 0, 0], JSON.stringify(gso));
    const plain = JSON.parse((await runProber(bin, args)).out.trim());
    assert.equal(plain.gso_sent, 0);
    assert.equal(plain.received, 2000, JSON.stringify(plain));
    const s = engine.stats();
    assert.equal(s.dropped.malformed, 0, 'every GSO segment arrived as one PROBE of its own length');
    assert.equal(s.accepted, 4000, 'every PROBE of both runs authenticated');
  } finally {
    await engine.close();
  }
});

test('C prober as the bench load generator: several agents, warm-up left out of every figure, presealed, every reply checked; against an echo the checks fail and --verify-every 0 counts them', { skip, timeout: 30_000 }, async () => {
  const agents = ['g0', 'g1', 'g2'];
  const { bin, root, engine } = await proberAndEngine(9, 't-g', agents);
  const load = (port: number, verifyEvery: number): string[] => [
    '--root', toHex(root), '--tenant', 't-g', '--agent', agents.join(','), '--target', `resp@127.0.0.1:${port}`, '--rate', '3000', '--count', '900',
    '--warmup-count', '300', '--preseal', '--verify-every', String(verifyEvery), '--pace-us', '50', '--burst', '64', '--grace-ms', '1000',
  ];
  try {
    const { out, err } = await runProber(bin, load(engine.address.port, 1));
    assert.equal(err, 'warm\n', 'one warm line once the warm-up is sent');
    const j = JSON.parse(out.trim());
    assert.deepEqual([j.sent, j.received, j.lost, j.warm_sent, j.warm_received], [600, 600, 0, 300, 300], JSON.stringify(j));
    assert.deepEqual([j.bad, j.replay, j.unmatched, j.duplicates], [0, 0, 0, 0], JSON.stringify(j));
    assert.equal(j.verified, 900, 'every reply checked (warm-up ones too)');
    assert.ok(j.cpu_us > 0, 'its own CPU measured');
    const s = engine.stats();
    assert.equal(s.accepted, 900, 'every presealed probe authenticated under its own agent\'s pair key');
  } finally {
    await engine.close();
  }
  // an echo returns the PROBE itself: checked, every one is bad; unchecked (the bench's echo mode), every one counts
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
  try {
    const port = echo.address().port;
    const checked = JSON.parse((await runProber(bin, load(port, 1))).out.trim());
    assert.equal(checked.received, 0, JSON.stringify(checked));
    assert.equal(checked.bad, 900, 'a PROBE is not a REPLY');
    const unchecked = JSON.parse((await runProber(bin, load(port, 0))).out.trim());
    assert.deepEqual([unchecked.received, unchecked.bad, unchecked.verified], [600, 0, 0], JSON.stringify(unchecked));
  } finally {
    echo.close();
  }
});
