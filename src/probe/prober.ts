/**
 * The prober: authenticated PROBE bursts at a paced rate, REPLYs matched by probe_id,
 * and the numbers people trust — loss, late replies, duplicates, reordering, RTT
 * percentiles, RFC 3550 jitter, offered/achieved rate, throughput.
 *
 * It sends through an {@link Engine} and receives through it too: every REPLY passes the
 * engine's own verification (PROTOCOL.md §4); a forged or replayed reply is dropped and
 * counted there and never reaches the matcher. A REPLY that does match counts once:
 * a second one for the same probe is a duplicate, one for a probe never sent is
 * unmatched, one after its probe's deadline is late — none is ever a success
 * (PROTOCOL.md §4, MEASUREMENT.md §1).
 *
 * One probe's life (MEASUREMENT.md §1): sent → in flight → received (a reply by the
 * deadline) or lost (none by the deadline; final — a reply after that is `late`).
 * `sent = received + lost + in_flight` at every instant, and the run ends only when
 * `in_flight = 0`.
 */
import type { Engine, ReplyEvent } from '../engine.js';
import { nowUs } from '../clock.js';
import { MIN_DATAGRAM } from '../protocol/wire.js';
import { type DropCounts, latencyHistogram } from '../observe/stats.js';

/** What to probe and how (MEASUREMENT.md §1 for what each figure it yields means). */
export interface ProbeOptions {
  /** Agent ID of the responder. */
  agent: string;
  /** Its address. */
  host: string;
  /** Its port. */
  port: number;
  /** Probes to send (default 1000 unless `durationS`). A send that throws still uses up one. */
  count?: number;
  /** Send for this many seconds instead of a count. */
  durationS?: number;
  /** Probes per second; 0 = as fast as the machine goes. Default 1000. */
  rate?: number;
  /** Whole datagram size in bytes (50 … the engine's maxDatagram). Default 84. */
  size?: number;
  /**
   * Each probe's deadline, ms after its send (MEASUREMENT.md §1 "Lost", `--grace-ms`): no
   * reply by then and the probe is lost; a reply after it is `late`. Default: the rule
   * {@link GRACE_AUTO_RULE} — max(1000 ms, 3 × the RTT p99 seen so far), never lowered
   * during a run, at most 60 s. Given: 0 … 60000 (the RTT histogram's range).
   */
  graceMs?: number;
  /** Called about every `progressMs` with the running figures. */
  onProgress?: (p: ProbeProgress) => void;
  /** Progress period, ms (default 1000). */
  progressMs?: number;
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
}

/** The report (`probe --json` document), MEASUREMENT.md §1–2. */
export interface ProbeReport {
  /** Probes that left through the engine (a send that threw is in `send_errors` instead). */
  sent: number;
  /** Replies matched to a probe by its deadline; the only ones in the RTT figures. */
  received: number;
  /** Probes with no reply by their deadline; `sent = received + lost` at the end. */
  lost: number;
  duplicates: number;
  reordered: number;
  /** RTT of received replies only (late ones never move it), µs. */
  rtt_us: { min: number; p50: number; p90: number; p99: number; p999: number; max: number };
  jitter_us: number;
  offered_pps: number;
  achieved_pps: number;
  throughput_bps: number;
  duration_s: number;
  dropped: DropCounts;
  /** REPLYs for probes this run never sent (not in the --json contract's required keys; informative). */
  unmatched: number;
  /** Replies after their probe was declared lost (MEASUREMENT.md §1 "Late"); each also counted in `lost`. */
  late: number;
  /** Probes still in flight when the report was made: always 0, the run waits them out. */
  in_flight: number;
  /** Sends that threw (unknown agent after a roster change, socket closed …): never in `sent`. */
  send_errors: number;
  /** The deadline in force at the end of the run, ms after each probe's send. */
  grace_ms: number;
  /** How `grace_ms` was chosen: `"--grace-ms"` (given) or {@link GRACE_AUTO_RULE}. */
  grace_rule: string;
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
 * A reply's receive time is taken when the datagram reaches the JS side, but the reply
 * event comes after verification in a worker. A probe is declared lost only this long
 * after its deadline, so a reply that arrived in time but was still being verified is
 * judged by its receive time (received), not by when verification finished. Meanwhile
 * the probe still counts as in flight (never lost).
 */
const VERIFY_SETTLE_US = 50_000;

/** Most probes sent per event-loop turn, so replies keep being read while pacing catches up. */
const SEND_CHUNK = 64;

// Per-probe state (one byte per scheduled probe).
const ST_IN_FLIGHT = 0;
const ST_RECEIVED = 1;
const ST_LOST = 2;
const ST_NOT_SENT = 3; // the send threw: the probe never left

/**
 * Run one probe burst through `engine` (which must list `opts.agent` as a peer).
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
  if (!engine.peers.includes(opts.agent)) throw new RangeError(`${opts.agent} is not in the prober's roster`);
  const durationUs = opts.durationS !== undefined ? opts.durationS * 1e6 : Infinity;
  const count = opts.count ?? (opts.durationS !== undefined ? Infinity : 1000);
  if (count !== Infinity && (!Number.isInteger(count) || count < 1)) throw new RangeError('count must be an integer ≥ 1');
  if (count === Infinity && (durationUs === Infinity || !(durationUs > 0))) throw new RangeError('durationS must be > 0');
  const autoGrace = opts.graceMs === undefined;
  let graceUs = autoGrace ? GRACE_FLOOR_US : opts.graceMs! * 1000;

  // Per-probe state, indexed by sequence number; probe_id = (base + seq) mod 2^32.
  let cap = count !== Infinity ? count : Math.max(1024, Math.ceil((rate || 100_000) * (durationUs / 1e6) * 1.1));
  let sentAt = new Float64Array(cap);
  let state = new Uint8Array(cap);
  const probeBase = (Math.random() * 2 ** 31) >>> 0; // far below the punch-burst ids (engine.ts PUNCH_PROBE_ID_BASE)
  const rtt = latencyHistogram();
  let scheduled = 0; // sequence numbers used: sent + sendErrors
  let sent = 0;
  let sendErrors = 0;
  let received = 0;
  let lost = 0;
  let late = 0;
  let duplicates = 0;
  let reordered = 0;
  let unmatched = 0;
  let maxSeqSeen = -1;
  let jitter = 0;
  let lastRtt = -1;
  let oldest = 0; // every seq below this is received, lost or never sent
  let graceUpdatedUs = -Infinity;

  const onReply = (r: ReplyEvent): void => {
    if (r.from !== opts.agent) return;
    const seq = ((r.probeId - probeBase) >>> 0);
    if (seq >= scheduled || state[seq] === ST_NOT_SENT) {
      unmatched++;
      return;
    }
    const st = state[seq];
    if (st === ST_RECEIVED) {
      duplicates++;
      return;
    }
    const d = r.recvUs - sentAt[seq]!;
    if (st === ST_LOST || d > graceUs) {
      // After the deadline: lost (if not yet declared), and late — never received, never an RTT.
      if (st === ST_IN_FLIGHT) {
        state[seq] = ST_LOST;
        lost++;
      }
      late++;
      return;
    }
    state[seq] = ST_RECEIVED;
    received++;
    if (seq < maxSeqSeen) reordered++;
    else maxSeqSeen = seq;
    rtt.recordValue(d < 1 ? 1 : Math.round(d));
    if (lastRtt >= 0) jitter += (Math.abs(d - lastRtt) - jitter) / 16; // RFC 3550 §6.4.1
    lastRtt = d;
  };

  /** Raise the automatic deadline from the RTTs seen, then declare lost every probe past it. */
  const sweep = (now: number): void => {
    if (autoGrace && now - graceUpdatedUs >= GRACE_UPDATE_US && rtt.totalCount > 0) {
      graceUpdatedUs = now;
      graceUs = Math.min(GRACE_CEILING_US, Math.max(graceUs, GRACE_RTT_MULTIPLE * rtt.getValueAtPercentile(99)));
    }
    const cutoff = now - graceUs - VERIFY_SETTLE_US;
    while (oldest < scheduled && sentAt[oldest]! <= cutoff) {
      if (state[oldest] === ST_IN_FLIGHT) {
        state[oldest] = ST_LOST;
        lost++;
      }
      oldest++;
    }
  };

  engine.on('reply', onReply);

  const t0 = nowUs();
  let tLast = t0;
  let lastProgress = t0;
  const progressUs = (opts.progressMs ?? 1000) * 1000;
  const report = (now: number): void => {
    if (opts.onProgress === undefined || now - lastProgress < progressUs) return;
    lastProgress = now;
    const el = (now - t0) / 1e6;
    opts.onProgress({ sent, received, lost, late, inFlight: sent - received - lost, sendErrors, target: count, elapsedS: el, ratePps: el > 0 ? sent / el : 0 });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const step = (): void => {
        try {
          const now = nowUs();
          const el = now - t0;
          if (scheduled >= count || el >= durationUs) return resolve();
          let due = rate === 0 ? scheduled + SEND_CHUNK : Math.floor((el * rate) / 1e6) + 1;
          if (due > count) due = count;
          let n = 0;
          while (scheduled < due && n < SEND_CHUNK) {
            if (scheduled === cap) {
              cap *= 2;
              const s2 = new Float64Array(cap);
              s2.set(sentAt);
              sentAt = s2;
              const g2 = new Uint8Array(cap);
              g2.set(state);
              state = g2;
            }
            const seq = scheduled++;
            sentAt[seq] = nowUs();
            try {
              // -1: Node refused the send at once (the engine counts it too); a later kernel refusal is a loss the engine counts in send_errors
              if (engine.sendProbe(opts.agent, opts.host, opts.port, (probeBase + seq) >>> 0, size) < 0) throw new RangeError('send refused');
              state[seq] = ST_IN_FLIGHT;
              tLast = sentAt[seq]!;
              sent++;
            } catch {
              state[seq] = ST_NOT_SENT; // counted, never in `sent`, its probe_id never matched
              sendErrors++;
            }
            n++;
          }
          sweep(now);
          report(now);
          if (scheduled >= count) return resolve();
          // Pace: spin through the event loop when the next probe is due within 2 ms, else sleep.
          const nextDueUs = rate === 0 ? 0 : (scheduled * 1e6) / rate - (nowUs() - t0);
          if (nextDueUs > 2000) setTimeout(step, Math.floor(nextDueUs / 1000) - 1);
          else setImmediate(step);
        } catch (e) {
          reject(e);
        }
      };
      step();
    });
    // Wait out every probe in flight: each ends received or past its deadline (+ settle).
    for (;;) {
      const now = nowUs();
      sweep(now);
      report(now);
      if (received + lost >= sent) break;
      const waitMs = (sentAt[oldest]! + graceUs + VERIFY_SETTLE_US - now) / 1000;
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, Math.ceil(waitMs)))));
    }
  } finally {
    engine.off('reply', onReply);
  }
  const sendSpanS = sent > 1 ? (tLast - t0) / 1e6 + (rate > 0 ? 1 / rate : 0) : rate > 0 ? 1 / rate : 0;
  const n = rtt.totalCount;
  const at = (p: number): number => (n === 0 ? 0 : rtt.getValueAtPercentile(p));
  return {
    sent,
    received,
    lost,
    duplicates,
    reordered,
    rtt_us: { min: n === 0 ? 0 : rtt.minNonZeroValue, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: n === 0 ? 0 : rtt.maxValue },
    jitter_us: Math.round(jitter * 10) / 10,
    offered_pps: sendSpanS > 0 ? Math.round(sent / sendSpanS) : 0,
    achieved_pps: sendSpanS > 0 ? Math.round(received / sendSpanS) : 0,
    throughput_bps: sendSpanS > 0 ? Math.round((received * size * 8) / sendSpanS) : 0,
    duration_s: Math.round(sendSpanS * 1000) / 1000,
    dropped: engine.stats().dropped,
    unmatched,
    late,
    in_flight: sent - received - lost,
    send_errors: sendErrors,
    grace_ms: Math.round(graceUs) / 1000,
    grace_rule: autoGrace ? GRACE_AUTO_RULE : '--grace-ms',
  };
}
