/**
 * The prober: authenticated PROBE bursts at a paced rate, REPLYs matched by probe_id,
 * and the numbers people trust — loss, duplicates, reordering, RTT percentiles, RFC
 * 3550 jitter, offered/achieved rate, throughput.
 *
 * It sends through an {@link Engine} and receives through it too: every REPLY passes the
 * engine's own verification (PROTOCOL.md §4); a forged or replayed reply is dropped and
 * counted there and never reaches the matcher. A REPLY that does match counts once:
 * a second one for the same probe is a duplicate, one for a probe never sent (or given
 * up on) is unmatched — neither is ever a success (PROTOCOL.md §4).
 */
import type { Engine, ReplyEvent } from './engine.js';
import { nowUs } from './clock.js';
import { MIN_DATAGRAM } from './layout.js';
import { type DropCounts, latencyHistogram } from './stats.js';

/** What to probe and how. */
export interface ProbeOptions {
  /** Agent ID of the responder. */
  agent: string;
  /** Its address. */
  host: string;
  /** Its port. */
  port: number;
  /** Probes to send (default 1000 unless `durationS`). */
  count?: number;
  /** Send for this many seconds instead of a count. */
  durationS?: number;
  /** Probes per second; 0 = as fast as the machine goes. Default 1000. */
  rate?: number;
  /** Whole datagram size in bytes (50 … the engine's maxDatagram). Default 84. */
  size?: number;
  /** How long to wait for stragglers after the last send, ms. Default 1000. */
  graceMs?: number;
  /** Called about every `progressMs` with the running figures. */
  onProgress?: (p: ProbeProgress) => void;
  /** Progress period, ms (default 1000). */
  progressMs?: number;
}

/** Running figures. */
export interface ProbeProgress {
  sent: number;
  received: number;
  lost: number;
  target: number;
  elapsedS: number;
  ratePps: number;
}

/** The report (`probe --json` document). */
export interface ProbeReport {
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  reordered: number;
  rtt_us: { min: number; p50: number; p90: number; p99: number; p999: number; max: number };
  jitter_us: number;
  offered_pps: number;
  achieved_pps: number;
  throughput_bps: number;
  duration_s: number;
  dropped: DropCounts;
  /** REPLYs for probes never sent or already given up on (not in the --json contract's required keys; informative). */
  unmatched: number;
}

/** Most probes sent per event-loop turn, so replies keep being read while pacing catches up. */
const SEND_CHUNK = 64;

/**
 * Run one probe burst through `engine` (which must list `opts.agent` as a peer).
 * Resolves with the report once the grace time after the last send has passed.
 */
export async function probe(engine: Engine, opts: ProbeOptions): Promise<ProbeReport> {
  const rate = opts.rate ?? 1000;
  const size = opts.size ?? 84;
  const graceMs = opts.graceMs ?? 1000;
  if (!Number.isFinite(rate) || rate < 0) throw new RangeError('rate must be a number ≥ 0 (0 = as fast as possible)');
  if (!Number.isInteger(size) || size < MIN_DATAGRAM || size > engine.maxDatagram) {
    throw new RangeError(`size must be an integer from ${MIN_DATAGRAM} to ${engine.maxDatagram}`);
  }
  if (!engine.peers.includes(opts.agent)) throw new RangeError(`${opts.agent} is not in the prober's roster`);
  const durationUs = opts.durationS !== undefined ? opts.durationS * 1e6 : Infinity;
  const count = opts.count ?? (opts.durationS !== undefined ? Infinity : 1000);
  if (count !== Infinity && (!Number.isInteger(count) || count < 1)) throw new RangeError('count must be an integer ≥ 1');
  if (count === Infinity && (durationUs === Infinity || !(durationUs > 0))) throw new RangeError('durationS must be > 0');

  // Per-probe state, indexed by sequence number; probe_id = (base + seq) mod 2^32.
  let cap = count !== Infinity ? count : Math.max(1024, Math.ceil((rate || 100_000) * (durationUs / 1e6) * 1.1));
  let sentAt = new Float64Array(cap);
  let got = new Uint8Array(cap);
  const probeBase = (Math.random() * 2 ** 31) >>> 0; // far below the punch-burst ids (engine.ts PUNCH_PROBE_ID_BASE)
  const rtt = latencyHistogram();
  let sent = 0;
  let received = 0;
  let duplicates = 0;
  let reordered = 0;
  let unmatched = 0;
  let maxSeqSeen = -1;
  let jitter = 0;
  let lastRtt = -1;
  let accepting = true;

  const onReply = (r: ReplyEvent): void => {
    if (r.from !== opts.agent) return;
    const seq = ((r.probeId - probeBase) >>> 0);
    if (!accepting || seq >= sent) {
      unmatched++;
      return;
    }
    if (got[seq] === 1) {
      duplicates++;
      return;
    }
    got[seq] = 1;
    received++;
    if (seq < maxSeqSeen) reordered++;
    else maxSeqSeen = seq;
    const d = r.recvUs - sentAt[seq]!;
    rtt.recordValue(d < 1 ? 1 : Math.round(d));
    if (lastRtt >= 0) jitter += (Math.abs(d - lastRtt) - jitter) / 16; // RFC 3550 §6.4.1
    lastRtt = d;
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
    opts.onProgress({ sent, received, lost: sent - received, target: count, elapsedS: el, ratePps: el > 0 ? sent / el : 0 });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const step = (): void => {
        try {
          const now = nowUs();
          const el = now - t0;
          if (sent >= count || el >= durationUs) return resolve();
          let due = rate === 0 ? sent + SEND_CHUNK : Math.floor((el * rate) / 1e6) + 1;
          if (due > count) due = count;
          let n = 0;
          while (sent < due && n < SEND_CHUNK) {
            if (sent === cap) {
              cap *= 2;
              const s2 = new Float64Array(cap);
              s2.set(sentAt);
              sentAt = s2;
              const g2 = new Uint8Array(cap);
              g2.set(got);
              got = g2;
            }
            sentAt[sent] = nowUs();
            engine.sendProbe(opts.agent, opts.host, opts.port, (probeBase + sent) >>> 0, size);
            tLast = sentAt[sent]!;
            sent++;
            n++;
          }
          report(now);
          if (sent >= count) return resolve();
          // Pace: spin through the event loop when the next probe is due within 2 ms, else sleep.
          const nextDueUs = rate === 0 ? 0 : (sent * 1e6) / rate - (nowUs() - t0);
          if (nextDueUs > 2000) setTimeout(step, Math.floor(nextDueUs / 1000) - 1);
          else setImmediate(step);
        } catch (e) {
          reject(e);
        }
      };
      step();
    });
    const graceEnd = Date.now() + graceMs;
    while (received < sent && Date.now() < graceEnd) {
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, graceEnd - Date.now()))));
      report(nowUs());
    }
  } finally {
    accepting = false;
    engine.off('reply', onReply);
  }
  const sendSpanS = sent > 1 ? (tLast - t0) / 1e6 + (rate > 0 ? 1 / rate : 0) : rate > 0 ? 1 / rate : 0;
  const n = rtt.totalCount;
  const at = (p: number): number => (n === 0 ? 0 : rtt.getValueAtPercentile(p));
  return {
    sent,
    received,
    lost: sent - received,
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
  };
}
