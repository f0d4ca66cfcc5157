/**
 * The figures of one set of probes (MEASUREMENT.md §1–2): the whole run, or one interval
 * (§3). Counts, RTT (HDR histogram, 3 significant digits, plus an exact mean and standard
 * deviation by Welford's method) and RFC 3550 §6.4.1 interarrival jitter over
 * consecutive received replies. Run-only figures (IPDV, one-way delays) live in
 * {@link RunFigures}.
 */
import * as hdr from 'hdr-histogram-js';
import { latencyHistogram } from '../observe/stats.js';

/** RTT summary, µs. */
export interface RttSummary {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** Exact (Welford), not from the histogram. */
  mean: number;
  stddev: number;
}

/** Counts and RTT figures of one set of probes. */
export class Tally {
  sent = 0;
  received = 0;
  lost = 0;
  late = 0;
  duplicates = 0;
  reordered = 0;
  unmatched = 0;
  /** RTT of received replies, µs (late ones never enter). */
  readonly rtt: hdr.Histogram;
  private mean = 0;
  private m2 = 0;
  /** RFC 3550 §6.4.1 J, µs. */
  jitter = 0;
  private lastRtt = -1;

  /**
   * `packed`: a packed-array histogram (a few KB while sparse) instead of the flat one
   * (≈ 140 KB for 1 µs … 60 s at 3 digits): many intervals can be open at once when the
   * deadline is long and the interval short.
   */
  constructor(packed = false) {
    this.rtt = packed
      ? hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: 'packed' })
      : latencyHistogram();
  }

  /** Back to a new tally's state, in place (the prober's phase switch: no new objects, no new code). */
  reset(): void {
    this.sent = this.received = this.lost = this.late = this.duplicates = this.reordered = this.unmatched = 0;
    this.rtt.reset();
    this.mean = this.m2 = 0;
    this.jitter = 0;
    this.lastRtt = -1;
  }

  /** A reply received in time: its RTT `d` µs. */
  receive(d: number): void {
    this.received++;
    this.rtt.recordValue(d < 1 ? 1 : Math.round(d));
    const n = this.received;
    const delta = d - this.mean;
    this.mean += delta / n;
    this.m2 += delta * (d - this.mean);
    if (this.lastRtt >= 0) this.jitter += (Math.abs(d - this.lastRtt) - this.jitter) / 16; // RFC 3550 §6.4.1
    this.lastRtt = d;
  }

  /** RTT figures, µs (zeros when nothing was received); percentiles within [min, max] ({@link percentileWithin}). */
  rttSummary(): RttSummary {
    const h = this.rtt;
    const n = h.totalCount;
    if (n === 0) return { min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0, stddev: 0 };
    const at = (p: number): number => percentileWithin(h, p);
    return {
      min: h.minNonZeroValue,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: h.maxValue,
      mean: round1(this.mean),
      stddev: round1(n > 1 ? Math.sqrt(this.m2 / (n - 1)) : 0),
    };
  }

  /** Jitter rounded to 0.1 µs. */
  get jitterUs(): number {
    return round1(this.jitter);
  }
}

/** Round to 0.1. */
export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** `x` clamped into `[lo, hi]`. */
export function within(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * The value at percentile `p` of `h` (values ≥ 1 recorded), clamped into the exact
 * `[min, max]` it recorded. An HDR percentile is the top of its bucket (3 significant
 * digits: up to 0.1 % above the sample), while min and max are exact, so unclamped one
 * RTT of 8000 µs reads p50 8003, max 8000 — a report whose percentiles pass its own max
 * (MEASUREMENT.md §2: figures an operator can act on).
 */
export function percentileWithin(h: hdr.Histogram, p: number): number {
  return within(h.getValueAtPercentile(p), h.minNonZeroValue, h.maxValue);
}

/** Summary of a histogram of values offset by `base` (relative one-way delays), µs. */
export interface DelaySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * A delay that may be negative or offset by an unknown clock difference (one-way delays,
 * MEASUREMENT.md §2). Each sample is kept as its deviation from the first sample, in two
 * HDR histograms by sign, so 3 significant digits apply to the deviation (µs), not to
 * the offset (which may be seconds); figures are reported relative to their own minimum
 * (valid without clock sync), absolute only when asked.
 */
export class OffsetDelay {
  private readonly above: hdr.Histogram = latencyHistogram();
  private readonly below: hdr.Histogram = latencyHistogram();
  private first = NaN;
  /**
   * Samples more than 60 s from the first (a clock step the engine's clock window let
   * through: the histograms' range): counted, not recorded, and reported
   * (`owd_us.out_of_range`, report.ts) so none is dropped unseen.
   */
  outOfRange = 0;

  /** Back to a new one's state, in place. */
  reset(): void {
    this.above.reset();
    this.below.reset();
    this.first = NaN;
    this.outOfRange = 0;
  }

  record(v: number): void {
    // a store on every call, not only the first: the JIT has feedback for it when a reset
    // object takes its first sample mid-run
    this.first = Number.isNaN(this.first) ? v : this.first;
    // + 0: Math.round gives -0 for (−0.5, 0), a heap number rather than a small integer,
    // which code compiled for small integers (the histogram's) deoptimises on
    const d = Math.round(v - this.first) + 0;
    if (d > 60_000_000 || d < -60_000_000) {
      this.outOfRange++;
      return;
    }
    if (d >= 0) this.above.recordValue(d);
    else this.below.recordValue(-d);
  }

  /** Figures minus their own minimum. */
  relative(): DelaySummary {
    return this.summary(true);
  }

  /** Absolute figures (meaningful only with synchronised clocks). */
  absolute(): DelaySummary {
    return this.summary(false);
  }

  /** The sample at percentile `q` of both halves together, as a deviation from the first. */
  private at(q: number): number {
    const nb = this.below.totalCount;
    const n = nb + this.above.totalCount;
    const k = Math.max(1, Math.ceil((q / 100) * n)); // 1-based rank
    if (k <= nb) return -this.below.getValueAtPercentile((100 * (nb - k + 1)) / nb);
    return this.above.getValueAtPercentile((100 * (k - nb)) / (n - nb));
  }

  /** Count, exact min and max, and percentiles clamped into them (as {@link percentileWithin}). */
  private summary(rel: boolean): DelaySummary {
    const n = this.below.totalCount + this.above.totalCount;
    if (n === 0) return { count: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const min = this.below.totalCount > 0 ? -this.below.maxValue : this.at(0);
    const max = this.above.totalCount > 0 ? this.above.maxValue : this.at(100);
    // each percentile clamped into the exact [min, max]: bucket tops pass max above the
    // first sample and fall below min under it (percentileWithin)
    const f = (dev: number): number => (rel ? dev - min : Math.round(this.first + dev));
    const q = (p: number): number => f(within(this.at(p), min, max));
    return { count: n, min: f(min), p50: q(50), p90: q(90), p99: q(99), max: f(max) };
  }
}

/** IPDV figures (RFC 5481 §4.1: D(i) − D(i−1) for consecutive probes both received), µs. */
export interface IpdvSummary {
  /** Pairs measured. */
  pairs: number;
  /** Mean of IPDV (≈ 0 over a long run: RFC 5481 §4.1). */
  mean: number;
  /** Mean of |IPDV|. */
  mean_abs: number;
  min: number;
  max: number;
  /** Percentiles of |IPDV|. */
  abs_p50: number;
  abs_p99: number;
}

/** RFC 5481 IPDV over consecutive (by sequence) received pairs, on the RTT. */
export class Ipdv {
  private readonly abs: hdr.Histogram = latencyHistogram();
  private pairs = 0;
  private sum = 0;
  private sumAbs = 0;
  private min = Infinity;
  private max = -Infinity;

  /** Back to a new one's state, in place. */
  reset(): void {
    this.abs.reset();
    this.pairs = this.sum = this.sumAbs = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }

  /** D(i) − D(i−1), µs. */
  record(v: number): void {
    this.pairs++;
    this.sum += v;
    const a = Math.abs(v);
    this.sumAbs += a;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.abs.recordValue(a < 1 ? 1 : Math.min(60_000_000, Math.round(a)));
  }

  /** The figures; `abs_p50`/`abs_p99` never above max(|min|, |max|) ({@link percentileWithin}). */
  summary(): IpdvSummary {
    const n = this.pairs;
    if (n === 0) return { pairs: 0, mean: 0, mean_abs: 0, min: 0, max: 0, abs_p50: 0, abs_p99: 0 };
    const min = round1(this.min);
    const max = round1(this.max);
    // |IPDV| percentiles are bucket tops (and a |v| < 1 is recorded as 1): never above the
    // largest |IPDV| the report states, max(|min|, |max|)
    const maxAbs = Math.max(-min, max);
    return {
      pairs: n,
      mean: round1(this.sum / n),
      mean_abs: round1(this.sumAbs / n),
      min,
      max,
      abs_p50: within(this.abs.getValueAtPercentile(50), 0, maxAbs),
      abs_p99: within(this.abs.getValueAtPercentile(99), 0, maxAbs),
    };
  }
}
