/**
 * `npm run bench:soak` — issue 12's memory check: a long `dtmesh probe --duration` run
 * keeps its RSS flat (MEASUREMENT.md §4: per-probe state lives in a ring sized by rate ×
 * deadline, never by the run). One `dtmesh serve` and one `dtmesh probe --rate R
 * --duration S --json` (the real CLI, each its own process, pinned to different CPUs as
 * in bench:probe); the probe's VmRSS is read from /proc every `--sample` seconds. The
 * baseline is its RSS once the settle time has passed (JIT, the ring, the histograms
 * and the socket buffers are all allocated by then); growth = the largest RSS after
 * that minus the baseline. Goal: growth < 20 MB over a 10-minute run at 10 k pps. Prints
 * one progress line per sample, the verdict, and the probe's own report figures
 * (sent, lost, ring size), so a run that did not measure is never a pass. Linux only.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { intFlag, numFlag, usage } from '../src/cli/args.js';
import { BENCH_RESPONDER, isMain, LoadWatch, machineLine, parseBenchFlags, round, runCommand, writeJson } from './common.js';
import { NODE_AGENT, onCpu, placement, startServe, stateDir } from './probe-compare.js';

/** The goal: RSS growth after the settle time, MB. */
export const SOAK_GOAL_MB = 20;

const CMD = 'bench:soak';
const HELP = `Usage: npm run bench:soak -- [--duration S] [--rate PPS] [--lane L] [--sample S]
                                [--settle S] [--json PATH] [--no-pin]

Memory of a long 'dtmesh probe' run (issue 12): one 'dtmesh serve' and one
'dtmesh probe --duration S --rate PPS' on 127.0.0.1; the probe's RSS (VmRSS) every
--sample seconds; growth = its largest RSS after --settle seconds minus its RSS then.
Goal: growth < ${SOAK_GOAL_MB} MB over a 10-minute run at 10 k pps. Linux only (reads /proc).

  --duration S   the probe's measured duration (default 600)
  --rate PPS     probes per second (default 10000)
  --lane L       the probe's lane: auto, native or dgram (default auto)
  --sample S     seconds between RSS readings (default 10)
  --settle S     seconds after the probe starts before the baseline reading (default 30)
  --json PATH    write the samples and the verdict as JSON
  --no-pin       leave dtmesh serve and dtmesh probe to the scheduler
  --help         this text
`;

const here = path.dirname(fileURLToPath(import.meta.url));
const cliFile = path.resolve(here, '../cli.js');

function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

interface Sample {
  t_s: number;
  rss_mb: number;
}

async function soak(cfg: { durationS: number; rate: number; lane: string; sampleS: number; settleS: number; pin: boolean; json?: string }): Promise<number> {
  const log = (s: string): void => void process.stdout.write(s);
  if (process.platform !== 'linux') {
    log('bench:soak: skipped — reads /proc (Linux only)\n');
    return 0;
  }
  if (cfg.settleS >= cfg.durationS) throw usage(CMD, '--settle must be shorter than --duration');
  log(`${machineLine()}\n`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-soak-'));
  const watch = new LoadWatch();
  const samples: Sample[] = [];
  // both children are stopped in the finally, on every path: a throw (the probe exiting
  // non-zero, a bad report) must not leave dtmesh serve running — it would keep this
  // process alive for ever, and the finally deletes its state dir under it
  let serve: Awaited<ReturnType<typeof startServe>> | null = null;
  let probe: ReturnType<typeof spawn> | null = null;
  let probeExited: Promise<unknown> = Promise.resolve();
  try {
    const { place, why } = cfg.pin ? placement() : { place: null, why: '--no-pin' };
    serve = await startServe(stateDir(tmp, 'serve'), [NODE_AGENT], 'auto', place?.serve);
    log(place !== null ? `placement: dtmesh serve on CPU ${place.serve}, dtmesh probe on CPU ${place.prober}\n` : `placement: left to the scheduler (${why})\n`);
    const jsonFile = path.join(tmp, 'report.json');
    const [cmd, args] = onCpu(place?.prober, process.execPath, [
      cliFile, 'probe', '--state-dir', stateDir(tmp, 'probe'), '--tenant', 'bench-tenant', '--agent', NODE_AGENT,
      '--target', `${BENCH_RESPONDER}@127.0.0.1:${serve.port}`, '--rate', String(cfg.rate), '--duration', String(cfg.durationS),
      '--lane', cfg.lane, '--json', jsonFile, '--quiet',
    ]);
    log(`soak: dtmesh probe --rate ${cfg.rate} --duration ${cfg.durationS} --lane ${cfg.lane}; RSS every ${cfg.sampleS} s, baseline at ${cfg.settleS} s\n`);
    const t0 = Date.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    probe = p;
    watch.child(p.pid);
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const exited = new Promise<number | string>((r) => p.once('exit', (c, s) => r(s ?? c ?? 0)));
    probeExited = exited;
    let done = false;
    void exited.then(() => (done = true));
    const deadline = t0 + (cfg.durationS + 120) * 1000; // the run, its warm-up, the last deadlines, start-up
    let next = t0 + cfg.sampleS * 1000;
    while (!done && Date.now() < deadline) {
      await Promise.race([exited, new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())))]);
      if (done) break;
      watch.sample();
      const rss = rssMb(p.pid!);
      if (rss === null) {
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]); // it is exiting: its /proc entry is gone
        break;
      }
      const t = round((Date.now() - t0) / 1000, 1);
      samples.push({ t_s: t, rss_mb: round(rss, 1) });
      log(`  t=${t.toFixed(0).padStart(5)} s  RSS ${rss.toFixed(1).padStart(7)} MB\n`);
      next += cfg.sampleS * 1000;
    }
    if (!done) {
      p.kill('SIGKILL');
      throw new Error(`dtmesh probe did not finish within ${cfg.durationS + 120} s`);
    }
    const code = await exited;
    if (code !== 0) throw new Error(`dtmesh probe exited ${code}: ${err.trim().split('\n').pop() ?? ''}`);
    const report = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as { sent: number; received: number; lost: number; offered_pps: number; duration_s: number; lane: string; memory: { ring_entries: number; ring_bytes: number } };
    const base = samples.find((s) => s.t_s >= cfg.settleS);
    const after = base === undefined ? [] : samples.filter((s) => s.t_s >= base.t_s);
    if (base === undefined || after.length < 2) throw new Error(`too few RSS readings after the ${cfg.settleS} s settle time (${samples.length} in all)`);
    const peak = Math.max(...after.map((s) => s.rss_mb));
    const growth = round(peak - base.rss_mb, 1);
    const met = growth < SOAK_GOAL_MB;
    const load = watch.stop();
    log(
      `probe report: lane ${report.lane}, sent ${report.sent}, received ${report.received}, lost ${report.lost}, offered ${report.offered_pps} pps over ${report.duration_s} s; ` +
        `ring ${report.memory.ring_entries} entries (${report.memory.ring_bytes} B)\n`,
    );
    log(`RSS: ${base.rss_mb} MB at ${base.t_s} s, peak after it ${peak} MB, last ${after[after.length - 1]!.rss_mb} MB: growth ${growth} MB (goal < ${SOAK_GOAL_MB} MB: ${met ? 'met' : 'NOT met'})\n`);
    log(`${load.note}\n`);
    if (cfg.json !== undefined) {
      writeJson(cfg.json, { machine: machineLine(), config: { ...cfg, pinned: place !== null }, samples, baseline: base, peak_mb: peak, growth_mb: growth, goal_mb: SOAK_GOAL_MB, met, report: { sent: report.sent, received: report.received, lost: report.lost, offered_pps: report.offered_pps, duration_s: report.duration_s, lane: report.lane, memory: report.memory }, other_load_cores: load.otherCores });
      log(`wrote ${cfg.json}\n`);
    }
    return 0;
  } finally {
    // bounded: the probe is killed and waited for at most 5 s; serve.stop() sends SIGTERM, then SIGKILL after 5 s
    if (probe !== null && probe.exitCode === null && probe.signalCode === null) {
      probe.kill('SIGKILL');
      await Promise.race([probeExited, new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    if (serve !== null) await serve.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** `npm run bench:soak`: returns the exit code (2 for a bad flag). */
export async function probeSoakCommand(argv: string[]): Promise<number> {
  return runCommand(CMD, async () => {
    const v = parseBenchFlags(CMD, argv, ['duration', 'rate', 'lane', 'sample', 'settle', 'json'], ['no-pin']);
    if (v.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const lane = v.lane ?? 'auto';
    if (lane !== 'auto' && lane !== 'native' && lane !== 'dgram') throw usage(CMD, '--lane must be auto, native or dgram');
    return soak({
      durationS: numFlag(CMD, v, 'duration', 1, 86_400) ?? 600,
      rate: intFlag(CMD, v, 'rate', 1, 1_000_000) ?? 10_000,
      lane: String(lane),
      sampleS: numFlag(CMD, v, 'sample', 0.2, 3600) ?? 10,
      settleS: numFlag(CMD, v, 'settle', 0, 86_400) ?? 30,
      pin: v['no-pin'] !== true,
      json: typeof v.json === 'string' ? v.json : undefined,
    });
  });
}

if (isMain(import.meta.url)) {
  probeSoakCommand(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
