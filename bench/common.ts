/**
 * Shared pieces of the benchmarks: the machine line every table is printed under, the
 * fixture (one tenant, one responder, N probing peers, a fixed bench root key), a
 * probe writer that seals datagrams in place with the protocol's own codec and MAC
 * kernel, strict flag parsing with one-line usage errors, per-thread CPU time, and a
 * small fixed-width table printer.
 *
 * Nothing here is on the engine's path; it only builds inputs and reports.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MAC_LEN, OFF_PAYLOAD, TYPE_PROBE } from '../src/protocol/wire.js';
import { writeHeader } from '../src/protocol/codec.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { macSeal } from '../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute, KERNEL_CROSSOVER_BYTES } from '../src/protocol/sha256.js';
import { macRoute } from '../src/protocol/mac.js';

// ---- machine --------------------------------------------------------------------------

/** What a measurement ran on (printed above every table, stored in every JSON). */
export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  /** The MAC route of the build measured: canonical bytes at/above which node:crypto is used when the native kernel is not. */
  kernel_crossover_bytes: number;
  /** The MAC route in one line (native kernel, or JS kernel + node:crypto and why). */
  mac_route: string;
}

/** The machine the benchmark runs on. */
export function machine(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel_crossover_bytes: KERNEL_CROSSOVER_BYTES,
    mac_route: macRoute(),
  };
}

/** One line: `machine: <cpu>, <n> cores, node vX (linux x64); MAC route …`. */
export function machineLine(m: MachineInfo = machine()): string {
  const route = m.mac_route;
  return `machine: ${m.cpu}, ${m.cores} cores, node ${m.node} (${m.platform}); ${route}`;
}

// ---- fixture --------------------------------------------------------------------------

/** Tenant of every benchmark. */
export const BENCH_TENANT = 'bench-tenant';
/** Agent ID of the responder under test. */
export const BENCH_RESPONDER = 'bench-responder';

/** Agent ID of probing peer `i`. */
export function benchPeer(i: number): string {
  return `bench-peer-${i}`;
}

/**
 * The benchmark's tenant root: a fixed, public value (SHA-256 of a label) so that the
 * responder and load-generator processes agree without passing key bytes around. It
 * protects nothing; it is never a real tenant's key.
 */
export function benchRoot(): Uint8Array {
  return new Uint8Array(createHash('sha256').update('dtmesh benchmark root (public, not a secret)').digest());
}

/** Wall-clock µs since the Unix epoch (same clock as the engine, PROTOCOL.md §6). */
export function wallUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * Writes valid v1 datagrams of one peer in place (PROTOCOL.md §2): header by the
 * codec's `writeHeader`, a constant payload, MAC by `macSeal` through the JS kernel
 * with the pair key's precomputed HMAC state. Nonces strictly increase (PROTOCOL.md §3).
 */
export class ProbeWriter {
  /** The peer's sender_id. */
  readonly senderId: Uint8Array;
  /** HMAC state of the pair key with the responder. */
  readonly state = new Int32Array(HMAC_STATE_WORDS);
  /** Next nonce. */
  nonce: number;

  constructor(root: Uint8Array, tenant: string, agent: string, responder: string) {
    this.senderId = senderIdOf(agent);
    hmacPrecompute(derivePairKey(root, tenant, agent, responder), this.state, 0);
    this.nonce = Math.floor(wallUs());
  }

  /** Write a `size`-byte datagram of `type` at `buf[off]`; returns the nonce used. */
  write(buf: Uint8Array, off: number, size: number, probeId: number, sendTsUs: number, type = TYPE_PROBE): number {
    const nonce = this.nonce++;
    writeHeader(buf, off, type, this.senderId, nonce, probeId >>> 0, Math.floor(sendTsUs));
    buf.fill(0x5a, off + OFF_PAYLOAD, off + size - MAC_LEN);
    macSeal(this.state, 0, buf, off, size);
    return nonce;
  }
}

// ---- flags ----------------------------------------------------------------------------

/** A bad flag or value: printed as one line on stderr, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Option spec for {@link parseFlags}. */
export type FlagSpec = Record<string, { type: 'string' | 'boolean' }>;

/** node:util parseArgs, strict, no positionals; `--help` always accepted. Throws {@link UsageError}. */
export function parseFlags(argv: string[], spec: FlagSpec): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, ...spec }, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, ''));
  }
}

/** Integer flag in [min, max], or `dflt` when absent. */
export function intFlag(v: Record<string, unknown>, name: string, min: number, max: number, dflt: number): number {
  const x = v[name];
  if (x === undefined) return dflt;
  const n = Number(x);
  if (typeof x !== 'string' || !/^\d+$/.test(x) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** Number flag in [min, max], or `dflt` when absent. */
export function numFlag(v: Record<string, unknown>, name: string, min: number, max: number, dflt: number): number {
  const x = v[name];
  if (x === undefined) return dflt;
  const n = Number(x);
  if (typeof x !== 'string' || x.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}`);
  }
  return n;
}

/** Comma-separated integers in [min, max], or `dflt` when absent. */
export function intListFlag(v: Record<string, unknown>, name: string, min: number, max: number, dflt: number[]): number[] {
  const x = v[name];
  if (x === undefined) return dflt;
  const parts = typeof x === 'string' ? x.split(',').map((s) => s.trim()) : [];
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < min || Number(p) > max)) {
    throw new UsageError(`--${name} must be a comma-separated list of integers from ${min} to ${max}`);
  }
  return parts.map(Number);
}

/**
 * Run a bench command's body: usage errors → one line on stderr, exit 2; other errors
 * → one line, exit 1. Resolves with the exit code.
 */
export async function runCommand(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${name}: ${e.message} (see '${name} --help')\n`);
      return 2;
    }
    process.stderr.write(`${name}: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}

/** True when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return fs.realpathSync(entry) === fs.realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/** Write `doc` as pretty JSON to `file` (directories created). */
export function writeJson(file: string, doc: unknown): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
}

// ---- CPU time per thread ------------------------------------------------------------------

/** CPU time (µs) of this process's threads: the main thread and all others together. */
export interface ThreadCpu {
  mainUs: number;
  otherUs: number;
  /** Where the numbers come from: `schedstat` (ns), `stat` (clock ticks) or `process` (no split). */
  source: 'schedstat' | 'stat' | 'process';
}

/**
 * Per-thread CPU time from /proc/self/task/<tid>/schedstat (ns precision; Linux), else
 * /proc/…/stat ticks, else process.cpuUsage() without a main/other split.
 * Threads that exited since the last call are not counted.
 */
export function threadCpu(): ThreadCpu {
  const pid = process.pid;
  try {
    const tids = fs.readdirSync('/proc/self/task');
    let main = 0;
    let other = 0;
    let source: ThreadCpu['source'] = 'schedstat';
    for (const tid of tids) {
      let us: number;
      try {
        us = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
      } catch {
        const f = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
        us = ((Number(rest[11]) + Number(rest[12])) * 1e6) / 100; // utime + stime, USER_HZ = 100
        source = 'stat';
      }
      if (Number(tid) === pid) main += us;
      else other += us;
    }
    return { mainUs: main, otherUs: other, source };
  } catch {
    const u = process.cpuUsage();
    return { mainUs: u.user + u.system, otherUs: 0, source: 'process' };
  }
}

// ---- output ---------------------------------------------------------------------------------

/** Print a fixed-width table (header row, rule, rows) to stdout. */
export function printTable(headers: string[], rows: Array<Array<string | number>>, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd() + '\n';
  out(line(headers));
  out(widths.map((w) => '-'.repeat(w)).join('  ') + '\n');
  for (const r of cells) out(line(r));
}

/** `1234567` → `1.23 M`, `45678` → `45.7 k`. */
export function si(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (Math.abs(n) >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(0);
}

/** Round to `d` decimals (for JSON). */
export function round(n: number, d = 2): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

/** Percentile `p` (0-100) of an ascending-sorted array; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const i = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[i]!;
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- background load ------------------------------------------------------------------------

/** Jiffies of the whole machine: busy (user…softirq), steal, total. */
function machineJiffies(): { busy: number; steal: number; total: number } | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8');
    const cpu = f.slice(0, f.indexOf('\n')).split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    const busy = user + nice + system + irq + softirq;
    return { busy, steal, total: busy + idle + iowait + steal };
  } catch {
    return null;
  }
}

/** utime+stime (+ cutime+cstime of reaped children when `withChildren`) of `pid`, jiffies. */
function procJiffies(pid: number | 'self', withChildren: boolean): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
    // fields 14-17 of proc(5): utime stime cutime cstime (rest[] starts at field 3)
    return rest[11]! + rest[12]! + (withChildren ? rest[13]! + rest[14]! : 0);
  } catch {
    return 0;
  }
}

/**
 * How much CPU other processes used while a benchmark ran: machine busy time minus
 * this process and its children (live ones by pid, reaped ones through cutime/cstime).
 * Another benchmark running on a 2-core machine makes every number here meaningless,
 * so the result is printed with each run.
 */
export class LoadWatch {
  private readonly m0 = machineJiffies();
  private readonly t0 = performance.now();
  private ours0: number;
  private readonly live = new Map<number, number>(); // child pid → jiffies at first sight
  private lastLive = new Map<number, number>();

  constructor() {
    this.ours0 = procJiffies('self', true);
  }

  /** Note a child process (call when it starts, and `sample` before it exits). */
  child(pid: number | undefined): void {
    if (pid === undefined || this.live.has(pid)) return;
    this.live.set(pid, procJiffies(pid, false));
  }

  /** Record the live children's CPU (call just before ending a child). */
  sample(): void {
    for (const pid of this.live.keys()) {
      const j = procJiffies(pid, false);
      if (j > 0) this.lastLive.set(pid, j);
    }
  }

  /** Stop: CPU of other processes in cores (null when /proc is not there) and a one-line note. */
  stop(): { otherCores: number | null; stealCores: number | null; note: string } {
    this.sample();
    const m1 = machineJiffies();
    const secs = (performance.now() - this.t0) / 1000;
    if (this.m0 === null || m1 === null || secs <= 0) return { otherCores: null, stealCores: null, note: 'background load: unknown (no /proc/stat)' };
    // reaped children are in cutime/cstime; still-live ones by pid (minus their CPU before we started watching)
    let ours = procJiffies('self', true) - this.ours0;
    for (const [pid, j0] of this.live) {
      const alive = procJiffies(pid, false);
      if (alive > 0) ours += alive - j0;
      else if (j0 > 0) ours -= j0; // reaped: cutime holds its whole life, remove what predates us
    }
    const hz = 100;
    const other = Math.max(0, (m1.busy - this.m0.busy - ours) / hz / secs);
    const steal = (m1.steal - this.m0.steal) / hz / secs;
    const note =
      `background load: other processes used ${other.toFixed(2)} cores on average during the run` +
      (steal > 0.01 ? `, hypervisor steal ${steal.toFixed(2)} cores` : '') +
      (other > 0.1 ? ' — WARNING: the machine was not quiet, these numbers are unreliable' : '');
    return { otherCores: round(other), stealCores: round(steal), note };
  }
}
