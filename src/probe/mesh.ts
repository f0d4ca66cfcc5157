/**
 * Continuous mesh probing (MEASUREMENT.md §4): one agent keeps measuring every peer of
 * its roster through its one engine (one socket, one nonce counter: its PROBEs and its
 * REPLYs share it). Per peer: a schedule — bursts of `burst` PROBEs at `rate` pps every
 * `everyS` seconds, the peers' start times spread over the period so they are not probed
 * in lock-step — and one rolling set of figures (MEASUREMENT.md §1 definitions: sent,
 * received, lost at the deadline, late, duplicate, reordered, unmatched; RTT in an HDR
 * histogram). Memory is bounded for any run length: per-probe state lives in a ring per
 * peer sized by the in-flight window, plus two bits per probe of final states for
 * {@link FINAL_HISTORY_RINGS} rings' worth of older probes; `probe_id` wraps.
 *
 * Each burst, once its last probe's deadline passed, becomes one interval record (the
 * `--json-stream` line and the report's time series).
 */
import { EventEmitter } from 'node:events';
import * as hdr from 'hdr-histogram-js';
import type { Engine, ReplyEvent, SendErrorEvent } from '../engine.js';
import { PUNCH_PROBE_ID_BASE } from '../engine.js';
import { nowUs } from '../clock.js';
import { checkTarget, VERIFY_SETTLE_US } from './prober.js';
import { percentileWithin, within } from './tally.js';
import { latencyHistogram } from '../observe/stats.js';
import { MIN_DATAGRAM, TYPE_PROBE } from '../protocol/wire.js';

/** Where a peer is probed. */
export interface PeerAddress {
  agent: string;
  host: string;
  port: number;
}

/** The schedule of every peer. */
export interface MeshSchedule {
  /** PROBEs per burst, 1–100000. */
  burst: number;
  /** Pace within a burst, pps, 1–1000000. */
  rate: number;
  /** Seconds from one burst's start to the next, > 0. */
  everyS: number;
  /** Datagram size, bytes (50 … the engine's maxDatagram). */
  size: number;
  /** A probe with no reply this many ms after its send is lost (MEASUREMENT.md §1). */
  graceMs: number;
}

/** One peer's figures (cumulative since it joined, or one interval). */
export interface PeerFigures {
  peer: string;
  sent: number;
  received: number;
  lost: number;
  late: number;
  duplicate: number;
  reordered: number;
  unmatched: number;
  send_errors: number;
  /** RTT, µs (0 when nothing was received). */
  rtt_us: { min: number; mean: number; p50: number; p90: number; p99: number; max: number };
}

/** One burst of one peer, final (its deadline passed): a `--json-stream` line. Its RTT figures are exact nearest-rank percentiles of the burst's own samples. */
export interface MeshInterval extends PeerFigures {
  type: 'interval';
  from: string;
  /** Burst start, ISO 8601 UTC. */
  start: string;
  /** Loss of this burst, percent of the probes that were not in flight. */
  loss_pct: number;
}

const ST_FREE = 0;
const ST_IN_FLIGHT = 1;
const ST_RECEIVED = 2;
const ST_LOST = 3;
/** Lost, and its late reply counted: a probe is late at most once, a further reply is a duplicate (MEASUREMENT.md §1). */
const ST_LATE = 4;
/**
 * A peer's cumulative RTT histogram (µs, 3 significant digits: MEASUREMENT.md §2). One per
 * peer, ≈ 110 kB each; a burst's own figures come from its few samples instead (exact,
 * sorted once when the burst is final). Measured (test/e2e/mesh-scale, 32 in-process
 * agents): a new histogram per burst stalled the event loop in GC for 3.8 s, and the
 * packed form made each percentile query cost ~1 ms.
 */
function rttHistogram(): hdr.Histogram {
  return latencyHistogram();
}

/** probe_ids of mesh probes stay below the punch bursts' (engine PUNCH_PROBE_ID_BASE). */
const ID_SPACE = PUNCH_PROBE_ID_BASE;

/**
 * How far back a peer remembers its probes' final states after they left the ring, in
 * rings' worth of probes: two bits per probe (received; answered late), so two bytes per
 * ring slot per peer (≈ 2 kB for each of the 992 peers of test/e2e/mesh-scale; its RTT
 * histogram is ≈ 110 kB). With them a reply to a probe the ring has forgotten is still told
 * apart (MEASUREMENT.md §1): `duplicate` if its probe was received or answered late already
 * (late once per probe), `late` if it was lost. At the agent's defaults (ring 274 probes,
 * 10 a second per peer) that is 2192 probes, 219 s.
 */
const FINAL_HISTORY_RINGS = 8;

/** One peer's schedule, ring and figures. */
class PeerState {
  /** Sequence number of the next probe (probe_id = seq mod ID_SPACE). */
  seq = 0;
  /** Oldest sequence number still in the ring and not final. */
  oldest = 0;
  /** Highest sequence answered so far (reordering, MEASUREMENT.md §1). */
  maxAnswered = -1;
  /** Probes sent and neither answered nor past their deadline. */
  inFlight = 0;
  readonly sentAt: Float64Array;
  readonly state: Uint8Array;
  /** Bit `seq mod (8 × length)`: probe `seq`, gone from the ring, had been received (see {@link FINAL_HISTORY_RINGS}). */
  readonly finals: Uint8Array;
  /** Bit `seq mod (8 × length)`: probe `seq`, gone from the ring, was lost and its late reply counted (as {@link finals}). */
  readonly lateFinals: Uint8Array;
  readonly total: Counts = new Counts();
  readonly rtt: hdr.Histogram = rttHistogram();
  /** RTT sample arrays of finished bursts, reused by the next ones (no garbage per burst). */
  readonly spare: Float64Array[] = [];
  /** Bursts not final yet, oldest first (a burst is final once its last probe's deadline passed). */
  readonly bursts: Burst[] = [];
  /** Next burst's start (µs) and probes left in the current one. */
  nextBurstUs: number;
  left = 0;

  constructor(
    public addr: PeerAddress,
    ringSize: number,
    firstBurstUs: number,
  ) {
    this.sentAt = new Float64Array(ringSize);
    this.state = new Uint8Array(ringSize);
    this.finals = new Uint8Array(Math.ceil((ringSize * FINAL_HISTORY_RINGS) / 8));
    this.lateFinals = new Uint8Array(this.finals.length);
    this.nextBurstUs = firstBurstUs;
  }
}

/** One burst: its probes' sequence numbers and what became of them (one interval record). */
interface Burst {
  startUs: number;
  firstSeq: number;
  /** One past the last probe's sequence number; -1 while the burst is still sending. */
  endSeq: number;
  counts: Counts;
  /** RTTs (µs) of the burst's answered probes: `rttN` of them. */
  rtts: Float64Array;
  rttN: number;
}

/** Counters of one peer. */
class Counts {
  sent = 0;
  received = 0;
  lost = 0;
  late = 0;
  duplicate = 0;
  reordered = 0;
  unmatched = 0;
  sendErrors = 0;
}

/** The counters of {@link PeerFigures}. */
function counted(peer: string, c: Counts): Omit<PeerFigures, 'rtt_us'> {
  return { peer, sent: c.sent, received: c.received, lost: c.lost, late: c.late, duplicate: c.duplicate, reordered: c.reordered, unmatched: c.unmatched, send_errors: c.sendErrors };
}

/**
 * Cumulative figures from the peer's HDR histogram (MEASUREMENT.md §2). Its min and max are
 * the exact values recorded, but a percentile is the top of its bucket and the mean is
 * taken from bucket midpoints (3 significant digits: one RTT of 8000 µs reads p50 8003 and
 * mean 8002): both are clamped into [min, max], where every recorded RTT lies.
 */
function figures(peer: string, c: Counts, h: hdr.Histogram): PeerFigures {
  if (h.totalCount === 0) return { ...counted(peer, c), rtt_us: { min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 } };
  const min = h.minNonZeroValue;
  const max = h.maxValue;
  const at = (p: number): number => percentileWithin(h, p);
  return { ...counted(peer, c), rtt_us: { min, mean: within(Math.round(h.mean), min, max), p50: at(50), p90: at(90), p99: at(99), max } };
}

/** A burst's figures from its sorted RTT samples (exact nearest-rank percentiles). */
function burstFigures(peer: string, c: Counts, sorted: Float64Array): PeerFigures {
  const n = sorted.length;
  const at = (q: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.max(0, Math.ceil((q / 100) * n) - 1))]!);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    ...counted(peer, c),
    rtt_us: { min: n === 0 ? 0 : sorted[0]!, mean: n === 0 ? 0 : Math.round(sum / n), p50: at(50), p90: at(90), p99: at(99), max: n === 0 ? 0 : sorted[n - 1]! },
  };
}

/**
 * The mesh prober of one agent. Events: `'interval'` ({@link MeshInterval}) per finished
 * burst of a peer.
 */
export class MeshProber extends EventEmitter {
  private readonly peers = new Map<string, PeerState>();
  private readonly ringSize: number;
  /** Probes whose final state a peer remembers once they left its ring ({@link FINAL_HISTORY_RINGS}). */
  private readonly historySize: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly onReply = (r: ReplyEvent): void => this.reply(r);
  private readonly onSendError = (e: SendErrorEvent): void => this.refused(e);

  constructor(
    private readonly engine: Engine,
    private readonly schedule: MeshSchedule,
  ) {
    super();
    if (!(Number.isInteger(schedule.burst) && schedule.burst >= 1 && schedule.burst <= 100_000)) throw new RangeError('burst must be an integer from 1 to 100000');
    if (!(schedule.rate >= 1 && schedule.rate <= 1_000_000)) throw new RangeError('rate must be from 1 to 1000000 pps');
    if (!(schedule.everyS > 0 && schedule.everyS <= 86_400)) throw new RangeError('every must be from 0 to 86400 s');
    if (!(Number.isInteger(schedule.graceMs) && schedule.graceMs >= 1 && schedule.graceMs <= 60_000)) throw new RangeError('grace must be an integer from 1 to 60000 ms');
    if (!(Number.isInteger(schedule.size) && schedule.size >= MIN_DATAGRAM && schedule.size <= engine.maxDatagram)) {
      throw new RangeError(`size must be an integer from ${MIN_DATAGRAM} to ${engine.maxDatagram} bytes`);
    }
    // every probe in flight fits: a burst, or rate × (deadline + settle), whichever is more, with room to spare
    this.ringSize = 2 * Math.max(schedule.burst, Math.ceil((schedule.rate * (schedule.graceMs * 1000 + VERIFY_SETTLE_US)) / 1e6)) + 64;
    this.historySize = this.ringSize * FINAL_HISTORY_RINGS;
  }

  /**
   * Probe exactly `targets` from now on (a roster or address change, live): new peers
   * join with their start spread over the period, peers gone stop (their figures go).
   * Throws a `RangeError`, changing nothing, when a host or port is not one a lane can
   * send to ({@link checkTarget}).
   */
  setTargets(targets: readonly PeerAddress[]): void {
    for (const t of targets) checkTarget(t.host, t.port); // all or nothing
    const now = nowUs();
    const periodUs = this.schedule.everyS * 1e6;
    const keep = new Set(targets.map((t) => t.agent));
    for (const a of [...this.peers.keys()]) if (!keep.has(a)) this.peers.delete(a);
    const fresh = targets.filter((t) => !this.peers.has(t.agent));
    targets.forEach((t) => {
      const p = this.peers.get(t.agent);
      if (p !== undefined) p.addr = t;
    });
    fresh.forEach((t, i) => this.peers.set(t.agent, new PeerState(t, this.ringSize, now + (periodUs * i) / Math.max(1, fresh.length))));
  }

  /** The peers probed now. */
  get targets(): PeerAddress[] {
    return [...this.peers.values()].map((p) => p.addr);
  }

  /** When each peer's next burst starts, µs since the epoch (the schedule's spread, for tests). */
  nextBursts(): Map<string, number> {
    return new Map([...this.peers].map(([a, p]) => [a, p.nextBurstUs]));
  }

  /** Start probing. */
  start(): void {
    if (this.timer !== null) return;
    this.engine.addReplySink(this.onReply); // synchronous, one reused object; also the copies dropped as replay (duplicates)
    this.engine.on('send_error', this.onSendError);
    // as often as the pace needs, between 1 and 20 ms (a tick sends every probe due by then)
    this.timer = setInterval(() => this.tick(), Math.max(1, Math.min(20, Math.floor(1000 / this.schedule.rate))));
  }

  /** Stop sending; resolves once every probe in flight got its reply or passed its deadline. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const p of this.peers.values()) {
      p.left = 0;
      const b = p.bursts[p.bursts.length - 1];
      if (b !== undefined && b.endSeq < 0) b.endSeq = p.seq; // the burst cut short ends here
    }
    const end = Date.now() + this.schedule.graceMs + VERIFY_SETTLE_US / 1000 + 100;
    while (Date.now() < end && [...this.peers.values()].some((p) => p.inFlight > 0)) {
      await new Promise((r) => setTimeout(r, 10));
      this.sweep(nowUs());
    }
    this.sweep(Infinity); // past every deadline now: in flight is 0, every burst reported
    this.engine.removeReplySink(this.onReply);
    this.engine.off('send_error', this.onSendError);
  }

  /** Cumulative figures of every peer. */
  figures(): PeerFigures[] {
    return [...this.peers.values()].map((p) => figures(p.addr.agent, p.total, p.rtt));
  }

  /** Cumulative RTT histograms (µs) by peer: the metrics read them at scrape time. */
  histograms(): Array<{ peer: string; histogram: hdr.Histogram }> {
    return [...this.peers.values()].map((p) => ({ peer: p.addr.agent, histogram: p.rtt }));
  }

  private tick(): void {
    const now = nowUs();
    const s = this.schedule;
    for (const p of this.peers.values()) {
      if (p.left === 0 && now >= p.nextBurstUs) {
        p.left = s.burst;
        p.bursts.push({ startUs: now, firstSeq: p.seq, endSeq: -1, counts: new Counts(), rtts: p.spare.pop() ?? new Float64Array(s.burst), rttN: 0 });
        p.nextBurstUs += s.everyS * 1e6;
        if (p.nextBurstUs < now) p.nextBurstUs = now + s.everyS * 1e6; // fell behind (a stall): skip, never bunch bursts
      }
      if (p.left > 0) {
        // probes due by now at `rate`, from the burst's start
        const b = p.bursts[p.bursts.length - 1]!;
        const due = Math.min(s.burst, Math.floor(((now - b.startUs) * s.rate) / 1e6) + 1) - (s.burst - p.left);
        for (let i = 0; i < due; i++) this.send(p, b);
        if (p.left === 0) b.endSeq = p.seq;
      }
    }
    this.sweep(now);
  }

  private send(p: PeerState, b: Burst): void {
    const seq = p.seq;
    const slot = seq % this.ringSize;
    if (p.state[slot] === ST_IN_FLIGHT) this.finish(p, seq - this.ringSize, ST_LOST); // cannot happen with the ring's size; counted if it does
    p.left--;
    let ok: boolean;
    const before = nowUs(); // the stamp's floor: a packet queued behind another leaves lastSendUs at that one's (older) stamp
    try {
      ok = this.engine.trySendProbe(p.addr.agent, p.addr.host, p.addr.port, seq % ID_SPACE, this.schedule.size); // false: refused during the call
    } catch {
      ok = false; // left the roster since: nothing sent
    }
    if (!ok) {
      p.total.sendErrors++;
      b.counts.sendErrors++;
      return;
    }
    // the send time is the lane's stamp at its send call (MEASUREMENT.md §1 "Sent"), not the
    // tick's start: a tick sends every peer's due probes one after another, and each one
    // signed and sent before this one would otherwise be in this one's RTT. A stamp older
    // than the call (another packet's: this one queued behind it) or NaN (queued behind a
    // full socket buffer) gives the time just before the call, as the prober does.
    const at = this.engine.lastSendUs();
    const gone = seq - this.ringSize; // the probe this one replaces in the ring: its final state goes to the history
    if (gone >= 0) this.remember(p, gone, p.state[slot]!);
    p.sentAt[slot] = at >= before ? at : before;
    p.state[slot] = ST_IN_FLIGHT;
    p.inFlight++;
    p.seq = seq + 1;
    p.total.sent++;
    b.counts.sent++;
  }

  /**
   * A probe refused after engine.sendProbe returned (MEASUREMENT.md §1 "Sent": it never
   * left; the dgram lane reports refusals later, and any lane those of a queued send): it
   * moves from sent to send_errors, in the totals and its burst. (One refused during the
   * call made sendProbe return -1: {@link send} counted it.)
   */
  private refused(e: SendErrorEvent): void {
    if (e.type !== TYPE_PROBE) return;
    const p = this.peers.get(e.agent);
    if (p === undefined || e.probeId >= ID_SPACE) return;
    const seq = this.seqOf(p, e.probeId);
    if (seq < p.seq - this.ringSize || seq < 0) return; // gone from the ring: long decided
    const slot = seq % this.ringSize;
    if (p.state[slot] !== ST_IN_FLIGHT) return; // decided already: stays as counted
    p.state[slot] = ST_FREE;
    p.inFlight--;
    p.total.sent--;
    p.total.sendErrors++;
    const b = this.burstOf(p, seq);
    if (b !== null) {
      b.counts.sent--;
      b.counts.sendErrors++;
    }
  }

  /**
   * The sequence number `probeId` stands for: the latest one sent with that id (probe_id =
   * seq mod ID_SPACE, MEASUREMENT.md §4: it wraps); negative when this run never sent it.
   * Below `p.seq - ringSize` the ring no longer holds it (see {@link forgotten}).
   */
  private seqOf(p: PeerState, probeId: number): number {
    const back = (p.seq - 1 - probeId) % ID_SPACE;
    return p.seq - 1 - ((back + ID_SPACE) % ID_SPACE);
  }

  /** Keep probe `seq`'s final state `st` (received, answered late, or neither) as it leaves the ring: two bits, no allocation. */
  private remember(p: PeerState, seq: number, st: number): void {
    const h = seq % this.historySize;
    const bit = 1 << (h & 7);
    if (st === ST_RECEIVED) p.finals[h >> 3]! |= bit;
    else p.finals[h >> 3]! &= ~bit;
    if (st === ST_LATE) p.lateFinals[h >> 3]! |= bit;
    else p.lateFinals[h >> 3]! &= ~bit;
  }

  /**
   * A reply to a probe this run sent (0 ≤ seq < p.seq) that has left the ring: its probe was
   * final long ago (MEASUREMENT.md §1). Within the history ({@link FINAL_HISTORY_RINGS}) it
   * is a `duplicate` if its probe was received or answered late already, else `late` (lost;
   * a probe refused after its send never left, so no reply for it can come) and the probe
   * marked answered late: late once per probe. Older than the history it is counted
   * `unmatched`, as prober.ts does beyond its history: its probe's fate is no longer known,
   * and `late` (a subset of `lost`) or `duplicate` could each be false.
   */
  private forgotten(p: PeerState, seq: number, replay: boolean): void {
    if (seq < p.seq - this.ringSize - this.historySize) {
      if (!replay) p.total.unmatched++;
      return;
    }
    const h = seq % this.historySize;
    const bit = 1 << (h & 7);
    const received = (p.finals[h >> 3]! & bit) !== 0;
    const answeredLate = (p.lateFinals[h >> 3]! & bit) !== 0;
    const b = this.burstOf(p, seq);
    if (received || (answeredLate && !replay)) {
      // received: any further reply, copy or not; answered late: a distinct REPLY (late once per probe)
      p.total.duplicate++;
      if (b !== null) b.counts.duplicate++;
    } else if (!replay && !answeredLate) {
      p.lateFinals[h >> 3]! |= bit; // late now, once: a further reply is a duplicate
      p.total.late++;
      if (b !== null) b.counts.late++;
    } // else a copy of a late reply (its first copy was counted late): nothing to add
  }

  /** The burst probe `seq` belongs to, if it is not final yet. */
  private burstOf(p: PeerState, seq: number): Burst | null {
    for (let i = p.bursts.length - 1; i >= 0; i--) {
      const b = p.bursts[i]!;
      if (seq >= b.firstSeq) return b.endSeq < 0 || seq < b.endSeq ? b : null;
    }
    return null;
  }

  /**
   * A verified REPLY (MEASUREMENT.md §1), judged by its receive stamp `r.recvUs`, not by when
   * it is handled: stamped after its probe's deadline, it is late (its probe lost if not yet
   * declared) — never received, never an RTT — as prober.ts's `d > graceUs`; stamped in time
   * but handled after the deadline, it is received (the sweep waits {@link VERIFY_SETTLE_US}).
   * A copy of a REPLY already accepted (`r.replay`: the network duplicated it) is a
   * `duplicate` when its probe was received, and nothing more otherwise: its first copy
   * was counted (late, unmatched) already. A probe is late at most once (`late` ⊆ `lost`):
   * a distinct REPLY (fresh nonce, so no replay drop) for a probe answered late already —
   * the responder or a relay sent it again — is a `duplicate`, as one for a probe received
   * (PROTOCOL.md §4 "a second REPLY for the same probe is a duplicate").
   */
  private reply(r: ReplyEvent): void {
    const p = this.peers.get(r.from);
    if (p === undefined || r.probeId >= ID_SPACE) return;
    const seq = this.seqOf(p, r.probeId);
    if (seq < 0) {
      if (!r.replay) p.total.unmatched++; // an id this run never sent (MEASUREMENT.md §1 "Unmatched")
      return;
    }
    if (seq < p.seq - this.ringSize) {
      this.forgotten(p, seq, r.replay);
      return;
    }
    const slot = seq % this.ringSize;
    const st = p.state[slot];
    const b = this.burstOf(p, seq); // null once its interval was reported: the total still counts
    const d = r.recvUs - p.sentAt[slot]!;
    if (st === ST_RECEIVED) {
      p.total.duplicate++;
      if (b !== null) b.counts.duplicate++;
    } else if (r.replay) return; // its first copy was counted (late), or it is older than the replay window (PROTOCOL.md §5)
    else if (st === ST_LATE) {
      p.total.duplicate++; // a further, distinct REPLY for a probe answered late: late once per probe
      if (b !== null) b.counts.duplicate++;
    } else if (st === ST_LOST || (st === ST_IN_FLIGHT && d > this.schedule.graceMs * 1000)) {
      if (st === ST_IN_FLIGHT) this.finish(p, seq, ST_LOST); // arrived after its deadline: lost, whenever the sweep would have said so
      p.state[slot] = ST_LATE; // a further reply is a duplicate
      p.total.late++;
      if (b !== null) b.counts.late++;
    } else if (st === ST_IN_FLIGHT) {
      const rtt = Math.max(1, Math.round(d));
      p.state[slot] = ST_RECEIVED;
      p.inFlight--;
      p.rtt.recordValue(rtt);
      p.total.received++;
      const reordered = seq < p.maxAnswered;
      if (reordered) p.total.reordered++;
      else p.maxAnswered = seq;
      if (b !== null) {
        b.rtts[b.rttN++] = rtt;
        b.counts.received++;
        if (reordered) b.counts.reordered++;
      }
    } else p.total.unmatched++; // refused after its send (send_error): it never left
  }

  /**
   * Declare lost what passed its deadline and the settle margin after it ({@link
   * VERIFY_SETTLE_US}, as prober.ts's sweep: a reply stamped in time may still be on its
   * way through verification); close intervals whose last probe is final.
   */
  private sweep(now: number): void {
    const cutoff = now - this.schedule.graceMs * 1000 - VERIFY_SETTLE_US;
    for (const p of this.peers.values()) {
      while (p.oldest < p.seq && p.sentAt[p.oldest % this.ringSize]! <= cutoff) {
        if (p.state[p.oldest % this.ringSize] === ST_IN_FLIGHT) this.finish(p, p.oldest, ST_LOST);
        p.oldest++;
      }
      // a burst is final once every probe of it is (its last deadline passed): report it, oldest first
      while (p.bursts.length > 0 && p.bursts[0]!.endSeq >= 0 && p.oldest >= p.bursts[0]!.endSeq) this.closeInterval(p, p.bursts.shift()!);
    }
  }

  private finish(p: PeerState, seq: number, st: number): void {
    p.state[seq % this.ringSize] = st;
    if (st === ST_LOST) {
      p.inFlight--;
      p.total.lost++;
      const b = this.burstOf(p, seq);
      if (b !== null) b.counts.lost++;
    }
  }

  private closeInterval(p: PeerState, b: Burst): void {
    const f = burstFigures(p.addr.agent, b.counts, b.rtts.subarray(0, b.rttN).sort());
    const judged = f.received + f.lost;
    const rec: MeshInterval = { type: 'interval', from: this.engine.agent, start: new Date(b.startUs / 1000).toISOString(), ...f, loss_pct: judged === 0 ? 0 : (100 * f.lost) / judged };
    p.spare.push(b.rtts);
    this.emit('interval', rec);
  }
}
