/**
 * The C responder (bench/c/responder.c) as a child process: started with the bench
 * fixture's keys (or any), its `ready` line read for the port, its counts asked for on
 * stdin (`--control`: `stats`, `now <us>`), its CPU read from /proc/<pid> (schedstat ns,
 * else stat ticks), stopped by SIGTERM (its `final` counts). Every wait has a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { buildC } from './cbuild.js';

/** The counts the C responder prints (`stats` and `final` lines). */
export interface CCounts {
  received: number;
  accepted: number;
  replied: number;
  send_errors: number;
  /** REPLYs that left inside UDP GSO messages (`--gso`). */
  gso_sent: number;
  dropped: Record<string, number>;
  /** getrusage(RUSAGE_SELF) user + system, µs. */
  cpu_us: number;
  /** Receive (kernel stamp) → verdict, µs, since start or the last {@link CResponder.resetLatency} (the engine's `latency_us`). */
  verdict_us: { count: number; p50: number; p90: number; p99: number; max: number };
}

/** How to start it. */
export interface CResponderOptions {
  root: Uint8Array;
  prevRoot?: Uint8Array | null;
  tenant: string;
  agent: string;
  /** The roster (the agent itself is skipped). */
  peers: readonly string[];
  /** IPv4:PORT (default 127.0.0.1:0). */
  listen?: string;
  batch?: number;
  replayWindow?: number;
  maxDatagram?: number;
  /** Restart fence, µs (default: its start). */
  startUs?: bigint | number;
  /** First REPLY nonce (default: its start time in µs); tests only. */
  nonceStart?: bigint | number | string;
  /** REPLY runs to one address as UDP GSO messages (`--gso`, as `dtmesh serve --gso`). */
  gso?: boolean;
}

type Line = { event: string } & Record<string, unknown>;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A running C responder. */
export class CResponder {
  private readonly lines: Line[] = [];
  private waiters: Array<() => void> = [];
  private exited: string | null = null;
  private buf = '';
  /** The bound UDP port (set once it is ready). */
  port = 0;

  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', this.onData);
    proc.on('exit', this.onExit);
    proc.stdin!.on('error', () => undefined); // it exited: the exit is reported instead
  }

  /** The arguments of bench/c/responder for `o`. */
  static args(o: CResponderOptions): string[] {
    const a = ['--root', hex(o.root), '--tenant', o.tenant, '--agent', o.agent, '--peers', o.peers.join(','), '--listen', o.listen ?? '127.0.0.1:0', '--control'];
    if (o.prevRoot) a.push('--prev-root', hex(o.prevRoot));
    if (o.batch !== undefined) a.push('--batch', String(o.batch));
    if (o.replayWindow !== undefined) a.push('--replay-window', String(o.replayWindow));
    if (o.maxDatagram !== undefined) a.push('--max-datagram', String(o.maxDatagram));
    if (o.startUs !== undefined) a.push('--start-us', String(o.startUs));
    if (o.nonceStart !== undefined) a.push('--nonce-start', String(o.nonceStart));
    if (o.gso === true) a.push('--gso');
    return a;
  }

  /** Build (if needed) and start it; throws when there is no C compiler (check {@link buildC} first to skip). */
  static async start(o: CResponderOptions, timeoutMs = 10_000): Promise<CResponder> {
    const b = buildC('responder');
    if (b.bin === undefined) throw new Error(b.skip);
    const proc = spawn(b.bin, CResponder.args(o), { stdio: ['pipe', 'pipe', 'inherit'] });
    const r = new CResponder(proc);
    try {
      r.port = Number((await r.next('ready', timeoutMs)).port);
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    }
    return r;
  }

  private onData = (d: Buffer): void => {
    this.buf += d.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === '') continue;
      try {
        this.lines.push(JSON.parse(line) as Line);
      } catch {
        this.lines.push({ event: 'garbage', line });
      }
    }
    this.wake();
  };

  private onExit = (code: number | null, signal: string | null): void => {
    this.exited = `C responder exited (${signal ?? `code ${code}`})`;
    this.wake();
  };

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next line of `event` (earlier lines of other events are dropped); rejects on exit or timeout. */
  async next(event: string, timeoutMs: number): Promise<Line> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      while (this.lines.length > 0) {
        const l = this.lines.shift()!;
        if (l.event === event) return l;
        if (l.event === 'error') throw new Error(`C responder: ${String(l.message)}`);
      }
      if (this.exited !== null) throw new Error(this.exited);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`C responder: no '${event}' line within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private command(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /** Its counts now. */
  async stats(timeoutMs = 5_000): Promise<CCounts> {
    this.command('stats');
    return (await this.next('stats', timeoutMs)) as unknown as CCounts;
  }

  /** Start its receive → verdict histogram afresh (the bench's window begins after its warm-up). */
  async resetLatency(timeoutMs = 5_000): Promise<void> {
    this.command('reset-latency');
    await this.next('latency-reset', timeoutMs);
  }

  /** Fix its receiver clock at `us` (test vectors), or back to the real clock. */
  async setNow(us: bigint | number | 'real', timeoutMs = 5_000): Promise<void> {
    this.command(us === 'real' ? 'now real' : `now ${us}`);
    await this.next('clock', timeoutMs);
  }

  /** CPU time of the process so far, µs, from /proc (ns precision when schedstat is there); null without /proc. */
  cpuUs(): number | null {
    return procCpuUs(this.proc.pid);
  }

  private closing: Promise<CCounts | null> | null = null;

  /** SIGTERM, then its final counts (SIGKILL after `timeoutMs`, then null); once, however often called. */
  close(timeoutMs = 3_000): Promise<CCounts | null> {
    if (this.closing === null) this.closing = this.stop(timeoutMs);
    return this.closing;
  }

  private async stop(timeoutMs: number): Promise<CCounts | null> {
    if (this.exited !== null) return null;
    this.proc.kill('SIGTERM');
    try {
      return (await this.next('final', timeoutMs)) as unknown as CCounts;
    } catch {
      this.proc.kill('SIGKILL');
      return null;
    } finally {
      this.proc.stdin?.destroy();
    }
  }
}

/** CPU µs of process `pid` (its one thread for a single-threaded program: /proc/pid/schedstat, else utime+stime of /proc/pid/stat). */
export function procCpuUs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return ((Number(rest[11]) + Number(rest[12])) * 1e6) / 100; // USER_HZ = 100
    } catch {
      return null;
    }
  }
}
