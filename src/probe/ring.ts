/**
 * Per-probe state of a run, bounded by the in-flight window (MEASUREMENT.md §4): a ring
 * indexed by sequence number (`seq & mask`), sized to a power of two ≥ 2 × rate ×
 * (deadline + settle) and grown only when an entry it would overwrite is still
 * undecided or younger than two deadlines — never by run length.
 *
 * An entry the ring reuses leaves its final state (received, lost, lost and answered
 * late, never sent) in a history of 2 bits per probe covering the {@link HISTORY_PER_ENTRY}
 * × capacity probes before those the ring holds — at least 64 deadlines of sending at the
 * rate the ring was sized for — so a reply arriving long after its probe is still told
 * apart (MEASUREMENT.md §1): a duplicate if its probe was received or already answered
 * late, late if it was lost ({@link ProbeRing.answeredLate} then marks it, in the ring or
 * the history: late once per probe). Only a reply older than that history finds its
 * probe's fate forgotten ({@link fateOf}).
 * A 24 h run at 50 kpps with a 1 s deadline holds 2^17 entries (17 bytes each in the ring
 * plus 8 of history, ≈ 3.3 MB), not 4.3 G.
 *
 * `seq` is the run's own counter (a JS number, exact to 2^53); the wire carries
 * `probe_id = (base + seq) mod 2^32`, so probe_id wraps safely: a reply's probe_id is
 * mapped back to the nearest `seq` already scheduled ({@link seqOf}).
 */

/** Entry states. */
export const ST_IN_FLIGHT = 1;
export const ST_RECEIVED = 2;
export const ST_LOST = 3;
/** The send threw: the probe never left (never in `sent`, its probe_id never matched). */
export const ST_NOT_SENT = 4;
/**
 * Lost, and a late reply for it was counted (MEASUREMENT.md §1 "Late"): a probe is late at
 * most once, any further reply for it is a duplicate. History code 1 (`5 & 3`): the code of
 * no other state that leaves the ring (in flight, 1, never does).
 */
export const ST_LATE = 5;
/** Returned by {@link ProbeRing.fateOf} (never stored): the probe is older than the history, its fate no longer known. */
export const ST_FORGOTTEN = 6;

/**
 * Probes of history per ring entry: 2 bits each, so 8 bytes per entry (the ring's own
 * entry is 17): the history reaches 32 ring lengths back, and the ring holds at least two
 * deadlines of sending, so a reply up to 64 deadlines after its probe is still classified.
 */
export const HISTORY_PER_ENTRY = 32;
/**
 * A history code is the low two bits of the entry's final state: received 2, lost 3,
 * never sent 4 → 0, answered late 5 → 1 (in flight, 1, never leaves the ring). Back to the
 * state by this table.
 */
const STATE_OF_CODE = [ST_NOT_SENT, ST_LATE, ST_RECEIVED, ST_LOST] as const;

const TWO_32 = 4294967296;

/** Smallest power of two ≥ n (n ≥ 1). */
function pow2(n: number): number {
  let c = 1024;
  while (c < n) c *= 2;
  return c;
}

/** The ring of per-probe entries; see the file header. */
export class ProbeRing {
  /** Send time of each entry, µs (the prober's clock, taken right before the send). */
  sentAt: Float64Array;
  /** {@link ST_IN_FLIGHT} … {@link ST_LATE}; 0 = never used. */
  state: Uint8Array;
  /** RTT of a received entry, µs (for IPDV of consecutive pairs, RFC 5481), else -1. */
  rtt: Float64Array;
  private mask: number;
  /** Final states of the probes that left the ring, 2 bits each (16 a word), indexed by `seq & historyMask`. */
  private history: Uint32Array;
  private historyMask: number;
  /** Every seq below this has left the ring (its state is in the history); the ring holds `archived … scheduled - 1`. */
  private archived = 0;
  /** No seq below this has a state in the history (raised when the history doubles: its new half is empty). */
  private historyFrom = 0;
  /** Sequence numbers used so far (sent + send errors). */
  scheduled = 0;
  /** Every seq below this is received, lost or never sent (the oldest possibly in flight). */
  oldest = 0;
  /** Times the ring doubled (reported: a ring that keeps growing means the deadline grew). */
  grown = 0;

  constructor(expectedInFlight: number) {
    const cap = pow2(Math.max(1024, Math.ceil(2 * expectedInFlight)));
    this.sentAt = new Float64Array(cap);
    this.state = new Uint8Array(cap);
    this.rtt = new Float64Array(cap);
    this.mask = cap - 1;
    this.history = new Uint32Array((cap * HISTORY_PER_ENTRY) / 16);
    this.historyMask = cap * HISTORY_PER_ENTRY - 1;
  }

  /** Entries the ring holds now. */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Bytes of per-probe state, the ring's and its history's (the bounded-memory claim, MEASUREMENT.md §4). */
  get bytes(): number {
    return this.capacity * 17 + this.history.byteLength;
  }

  /**
   * Take the next sequence number for a probe sent at `t` µs. `keepUs`: an entry younger
   * than this (two deadlines) is never overwritten, so a duplicate or late reply for it is
   * still told apart exactly; the ring doubles instead.
   */
  next(t: number, keepUs: number): number {
    const seq = this.scheduled;
    const evict = seq - this.capacity;
    // Every operand is evaluated on every call (no short-circuit; evict's slot is seq's, the
    // capacity being a power of two), so the ring's first wrap runs code the JIT has type
    // feedback for: a load first reached mid-run deoptimises the pacing loop it is inlined
    // into (seen with --trace-deopt at the first wrap, 3.3 s into a run at 10 k pps).
    const wrapped = evict >= 0;
    const undecided = evict >= this.oldest;
    const young = this.sentAt[seq & this.mask]! > t - keepUs;
    if (wrapped && (undecided || young)) this.grow();
    const i = seq & this.mask;
    // The entry this one replaces (decided and past two deadlines, or the ring grew) leaves
    // its final state in the history. After a grow `gone` is below `archived` (its slot is
    // empty; it left earlier) and before the first wrap it is negative: nothing leaves, and
    // the write below stores the word back unchanged. Branch-free, so the first wrap runs
    // no code the JIT has not seen (as above).
    const gone = seq - this.capacity;
    const leaves = +(gone >= this.archived); // 1 or 0
    const keep = -leaves; // all bits or none
    const h = gone & this.historyMask;
    const w = h >>> 4;
    const sh = (h & 15) << 1;
    this.history[w] = (this.history[w]! & ~((3 << sh) & keep)) | (((this.state[i]! & 3) << sh) & keep);
    this.archived += leaves * (gone + 1 - this.archived);
    this.sentAt[i] = t;
    this.state[i] = ST_IN_FLIGHT;
    this.rtt[i] = -1;
    this.scheduled = seq + 1;
    return seq;
  }

  /** Slot index of `seq` (valid while {@link holds}). */
  slot(seq: number): number {
    return seq & this.mask;
  }

  /** Is `seq` still held by the ring (scheduled, its entry not yet reused)? */
  holds(seq: number): boolean {
    return seq >= this.archived && seq < this.scheduled;
  }

  /**
   * The final state of a probe the ring no longer holds: {@link ST_RECEIVED},
   * {@link ST_LOST}, {@link ST_LATE} or {@link ST_NOT_SENT} while it is in the history (the
   * {@link HISTORY_PER_ENTRY} × capacity probes before the ring's), else
   * {@link ST_FORGOTTEN} (older, or still in the ring: ask {@link holds} first).
   */
  fateOf(seq: number): number {
    if (!(seq < this.archived && seq >= this.historyFrom && seq >= this.archived - this.historyMask - 1)) return ST_FORGOTTEN;
    const h = seq & this.historyMask;
    return STATE_OF_CODE[(this.history[h >>> 4]! >>> ((h & 15) << 1)) & 3]!;
  }

  /**
   * Lost probe `seq` got its late reply (MEASUREMENT.md §1 "Late"): it becomes
   * {@link ST_LATE} where its state is kept — its ring entry, or its 2 bits of history — so
   * a further reply for it is a duplicate, never late again. Nothing for a probe in neither
   * or not lost. No allocation (the reply path calls it).
   */
  answeredLate(seq: number): void {
    if (this.holds(seq)) {
      const i = seq & this.mask;
      if (this.state[i] === ST_LOST) this.state[i] = ST_LATE;
      return;
    }
    if (this.fateOf(seq) !== ST_LOST) return;
    const h = seq & this.historyMask;
    const sh = (h & 15) << 1;
    this.history[h >>> 4] = (this.history[h >>> 4]! & ~(3 << sh)) | ((ST_LATE & 3) << sh);
  }

  /**
   * The seq a reply's `probeId` stands for: the latest scheduled seq with that value
   * mod 2^32 (relative to `base`), or -1 when no such seq was ever scheduled.
   */
  seqOf(probeId: number, base: number): number {
    if (this.scheduled === 0) return -1;
    const top = this.scheduled - 1;
    const s32 = (probeId - base) >>> 0;
    const behind = (((top - s32) % TWO_32) + TWO_32) % TWO_32;
    return top - behind; // may be < 0: never scheduled
  }

  private grow(): void {
    const old = this.capacity;
    const cap = old * 2;
    const sentAt = new Float64Array(cap);
    const state = new Uint8Array(cap);
    const rtt = new Float64Array(cap);
    const from = Math.max(0, this.scheduled - old);
    for (let s = from; s < this.scheduled; s++) {
      const a = s & this.mask;
      const b = s & (cap - 1);
      sentAt[b] = this.sentAt[a]!;
      state[b] = this.state[a]!;
      rtt[b] = this.rtt[a]!;
    }
    this.sentAt = sentAt;
    this.state = state;
    this.rtt = rtt;
    this.mask = cap - 1;
    // The history doubles too (it stays HISTORY_PER_ENTRY ring lengths). Both halves start
    // as copies of the old one: a seq the old history held is at `seq & historyMask` in one
    // of them (the new mask has one more bit) with its own code; the other half's codes
    // belong to seqs below `historyFrom`, never read, overwritten as probes leave the ring.
    const history = new Uint32Array(this.history.length * 2);
    history.set(this.history, 0);
    history.set(this.history, this.history.length);
    this.historyFrom = Math.max(this.historyFrom, this.archived - this.historyMask - 1);
    this.history = history;
    this.historyMask = history.length * 16 - 1;
    this.grown++;
  }
}
