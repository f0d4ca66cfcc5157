/**
 * `npm run bench:probe` — issue 12's check: is the RTT `dtmesh probe` reports close to
 * the truth? One `dtmesh serve` (the real CLI, its own process) on 127.0.0.1; against it,
 * alternately, the C reference prober (bench/c/prober.c: send time taken right before
 * sendmmsg, receive time from the kernel, SO_TIMESTAMPNS) and `dtmesh probe --json`, each
 * at R pps for D s, repeated (the order rotating per repeat), at each rate (default 10 k
 * and 50 k pps). Prints one line per run, then per rate the medians over the repeats of p50/p90/p99 of both, the CPU
 * each prober process used (cores: near 1.0 a prober is saturated and its own queueing
 * is in its tail; the C reference's own figure shows what this machine's sends and
 * wake-ups cost anyone) and the ratio probe/reference, with the goal `probe p99 ≤ 2 ×
 * reference p99 + 50 µs` (and p50, p90 likewise), the rate each probe run offered (goal: within 2 % of the rate,
 * or the report says `generator_limited`), the machine line and how busy the machine was.
 * Every child has a deadline.
 *
 * Placement: the responder runs on one CPU and every prober on another (`taskset`), as
 * on a mesh, where prober and responder are different hosts. Left to the scheduler on
 * this 2-vCPU machine, `dtmesh serve` and `dtmesh probe` often shared a CPU (the waker
 * pulls the wakee), and the responder's receive→verdict p90 went from 25 to 100 µs and its
 * p99 into milliseconds while the probe ran. This bench, same session, unpinned (as `--no-pin`
 * does; `--repeats 3`) gave probe p99 2155 µs at 10 k pps and 3367 µs at 50 k; pinned, `--repeats
 * 5` gave 481 and 511 µs. Both probers get the same CPU, so the comparison stays fair;
 * `--no-pin` leaves placement to the scheduler.
 */
import { spawnSync } from 'node:child_process';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { intFlag, numFlag, usage } from '../src/cli/args.js';
import { hostCpuTimes, stealCores } from '../src/observe/host-cpu.js';
import type { GcSummary } from '../src/observe/gc-pauses.js';
import { nativeLane, nativeLaneStatus } from '../src/protocol/native.js';
import { buildC } from './cbuild.js';
import { BENCH_RESPONDER, BENCH_TENANT, benchRoot, intListFlag, isMain, LoadWatch, machine, machineLine, parseBenchFlags, printTable, round, runCommand, si, writeJson } from './common.js';

const CMD = 'bench:probe';
const HELP = `Usage: npm run bench:probe -- [--quick] [--rates LIST] [--duration S] [--repeats N]
                                 [--size BYTES] [--lanes LIST] [--serve-lane L] [--warmup S]
                                 [--json PATH]

RTT reported by 'dtmesh probe' against a C reference prober with kernel receive
timestamps (bench/c/prober.c, built with cc -O2 at run time), alternating against one
'dtmesh serve' on 127.0.0.1. Goals (issue 12): probe p99 ≤ 2 × reference p99 + 50 µs;
every probe run offers its rate within 2 % or says generator_limited (--rates 100000
checks the top of that range).

  --quick          one repeat of 1 s per rate
  --rates LIST     probe rates, pps (default 10000,50000)
  --duration S     seconds per run (default 2; quick 1)
  --repeats N      alternations per rate (default 3; quick 1): the median of 3 stands
                   one run that a stall of the host spoiled, the median of 2 does not
  --size BYTES     datagram size, 50-1400 (default 84)
  --lanes LIST     lanes 'dtmesh probe' runs on, each in every alternation (default
                   native,dgram where the native lane is built, else dgram)
  --serve-lane L   the responder's lane: auto, native or dgram (default auto)
  --warmup S       reference traffic at the highest rate before the first run, not
                   measured (default 1; quick 0.5; 0 = none): a fresh responder's JIT
                   warm-up stalls it for ms, which would land in the first run only
  --json PATH      write the runs and the summary as JSON
  --no-pin         do not pin dtmesh serve and the probers to different CPUs (default:
                   serve on the first allowed CPU, each prober on the second, with
                   taskset, as prober and responder are different hosts on a mesh)
  --help           this text
`;

/**
 * Alternations per rate by default. A median of 2 is the mean of both, so one run with a
 * host stall in it moves it (AMD EPYC VM: reference p99 187 and 2372 µs back to back at
 * 10 k pps); a median of 3 stands one such run.
 */
export const DEFAULT_REPEATS = 3;

/** Goal of issue 12: probe p99 within factor × reference p99 + slack. */
export const PROBE_GOAL = { factor: 2, slack_us: 50 } as const;
/**
 * Issue 12's "p50 and p90 likewise": each within {@link PROBE_GOAL} of the reference's same
 * percentile. Returns each bound (µs) and whether both hold.
 */
export function p50p90Goal(ref: { p50: number; p90: number }, prb: { p50: number; p90: number }): { bound_us: { p50: number; p90: number }; met: boolean } {
  const b = (x: number): number => round(PROBE_GOAL.factor * x + PROBE_GOAL.slack_us, 1);
  const bound_us = { p50: b(ref.p50), p90: b(ref.p90) };
  return { bound_us, met: prb.p50 <= bound_us.p50 && prb.p90 <= bound_us.p90 };
}

/** Issue 12's rate goal: `probe --rate R` offers R within this share, or its report says `generator_limited`. */
export const RATE_GOAL_SHARE = 0.02;

const here = path.dirname(fileURLToPath(import.meta.url));
const cliFile = path.resolve(here, '../cli.js');

/** The C prober's agent and `dtmesh probe`'s: two senders, so their nonces never meet. */
export const REF_AGENT = 'probe-ref';
export const NODE_AGENT = 'probe-node';

/** One run of one prober. */
export interface ProbeRun {
  prober: 'reference' | 'probe';
  rate: number;
  repeat: number;
  sent: number;
  received: number;
  lost: number;
  rtt_us: { p50: number; p90: number; p99: number; max: number };
  offered_pps: number;
  /** reference: "kernel" when every reply had a kernel timestamp; probe: the report's `timestamps`. */
  timestamps?: string;
  /** probe: the lane it ran on. */
  lane?: string;
  /**
   * The prober process's CPU while it ran, in cores: reference `cpu_us` (its whole run)
   * over its sending span; probe the report's `generator.cpu_cores` (measured phase to the
   * end of sending). Near 1.0 the prober itself is saturated.
   */
  cpu_cores: number;
  /** probe: the report's `generator.generator_limited` (the prober says it could not keep the schedule). */
  generator_limited?: boolean;
  /** probe: the report's `generator.gc` — its own GC pauses in the measured phase, each a stall of every reply that arrives meanwhile. */
  gc?: GcSummary;
  /**
   * Hypervisor steal on this host while the run's process lived (`/proc/stat`, every CPU),
   * in cores; null where the host does not count it. Both probers and the responder share
   * the host here, so its stalls land in every figure of the run.
   */
  steal_cores: number | null;
  /** probe: where its lost probes went, when it knows: the report's non-zero `dropped` reasons and `kernel_drops` (its own socket's). */
  drops?: Record<string, number>;
}

/**
 * Who runs in alternation `rep` (1-based): the reference and each probe lane, the order
 * rotated by one per repeat, so no prober always runs right after the same one (a
 * saturated dgram run, say) and each takes every place in turn.
 */
export function runOrder(lanes: readonly string[], rep: number): string[] {
  const order = ['reference', ...lanes];
  return order.map((_, k) => order[(k + rep - 1) % order.length]!);
}

/** Issue 12's rate goal for one probe run: offered within {@link RATE_GOAL_SHARE} of the rate, or it said `generator_limited`. */
export function rateGoalMet(r: ProbeRun): boolean {
  return Math.abs(r.offered_pps - r.rate) <= RATE_GOAL_SHARE * r.rate || r.generator_limited === true;
}

interface Proc {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end, killed (SIGKILL, by its pid) after `timeoutMs`; `steal_cores`: the host's hypervisor steal meanwhile. */
async function run(cmd: string, args: string[], timeoutMs: number): Promise<Proc & { steal_cores: number | null }> {
  const h0 = hostCpuTimes();
  const t0 = performance.now();
  const p = await runProc(cmd, args, timeoutMs);
  const h1 = hostCpuTimes();
  const s = (performance.now() - t0) / 1000;
  return { ...p, steal_cores: h0 !== null && h1 !== null && s > 0 ? round(stealCores(h0, h1, s), 3) : null };
}

function runProc(cmd: string, args: string[], timeoutMs: number): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A state directory `parent/name` holding the bench root as mesh-root-key (32 raw bytes, 0600). */
export function stateDir(parent: string, name: string): string {
  const d = path.join(parent, name);
  fs.mkdirSync(d, { mode: 0o700 });
  fs.writeFileSync(path.join(d, 'mesh-root-key'), benchRoot(), { mode: 0o600 });
  return d;
}

/** Where the processes run: a CPU each for the responder and the probers, or null (the scheduler decides). */
export type Placement = { serve: string; prober: string } | null;

/** `cmd args` on CPU `cpu` (through taskset), or as is. */
export function onCpu(cpu: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', cpu, cmd, ...args]];
}

/** Two CPUs this process may run on and a taskset to put children there, or why not. */
export function placement(): { place: Placement; why: string } {
  let cpus: number[] = [];
  try {
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
    for (const part of list.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) cpus.push(c);
    }
  } catch {
    cpus = [];
  }
  if (cpus.length < 2) return { place: null, why: 'fewer than 2 CPUs allowed' };
  if (spawnSync('taskset', ['-V'], { encoding: 'utf8', timeout: 5000 }).status !== 0) return { place: null, why: 'no taskset (util-linux)' };
  return { place: { serve: String(cpus[0]), prober: String(cpus[1]) }, why: '' };
}

/**
 * The reference row's label, from the `timestamps` the C prober reported in its runs
 * ("kernel", or "user" when the kernel gave none): not assumed.
 */
export function referenceLabel(timestamps: ReadonlyArray<string | undefined>): string {
  const kinds = [...new Set(timestamps.map((t) => t ?? 'unknown'))];
  return `reference (C, ${kinds.length === 1 ? `${kinds[0] === 'kernel' ? 'kernel' : kinds[0]} ts` : `mixed ts: ${kinds.join('/')}`})`;
}

/**
 * Arguments of one measured C reference run with the same warm-up `dtmesh probe` gets
 * (`--warmup warmS`, kept out of its figures): it sends for `warmS + seconds` and leaves its
 * first `rate × warmS` probes out of every figure (`--warmup-count`), so both probers'
 * figures start after the same warm-up.
 */
export function refRunArgs(rate: number, seconds: number, warmS: number): string[] {
  const warm = Math.round(rate * warmS);
  return ['--rate', String(rate), '--count', String(Math.round(rate * seconds) + warm), ...(warm > 0 ? ['--warmup-count', String(warm)] : [])];
}

/** Warm-up of every measured run, seconds, given to both probers (dtmesh probe `--warmup`, its default too; the C prober `--warmup-count`). */
export const RUN_WARMUP_S = 1;

/** `dtmesh serve` on 127.0.0.1, an ephemeral port (on CPU `cpu` if given); resolves once it listens. `stop` returns its closing summary. */
export async function startServe(dir: string, peers: string[], lane: string, cpu?: string): Promise<{ port: number; stop: () => Promise<string> }> {
  const [cmd, args] = onCpu(cpu, process.execPath, [cliFile, 'serve', '--state-dir', dir, '--tenant', BENCH_TENANT, '--agent', BENCH_RESPONDER, '--peers', peers.join(','), '--listen', '127.0.0.1:0', '--lane', lane]);
  const p = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`dtmesh serve did not listen within 20 s: ${err.trim()}`));
    }, 20_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    p.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`dtmesh serve exited (${sig ?? `code ${code}`}): ${err.trim()}`));
    });
  });
  return {
    port,
    stop: async () => {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
      return (/stopped\. (.*)/.exec(out)?.[1] ?? '').trim();
    },
  };
}

interface Config {
  rates: number[];
  durationS: number;
  repeats: number;
  size: number;
  lanes: string[];
  serveLane: string;
  warmupS: number;
  /** Pin serve and the probers to different CPUs (`--no-pin`: false). */
  pin: boolean;
  json?: string;
}

async function compare(cfg: Config): Promise<number> {
  const log = (s: string): void => void process.stdout.write(s);
  const m = machine();
  log(`${machineLine(m)}\n`);
  const b = buildC('prober');
  if (b.bin === undefined) {
    log(`probe compare: skipped — ${b.skip}\n`);
    return 0;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-probe-compare-'));
  const watch = new LoadWatch();
  const runs: ProbeRun[] = [];
  const t0 = Date.now();
  let serveSummary = '';
  let placed = false;
  try {
    const serveDir = stateDir(tmp, 'serve');
    const probeDir = stateDir(tmp, 'probe');
    const { place, why } = cfg.pin ? placement() : { place: null, why: '--no-pin' };
    placed = place !== null;
    const serve = await startServe(serveDir, [REF_AGENT, NODE_AGENT], cfg.serveLane, place?.serve);
    log(
      place !== null
        ? `placement: dtmesh serve on CPU ${place.serve}, each prober on CPU ${place.prober} (taskset; on a mesh they are different hosts)\n`
        : `placement: left to the scheduler (${why}): serve and prober may share a CPU, which bends the responder's tail\n`,
    );
    log(
      `probe compare: dtmesh serve --lane ${cfg.serveLane} on 127.0.0.1:${serve.port}; ${cfg.size}-byte probes, ${cfg.durationS} s per run, ${cfg.repeats} alternation(s) per rate; ` +
        `reference = bench/c/prober (send time at sendmmsg, receive time SO_TIMESTAMPNS), probe = dtmesh probe --json on the ${cfg.lanes.join(' and the ')} lane\n`,
    );
    try {
      const target = `${BENCH_RESPONDER}@127.0.0.1:${serve.port}`;
      const limit = (cfg.durationS + 15) * 1000;
      const refBase = ['--root', Buffer.from(benchRoot()).toString('hex'), '--tenant', BENCH_TENANT, '--agent', REF_AGENT, '--target', target, '--size', String(cfg.size)];
      const refArgs = (rate: number, seconds: number): string[] => [...refBase, '--rate', String(rate), '--duration', String(seconds)];
      log(`  every measured run: ${RUN_WARMUP_S} s warm-up left out of its figures, both probers (dtmesh probe --warmup, the C prober --warmup-count)\n`);
      if (cfg.warmupS > 0) {
        // Measured: a fresh serve's first 2 s at 50 k pps gave the reference p99 7.5-15 ms, the next ones 0.2-1.9 ms.
        const top = Math.max(...cfg.rates);
        const w = await run(...onCpu(place?.prober, b.bin, refArgs(top, cfg.warmupS)), (cfg.warmupS + 15) * 1000);
        if (w.code !== 0) throw new Error(`bench/c/prober failed (${w.signal ?? `code ${w.code}`}): ${w.stderr.trim()}`);
        log(`  warm-up: ${cfg.warmupS} s of reference traffic at ${si(top)}/s, not measured\n`);
      }
      for (const rate of cfg.rates) {
        for (let rep = 1; rep <= cfg.repeats; rep++) {
          for (const who of runOrder(cfg.lanes, rep)) {
            if (who === 'reference') {
              const r = await run(...onCpu(place?.prober, b.bin, [...refBase, ...refRunArgs(rate, cfg.durationS, RUN_WARMUP_S)]), limit + RUN_WARMUP_S * 1000);
              if (r.code !== 0) throw new Error(`bench/c/prober failed (${r.signal ?? `code ${r.code}`}): ${r.stderr.trim()}`);
              const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
              runs.push({ prober: 'reference', rate, repeat: rep, sent: j.sent, received: j.received, lost: j.lost, rtt_us: { p50: j.rtt_us.p50, p90: j.rtt_us.p90, p99: j.rtt_us.p99, max: j.rtt_us.max }, offered_pps: j.offered_pps, timestamps: j.timestamps, cpu_cores: j.duration_s > 0 ? round(j.cpu_us / 1e6 / j.duration_s, 3) : 0, steal_cores: r.steal_cores });
              log(line(runs[runs.length - 1]!));
              continue;
            }
            const lane = who;
            const jsonFile = path.join(tmp, `probe-${rate}-${rep}-${lane}.json`);
            const p = await run(
              ...onCpu(place?.prober, process.execPath, [cliFile, 'probe', '--state-dir', probeDir, '--tenant', BENCH_TENANT, '--agent', NODE_AGENT, '--target', target, '--rate', String(rate), '--duration', String(cfg.durationS), '--size', String(cfg.size), '--lane', lane, '--warmup', String(RUN_WARMUP_S), '--json', jsonFile]),
              limit + RUN_WARMUP_S * 1000,
            );
            if (p.code !== 0) throw new Error(`dtmesh probe --lane ${lane} failed (${p.signal ?? `code ${p.code}`}): ${(p.stderr || p.stdout).trim().split('\n').pop()}`);
            const q = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
            runs.push({ prober: 'probe', rate, repeat: rep, sent: q.sent, received: q.received, lost: q.lost, rtt_us: { p50: q.rtt_us.p50, p90: q.rtt_us.p90, p99: q.rtt_us.p99, max: q.rtt_us.max }, offered_pps: q.offered_pps, timestamps: q.timestamps, lane: q.lane, cpu_cores: q.generator.cpu_cores, generator_limited: q.generator.generator_limited, gc: q.generator.gc, steal_cores: p.steal_cores, drops: probeDrops(q) });
            log(line(runs[runs.length - 1]!));
          }
        }
      }
    } finally {
      serveSummary = await serve.stop();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const load = watch.stop();

  // one row per rate and probe lane, each against the reference runs of its rate
  const summary = cfg.rates.flatMap((rate) => cfg.lanes.map((lane) => {
    const med = (rs: ProbeRun[], k: 'p50' | 'p90' | 'p99'): number => round(median(rs.map((r) => r.rtt_us[k])), 1);
    const ref = runs.filter((r) => r.rate === rate && r.prober === 'reference');
    const prb = runs.filter((r) => r.rate === rate && r.prober === 'probe' && r.lane === lane);
    const cpu = (rs: ProbeRun[]): number => round(median(rs.map((r) => r.cpu_cores)), 2);
    const steal = (rs: ProbeRun[]): number | null => (rs.every((r) => r.steal_cores !== null) ? round(median(rs.map((r) => r.steal_cores!)), 3) : null);
    const refP = { p50: med(ref, 'p50'), p90: med(ref, 'p90'), p99: med(ref, 'p99'), cpu_cores: cpu(ref), steal_cores: steal(ref) };
    const prbP = { p50: med(prb, 'p50'), p90: med(prb, 'p90'), p99: med(prb, 'p99'), cpu_cores: cpu(prb), steal_cores: steal(prb) };
    const bound = PROBE_GOAL.factor * refP.p99 + PROBE_GOAL.slack_us;
    const lossOf = (rs: ProbeRun[]): number => {
      const sent = rs.reduce((a, r) => a + r.sent, 0);
      return sent > 0 ? round(rs.reduce((a, r) => a + r.lost, 0) / sent, 6) : 0;
    };
    return {
      rate,
      lane,
      reference: { ...refP, loss: lossOf(ref), label: referenceLabel(ref.map((r) => r.timestamps)) },
      probe: { ...prbP, loss: lossOf(prb) },
      ratio: {
        p50: refP.p50 > 0 ? round(prbP.p50 / refP.p50, 2) : null,
        p90: refP.p90 > 0 ? round(prbP.p90 / refP.p90, 2) : null,
        p99: refP.p99 > 0 ? round(prbP.p99 / refP.p99, 2) : null,
      },
      goal: { bound_us: round(bound, 1), met: prbP.p99 <= bound },
      goal_p50_p90: p50p90Goal(refP, prbP),
      rate_goal: { offered_pps: round(median(prb.map((r) => r.offered_pps)), 0), limited_runs: prb.filter((r) => r.generator_limited === true).length, met: prb.every(rateGoalMet) },
    };
  }));

  log(`\n${machineLine(m)}\n`);
  printTable(
    ['rate', 'prober', 'p50 µs', 'p90 µs', 'p99 µs', 'loss %', 'CPU cores', 'host steal', 'probe/ref p50', 'p90', 'p99', `goal p99 ≤ ${PROBE_GOAL.factor}×ref+${PROBE_GOAL.slack_us}`, 'p50, p90 likewise', `offered (±${RATE_GOAL_SHARE * 100} % or limited)`],
    summary.flatMap((s, i) => [
      ...(i === 0 || summary[i - 1]!.rate !== s.rate
        ? [[`${si(s.rate)}/s`, s.reference.label, s.reference.p50.toFixed(1), s.reference.p90.toFixed(1), s.reference.p99.toFixed(1), (s.reference.loss * 100).toFixed(3), s.reference.cpu_cores.toFixed(2), stealCell(s.reference.steal_cores), '', '', '', '', '', '']]
        : []),
      [
        '',
        `dtmesh probe, ${s.lane} lane`,
        s.probe.p50.toFixed(1),
        s.probe.p90.toFixed(1),
        s.probe.p99.toFixed(1),
        (s.probe.loss * 100).toFixed(3),
        s.probe.cpu_cores.toFixed(2),
        stealCell(s.probe.steal_cores),
        s.ratio.p50 === null ? 'n/a' : s.ratio.p50.toFixed(2),
        s.ratio.p90 === null ? 'n/a' : s.ratio.p90.toFixed(2),
        s.ratio.p99 === null ? 'n/a' : s.ratio.p99.toFixed(2),
        `${s.goal.met ? 'met' : 'NOT met'} (≤ ${s.goal.bound_us.toFixed(0)} µs)`,
        `${s.goal_p50_p90.met ? 'met' : 'NOT met'} (≤ ${s.goal_p50_p90.bound_us.p50.toFixed(0)}, ${s.goal_p50_p90.bound_us.p90.toFixed(0)} µs)`,
        `${((100 * s.rate_goal.offered_pps) / s.rate).toFixed(1)} %${s.rate_goal.limited_runs > 0 ? `, limited ${s.rate_goal.limited_runs}/${cfg.repeats}` : ''}: ${s.rate_goal.met ? 'met' : 'NOT met'}`,
      ],
    ]),
  );
  log(`medians over ${cfg.repeats} alternation(s) of ${cfg.durationS} s per rate; host steal: the hypervisor's, in cores, while each run's prober lived (its stalls of ms land in every prober's tail)\n`);
  if (serveSummary) log(`dtmesh serve (--lane ${cfg.serveLane}): ${serveSummary}\n`);
  log(`${load.note}\n`);
  const elapsed = round((Date.now() - t0) / 1000, 1);
  log(`elapsed ${elapsed} s\n`);
  if (cfg.json !== undefined) {
    writeJson(cfg.json, { machine: m, config: { rates: cfg.rates, duration_s: cfg.durationS, warmup_s: cfg.warmupS, repeats: cfg.repeats, size: cfg.size, lanes: cfg.lanes, serve_lane: cfg.serveLane, pinned: placed }, goal: PROBE_GOAL, runs, summary, other_load_cores: load.otherCores, kdamonds: load.kdamonds, cpuidle: load.cpuidle, elapsed_s: elapsed });
    log(`wrote ${cfg.json}\n`);
  }
  return 0;
}

/** A probe report's non-zero drop counts: its engine's drop reasons and its socket's kernel drops. */
export function probeDrops(q: { dropped: Record<string, number>; kernel_drops: number | null }): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, n] of Object.entries(q.dropped)) if (n > 0) d[k] = n;
  if (q.kernel_drops) d.kernel_drops = q.kernel_drops;
  return d;
}

/** A median steal figure for the table ('-' where the host does not count steal). */
function stealCell(x: number | null): string {
  return x === null ? '-' : x.toFixed(2);
}

function line(r: ProbeRun): string {
  return (
    `  ${si(r.rate).padStart(7)}/s #${r.repeat} ${(r.prober === 'reference' ? 'reference' : `probe ${r.lane}`).padEnd(12)} ` +
    `sent ${String(r.sent).padStart(7)} received ${String(r.received).padStart(7)} lost ${String(r.lost).padStart(5)}  ` +
    `RTT p50 ${r.rtt_us.p50.toFixed(1).padStart(7)} p90 ${r.rtt_us.p90.toFixed(1).padStart(7)} p99 ${r.rtt_us.p99.toFixed(1).padStart(7)} max ${r.rtt_us.max.toFixed(0).padStart(6)} µs  CPU ${r.cpu_cores.toFixed(2)} cores` +
    `  offered ${r.offered_pps} pps${r.generator_limited === true ? ' GENERATOR LIMITED' : ''}` +
    `${r.steal_cores !== null ? `  steal ${r.steal_cores.toFixed(2)} cores` : ''}` +
    `${r.gc !== undefined && r.gc.count > 0 ? `  GC ${r.gc.count}× max ${r.gc.max_ms.toFixed(1)} ms` : ''}` +
    `${r.drops !== undefined && Object.keys(r.drops).length > 0 ? `  prober drops: ${Object.entries(r.drops).map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}` +
    `${r.timestamps !== undefined ? `  (${r.timestamps} timestamps)` : ''}\n`
  );
}

/** A lane name from a flag (`auto` only where `auto` is allowed); a usage error otherwise. */
function laneOf(x: string | boolean, flag: string, auto = false): string {
  if (x === 'native' || x === 'dgram' || (auto && x === 'auto')) return x;
  throw usage(CMD, `${flag} must be ${auto ? 'auto, ' : ''}native or dgram, got '${String(x)}'`);
}

/** `--lanes`: default native,dgram where the native lane is built, else dgram. */
function laneList(x: string | boolean | undefined): string[] {
  if (x === undefined) return nativeLane !== null ? ['native', 'dgram'] : ['dgram'];
  const lanes = String(x).split(',').map((l) => laneOf(l.trim(), '--lanes'));
  if (lanes.includes('native') && nativeLane === null) throw usage(CMD, `--lanes native: the native lane is ${nativeLaneStatus}`);
  return [...new Set(lanes)];
}

/** `npm run bench:probe`: returns the exit code (2 for a bad flag). */
export async function probeCompareCommand(argv: string[]): Promise<number> {
  return runCommand(CMD, async () => {
    const v = parseBenchFlags(CMD, argv, ['rates', 'duration', 'repeats', 'size', 'lanes', 'serve-lane', 'warmup', 'json'], ['quick', 'no-pin']);
    if (v.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const quick = v.quick === true;
    const cfg: Config = {
      rates: intListFlag(CMD, v, 'rates', 100, 1_000_000) ?? [10_000, 50_000],
      durationS: numFlag(CMD, v, 'duration', 0.1, 60) ?? (quick ? 1 : 2),
      repeats: intFlag(CMD, v, 'repeats', 1, 20) ?? (quick ? 1 : DEFAULT_REPEATS),
      size: intFlag(CMD, v, 'size', 50, 1400) ?? 84,
      lanes: laneList(v.lanes),
      serveLane: laneOf(v['serve-lane'] ?? 'auto', '--serve-lane', true),
      warmupS: numFlag(CMD, v, 'warmup', 0, 60) ?? (quick ? 0.5 : 1),
      pin: v['no-pin'] !== true,
      json: typeof v.json === 'string' ? v.json : undefined,
    };
    return compare(cfg);
  });
}

if (isMain(import.meta.url)) {
  probeCompareCommand(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
