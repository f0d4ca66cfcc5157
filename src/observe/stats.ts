/**
 * The books (ENGINE.md "nothing is lost silently"): one counter per verdict, received
 * and replied, and an HDR histogram of receive→verdict latency in µs. The stats JSON
 * has exactly the keys of the `serve --stats-json` contract; `received = accepted +
 * Σ dropped` always.
 */
import * as hdr from 'hdr-histogram-js';
import { DROP_REASONS, type DropReason, V_ACCEPT, VERDICT_COUNT } from '../protocol/verdict.js';

/** Drop counters by canonical reason. */
export type DropCounts = Record<DropReason, number>;

/** Latency summary in µs. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** The engine's stats (the `--stats-json` document). */
export interface EngineStats {
  received: number;
  accepted: number;
  replied: number;
  dropped: DropCounts;
  latency_us: LatencySummary;
  /**
   * Sends the kernel or Node refused (bad port, EPERM, ENETUNREACH, EMSGSIZE, …): REPLYs,
   * punch bursts and the agent's own PROBEs (PROTOCOL.md §4). Counted, never thrown; not a
   * `--stats-json` contract key.
   */
  send_errors: number;
  /** Datagrams the kernel dropped for this socket (receive buffer overflow), when known (Linux). */
  kernel_drops?: number;
  /**
   * The lane serving the sockets (ENGINE.md "Lanes"): `native` or `dgram`. Always set by
   * `Engine.stats()`; not a `--stats-json` contract key (see {@link statsDocument}).
   */
  lane?: 'native' | 'dgram';
  /**
   * Datagrams the native lane received without a kernel receive stamp while it reports
   * `timestamps: 'kernel'` (stamped with the clock at `recvmmsg` instead, as a `'js'` lane
   * would; 0 on a healthy kernel). Set on the native lane with kernel stamps only; not a
   * `--stats-json` contract key.
   */
  unstamped?: number;
  /**
   * Nonce ceilings the engine could not write to its state directory (PROTOCOL.md §3; each
   * also a `'warning'`, at most once a minute): nonces past the last one written may be
   * reused after a crash. Set when the engine has a state directory; not a `--stats-json`
   * contract key.
   */
  nonce_write_errors?: number;
  /** Punch-hint decisions (PROTOCOL.md §2), when the policy is on. */
  punch?: { granted: number; probes: number; refused: Record<string, number> };
}

/**
 * The `--stats-json` document: exactly the keys of the CLI contract, in order
 * (`kernel_drops`, `lane` and punch counters are in `stats()` and the metrics, not here).
 */
export function statsDocument(s: EngineStats): Pick<EngineStats, 'received' | 'accepted' | 'replied' | 'dropped' | 'latency_us'> {
  return { received: s.received, accepted: s.accepted, replied: s.replied, dropped: s.dropped, latency_us: s.latency_us };
}

/** Build an HDR histogram for µs latencies (1 µs … auto-resizing, 3 significant digits). */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** Summarise a latency histogram (µs). */
export function summarize(h: hdr.Histogram): LatencySummary {
  const n = h.totalCount;
  const at = (p: number): number => (n === 0 ? 0 : h.getValueAtPercentile(p));
  return { count: n, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: n === 0 ? 0 : h.maxValue };
}

/**
 * The collector's books: verdict counters and REPLYs sent. Float64 so no count ever
 * wraps. What the sockets took (`received`, shed `overload`, `send_errors`) each lane
 * counts itself; the pipeline adds those into {@link EngineStats}.
 */
export class Books {
  /** Indexed by verdict code (V_ACCEPT … V_OVERLOAD). */
  readonly verdicts = new Float64Array(VERDICT_COUNT);
  /** REPLYs handed to the socket. */
  replied = 0;
  /** Receive→verdict latency, µs. */
  readonly latency = latencyHistogram();

  /** Drop counters by name. */
  dropped(): DropCounts {
    const out = {} as DropCounts;
    DROP_REASONS.forEach((r, i) => (out[r] = this.verdicts[i + 1]!));
    return out;
  }

  /** Sum of every final verdict (must equal `received` once nothing is in flight). */
  judged(): number {
    let s = 0;
    for (const v of this.verdicts) s += v;
    return s;
  }

  /** The stats document. */
  snapshot(): EngineStats {
    return {
      received: 0, // the lanes count what their sockets took; the pipeline adds theirs
      accepted: this.verdicts[V_ACCEPT]!,
      replied: this.replied,
      dropped: this.dropped(),
      latency_us: summarize(this.latency),
      send_errors: 0, // the lanes count refused sends; the pipeline adds theirs
    };
  }
}
