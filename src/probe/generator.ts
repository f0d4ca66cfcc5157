/**
 * The generator's own health (MEASUREMENT.md §2), so a slow prober is never mistaken for
 * a slow path: each send's lateness against its schedule (probe k is due at
 * `t0 + k / rate`), the largest catch-up burst (probes sent in one event-loop turn),
 * the event-loop delay (`perf_hooks.monitorEventLoopDelay`), this process's GC pauses,
 * the CPU this process used while it sent (in cores: one thread paces, sends and
 * receives, so near 1.0 the prober, not the path, sets the pace and the tail) and
 * `generator_limited`.
 * Recording starts when the warm-up ends ({@link begin}).
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { GcPauses, type GcSummary } from '../observe/gc-pauses.js';
import type * as hdr from 'hdr-histogram-js';
import { type HostCpuTimes, hostCpuTimes, stealCores } from '../observe/host-cpu.js';
import { latencyHistogram } from '../observe/stats.js';
import { percentileWithin } from './tally.js';

/**
 * How the generator waits between sends (Node timers have 1 ms resolution):
 * - `yield`: when the next probe is due within 1.5 ms, block in short futex waits
 *   (`Atomics.wait`, asked ≤ 50 µs; ~150 µs on a VM) and go round the event loop between
 *   them, so replies are read between them and the CPU is given back to the responder and
 *   the kernel; otherwise sleep on a timer; on a lane that stamps replies in JS, go round
 *   the event loop without sleeping while the last probe's reply is due within 200 µs
 *   ({@link spinForReply});
 * - `timer`: always sleep on a timer (bursts of rate/1000 probes per 1 ms tick, which
 *   queue behind one another and raise the RTT of the burst's tail);
 * - `spin`: go round the event loop without sleeping within 2 ms (a whole core).
 */
export type Pacing = 'yield' | 'timer' | 'spin';

/**
 * Yield pacing on a lane that stamps a reply when JS reads it (`timestamps: "js"`: the dgram
 * lane, MEASUREMENT.md §1 "Received"): the reply to the last probe sent waits in the socket
 * through a futex wait, and that wait was in its RTT (AMD EPYC 2-vCPU VM, `probe --lane
 * dgram --rate 10000`: p50 96 µs with the wait, 30 µs with `--pacing spin`; the C
 * reference, kernel stamps, 19 µs). While that reply is due within
 * {@link REPLY_SPIN_HORIZON_US}, not overdue (2 × the RTT plus that horizon since its
 * send), and replies are still coming (one came within a probe interval, 2 × the RTT and
 * the horizon of the last send), the prober goes round the event loop instead of
 * sleeping, and reads it when it comes; otherwise, and on lanes with kernel receive
 * stamps, it sleeps as before. The last condition keeps a silent peer from costing a
 * whole core: at 10 k pps a new probe leaves before the last one is overdue.
 *
 * `sinceSendUs`: time since the last probe left; `inFlight`: its reply has not come;
 * `rttUs`: the RTT seen so far (a running average; 0 before the first reply);
 * `sinceReplyUs`: time since the last reply came (any probe's); `intervalUs`: the
 * schedule's time between probes.
 */
export function spinForReply(sinceSendUs: number, inFlight: boolean, rttUs: number, sinceReplyUs: number, intervalUs: number): boolean {
  const overdueUs = 2 * rttUs + REPLY_SPIN_HORIZON_US;
  return inFlight && rttUs > 0 && rttUs - sinceSendUs <= REPLY_SPIN_HORIZON_US && sinceSendUs <= overdueUs && sinceReplyUs <= sinceSendUs + intervalUs + overdueUs;
}

/**
 * {@link spinForReply}: a reply expected within this (µs) is waited for by going round the
 * event loop (a futex wait takes ~150 µs on a VM whatever it asks for), a later one by
 * sleeping: on a long path every reply is far off when its probe leaves, so the prober
 * sleeps as before.
 */
export const REPLY_SPIN_HORIZON_US = 200;

/**
 * `generator_limited` when the p99 lateness passes this (µs). One timer tick of Node's
 * event loop is 1 ms, so a timer-paced generator is within it by construction; beyond
 * it the schedule was not kept.
 */
export const LATENESS_BOUND_US = 2000;
/** `generator_limited` when offered < this share of the requested rate. */
export const OFFERED_SHARE = 0.98;

/**
 * `monitorEventLoopDelay` sampling period, ms. Its timer is libuv's, whose clock ticks in
 * whole ms, so each sample is this period ± 1 ms plus the loop's delay; the report gives
 * the part beyond the period (a delay under ~1 ms is within that noise).
 */
export const ELD_RESOLUTION_MS = 10;

/** The generator's figures in the report. */
export interface GeneratorHealth {
  pacing: Pacing;
  requested_pps: number | null;
  /** Send time minus scheduled time, µs (0 when rate = max); p50 and p99 never above the exact max (tally.ts percentileWithin). */
  lateness_us: { p50: number; p99: number; max: number };
  lateness_bound_us: number;
  /** Most probes sent in one event-loop turn. */
  max_burst: number;
  /** perf_hooks.monitorEventLoopDelay over the measured phase, µs beyond its sampling period (± 1 ms: {@link ELD_RESOLUTION_MS}). */
  event_loop_delay_us: { p50: number; p99: number; max: number };
  /** Garbage-collection pauses of the prober's thread during the measured phase ({@link GcPauses}). */
  gc: GcSummary;
  /**
   * CPU time of this whole process (every thread: `process.cpuUsage`) from the start of the
   * measured phase to the end of sending, divided by that wall time: cores in use. One
   * thread paces, sends and receives, so near 1.0 the prober is saturated and its own
   * queueing is in the RTT tail.
   */
  cpu_cores: number;
  /**
   * Hypervisor steal on this host over the same span (`/proc/stat`, every CPU summed),
   * in cores; null where the host does not count it (not Linux). Stolen time comes in
   * stalls of milliseconds and lands in the tail of whatever runs on the host: on a
   * loopback test both ends, on a mesh this (the probing) end.
   */
  host_steal_cores: number | null;
  generator_limited: boolean;
}

/** Lateness, bursts and event-loop delay of one run. */
export class Generator {
  private readonly lateness: hdr.Histogram = latencyHistogram();
  private maxBurst = 0;
  private readonly eld: IntervalHistogram;
  private measuring = false;
  private readonly gc = new GcPauses();
  private cpu0: NodeJS.CpuUsage | null = null;
  private wall0 = 0;
  private cpuCores = 0;
  private host0: HostCpuTimes | null = null;
  private stealCores: number | null = null;

  /** `readHost`: where the host's CPU times come from (tests give their own). */
  constructor(
    readonly rate: number,
    readonly pacing: Pacing,
    private readonly readHost: () => HostCpuTimes | null = hostCpuTimes,
  ) {
    this.eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    this.eld.enable();
  }

  /** A phase begins (the warm-up's rehearsal, then the measured phase): figures from here on, every earlier one dropped. */
  begin(): void {
    this.measuring = true;
    this.lateness.reset();
    this.maxBurst = 0;
    this.eld.reset();
    this.gc.begin();
    this.cpu0 = process.cpuUsage();
    this.host0 = this.readHost();
    this.wall0 = performance.now();
  }

  /** Sending is over: the CPU figure covers the measured phase up to here (not the wait for the last replies). */
  sendingDone(): void {
    if (this.cpu0 === null) return;
    const c = process.cpuUsage(this.cpu0);
    const host1 = this.host0 === null ? null : this.readHost();
    const wallMs = performance.now() - this.wall0;
    this.cpuCores = wallMs > 0 ? Math.round(((c.user + c.system) / 1000 / wallMs) * 1000) / 1000 : 0;
    if (this.host0 !== null && host1 !== null && wallMs > 0) this.stealCores = Math.round(stealCores(this.host0, host1, wallMs / 1000) * 1000) / 1000;
    this.cpu0 = null;
  }

  /** A measured probe left `lateUs` after its scheduled time. */
  sent(lateUs: number): void {
    if (!this.measuring || this.rate === 0) return;
    this.lateness.recordValue(lateUs < 1 ? 1 : Math.min(60_000_000, Math.round(lateUs)));
  }

  /** One turn sent `n` probes. */
  turn(n: number): void {
    if (this.measuring && n > this.maxBurst) this.maxBurst = n;
  }

  /** Stop sampling the event loop. */
  stop(): void {
    this.eld.disable();
    this.gc.stop();
  }

  /** The report's figures, given the offered rate. */
  health(offeredPps: number): GeneratorHealth {
    const l = this.lateness;
    const has = l.totalCount > 0;
    const lateness = has ? { p50: percentileWithin(l, 50), p99: percentileWithin(l, 99), max: l.maxValue } : { p50: 0, p99: 0, max: 0 };
    const e = this.eld;
    const eldOk = e.count > 0;
    // Node records each whole interval between the sampling timer's runs (seen: an idle loop's
    // p50 is 10.18 ms at resolution 10): the delay is what exceeds the resolution.
    const us = (ns: number): number => Math.max(0, Math.round(ns / 1000) - ELD_RESOLUTION_MS * 1000);
    return {
      pacing: this.pacing,
      requested_pps: this.rate === 0 ? null : this.rate,
      lateness_us: lateness,
      lateness_bound_us: LATENESS_BOUND_US,
      max_burst: this.maxBurst,
      event_loop_delay_us: eldOk ? { p50: us(e.percentile(50)), p99: us(e.percentile(99)), max: us(e.max) } : { p50: 0, p99: 0, max: 0 },
      gc: this.gc.summary(),
      cpu_cores: this.cpuCores,
      host_steal_cores: this.stealCores,
      generator_limited: this.rate > 0 && (offeredPps < OFFERED_SHARE * this.rate || lateness.p99 > LATENESS_BOUND_US),
    };
  }
}
