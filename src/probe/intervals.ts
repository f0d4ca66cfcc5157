/**
 * Per-interval figures (MEASUREMENT.md §3). Interval k holds the probes *sent* in
 * `[start + k·I, start + (k+1)·I)`: their sent, received, lost, reordered counts and RTT
 * figures. A probe still in flight belongs to no finished interval: interval k is final
 * (emitted) once its window ended and every probe in it is received or past its deadline.
 *
 * Events that are not a probe's fate — a late reply, a duplicate, an unmatched reply —
 * count in the interval during whose window they *arrived* (the last open one after
 * sending stopped), so every counter of the intervals sums to the run's total.
 */
import { round1, Tally } from './tally.js';

/**
 * Intervals the report keeps (memory stays bounded for any run length, MEASUREMENT.md
 * §4): a day at 1 s intervals fits; beyond, the oldest leave `intervals[]` (counted in
 * `intervals_omitted`) — `--json-stream` has every one.
 */
export const MAX_KEPT_INTERVALS = 100_000;

/** One interval line / `intervals[]` entry. */
export interface IntervalFigures {
  index: number;
  /** Window start, s after the measured phase began. */
  start_s: number;
  /** Window length, s (the last may be shorter: sending stopped). */
  duration_s: number;
  sent: number;
  received: number;
  lost: number;
  late: number;
  duplicates: number;
  reordered: number;
  unmatched: number;
  /** Probes sent per second in this window. */
  pps: number;
  /** Replies received per second in this window. */
  achieved_pps: number;
  rtt_us: { min: number; mean: number; p50: number; p99: number; max: number };
  jitter_us: number;
}

/** The open intervals of a run; see the file header. */
export class Intervals {
  private readonly open: Tally[] = [];
  private first = 0;
  /** Where the measured phase began, µs (set by {@link begin}). */
  private startUs = NaN;
  /** Send-span end, µs, once sending stopped. */
  private endUs = Infinity;
  /** Final intervals kept for the report: the latest {@link MAX_KEPT_INTERVALS}. */
  readonly done: IntervalFigures[] = [];
  /** Final intervals dropped from {@link done} (still emitted: a stream has them all). */
  omitted = 0;

  constructor(
    readonly intervalUs: number,
    private readonly onFinal: (f: IntervalFigures) => void,
  ) {}

  begin(t: number): void {
    this.startUs = t;
  }

  /** Interval index of time `t` (≥ 0). */
  indexOf(t: number): number {
    const k = Math.floor((t - this.startUs) / this.intervalUs);
    return k > 0 ? k : 0;
  }

  /** The tally of interval `k` (created with every empty one before it). */
  at(k: number): Tally {
    if (k < this.first) k = this.first; // never reopen a final interval
    while (this.first + this.open.length <= k) this.open.push(new Tally(true));
    return this.open[k - this.first]!;
  }

  /** The tally for an arrival event at `t`: its window, or the last open one after sending stopped. */
  arrival(t: number): Tally {
    let k = this.indexOf(t);
    if (t >= this.endUs) k = Math.min(k, this.indexOf(this.endUs - 1));
    return this.at(k);
  }

  /** Sending stopped; the last send's period ends at `t`. */
  stopSending(t: number): void {
    this.endUs = t;
  }

  /**
   * Emit every interval whose window ended by `now` and whose probes are all decided:
   * `undecidedUs` is the send time of the oldest probe still in flight (Infinity: none).
   */
  settle(now: number, undecidedUs: number): void {
    if (Number.isNaN(this.startUs)) return;
    const ended = now >= this.endUs ? (this.endUs === Infinity ? 0 : this.indexOf(this.endUs - 1) + 1) : this.indexOf(now);
    const blocked = undecidedUs === Infinity ? Infinity : Math.floor((undecidedUs - this.startUs) / this.intervalUs);
    const upTo = Math.min(ended, blocked); // intervals < upTo are final
    if (upTo > this.first) this.at(upTo - 1);
    while (this.first < upTo) {
      const t = this.open.shift()!;
      this.emit(this.first, t);
      this.first++;
    }
  }

  private emit(k: number, t: Tally): void {
    const start = this.startUs + k * this.intervalUs;
    const end = Math.min(start + this.intervalUs, this.endUs);
    const dur = Math.max(1, end - start) / 1e6;
    const r = t.rttSummary();
    const f: IntervalFigures = {
      index: k,
      start_s: round3((start - this.startUs) / 1e6),
      duration_s: round3(dur),
      sent: t.sent,
      received: t.received,
      lost: t.lost,
      late: t.late,
      duplicates: t.duplicates,
      reordered: t.reordered,
      unmatched: t.unmatched,
      pps: Math.round(t.sent / dur),
      achieved_pps: Math.round(t.received / dur),
      rtt_us: { min: r.min, mean: r.mean, p50: r.p50, p99: r.p99, max: r.max },
      jitter_us: round1(t.jitter),
    };
    this.done.push(f);
    if (this.done.length > MAX_KEPT_INTERVALS) {
      this.done.shift();
      this.omitted++;
    }
    this.onFinal(f);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
