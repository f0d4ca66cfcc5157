/**
 * The replay check (PROTOCOL.md §4 c4, §5): per-sender high-water marks of the u64
 * nonce, strict mode or an RFC 6479-style sliding window, plus the restart fence.
 *
 * State moves only on accept: a datagram dropped by any check never reaches this
 * filter, and one the filter drops changes nothing. Nonces are handled as (hi, lo) u32
 * pairs so that no BigInt is allocated per datagram.
 */
import { V_ACCEPT, V_REPLAY, V_STALE } from './verdict.js';

/** Largest `replayWindow` (PROTOCOL.md §5). */
export const MAX_REPLAY_WINDOW = 8192;
/** Bits per bitmap word. */
const WORD_BITS = 32;

/** Validate `replayWindow`: 0 (strict) or a multiple of 64 up to 8192 (PROTOCOL.md §5). */
export function assertReplayWindow(w: unknown, what = 'options.replayWindow'): asserts w is number {
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > MAX_REPLAY_WINDOW || w % 64 !== 0) {
    throw new RangeError(`${what} must be 0 (strict) or a multiple of 64 up to ${MAX_REPLAY_WINDOW}`);
  }
}

/**
 * Replay state of every sender, indexed by stable peer index.
 * `check()` is the whole c4 decision plus the restart fence; it commits on accept.
 */
export class ReplayFilter {
  /** 0 = strict; else the window W. */
  readonly window: number;
  private readonly words: number; // bitmap words per peer, a power of two ≥ W/32 + 1
  private capacity = 0;
  private seen = new Uint8Array(0);
  /** The mark's halves as signed int32 (compared as unsigned): small integers, never boxed when passed on. */
  private hwmHi = new Int32Array(0);
  private hwmLo = new Int32Array(0);
  private bitmap = new Uint32Array(0);

  constructor(replayWindow: number, peers = 16) {
    assertReplayWindow(replayWindow);
    this.window = replayWindow;
    let words = 1;
    while (words < replayWindow / WORD_BITS + 1) words <<= 1;
    this.words = replayWindow === 0 ? 0 : words;
    this.ensure(peers);
  }

  /** Make room for peer indices below `peers` (grows; never on the per-datagram path). */
  ensure(peers: number): void {
    if (peers <= this.capacity) return;
    let cap = Math.max(16, this.capacity);
    while (cap < peers) cap <<= 1;
    const grow = <T extends Uint8Array | Int32Array | Uint32Array>(old: T, n: number, make: (n: number) => T): T => {
      const a = make(n);
      a.set(old);
      return a;
    };
    this.seen = grow(this.seen, cap, (n) => new Uint8Array(n));
    this.hwmHi = grow(this.hwmHi, cap, (n) => new Int32Array(n));
    this.hwmLo = grow(this.hwmLo, cap, (n) => new Int32Array(n));
    this.bitmap = grow(this.bitmap, cap * this.words, (n) => new Uint32Array(n));
    this.capacity = cap;
  }

  /** True once a packet of `peer` has been accepted (it has a high-water mark). */
  hasMark(peer: number): boolean {
    return peer < this.capacity && this.seen[peer] === 1;
  }

  /** The high-water mark of `peer` as a BigInt, or null (tools and tests). */
  mark(peer: number): bigint | null {
    return this.hasMark(peer) ? (BigInt(this.hwmHi[peer]! >>> 0) << 32n) | BigInt(this.hwmLo[peer]! >>> 0) : null;
  }

  /**
   * Judge nonce `hi:lo` of `peer` (stable index below the `ensure`d count) whose MAC and
   * clock already passed. `preStart`: its `send_ts_us` is before the receiver's start.
   * Returns V_ACCEPT (state updated), V_STALE (restart fence) or V_REPLAY.
   *
   * The halves travel as signed int32 (`| 0`) and are compared as unsigned in locals: an
   * unsigned one of 2^31 or more is a float in V8, boxed on the heap when passed to a
   * call the JIT does not inline (measured: ~32 bytes a datagram in some runs).
   */
  check(peer: number, hi: number, lo: number, preStart: boolean): number {
    hi |= 0;
    lo |= 0;
    if (this.seen[peer] === 0) {
      if (preStart) return V_STALE; // restart fence, PROTOCOL.md §5
      this.seen[peer] = 1;
      this.hwmHi[peer] = hi;
      this.hwmLo[peer] = lo;
      if (this.words !== 0) {
        this.bitmap.fill(0, peer * this.words, (peer + 1) * this.words);
        this.setBit(peer, hi, lo);
      }
      return V_ACCEPT;
    }
    const mHi = this.hwmHi[peer]!;
    const mLo = this.hwmLo[peer]!;
    const uHi = hi >>> 0;
    const uLo = lo >>> 0;
    const umHi = mHi >>> 0;
    const umLo = mLo >>> 0;
    if (uHi > umHi || (uHi === umHi && uLo > umLo)) {
      if (this.words !== 0) this.advance(peer, mHi, mLo, hi, lo);
      this.hwmHi[peer] = hi;
      this.hwmLo[peer] = lo;
      return V_ACCEPT;
    }
    if (this.words === 0) return V_REPLAY; // strict mode
    // Restart fence in window mode (PROTOCOL.md §5): below the mark, a datagram sent
    // before this process started may have been accepted by the previous one — whose
    // bitmap is gone — so it counts as seen.
    if (preStart) return V_REPLAY;
    // distance d = hwm - nonce >= 0; inside the window when d < W
    const dHi = umLo >= uLo ? umHi - uHi : umHi - uHi - 1;
    const dLo = (umLo - uLo) >>> 0;
    if (dHi !== 0 || dLo >= this.window) return V_REPLAY;
    const w = peer * this.words + (((hi << 27) | (lo >>> 5)) & (this.words - 1));
    const bit = 1 << (lo & 31);
    if ((this.bitmap[w]! & bit) !== 0) return V_REPLAY;
    this.bitmap[w] = this.bitmap[w]! | bit;
    return V_ACCEPT;
  }

  private setBit(peer: number, hi: number, lo: number): void {
    const w = peer * this.words + (((hi << 27) | (lo >>> 5)) & (this.words - 1));
    this.bitmap[w] = this.bitmap[w]! | (1 << (lo & 31));
  }

  /** Move the window from `m` to `n > m` (halves as signed int32): clear the words passed over, then mark `n` (RFC 6479 §2). */
  private advance(peer: number, mHi: number, mLo: number, hi: number, lo: number): void {
    const words = this.words;
    const base = peer * words;
    const dHi = lo >>> 0 >= mLo >>> 0 ? (hi >>> 0) - (mHi >>> 0) : (hi >>> 0) - (mHi >>> 0) - 1;
    const dLo = (lo - mLo) >>> 0;
    if (dHi !== 0 || dLo >= words * WORD_BITS) {
      this.bitmap.fill(0, base, base + words);
    } else {
      const from = ((mHi << 27) | (mLo >>> 5)) >>> 0;
      const to = ((hi << 27) | (lo >>> 5)) >>> 0;
      const steps = Math.min((to - from) >>> 0, words);
      for (let s = 1; s <= steps; s++) this.bitmap[base + ((from + s) & (words - 1))] = 0;
    }
    this.setBit(peer, hi, lo);
  }
}
