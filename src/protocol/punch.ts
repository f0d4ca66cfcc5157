/**
 * PUNCH_HINT policy (PROTOCOL.md §2 "PUNCH_HINT payload", §4 "Accepted PUNCH_HINT →
 * burst, subject to the limits in §2").
 *
 * A verified hint asks the receiver to send a short burst of PROBEs to a peer at an
 * address (NAT hole punching). The MAC only proves the hint came from a roster member;
 * it says nothing about whether that member is honest. So the receiver acts only if
 *   1. the target is a known peer                       (else `unknown_target`),
 *   2. the address is one a burst may go to: not unspecified, multicast, broadcast or
 *      reserved, port not 0, no IPv4 address disguised inside an IPv6 one
 *                                                       (else `bad_address`),
 *   3. it is not loopback, unless explicitly allowed     (else `loopback_not_allowed`),
 *   4. a token bucket per target and one overall both have room (else `rate_limited`),
 * tested in that order; each refusal is counted under its name. However many hints a
 * compromised peer sends, the agent sends at most `punchBurst` PROBEs per granted hint
 * and grants at most what the buckets allow (see {@link PunchPolicy}).
 *
 * The decision ({@link PunchPolicy.judge}, {@link PunchPolicy.judgeHint}) is hot-path
 * code: numbers in, a number out; it never throws, logs or allocates — the refusal
 * path is the one a flood exercises. Only a granted hint (rate limited) pays for
 * formatting the address ({@link formatHintAddress}).
 */
import { HINT_LEN_V4, HINT_LEN_V6, HINT_OFF_ADDR, HINT_OFF_FAMILY, HINT_OFF_PORT, HINT_OFF_TARGET, SENDER_ID_LEN } from './wire.js';
import { readU32 } from './codec.js';
import { intOption } from '../options.js';

// ---- refusal codes -------------------------------------------------------------------

/** Refusal: the target sender_id is not a known peer (PROTOCOL.md §2). */
export const PUNCH_UNKNOWN_TARGET = -1;
/** Refusal: unspecified, multicast, broadcast or reserved address, port 0, or an IPv4 address disguised as IPv6 (PROTOCOL.md §2). */
export const PUNCH_BAD_ADDRESS = -2;
/** Refusal: a loopback address while `allowLoopback` is false (PROTOCOL.md §2 "loopback only when explicitly allowed"). */
export const PUNCH_LOOPBACK_NOT_ALLOWED = -3;
/** Refusal: the target's or the overall token bucket is empty (PROTOCOL.md §2 "a rate limit (per target and overall) has room"). */
export const PUNCH_RATE_LIMITED = -4;

/** Canonical refusal names, in the order they are tested (PROTOCOL.md §2). */
export const PUNCH_REFUSALS = ['unknown_target', 'bad_address', 'loopback_not_allowed', 'rate_limited'] as const;
/** One of the canonical refusal names. */
export type PunchRefusal = (typeof PUNCH_REFUSALS)[number];
/** Refusal counters by name. */
export type PunchRefusalCounts = Record<PunchRefusal, number>;

/**
 * The name of a refusal code returned by {@link PunchPolicy.judge} (PROTOCOL.md §2).
 * Throws a `RangeError` for anything else (not for the hot path).
 */
export function punchRefusalName(code: number): PunchRefusal {
  const name = PUNCH_REFUSALS[-code - 1];
  if (!Number.isInteger(code) || name === undefined) throw new RangeError(`unknown punch refusal code ${code}`);
  return name;
}

// ---- address classification -------------------------------------------------------------

/** {@link classifyHintAddress}: a burst may go there. */
export const ADDR_OK = 0;
/** {@link classifyHintAddress}: never a burst target (maps to `bad_address`). */
export const ADDR_BAD = 1;
/** {@link classifyHintAddress}: this host's loopback (maps to `loopback_not_allowed` unless allowed). */
export const ADDR_LOOPBACK = 2;

/** IPv4 rules on the 4 bytes at `a[o]`: 0/8, 224/4 (multicast), 240/4 (reserved, incl. 255.255.255.255) bad; 127/8 loopback. */
function classifyV4(a: Uint8Array, o: number): number {
  const first = a[o]!;
  if (first === 0) return ADDR_BAD; // 0.0.0.0/8: unspecified / "this network" (RFC 1122 §3.2.1.3)
  if (first === 127) return ADDR_LOOPBACK; // 127.0.0.0/8
  if (first >= 224) return ADDR_BAD; // 224/4 multicast, 240/4 reserved, 255.255.255.255 limited broadcast
  return ADDR_OK;
}

/** True when `a[o+from .. o+to)` are all zero. */
function zeros(a: Uint8Array, o: number, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[o + i] !== 0) return false;
  return true;
}

/** IPv6 rules on the 16 bytes at `a[o]` (RFC 4291 §2.4–2.7, RFC 6052, RFC 3056, RFC 6666). */
function classifyV6(a: Uint8Array, o: number): number {
  const b0 = a[o]!;
  const b1 = a[o + 1]!;
  if (b0 === 0xff) return ADDR_BAD; // ff00::/8 multicast
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return ADDR_BAD; // fe80::/10 link-local: unusable without a zone index, which a hint cannot carry
  if (zeros(a, o, 0, 10)) {
    const b10 = a[o + 10]!;
    const b11 = a[o + 11]!;
    if (b10 === 0 && b11 === 0) {
      if (zeros(a, o, 12, 15)) {
        const last = a[o + 15]!;
        if (last === 0) return ADDR_BAD; // :: unspecified
        if (last === 1) return ADDR_LOOPBACK; // ::1
      }
      return ADDR_BAD; // ::a.b.c.d, IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
    }
    if (b10 === 0xff && b11 === 0xff) return ADDR_BAD; // ::ffff:a.b.c.d, IPv4-mapped: an IPv4 target must come as family 4
    return ADDR_OK;
  }
  if (zeros(a, o, 0, 8) && a[o + 8] === 0xff && a[o + 9] === 0xff && a[o + 10] === 0 && a[o + 11] === 0) {
    return ADDR_BAD; // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765 §2.1)
  }
  if (b0 === 0x01 && b1 === 0x00 && zeros(a, o, 2, 8)) return ADDR_BAD; // 100::/64 discard-only (RFC 6666)
  if (b0 === 0x00 && b1 === 0x64 && a[o + 2] === 0xff && a[o + 3] === 0x9b && zeros(a, o, 4, 12)) {
    // 64:ff9b::/96 NAT64 well-known prefix (RFC 6052 §2.1): the IPv4 address it embeds obeys the IPv4 rules
    return classifyV4(a, o + 12) === ADDR_OK ? ADDR_OK : ADDR_BAD;
  }
  if (b0 === 0x20 && b1 === 0x02) {
    // 2002::/16 6to4 (RFC 3056 §2): likewise for the IPv4 address in bytes 2–5
    return classifyV4(a, o + 2) === ADDR_OK ? ADDR_OK : ADDR_BAD;
  }
  return ADDR_OK;
}

/**
 * Classify a hint's address (PROTOCOL.md §2 "the address is not unspecified, multicast
 * or broadcast (loopback only when explicitly allowed)"): {@link ADDR_OK},
 * {@link ADDR_BAD} or {@link ADDR_LOOPBACK}.
 *
 * `family` 4 reads 4 bytes, 6 reads 16 bytes at `addr[off]`; any other family, too few
 * bytes, or a port outside 1–65535 is {@link ADDR_BAD}. IPv4: 0.0.0.0/8, 224.0.0.0/4,
 * 240.0.0.0/4 (with 255.255.255.255) are bad, 127.0.0.0/8 is loopback. IPv6: ::, ff00::/8,
 * fe80::/10, IPv4-mapped/-compatible/-translated forms, 100::/64 are bad; NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16) are bad when the IPv4 address inside them is not
 * OK; ::1 is loopback. Directed broadcasts (x.y.z.255 of some subnet) cannot be told
 * from hosts without the netmask; the socket, which never sets SO_BROADCAST, refuses them.
 * Never throws or allocates.
 */
export function classifyHintAddress(family: number, addr: Uint8Array, off: number, port: number): number {
  if (!(port >= 1 && port <= 65535) || (port | 0) !== port) return ADDR_BAD;
  if (family === 4) return off >= 0 && off + 4 <= addr.length ? classifyV4(addr, off) : ADDR_BAD;
  if (family === 6) return off >= 0 && off + 16 <= addr.length ? classifyV6(addr, off) : ADDR_BAD;
  return ADDR_BAD;
}

/**
 * The hint's address bytes as the string `dgram` takes (PROTOCOL.md §2 address field):
 * dotted quad for family 4; for family 6 the RFC 5952 text form (lower case, no leading
 * zeros, the first longest run of two or more zero groups as `::`, and `::ffff:a.b.c.d`
 * for IPv4-mapped addresses). Allocates (only granted hints are formatted).
 * Throws a `RangeError` when `family` is not 4 or 6 or the bytes are too few.
 */
export function formatHintAddress(family: number, addr: Uint8Array, off = 0): string {
  if (family === 4) {
    if (off < 0 || off + 4 > addr.length) throw new RangeError('an IPv4 address needs 4 bytes');
    return `${addr[off]}.${addr[off + 1]}.${addr[off + 2]}.${addr[off + 3]}`;
  }
  if (family !== 6) throw new RangeError(`address family must be 4 or 6, got ${family}`);
  if (off < 0 || off + 16 > addr.length) throw new RangeError('an IPv6 address needs 16 bytes');
  if (zeros(addr, off, 0, 10) && addr[off + 10] === 0xff && addr[off + 11] === 0xff) {
    return `::ffff:${addr[off + 12]}.${addr[off + 13]}.${addr[off + 14]}.${addr[off + 15]}`; // RFC 5952 §5
  }
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((addr[off + 2 * i]! << 8) | addr[off + 2 * i + 1]!);
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups, the first one on a tie
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

// ---- the policy -----------------------------------------------------------------------------

/** Options of {@link PunchPolicy} (PROTOCOL.md §2). */
export interface PunchPolicyOptions {
  /** PROBEs sent per granted hint, 1–64; default 4. */
  punchBurst?: number;
  /** Granted hints per target per minute (token bucket of that size, refilled at that rate), 0–1,000,000; default 6. 0 refuses every hint. */
  perTargetPerMinute?: number;
  /** Granted hints per minute over all targets (token bucket as above), 0–1,000,000; default 60. 0 refuses every hint. */
  overallPerMinute?: number;
  /** Allow 127.0.0.0/8 and ::1 as burst targets (tests, single-host meshes); default false. */
  allowLoopback?: boolean;
  /** Most targets whose bucket is remembered, 1–1,048,576; default 1024 (≈ 100 KiB of typed arrays). Bounds memory (see {@link PunchPolicy}). */
  maxTargets?: number;
}

/** A hint as {@link PunchPolicy.decide} takes it (allocating convenience; tests and tools). */
export interface PunchHintInput {
  /** Target sender_id: 8 bytes, or 16 hex digits. */
  target: Uint8Array | string;
  /** Whether the target is a known peer (in the roster). */
  known: boolean;
  /** 4 or 6. */
  family: number;
  /** The address bytes (4 or 16). */
  address: Uint8Array;
  /** UDP port. */
  port: number;
  /** Now, in ms (any monotonic or wall clock, used consistently). */
  nowMs: number;
}

/** {@link PunchPolicy.decide}'s answer: a burst to send, or a named refusal. */
export type PunchDecision =
  | { send: true; probes: number; family: 4 | 6; address: string; port: number }
  | { send: false; reason: PunchRefusal };

const MS_PER_MINUTE = 60_000;

/**
 * Decides PUNCH_HINTs (PROTOCOL.md §2): known target, sane address, loopback only when
 * allowed, and room in two token buckets. Each bucket holds at most `N` tokens (`N` =
 * `perTargetPerMinute` for a target's, `overallPerMinute` overall), starts full, refills
 * at `N` per minute, and a granted hint takes one token from both. Hence over any
 * interval of `T` ms a flood of hints gets at most `N + N·T/60000` granted per target and
 * overall, i.e. at most `punchBurst` times that many PROBEs; refused hints take nothing.
 *
 * Memory is fixed at construction: an open-addressed table of `maxTargets` targets
 * (typed arrays, no Map, no per-hint allocation). A target whose bucket has refilled is
 * indistinguishable from a new one and is swept out when room is needed; if every slot
 * still carries a debt the hint is refused as `rate_limited` (fail closed). Since every
 * debt came from an overall token, that cannot happen while `maxTargets ≥
 * 2·overallPerMinute`.
 */
export class PunchPolicy {
  /** PROBEs per granted hint. */
  readonly punchBurst: number;
  /** Per-target bucket size and refill per minute. */
  readonly perTargetPerMinute: number;
  /** Overall bucket size and refill per minute. */
  readonly overallPerMinute: number;
  /** Whether loopback targets are allowed. */
  readonly allowLoopback: boolean;
  /** Most targets remembered at once. */
  readonly maxTargets: number;
  /** Refusals by reason (PROTOCOL.md §2); plain numbers, safe to read any time. */
  readonly refused: PunchRefusalCounts = { unknown_target: 0, bad_address: 0, loopback_not_allowed: 0, rate_limited: 0 };
  /** Hints granted (bursts). */
  granted = 0;
  /** PROBEs granted (`granted × punchBurst`). */
  probesGranted = 0;

  private readonly targetRatePerMs: number;
  private readonly overallRatePerMs: number;
  private overallTokens: number;
  private overallAt = Number.NaN; // time of the last overall refill; NaN until the first hint
  private readonly mask: number;
  // Two sets of table arrays, allocated once: a sweep rebuilds into the spare set and swaps (no allocation).
  private idHi: Int32Array;
  private idLo: Int32Array;
  private used: Uint8Array;
  private tokens: Float64Array;
  private at: Float64Array;
  private spareIdHi: Int32Array;
  private spareIdLo: Int32Array;
  private spareUsed: Uint8Array;
  private spareTokens: Float64Array;
  private spareAt: Float64Array;
  private count = 0;

  constructor(options: PunchPolicyOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.punchBurst = intOption(options.punchBurst, 'punchBurst', 1, 64, 4);
    this.perTargetPerMinute = intOption(options.perTargetPerMinute, 'perTargetPerMinute', 0, 1_000_000, 6);
    this.overallPerMinute = intOption(options.overallPerMinute, 'overallPerMinute', 0, 1_000_000, 60);
    this.maxTargets = intOption(options.maxTargets, 'maxTargets', 1, 1 << 20, 1024);
    if (options.allowLoopback !== undefined && typeof options.allowLoopback !== 'boolean') {
      throw new TypeError('options.allowLoopback must be a boolean');
    }
    this.allowLoopback = options.allowLoopback ?? false;
    this.targetRatePerMs = this.perTargetPerMinute / MS_PER_MINUTE;
    this.overallRatePerMs = this.overallPerMinute / MS_PER_MINUTE;
    this.overallTokens = this.overallPerMinute;
    let cap = 2;
    while (cap < 2 * this.maxTargets) cap <<= 1; // at most half full: linear probes stay short
    this.mask = cap - 1;
    this.idHi = new Int32Array(cap);
    this.idLo = new Int32Array(cap);
    this.used = new Uint8Array(cap);
    this.tokens = new Float64Array(cap);
    this.at = new Float64Array(cap);
    this.spareIdHi = new Int32Array(cap);
    this.spareIdLo = new Int32Array(cap);
    this.spareUsed = new Uint8Array(cap);
    this.spareTokens = new Float64Array(cap);
    this.spareAt = new Float64Array(cap);
  }

  /** Targets currently remembered (never more than `maxTargets`). */
  get targets(): number {
    return this.count;
  }

  /** Sum of all refusal counters. */
  get refusedTotal(): number {
    const r = this.refused;
    return r.unknown_target + r.bad_address + r.loopback_not_allowed + r.rate_limited;
  }

  /**
   * Decide one hint (PROTOCOL.md §2) whose target sender_id is `targetHi:targetLo` (two
   * big-endian u32, as `readU32(...) | 0` gives them), `known` when that is a roster
   * peer, address `addr[addrOff..]` of `family` (4 or 6), `port`, at `nowMs`.
   *
   * Returns the number of PROBEs to send (`punchBurst`, ≥ 1) — the buckets are already
   * charged — or a refusal code ({@link PUNCH_UNKNOWN_TARGET}, {@link PUNCH_BAD_ADDRESS},
   * {@link PUNCH_LOOPBACK_NOT_ALLOWED}, {@link PUNCH_RATE_LIMITED}, all < 0), counted in
   * {@link refused}. A clock that goes backwards refills nothing. Never throws, logs or
   * allocates.
   */
  judge(targetHi: number, targetLo: number, known: boolean, family: number, addr: Uint8Array, addrOff: number, port: number, nowMs: number): number {
    if (!known) {
      this.refused.unknown_target++;
      return PUNCH_UNKNOWN_TARGET;
    }
    const cls = classifyHintAddress(family, addr, addrOff, port);
    if (cls === ADDR_BAD) {
      this.refused.bad_address++;
      return PUNCH_BAD_ADDRESS;
    }
    if (cls === ADDR_LOOPBACK && !this.allowLoopback) {
      this.refused.loopback_not_allowed++;
      return PUNCH_LOOPBACK_NOT_ALLOWED;
    }
    // overall bucket
    const oElapsed = nowMs - this.overallAt;
    if (oElapsed > 0) {
      this.overallTokens = Math.min(this.overallPerMinute, this.overallTokens + oElapsed * this.overallRatePerMs);
      this.overallAt = nowMs;
    } else if (this.overallAt !== this.overallAt) {
      this.overallAt = nowMs; // first hint: the bucket starts full
    }
    // target bucket
    const slot = this.slotOf(targetHi | 0, targetLo | 0, nowMs);
    if (slot < 0) {
      this.refused.rate_limited++;
      return PUNCH_RATE_LIMITED;
    }
    const tElapsed = nowMs - this.at[slot]!;
    if (tElapsed > 0) {
      this.tokens[slot] = Math.min(this.perTargetPerMinute, this.tokens[slot]! + tElapsed * this.targetRatePerMs);
      this.at[slot] = nowMs;
    }
    if (this.overallTokens < 1 || this.tokens[slot]! < 1) {
      this.refused.rate_limited++;
      return PUNCH_RATE_LIMITED;
    }
    this.overallTokens -= 1;
    this.tokens[slot] = this.tokens[slot]! - 1;
    this.granted++;
    this.probesGranted += this.punchBurst;
    return this.punchBurst;
  }

  /**
   * Give back what the last grant for target `targetHi:targetLo` charged, when its burst
   * could not be sent at all (PROTOCOL.md §2: a token pays for a burst that leaves). The
   * buckets never exceed their size; `granted`/`probesGranted` drop by that grant.
   * Never throws, logs or allocates.
   */
  refund(targetHi: number, targetLo: number): void {
    const slot = this.find(targetHi | 0, targetLo | 0);
    if (slot < 0 || this.granted === 0) return;
    this.tokens[slot] = Math.min(this.perTargetPerMinute, this.tokens[slot]! + 1);
    this.overallTokens = Math.min(this.overallPerMinute, this.overallTokens + 1);
    this.granted--;
    this.probesGranted -= this.punchBurst;
  }

  /**
   * {@link judge} a PUNCH_HINT payload in place: `target_sender_id(8) | family(1) |
   * port(2) | address(4|16)` at `buf[off]` (PROTOCOL.md §2, layout.ts `HINT_OFF_*`). The
   * receive path already guaranteed it parses; a payload that would run past `buf` is
   * refused as `bad_address`. Never throws, logs or allocates.
   */
  judgeHint(buf: Uint8Array, off: number, known: boolean, nowMs: number): number {
    const fits = off >= 0 && off + HINT_LEN_V4 <= buf.length;
    let family = fits ? buf[off + HINT_OFF_FAMILY]! : 0;
    if (family === 6 && off + HINT_LEN_V6 > buf.length) family = 0; // runs past the buffer: bad_address (after the target check)
    const port = fits ? (buf[off + HINT_OFF_PORT]! << 8) | buf[off + HINT_OFF_PORT + 1]! : 0;
    const targetHi = fits ? readU32(buf, off + HINT_OFF_TARGET) | 0 : 0;
    const targetLo = fits ? readU32(buf, off + HINT_OFF_TARGET + 4) | 0 : 0;
    return this.judge(targetHi, targetLo, known, family, buf, off + HINT_OFF_ADDR, port, nowMs);
  }

  /**
   * Allocating convenience over {@link judge} (tests, tools, events): the target as
   * bytes or hex, the answer as an object with the address formatted for `dgram`.
   * Throws a `TypeError` for a target that is not 8 bytes / 16 hex digits.
   */
  decide(hint: PunchHintInput): PunchDecision {
    const t = typeof hint.target === 'string' ? hexTarget(hint.target) : hint.target;
    if (!(t instanceof Uint8Array) || t.length !== SENDER_ID_LEN) throw new TypeError('hint.target must be 8 bytes or 16 hex digits');
    const code = this.judge(readU32(t, 0) | 0, readU32(t, 4) | 0, hint.known, hint.family, hint.address, 0, hint.port, hint.nowMs);
    if (code < 0) return { send: false, reason: punchRefusalName(code) };
    return { send: true, probes: code, family: hint.family as 4 | 6, address: formatHintAddress(hint.family, hint.address), port: hint.port };
  }

  /** Slot of target `hi:lo`, inserting it (full bucket) when new; -1 when the table is full of debts. */
  private slotOf(hi: number, lo: number, nowMs: number): number {
    let s = this.find(hi, lo);
    if (s >= 0) return s;
    if (this.count >= this.maxTargets) {
      this.sweep(nowMs);
      if (this.count >= this.maxTargets) return -1;
    }
    s = lo & this.mask;
    while (this.used[s] !== 0) s = (s + 1) & this.mask;
    this.used[s] = 1;
    this.idHi[s] = hi;
    this.idLo[s] = lo;
    this.tokens[s] = this.perTargetPerMinute;
    this.at[s] = nowMs;
    this.count++;
    return s;
  }

  private find(hi: number, lo: number): number {
    const mask = this.mask;
    let s = lo & mask;
    for (let probes = 0; probes <= mask; probes++) {
      if (this.used[s] === 0) return -1;
      if (this.idLo[s] === lo && this.idHi[s] === hi) return s;
      s = (s + 1) & mask;
    }
    return -1;
  }

  /** Drop every target whose bucket has refilled by `nowMs` (rebuild into the spare arrays, then swap). */
  private sweep(nowMs: number): void {
    const cap = this.mask + 1;
    this.spareUsed.fill(0);
    let kept = 0;
    for (let s = 0; s < cap; s++) {
      if (this.used[s] === 0) continue;
      const elapsed = nowMs - this.at[s]!;
      const refilled = elapsed > 0 ? this.tokens[s]! + elapsed * this.targetRatePerMs : this.tokens[s]!;
      if (refilled >= this.perTargetPerMinute) continue; // as good as new: forget it
      let d = this.idLo[s]! & this.mask;
      while (this.spareUsed[d] !== 0) d = (d + 1) & this.mask;
      this.spareUsed[d] = 1;
      this.spareIdHi[d] = this.idHi[s]!;
      this.spareIdLo[d] = this.idLo[s]!;
      this.spareTokens[d] = this.tokens[s]!;
      this.spareAt[d] = this.at[s]!;
      kept++;
    }
    const idHi = this.idHi;
    this.idHi = this.spareIdHi;
    this.spareIdHi = idHi;
    const idLo = this.idLo;
    this.idLo = this.spareIdLo;
    this.spareIdLo = idLo;
    const used = this.used;
    this.used = this.spareUsed;
    this.spareUsed = used;
    const tokens = this.tokens;
    this.tokens = this.spareTokens;
    this.spareTokens = tokens;
    const at = this.at;
    this.at = this.spareAt;
    this.spareAt = at;
    this.count = kept;
  }
}

function hexTarget(s: string): Uint8Array | null {
  return /^[0-9a-fA-F]{16}$/.test(s) ? new Uint8Array(Buffer.from(s, 'hex')) : null;
}
