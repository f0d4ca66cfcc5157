/**
 * The mesh agent (src/probe/agent.ts, `dtmesh agent`) over real UDP on 127.0.0.1:
 * agents measuring each other continuously; a roster change and a root rotation while
 * probing lose no probe; the heartbeat file is applied when it changes and on SIGHUP;
 * the metrics are clean for promtool and a real Prometheus answers `histogram_quantile`
 * per peer; the HTML report is well-formed and self-contained with one cell per pair.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { initRootKey } from '../../src/keys/keystore.js';
import { serveMetrics } from '../../src/observe/metrics.js';
import { renderReport } from '../../src/observe/report.js';
import { MeshAgent } from '../../src/probe/agent.js';
import { dtmeshVersion, SCHEMA_VERSION } from '../../src/probe/context.js';
import type { MeshInterval } from '../../src/probe/mesh.js';
import { promtoolCheck, repoRoot, tempDir, until, within } from '../helpers.js';

const tenant = 'tenant-mesh';
const schedule = { burst: 10, rate: 500, everyS: 0.25, size: 84, graceMs: 500 };

/** `n` in-process agents probing each other on 127.0.0.1. */
async function mesh(names: string[], root: Uint8Array, roster = names): Promise<MeshAgent[]> {
  const agents: MeshAgent[] = [];
  for (const name of names) agents.push(await MeshAgent.create({ rootKey: root, tenant, agent: name, peers: roster, workers: 1, replayWindow: 1024, rotationGraceMs: 5000, schedule, addresses: [] }));
  for (const a of agents) for (const b of agents) if (a !== b) a.setAddress({ agent: b.engine.agent, host: '127.0.0.1', port: b.engine.address.port });
  return agents;
}

test('a roster change and a root rotation while probing lose no probe; the old root verifies in flight; the new member is probed', async () => {
  const root = new Uint8Array(randomBytes(32));
  const agents = await mesh(['a', 'b'], root);
  const intervals: MeshInterval[] = [];
  for (const a of agents) a.prober.on('interval', (i: MeshInterval) => intervals.push(i));
  let c: MeshAgent | null = null;
  try {
    await until(10_000, () => intervals.length >= 4, 'bursts before the change');
    // the control plane: a new root and a third member, delivered to both agents in the same tick
    const newRoot = randomBytes(32);
    c = (await mesh(['c'], new Uint8Array(newRoot), ['a', 'b', 'c']))[0]!;
    c.prober.on('interval', (i: MeshInterval) => intervals.push(i));
    const hb = { tenant_id: tenant, mesh_root_key: newRoot.toString('base64'), peers: ['a', 'b', 'c'] };
    for (const a of agents) assert.deepEqual(a.applyHeartbeat(hb), { rotated: true });
    for (const a of agents) a.setAddress({ agent: 'c', host: '127.0.0.1', port: c.engine.address.port });
    for (const a of agents) c.setAddress({ agent: a.engine.agent, host: '127.0.0.1', port: a.engine.address.port });
    const mark = intervals.length;
    await until(10_000, () => intervals.slice(mark).filter((i) => i.peer === 'c').length >= 4, 'the new member probed');
    await until(10_000, () => intervals.slice(mark).filter((i) => i.from === 'a' && i.peer === 'b').length >= 4, 'a → b after the change');
    for (const x of [...agents, c]) await x.prober.stop();
    const figs = [...agents, c].flatMap((x) => x.prober.figures().map((f) => ({ from: x.engine.agent, ...f })));
    for (const f of figs) {
      assert.ok(f.sent > 0, `${f.from} → ${f.peer} probed`);
      assert.equal(f.lost, 0, `${f.from} → ${f.peer}: no probe lost to the change (${JSON.stringify(f)})`);
      assert.equal(f.received, f.sent, `${f.from} → ${f.peer}: every probe answered`);
    }
    for (const x of agents) assert.equal(x.engine.stats().dropped.bad_mac, 0, 'probes signed under the old root in flight still verified (grace)');
    assert.equal(intervals.filter((i) => i.from === 'c').length > 0, true, 'the new member probes too');
  } finally {
    for (const x of agents) await within(10_000, x.close(), 'close');
    if (c !== null) await within(10_000, c.close(), 'close');
  }
});

/** Start `dtmesh agent` with `args`; resolves once it printed its start line. */
async function startAgent(args: string[]): Promise<{ child: ReturnType<typeof spawn>; out: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'agent', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until(15_000, () => /dtmesh agent: agent \S+ of tenant/.test(out) || child.exitCode !== null, 'the agent start line');
  assert.equal(child.exitCode, null, out);
  return { child, out: () => out, exit };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

test('dtmesh agent: the heartbeat file is applied when it changes and on SIGHUP, an invalid one changes nothing; NDJSON intervals, and an end line naming the signal that stopped it (interrupted); report and metrics', async () => {
  const dir = tempDir('dtmesh-agent-');
  const root = initRootKey(dir, false);
  const hbFile = path.join(dir, 'heartbeat.json');
  const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');
  fs.writeFileSync(hbFile, JSON.stringify({ tenant_id: tenant, mesh_root_key: b64(root), peers: ['a', 'b'] }));
  const [pa, pb, pm] = [await freePort(), await freePort(), await freePort()];
  const stream = path.join(dir, 'a.ndjson');
  const report = path.join(dir, 'a.html');
  const common = ['--state-dir', dir, '--tenant', tenant, '--burst', '5', '--rate', '500', '--every', '0.2', '--grace-ms', '500'];
  const a = await startAgent([...common, '--agent', 'a', '--listen', `127.0.0.1:${pa}`, '--peers', `b@127.0.0.1:${pb}`, '--heartbeat', hbFile, '--json-stream', stream, '--report', report, '--metrics', `127.0.0.1:${pm}`]);
  const b = await startAgent([...common, '--agent', 'b', '--listen', `127.0.0.1:${pb}`, '--peers', `a@127.0.0.1:${pa}`]);
  try {
    await until(10_000, () => /heartbeat applied \(start\): same root; roster 1 peers, probing 1/.test(a.out()), 'the heartbeat read at start');
    fs.writeFileSync(hbFile, JSON.stringify({ tenant_id: tenant, mesh_root_key: b64(root), peers: ['a', 'b', 'c'] }));
    await until(10_000, () => /heartbeat applied \(file changed\): same root; roster 2 peers/.test(a.out()), 'a changed heartbeat file applied');
    fs.writeFileSync(hbFile, '{"tenant_id": "other", "mesh_root_key": "x"}');
    await until(10_000, () => /heartbeat not applied \(file changed\): /.test(a.out()), 'an invalid heartbeat refused in one line');
    // malformed JSON around the key (the key unquoted): refused without a byte of the key in the log
    fs.writeFileSync(hbFile, `{"tenant_id": "${tenant}", "mesh_root_key": ${b64(root)}}`);
    await until(10_000, () => /heartbeat not applied \(file changed\): \S+ is not valid JSON/.test(a.out()), 'malformed JSON refused in one line');
    assert.ok(!a.out().includes(b64(root).slice(0, 6)), `no key material in the log:\n${a.out()}`);
    fs.writeFileSync(hbFile, JSON.stringify({ tenant_id: tenant, mesh_root_key: b64(randomBytes(32)), peers: ['a', 'b'] }));
    a.child.kill('SIGHUP');
    await until(10_000, () => /heartbeat applied \((SIGHUP|file changed)\): root rotated/.test(a.out()), 'a rotation applied');
    const text = await (await within(5000, fetch(`http://127.0.0.1:${pm}/metrics`), 'GET /metrics')).text();
    assert.match(text, /^dtmesh_probe_sent_total\{peer="b"\} \d+$/m);
    assert.match(text, /^dtmesh_probe_send_errors_total\{peer="b"\} 0$/m, 'refusals per peer: none on loopback');
    assert.match(text, /^dtmesh_probe_rtt_seconds_bucket\{peer="b",le="\+Inf"\} \d+$/m);
    const lint = promtoolCheck(text);
    if (lint !== undefined) assert.equal(lint, null, `promtool check metrics: ${lint}`);
    else assert.ok(!process.env.CI, 'CI installs promtool');
    // the steps above can all finish within ~1 s on a fast machine: run until the stream holds
    // enough intervals to check, rather than hoping the steps took long enough (seen: 4)
    const intervals = (): number => (fs.existsSync(stream) ? fs.readFileSync(stream, 'utf8').split('\n').filter((l) => l.includes('"type":"interval"')).length : 0);
    await until(15_000, () => intervals() >= 5, 'five intervals streamed');
  } finally {
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    assert.equal(await within(15_000, a.exit, 'agent a exits'), 0, a.out());
    await within(15_000, b.exit, 'agent b exits');
  }
  const lines = fs.readFileSync(stream, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; peer?: string; sent?: number; received?: number; lost?: number });
  assert.equal(lines[0]!.type, 'start');
  assert.deepEqual(Object.keys((lines[0] as unknown as { schedule: object }).schedule), ['burst', 'rate_pps', 'every_s', 'size', 'grace_ms'], 'snake_case keys, as every JSON document of dtmesh');
  assert.equal(lines.at(-1)!.type, 'end');
  // MEASUREMENT.md §3: every line has the schema version, the version, the start time, the lane and timestamp source, the host, the configuration
  for (const l of lines as unknown as Array<Record<string, unknown> & { host: { node: string } }>) {
    assert.equal(l.schema_version, SCHEMA_VERSION, `${l.type}: schema_version`);
    assert.equal(l.start_time, (lines[0] as unknown as { start: string }).start, `${l.type}: the run's start time`);
    assert.equal(l.version, dtmeshVersion());
    assert.ok(['native', 'dgram'].includes(l.lane as string) && ['kernel', 'js'].includes(l.timestamps as string), `${l.type}: lane ${l.lane}, timestamps ${l.timestamps}`);
    assert.equal(l.host.node, process.version);
    assert.equal((l.config as { replay_window: number }).replay_window, 1024);
  }
  const iv = lines.filter((l) => l.type === 'interval');
  assert.ok(iv.length >= 5, `intervals streamed (${iv.length})`);
  const end = lines.at(-1) as unknown as { interrupted: string | null; peers: Array<{ peer: string; sent: number; received: number; lost: number }> };
  assert.equal(end.interrupted, 'SIGTERM', 'the end line names the signal that stopped the agent, as probe\'s report does');
  const sum = (k: 'sent' | 'received' | 'lost'): number => iv.filter((l) => l.peer === 'b').reduce((x, l) => x + l[k]!, 0);
  const tot = end.peers.find((p) => p.peer === 'b')!;
  assert.deepEqual([sum('sent'), sum('received') + sum('lost')], [tot.sent, tot.received + tot.lost], 'the intervals add up to the totals');
  assert.ok(fs.readFileSync(report, 'utf8').startsWith('<!DOCTYPE html>'));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Tags the report uses, checked to nest properly (void and self-closed elements aside). */
function wellFormed(html: string): void {
  const stack: string[] = [];
  const voids = new Set(['meta', 'br', 'hr', 'img', 'input', 'link', '!doctype']);
  for (const m of html.matchAll(/<(\/?)([!a-zA-Z][a-zA-Z0-9]*)[^>]*?(\/?)>/g)) {
    const [, close, rawName, selfClose] = m;
    const name = rawName!.toLowerCase();
    if (voids.has(name) || selfClose === '/') continue;
    if (close === '/') assert.equal(stack.pop(), name, `</${name}> closes <${stack.at(-1)}>`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], 'every element closed');
}

test('the HTML report of a 3-agent mesh: well-formed, self-contained, one cell per directed pair in each matrix, a section per pair', async () => {
  const agents = await mesh(['x', 'y', 'z'], new Uint8Array(randomBytes(32)));
  try {
    await until(10_000, () => agents.every((a) => a.prober.figures().every((f) => f.received >= 20)), 'some probing');
    for (const a of agents) await a.prober.stop();
    const pairs = agents.flatMap((a) => a.reportPairs());
    const html = renderReport({ title: 'mesh <test> & "report"', generated: new Date().toISOString(), agents: ['x', 'y', 'z'], pairs });
    wellFormed(html);
    assert.ok(!/<script|https?:\/\/|\bsrc=|@import|url\(/i.test(html), 'nothing fetched: no script, no link, no URL');
    assert.ok(html.includes('mesh &lt;test&gt; &amp; &quot;report&quot;'), 'text is escaped');
    assert.equal(pairs.length, 6);
    const cells = [...html.matchAll(/<td style="background:[^"]+" title="([^"]+)">/g)].map((m) => m[1]);
    assert.equal(cells.length, 3 * 6, 'three matrices, one cell per directed pair');
    assert.equal(new Set(cells).size, 6);
    assert.equal([...html.matchAll(/<section id="pair-/g)].length, 6);
    assert.equal([...html.matchAll(/<polyline /g)].length, 6 * 3, 'per pair: p50 and p99 over time, and the percentile curve');
    // the percentile curve stays inside the exact [min, max]: one RTT of 8000 µs is 8000 at every percentile (HDR's bucket top is 8003)
    const h = agents[0]!.prober.histograms()[0]!.histogram;
    h.reset();
    h.recordValue(8000);
    const curve = agents[0]!.reportPairs().find((p) => p.to === agents[0]!.prober.histograms()[0]!.peer)!.percentiles;
    assert.deepEqual(new Set(curve.map(([, us]) => us)), new Set([8000]), JSON.stringify(curve));
  } finally {
    for (const a of agents) await within(10_000, a.close(), 'close');
  }
});

test('a real Prometheus scrapes three agents and answers histogram_quantile per peer', async (t) => {
  const which = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
  if (which.error !== undefined) {
    assert.ok(!process.env.CI, 'CI installs Debian prometheus');
    console.log('# prometheus not on PATH: the scrape test is skipped');
    t.skip('prometheus not on PATH');
    return;
  }
  const agents = await mesh(['p1', 'p2', 'p3'], new Uint8Array(randomBytes(32)));
  const servers = await Promise.all(agents.map((a) => serveMetrics(a.registry(), '127.0.0.1', 0)));
  const dir = tempDir('dtmesh-prom-');
  const port = await freePort();
  const targets = servers.map((s) => `'127.0.0.1:${(s.address() as net.AddressInfo).port}'`).join(', ');
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dtmesh\n    static_configs:\n      - targets: [${targets}]\n`);
  const prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  try {
    const q = encodeURIComponent('histogram_quantile(0.5, dtmesh_probe_rtt_seconds_bucket)');
    let result: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
    const end = Date.now() + 40_000;
    while (result.length < 6) {
      assert.ok(Date.now() < end, `Prometheus answers for 3 agents × 2 peers within 40 s (got ${JSON.stringify(result)})`);
      await new Promise((r) => setTimeout(r, 500));
      try {
        const r = await within(5000, fetch(`http://127.0.0.1:${port}/api/v1/query?query=${q}`), 'query');
        const j = (await r.json()) as { data?: { result?: typeof result } };
        result = (j.data?.result ?? []).filter((x) => Number(x.value[1]) > 0);
      } catch {
        // not up yet
      }
    }
    const pairs = new Set(result.map((x) => `${x.metric.instance} → ${x.metric.peer}`));
    assert.equal(pairs.size, 6, [...pairs].join(', '));
    for (const x of result) assert.ok(Number(x.value[1]) > 0 && Number(x.value[1]) < 0.5, `a median RTT in seconds on loopback: ${x.value[1]}`);
  } finally {
    prom.kill('SIGTERM');
    for (const s of servers) s.close();
    for (const a of agents) await within(10_000, a.close(), 'close');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dtmesh agent: one line for a peer address of the other family than --listen, and a progress line every 10 s', async () => {
  const dir = tempDir('dtmesh-agent-');
  initRootKey(dir, false);
  const roster = path.join(dir, 'roster');
  fs.writeFileSync(roster, 'b@[::1]:9\nc@127.0.0.1:9\nd\n');
  const a = await startAgent(['--state-dir', dir, '--tenant', tenant, '--agent', 'a', '--listen', '127.0.0.1:0', '--peers-file', roster, '--every', '0.5', '--grace-ms', '100', '--duration', '10.6']);
  // a re-read roster that gives d an IPv6 address: said then, once
  fs.writeFileSync(roster, 'b@[::1]:9\nc@127.0.0.1:9\nd@[::1]:10\n');
  a.child.kill('SIGHUP');
  assert.equal(await within(30_000, a.exit, 'the agent ends after --duration'), 0, a.out());
  assert.match(a.out(), /peer b at ::1: an IPv6 address, but --listen is IPv4: every probe to it will be refused/);
  assert.equal(a.out().match(/peer b at ::1/g)!.length, 1, 'once per peer and address');
  assert.match(a.out(), /peer d at ::1: an IPv6 address/, 'an address from a re-read roster is checked too');
  assert.doesNotMatch(a.out(), /peer c at/, 'nothing said of a peer of the right family');
  assert.match(a.out(), /^dtmesh agent: 3 peers probed: sent \d+, received 0, lost \d+, late 0; received/m, 'a progress line within the run');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('dtmesh agent: a roster file re-read on SIGHUP with a bad line is one line with one prefix (no usage hint mid-run), and the roster stays', async () => {
  const dir = tempDir('dtmesh-agent-roster-');
  initRootKey(dir, false);
  const roster = path.join(dir, 'roster');
  fs.writeFileSync(roster, 'b@127.0.0.1:9\n');
  try {
    const a = await startAgent(['--state-dir', dir, '--tenant', tenant, '--agent', 'a', '--listen', '127.0.0.1:0', '--peers-file', roster, '--every', '0.5', '--grace-ms', '100', '--duration', '3']);
    fs.writeFileSync(roster, 'b@127.0.0.1:9\nc@127.0.0.1:x\n');
    a.child.kill('SIGHUP');
    assert.equal(await within(30_000, a.exit, 'the agent ends after --duration'), 0, a.out());
    const line = a.out().split('\n').find((l) => l.includes('roster file not applied'));
    assert.equal(line, "dtmesh agent: roster file not applied (SIGHUP): --peers-file entry 'c@127.0.0.1:x' must be HOST:PORT (or [IPv6]:PORT) with a port from 0 to 65535, got '127.0.0.1:x'", a.out());
    assert.match(a.out(), /dtmesh agent: a → b: sent [1-9]/, 'b still probed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dtmesh agent --size above the default largest datagram (2048) runs: its engine takes datagrams as long as its probes, as probe does; a size past UDP\'s limit is a one-line error naming --size', async () => {
  const dir = tempDir('dtmesh-agent-size-');
  initRootKey(dir, false);
  try {
    const id = ['--state-dir', dir, '--tenant', tenant, '--agent', 'a', '--listen', '127.0.0.1:0', '--peers', 'b@127.0.0.1:9'];
    const a = await startAgent([...id, '--size', '3000', '--every', '0.2', '--duration', '0.6']);
    assert.equal(await within(30_000, a.exit, 'the agent ends after --duration'), 0, a.out());
    assert.match(a.out(), /dtmesh agent: a → b: sent [1-9]\d*, /, a.out());
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'agent', ...id, '--size', '70000'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--size/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dtmesh agent --json-stream: a reader gone (EPIPE) or a full disk (/dev/full) ends the stream with one line, not a crash — the run goes on and ends normally; a second agent refused as already running leaves the first one\'s stream whole, to its end line (interrupted: null, --duration ran out)', async () => {
  const dir = tempDir('dtmesh-agent-stream-');
  initRootKey(dir, false);
  const cli = path.join(repoRoot, 'dist', 'cli.js');
  const id = ['--state-dir', dir, '--tenant', tenant, '--listen', '127.0.0.1:0', '--peers', 'b@127.0.0.1:9', '--every', '0.1', '--grace-ms', '50'];
  try {
    // stdout closed by its reader after the first bytes, as `| head -c 10` does
    const piped = spawn(process.execPath, [cli, 'agent', ...id, '--agent', 'a', '--json-stream', '-', '--duration', '1.5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    piped.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    piped.stdout!.once('data', () => piped.stdout!.destroy());
    const code = await within(30_000, new Promise<number | null>((r) => piped.on('exit', (c) => r(c))), 'the agent with a closed stdout');
    assert.equal(code, 0, err);
    assert.match(err, /--json-stream stdout: cannot write \(EPIPE\): no more lines there; the run goes on/);
    assert.match(err, /dtmesh agent: stopped\./, 'it drained and said so');
    assert.doesNotMatch(err, /\n\s+at |node:events/, 'no stack trace');
    // --json-stream /dev/stdout: the stream and the agent's own lines share the pipe that closes
    const report = path.join(dir, 'r.html');
    // (a real pipe, as a shell makes it: Node's own 'pipe' stdio is a socket, which /dev/stdout cannot be opened on)
    const quote = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
    const line = [process.execPath, cli, 'agent', ...id, '--agent', 'a', '--json-stream', '/dev/stdout', '--report', report, '--duration', '1.5'].map(quote).join(' ');
    const shared = spawnSync('bash', ['-c', `${line} 2>"$0" | head -c 50 >/dev/null; echo "rc=\${PIPESTATUS[0]}"`, path.join(dir, 'err2')], { encoding: 'utf8', timeout: 30_000 });
    const err2 = fs.readFileSync(path.join(dir, 'err2'), 'utf8');
    assert.match(shared.stdout, /^rc=0$/m, `${shared.stdout}${err2}`);
    assert.doesNotMatch(err2, /\n\s+at |node:events/, 'no stack trace');
    assert.ok(fs.existsSync(report), 'the report was written at the end');
    const full = spawnSync(process.execPath, [cli, 'agent', ...id, '--agent', 'a', '--json-stream', '/dev/full', '--duration', '0.5'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(full.status, 0, full.stderr + full.stdout);
    assert.match(full.stdout, /--json-stream \/dev\/full: cannot write \(ENOSPC\)/);
    // the lock decides before the stream is opened
    const file = path.join(dir, 'stream.ndjson');
    const first = await startAgent([...id, '--agent', 'a', '--json-stream', file, '--duration', '3']);
    await until(10_000, () => fs.readFileSync(file, 'utf8').includes('"start"'), 'the first agent\'s start line');
    const second = spawnSync(process.execPath, [cli, 'agent', ...id, '--agent', 'a', '--json-stream', file, '--duration', '1'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(second.status, 1, second.stderr);
    assert.match(second.stderr, /already running/);
    assert.match(fs.readFileSync(file, 'utf8'), /"type":"start"/, 'the running agent\'s stream still has its start line');
    assert.equal(await within(30_000, first.exit, 'the first agent ends'), 0, first.out());
    const end = JSON.parse(fs.readFileSync(file, 'utf8').trimEnd().split('\n').at(-1)!) as { type: string; interrupted: string | null };
    assert.deepEqual([end.type, end.interrupted], ['end', null], '--duration ran out: nothing interrupted it');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dtmesh agent --heartbeat: a FIFO at the path is refused in one line, never waited on for ever (keys apply-heartbeat, one shot, still reads a pipe); a heartbeat file other users can read is applied with one line saying so', () => {
  const dir = tempDir('dtmesh-agent-hb-');
  const root = initRootKey(dir, false);
  const cli = path.join(repoRoot, 'dist', 'cli.js');
  try {
    const fifo = path.join(dir, 'hb.fifo');
    spawnSync('mkfifo', [fifo]);
    const id = ['--state-dir', dir, '--tenant', tenant, '--agent', 'a', '--listen', '127.0.0.1:0', '--peers', 'b'];
    const a = spawnSync(process.execPath, [cli, 'agent', ...id, '--heartbeat', fifo, '--duration', '0.5'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(a.status, 0, `${a.stdout}${a.stderr}${a.signal ?? ''}`);
    assert.match(a.stdout, /heartbeat not applied \(start\): cannot read .*hb\.fifo: not a regular file \(a FIFO\)/);
    // keys apply-heartbeat is one shot: a pipe is how a key never rests on disk (--file <(vault read …)): a FIFO with a writer
    const hbText = JSON.stringify({ tenant_id: tenant, mesh_root_key: Buffer.from(root).toString('base64') });
    const writer = spawn('sh', ['-c', 'printf "%s" "$1" > "$0"', fifo, hbText], { stdio: 'ignore' }); // blocks until keys opens the FIFO
    const k = spawnSync(process.execPath, [cli, 'keys', 'apply-heartbeat', '--state-dir', dir, '--file', fifo], { encoding: 'utf8', timeout: 20_000 });
    writer.kill();
    assert.equal(k.status, 0, `${k.stderr}${k.signal ?? ''}`);
    assert.match(k.stdout, /applied heartbeat for tenant/);
    assert.doesNotMatch(k.stderr, /can be read by other users/, 'a pipe is not a file at rest');
    const hb = path.join(dir, 'hb.json');
    fs.writeFileSync(hb, hbText, { mode: 0o644 });
    fs.chmodSync(hb, 0o644);
    const b = spawnSync(process.execPath, [cli, 'agent', ...id, '--heartbeat', hb, '--duration', '0.5'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /hb\.json can be read by other users \(mode 0644\) and holds the root key: chmod 600 it/);
    assert.match(b.stdout, /heartbeat applied \(start\): same root/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('embedding a mesh agent: a bad size, address or port is refused up front with a RangeError naming it, and a refused setAddress keeps the address the peer had', async () => {
  const root = new Uint8Array(randomBytes(32));
  const base = { rootKey: root, tenant, agent: 'a', peers: ['c'], workers: 1, addresses: [] };
  /** `opts` must be refused with a RangeError matching `what`; an agent made anyway is closed first (else it would keep the test alive). */
  const refused = async (opts: Parameters<typeof MeshAgent.create>[0], what: RegExp, label: string): Promise<void> => {
    let made: MeshAgent | null = null;
    try {
      made = await MeshAgent.create(opts);
    } catch (e) {
      assert.ok(e instanceof RangeError && what.test(e.message), `${label}: ${String(e)}`);
      return;
    }
    await within(10_000, made.close(), 'close');
    assert.fail(`${label}: accepted`);
  };
  for (const size of [10, 49, 1.5, 70_000]) await refused({ ...base, schedule: { ...schedule, size } }, /size/, `size ${size}`);
  for (const addr of [{ agent: 'c', host: '127.0.0.1', port: 0 }, { agent: 'c', host: '', port: 9 }, { agent: 'c', host: '127.0.0.1', port: 65_536 }]) {
    await refused({ ...base, schedule, addresses: [addr] }, /port|host/, JSON.stringify(addr));
  }
  const a = await MeshAgent.create({ ...base, schedule, addresses: [{ agent: 'c', host: '127.0.0.1', port: 9 }] });
  try {
    assert.throws(() => a.setAddress({ agent: 'c', host: '127.0.0.1', port: -1 }), RangeError);
    assert.throws(() => a.setAddress({ agent: 'c', host: '', port: 9 }), RangeError);
    assert.deepEqual(a.prober.targets, [{ agent: 'c', host: '127.0.0.1', port: 9 }], 'the configured address stays');
  } finally {
    await within(10_000, a.close(), 'close');
  }
});

test('embedding a mesh agent: a bad schedule leaves no engine behind; MeshAgent is in the public API; a peer that leaves the roster takes its kept bursts with it; the default process metrics are made once', async () => {
  const api = await import('../../src/index.js');
  assert.equal(api.MeshAgent, MeshAgent, 'MeshAgent is exported from the package entry');
  const dir = tempDir('dtmesh-embed-');
  const root = initRootKey(dir, false);
  await assert.rejects(MeshAgent.create({ stateDir: dir, rootKey: root, tenant, agent: 'a', peers: ['c'], workers: 1, schedule: { ...schedule, burst: 0 }, addresses: [] }), RangeError);
  // the engine that create() made was closed: its state lock is free again
  const again = await api.Engine.create({ stateDir: dir, tenant, agent: 'a', peers: ['c'], workers: 1 });
  await again.close();
  const [a, c] = await mesh(['a', 'c'], root);
  try {
    await until(10_000, () => a.reportPairs().some((p) => p.to === 'c' && p.series.length >= 2), 'bursts kept for c');
    a.setPeers([]);
    a.setPeers(['c']);
    assert.deepEqual(a.reportPairs().find((p) => p.to === 'c')?.series ?? [], [], 'a member that rejoins starts afresh: no bursts of its earlier membership beside counts that restarted');
    const names = (r: ReturnType<MeshAgent['registry']>): unknown => r.getMetricsAsArray().find((m) => (m as { name: string }).name === 'nodejs_eventloop_lag_seconds');
    assert.equal(names(a.registry()), names(c.registry()), 'one event-loop monitor for the process, not one per registry');
  } finally {
    for (const x of [a, c]) await within(10_000, x.close(), 'close');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => a.setPeers(['c']), /engine is closed/, 'a roster change after close is refused, as a heartbeat is');
});
