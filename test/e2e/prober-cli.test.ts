/**
 * `dtmesh probe` output contract (MEASUREMENT.md §2–3): `--json -` on stdout with human
 * lines on stderr, `--json-stream` (start / interval / end, every line valid against the
 * schema, interval sums = totals), `--histogram`, `--warmup`, jumbo `--size` with
 * `--max-datagram`, `--version`, and threshold exit code 3; through a scripted relay, the
 * CLI's `--replay-window` (window by default, strict with 0) and `--max-loss` breached.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { nativeLane, nativeLaneStatus } from '../../src/protocol/native.js';
import { type Action, type Dir, startRelay } from '../fixtures/relay.js';
import { cliPath, startServe, stateDir, type Served, within } from '../helpers.js';
import { assertValidReport } from '../probe/validate.js';

let dir = '';
let serve: Served;

before(async () => {
  dir = stateDir();
  serve = await startServe(['--state-dir', dir, '--tenant', 't', '--agent', 'A', '--peers', 'A,B', '--listen', '127.0.0.1:0', '--replay-window', '1024', '--max-datagram', '9000']);
});

after(async () => {
  await serve?.stop();
});

/** Run the CLI to its exit (bounded). */
async function cli(args: string[], ms = 30_000): Promise<{ code: number | null; out: string; err: string }> {
  const c = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout.on('data', (d) => (out += d));
  c.stderr.on('data', (d) => (err += d));
  try {
    return await within(ms, new Promise((resolve) => c.on('exit', (code) => resolve({ code, out, err }))), `dtmesh ${args.join(' ')}`);
  } finally {
    c.kill('SIGKILL');
  }
}

const base = (): string[] => ['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${serve.port}`];

test('--version: dtmesh --version and probe --version print the package version', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(cliPath), '..', 'package.json'), 'utf8'));
  for (const args of [['--version'], ['probe', '--version']]) {
    const r = await cli(args);
    assert.equal(r.code, 0);
    assert.equal(r.out, `dtmesh ${pkg.version}\n`);
  }
});

test('--json - --json-stream FILE --histogram FILE --warmup --interval, 4000-byte probes: stdout is the report alone; the stream is start, intervals, end', async () => {
  const stream = path.join(dir, 'stream.ndjson');
  const hist = path.join(dir, 'hist.txt');
  const r = await cli([...base(), '--count', '1500', '--rate', '3000', '--size', '4000', '--grace-ms', '300', '--warmup', '0.2', '--interval', '0.1', '--json', '-', '--json-stream', stream, '--histogram', hist]);
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out); // stdout holds exactly one JSON document
  assertValidReport(rep, '--json -');
  assert.equal(rep.type, 'end');
  assert.equal(rep.sent, 1500, 'the warm-up probes are in no figure');
  assert.equal(rep.received, 1500);
  assert.ok(rep.warmup.probes >= 300, `warm-up sent ${rep.warmup.probes} probes over 0.2 s`);
  assert.equal(rep.config.size, 4000);
  assert.equal(rep.config.max_datagram, 4000, '--size above 2048 raises the prober’s max datagram');
  const bps = (rep.received * 4000 * 8) / rep.duration_s; // duration_s is rounded to 1 ms
  assert.ok(Math.abs(rep.throughput_bps - bps) / bps < 0.005, `throughput ${rep.throughput_bps} bit/s of 4000-byte replies ≈ ${Math.round(bps)}`);
  assert.match(r.err, /sent 1500, received 1500, lost 0/, 'the human summary went to stderr');
  assert.match(rep.start_time, /Z$/);
  // the default lane: $DTMESH_LANE, else auto — native (kernel stamps) wherever it is built
  const lane = process.env.DTMESH_LANE === 'dgram' || process.env.DTMESH_LANE === 'native' ? process.env.DTMESH_LANE : nativeLane !== null ? 'native' : 'dgram';
  assert.equal(rep.lane, lane);
  assert.equal(rep.timestamps, lane === 'native' ? 'kernel' : 'js');
  assert.match(r.err, new RegExp(`${lane} lane \\(${rep.timestamps} timestamps\\)`), 'the start line names the lane');
  assert.equal(rep.host.node, process.version);

  const lines = fs.readFileSync(stream, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  lines.forEach((l, i) => assertValidReport(l, `--json-stream line ${i + 1}`));
  assert.equal(lines[0].type, 'start');
  assert.equal(lines.at(-1).type, 'end');
  const iv = lines.slice(1, -1);
  assert.ok(iv.length >= 3 && iv.every((l) => l.type === 'interval'), `${iv.length} interval lines`);
  assert.deepEqual(lines.at(-1), rep, 'the stream’s end object is the report');
  assert.equal(rep.interrupted, null, 'a run that ran its course says so');
  for (const k of ['sent', 'received', 'lost', 'late', 'duplicates', 'reordered', 'unmatched']) {
    assert.equal(iv.reduce((a, l) => a + l[k], 0), rep[k], `Σ interval ${k} = ${k}`);
  }
  const h = fs.readFileSync(hist, 'utf8');
  assert.match(h, /Value\s+Percentile\s+TotalCount/);
  assert.match(h, new RegExp(`Total count\\s*=\\s*${rep.received}\\]`));
});

test('--lane dgram | native, --ttl, --dscp: the report says which lane and whose timestamps; --dscp on dgram and a bad --lane are one-line usage errors', async () => {
  const d = await cli([...base(), '--count', '200', '--rate', '2000', '--lane', 'dgram', '--ttl', '9', '--json', '-', '--quiet']);
  assert.equal(d.code, 0, d.err);
  const dr = JSON.parse(d.out);
  assertValidReport(dr, '--lane dgram');
  assert.deepEqual([dr.lane, dr.timestamps, dr.received], ['dgram', 'js', 200]);
  assert.deepEqual([dr.config.ttl, dr.config.dscp], [9, null], 'the effective configuration names the socket options (null: the system default)');
  for (const [args, re] of [
    [['--lane', 'dgram', '--dscp', '46'], /dscp needs the native lane/],
    [['--lane', 'fast'], /--lane must be auto, native or dgram/],
    [['--ttl', '0'], /--ttl/],
  ] as const) {
    const bad = await cli([...base(), '--count', '10', ...args]);
    assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.err}`);
    assert.equal(bad.err.trim().split('\n').length, 1, `one line: ${bad.err}`);
    assert.match(bad.err, re);
  }
  if (nativeLane === null) {
    if (process.env.CI) assert.fail(`CI: the native lane was not built (${nativeLaneStatus})`);
    console.log(`# --lane native part skipped: the native lane is ${nativeLaneStatus}`);
    return;
  }
  const n = await cli([...base(), '--count', '200', '--rate', '2000', '--lane', 'native', '--ttl', '9', '--dscp', '46', '--json', '-', '--quiet']);
  assert.equal(n.code, 0, n.err);
  const nr = JSON.parse(n.out);
  assertValidReport(nr, '--lane native');
  assert.deepEqual([nr.lane, nr.timestamps, nr.received], ['native', 'kernel', 200]);
  assert.deepEqual([nr.config.ttl, nr.config.dscp], [9, 46]);
  assert.ok(nr.rtt_us.min >= 1, `every RTT positive (min ${nr.rtt_us.min} µs)`);
});

test('thresholds: --max-p99 below any loopback RTT exits 3 and says which; --max-loss 100 passes', async () => {
  const r = await cli([...base(), '--count', '200', '--rate', '2000', '--grace-ms', '300', '--max-p99', '0.001', '--max-loss', '100', '--quiet', '--json', '-']);
  assert.equal(r.code, 3, r.err);
  const rep = JSON.parse(r.out);
  assertValidReport(rep);
  assert.deepEqual(rep.thresholds.breached, ['max_p99_ms']);
  assert.match(r.err, /^dtmesh probe: threshold breached: rtt p99 [\d.]+ ms > 0\.001 ms\n$/, '--quiet: only the threshold line');
});

test('--json-stream /dev/full: one line says the stream stopped (ENOSPC), no stack trace; the run and its --json report finish (exit 0)', async () => {
  const r = await cli([...base(), '--count', '200', '--rate', '2000', '--interval', '0.05', '--json-stream', '/dev/full', '--json', '-']);
  assert.equal(r.code, 0, r.err);
  assertValidReport(JSON.parse(r.out));
  assert.match(r.err, /^dtmesh probe: --json-stream \/dev\/full: cannot write \(ENOSPC\): no more lines there; the run goes on$/m);
  assert.equal(r.err.match(/cannot write/g)!.length, 1, 'said once');
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
});

test('--json - into a pipe whose reader is gone (| true): one line says the report was not written whole and the exit is 1, never 0 with the result lost', () => {
  const quote = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
  const line = [process.execPath, cliPath, ...base(), '--count', '50', '--rate', '1000', '--warmup', '0.3', '--quiet', '--json', '-'].map(quote).join(' ');
  const r = spawnSync('bash', ['-c', `${line} 2>"$0" | true; echo "rc=\${PIPESTATUS[0]}"`, path.join(dir, 'closed.err')], { encoding: 'utf8', timeout: 60_000 });
  const err = fs.readFileSync(path.join(dir, 'closed.err'), 'utf8');
  assert.match(r.stdout, /^rc=1$/m, `${r.stdout}${err}`);
  assert.match(err, /^dtmesh probe: --json -: stdout closed \(EPIPE\): the report was not written whole$/m);
  assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
});

/** `dtmesh probe --json -` through a fresh relay scripted by `script`: exit code, the report, stderr and the relay's counts. */
async function viaRelay(script: (d: Dir, seq: number) => Action, args: string[]) {
  const relay = await startRelay(serve.port, script);
  try {
    const r = await cli(['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${relay.port}`, '--warmup', '0', '--grace-ms', '1000', '--json', '-', '--quiet', ...args]);
    const rep = r.out ? JSON.parse(r.out) : null;
    if (rep) assertValidReport(rep, args.join(' '));
    return { code: r.code, rep, err: r.err, counts: relay.counts };
  } finally {
    relay.close();
  }
}

test('through a relay that swaps replies: the CLI verifies replies in window mode by default (reordered, none lost) and strictly with --replay-window 0 (each overtaken reply a replay drop, its probe lost)', async () => {
  const swaps = (d: Dir, seq: number): Action => (d === 'rev' && seq % 50 === 30 ? { kind: 'swap' } : { kind: 'pass' });
  const w = await viaRelay(swaps, ['--count', '1000', '--rate', '4000']);
  assert.equal(w.code, 0, w.err);
  assert.ok(w.counts.rev.swapped >= 10, `the relay swapped ${w.counts.rev.swapped} replies`);
  assert.equal(w.rep.config.replay_window, 1024);
  assert.deepEqual([w.rep.sent, w.rep.received, w.rep.lost, w.rep.dropped.replay], [1000, 1000, 0, 0], 'reordering is never loss');
  assert.equal(w.rep.reordered, w.counts.rev.swapped, 'one reordered reply per swap');

  const s = await viaRelay(swaps, ['--count', '1000', '--rate', '4000', '--replay-window', '0']);
  assert.equal(s.code, 0, s.err);
  assert.equal(s.rep.config.replay_window, 0);
  assert.ok(s.counts.rev.swapped >= 10);
  assert.equal(s.rep.dropped.replay, s.counts.rev.swapped, 'strict: each overtaken reply is dropped as a replay');
  assert.equal(s.rep.lost, s.counts.rev.swapped, "… and its probe is lost (the engine's verdict, not the report's)");
  assert.equal(s.rep.reordered, 0);
});

test('every reply late (--grace-ms 0): a measurement of 100 % loss, not "no verified REPLY": one line says all were late; exit 0, or 3 with --max-loss breached', async () => {
  const args = ['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${serve.port}`, '--count', '50', '--rate', '1000', '--warmup', '0', '--grace-ms', '0', '--json', '-', '--quiet'];
  const r = await cli(args);
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out);
  assert.ok(rep.late > 0 && rep.received === 0, `late ${rep.late}, received ${rep.received}`);
  assert.match(r.err, /^dtmesh probe: every verified REPLY \(\d+\) came after its probe's deadline of 0 ms: all late, none received/m);
  assert.doesNotMatch(r.err, /no verified REPLY/);
  const t = await cli([...args, '--max-loss', '1']);
  assert.equal(t.code, 3, t.err);
  assert.match(t.err, /threshold breached: loss 100(\.0+)? % > 1 %/);
  const p = await cli([...args, '--max-p99', '5']);
  assert.equal(p.code, 3, `no RTT to judge: a p99 gate fails, never passes on the 0 placeholders: ${p.err}`);
  assert.match(p.err, /threshold breached: rtt p99 unknown \(no reply received\), --max-p99 5 ms/);
  assert.deepEqual(JSON.parse(p.out).thresholds.breached, ['max_p99_ms']);
});

test('--clock-synced: the summary shows the absolute one-way delays too (the JSON has them); without it, only the relative ones', async () => {
  const args = ['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${serve.port}`, '--count', '20', '--rate', '1000', '--warmup', '0'];
  const synced = await cli([...args, '--clock-synced']);
  assert.equal(synced.code, 0, synced.err);
  assert.match(synced.out, /^one-way µs \(relative to own minimum\): forward p50 -?\d+/m);
  assert.match(synced.out, /^one-way µs \(absolute, --clock-synced\): forward p50 -?\d+ p99 -?\d+, reverse p50 -?\d+ p99 -?\d+$/m);
  const plain = await cli(args);
  assert.equal(plain.code, 0, plain.err);
  assert.match(plain.out, /^one-way µs \(relative to own minimum\)/m);
  assert.doesNotMatch(plain.out, /absolute/);
});

test('--max-loss: a relay dropping every 20th probe (5 %) breaches --max-loss 2 (exit 3, one line saying which) and passes --max-loss 10 (exit 0)', async () => {
  const drops = (d: Dir, seq: number): Action => (d === 'fwd' && seq % 20 === 3 ? { kind: 'drop' } : { kind: 'pass' });
  const tight = await viaRelay(drops, ['--count', '1000', '--rate', '4000', '--max-loss', '2']);
  assert.equal(tight.code, 3, tight.err);
  assert.equal(tight.rep.lost, tight.counts.fwd.dropped, 'lost = what the relay dropped');
  assert.equal(tight.rep.loss_pct, 5);
  assert.deepEqual(tight.rep.thresholds.breached, ['max_loss_pct']);
  assert.match(tight.err, /^dtmesh probe: threshold breached: loss 5(\.0+)? % > 2 %\n$/, `--quiet: only the threshold line: ${tight.err}`);
  const loose = await viaRelay(drops, ['--count', '1000', '--rate', '4000', '--max-loss', '10']);
  assert.equal(loose.code, 0, loose.err);
  assert.equal(loose.rep.loss_pct, 5);
  assert.deepEqual(loose.rep.thresholds.breached, []);
});

test('without --quiet, through a relay dropping every 10th probe: --json-stream - puts NDJSON alone on stdout (start, intervals, end); stderr has the progress lines (loss over decided probes, in flight apart), the interval lines and the summary', async () => {
  const relay = await startRelay(serve.port, (d, seq) => (d === 'fwd' && seq % 10 === 4 ? { kind: 'drop' } : { kind: 'pass' }));
  try {
    const r = await cli(['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${relay.port}`, '--duration', '2.5', '--rate', '1000', '--warmup', '0', '--grace-ms', '1000', '--interval', '0.5', '--json-stream', '-']);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l)); // stdout: JSON lines only
    assert.equal(lines[0].type, 'start');
    assert.equal(lines[lines.length - 1].type, 'end');
    assert.ok(lines.slice(1, -1).length >= 4 && lines.slice(1, -1).every((l) => l.type === 'interval'), `intervals between: ${lines.map((l) => l.type).join(',')}`);
    for (const l of lines) assertValidReport(l, `--json-stream - ${l.type}`);
    const end = lines[lines.length - 1];
    assert.equal(end.lost, relay.counts.fwd.dropped);
    // progress (not a terminal: one line a second), each with the loss among decided probes only
    const progress = r.err.split('\n').filter((l) => /^dtmesh probe: \d+ pps, sent/.test(l));
    assert.ok(progress.length >= 2, `progress lines on stderr:\n${r.err}`);
    let sawInFlight = false;
    for (const p of progress) {
      const m = /sent (\d+), received (\d+), lost (\d+) \(([\d.]+) %\), late (\d+), in flight (\d+)/.exec(p);
      assert.ok(m, p);
      const [sent, received, lost, pct, , inFlight] = m.slice(1).map(Number) as [number, number, number, number, number, number];
      assert.equal(sent, received + lost + inFlight, `books: ${p}`);
      assert.equal(pct.toFixed(2), (received + lost > 0 ? (100 * lost) / (received + lost) : 0).toFixed(2), `loss over decided probes, never over the ones in flight: ${p}`);
      if (inFlight > 0) sawInFlight = true;
    }
    assert.ok(sawInFlight, 'mid-run, probes were in flight (and left out of the loss)');
    assert.ok(r.err.split('\n').filter((l) => /^\[\d+\.\d\d-\d+\.\d\d s\] sent \d+/.test(l)).length >= 4, `interval lines on stderr:\n${r.err}`);
    assert.match(r.err, /^sent \d+, received \d+, lost \d+/m, 'the summary on stderr');
  } finally {
    relay.close();
  }
});

test('every probe refused by the kernel (a broadcast address): one line saying so, exit 1 — never a silent run of zero probes', async () => {
  const r = await cli([...base().slice(0, -1), 'A@255.255.255.255:9', '--count', '20', '--rate', '1000', '--warmup', '0', '--grace-ms', '100', '--quiet']);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /^dtmesh probe: every probe was refused \(20 send errors\) — by this host's kernel/);
  assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
});

test('a path that stops answering: an interval with no reply, and a run whose measured probes got none, say "no replies" instead of RTT figures of 0 µs', async () => {
  // every probe from the 400th on is dropped: the measured phase after a 0.5 s warm-up at 1000 pps gets nothing back
  const relay = await startRelay(serve.port, (d, seq) => (d === 'fwd' && seq >= 400 ? { kind: 'drop' } : { kind: 'pass' }));
  try {
    const target = ['--target', `A@127.0.0.1:${relay.port}`];
    const iv = await cli([...base().slice(0, -2), ...target, '--duration', '1.5', '--rate', '1000', '--warmup', '0', '--grace-ms', '100', '--interval', '0.5']);
    assert.equal(iv.code, 0, iv.err);
    const ivText = iv.out + iv.err; // intervals and the summary go to stdout without --json -
    const silent = ivText.split('\n').filter((l) => /^\[[\d.]+-[\d.]+ s\] sent \d+, received 0,/.test(l));
    assert.ok(silent.length >= 1, `an interval with no reply:\n${ivText}`);
    for (const l of silent) assert.match(l, /, \d+ pps, no replies$/, l);
    assert.match(ivText, /^rtt µs: min \d+/m, 'the run as a whole had replies: its RTT figures stand');
    const run = await cli([...base().slice(0, -2), ...target, '--duration', '1', '--rate', '1000', '--warmup', '0.5', '--grace-ms', '100']);
    const runText = run.out + run.err;
    assert.match(runText, /received 0, lost \d+/, runText);
    assert.match(runText, /^rtt: no replies; timestamps/m, runText);
    assert.doesNotMatch(runText, /rtt µs/, 'no RTT figure for replies that never came');
  } finally {
    relay.close();
  }
});

/**
 * `dtmesh probe` with `args` (after `head`, by default {@link base}), `signal` (SIGINT unless
 * said) once its output matches `after` (and `settleMs` more): exit code, all its output, ms
 * from the signal to the exit.
 */
async function runUntilSignal(
  args: string[],
  after: RegExp,
  { settleMs = 300, signal = 'SIGINT', head = base() }: { settleMs?: number; signal?: NodeJS.Signals; head?: string[] } = {},
): Promise<{ code: number | null; text: string; ms: number }> {
  const c = spawn(process.execPath, [cliPath, ...head, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  c.stdout.on('data', (d) => (text += d));
  c.stderr.on('data', (d) => (text += d));
  const exited = new Promise<number | null>((resolve) => c.on('close', (code) => resolve(code))); // 'close': after the last output
  try {
    const until = Date.now() + 15_000;
    while (!after.test(text) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, settleMs));
    const t0 = Date.now();
    c.kill(signal);
    const code = await within(30_000, exited, `probe ends after ${signal}`);
    return { code, text, ms: Date.now() - t0 };
  } finally {
    c.kill('SIGKILL');
  }
}

test('Ctrl-C mid-run: probe stops sending, waits out the probes in flight and writes the summary, --json, --histogram and the stream\'s end line, exit 130; the report and the end line say "interrupted": "SIGINT"', async () => {
  const out = fs.mkdtempSync(path.join(dir, 'sigint-'));
  const [json, hist, ndjson] = ['p.json', 'p.hgrm', 'p.ndjson'].map((f) => path.join(out, f)) as [string, string, string];
  const { code, text } = await runUntilSignal(['--duration', '60', '--rate', '1000', '--warmup', '0', '--grace-ms', '200', '--json', json, '--histogram', hist, '--json-stream', ndjson], /pps, sent \d+/, { settleMs: 0 });
  assert.equal(code, 130, text);
  assert.match(text, /SIGINT: stopped sending early; the report covers the \d+ probes sent/);
  assert.match(text, /^sent \d+, received \d+, lost \d+/m, 'the summary');
  const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
  assertValidReport(rep, '--json after SIGINT');
  assert.ok(rep.sent > 0 && rep.sent < 60_000, `some probes, not the whole run (${rep.sent})`);
  assert.equal(rep.in_flight, 0);
  assert.equal(rep.sent, rep.received + rep.lost, 'every probe sent was waited out');
  assert.equal(rep.interrupted, 'SIGINT', 'the report says it was cut short, and by what');
  const lines = fs.readFileSync(ndjson, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).type, 'end');
  assert.equal(lines.at(-1).sent, rep.sent);
  assert.equal(lines.at(-1).interrupted, 'SIGINT', 'so does the stream\'s end line');
  assert.match(fs.readFileSync(hist, 'utf8'), /Value\s+Percentile/);
});

test('Ctrl-C in the warm-up gives a valid report with no probe measured ("interrupted": "SIGINT"); at 0.05 pps SIGTERM ends the 20 s wait between sends at once: exit 143, "interrupted": "SIGTERM"', async () => {
  const out = fs.mkdtempSync(path.join(dir, 'sigint-'));
  const json = path.join(out, 'warm.json');
  const warm = await runUntilSignal(['--duration', '60', '--rate', '1000', '--warmup', '30', '--grace-ms', '200', '--json', json], /dtmesh probe: B → A/);
  assert.equal(warm.code, 130, warm.text);
  const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
  assertValidReport(rep, '--json after SIGINT in the warm-up');
  assert.deepEqual([rep.sent, rep.received, rep.lost], [0, 0, 0], 'nothing measured: the warm-up and its rehearsal are in no figure');
  assert.ok(rep.warmup.probes > 0, `the warm-up's probes are counted as such (${rep.warmup.probes})`);
  assert.equal(rep.interrupted, 'SIGINT');
  const slowJson = path.join(out, 'slow.json');
  const slow = await runUntilSignal(['--duration', '600', '--rate', '0.05', '--pacing', 'timer', '--warmup', '0', '--grace-ms', '200', '--json', slowJson], /dtmesh probe: B → A/, { signal: 'SIGTERM' });
  assert.equal(slow.code, 143, slow.text);
  assert.ok(slow.ms < 10_000, `ended ${slow.ms} ms after SIGTERM, not at the next send 20 s later`);
  assert.match(slow.text, /SIGTERM: stopped sending early/);
  assert.equal(JSON.parse(fs.readFileSync(slowJson, 'utf8')).interrupted, 'SIGTERM');
});

test('a signal while only the last probes are waited out cuts nothing short: exit 130, but the report is the whole run ("interrupted": null) and the line says so', async () => {
  // no reply ever (the relay drops every probe): the 20 probes are sent in ~20 ms, then waited out for 3 s
  const relay = await startRelay(serve.port, () => ({ kind: 'drop' }));
  try {
    const json = path.join(fs.mkdtempSync(path.join(dir, 'sigint-')), 'p.json');
    const head = [...base().slice(0, -1), `A@127.0.0.1:${relay.port}`];
    const r = await runUntilSignal(['--count', '20', '--rate', '1000', '--warmup', '0', '--grace-ms', '3000', '--json', json], /pps, sent 20, received 0, lost 0 .* in flight 20/, { settleMs: 0, head });
    assert.equal(r.code, 130, r.text);
    assert.match(r.text, /SIGINT: came after the last probe was sent; the report is the whole run/);
    assert.doesNotMatch(r.text, /stopped sending early/);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
    assertValidReport(rep, '--json after a SIGINT in the wait-out');
    assert.deepEqual([rep.sent, rep.lost, rep.interrupted], [20, 20, null]);
  } finally {
    relay.close();
  }
});
