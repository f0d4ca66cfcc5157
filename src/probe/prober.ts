/**
 * The prober: authenticated PROBEs at a paced rate, REPLYs matched by probe_id, and the
 * numbers people trust (MEASUREMENT.md): loss, late replies, duplicates, reordering,
 * RTT (percentiles, mean, stddev), RFC 3550 jitter, RFC 5481 IPDV, relative one-way
 * delays, offered/achieved rate, per-interval figures and the generator's own health.
 *
 * It sends through an {@link Engine} and receives through it too: every REPLY passes the
 * engine's own verification (PROTOCOL.md §4); a forged or replayed reply is dropped and
 * counted there and never reaches the matcher. Give the engine a replay window
 * (`replayWindow`, PROTOCOL.md §5) so replies reordered on the path are verified and
 * counted `reordered`, not lost. A REPLY that does match counts once: a second one for
 * the same probe is a duplicate, one for a probe never sent is unmatched, one after its
 * probe's deadline is late — none is ever a success (PROTOCOL.md §4, MEASUREMENT.md §1).
 * A probe is late at most once (`late` ⊆ `lost`): a further reply for one answered late
 * is a duplicate too. A reply whose probe's ring entry was reused is judged by the final
 * state the ring keeps in its history (ring.ts): duplicate if the probe was received or
 * answered late already, late if it was lost; one
 * older than that history (≥ 64 deadlines back) is unmatched — its probe's fate is no
 * longer known, and calling it late could count a received probe late (`late` ⊆ `lost`).
 *
 * One run:
 *   1. pacing (this thread): probe k is due at t0 + k / rate (the measured phase restarts the schedule at its own start, so a warm-up backlog never spills into it); each turn sends what is due
 *      (at most SEND_CHUNK), send time taken right before the engine's send; between
 *      turns the thread sleeps (generator.ts Pacing) rather than spinning a core away
 *      from the responder and the kernel — except, on a lane that stamps replies in JS,
 *      while the last probe's reply is due before long (generator.ts spinForReply)
 *   2. replies (the engine's 'reply' event, same thread): matched in the ring
 *      (ring.ts), figures into the run's and the interval's tally (tally.ts)
 *   3. every turn: deadlines swept (lost), final intervals emitted (intervals.ts)
 *   4. sending over: wait until every probe is received or past its deadline
 *
 * `sent = received + lost + in_flight` at every instant; the run ends with `in_flight = 0`.
 * Probes sent during the warm-up are answered and matched but kept out of every figure.
 */
import * as hdr from 'hdr-histogram-js';
import type { Engine, ReplyEvent, SendErrorEvent } from '../engine.js';
import { nowUs } from '../clock.js';
import { latencyHistogram, type DropCounts } from '../observe/stats.js';
import { DROP_REASONS } from '../protocol/verdict.js';
import { nativeLane } from '../protocol/native.js';
import { MIN_DATAGRAM, TYPE_PROBE } from '../protocol/wire.js';
import { dtmeshVersion, hostInfo, SCHEMA_VERSION } from './context.js';
import { Generator, type Pacing, spinForReply } from './generator.js';
import { type IntervalFigures, Intervals } from './intervals.js';
import type { ProbeReport, ReportContext } from './report.js';
import { ProbeRing, ST_IN_FLIGHT, ST_LATE, ST_LOST, ST_NOT_SENT, ST_RECEIVED } from './ring.js';
import { Ipdv, OffsetDelay, Tally } from './tally.js';

export type { ProbeReport, ReportContext } from './report.js';
export type { IntervalFigures } from './intervals.js';
export type { Pacing } from './generator.js';

/** One phase's figures (the measured run's, or the warm-up's). */
class Figures {
  readonly total = new Tally();
  readonly ipdv = new Ipdv();
  readonly fwd = new OffsetDelay();
  readonly rev = new OffsetDelay();

  /** Back to new figures, in place. */
  reset(): void {
    this.total.reset();
    this.ipdv.reset();
    this.fwd.reset();
    this.rev.reset();
  }
}

/** What to probe and how (MEASUREMENT.md §1 for what each figure it yields means). */
export interface ProbeOptions {
  /** Agent ID of the responder. */
  agent: string;
  /** Its address. */
  host: string;
  /** Its port. */
  port: number;
  /** Probes to measure (default 1000 unless `durationS`), after the warm-up. A send that throws still uses up one. */
  count?: number;
  /** Measure for this many seconds (after the warm-up) instead of a count, > 0; with a count, whichever ends first (Infinity: the count alone). */
  durationS?: number;
  /** Probes per second; 0 = as fast as the machine goes. Default 1000. */
  rate?: number;
  /** Whole datagram size in bytes (50 … the engine's maxDatagram). Default 84. */
  size?: number;
  /**
   * Each probe's deadline, ms after its send (MEASUREMENT.md §1 "Lost", `--grace-ms`): no
   * reply by then and the probe is lost; a reply after it is `late`. Default: the rule
   * {@link GRACE_AUTO_RULE}. Given: 0 … 60000 (the RTT histogram's range).
   */
  graceMs?: number;
  /**
   * Send and answer normally for this many seconds first, kept out of every figure
   * (MEASUREMENT.md §2). Its second half rehearses the measured phase (the same code into
   * figures thrown away), so measuring starts on code the JIT already compiled for it.
   */
  warmupS?: number;
  /** Interval length, s (MEASUREMENT.md §3); none when undefined. */
  intervalS?: number;
  /** Called with each interval once it is final. */
  onInterval?: (f: IntervalFigures) => void;
  /** How to wait between sends: `yield` (default), `timer` or `spin` ({@link Pacing}). */
  pacing?: Pacing;
  /** Report absolute one-way delays too (the clocks are synchronised). */
  clockSynced?: boolean;
  /** Extra effective configuration for the report (the CLI's engine flags). */
  config?: Record<string, string | number | boolean | null>;
  /** Thresholds: loss % and RTT p99 (ms) above which `thresholds.breached` lists them (`max_p99_ms` also when no reply was received: no RTT to judge, a gate fails). */
  maxLossPct?: number;
  maxP99Ms?: number;
  /** Called once the run started with its context (the `start` object of a stream). */
  onStart?: (c: ReportContext) => void;
  /** Called about every `progressMs` with the running figures. */
  onProgress?: (p: ProbeProgress) => void;
  /** Progress period, ms (default 1000). */
  progressMs?: number;
  /**
   * Stop sending once aborted (the CLI's Ctrl-C): the probes already sent are waited out
   * to their deadlines and the report covers them, as at a normal end (MEASUREMENT.md §1:
   * at the end `in_flight = 0`); its `interrupted` holds the abort's reason when a string
   * (e.g. `controller.abort('SIGINT')`), else `"aborted"`.
   */
  signal?: AbortSignal;
}

/** Running figures (MEASUREMENT.md §1): `sent = received + lost + inFlight` in every one. */
export interface ProbeProgress {
  sent: number;
  received: number;
  /** Probes whose deadline passed with no reply; never a probe still in flight. */
  lost: number;
  /** Replies that came after their probe's deadline (never in `received`). */
  late: number;
  /** Sent, no reply yet, deadline not yet passed. */
  inFlight: number;
  /** Sends that threw (not in `sent`). */
  sendErrors: number;
  target: number;
  elapsedS: number;
  ratePps: number;
  /** Still in the warm-up (its probes are in no figure). */
  warmup: boolean;
}

/** The default deadline rule (MEASUREMENT.md §1 "Lost"), as stated in the report's `grace_rule`. */
export const GRACE_AUTO_RULE = 'max(1000 ms, 3 × RTT p99 so far), never lowered, at most 60000 ms';
const GRACE_FLOOR_US = 1_000_000;
const GRACE_RTT_MULTIPLE = 3;
/** The RTT histogram's top (stats.ts latencyHistogram), so every on-time RTT fits in it. */
const GRACE_CEILING_US = 60_000_000;
/** How often the automatic deadline is recomputed from the histogram (a percentile walk each time). */
const GRACE_UPDATE_US = 50_000;
/**
 * A reply's receive time is taken when the datagram reaches the JS side (or the kernel's
 * stamp), but the reply event may come later (verification, a busy loop). A probe is
 * declared lost only this long after its deadline, so a reply that arrived in time is judged
 * by its receive time (MEASUREMENT.md §1 "Lost": no reply *by* the deadline). Meanwhile the
 * probe still counts as in flight (never lost). The mesh prober uses the same margin.
 */
export const VERIFY_SETTLE_US = 50_000;

/**
 * Refuse a target the lanes could only fail on, probe after probe (each one a
 * `send_error`): `host` a non-empty string (an address or a name to look up), `port` an
 * integer from 1 to 65535. Throws a `RangeError` naming the bad one.
 */
export function checkTarget(host: unknown, port: unknown): void {
  if (typeof host !== 'string' || host === '') throw new RangeError(`host must be a non-empty string, got ${JSON.stringify(host) ?? String(host)}`);
  if (!(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535)) throw new RangeError(`port must be an integer from 1 to 65535, got ${String(port)}`);
}
/**
 * Most probes sent per event-loop turn, so replies keep being read while pacing catches up.
 * A turn reads at most 32 datagrams (libuv's UDP read loop on the dgram lane, lane.c
 * WAKE_BUDGET on the native one), so a prober that is behind must send fewer than that per
 * turn, or the replies of the rest queue at its own socket until the kernel drops them: at
 * 64, `probe --rate 100000 --duration 3` lost 0–2.8 % of its replies there on the native lane
 * (5 runs) and about half on the dgram lane (RTT p50 190 ms: it is stamped when JS reads);
 * at 16, none (native 4 runs, dgram 2; AMD EPYC 2-vCPU VM, serve and probe on their own
 * CPUs). Half the read leaves the other half to drain a backlog after a stall. Tested
 * (rate 0: no reply dropped at the prober, both lanes).
 */
const SEND_CHUNK = 16;
/** Spin pacing: busy-wait through the event loop when the next probe is due within this. */
const SPIN_WITHIN_US = 2000;
/** Yield pacing: futex waits when the next probe is due within this (a timer cannot do better than 1 ms)… */
const YIELD_WITHIN_US = 1500;
/**
 * … each asked to be at most this long, the loop reading replies between them (a futex wait
 * on a 2-vCPU VM takes ~150 µs whatever it asks: a kernel-stamped reply does not mind, and a
 * JS-stamped one due soon is not slept on at all, {@link spinForReply}).
 */
const YIELD_SLICE_US = 50;
/**
 * Timer slack of the pacing thread while a run is on, ns (prctl PR_SET_TIMERSLACK, Linux,
 * through the addon): the default 50 µs makes each 20 µs wait at 50 k pps a ~70 µs one,
 * and the probes leave in clumps; 1 µs lets the thread sleep as the schedule says, as the
 * C reference prober does (bench/c/prober.c).
 */
const PACING_TIMER_SLACK_NS = 1000;
/** The word `Atomics.wait` sleeps on (nobody ever notifies it: a wait is a timed sleep). */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Run one probe run through `engine` (which must list `opts.agent` as a peer).
 * Resolves with the report once every probe sent is received or past its deadline
 * (MEASUREMENT.md §1: `in_flight = 0` at the end). A send that throws during the run is
 * counted in `send_errors` and the run goes on.
 */
export async function probe(engine: Engine, opts: ProbeOptions): Promise<ProbeReport> {
  const rate = opts.rate ?? 1000;
  const size = opts.size ?? 84;
  if (!Number.isFinite(rate) || rate < 0) throw new RangeError('rate must be a number ≥ 0 (0 = as fast as possible)');
  if (!Number.isInteger(size) || size < MIN_DATAGRAM || size > engine.maxDatagram) {
    throw new RangeError(`size must be an integer from ${MIN_DATAGRAM} to ${engine.maxDatagram}`);
  }
  if (opts.graceMs !== undefined && !(Number.isFinite(opts.graceMs) && opts.graceMs >= 0 && opts.graceMs * 1000 <= GRACE_CEILING_US)) {
    throw new RangeError(`graceMs must be a number from 0 to ${GRACE_CEILING_US / 1000} (ms after each send; the RTT histogram's range)`);
  }
  if (opts.warmupS !== undefined && !(Number.isFinite(opts.warmupS) && opts.warmupS >= 0)) throw new RangeError('warmupS must be a number ≥ 0');
  if (opts.intervalS !== undefined && !(Number.isFinite(opts.intervalS) && opts.intervalS >= 0.01)) throw new RangeError('intervalS must be a number ≥ 0.01');
  if (!engine.peers.includes(opts.agent)) throw new RangeError(`${opts.agent} is not in the prober's roster`);
  checkTarget(opts.host, opts.port);
  // Infinity: no time limit (a count must then end the run)
  if (opts.durationS !== undefined && !(opts.durationS > 0)) throw new RangeError('durationS must be a number > 0');
  const durationUs = opts.durationS !== undefined ? opts.durationS * 1e6 : Infinity;
  const count = opts.count ?? (opts.durationS !== undefined ? Infinity : 1000);
  if (count !== Infinity && (!Number.isInteger(count) || count < 1)) throw new RangeError('count must be an integer ≥ 1');
  if (count === Infinity && durationUs === Infinity) throw new RangeError('durationS must be finite when no count is given');
  const pacing: Pacing = opts.pacing ?? 'yield';
  const warmupUs = (opts.warmupS ?? 0) * 1e6;
  const autoGrace = opts.graceMs === undefined;
  let graceUs = autoGrace ? GRACE_FLOOR_US : opts.graceMs! * 1000;

  const ring = new ProbeRing(((rate || 100_000) * (graceUs + VERIFY_SETTLE_US)) / 1e6);
  const probeBase = (Math.random() * 2 ** 31) >>> 0; // far below the punch-burst ids (engine.ts PUNCH_PROBE_ID_BASE)
  // The current phase's figures and the earlier phases' (discarded). The warm-up's second
  // half is a rehearsal of the measured phase — the same code, the same calls, into `run`,
  // reset in place at the switch ({@link beginPhase}) — so the measured phase runs code
  // compiled with every branch of it already taken: no deoptimisation when measuring
  // starts. Seen with --trace-deopt before the rehearsal: the pacing loop, the reply
  // matcher and the histograms deoptimised and were compiled again right after the switch,
  // and with the prober on one CPU the compiler threads then stall the pacing thread.
  const run = new Figures();
  const warm = new Figures();
  const figuresOf = (seq: number): Figures => (seq >= measureFrom ? run : warm);
  const graceRtt = latencyHistogram(); // every RTT, warm-up included: the automatic deadline's basis
  const gen = new Generator(rate, pacing);
  const intervals = opts.intervalS !== undefined ? new Intervals(opts.intervalS * 1e6, (f) => opts.onInterval?.(f)) : null;
  /** `intervals` once the measured phase began (the rehearsal has none: it would emit lines). */
  let liveIntervals: Intervals | null = null;
  let sendErrors = 0;
  let maxSeqSeen = -1;
  let measureFrom = Infinity; // first seq of the current phase (the rehearsal's, then the measured one's)
  // The measured phase's first seq and start time, for the end of sending, progress and
  // the report (measureFrom is the rehearsal's meanwhile); Infinity / NaN until it begins.
  let countFrom = Infinity;
  let durationFrom = NaN;
  let droppedAtStart: DropCounts | null = null;
  let kernelDropsAtStart: number | null = null;
  let graceUpdatedUs = -Infinity;
  let warmupProbes = 0;
  /** A running average of the RTT (µs, 0 before the first reply), for {@link spinForReply}. */
  let rttAvg = 0;
  /** Receive time of the last reply in time (µs), for {@link spinForReply}: are replies still coming? */
  let lastReplyUs = -Infinity;
  /** The lane stamps a reply when JS reads it: yield pacing waits for an imminent reply by spinning ({@link spinForReply}). */
  const jsStamps = engine.timestamps === 'js';

  const startTime = new Date();
  const context: ReportContext = {
    schema_version: SCHEMA_VERSION,
    version: dtmeshVersion(),
    start_time: startTime.toISOString(),
    target: { agent: opts.agent, host: opts.host, port: opts.port },
    config: {
      count: count === Infinity ? null : count,
      duration_s: opts.durationS ?? null,
      rate_pps: rate,
      size,
      grace_ms: opts.graceMs ?? null,
      warmup_s: opts.warmupS ?? 0,
      interval_s: opts.intervalS ?? null,
      pacing,
      clock_synced: opts.clockSynced === true,
      max_loss_pct: opts.maxLossPct ?? null,
      max_p99_ms: opts.maxP99Ms ?? null,
      max_datagram: engine.maxDatagram,
      batch_size: engine.batchSize,
      workers: engine.workers,
      ...opts.config,
    },
    lane: engine.lane,
    timestamps: engine.timestamps,
    host: hostInfo(),
  };
  opts.onStart?.(context);

  /**
   * Tally of the interval of a probe sent at `t`: null for a warm-up probe (`measured`
   * false) or without intervals. Both phases call it, so the call is warm when the phase
   * changes (a call site the warm-up never ran deoptimises its caller at the switch).
   */
  const probeTally = (measured: boolean, t: number): Tally | null => (!measured || liveIntervals === null ? null : liveIntervals.at(liveIntervals.indexOf(t)));
  const arrivalTally = (): Tally | null => (liveIntervals === null ? null : liveIntervals.arrival(nowUs()));
  /**
   * Tally of an unmatched reply's arrival. Unmatched replies belong to no probe and count
   * for the run whenever they come (the warm-up's carry over at the switch), so one in the
   * warm-up goes to the first interval: the intervals' unmatched always sum to the run's.
   */
  const unmatchedTally = (): Tally | null => (intervals === null ? null : intervals.arrival(nowUs()));

  // The schedule: probe `seq` is due at anchorUs + (seq − anchorSeq) / rate. The measured
  // phase gets its own anchor, so a backlog of the warm-up is never sent as a catch-up
  // burst of measured probes.
  let anchorUs = 0;
  let anchorSeq = 0;
  const dueCount = (now: number): number => anchorSeq + Math.floor(((now - anchorUs) * rate) / 1e6) + 1;

  /**
   * A phase begins with probe `seq` at `t`: the rehearsal (the warm-up's second half) or,
   * `measured`, the measured phase. Both run the same code; the measured one then throws
   * the rehearsal's figures away (unmatched replies carry over: they count for the run) and
   * its probes' replies, from now on, go to `warm` (their seq is below measureFrom).
   */
  const beginPhase = (seq: number, t: number, measured: boolean): void => {
    if (measured) {
      const unmatched = run.total.unmatched;
      run.reset();
      run.total.unmatched = unmatched;
      sendErrors = 0;
      warmupProbes = seq;
      countFrom = seq;
      durationFrom = t;
      liveIntervals = intervals;
      // the planned span: the duration, or the count at the rate (none at rate 0 with a count)
      intervals?.begin(t, Math.min(durationUs, rate > 0 ? (count * 1e6) / rate : Infinity));
    }
    anchorUs = t;
    anchorSeq = seq;
    measureFrom = seq;
    const st = engine.stats();
    droppedAtStart = st.dropped;
    kernelDropsAtStart = st.kernel_drops ?? null;
    gen.begin();
  };

  const declareLost = (seq: number, i: number): void => {
    ring.state[i] = ST_LOST;
    figuresOf(seq).total.lost++;
    if (seq < measureFrom) return;
    const it = probeTally(true, ring.sentAt[i]!);
    if (it !== null) it.lost++;
  };

  /**
   * A second reply for probe `seq`, already received (MEASUREMENT.md §1 "Duplicate") or
   * answered late (a probe is late once: PROTOCOL.md §4 "a second REPLY for the same probe
   * is a duplicate").
   */
  const duplicate = (seq: number): void => {
    const measured = seq >= measureFrom;
    (measured ? run : warm).total.duplicates++;
    if (measured) {
      const a = arrivalTally();
      if (a !== null) a.duplicates++;
    }
  };

  /**
   * The first reply for probe `seq` after its deadline (MEASUREMENT.md §1 "Late"): counted
   * `late` — never received, never an RTT — and its probe marked {@link ST_LATE} (in the
   * ring or its history), so a further reply is a duplicate, never late again.
   */
  const late = (seq: number, f: Figures, measured: boolean): void => {
    ring.answeredLate(seq);
    f.total.late++;
    if (measured) {
      const a = arrivalTally();
      if (a !== null) a.late++;
    }
  };

  const onReply = (r: ReplyEvent): void => {
    if (r.from !== opts.agent) return;
    const seq = ring.seqOf(r.probeId, probeBase);
    if (seq < 0) {
      if (r.replay) return; // a copy of an unmatched reply: its first copy was counted
      run.total.unmatched++;
      const a = unmatchedTally();
      if (a !== null) a.unmatched++;
      return;
    }
    // The probe's state: in the ring, or (its entry reused) its final one from the ring's
    // history; ST_FORGOTTEN beyond that history (ring.ts fateOf)
    const held = ring.holds(seq);
    const st = held ? ring.state[ring.slot(seq)]! : ring.fateOf(seq);
    const measured = seq >= measureFrom;
    const f = measured ? run : warm;
    if (st === ST_RECEIVED) {
      duplicate(seq); // also a copy of a REPLY already accepted (`r.replay`: the network duplicated it)
      return;
    }
    // any other copy the engine dropped as replay: its first copy was counted already (late,
    // unmatched), or it is older than the whole replay window (PROTOCOL.md §5) — nothing to add
    if (r.replay) return;
    if (st === ST_LATE) {
      // a distinct REPLY (fresh nonce: it passed the replay check) for a probe answered late
      // already — the responder or a relay sent it again: late once per probe, this one is a duplicate
      duplicate(seq);
      return;
    }
    if (st === ST_LOST) {
      // after its probe was declared lost: late, never received, never an RTT
      late(seq, f, measured);
      return;
    }
    if (st !== ST_IN_FLIGHT) {
      // never sent (the send threw), or older than the history: its probe's fate is no
      // longer known, and late (⊆ lost) or duplicate might each be false — unmatched
      run.total.unmatched++;
      const a = unmatchedTally();
      if (a !== null) a.unmatched++;
      return;
    }
    const i = ring.slot(seq);
    const sentAt = ring.sentAt[i]!;
    const d = r.recvUs - sentAt;
    if (d > graceUs) {
      // After the deadline, before the sweep saw it: lost now, and late — never received, never an RTT.
      declareLost(seq, i);
      late(seq, f, measured);
      return;
    }
    ring.state[i] = ST_RECEIVED;
    ring.rtt[i] = d;
    rttAvg = rttAvg === 0 ? d : rttAvg + (d - rttAvg) / 8;
    lastReplyUs = r.recvUs;
    graceRtt.recordValue(d < 1 ? 1 : Math.round(d));
    f.total.receive(d);
    const it = probeTally(measured, sentAt);
    if (it !== null) it.receive(d);
    if (seq < maxSeqSeen) {
      f.total.reordered++;
      if (it !== null) it.reordered++;
    } else maxSeqSeen = seq;
    // RFC 5481 IPDV: each consecutive pair of one phase once, when its second reply arrives.
    if (seq - 1 >= 0 && seq - 1 >= measureFrom === measured && ring.holds(seq - 1) && ring.state[ring.slot(seq - 1)] === ST_RECEIVED) f.ipdv.record(d - ring.rtt[ring.slot(seq - 1)]!);
    if (seq + 1 >= measureFrom === measured && ring.holds(seq + 1) && ring.state[ring.slot(seq + 1)] === ST_RECEIVED) f.ipdv.record(ring.rtt[ring.slot(seq + 1)]! - d);
    f.fwd.record(r.sendTsUs - sentAt);
    f.rev.record(r.recvUs - r.sendTsUs);
  };

  /**
   * A probe refused after engine.sendProbe returned its nonce (MEASUREMENT.md §1: "Sent" is
   * a probe that left the socket): it never left, so it is a send error, never sent nor
   * lost. (One refused during the call makes sendProbe return -1: the send loop counts it.)
   */
  const onSendError = (e: SendErrorEvent): void => {
    if (e.type !== TYPE_PROBE || e.agent !== opts.agent) return;
    const seq = ring.seqOf(e.probeId, probeBase);
    if (seq < 0 || !ring.holds(seq)) return;
    const i = ring.slot(seq);
    if (ring.state[i] !== ST_IN_FLIGHT) return; // decided already (past its deadline): stays as counted
    ring.state[i] = ST_NOT_SENT;
    figuresOf(seq).total.sent--;
    if (seq < measureFrom) return;
    sendErrors++;
    const it = probeTally(true, ring.sentAt[i]!);
    if (it !== null) it.sent--;
  };

  /** Raise the automatic deadline from the RTTs seen, then declare lost every probe past it. */
  const sweep = (now: number): void => {
    if (autoGrace && now - graceUpdatedUs >= GRACE_UPDATE_US && graceRtt.totalCount > 0) {
      graceUpdatedUs = now;
      graceUs = Math.min(GRACE_CEILING_US, Math.max(graceUs, GRACE_RTT_MULTIPLE * graceRtt.getValueAtPercentile(99)));
    }
    const cutoff = now - graceUs - VERIFY_SETTLE_US;
    while (ring.oldest < ring.scheduled) {
      const i = ring.slot(ring.oldest);
      const st = ring.state[i]!;
      if (st === ST_IN_FLIGHT) {
        if (ring.sentAt[i]! > cutoff) break;
        declareLost(ring.oldest, i);
      }
      ring.oldest++;
    }
    intervals?.settle(now, ring.oldest < ring.scheduled ? ring.sentAt[ring.slot(ring.oldest)]! : Infinity);
  };

  engine.addReplySink(onReply); // synchronous, one reused object: no event object per REPLY
  engine.addSendErrorSink(onSendError);
  const slack = nativeLane?.threadTimerSlack ?? null;
  const slackBefore = slack !== null && pacing === 'yield' ? slack(PACING_TIMER_SLACK_NS) : -1;

  const t0 = nowUs();
  anchorUs = t0;
  const endOfWarmup = t0 + warmupUs;
  // Phases: the warm-up's first half (into `warm`), the rehearsal from its middle, the
  // measured phase from its end (no warm-up: measured from the first probe).
  let nextPhaseUs = warmupUs > 0 ? t0 + warmupUs / 2 : t0;
  const phaseDue = (seq: number, t: number): boolean => {
    if (!(t >= nextPhaseUs)) return false;
    const measured = nextPhaseUs >= endOfWarmup;
    nextPhaseUs = measured ? Infinity : endOfWarmup;
    beginPhase(seq, t, measured);
    return true;
  };
  let tLast = t0;
  let lastProgress = t0;
  const progressUs = (opts.progressMs ?? 1000) * 1000;
  const measuredSent = (): number => run.total.sent;
  const report = (now: number): void => {
    if (opts.onProgress === undefined || now - lastProgress < progressUs) return;
    lastProgress = now;
    const warming = Number.isNaN(durationFrom);
    const el = warming ? 0 : (now - durationFrom) / 1e6;
    const s = measuredSent();
    const total = run.total;
    opts.onProgress({ sent: s, received: total.received, lost: total.lost, late: total.late, inFlight: s - total.received - total.lost, sendErrors, target: count, elapsedS: el, ratePps: el > 0 ? s / el : 0, warmup: warming });
  };
  /**
   * Sending is over: the count is reached or the measured duration passed. In the warm-up
   * both tests are false by themselves (countFrom = Infinity, durationFrom = NaN), so the
   * warm-up runs the whole expression, as the measured phase does.
   */
  const sendingOver = (t: number): boolean => ring.scheduled - countFrom >= count || t - durationFrom >= durationUs || (opts.signal?.aborted === true && stopEarly(t));
  /** Why sending stopped before its course ran ({@link ProbeReport.interrupted}); null unless it did. */
  let interrupted: string | null = null;
  /**
   * Stopped from outside ({@link ProbeOptions.signal}): in the warm-up, the measured phase
   * begins (empty) first, so the report holds no warm-up or rehearsal figure as measured.
   */
  const stopEarly = (t: number): true => {
    if (Number.isNaN(durationFrom)) beginPhase(ring.scheduled, t, true);
    const reason: unknown = opts.signal!.reason;
    interrupted = typeof reason === 'string' && reason !== '' ? reason : 'aborted';
    return true;
  };
  let pendingStep: NodeJS.Timeout | null = null;
  let onAbort: (() => void) | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      const step = (): void => {
        try {
          const now = nowUs();
          phaseDue(ring.scheduled, now);
          if (sendingOver(now)) return resolve();
          let due = rate === 0 ? ring.scheduled + SEND_CHUNK : dueCount(now);
          let n = 0;
          while (ring.scheduled < due && n < SEND_CHUNK) {
            let t = nowUs(); // the schedule's clock; the send time is the lane's own stamp below (MEASUREMENT.md §1 "Sent")
            if (phaseDue(ring.scheduled, t) && rate > 0) due = dueCount(t);
            if (sendingOver(t)) break;
            const seq = ring.next(t, 2 * (graceUs + VERIFY_SETTLE_US));
            n++;
            const measured = seq >= measureFrom;
            try {
              // -1: refused during the call, by Node or the kernel (the engine counts it too); a
              // refusal after it comes as 'send_error' (onSendError)
              if (!engine.trySendProbe(opts.agent, opts.host, opts.port, (probeBase + seq) | 0, size)) throw new RangeError('send refused');
            } catch {
              ring.state[ring.slot(seq)] = ST_NOT_SENT; // counted, never in `sent`, its probe_id never matched
              if (measured) sendErrors++;
              continue;
            }
            // the lane stamps the send right before its sendto (native) or socket.send (dgram): the
            // send time then, not before the signing and bookkeeping of sendProbe (a preemption in
            // between is not the path's)
            const atCall = engine.lastSendUs();
            if (atCall >= t) ring.sentAt[ring.slot(seq)] = t = atCall;
            tLast = t;
            figuresOf(seq).total.sent++;
            // the warm-up takes the measured phase's calls too (its tally is null, the generator
            // records from begin() on): no call the warm-up never made deoptimises this loop at
            // the switch
            const it = probeTally(measured, t);
            if (it !== null) it.sent++;
            if (rate > 0) gen.sent(t - (anchorUs + ((seq - anchorSeq) * 1e6) / rate));
          }
          gen.turn(n);
          sweep(now);
          report(now);
          if (sendingOver(nowUs())) return resolve();
          if (rate === 0 || n === SEND_CHUNK) return void setImmediate(step); // behind (or no schedule): catch up at once
          const nextDueUs = ((ring.scheduled - anchorSeq) * 1e6) / rate - (nowUs() - anchorUs);
          if (nextDueUs <= 0 || (pacing === 'spin' && nextDueUs <= SPIN_WITHIN_US)) setImmediate(step);
          else if (pacing === 'yield' && nextDueUs <= YIELD_WITHIN_US) {
            // a JS-stamped reply due before long is read when it comes, not after a sleep
            if (jsStamps) {
              const t = nowUs();
              if (spinForReply(t - tLast, ring.scheduled > 0 && ring.state[ring.slot(ring.scheduled - 1)] === ST_IN_FLIGHT, rttAvg, t - lastReplyUs, 1e6 / rate)) return void setImmediate(step);
            }
            Atomics.wait(sleeper, 0, 0, Math.min(nextDueUs, YIELD_SLICE_US) / 1000);
            setImmediate(step); // the loop's poll phase reads the replies that came meanwhile
          } else pendingStep = setTimeout(step, Math.max(0, Math.floor(nextDueUs / 1000)));
        } catch (err) {
          reject(err);
        }
      };
      // an abort ends a long wait between sends at once (at 0.01 pps, 100 s)
      onAbort = () => {
        if (pendingStep !== null) clearTimeout(pendingStep);
        setImmediate(step);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      step();
    });
    gen.sendingDone();
    intervals?.stopSending(tLast, tLast + (rate > 0 ? 1e6 / rate : 1));
    // Wait out every probe in flight: each ends received or past its deadline (+ settle).
    for (;;) {
      const now = nowUs();
      sweep(now);
      report(now);
      if (ring.oldest >= ring.scheduled) break;
      const waitMs = (ring.sentAt[ring.slot(ring.oldest)]! + graceUs + VERIFY_SETTLE_US - now) / 1000;
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, Math.ceil(waitMs)))));
    }
    intervals?.settle(Infinity, Infinity);
  } finally {
    if (onAbort !== null) opts.signal?.removeEventListener('abort', onAbort);
    engine.removeReplySink(onReply);
    engine.removeSendErrorSink(onSendError);
    if (slackBefore >= 0) slack!(slackBefore);
    gen.stop();
  }
  const total = run.total;
  const { ipdv, fwd, rev } = run;
  const sent = total.sent;
  const sendSpanS = sent > 1 ? (tLast - durationFrom) / 1e6 + (rate > 0 ? 1 / rate : 0) : rate > 0 ? 1 / rate : 0;
  const offered = sendSpanS > 0 ? Math.round(sent / sendSpanS) : 0;
  const rtt = total.rttSummary();
  const end = engine.stats();
  const dropped = {} as DropCounts;
  for (const k of DROP_REASONS) dropped[k] = end.dropped[k] - (droppedAtStart?.[k] ?? 0);
  const kernelDrops = kernelDropsAtStart !== null && end.kernel_drops !== undefined ? Math.max(0, end.kernel_drops - kernelDropsAtStart) : null;
  const lossPct = sent > 0 ? Math.round((1e5 * total.lost) / sent) / 1e3 : 0;
  const breached: string[] = [];
  if (opts.maxLossPct !== undefined && lossPct > opts.maxLossPct) breached.push('max_loss_pct');
  // no reply received: no RTT to judge, and a gate must not pass on the 0 placeholders
  if (opts.maxP99Ms !== undefined && (total.received === 0 || rtt.p99 > opts.maxP99Ms * 1000)) breached.push('max_p99_ms');
  return {
    ...context,
    type: 'end',
    interrupted,
    sent,
    received: total.received,
    lost: total.lost,
    duplicates: total.duplicates,
    reordered: total.reordered,
    rtt_us: rtt,
    jitter_us: total.jitterUs,
    offered_pps: offered,
    achieved_pps: sendSpanS > 0 ? Math.round(total.received / sendSpanS) : 0,
    throughput_bps: sendSpanS > 0 ? Math.round((total.received * size * 8) / sendSpanS) : 0,
    duration_s: Math.round(sendSpanS * 1000) / 1000,
    dropped,
    kernel_drops: kernelDrops,
    late: total.late,
    in_flight: sent - total.received - total.lost,
    send_errors: sendErrors,
    grace_ms: Math.round(graceUs) / 1000,
    grace_rule: autoGrace ? GRACE_AUTO_RULE : '--grace-ms',
    unmatched: total.unmatched,
    loss_pct: lossPct,
    ipdv_us: ipdv.summary(),
    owd_us: {
      relative: { forward: fwd.relative(), reverse: rev.relative() },
      absolute: opts.clockSynced === true ? { forward: fwd.absolute(), reverse: rev.absolute() } : null,
      note: 'relative: each minus its own minimum, valid without clock sync; forward includes the responder’s receive→sign time',
      out_of_range: { forward: fwd.outOfRange, reverse: rev.outOfRange },
    },
    warmup: { duration_s: warmupUs / 1e6, probes: warmupProbes },
    generator: gen.health(offered),
    histogram: { encoding: 'HdrHistogram V2 compressed, base64 (hdr-histogram-js encodeIntoCompressedBase64)', unit: 'us', data: hdr.encodeIntoCompressedBase64(total.rtt) },
    intervals: intervals?.done ?? [],
    intervals_omitted: intervals?.omitted ?? 0,
    memory: { ring_entries: ring.capacity, ring_bytes: ring.bytes },
    thresholds: { max_loss_pct: opts.maxLossPct ?? null, max_p99_ms: opts.maxP99Ms ?? null, breached },
  };
}

/** The RTT histogram of a report as HdrHistogram percentile-distribution text (`--histogram FILE`), values in µs. */
export function percentileDistribution(r: ProbeReport): string {
  return hdr.decodeFromCompressedBase64(r.histogram.data).outputPercentileDistribution();
}
