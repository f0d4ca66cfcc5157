/**
 * The datagram MAC: `HMAC-SHA256(pair_key, canonical)[0:16]`, canonical =
 * `wire[0:34+N] || u32be(N)` (PROTOCOL.md §2), compared in constant time.
 *
 * Where the native kernel was built (./native.ts: OpenSSL's SHA-256 inside Node, keyed
 * state precomputed once per key, no allocation) it is used for every size: it is the
 * fastest at all of them. Otherwise, below {@link KERNEL_CROSSOVER_BYTES} of canonical
 * input the JS kernel (same keyed state) is faster than node:crypto; at and above it
 * node:crypto is, and these functions route there — that path allocates (a Hmac object
 * and a digest), which is the price of its speed on large datagrams.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { CANONICAL_SUFFIX_LEN, HEADER_LEN, MAC_LEN } from './wire.js';
import { PAIR_KEY_LEN } from './keys.js';
import { nativeMac, nativeMacStatus } from './native.js';
import { hmacPrecompute, hmacTag16, hmacVerify16, HMAC_STATE_WORDS, KERNEL_CROSSOVER_BYTES } from './sha256.js';

export { KERNEL_CROSSOVER_BYTES };

/** Which MAC code runs, in one line (benchmarks print it beside the machine). */
export function macRoute(): string {
  return nativeMac !== null
    ? 'MAC route: native kernel (OpenSSL SHA-256 in Node) for every size'
    : `MAC route: JS kernel below ${KERNEL_CROSSOVER_BYTES} canonical bytes, node:crypto above (native kernel ${nativeMacStatus})`;
}

// Scratch for the node:crypto path's u32be(N) suffix; single-threaded per isolate, filled and consumed within one call.
const suffix = Buffer.alloc(CANONICAL_SUFFIX_LEN);

function nodeMac(keyBytes: Uint8Array, rawOff: number, buf: Uint8Array, off: number, body: number): Buffer {
  suffix.writeUInt32BE(body - HEADER_LEN, 0);
  return createHmac('sha256', keyBytes.subarray(rawOff, rawOff + PAIR_KEY_LEN))
    .update(buf.subarray(off, off + body))
    .update(suffix)
    .digest();
}

/**
 * True when the 16-byte trailer of the datagram `buf[off:off+len)` is the MAC of its
 * canonical input under the key whose HMAC state is `state[stateOff..+16)` (the raw
 * 32-byte key at `keyBytes[rawOff]`, used only at/above the crossover; `keyBytes` null
 * forces the kernel). Never throws; `len >= 50` is the caller's.
 */
export function macVerify(
  state: Int32Array,
  stateOff: number,
  keyBytes: Uint8Array | null,
  rawOff: number,
  buf: Uint8Array,
  off: number,
  len: number,
): boolean {
  const body = len - MAC_LEN;
  if (nativeMac !== null) return nativeMac.verify16(state, stateOff, buf, off, body, body - HEADER_LEN, buf, off + body);
  if (keyBytes !== null && body + CANONICAL_SUFFIX_LEN >= KERNEL_CROSSOVER_BYTES) {
    const tag = nodeMac(keyBytes, rawOff, buf, off, body);
    return timingSafeEqual(tag.subarray(0, MAC_LEN), buf.subarray(off + body, off + len));
  }
  return hmacVerify16(state, stateOff, buf, off, body, body - HEADER_LEN, buf, off + body);
}

/**
 * Write the MAC trailer of the datagram `buf[off:off+len)` (header and payload already
 * in place) under the key `state[stateOff..+16)` (raw key at `keyBytes[rawOff]`, as
 * in {@link macVerify}). PROTOCOL.md §2.
 */
export function macSeal(
  state: Int32Array,
  stateOff: number,
  buf: Uint8Array,
  off: number,
  len: number,
  keyBytes: Uint8Array | null = null,
  rawOff = 0,
): void {
  const body = len - MAC_LEN;
  if (nativeMac !== null) {
    nativeMac.tag16(state, stateOff, buf, off, body, body - HEADER_LEN, buf, off + body);
    return;
  }
  if (keyBytes !== null && body + CANONICAL_SUFFIX_LEN >= KERNEL_CROSSOVER_BYTES) {
    buf.set(nodeMac(keyBytes, rawOff, buf, off, body).subarray(0, MAC_LEN), off + body);
    return;
  }
  hmacTag16(state, stateOff, buf, off, body, body - HEADER_LEN, buf, off + body);
}

/**
 * {@link macVerify} and {@link macSeal} bound to one key-state array (the key table, with
 * its raw keys `keyBytes`) and one byte array holding the datagrams (a batch ring):
 * the native kernel is then called with integers only (./native.ts). Without the native
 * kernel — or when the thread's bindings are taken — the same calls go through
 * macVerify/macSeal. {@link close} releases the binding.
 */
export class BoundMac {
  private binding: number;

  constructor(
    readonly state: Int32Array,
    readonly keyBytes: Uint8Array,
    /** The only array {@link verify} and {@link seal} read and write. */
    readonly buf: Uint8Array,
  ) {
    this.binding = nativeMac !== null ? nativeMac.bind(state, buf) : -1;
  }

  /** `util.inspect` / `console.log`: whether the native kernel is bound — never `state` or `keyBytes` (PROTOCOL.md §1: keys are never printed). */
  [inspect.custom](): string {
    return `BoundMac { native: ${this.binding >= 0} }`;
  }

  /** {@link macVerify} of `buf[off:off+len)` under the key state at `stateOff` (raw key at `keyBytes[rawOff]`). */
  verify(stateOff: number, rawOff: number, off: number, len: number): boolean {
    if (this.binding >= 0) {
      const body = len - MAC_LEN;
      return nativeMac!.verifyAt(this.binding, stateOff, off, body, body - HEADER_LEN, off + body);
    }
    return macVerify(this.state, stateOff, this.keyBytes, rawOff, this.buf, off, len);
  }

  /** {@link macSeal} of `buf[off:off+len)`. */
  seal(stateOff: number, rawOff: number, off: number, len: number): void {
    if (this.binding >= 0) {
      const body = len - MAC_LEN;
      nativeMac!.tagAt(this.binding, stateOff, off, body, body - HEADER_LEN, off + body);
      return;
    }
    macSeal(this.state, stateOff, this.buf, off, len, this.keyBytes, rawOff);
  }

  /** Release the native binding (later calls take the unbound route). */
  close(): void {
    if (this.binding >= 0) nativeMac!.unbind(this.binding);
    this.binding = -1;
  }
}

/**
 * Run the kernel `iterations` times on scratch bytes so that V8 has optimised it before
 * the first real datagram: the unrolled compression is large and, until optimised, costs
 * tens of µs per call — enough for a 50 k pps burst to queue up behind it (measured:
 * prober RTT p99 88 ms without warm-up at 50 k pps, 2-core Xeon VM, Node 20). Called
 * once per thread at start; allocates only its scratch.
 */
export function warmUpMac(iterations = 20_000): void {
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(new Uint8Array(32), state, 0);
  const buf = new Uint8Array(2 * 84);
  for (let i = 0; i < iterations; i++) {
    const len = 50 + (i % 35);
    buf[i % 34] = i;
    macSeal(state, 0, buf, 0, len);
    macVerify(state, 0, null, 0, buf, 0, len);
  }
}
