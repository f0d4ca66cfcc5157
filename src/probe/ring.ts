/**
 * Per-probe state of a run, bounded by the in-flight window (MEASUREMENT.md §4): a ring
 * indexed by sequence number (`seq & mask`), sized to a power of two ≥ 2 × rate ×
 * (deadline + settle) and grown only when an entry it would overwrite is still
 * undecided or younger than two deadlines — never by run length. A 24 h run at 50 kpps
 * with a 1 s deadline holds 2^17 entries (17 bytes each, ≈ 2.2 MB), not 4.3 G.
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
  /** {@link ST_IN_FLIGHT} … {@link ST_NOT_SENT}; 0 = never used. */
  state: Uint8Array;
  /** RTT of a received entry, µs (for IPDV of consecutive pairs, RFC 5481), else -1. */
  rtt: Float64Array;
  private mask: number;
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
  }

  /** Entries the ring holds now. */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Bytes of per-probe state (the bounded-memory claim, MEASUREMENT.md §4). */
  get bytes(): number {
    return this.capacity * 17;
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
    this.sentAt[i] = t;
    this.state[i] = ST_IN_FLIGHT;
    this.rtt[i] = -1;
    this.scheduled = seq + 1;
    return seq;
  }

  /** Slot index of `seq` (valid while `scheduled - capacity <= seq < scheduled`). */
  slot(seq: number): number {
    return seq & this.mask;
  }

  /** Is `seq` still held by the ring? */
  holds(seq: number): boolean {
    return seq >= 0 && seq < this.scheduled && seq >= this.scheduled - this.capacity;
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
    this.grown++;
  }
}
