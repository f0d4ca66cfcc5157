/**
 * Per-interval figures (MEASUREMENT.md §3). Interval k holds the probes *sent* in
 * `[start + k·I, start + (k+1)·I)`: their sent, received, lost, reordered counts and RTT
 * figures. A probe still in flight belongs to no finished interval: interval k is final
 * (emitted) once its window ended and every probe in it is received or past its deadline.
 *
 * The intervals cover the planned span of sending (`--duration`, or `--count` / rate) and
 * end with the interval of the last probe sent, which runs to the end of sending. A probe
 * sent after the planned end — behind schedule, or stamped by the lane a few µs after the
 * schedule's last instant — belongs to the last planned interval, which then runs past its
 * window; so no interval is ever opened after sending stopped, none is empty or a few µs
 * long for a send period that outlived the span, and the last holds every probe. (Without a
 * plan, rate 0 with a count, the intervals run to the one of the last probe.)
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
  /** Window length, s, to the µs (the last may be shorter: sending stopped; or longer: its probes left behind schedule, past the planned end). */
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
  /** Send time of the last probe, µs, once sending stopped. */
  private lastSendUs = Infinity;
  /** The last interval of the planned span: no probe goes past it (Infinity: no plan). */
  private lastPlanned = Infinity;
  /** The last interval, once sending stopped (the last probe's); Infinity before. */
  private last = Infinity;
  /** Final intervals kept for the report: the latest {@link MAX_KEPT_INTERVALS}. */
  readonly done: IntervalFigures[] = [];
  /** Final intervals dropped from {@link done} (still emitted: a stream has them all). */
  omitted = 0;

  constructor(
    readonly intervalUs: number,
    private readonly onFinal: (f: IntervalFigures) => void,
  ) {}

  /**
   * The measured phase begins at `t`; sending is planned to last `plannedUs` (Infinity: no
   * plan), so the intervals are the ceil(plannedUs / interval) windows that cover it.
   */
  begin(t: number, plannedUs = Infinity): void {
    this.startUs = t;
    // 1e-9: a span of whole intervals that float division puts a hair above (0.3 s / 0.1 s) has no extra one
    this.lastPlanned = plannedUs === Infinity ? Infinity : Math.max(0, Math.ceil(plannedUs / this.intervalUs - 1e-9) - 1);
  }

  /** Interval index of time `t` (≥ 0, never past the last planned one). */
  indexOf(t: number): number {
    const k = Math.floor((t - this.startUs) / this.intervalUs);
    return k > 0 ? (k < this.lastPlanned ? k : this.lastPlanned) : 0;
  }

  /** The tally of interval `k` (created with every empty one before it). */
  at(k: number): Tally {
    if (k < this.first) k = this.first; // never reopen a final interval
    while (this.first + this.open.length <= k) this.open.push(new Tally(true));
    return this.open[k - this.first]!;
  }

  /** The tally for an arrival event at `t`: its window, or the last interval after sending stopped. */
  arrival(t: number): Tally {
    const k = this.indexOf(t);
    return this.at(k < this.last ? k : this.last);
  }

  /**
   * Sending stopped: the last probe left at `lastSendUs`, its send period ends at `endUs`.
   * The last interval is that probe's. An interval opened after it holds only arrivals (a
   * late or duplicate reply, an unmatched one, in a window with no probe sent yet): those
   * counts go to the last interval, so every event is in one that will be emitted.
   */
  stopSending(lastSendUs: number, endUs: number): void {
    this.endUs = endUs;
    this.lastSendUs = lastSendUs;
    const k = this.indexOf(lastSendUs);
    this.last = k > this.first ? k : this.first; // never one already emitted
    while (this.first + this.open.length - 1 > this.last) {
      const after = this.open.pop()!;
      const l = this.at(this.last);
      l.late += after.late;
      l.duplicates += after.duplicates;
      l.unmatched += after.unmatched;
    }
  }

  /**
   * Emit every interval whose window ended by `now` and whose probes are all decided:
   * `undecidedUs` is the send time of the oldest probe still in flight (Infinity: none).
   */
  settle(now: number, undecidedUs: number): void {
    if (Number.isNaN(this.startUs)) return;
    // before sending stopped: every interval whose window ended (the last planned one never
    // does); after: every one before the last, and the last once its send period is over
    const k = this.indexOf(now);
    const ended = this.last === Infinity ? (now === Infinity ? 0 : k) : now >= this.endUs ? this.last + 1 : k < this.last ? k : this.last;
    const blocked = undecidedUs === Infinity ? Infinity : this.indexOf(undecidedUs); // the interval that probe is in
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
    const windowEnd = start + this.intervalUs;
    // the last runs to the end of sending when its last probe left past its window (the
    // planned span's end), else its window cut where sending stopped
    const end = k === this.last && this.lastSendUs >= windowEnd ? this.endUs : Math.min(windowEnd, this.endUs);
    const dur = Math.max(1, end - start) / 1e6;
    const r = t.rttSummary();
    const f: IntervalFigures = {
      index: k,
      start_s: round3((start - this.startUs) / 1e6),
      duration_s: Math.round(dur * 1e6) / 1e6, // to the µs the clock gives: a last interval shorter than 0.5 ms (a run of a few probes at a high rate) never reads 0
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
