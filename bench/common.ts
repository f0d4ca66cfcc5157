/**
 * Shared pieces of the benchmarks: the machine line every table is printed under, the
 * fixture (one tenant, one responder, N probing peers, a fixed bench root key), a
 * probe writer that seals datagrams in place with the protocol's own codec and MAC
 * kernel, the CLI's flag parser (src/cli/args.ts) with the list flags it lacks,
 * per-thread CPU time, and a small fixed-width table printer.
 *
 * Nothing here is on the engine's path; it only builds inputs and reports.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Flags, parseFlags, usage } from '../src/cli/args.js';
import { nowUs } from '../src/clock.js';
import { hostCpuTimes, stealCores, USER_HZ } from '../src/observe/host-cpu.js';
import { DtmeshError } from '../src/errors.js';
import { KeyRing } from '../src/keys/keyring.js';
import { KeyTable } from '../src/keys/keytable.js';
import { MAC_LEN, OFF_PAYLOAD, TYPE_PROBE } from '../src/protocol/wire.js';
import { writeHeader } from '../src/protocol/codec.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { macRoute, macSeal } from '../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute, KERNEL_CROSSOVER_BYTES } from '../src/protocol/sha256.js';

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

/** The responder's keys with `peers` probing peers, and a {@link ProbeWriter} for each peer. */
export interface BenchKeys {
  root: Uint8Array;
  keyring: KeyRing;
  /** Published, with the engine's default capacity (maxPeers 4096). */
  keyTable: KeyTable;
  writers: ProbeWriter[];
}

/** The responder's key ring and key table as the engine builds them, and one writer per peer. */
export function benchKeys(peers: number): BenchKeys {
  const root = benchRoot();
  const ids = Array.from({ length: peers }, (_, i) => benchPeer(i));
  const keyring = new KeyRing(BENCH_TENANT, BENCH_RESPONDER, root, ids);
  const keyTable = new KeyTable(4096); // the engine's default maxPeers
  keyTable.publish(keyring.entries());
  return { root, keyring, keyTable, writers: ids.map((p) => new ProbeWriter(root, BENCH_TENANT, p, BENCH_RESPONDER)) };
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
    this.nonce = Math.floor(nowUs());
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

/** Parsed flag values (src/cli/args.ts `parseFlags`). */
export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * Parse a bench command's flags with the CLI's own parser (src/cli/args.ts: strict, no
 * positionals, `--help` always accepted, one-line usage errors with exit code 2):
 * `strings` take a value, `booleans` do not.
 */
export function parseBenchFlags(command: string, argv: string[], strings: readonly string[], booleans: readonly string[] = []): FlagValues {
  const spec: Flags = {};
  for (const f of strings) spec[f] = { type: 'string' };
  for (const f of booleans) spec[f] = { type: 'boolean' };
  return parseFlags(command, argv, spec);
}

/** Comma-separated integers in [min, max], or undefined when absent. */
export function intListFlag(command: string, v: FlagValues, name: string, min: number, max: number): number[] | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  const parts = typeof x === 'string' ? x.split(',').map((s) => s.trim()) : [];
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < min || Number(p) > max)) {
    throw usage(command, `--${name} must be a comma-separated list of integers from ${min} to ${max}`);
  }
  return parts.map(Number);
}

/** A comma-separated subset of `all` (duplicates dropped), or undefined when absent. */
export function subsetFlag<T extends string>(command: string, v: FlagValues, name: string, all: readonly T[]): T[] | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  const want = String(x).split(',').map((s) => s.trim());
  if (want.length === 0 || want.some((w) => !(all as readonly string[]).includes(w))) {
    throw usage(command, `--${name} takes a comma-separated subset of ${all.join(', ')}`);
  }
  return [...new Set(want)] as T[];
}

/**
 * Run a bench command's body: a usage error (src/cli/args.ts, exit code 2) is its one
 * line on stderr, any other error one line with the command's name, exit 1. `command`
 * is `bench` (`dtmesh bench`) or a script's name (`bench:micro`, shown without
 * `dtmesh`). Resolves with the exit code.
 */
export async function runCommand(command: string, body: () => Promise<number>): Promise<number> {
  const name = command.includes(':') ? command : `dtmesh ${command}`;
  try {
    return await body();
  } catch (e) {
    const message = (e as Error)?.message ?? String(e);
    if (e instanceof DtmeshError && e.exitCode === 2) {
      process.stderr.write(`${message.split(`dtmesh ${command}`).join(name)}\n`);
      return 2;
    }
    process.stderr.write(`${name}: ${message}\n`);
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
        us = ((Number(rest[11]) + Number(rest[12])) * 1e6) / USER_HZ; // utime + stime
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

/** A small sysfs file's text, trimmed; null when it cannot be read. */
function readTrimmed(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** A running DAMON monitor of the kernel (a `kdamond` thread) and how often it samples memory. */
export interface Kdamond {
  pid: number;
  /** Its sampling interval, µs (null when unreadable). */
  sampleUs: number | null;
}

/** Where Linux's DAMON sysfs admin interface lists its monitors. */
export const DAMON_ADMIN = '/sys/kernel/mm/damon/admin/kdamonds';

/**
 * The kdamonds running on this host ([] where DAMON is absent, off or unreadable; this
 * project's VM runs one). Each sample of physical memory holds one CPU for milliseconds
 * (the bench's closing line gives the average per sample), a stall that lands in every
 * responder's and prober's tail.
 */
export function kdamonds(root = DAMON_ADMIN): Kdamond[] {
  const out: Kdamond[] = [];
  let dirs: string[];
  try {
    dirs = fs.readdirSync(root).filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  const read = (f: string): string | null => readTrimmed(path.join(root, f));
  for (const d of dirs) {
    const pid = Number(read(`${d}/pid`));
    if (read(`${d}/state`) !== 'on' || !(pid > 0)) continue;
    const us = Number(read(`${d}/contexts/0/monitoring_attrs/intervals/sample_us`) ?? NaN);
    out.push({ pid, sampleUs: us > 0 ? us : null });
  }
  return out;
}

/** How this machine's idle CPUs wait: Linux's cpuidle driver, and the guest halt-poll window where that is `haltpoll`. */
export interface CpuIdle {
  /** `current_driver` of cpuidle (`haltpoll` in a KVM guest that polls before it halts, `intel_idle`, `acpi_idle` …). */
  driver: string;
  /** The haltpoll driver's poll window before a vCPU halts, ns (`guest_halt_poll_ns`; null with another driver or unreadable). */
  guest_halt_poll_ns: number | null;
}

/** Where Linux names the cpuidle driver, and where the haltpoll driver keeps its poll window. */
export const CPUIDLE_FILES = { driver: '/sys/devices/system/cpu/cpuidle/current_driver', haltPollNs: '/sys/module/haltpoll/parameters/guest_halt_poll_ns' };

/**
 * This machine's cpuidle driver and halt-poll window (null where unreadable). It shapes
 * every loopback latency here: a datagram that finds its receiver's vCPU halted waits until
 * the hypervisor runs that vCPU again. This project's AMD VM boots with
 * `haltpoll.guest_halt_poll_ns=0` (halt at once); set to 200 µs, the native lane's and the
 * C responder's receive→verdict p50 at half rate halved (`npm run bench -- --responders
 * native,c`; README, "Idle vCPUs").
 */
export function cpuIdle(files = CPUIDLE_FILES): CpuIdle | null {
  const driver = readTrimmed(files.driver);
  if (driver === null || driver === '' || driver === 'none') return null;
  const text = driver === 'haltpoll' ? readTrimmed(files.haltPollNs) : null;
  const ns = text === null || text === '' ? NaN : Number(text);
  return { driver, guest_halt_poll_ns: Number.isInteger(ns) && ns >= 0 ? ns : null };
}

/** The closing line's words for {@link cpuIdle}: only where idle vCPUs halt (a haltpoll guest), else ''. */
export function cpuIdleNote(c: CpuIdle | null): string {
  if (c === null || c.driver !== 'haltpoll' || c.guest_halt_poll_ns === null) return '';
  const w = c.guest_halt_poll_ns / 1000;
  return (
    `\nhost: idle vCPUs ${w === 0 ? 'halt at once' : `poll ${w} µs, then halt`} (cpuidle haltpoll, guest_halt_poll_ns ${c.guest_halt_poll_ns}): ` +
    'a datagram that finds its receiver’s vCPU halted waits until the hypervisor runs that vCPU again: a delay inside every latency above'
  );
}

/** Time `pid` spent on a CPU, ns (`/proc/PID/schedstat`; 0 when unreadable). */
function runNs(pid: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) || 0;
  } catch {
    return 0;
  }
}

/** What a kdamond did while a benchmark ran ({@link LoadWatch}). */
export interface KdamondLoad {
  pid: number;
  sample_us: number | null;
  /** Its CPU time per second of the run, ms. */
  cpu_ms_per_s: number;
  /** Its CPU time per sampling interval, ms: how long each sample held a CPU, on average. */
  ms_per_sample: number | null;
}

/**
 * How much CPU other processes used while a benchmark ran: machine busy time minus
 * this process and its children (live ones by pid, reaped ones through cutime/cstime).
 * Another benchmark running on a 2-core machine makes every number here meaningless,
 * so the result is printed with each run.
 */
export class LoadWatch {
  private readonly m0 = hostCpuTimes();
  private readonly t0 = performance.now();
  private ours0: number;
  private readonly live = new Map<number, number>(); // child pid → jiffies at first sight
  private readonly withKids = new Set<number>(); // children whose own reaped children count as ours
  private lastLive = new Map<number, number>();
  private readonly damon: (Kdamond & { ns0: number })[];
  private readonly idle: CpuIdle | null;

  /** `damonRoot`, `idleFiles`: where the kdamonds are listed and the cpuidle settings kept ({@link kdamonds}, {@link cpuIdle}; tests give their own). */
  constructor(damonRoot = DAMON_ADMIN, idleFiles = CPUIDLE_FILES) {
    this.ours0 = procJiffies('self', true);
    this.damon = kdamonds(damonRoot).map((k) => ({ ...k, ns0: runNs(k.pid) }));
    this.idle = cpuIdle(idleFiles);
  }

  /** Note a child process (call when it starts, and `sample` before it exits); `withChildren`: its reaped children (a C generator it spawns) count as ours too. */
  child(pid: number | undefined, withChildren = false): void {
    if (pid === undefined || this.live.has(pid)) return;
    if (withChildren) this.withKids.add(pid);
    this.live.set(pid, procJiffies(pid, withChildren));
  }

  /** Record the live children's CPU (call just before ending a child). */
  sample(): void {
    for (const pid of this.live.keys()) {
      const j = procJiffies(pid, this.withKids.has(pid));
      if (j > 0) this.lastLive.set(pid, j);
    }
  }

  /** Stop: CPU of other processes in cores (null when /proc is not there) and a one-line note. */
  stop(): { otherCores: number | null; stealCores: number | null; kdamonds: KdamondLoad[]; cpuidle: CpuIdle | null; note: string } {
    this.sample();
    const m1 = hostCpuTimes();
    const secs = (performance.now() - this.t0) / 1000;
    const damon = this.damon.map((k): KdamondLoad => {
      const ms = (runNs(k.pid) - k.ns0) / 1e6;
      return { pid: k.pid, sample_us: k.sampleUs, cpu_ms_per_s: secs > 0 ? round(ms / secs, 2) : 0, ms_per_sample: k.sampleUs !== null && secs > 0 ? round(ms / ((secs * 1e6) / k.sampleUs), 2) : null };
    });
    const hostNote = damon
      .map(
        (k) =>
          `\nhost: the kernel's DAMON monitor (kdamond, pid ${k.pid}) ` +
          (k.sample_us !== null
            ? `samples memory every ${k.sample_us / 1000} ms and ran ${k.ms_per_sample} ms per sample on average: each sample holds one CPU that long`
            : `ran ${k.cpu_ms_per_s} ms/s, in samples that each hold one CPU`) +
          ', a stall in every responder’s and prober’s tail',
      )
      .join('') + cpuIdleNote(this.idle);
    if (this.m0 === null || m1 === null || secs <= 0) return { otherCores: null, stealCores: null, kdamonds: damon, cpuidle: this.idle, note: 'background load: unknown (no /proc/stat)' + hostNote };
    // reaped children are in cutime/cstime; still-live ones by pid (minus their CPU before we started watching)
    let ours = procJiffies('self', true) - this.ours0;
    for (const [pid, j0] of this.live) {
      const alive = procJiffies(pid, this.withKids.has(pid));
      if (alive > 0) ours += alive - j0;
      else if (j0 > 0) ours -= j0; // reaped: cutime holds its whole life, remove what predates us
    }
    const other = Math.max(0, (m1.busy - this.m0.busy - ours) / USER_HZ / secs);
    const steal = stealCores(this.m0, m1, secs);
    const note =
      `background load: other processes used ${other.toFixed(2)} cores on average during the run` +
      (steal > 0.01 ? `, hypervisor steal ${steal.toFixed(2)} cores` : '') +
      (other > 0.1 ? ' — WARNING: the machine was not quiet, these numbers are unreliable' : '');
    return { otherCores: round(other), stealCores: round(steal), kdamonds: damon, cpuidle: this.idle, note: note + hostNote };
  }
}
