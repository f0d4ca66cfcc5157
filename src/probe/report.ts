/**
 * The prober's report (the `probe --json` document, MEASUREMENT.md §1–3; layout in
 * src/probe/report.schema.json). The keys of the first report — `sent` … `grace_rule` —
 * keep their names and meaning; `dropped` is this run's delta.
 */
import type { DropCounts } from '../observe/stats.js';
import type { HostInfo } from './context.js';
import type { GeneratorHealth } from './generator.js';
import type { IntervalFigures } from './intervals.js';
import type { DelaySummary, IpdvSummary, RttSummary } from './tally.js';

/** The context every JSON document carries (MEASUREMENT.md §3). */
export interface ReportContext {
  schema_version: number;
  /** dtmesh version. */
  version: string;
  /** ISO 8601 UTC, when the run started. */
  start_time: string;
  target: { agent: string; host: string; port: number };
  /** The full effective configuration. */
  config: Record<string, string | number | boolean | null>;
  /** The engine's socket lane (`dgram`, or a native one). */
  lane: string;
  /** Where receive times come from: `kernel` (SO_TIMESTAMPNS) or `js` (when JS first saw the datagram). */
  timestamps: string;
  host: HostInfo;
}

/** The report (`type: "end"` in a `--json-stream`). */
export interface ProbeReport extends ReportContext {
  type: 'end';
  /**
   * Null when sending ran its course (the count was sent or the duration passed); else the
   * run was cut short by `ProbeOptions.signal` and this says why: the abort's reason
   * when it is a string (the CLI aborts with the signal's name, `"SIGINT"` or `"SIGTERM"`),
   * else `"aborted"`. The figures then cover the probes sent before it, each waited out to
   * its deadline. An abort while only the last probes are waited out cuts nothing short:
   * null (the CLI still exits 130/143).
   */
  interrupted: string | null;
  /** Probes that left through the engine after the warm-up (a send that threw is in `send_errors`). */
  sent: number;
  /** Replies matched to a probe by its deadline; the only ones in the RTT figures. */
  received: number;
  /** Probes with no reply by their deadline; `sent = received + lost` at the end. */
  lost: number;
  /** Second (and later) replies for a received probe, also long after it (the ring's history, ring.ts). */
  duplicates: number;
  /** Replies whose probe was sent before the latest probe already answered (never loss). */
  reordered: number;
  /**
   * RTT of received replies only (late ones never move it), µs; min/max/mean/stddev exact,
   * percentiles HDR (3 digits) clamped into [min, max]. All 0 when `received` is 0: no
   * sample, not a 0 µs path (the human summary says "no replies"); likewise `jitter_us`,
   * `ipdv_us` with `pairs` 0 and `owd_us` with `count` 0.
   */
  rtt_us: RttSummary;
  /** RFC 3550 §6.4.1 interarrival jitter over consecutive received replies, µs. */
  jitter_us: number;
  offered_pps: number;
  achieved_pps: number;
  throughput_bps: number;
  duration_s: number;
  /** The engine's drops during this run (a delta, never the engine's lifetime total). */
  dropped: DropCounts;
  /**
   * Datagrams this host's kernel dropped at the prober's own socket during this run
   * (receive buffer full: the prober did not read in time; /proc/net/udp), a delta; null
   * where the kernel does not say. A measured probe whose reply was dropped so is in
   * `lost` (a warm-up probe's reply dropped just after the warm-up is in no figure): the
   * prober's loss, not the path's.
   */
  kernel_drops: number | null;
  /** Replies after their probe was declared lost, also long after it (the ring's history, ring.ts); each probe also counted in `lost`. */
  late: number;
  /** Always 0: the run waits every probe out. */
  in_flight: number;
  send_errors: number;
  grace_ms: number;
  grace_rule: string;
  /**
   * Verified REPLYs this run cannot match to a probe: one it never sent, or one older than
   * its history of final states (ring.ts: 32 ring lengths, ≥ 64 deadlines) — that probe's
   * fate is no longer known, and counting it late or duplicate might be false.
   */
  unmatched: number;
  /** 100 × lost / sent. */
  loss_pct: number;
  /** RFC 5481 IPDV on the RTT of consecutive probes both received, µs. */
  ipdv_us: IpdvSummary;
  /**
   * One-way delays (forward = REPLY send_ts_us − probe send; reverse = reply receive −
   * REPLY send_ts_us), µs, relative to their own minimum (valid without clock sync);
   * `absolute` only with `--clock-synced`. `out_of_range`: samples more than 60 s from the
   * first of their direction (a clock step the engine's clock window let through), in no
   * figure here — counted, so `count + out_of_range = received` in each direction.
   */
  owd_us: {
    relative: { forward: DelaySummary; reverse: DelaySummary };
    absolute: { forward: DelaySummary; reverse: DelaySummary } | null;
    note: string;
    out_of_range: { forward: number; reverse: number };
  };
  warmup: { duration_s: number; probes: number };
  generator: GeneratorHealth;
  /** The RTT histogram, whole: HdrHistogram compressed base64 (hdr-histogram-js encodeIntoCompressedBase64), values in µs. */
  histogram: { encoding: string; unit: string; data: string };
  intervals: IntervalFigures[];
  /** Oldest intervals left out of `intervals[]` to bound memory (0 unless a run passed MAX_KEPT_INTERVALS). */
  intervals_omitted: number;
  /** Per-probe state held, the ring and its history of final states (bounded by the in-flight window, MEASUREMENT.md §4). */
  memory: { ring_entries: number; ring_bytes: number };
  /** Threshold gates (`--max-loss`, `--max-p99`): which were breached (exit code 3). */
  thresholds: { max_loss_pct: number | null; max_p99_ms: number | null; breached: string[] };
}

/** An interval line of `--json-stream`. */
export type IntervalDocument = ReportContext & { type: 'interval' } & IntervalFigures;

/** The first line of `--json-stream`. */
export type StartDocument = ReportContext & { type: 'start' };
