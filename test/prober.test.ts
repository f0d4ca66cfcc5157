/**
 * The prober: exact loss / reorder / duplicate accounting against scripted responders,
 * forged and replayed replies dropped by the engine's verification (never matched), and
 * the CLI pair `serve` + `probe --json`, and `--metrics`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Engine } from '../src/engine.js';
import { probe } from '../src/prober.js';
import { encodePacket, parsePacket } from '../src/protocol/codec.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../src/protocol/sha256.js';
import { DROP_REASONS } from '../src/verdict.js';
import { repoRoot, wallUs } from './helpers.js';

const tenant = 't-probe';
const root = new Uint8Array(randomBytes(32));

/**
 * A scripted responder "resp" (not the engine): answers PROBEs with correctly signed
 * REPLYs, but `script` may drop, hold back or duplicate them.
 */
async function scriptedResponder(script: (probeId: number, send: () => void, sendLater: (afterProbeId: number) => void) => void) {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, tenant, 'resp', 'prober'), state, 0);
  let nonce = BigInt(wallUs());
  const held = new Map<number, () => void>(); // after probe id → send
  sock.on('message', (m, rinfo) => {
    const p = parsePacket(m)!;
    const send = (): void => {
      const reply = encodePacket({ type: 2, senderId: senderIdOf('resp'), nonce: ++nonce, probeId: p.probeId, sendTsUs: BigInt(wallUs()), payload: p.payload }, state);
      sock.send(reply, rinfo.port, rinfo.address);
    };
    script(p.probeId, send, (after) => held.set(after, send));
    const h = held.get(p.probeId);
    if (h) {
      held.delete(p.probeId);
      h();
    }
  });
  return sock;
}

async function proberEngine(): Promise<Engine> {
  return Engine.create({ rootKey: root, tenant, agent: 'prober', peers: ['resp'], workers: 1 });
}

test('loss is exact: a responder that drops chosen probes', async () => {
  const engine = await proberEngine();
  let first = -1;
  const dropped = new Set([3, 10, 11, 499]);
  const resp = await scriptedResponder((id, send) => {
    if (first < 0) first = id;
    if (!dropped.has((id - first) >>> 0)) send();
  });
  try {
    const r = await probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 500, rate: 5000, graceMs: 300 });
    assert.equal(r.sent, 500);
    assert.equal(r.received, 496);
    assert.equal(r.lost, 4);
    assert.equal(r.duplicates, 0);
    assert.equal(r.reordered, 0);
  } finally {
    resp.close();
    await engine.close();
  }
});

test('reordering and duplicates are exact: a responder that swaps two replies and repeats one', async () => {
  const engine = await proberEngine();
  let first = -1;
  const resp = await scriptedResponder((id, send, sendLater) => {
    if (first < 0) first = id;
    const seq = (id - first) >>> 0;
    if (seq === 20) sendLater((id + 1) >>> 0); // 20's reply leaves after 21's: one reordered
    else if (seq === 50) {
      send();
      send(); // a second, freshly signed REPLY for the same probe: a duplicate, not a success
    } else send();
  });
  try {
    const r = await probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 100, rate: 2000, graceMs: 300 });
    assert.equal(r.received, 100);
    assert.equal(r.lost, 0);
    assert.equal(r.reordered, 1);
    assert.equal(r.duplicates, 1);
    assert.ok(r.rtt_us.p50 > 0 && r.rtt_us.max >= r.rtt_us.p99 && r.rtt_us.p99 >= r.rtt_us.p50);
  } finally {
    resp.close();
    await engine.close();
  }
});

test('a forged or replayed reply injected at the prober is dropped and counted, never matched', async () => {
  const engine = await proberEngine();
  const captured: Buffer[] = [];
  const resp = await scriptedResponder((_id, send) => send());
  resp.on('message', () => undefined);
  const spy = dgram.createSocket('udp4');
  await new Promise<void>((r) => spy.bind(0, '127.0.0.1', () => r()));
  try {
    // capture replies by wrapping the scripted responder's sends
    const origSend = resp.send.bind(resp) as (...a: unknown[]) => void;
    (resp as any).send = (msg: Buffer, ...rest: unknown[]) => {
      captured.push(Buffer.from(msg));
      origSend(msg, ...rest);
    };
    const run = probe(engine, { agent: 'resp', host: '127.0.0.1', port: resp.address().port, count: 200, rate: 1000, graceMs: 300 });
    while (captured.length < 20) await new Promise((r) => setTimeout(r, 5));
    const port = engine.address.port;
    const forged = Buffer.from(captured[10]!);
    forged.writeUInt32BE((forged.readUInt32BE(22) + 150) >>> 0, 22); // aim at a probe not yet answered
    spy.send(forged, port, '127.0.0.1'); // MAC no longer matches
    spy.send(captured[5]!, port, '127.0.0.1'); // a verbatim replay of an accepted reply
    const r = await run;
    assert.equal(r.sent, 200);
    assert.equal(r.received, 200);
    assert.equal(r.duplicates, 0, 'the replay was not even a duplicate: verification dropped it first');
    assert.equal(r.dropped.bad_mac, 1);
    assert.equal(r.dropped.replay, 1);
  } finally {
    spy.close();
    resp.close();
    await engine.close();
  }
});

const cli = path.join(repoRoot, 'dist', 'cli.js');

test('CLI: probe --count 20000 --rate 20000 against serve → 20000 received, 0 lost, 0 duplicates, 0 reordered; --metrics serves the same books', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-probe-'));
  assert.equal(spawnSync(process.execPath, [cli, 'keys', 'init', '--state-dir', dir]).status, 0);
  const child = spawn(process.execPath, [cli, 'serve', '--state-dir', dir, '--tenant', 't', '--agent', 'A', '--peers', 'A,B', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  try {
    const deadline = Date.now() + 15_000;
    while (!(/metrics at http:\/\/127\.0\.0\.1:(\d+)/.test(out) && /listening on 127\.0\.0\.1:(\d+)/.test(out)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const mport = Number(/metrics at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const json = path.join(dir, 'probe.json');
    const p = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, [cli, 'probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${port}`, '--count', '20000', '--rate', '20000', '--json', json]);
      let o = '';
      let e = '';
      c.stdout.on('data', (d) => (o += d));
      c.stderr.on('data', (d) => (e += d));
      c.on('exit', (code) => resolve({ code, out: o, err: e }));
    });
    assert.equal(p.code, 0, p.err);
    const r = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.deepEqual(Object.keys(r), ['sent', 'received', 'lost', 'duplicates', 'reordered', 'rtt_us', 'jitter_us', 'offered_pps', 'achieved_pps', 'throughput_bps', 'duration_s', 'dropped']);
    assert.deepEqual(Object.keys(r.rtt_us), ['min', 'p50', 'p90', 'p99', 'p999', 'max']);
    assert.deepEqual(Object.keys(r.dropped), [...DROP_REASONS]);
    assert.equal(r.sent, 20000);
    assert.equal(r.received, 20000);
    assert.equal(r.lost, 0);
    assert.equal(r.duplicates, 0);
    assert.equal(r.reordered, 0);
    assert.ok(Math.abs(r.offered_pps - 20000) <= 400, `paced within 2 % of --rate (offered ${r.offered_pps} pps)`);
    assert.match(p.out, /sent 20000, received 20000, lost 0/);
    const text = await new Promise<string>((resolve, reject) =>
      http.get(`http://127.0.0.1:${mport}/metrics`, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      }).on('error', reject),
    );
    assert.match(text, /^dtmesh_received_total 20000$/m);
    assert.match(text, /^dtmesh_accepted_total 20000$/m);
    assert.match(text, /^dtmesh_replied_total 20000$/m);
    assert.match(text, /^dtmesh_dropped_total\{reason="bad_mac"\} 0$/m);
    assert.match(text, /^dtmesh_verdict_latency_us_count 20000$/m);
    // an unreachable target: one line, exit 1
    const dead = spawnSync(process.execPath, [cli, 'probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', 'A@127.0.0.1:9', '--count', '5', '--grace-ms', '200'], { encoding: 'utf8' });
    assert.equal(dead.status, 1);
    assert.equal(dead.stderr.trim().split('\n').length, 1);
    assert.match(dead.stderr, /no verified REPLY from A/);
    const bad = spawnSync(process.execPath, [cli, 'probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', 'nonsense'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--target must be AGENT@HOST:PORT/);
  } finally {
    child.kill('SIGTERM');
  }
});
