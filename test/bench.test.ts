/**
 * Smoke test of the benchmarks: every entry runs in its quickest mode with tiny bounds,
 * prints its comparison and writes a JSON with the expected keys — so the bench code
 * cannot rot. Numbers are not compared (they mean nothing at these bounds), but each must
 * be there: a rate the engine held, a stage breakdown with every main-thread stage timed.
 */
import assert from 'node:assert/strict';
import { nativeLane } from '../src/protocol/native.js';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { STAGE } from '../bench/responder.js';
import { ENGINE_BATCH, poolGoal, type PoolCell } from '../bench/pool.js';
import { p50p90Goal, probeDrops, rateGoalMet, referenceLabel, refRunArgs, runOrder, type ProbeRun } from '../bench/probe-compare.js';
import { cCompiler } from '../bench/cbuild.js';
import { cpuIdle, cpuIdleNote, kdamonds, LoadWatch } from '../bench/common.js';
import { atLeastGoal, classifyBound, cpuText, gcNote, halfRateContext, halfRateProblem, printBreakdown, ratioKind, ratioText, repeatReason, stepFailure, verdictGoal } from '../bench/e2e.js';
import { tempDir } from './helpers.js';

const benchDir = fileURLToPath(new URL('../bench/', import.meta.url));
const tmp = tempDir('dtmesh-bench-test-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function node(args: string[], timeoutMs = 30_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run `benchCommand(argv)` of dist/bench/e2e.js in a fresh process (what `dtmesh bench` does). */
function e2e(argv: string[], timeoutMs = 30_000): { code: number | null; stdout: string; stderr: string } {
  const url = pathToFileURL(path.join(benchDir, 'e2e.js')).href;
  const script = `const m = await import(${JSON.stringify(url)}); process.exitCode = await m.benchCommand(${JSON.stringify(argv)});`;
  return node(['--input-type=module', '-e', script], timeoutMs);
}

function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function assertMachine(m: any): void {
  assert.equal(typeof m.cpu, 'string');
  assert.ok(Number.isInteger(m.cores) && m.cores >= 1);
  assert.match(m.node, /^v\d+/);
}

test('micro: every group runs, prints the kernel/node:crypto ratio per size and the machine, JSON has the ratios', () => {
  const json = path.join(tmp, 'micro.json');
  const r = node([path.join(benchDir, 'micro.js'), '--quick', '--time', '5', '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^machine: .*cores, node v/m);
  assert.match(r.stdout, /kernels vs node:crypto/);
  assert.match(r.stdout, /node:crypto \/ native +node:crypto \/ JS/);
  assert.match(r.stdout, /unknown_sender costs/);
  assert.match(r.stdout, /piscina \/ ring = /);
  const doc = readJson(json);
  assertMachine(doc.machine);
  assert.deepEqual(Object.keys(doc.mac_ratio).sort(), ['1400', '50', '512', '84']);
  assert.deepEqual(Object.keys(doc.mac_ratio_js).sort(), ['1400', '50', '512', '84']);
  for (const g of ['codec', 'keys', 'replay', 'drops', 'stages', 'mac', 'dgram', 'handoff']) {
    assert.ok(doc.rows.some((row: any) => row.group === g && row.ns > 0), `group ${g} measured`);
  }
  for (const reason of ['malformed', 'downgrade', 'reflected', 'unknown_sender', 'bad_mac', 'stale', 'valid']) {
    assert.ok(doc.rows.some((row: any) => row.group === 'drops' && row.name.startsWith(reason)), `drop reason ${reason}`);
  }
  assert.equal(typeof doc.unknown_vs_bad_mac, 'number');
  assert.equal(typeof doc.handoff_ratio.one, 'number');
  assert.equal(doc.crossover, undefined, 'the crossover sweep runs only when asked for');
});

test('micro --only crossover: the JS kernel vs node:crypto sweep (was bench/mac.ts) prints and stores the crossover', () => {
  const json = path.join(tmp, 'crossover.json');
  const r = node([path.join(benchDir, 'micro.js'), '--quick', '--time', '2', '--only', 'crossover', '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /measured crossover: .* KERNEL_CROSSOVER_BYTES = \d+/);
  const doc = readJson(json);
  assert.equal(doc.rows.filter((row: any) => row.group === 'crossover' && row.ns > 0).length, 44, 'kernel and node:crypto at 22 lengths');
  assert.ok(doc.crossover.measured === null || doc.crossover.measured % 64 === 56, JSON.stringify(doc.crossover));
  assert.equal(typeof doc.crossover.kernel_crossover_bytes, 'number');
});

test('pool: the real worker file through piscina verifies prebuilt batches; table, goal line and JSON', () => {
  const json = path.join(tmp, 'pool.json');
  const r = node([path.join(benchDir, 'pool.js'), '--quick', '--time', '40', '--workers', '1', '--batch-sizes', '64', '--types', 'probe', '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^machine: /m);
  assert.match(r.stdout, /datagrams verified per second/);
  const doc = readJson(json);
  assertMachine(doc.machine);
  assert.equal(doc.cells.length, 2, 'engine and pipelined modes');
  for (const c of doc.cells) assert.ok(c.per_s > 0 && c.batches > 0, JSON.stringify(c));
  assert.ok('probe' in doc.goal);
  assert.equal(doc.goal.probe.met, null, 'the engine runs 2 workers at batch 256: not in this run, not judged');
  assert.match(r.stdout, /goal 1\.5 M\/s: not judged — the engine's configuration \(engine mode, 2 workers, batch 256\) was not in this run/);
});

test('pool: the 1.5 M/s goal is judged on the engine\'s own mode and default batch, never on the pipelined experiment', () => {
  const cell = (mode: 'engine' | 'pipelined', batch: number, perS: number, workers = 2): PoolCell => ({ type: 'probe', mode, workers, batch, per_s: perS, main_us_per_batch: 1, worker_ns_per_datagram: 1, batches: 1, seconds: 1 });
  assert.equal(ENGINE_BATCH, 256, "the engine's default batchSize");
  const cells = [cell('engine', 64, 1_000_000), cell('engine', 256, 1_400_000), cell('pipelined', 256, 2_000_000), cell('engine', 1024, 1_900_000), cell('engine', 256, 9_000_000, 1)];
  const g = poolGoal(cells, 'probe', 256);
  assert.equal(g.engine_2_workers, 1_400_000);
  assert.equal(g.met, false, 'was met on the pipelined cell');
  assert.equal(g.best_2_workers, 2_000_000, 'still a number, as before');
  assert.deepEqual(g.best_2_workers_cell, { mode: 'pipelined', batch: 256 });
  assert.equal(poolGoal([...cells.slice(0, 1), cell('engine', 256, 1_600_000)], 'probe', 256).met, true);
  assert.equal(poolGoal([cell('pipelined', 256, 3_000_000)], 'probe', 256).met, null, 'no engine-mode cell: not judged');
  assert.equal(poolGoal(cells, 'reply', 256).best_2_workers, null);
});

/** A C compiler is there (the C responder and prober are built); without one the C column is skipped with a note (test/bench-c.test.ts fails under CI=true). */
const haveCc = cCompiler() !== null;

test('e2e (dtmesh bench): engine on both lanes, naive, echo and C under the C load generator; ratios and CPU per datagram printed and in the JSON', () => {
  const json = path.join(tmp, 'e2e.json');
  const r = e2e([
    '--quick', '--start-rate', '1000', '--max-rate', '1000', '--duration', '100', '--warmup', '50',
    '--half-duration', '100', '--bisect', '0', '--budget', '40', '--max-rtt-ms', '500', '--breakdown', '--json', json,
  ], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^machine: /m);
  assert.match(r.stdout, /engine\/naive = /);
  assert.match(r.stdout, /engine\/echo = /);
  assert.match(r.stdout, /engine\/C = /);
  if (haveCc) assert.match(r.stdout, /^load generator: C \(/m, 'the C load generator drives every responder');
  else assert.match(r.stdout, /^load generator: node \(the C one is not used: no C compiler/m);
  if (nativeLane !== null) {
    assert.match(r.stdout, /^native lane \(native\): native\/C = .*native\/echo = /m);
    assert.match(r.stdout, /^native CPU µs per datagram \/ C = .*receive→verdict p99 at half rate = \d/m);
  }
  assert.match(r.stdout, /CPU µs per datagram at each one's highest held rate \(whole responder process\): engine \d+\.\d\d at 1\.0 k\/s \(not its max: search stopped by cap\)/, '--max-rate 1000 held: the CPU figure names its rate and that it is not a max');
  assert.match(r.stdout, /machine's limit: engine\/C = (\? [\d.]+|n\/a)/, 'engine and C both stopped by the cap: no order known');
  assert.match(r.stdout, /CPU µs per datagram at 1\.0 k\/s, the same rate for all: engine \d/);
  assert.match(r.stdout, /receive→verdict p99 at half rate/);
  assert.match(r.stdout, /^engine receive→verdict p99 at half rate = \d+ µs, JS receive stamp \(goal ≤ 250 µs: not judged: /m, 'the dgram lane stamps in JS');
  if (nativeLane !== null) assert.match(r.stdout, /native .*receive→verdict p99 at half rate = \d+ µs, kernel receive stamp/, 'the native lane stamps in the kernel');
  const doc = readJson(json);
  assertMachine(doc.machine);
  assert.ok('engine_c' in doc.ratios);
  const kinds = ['engine', ...(nativeLane !== null ? ['native'] : []), 'naive', 'echo', ...(haveCc ? ['c'] : [])];
  assert.deepEqual(Object.keys(doc.responders), kinds, 'every responder measured, in order');
  assert.equal(doc.config.generator, haveCc ? 'c' : 'node');
  if (nativeLane === null) assert.equal(typeof doc.native_skipped, 'string');
  else if (haveCc) assert.equal(typeof doc.ratios.native_c, 'number', 'native/C measured');
  if (haveCc) assert.equal(typeof doc.ratios.engine_c, 'number', 'engine/C measured');
  else assert.match(doc.c_skipped, /no C compiler/);
  for (const k of kinds) {
    const res = doc.responders[k];
    assert.ok(res, `responder ${k}`);
    assert.equal(typeof res.max_rate, 'number');
    assert.ok(res.steps.length >= 1);
    assert.ok(res.steps.every((s: any) => s.bad_replies === 0), `${k}: every checked reply is a valid REPLY`);
    // each step says where its RTTs ended, as the generator reported it (loopback: the kernel stamps every reply)
    assert.ok(res.steps.every((s: any) => s.gen_timestamps === (haveCc ? 'kernel' : 'js')), `${k}: ${JSON.stringify(res.steps.map((s: any) => s.gen_timestamps))}`);
    assert.ok(res.cpu_us_per_datagram.loadgen > 0, `${k}: the generator's CPU per datagram measured`);
    // a responder that answers nothing holds no rate (1000/s on loopback is nothing for any of them;
    // RTT bound relaxed to 500 ms so a busy shared machine does not decide)
    assert.ok(res.max_rate > 0, `${k} held no rate: ${JSON.stringify(res.steps)}`);
    assert.ok(res.cpu_us_total > 0, `${k}: CPU µs per datagram measured: ${res.cpu_us_total}`);
    assert.ok(res.cpu_us_at_start_rate.rate === 1000 && res.cpu_us_at_start_rate.us > 0, `${k}: CPU at the common rate: ${JSON.stringify(res.cpu_us_at_start_rate)}`);
  }
  assert.ok('engine_naive' in doc.ratios && 'engine_echo' in doc.ratios);
  assert.deepEqual(Object.keys(doc.goals).sort(), ['engine_echo', 'engine_naive', 'native_c', 'native_cpu_vs_c', 'native_echo', 'native_verdict_p99_us', 'verdict_p99_us']);
  if (nativeLane !== null) assert.equal(typeof doc.responders.native.half_rate.verdict_p99_us, 'number', 'native lane receive→verdict measured');
  if (haveCc) assert.equal(typeof doc.responders.c.half_rate.verdict_p99_us, 'number', "the C responder's own receive→verdict, the machine's tail");
  const engine = doc.responders.engine;
  assert.equal(typeof engine.half_rate.verdict_p99_us, 'number');
  assert.equal(engine.half_rate.verdict_timestamps, 'js', 'dgram lane: the message listener\'s clock');
  for (const k of kinds) {
    const h = doc.responders[k].half_rate;
    assert.equal(typeof h.ok, 'boolean', `${k}: the half-rate step's outcome is recorded`);
    assert.equal(h.ok, h.failure === null);
    if (!h.ok || h.busy !== null) assert.match(r.stdout, new RegExp(`^! ${k}: the half-rate step`, 'm'), `${k}: a failed or busy half-rate step is flagged`);
  }
  if (nativeLane !== null) assert.equal(doc.responders.native.half_rate.verdict_timestamps, 'kernel');
  if (haveCc) assert.equal(doc.responders.c.half_rate.verdict_timestamps, 'kernel');
  // the harness's own Node processes run without V8's memory reducer (its idle-time full
  // collections stall whatever is measured); the Node responders run as dtmesh serve does
  assert.match(doc.config.loadgen_exec_argv, /--no-memory-reducer/, 'the load generator host');
  for (const k of kinds) {
    const flags: string[] = doc.responders[k].host_exec_argv;
    if (k === 'c') assert.ok(flags.includes('--no-memory-reducer'), `the C responder's relay host: ${flags.join(' ')}`);
    else assert.ok(!flags.includes('--no-memory-reducer'), `${k} runs as serve does: ${flags.join(' ')}`);
  }
  // the host's steal during each half-rate run (the tail's context): a figure on Linux, never negative
  for (const k of Object.keys(doc.responders)) {
    const st = doc.responders[k].half_rate?.steal_cores;
    if (process.platform === 'linux') assert.ok(typeof st === 'number' && st >= 0 && st <= os.cpus().length, `${k}: half-rate steal ${st}`);
    // and the GC pauses of its main thread (the socket's reader) in that run: counted for every Node responder, null for C
    const g = doc.responders[k].half_rate?.gc;
    if (k === 'c') assert.equal(g, null, 'the C responder has no GC');
    else assert.ok(g !== null && Number.isInteger(g.count) && g.count >= 0 && g.max_ms >= 0 && g.total_ms >= g.max_ms - 0.05 && (g.count > 0 || g.total_ms === 0), `${k}: half-rate GC ${JSON.stringify(g)}`);
  }
  // the stage breakdown is there and real: the main thread's stages timed through engine.stages
  const b = doc.breakdown;
  assert.ok(b, 'breakdown requested and produced');
  assert.ok(b.note === undefined || !/unavailable/i.test(b.note), `breakdown note: ${b.note}`);
  assert.ok(b.main_us > 0, `main thread CPU per datagram: ${b.main_us}`);
  assert.ok(b.datagrams_per_batch > 0, `datagrams per batch: ${b.datagrams_per_batch}`);
  // at 750/s every batch is small: verified inline, never through the pool
  const timed = [STAGE.receiveNode, STAGE.receiveCopy, STAGE.dispatch, STAGE.verifyInline, STAGE.collect, STAGE.reply, STAGE.sendBatch, STAGE.sendNode, STAGE.sendmsg];
  for (const name of timed) {
    assert.ok(b.stages_us[name] > 0, `stage '${name}' timed: ${JSON.stringify(b.stages_us)}`);
    assert.ok(b.calls_per_datagram[name] > 0, `stage '${name}' called`);
  }
  assert.match(r.stdout, /µs per received datagram:\n/);
  assert.doesNotMatch(r.stdout, /breakdown unavailable/);
});

test('e2e (dtmesh bench) --generator node: the Node load generator still drives a responder (the fallback without a C compiler)', () => {
  const json = path.join(tmp, 'e2e-node.json');
  const r = e2e([
    '--quick', '--generator', 'node', '--responders', 'echo', '--start-rate', '1000', '--max-rate', '1000', '--duration', '100', '--warmup', '50',
    '--half-duration', '100', '--bisect', '0', '--budget', '20', '--max-rtt-ms', '500', '--json', json,
  ], 40_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^load generator: node \(bench\/loadgen\.ts/m);
  const doc = readJson(json);
  assert.equal(doc.config.generator, 'node');
  assert.ok(doc.responders.echo.max_rate > 0, JSON.stringify(doc.responders.echo.steps));
  // its sockets' own drops over the measured phase, read from the kernel (/proc/net/udp): none at 1 k/s
  for (const st of doc.responders.echo.steps) assert.equal(st.gen_rx_drops, 0, JSON.stringify(st));
  for (const st of doc.responders.echo.steps) assert.equal(st.gen_timestamps, 'js', 'the node generator ends RTTs at its JS receive callback');
});

test('e2e (dtmesh bench): --help exits 0; a bad flag is one line on stderr and exit 2', () => {
  const help = e2e(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: dtmesh bench/);
  for (const argv of [['--bogus'], ['--duration', 'abc'], ['--responders', 'engine,nope'], ['--responders', 'engine,C'], ['--generator', 'rust'], ['--generator', 'node', '--gen-gso']]) {
    const r = e2e(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
});

test('e2e (dtmesh bench): a --json path that cannot be written is one line and exit 1 before anything runs, as for probe and serve', () => {
  const file = path.join(tmp, 'a-file');
  fs.writeFileSync(file, '');
  // tiny bounds: should the check be missing, the run is a few seconds, not minutes
  const tiny = ['--responders', 'echo', '--generator', 'node', '--budget', '1', '--duration', '50', '--warmup', '0', '--half-duration', '50', '--bisect', '0', '--confirm', '0', '--start-rate', '100', '--max-rate', '200'];
  for (const [bad, why] of [[path.join(tmp, 'no-such-dir', 'x.json'), 'ENOENT'], [path.join(file, 'x.json'), 'ENOTDIR'], [tmp, 'it is a directory']] as const) {
    const r = e2e([...tiny, '--json', bad]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '', 'nothing ran');
    assert.equal(r.stderr, `dtmesh bench: cannot write --json ${bad}: ${why}\n`);
  }
});

test('e2e (dtmesh bench) --quick: the flag list, the description and the README give the one run time its --budget default bounds', () => {
  const help = e2e(['--help']).stdout.replace(/\s+/g, ' ');
  const budget = /--budget S bound on the whole run in seconds \(default \d+; quick (\d+)\)/.exec(help)?.[1];
  assert.ok(budget !== undefined, help);
  assert.match(help, new RegExp(`--quick a run of about ${budget} s `), 'the flag list');
  assert.match(help, new RegExp(`--quick about ${budget} s\\.`), 'the description');
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.match(readme, new RegExp(`npm run bench .*--quick ~${budget} s`), 'README');
});

test('bench:soak: RSS of a dtmesh probe run sampled from /proc; growth after the settle time against the 20 MB goal; JSON', { skip: process.platform !== 'linux' ? 'reads /proc (Linux only)' : false }, () => {
  const json = path.join(tmp, 'soak.json');
  const r = node([path.join(benchDir, 'probe-soak.js'), '--duration', '3', '--rate', '2000', '--sample', '0.5', '--settle', '1', '--json', json], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^machine: /m);
  assert.match(r.stdout, /^ {2}t= +\d+ s {2}RSS +[\d.]+ MB$/m, 'a progress line per sample');
  assert.match(r.stdout, /^RSS: [\d.]+ MB at [\d.]+ s, peak after it [\d.]+ MB, last [\d.]+ MB: growth [\d.]+ MB \(goal < 20 MB: (met|NOT met)\)$/m);
  const doc = readJson(json);
  assert.equal(doc.goal_mb, 20);
  const after = doc.samples.filter((s: { t_s: number }) => s.t_s >= doc.baseline.t_s);
  assert.ok(doc.baseline.t_s >= 1 && after.length >= 2, JSON.stringify(doc.samples));
  assert.ok(doc.samples.every((s: { rss_mb: number }) => s.rss_mb > 10), 'RSS read from /proc, in MB');
  assert.equal(doc.peak_mb, Math.max(...after.map((s: { rss_mb: number }) => s.rss_mb)));
  assert.equal(doc.growth_mb, Math.round((doc.peak_mb - doc.baseline.rss_mb) * 10) / 10);
  assert.equal(doc.met, doc.growth_mb < 20);
  assert.ok(doc.report.sent >= 2000 * 3 * 0.9 && doc.report.received + doc.report.lost === doc.report.sent, JSON.stringify(doc.report));
  assert.ok(doc.report.memory.ring_entries > 0);
  const bad = node([path.join(benchDir, 'probe-soak.js'), '--settle', '700'], 10_000);
  assert.equal(bad.code, 2, bad.stderr);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});

/** The children of `pid` (every thread's), by /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const t = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (t !== '') out.push(...t.split(/\s+/).map(Number));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

test('bench:soak: when the probe fails (killed here), dtmesh serve is stopped too and the soak exits 1 at once instead of hanging', { skip: process.platform !== 'linux' ? 'reads /proc (Linux only)' : false, timeout: 40_000 }, async () => {
  const p = spawn(process.execPath, [path.join(benchDir, 'probe-soak.js'), '--duration', '60', '--rate', '200', '--sample', '0.5', '--settle', '1', '--no-pin'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  p.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  let kids: number[] = [];
  try {
    const t0 = Date.now();
    while (!/^soak: dtmesh probe/m.test(out) && Date.now() - t0 < 20_000 && p.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /^soak: dtmesh probe/m, `${out}\n${err}`);
    const cmd = (pid: number): string => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      } catch {
        return ''; // gone meanwhile
      }
    };
    // the line may come before the probe child is spawned: wait for both children (bounded)
    let probe: number | undefined;
    let serve: number | undefined;
    for (const t1 = Date.now(); Date.now() - t1 < 20_000 && p.exitCode === null; await new Promise((r) => setTimeout(r, 100))) {
      kids = childrenOf(p.pid!);
      probe = kids.find((k) => / probe /.test(cmd(k)));
      serve = kids.find((k) => / serve /.test(cmd(k)));
      if (probe !== undefined && serve !== undefined) break;
    }
    assert.ok(probe !== undefined && serve !== undefined, `children: ${kids.map(cmd).join('; ')}`);
    process.kill(probe, 'SIGKILL');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    assert.equal(code, 1, `soak did not exit after its probe died (old code: serve kept it alive): ${err}`);
    assert.match(err, /dtmesh probe exited SIGKILL/);
    assert.equal(alive(serve), false, 'dtmesh serve stopped');
  } finally {
    for (const k of [p.pid!, ...kids]) {
      try {
        if (alive(k)) process.kill(k, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

test('bench:probe: the C reference prober and dtmesh probe alternate against dtmesh serve; table with ratios, machine line, JSON', { skip: haveCc ? false : 'no C compiler' }, () => {
  const json = path.join(tmp, 'probe-compare.json');
  const r = node([path.join(benchDir, 'probe-compare.js'), '--quick', '--rates', '2000', '--duration', '0.5', '--repeats', '1', '--warmup', '0.2', '--json', json], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^machine: /m);
  assert.match(r.stdout, /warm-up: 0\.2 s of reference traffic at 2\.0 k\/s, not measured/);
  const pinned = /^placement: dtmesh serve on CPU (\d+), each prober on CPU (\d+) \(taskset/m.exec(r.stdout);
  if (pinned) assert.notEqual(pinned[1], pinned[2], 'responder and probers on different CPUs');
  else assert.match(r.stdout, /^placement: left to the scheduler \(/m, 'where it cannot pin, it says why');
  assert.match(r.stdout, /reference \(C, kernel ts\)/);
  assert.match(r.stdout, /every measured run: 1 s warm-up left out of its figures, both probers/);
  const lanes = nativeLane !== null ? ['native', 'dgram'] : ['dgram'];
  for (const l of lanes) assert.match(r.stdout, new RegExp(`dtmesh probe, ${l} lane`));
  const doc = readJson(json);
  assertMachine(doc.machine);
  assert.deepEqual(doc.config.lanes, lanes);
  assert.equal(doc.config.warmup_s, 0.2);
  assert.equal(doc.config.pinned, pinned !== null, "the JSON says whether serve and probers were pinned");
  assert.deepEqual(doc.runs.map((x: { prober: string; lane?: string }) => x.lane ?? x.prober), ['reference', ...lanes], 'the reference, then probe on each lane');
  for (const run of doc.runs) {
    assert.ok(run.sent > 0 && run.received === run.sent, JSON.stringify(run));
    assert.ok(run.rtt_us.p50 > 0 && run.rtt_us.p99 >= run.rtt_us.p50, JSON.stringify(run));
    assert.ok(run.cpu_cores > 0 && run.cpu_cores <= os.cpus().length, `prober CPU in cores: ${JSON.stringify(run)}`);
    // the host's steal while the run lived: a figure on Linux (0 on bare metal), never negative nor more than the host's CPUs
    if (process.platform === 'linux') assert.ok(run.steal_cores !== null && run.steal_cores >= 0 && run.steal_cores <= os.cpus().length, `host steal: ${JSON.stringify(run)}`);
  }
  assert.equal(doc.summary[0].probe.steal_cores, doc.runs.find((x: { lane?: string }) => x.lane === lanes[0]).steal_cores, 'one repeat: the summary\'s steal is that run\'s');
  assert.equal(doc.runs[0].timestamps, 'kernel');
  assert.deepEqual(doc.runs.slice(1).map((x: { timestamps: string }) => x.timestamps), lanes.map((l) => (l === 'native' ? 'kernel' : 'js')));
  assert.deepEqual(doc.summary.map((x: { lane: string }) => x.lane), lanes, 'one summary row per probe lane');
  assert.equal(typeof doc.summary[0].ratio.p99, 'number');
  const firstLane = doc.runs.find((x: { lane?: string }) => x.lane === lanes[0]);
  assert.equal(doc.summary[0].probe.cpu_cores, Math.round(firstLane.cpu_cores * 100) / 100, 'one repeat: the summary is that run');
  assert.match(r.stdout, /CPU \d+\.\d\d cores/, 'each run line gives its prober\'s CPU');
  // the rate goal (offered within 2 % or the run says generator_limited), per lane from its runs
  assert.match(r.stdout, /offered \(±2 % or limited\)/);
  for (const row of doc.summary) {
    const prb = doc.runs.filter((x: { lane?: string }) => x.lane === row.lane);
    assert.ok(prb.every((x: { generator_limited?: unknown }) => typeof x.generator_limited === 'boolean'), 'each probe run says whether it was generator-limited');
    assert.equal(row.rate_goal.met, prb.every((x: ProbeRun) => rateGoalMet(x)));
    assert.equal(row.rate_goal.limited_runs, prb.filter((x: { generator_limited?: boolean }) => x.generator_limited).length);
  }
  assert.equal(rateGoalMet({ rate: 100_000, offered_pps: 97_000, generator_limited: false } as ProbeRun), false, '3 % short, not limited: not met');
  assert.equal(rateGoalMet({ rate: 100_000, offered_pps: 97_000, generator_limited: true } as ProbeRun), true, 'short but says generator_limited: met');
  assert.equal(rateGoalMet({ rate: 100_000, offered_pps: 98_500, generator_limited: false } as ProbeRun), true, 'within 2 %');
  assert.equal(typeof doc.summary[0].goal.met, 'boolean');
  // p50 and p90 likewise (issue 12), from the row's own medians
  for (const row of doc.summary) assert.deepEqual(row.goal_p50_p90, p50p90Goal(row.reference, row.probe));
  assert.deepEqual(p50p90Goal({ p50: 27.4, p90: 35.2 }, { p50: 96, p90: 195 }), { bound_us: { p50: 104.8, p90: 120.4 }, met: false }, 'p90 195 > 2 × 35.2 + 50: not met although p50 is');
  assert.equal(p50p90Goal({ p50: 27.4, p90: 35.2 }, { p50: 22, p90: 29 }).met, true);
  assert.match(r.stdout, /p50, p90 likewise/);
  // where a probe run's lost probes went: its report's non-zero drops, its own socket's kernel drops
  for (const run of doc.runs.filter((x: { prober: string }) => x.prober === 'probe')) assert.deepEqual(run.drops, {}, `nothing dropped on an idle loopback: ${JSON.stringify(run)}`);
  assert.deepEqual(probeDrops({ dropped: { bad_mac: 0, replay: 3, overload: 2 }, kernel_drops: 281 }), { replay: 3, overload: 2, kernel_drops: 281 });
  assert.deepEqual(probeDrops({ dropped: { replay: 0 }, kernel_drops: null }), {}, 'unknown kernel drops are not a figure');
  // the alternation order rotates, so each prober takes every place in turn
  assert.deepEqual([1, 2, 3, 4].map((rep) => runOrder(['native', 'dgram'], rep).join(' ')), ['reference native dgram', 'native dgram reference', 'dgram reference native', 'reference native dgram']);
});

test('e2e (dtmesh bench): a ratio over a responder that outran the generator is a bound, and a goal is met or missed only where the bound decides it', () => {
  assert.equal(ratioKind('loss', 'latency'), 'exact');
  assert.equal(ratioKind('generator', 'loss'), 'at_least', 'the numerator held at least its rate');
  assert.equal(ratioKind('loss', 'generator'), 'at_most', 'the denominator held at least its rate');
  assert.equal(ratioKind('cap', 'budget'), 'unknown');
  assert.equal(ratioKind('loss', 'cap'), 'at_most', 'the --max-rate cap is a lower bound too');
  assert.deepEqual(atLeastGoal(0.8, 1.26, 'exact'), { goal: 0.8, value: 1.26, met: true, kind: 'exact' });
  assert.equal(atLeastGoal(0.8, 0.5, 'exact').met, false);
  assert.equal(atLeastGoal(2, 2.5, 'at_least').met, true, '≥ 2.5 meets ≥ 2');
  assert.equal(atLeastGoal(2, 1.5, 'at_least').met, null, '≥ 1.5 cannot tell');
  assert.equal(atLeastGoal(0.8, 1.26, 'at_most').met, null, '≤ 1.26 cannot tell (the case of a C responder that outran the generator)');
  assert.equal(atLeastGoal(0.8, 0.5, 'at_most').met, false, '≤ 0.5 misses ≥ 0.8');
  assert.equal(atLeastGoal(0.8, 3, 'unknown').met, null);
  assert.equal(atLeastGoal(0.8, null, 'exact').met, null);
  assert.equal(ratioText(1.26, 'exact'), '1.26');
  assert.equal(ratioText(1.26, 'at_least'), '≥ 1.26');
  assert.equal(ratioText(0.5, 'at_most'), '≤ 0.5', 'engine/C with a C responder that outran the generator (was printed bare)');
  assert.equal(ratioText(3, 'unknown'), '? 3');
  assert.equal(ratioText(null, 'at_most'), 'n/a');
  assert.equal(cpuText(1.234, 80_000, 'loss'), '1.23 at 80.0 k/s');
  assert.equal(cpuText(1.234, 20_000, 'budget'), '1.23 at 20.0 k/s (not its max: search stopped by budget)', 'a budget-cut rate is not called its max');
  assert.equal(cpuText(null, 0, 'loss'), 'n/a');
});

test('e2e (dtmesh bench): why a step failed and what stopped a search — the budget cutting a bisection or a confirmation makes the max a lower bound; invalid REPLYs are not a latency limit', () => {
  const held = { lossOk: true, rttOk: true, genLimited: false, badReplies: 0, genLost: false };
  assert.equal(stepFailure(held), null);
  assert.equal(stepFailure({ ...held, badReplies: 3 }), 'bad_replies', 'a step failed only for invalid REPLYs (was classed latency)');
  assert.equal(stepFailure({ ...held, badReplies: 3, lossOk: false }), 'bad_replies', 'named first, as on its line');
  assert.equal(stepFailure({ ...held, lossOk: false, genLost: true }), 'generator', "loss only at the generator's own socket");
  assert.equal(stepFailure({ ...held, lossOk: false, genLimited: true }), 'loss');
  assert.equal(stepFailure({ ...held, genLimited: true, rttOk: false }), 'generator');
  assert.equal(stepFailure({ ...held, rttOk: false }), 'latency');
  assert.equal(classifyBound(undefined, false), 'cap', 'no step failed, no step refused: --max-rate held');
  assert.equal(classifyBound(undefined, true), 'budget');
  assert.equal(classifyBound('loss', false), 'loss');
  assert.equal(classifyBound('loss', true), 'budget', 'bisection cut by the budget: the max is a lower bound (was loss, an exact ratio)');
  assert.equal(classifyBound('bad_replies', false), 'bad_replies');
  assert.equal(classifyBound('latency', false), 'latency');
  assert.equal(ratioKind(classifyBound('loss', true), 'loss'), 'at_least', 'its ratio over an exact one is ≥');
  assert.equal(ratioKind('loss', classifyBound('bad_replies', false)), 'at_most');
});

test('e2e (dtmesh bench): the ≤ 250 µs receive→verdict goal is judged on a kernel-stamped figure only; a JS-stamped one (dgram lane) is shown with its source, not judged', () => {
  assert.deepEqual(verdictGoal(250, 120, 'kernel'), { goal: 250, value: 120, met: true, timestamps: 'kernel' });
  assert.equal(verdictGoal(250, 400, 'kernel').met, false);
  const js = verdictGoal(250, 40, 'js');
  assert.equal(js.met, null, 'a JS stamp leaves out the socket-buffer wait: was judged met');
  assert.equal(js.timestamps, 'js');
  assert.match(js.why ?? '', /JS receive stamp.*kernel-stamped/);
  assert.equal(verdictGoal(250, 400, 'js').met, null);
  assert.equal(verdictGoal(250, null, 'kernel').met, null);
  assert.equal(verdictGoal(250, 120, 'kernel', 'the half-rate step failed (loss)').met, null);
});

test('e2e (dtmesh bench): a half-rate step that failed or stayed busy in its last attempt carries no goal', () => {
  assert.equal(halfRateProblem(null), null);
  assert.equal(halfRateProblem({ failure: null, busy: null }), null);
  assert.equal(halfRateProblem({ failure: 'loss', busy: null }), 'the half-rate step failed (loss)');
  assert.equal(halfRateProblem({ failure: 'bad_replies', busy: null }), 'the half-rate step failed (invalid REPLYs)');
  assert.equal(halfRateProblem({ failure: 'latency', busy: null }), 'the half-rate step failed (RTT p99 over --max-rtt-ms)');
  assert.match(halfRateProblem({ failure: null, busy: 'other processes used 0.40 cores' }) ?? '', /still disturbed in its third attempt \(other processes used 0\.40 cores\)/);
  // the goal line: a kernel-stamped 120 µs at a failed half-rate step was judged met
  const g = verdictGoal(250, 120, 'kernel', halfRateProblem({ failure: 'generator', busy: null }));
  assert.equal(g.met, null);
  assert.match(g.why ?? '', /not judged: the half-rate step failed \(the generator's limit\)/);
});

test('e2e (dtmesh bench): the stage breakdown names the rate of each baseline row beside the engine\'s', () => {
  let text = '';
  const b = { rate: 15_000, loss: 0, stages_us: { a: 1 }, calls_per_datagram: {}, main_us: 4, other_threads_us: 1, datagrams_per_batch: 3, timer_ns: 70, echo_main_us: 3, echo_rate: 120_000, naive_main_us: 9, naive_rate: 15_000, c_us: 2, c_rate: null };
  printBreakdown(b, (s) => (text += s));
  assert.match(text, /\(echo: whole main thread, recv \+ send, at 120\.0 k\/s, not 15\.0 k\/s\)/, 'echo at its max, not the engine\'s rate');
  assert.match(text, /\(naive: whole main thread, at the same 15\.0 k\/s\)/);
  assert.match(text, /\(C responder: whole process\) /);
  assert.match(text, /not the engine's 15\.0 k\/s: per-datagram cost falls/);
});

test('bench:probe: the reference row says which timestamps the C prober had, and its runs get the warm-up dtmesh probe gets', () => {
  assert.equal(referenceLabel(['kernel', 'kernel']), 'reference (C, kernel ts)');
  assert.equal(referenceLabel(['user']), 'reference (C, user ts)', 'was hard-coded kernel');
  assert.equal(referenceLabel(['kernel', 'user']), 'reference (C, mixed ts: kernel/user)');
  assert.deepEqual(refRunArgs(2000, 3, 1), ['--rate', '2000', '--count', '8000', '--warmup-count', '2000'], '1 s at 2 k/s left out, 3 s measured');
  assert.deepEqual(refRunArgs(2000, 3, 0), ['--rate', '2000', '--count', '6000']);
});

test('e2e (dtmesh bench): the responder\'s GC pauses and the host\'s steal are named beside a half-rate tail, and only when there were any', () => {
  const none = { count: 0, total_ms: 0, max_ms: 0 };
  assert.equal(halfRateContext(null), '');
  assert.equal(halfRateContext({ steal_cores: 0, gc: none }), '');
  assert.equal(halfRateContext({ steal_cores: null, gc: null }), '', 'C on a host without /proc/stat');
  assert.equal(halfRateContext({ steal_cores: 0, gc: { count: 3, total_ms: 30.5, max_ms: 18.04 } }), ' (during that run: its main thread paused 3× for GC, longest 18.0 ms)');
  assert.equal(halfRateContext({ steal_cores: 0.05, gc: { count: 1, total_ms: 2, max_ms: 2 } }), ' (during that run: its main thread paused 1× for GC, longest 2.0 ms; hypervisor steal 0.05 cores)');
  assert.equal(halfRateContext({ steal_cores: 0.05, gc: null }), ' (during that run: hypervisor steal 0.05 cores)');
  assert.equal(gcNote(undefined), '', 'the C responder: no GC');
  assert.equal(gcNote(none), '');
  assert.equal(gcNote({ count: 2, total_ms: 6, max_ms: 5.12 }), ', GC 2× max 5.1 ms');
});

test('a bench step is run again when other processes or the hypervisor took the machine during it; otherwise it stands', () => {
  assert.equal(repeatReason(0, 0), null);
  assert.equal(repeatReason(0.15, 0.05), null, 'at the thresholds it stands');
  assert.equal(repeatReason(0.1, null), null, 'no /proc/stat: no steal figure, nothing to repeat for');
  assert.equal(repeatReason(0.16, 0), 'other processes used 0.16 cores');
  assert.equal(repeatReason(0, 0.6), 'the hypervisor stole 0.60 cores', 'the run of 2026-12-03 whose native p99 was 22 ms');
  assert.equal(repeatReason(0.2, 0.6), 'other processes used 0.20 cores', 'the first reason is given');
});

test('the cpuidle driver and the haltpoll window are read from sysfs and named in the background-load note only where idle vCPUs halt; unreadable or another driver adds nothing', () => {
  const root = tempDir('dtmesh-cpuidle-');
  try {
    const files = { driver: path.join(root, 'current_driver'), haltPollNs: path.join(root, 'guest_halt_poll_ns') };
    const set = (driver: string | null, ns: string | null): void => {
      for (const [f, v] of [[files.driver, driver], [files.haltPollNs, ns]] as const) {
        if (v === null) fs.rmSync(f, { force: true });
        else fs.writeFileSync(f, `${v}\n`);
      }
    };
    set('haltpoll', '0'); // this project's AMD VM: haltpoll.guest_halt_poll_ns=0 on its kernel command line
    assert.deepEqual(cpuIdle(files), { driver: 'haltpoll', guest_halt_poll_ns: 0 });
    assert.match(cpuIdleNote(cpuIdle(files)), /^\nhost: idle vCPUs halt at once \(cpuidle haltpoll, guest_halt_poll_ns 0\): .*hypervisor/);
    set('haltpoll', '200000');
    assert.deepEqual(cpuIdle(files), { driver: 'haltpoll', guest_halt_poll_ns: 200_000 });
    assert.match(cpuIdleNote(cpuIdle(files)), /idle vCPUs poll 200 µs, then halt \(cpuidle haltpoll, guest_halt_poll_ns 200000\)/);
    const w = new LoadWatch(path.join(root, 'no-damon'), files).stop();
    assert.deepEqual(w.cpuidle, { driver: 'haltpoll', guest_halt_poll_ns: 200_000 }, 'the JSON carries it');
    assert.match(w.note, /\nhost: idle vCPUs poll 200 µs/, 'the closing line names it');
    set('haltpoll', 'garbage');
    assert.deepEqual(cpuIdle(files), { driver: 'haltpoll', guest_halt_poll_ns: null });
    assert.equal(cpuIdleNote(cpuIdle(files)), '', 'an unreadable window is not guessed');
    set('haltpoll', null);
    assert.deepEqual(cpuIdle(files), { driver: 'haltpoll', guest_halt_poll_ns: null });
    set('intel_idle', '0'); // bare metal or another driver: the haltpoll file means nothing there
    assert.deepEqual(cpuIdle(files), { driver: 'intel_idle', guest_halt_poll_ns: null });
    assert.equal(cpuIdleNote(cpuIdle(files)), '');
    set(null, null);
    assert.equal(cpuIdle(files), null);
    const none = new LoadWatch(path.join(root, 'no-damon'), files).stop();
    assert.equal(none.cpuidle, null);
    assert.doesNotMatch(none.note, /vCPU/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the host\'s DAMON monitors (kdamond) are found through sysfs and named in the background-load note with their CPU per sample; none (absent, off, unreadable) adds nothing', { skip: process.platform !== 'linux' ? 'reads /proc (Linux only)' : false }, () => {
  const root = tempDir('dtmesh-damon-');
  try {
    const monitor = (n: string, state: string, pid: number, sampleUs?: number): void => {
      const d = path.join(root, n, 'contexts', '0', 'monitoring_attrs', 'intervals');
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(root, n, 'state'), `${state}\n`);
      fs.writeFileSync(path.join(root, n, 'pid'), `${pid}\n`);
      if (sampleUs !== undefined) fs.writeFileSync(path.join(d, 'sample_us'), `${sampleUs}\n`);
    };
    fs.writeFileSync(path.join(root, 'nr_kdamonds'), '2\n');
    monitor('0', 'on', process.pid, 100_000); // this process stands in for the kernel thread: its CPU time is known to be > 0
    monitor('1', 'off', -1);
    assert.deepEqual(kdamonds(root), [{ pid: process.pid, sampleUs: 100_000 }], 'the running one only');
    assert.deepEqual(kdamonds(path.join(root, 'absent')), []);
    // ~300 ms of busy wall time: ~3 samples of 100 ms; how much of it this thread had the CPU
    // depends on the host's load, so the figure is held to the process's own count of it
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const w = new LoadWatch(root);
    let x = 0;
    while (performance.now() - t0 < 300) x += Math.sqrt(x + 1);
    const r = w.stop();
    const cpu = process.cpuUsage(cpu0);
    const ownMsPerS = (cpu.user + cpu.system) / 1000 / ((performance.now() - t0) / 1000);
    assert.equal(r.kdamonds.length, 1);
    const k = r.kdamonds[0]!;
    assert.equal(k.pid, process.pid);
    assert.ok(ownMsPerS > 100, `the loop ran (${ownMsPerS} ms/s; x ${x > 0})`);
    assert.ok(Math.abs(k.cpu_ms_per_s - ownMsPerS) <= 0.25 * ownMsPerS, `${JSON.stringify(k)}: the thread's CPU, ${ownMsPerS.toFixed(1)} ms/s by process.cpuUsage`);
    assert.ok(Math.abs(k.ms_per_sample! - k.cpu_ms_per_s / 10) <= 0.5 && k.ms_per_sample! <= 100.5, `${JSON.stringify(k)}: per 100 ms sample`);
    assert.match(r.note, new RegExp(`kdamond, pid ${process.pid}\\) samples memory every 100 ms and ran [0-9.]+ ms per sample`));
    const none = new LoadWatch(path.join(root, 'absent')).stop();
    assert.deepEqual(none.kdamonds, []);
    assert.doesNotMatch(none.note, /DAMON/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
