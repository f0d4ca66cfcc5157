/**
 * A re-runnable check of the RTT tail the prober reports against `dtmesh serve` on
 * loopback (issue 12: "the prober reports the path, not itself"). Not part of `npm
 * test` (it measures, it asserts nothing); run after a build:
 *
 *   node dist/test/probe/tail.check.js [--rates 10000,50000] [--duration 3] [--runs 1]
 *        [--cli path/to/other/dist/cli.js] [--node-flags "--max-semi-space-size=64"]
 *        [--serve "serve flags"] [--configs "cli=/old/dist/cli.js;--pacing spin;--batch 256"]
 *        [--verbose] [-- extra probe flags…]
 *
 * One line per rate: RTT p50/p90/p99/p99.9/max, offered pps, loss and (new CLI) the
 * generator's lateness p99 / event-loop delay p99. `--cli` runs another build of the
 * prober (e.g. an older commit, extracted with `git archive`) against the same serve.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliPath, startServe, stateDir } from '../helpers.js';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const extra = sep >= 0 ? argv.slice(sep + 1) : [];
const own = sep >= 0 ? argv.slice(0, sep) : argv;
const opt = (name: string, dflt: string): string => {
  const i = own.indexOf(`--${name}`);
  return i >= 0 ? own[i + 1]! : dflt;
};
const rates = opt('rates', '10000,50000').split(',').map(Number);
const duration = opt('duration', '3');
const runs = Number(opt('runs', '1'));
const cli = opt('cli', cliPath);
const serveArgs = opt('serve', '').split(' ').filter((s) => s !== '');
const nodeFlags = opt('node-flags', '').split(' ').filter((s) => s !== '');

function run(cliFile: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [...nodeFlags, cliFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

/** Configurations to compare, interleaved run by run: `--configs "flags A;flags B"`, an entry may start with `cli=PATH`. */
const configs = opt('configs', extra.join(' '))
  .split(';')
  .map((c) => c.trim().split(' ').filter((x) => x !== ''))
  .map((words) => (words[0]?.startsWith('cli=') ? { cli: words[0].slice(4), flags: words.slice(1) } : { cli, flags: words }));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}

const dir = stateDir();
const serve = await startServe(['--state-dir', dir, '--tenant', 't', '--agent', 'A', '--peers', 'A,B', '--listen', '127.0.0.1:0', ...serveArgs]);
try {
  process.stdout.write(`# ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}; node flags ${nodeFlags.join(' ') || '-'}; serve ${serveArgs.join(' ') || '(defaults)'}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  for (const rate of rates) {
    const seen = configs.map(() => ({ p50: [] as number[], p90: [] as number[], p99: [] as number[], lost: 0, sent: 0, limited: 0 }));
    for (let i = 0; i < runs; i++) {
      for (const [ci, c] of configs.entries()) {
        const json = path.join(dir, `r-${rate}-${i}-${ci}.json`);
        const r = await run(c.cli, ['probe', '--state-dir', dir, '--tenant', 't', '--agent', 'B', '--target', `A@127.0.0.1:${serve.port}`, '--rate', String(rate), '--duration', duration, '--json', json, ...c.flags]);
        if (r.code !== 0 && r.code !== 3) {
          process.stdout.write(`rate ${rate} [${c.flags.join(' ')}]: exit ${r.code}: ${r.err.trim()}\n`);
          continue;
        }
        const j = JSON.parse(fs.readFileSync(json, 'utf8'));
        const g = j.generator;
        const s = seen[ci]!;
        s.p50.push(j.rtt_us.p50);
        s.p90.push(j.rtt_us.p90);
        s.p99.push(j.rtt_us.p99);
        s.lost += j.lost;
        s.sent += j.sent;
        if (g?.generator_limited) s.limited++;
        if (own.includes('--verbose')) {
          process.stdout.write(
            `rate ${rate} [${c.cli === cli ? '' : 'cli=' + c.cli + ' '}${c.flags.join(' ')}]: rtt µs p50 ${j.rtt_us.p50} p90 ${j.rtt_us.p90} p99 ${j.rtt_us.p99} p999 ${j.rtt_us.p999}; offered ${j.offered_pps} pps; lost ${j.lost}/${j.sent}` +
              (g ? `; lateness p99 ${g.lateness_us.p99} µs, burst ${g.max_burst}, eld p99 ${g.event_loop_delay_us.p99} µs${g.gc ? `, gc ${g.gc.count}× max ${g.gc.max_ms} ms` : ''}${g.generator_limited ? ', GENERATOR LIMITED' : ''}` : '') +
              '\n',
          );
        }
      }
    }
    for (const [ci, c] of configs.entries()) {
      const s = seen[ci]!;
      process.stdout.write(
        `rate ${rate} [${c.cli === cli ? '' : 'cli=' + path.basename(path.dirname(path.dirname(c.cli))) + ' '}${c.flags.join(' ') || 'defaults'}]: median of ${s.p99.length} runs: p50 ${median(s.p50)} p90 ${median(s.p90)} p99 ${median(s.p99)} µs (p99 range ${Math.min(...s.p99)}–${Math.max(...s.p99)}); lost ${s.lost}/${s.sent}; generator-limited in ${s.limited}\n`,
      );
    }
  }
} finally {
  await serve.stop();
}
