/**
 * The stateless part of the receive decision (PROTOCOL.md §4): the three unconditional
 * drops and the checks c1–c3, in order. The stateful c4 (replay) and the restart fence
 * are {@link ReplayFilter}'s, applied where order is kept (PROTOCOL.md §5).
 *
 * Hot path: `(buf, offset, length)` in, verdict code out; never throws, logs or allocates.
 */
import { HEADER_LEN, HINT_LEN_V4, HINT_LEN_V6, HINT_OFF_FAMILY, MAC_LEN, MAGIC_U32, MIN_DATAGRAM, OFF_NONCE, OFF_PAYLOAD, OFF_SEND_TS, OFF_SENDER_ID, OFF_TYPE, OFF_VER, TYPE_PROBE, TYPE_PUNCH_HINT, VERSION_V1 } from './wire.js';
import { KE_HAS_PREV, KE_ID_HI, KE_ID_LO, KE_PEER, KE_RAW_CUR, KE_RAW_PREV, KE_STATE_CUR, KE_STATE_PREV, KE_USED, keyEntryIndex } from '../keys/table-layout.js';
import {
  V_BAD_MAC,
  V_DOWNGRADE,
  V_MALFORMED,
  V_PENDING_REPLAY,
  V_REFLECTED,
  V_STALE,
  V_UNKNOWN_SENDER,
} from './verdict.js';
import { readU32, readU64Number } from './codec.js';
import { macVerify, type BoundMac } from './mac.js';

/** What the stateless checks need; the same object serves every datagram of a thread. */
export interface ReceiveContext {
  /** Int32 view of the key table (layout.ts `KE_*`). */
  readonly keys: Int32Array;
  /** Byte view of the same buffer (raw keys for the large-datagram MAC path). */
  readonly keyBytes: Uint8Array;
  /** MAC calls bound to `keys` and the batch ring (used when `buf` is that ring), or null. */
  readonly mac?: BoundMac | null;
  /** Entries per key-table half (a power of two). */
  readonly capacity: number;
  /** The receiver's own sender_id as two big-endian u32. */
  readonly selfHi: number;
  /** See {@link selfHi}. */
  readonly selfLo: number;
  /** Largest accepted datagram (`maxDatagram`). */
  readonly maxDatagram: number;
  /** Clock window in µs (default 5 000 000, PROTOCOL.md §4 c3). */
  readonly clockWindowUs: number;
  /** Receiver start, µs since the Unix epoch (restart fence, PROTOCOL.md §5). */
  readonly startUs: number;
}

/**
 * Word index of the key-table entry for sender `idHi:idLo` in half `half`, or -1.
 * Linear probing over a table kept at most half full; unknown senders cost this lookup
 * and never an HMAC (ENGINE.md).
 */
export function findKeyEntry(keys: Int32Array, capacity: number, half: number, idHi: number, idLo: number): number {
  const mask = capacity - 1;
  let e = idLo & mask;
  for (let probes = 0; probes < capacity; probes++) {
    const k = keyEntryIndex(capacity, half, e);
    if (keys[k + KE_USED] === 0) return -1;
    if (keys[k + KE_ID_HI] === idHi && keys[k + KE_ID_LO] === idLo) return k;
    e = (e + 1) & mask;
  }
  return -1;
}

/**
 * True when a PUNCH_HINT payload of `n` bytes at `buf[p]` parses:
 * `target_sender_id(8) | family(1: 4 or 6) | port(2) | address(4 or 16)`, nothing after (PROTOCOL.md §2).
 */
export function hintParses(buf: Uint8Array, p: number, n: number): boolean {
  if (n < HINT_LEN_V4) return false;
  const family = buf[p + HINT_OFF_FAMILY];
  return (family === 4 && n === HINT_LEN_V4) || (family === 6 && n === HINT_LEN_V6);
}

/**
 * What the stateless checks learned about a datagram that passed them: what the in-order
 * replay check (PROTOCOL.md §5) and REPLY signing need. One object per thread, reused for
 * every datagram (no allocation on the hot path); valid until the next call.
 */
export class ReceiveResult {
  /** The sender's stable peer index (replay state lives under it). */
  peer = 0;
  /** The nonce as two big-endian u32 (hi, lo as `readU32 | 0`). */
  nonceHi = 0;
  /** See {@link nonceHi}. */
  nonceLo = 0;
  /** `type` (PROBE, REPLY or PUNCH_HINT). */
  type = 0;
  /** Word index of the sender's key-table entry in the half judged (REPLY signing). */
  entry = 0;
  /** `send_ts_us` is earlier than the receiver's start (restart fence, PROTOCOL.md §5). */
  preStart = false;
}

/**
 * Judge the datagram `buf[off:off+len)` received at `times[ti]` (the receiver's clock, µs:
 * its slot's time word) against u1–u3 and c1–c3 (PROTOCOL.md §4), using key-table half
 * `half`. On success fills `out` (the sender's peer index, nonce, type, key entry and the
 * restart-fence flag) and returns `V_PENDING_REPLAY`; otherwise returns the drop's verdict
 * code and leaves `out` as it was. The time is read from the array, not passed: a float
 * argument to a call the JIT does not inline is boxed on the heap (measured: 16 bytes a
 * datagram, a young-generation collection per ~65 000 datagrams).
 */
export function checkDatagram(
  ctx: ReceiveContext,
  half: number,
  buf: Uint8Array,
  off: number,
  len: number,
  times: Float64Array,
  ti: number,
  out: ReceiveResult,
): number {
  // u1 malformed
  if (len < MIN_DATAGRAM || len > ctx.maxDatagram) return V_MALFORMED;
  if (readU32(buf, off) !== MAGIC_U32) return V_MALFORMED;
  const type = buf[off + OFF_TYPE]!;
  if (type < TYPE_PROBE || type > TYPE_PUNCH_HINT) return V_MALFORMED;
  if (type === TYPE_PUNCH_HINT && !hintParses(buf, off + OFF_PAYLOAD, len - HEADER_LEN - MAC_LEN)) return V_MALFORMED;
  // u2 downgrade
  if (buf[off + OFF_VER] !== VERSION_V1) return V_DOWNGRADE;
  // u3 reflected
  const idHi = readU32(buf, off + OFF_SENDER_ID) | 0;
  const idLo = readU32(buf, off + OFF_SENDER_ID + 4) | 0;
  if (idHi === ctx.selfHi && idLo === ctx.selfLo) return V_REFLECTED;
  // c1 unknown_sender: a table lookup, no HMAC
  const keys = ctx.keys;
  const k = findKeyEntry(keys, ctx.capacity, half, idHi, idLo);
  if (k < 0) return V_UNKNOWN_SENDER;
  // c2 bad_mac: current key, then the previous root's during its grace period
  const bound = ctx.mac != null && ctx.mac.buf === buf ? ctx.mac : null;
  if (!(bound !== null ? bound.verify(k + KE_STATE_CUR, (k + KE_RAW_CUR) * 4, off, len) : macVerify(keys, k + KE_STATE_CUR, ctx.keyBytes, (k + KE_RAW_CUR) * 4, buf, off, len))) {
    if (keys[k + KE_HAS_PREV] === 0) return V_BAD_MAC;
    if (!(bound !== null ? bound.verify(k + KE_STATE_PREV, (k + KE_RAW_PREV) * 4, off, len) : macVerify(keys, k + KE_STATE_PREV, ctx.keyBytes, (k + KE_RAW_PREV) * 4, buf, off, len))) {
      return V_BAD_MAC;
    }
  }
  // c3 stale: clock window; the restart fence needs replay state, so it is flagged here
  const ts = readU64Number(buf, off + OFF_SEND_TS);
  const skew = ts - times[ti]!;
  if (skew > ctx.clockWindowUs || skew < -ctx.clockWindowUs) return V_STALE;
  out.peer = keys[k + KE_PEER]!;
  out.nonceHi = readU32(buf, off + OFF_NONCE) | 0;
  out.nonceLo = readU32(buf, off + OFF_NONCE + 4) | 0;
  out.type = type;
  out.entry = k;
  out.preStart = ts < ctx.startUs;
  return V_PENDING_REPLAY;
}
