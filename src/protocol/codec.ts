/**
 * The v1 wire codec (PROTOCOL.md §2). Reads work in place on `(buf, offset)` and never
 * allocate; `encodePacket`/`parsePacket` are allocating conveniences for tools and tests.
 */
import { HEADER_LEN, MAC_LEN, MAGIC_U32, MIN_DATAGRAM, OFF_MAGIC, OFF_NONCE, OFF_PAYLOAD, OFF_PROBE_ID, OFF_SEND_TS, OFF_SENDER_ID, OFF_TYPE, OFF_VER, SENDER_ID_LEN, VERSION_V1 } from './wire.js';
import { macSeal } from './mac.js';

const TWO_32 = 4294967296;

/** Big-endian u32 at `buf[off]` as a non-negative number. */
export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** Write `v` as a big-endian u32 at `buf[off]`. */
export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

/** Big-endian u64 at `buf[off]` as a float (exact below 2^53; timestamps and own nonces). */
export function readU64Number(buf: Uint8Array, off: number): number {
  return readU32(buf, off) * TWO_32 + readU32(buf, off + 4);
}

/** Write a non-negative integer `v < 2^53` as a big-endian u64 at `buf[off]`. */
export function writeU64Number(buf: Uint8Array, off: number, v: number): void {
  writeU32(buf, off, Math.floor(v / TWO_32));
  writeU32(buf, off + 4, v % TWO_32);
}

/** Big-endian u64 at `buf[off]` as a BigInt (allocates; tools and tests). */
export function readU64(buf: Uint8Array, off: number): bigint {
  return (BigInt(readU32(buf, off)) << 32n) | BigInt(readU32(buf, off + 4));
}

/** Write a BigInt u64 big-endian at `buf[off]`. */
export function writeU64(buf: Uint8Array, off: number, v: bigint): void {
  if (v < 0n || v >= 1n << 64n) throw new RangeError('u64 out of range');
  writeU32(buf, off, Number(v >> 32n));
  writeU32(buf, off + 4, Number(v & 0xffffffffn));
}

/**
 * Write a v1 header (PROTOCOL.md §2) at `out[off]`: magic, ver 1, `type`, the 8-byte
 * `senderId`, nonce, probe_id, send_ts_us. The payload follows at `off + 34`, the MAC
 * after it ({@link macSeal}). No allocation.
 */
export function writeHeader(
  out: Uint8Array,
  off: number,
  type: number,
  senderId: Uint8Array,
  nonce: number,
  probeId: number,
  sendTsUs: number,
): void {
  writeHeaderHalves(out, off, type, senderId, Math.floor(nonce / TWO_32) | 0, (nonce % TWO_32) | 0, probeId | 0, Math.floor(sendTsUs / TWO_32) | 0, (sendTsUs % TWO_32) | 0);
}

/**
 * {@link writeHeader} with the two u64 fields as int32 halves (`hi`, `lo`: the value's
 * upper and lower 32 bits, each `| 0`) and `probeId` as an int32 (`probeId | 0`): small
 * integers, so a caller on a hot path passes no float argument, which V8 may box on every
 * call (src/pipeline/reply.ts, own packets).
 */
export function writeHeaderHalves(out: Uint8Array, off: number, type: number, senderId: Uint8Array, nonceHi: number, nonceLo: number, probeId: number, tsHi: number, tsLo: number): void {
  writeU32(out, off + OFF_MAGIC, MAGIC_U32);
  out[off + OFF_VER] = VERSION_V1;
  out[off + OFF_TYPE] = type;
  for (let i = 0; i < SENDER_ID_LEN; i++) out[off + OFF_SENDER_ID + i] = senderId[i]!;
  writeU32(out, off + OFF_NONCE, nonceHi);
  writeU32(out, off + OFF_NONCE + 4, nonceLo);
  writeU32(out, off + OFF_PROBE_ID, probeId);
  writeU32(out, off + OFF_SEND_TS, tsHi);
  writeU32(out, off + OFF_SEND_TS + 4, tsLo);
}

/** The fields of a v1 datagram (PROTOCOL.md §2); u64 fields as BigInt. */
export interface PacketFields {
  /** PROBE, REPLY or PUNCH_HINT (1–3). */
  type: number;
  /** 8 bytes. */
  senderId: Uint8Array;
  /** u64. */
  nonce: bigint;
  /** u32. */
  probeId: number;
  /** u64, µs since the Unix epoch. */
  sendTsUs: bigint;
  /** Measurement bytes. */
  payload: Uint8Array;
  /** Protocol version byte (1 unless deliberately building a downgrade). */
  ver?: number;
}

/**
 * Encode `f` and seal it with the HMAC key state `keyState` (from `hmacPrecompute`) —
 * PROTOCOL.md §2. Allocates the datagram; tools and tests.
 */
export function encodePacket(f: PacketFields, keyState: Int32Array): Uint8Array {
  const len = HEADER_LEN + f.payload.length + MAC_LEN;
  const out = new Uint8Array(len);
  writeU32(out, OFF_MAGIC, MAGIC_U32);
  out[OFF_VER] = f.ver ?? VERSION_V1;
  out[OFF_TYPE] = f.type;
  out.set(f.senderId.subarray(0, SENDER_ID_LEN), OFF_SENDER_ID);
  writeU64(out, OFF_NONCE, f.nonce);
  writeU32(out, OFF_PROBE_ID, f.probeId);
  writeU64(out, OFF_SEND_TS, f.sendTsUs);
  out.set(f.payload, OFF_PAYLOAD);
  macSeal(keyState, 0, out, 0, len);
  return out;
}

/**
 * Split a datagram into its fields without judging it (no MAC check). Returns `null`
 * when it cannot be a v1-layout datagram (too short or wrong magic). Allocates.
 */
export function parsePacket(buf: Uint8Array, off = 0, len = buf.length - off): (PacketFields & { mac: Uint8Array }) | null {
  if (len < MIN_DATAGRAM || readU32(buf, off + OFF_MAGIC) !== MAGIC_U32) return null;
  return {
    ver: buf[off + OFF_VER]!,
    type: buf[off + OFF_TYPE]!,
    senderId: buf.slice(off + OFF_SENDER_ID, off + OFF_SENDER_ID + SENDER_ID_LEN),
    nonce: readU64(buf, off + OFF_NONCE),
    probeId: readU32(buf, off + OFF_PROBE_ID),
    sendTsUs: readU64(buf, off + OFF_SEND_TS),
    payload: buf.slice(off + OFF_PAYLOAD, off + len - MAC_LEN),
    mac: buf.slice(off + len - MAC_LEN, off + len),
  };
}

/**
 * The canonical MAC input of a datagram: `wire[0 : 34+N] || u32be(N)` (PROTOCOL.md §2).
 * Allocates; the hot path MACs the same bytes in place via the kernel's suffix argument.
 */
export function canonicalBytes(buf: Uint8Array, off = 0, len = buf.length - off): Uint8Array {
  const body = len - MAC_LEN;
  const out = new Uint8Array(body + 4);
  out.set(buf.subarray(off, off + body));
  writeU32(out, body, body - HEADER_LEN);
  return out;
}
