/**
 * HMAC-SHA256 kernel for the datagram verifier hot path.
 *
 * SHA-256 follows FIPS 180-4 (§4.1.2 functions, §4.2.2 constants, §5.1.1 padding,
 * §5.3.3 initial hash value, §6.2.2 hash computation); HMAC follows RFC 2104 §2
 * (`H(K ^ opad || H(K ^ ipad || text))`, block size B = 64, keys longer than B hashed
 * first) and is checked against the RFC 4231 vectors.
 *
 * The hot path ({@link hmacTag16}, {@link hmacVerify16}) starts from a per-key state
 * made once by {@link hmacPrecompute}: the SHA-256 chaining values after the
 * `K ^ ipad` block and after the `K ^ opad` block. One MAC therefore costs
 * `ceil((L + 9) / 64)` inner compressions plus one outer compression for a canonical
 * length L, reads the message big-endian straight from the caller's bytes (which may
 * live in a SharedArrayBuffer), builds the 4-byte length suffix and the padding in
 * module scratch, and allocates nothing.
 *
 * Speed notes (all measured on the development machine: "Intel(R) Xeon(R) Processor"
 * 2.6 GHz with SHA-NI/AVX-512, 2 cores, Node v20.20.2; best of 7 runs of 10^5-10^6 calls):
 * - The compression is fully unrolled with the working variables renamed per round
 *   instead of shifted and the schedule W_t in a rolling window of 16 locals:
 *   ≈ 165-178 ns per 64-byte block; an 84-byte datagram (3 compressions) ≈ 490-525 ns
 *   against node:crypto createHmac ≈ 1.5-1.7 µs (p50) / 1.7-2.1 µs (mean, with its GC).
 * - Σ0/Σ1/σ0/σ1 are evaluated nested, e.g. Σ1(e) = ROTR6(e ^ ROTR5(e ^ ROTR14(e)))
 *   (same value as FIPS 180-4 (4.5)): fewer register copies on x86, 571-584 → 508-517
 *   ns per 84-byte MAC. Maj(a,b,c) = b ^ ((a ^ b) & (b ^ c)), reusing the previous
 *   round's a ^ b: ≈ 2 % more.
 * - Slower alternatives tried: W[64] in an Int32Array with a 64-round loop ≈ 310-325
 *   ns/block; 8-round unrolled loop ≈ 275-280; 16-round unrolled loop ≈ 198-215 (these
 *   three before the nested Σ); schedule in an Int32Array with unrolled rounds ≈ 250; an
 *   outer-block compression with its constant padding words folded: no measurable gain.
 * - WebAssembly (hand-assembled, same unrolling and algebra, i32.rotr): 157-170 ns on a
 *   block already in wasm memory, but 201-207 ns once the 64 bytes are copied in — a
 *   Uint8Array over a SharedArrayBuffer cannot be read by wasm in place, and copying
 *   without allocating (no `subarray`) is a JS byte loop. So pure JS is kept.
 *
 * @module
 */

/**
 * Int32 words per precomputed HMAC key state: SHA-256 chaining state after the ipad
 * block (8 words) then after the opad block (8 words) — RFC 2104 §4 ("Implementation
 * note": precompute the compression of `K ^ ipad` and `K ^ opad` once per key).
 */
export const HMAC_STATE_WORDS = 16;

/**
 * Canonical length (bytes, datagram header+payload plus the 4-byte suffix) at or above
 * which node:crypto `createHmac('sha256', key).update(canonical).digest()` is faster
 * than {@link hmacTag16}; the caller routes such datagrams to node:crypto.
 *
 * The kernel's cost is a step function — `ceil((L + 9) / 64) + 1` compressions of
 * ≈ 170 ns, one step up at each L ≡ 56 (mod 64) — while node:crypto (OpenSSL with
 * SHA-NI) costs a fixed ≈ 1.5-2.0 µs per call plus ≈ 0.5 ns/byte. Within a step the
 * kernel's time is flat and node:crypto's grows, so the kernel is worst off at a step's
 * first length, and the crossover is the first step start where node:crypto wins.
 * Measured with the sweep now in `npm run bench:micro -- --only crossover` (then `node
 * dist/bench/mac.js`: L = 56, 120, …, 1400; p50 of 256-call batches; node:crypto given one `update` of a contiguous canonical view) on
 * "Intel(R) Xeon(R) Processor" 2.6 GHz with SHA-NI, 2 cores, Node v20.20.2, 5 runs: the
 * first step start where node:crypto won was 504, 568, 632, 632, 696. At L = 504
 * (10 compressions) kernel 1.69-1.85 µs vs node:crypto 1.69-2.05 µs (ratio 1.00-1.11);
 * at L = 440 (9 compressions) ratio 1.10-1.23; at L = 1388 (1400-byte datagram) kernel
 * ≈ 4.0-4.2 µs vs node:crypto ≈ 2.3-2.7 µs. The lowest run is taken, so the kernel is
 * never the slower path (L = 504 is a 516-byte datagram).
 */
export const KERNEL_CROSSOVER_BYTES: number = 504;

/** FIPS 180-4 §5.3.3 initial hash value H(0) for SHA-256. */
const IV = Int32Array.of(
  0x6a09e667, 0xbb67ae85 | 0, 0x3c6ef372, 0xa54ff53a | 0, 0x510e527f, 0x9b05688c | 0, 0x1f83d9ab, 0x5be0cd19,
);

// Module scratch, allocated once. Reuse is safe: each isolate (main thread or worker)
// runs JS single-threaded and no function here calls back into user code or re-enters,
// so two calls can never interleave on these arrays (SharedArrayBuffer *inputs* are
// read, never this scratch, which is private to the isolate).
/** Chaining value H(i) (FIPS 180-4 §6.2.2) in/out of the compression functions. */
const H = new Int32Array(8);
/**
 * Message-word scratch (the block buffer): words [0, 32) hold the one or two final
 * padded inner blocks, words [32, 48) the outer block, whose second half is the fixed
 * SHA-256 padding of a 96-byte message (opad block + 32-byte inner digest) and is
 * written once here and never overwritten. The message schedule W[0..63] itself lives
 * in a rolling window of 16 locals inside the compression functions (no W[64] array).
 */
const M = new Int32Array(48);
M[40] = 0x80000000 | 0;
M[47] = (64 + 32) * 8;

/**
 * One SHA-256 compression (FIPS 180-4 §6.2.2 steps 1-4) of the 64-byte block
 * p[o .. o+64) read big-endian byte by byte, updating {@link H}. Mechanically unrolled
 * (measured fastest, see the module comment): round t uses the working variables
 * renamed instead of shifted — (a..h) of round t+1 is (h', a, b, c, d', e, f, g) of
 * round t — and W_t lives in the 16 locals w0..w15, w(t mod 16) being overwritten by
 * W_t = σ1(W_t-2) + W_t-7 + σ0(W_t-15) + W_t-16 for t ≥ 16. K_t are FIPS 180-4 §4.2.2.
 * Σ/σ use the nested rotation forms, Maj the form b ^ ((a ^ b) & (b ^ c)) with
 * `x`/`y` carrying a ^ b from one round to the next (b ^ c of the next round).
 */
function compressBytes(p: Uint8Array, o: number): void {
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7], t = 0;
  let w0 = (p[o] << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3];
  let w1 = (p[o + 4] << 24) | (p[o + 5] << 16) | (p[o + 6] << 8) | p[o + 7];
  let w2 = (p[o + 8] << 24) | (p[o + 9] << 16) | (p[o + 10] << 8) | p[o + 11];
  let w3 = (p[o + 12] << 24) | (p[o + 13] << 16) | (p[o + 14] << 8) | p[o + 15];
  let w4 = (p[o + 16] << 24) | (p[o + 17] << 16) | (p[o + 18] << 8) | p[o + 19];
  let w5 = (p[o + 20] << 24) | (p[o + 21] << 16) | (p[o + 22] << 8) | p[o + 23];
  let w6 = (p[o + 24] << 24) | (p[o + 25] << 16) | (p[o + 26] << 8) | p[o + 27];
  let w7 = (p[o + 28] << 24) | (p[o + 29] << 16) | (p[o + 30] << 8) | p[o + 31];
  let w8 = (p[o + 32] << 24) | (p[o + 33] << 16) | (p[o + 34] << 8) | p[o + 35];
  let w9 = (p[o + 36] << 24) | (p[o + 37] << 16) | (p[o + 38] << 8) | p[o + 39];
  let w10 = (p[o + 40] << 24) | (p[o + 41] << 16) | (p[o + 42] << 8) | p[o + 43];
  let w11 = (p[o + 44] << 24) | (p[o + 45] << 16) | (p[o + 46] << 8) | p[o + 47];
  let w12 = (p[o + 48] << 24) | (p[o + 49] << 16) | (p[o + 50] << 8) | p[o + 51];
  let w13 = (p[o + 52] << 24) | (p[o + 53] << 16) | (p[o + 54] << 8) | p[o + 55];
  let w14 = (p[o + 56] << 24) | (p[o + 57] << 16) | (p[o + 58] << 8) | p[o + 59];
  let w15 = (p[o + 60] << 24) | (p[o + 61] << 16) | (p[o + 62] << 8) | p[o + 63];
  let s = 0, u = 0;
  let x = b ^ c, y = 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x428a2f98 + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x71374491 + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0xb5c0fbcf | 0) + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0xe9b5dba5 | 0) + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x3956c25b + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x59f111f1 + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0x923f82a4 | 0) + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0xab1c5ed5 | 0) + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0xd807aa98 | 0) + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x12835b01 + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x243185be + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x550c7dc3 + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x72be5d74 + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0x80deb1fe | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0x9bdc06a7 | 0) + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0xc19bf174 | 0) + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w14 ^ ((w14 >>> 2) | (w14 << 30));
  u = w1 ^ ((w1 >>> 11) | (w1 << 21));
  w0 = (((s >>> 17) | (s << 15)) ^ (w14 >>> 10)) + w9 + (((u >>> 7) | (u << 25)) ^ (w1 >>> 3)) + w0 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0xe49b69c1 | 0) + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w15 ^ ((w15 >>> 2) | (w15 << 30));
  u = w2 ^ ((w2 >>> 11) | (w2 << 21));
  w1 = (((s >>> 17) | (s << 15)) ^ (w15 >>> 10)) + w10 + (((u >>> 7) | (u << 25)) ^ (w2 >>> 3)) + w1 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + (0xefbe4786 | 0) + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w0 ^ ((w0 >>> 2) | (w0 << 30));
  u = w3 ^ ((w3 >>> 11) | (w3 << 21));
  w2 = (((s >>> 17) | (s << 15)) ^ (w0 >>> 10)) + w11 + (((u >>> 7) | (u << 25)) ^ (w3 >>> 3)) + w2 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x0fc19dc6 + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w1 ^ ((w1 >>> 2) | (w1 << 30));
  u = w4 ^ ((w4 >>> 11) | (w4 << 21));
  w3 = (((s >>> 17) | (s << 15)) ^ (w1 >>> 10)) + w12 + (((u >>> 7) | (u << 25)) ^ (w4 >>> 3)) + w3 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x240ca1cc + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w2 ^ ((w2 >>> 2) | (w2 << 30));
  u = w5 ^ ((w5 >>> 11) | (w5 << 21));
  w4 = (((s >>> 17) | (s << 15)) ^ (w2 >>> 10)) + w13 + (((u >>> 7) | (u << 25)) ^ (w5 >>> 3)) + w4 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x2de92c6f + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w3 ^ ((w3 >>> 2) | (w3 << 30));
  u = w6 ^ ((w6 >>> 11) | (w6 << 21));
  w5 = (((s >>> 17) | (s << 15)) ^ (w3 >>> 10)) + w14 + (((u >>> 7) | (u << 25)) ^ (w6 >>> 3)) + w5 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x4a7484aa + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w4 ^ ((w4 >>> 2) | (w4 << 30));
  u = w7 ^ ((w7 >>> 11) | (w7 << 21));
  w6 = (((s >>> 17) | (s << 15)) ^ (w4 >>> 10)) + w15 + (((u >>> 7) | (u << 25)) ^ (w7 >>> 3)) + w6 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + 0x5cb0a9dc + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w5 ^ ((w5 >>> 2) | (w5 << 30));
  u = w8 ^ ((w8 >>> 11) | (w8 << 21));
  w7 = (((s >>> 17) | (s << 15)) ^ (w5 >>> 10)) + w0 + (((u >>> 7) | (u << 25)) ^ (w8 >>> 3)) + w7 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x76f988da + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w6 ^ ((w6 >>> 2) | (w6 << 30));
  u = w9 ^ ((w9 >>> 11) | (w9 << 21));
  w8 = (((s >>> 17) | (s << 15)) ^ (w6 >>> 10)) + w1 + (((u >>> 7) | (u << 25)) ^ (w9 >>> 3)) + w8 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0x983e5152 | 0) + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w7 ^ ((w7 >>> 2) | (w7 << 30));
  u = w10 ^ ((w10 >>> 11) | (w10 << 21));
  w9 = (((s >>> 17) | (s << 15)) ^ (w7 >>> 10)) + w2 + (((u >>> 7) | (u << 25)) ^ (w10 >>> 3)) + w9 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + (0xa831c66d | 0) + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w8 ^ ((w8 >>> 2) | (w8 << 30));
  u = w11 ^ ((w11 >>> 11) | (w11 << 21));
  w10 = (((s >>> 17) | (s << 15)) ^ (w8 >>> 10)) + w3 + (((u >>> 7) | (u << 25)) ^ (w11 >>> 3)) + w10 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0xb00327c8 | 0) + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w9 ^ ((w9 >>> 2) | (w9 << 30));
  u = w12 ^ ((w12 >>> 11) | (w12 << 21));
  w11 = (((s >>> 17) | (s << 15)) ^ (w9 >>> 10)) + w4 + (((u >>> 7) | (u << 25)) ^ (w12 >>> 3)) + w11 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0xbf597fc7 | 0) + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w10 ^ ((w10 >>> 2) | (w10 << 30));
  u = w13 ^ ((w13 >>> 11) | (w13 << 21));
  w12 = (((s >>> 17) | (s << 15)) ^ (w10 >>> 10)) + w5 + (((u >>> 7) | (u << 25)) ^ (w13 >>> 3)) + w12 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + (0xc6e00bf3 | 0) + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w11 ^ ((w11 >>> 2) | (w11 << 30));
  u = w14 ^ ((w14 >>> 11) | (w14 << 21));
  w13 = (((s >>> 17) | (s << 15)) ^ (w11 >>> 10)) + w6 + (((u >>> 7) | (u << 25)) ^ (w14 >>> 3)) + w13 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0xd5a79147 | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w12 ^ ((w12 >>> 2) | (w12 << 30));
  u = w15 ^ ((w15 >>> 11) | (w15 << 21));
  w14 = (((s >>> 17) | (s << 15)) ^ (w12 >>> 10)) + w7 + (((u >>> 7) | (u << 25)) ^ (w15 >>> 3)) + w14 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + 0x06ca6351 + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w13 ^ ((w13 >>> 2) | (w13 << 30));
  u = w0 ^ ((w0 >>> 11) | (w0 << 21));
  w15 = (((s >>> 17) | (s << 15)) ^ (w13 >>> 10)) + w8 + (((u >>> 7) | (u << 25)) ^ (w0 >>> 3)) + w15 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x14292967 + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w14 ^ ((w14 >>> 2) | (w14 << 30));
  u = w1 ^ ((w1 >>> 11) | (w1 << 21));
  w0 = (((s >>> 17) | (s << 15)) ^ (w14 >>> 10)) + w9 + (((u >>> 7) | (u << 25)) ^ (w1 >>> 3)) + w0 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x27b70a85 + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w15 ^ ((w15 >>> 2) | (w15 << 30));
  u = w2 ^ ((w2 >>> 11) | (w2 << 21));
  w1 = (((s >>> 17) | (s << 15)) ^ (w15 >>> 10)) + w10 + (((u >>> 7) | (u << 25)) ^ (w2 >>> 3)) + w1 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x2e1b2138 + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w0 ^ ((w0 >>> 2) | (w0 << 30));
  u = w3 ^ ((w3 >>> 11) | (w3 << 21));
  w2 = (((s >>> 17) | (s << 15)) ^ (w0 >>> 10)) + w11 + (((u >>> 7) | (u << 25)) ^ (w3 >>> 3)) + w2 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x4d2c6dfc + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w1 ^ ((w1 >>> 2) | (w1 << 30));
  u = w4 ^ ((w4 >>> 11) | (w4 << 21));
  w3 = (((s >>> 17) | (s << 15)) ^ (w1 >>> 10)) + w12 + (((u >>> 7) | (u << 25)) ^ (w4 >>> 3)) + w3 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x53380d13 + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w2 ^ ((w2 >>> 2) | (w2 << 30));
  u = w5 ^ ((w5 >>> 11) | (w5 << 21));
  w4 = (((s >>> 17) | (s << 15)) ^ (w2 >>> 10)) + w13 + (((u >>> 7) | (u << 25)) ^ (w5 >>> 3)) + w4 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x650a7354 + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w3 ^ ((w3 >>> 2) | (w3 << 30));
  u = w6 ^ ((w6 >>> 11) | (w6 << 21));
  w5 = (((s >>> 17) | (s << 15)) ^ (w3 >>> 10)) + w14 + (((u >>> 7) | (u << 25)) ^ (w6 >>> 3)) + w5 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x766a0abb + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w4 ^ ((w4 >>> 2) | (w4 << 30));
  u = w7 ^ ((w7 >>> 11) | (w7 << 21));
  w6 = (((s >>> 17) | (s << 15)) ^ (w4 >>> 10)) + w15 + (((u >>> 7) | (u << 25)) ^ (w7 >>> 3)) + w6 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0x81c2c92e | 0) + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w5 ^ ((w5 >>> 2) | (w5 << 30));
  u = w8 ^ ((w8 >>> 11) | (w8 << 21));
  w7 = (((s >>> 17) | (s << 15)) ^ (w5 >>> 10)) + w0 + (((u >>> 7) | (u << 25)) ^ (w8 >>> 3)) + w7 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0x92722c85 | 0) + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w6 ^ ((w6 >>> 2) | (w6 << 30));
  u = w9 ^ ((w9 >>> 11) | (w9 << 21));
  w8 = (((s >>> 17) | (s << 15)) ^ (w6 >>> 10)) + w1 + (((u >>> 7) | (u << 25)) ^ (w9 >>> 3)) + w8 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0xa2bfe8a1 | 0) + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w7 ^ ((w7 >>> 2) | (w7 << 30));
  u = w10 ^ ((w10 >>> 11) | (w10 << 21));
  w9 = (((s >>> 17) | (s << 15)) ^ (w7 >>> 10)) + w2 + (((u >>> 7) | (u << 25)) ^ (w10 >>> 3)) + w9 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + (0xa81a664b | 0) + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w8 ^ ((w8 >>> 2) | (w8 << 30));
  u = w11 ^ ((w11 >>> 11) | (w11 << 21));
  w10 = (((s >>> 17) | (s << 15)) ^ (w8 >>> 10)) + w3 + (((u >>> 7) | (u << 25)) ^ (w11 >>> 3)) + w10 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0xc24b8b70 | 0) + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w9 ^ ((w9 >>> 2) | (w9 << 30));
  u = w12 ^ ((w12 >>> 11) | (w12 << 21));
  w11 = (((s >>> 17) | (s << 15)) ^ (w9 >>> 10)) + w4 + (((u >>> 7) | (u << 25)) ^ (w12 >>> 3)) + w11 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0xc76c51a3 | 0) + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w10 ^ ((w10 >>> 2) | (w10 << 30));
  u = w13 ^ ((w13 >>> 11) | (w13 << 21));
  w12 = (((s >>> 17) | (s << 15)) ^ (w10 >>> 10)) + w5 + (((u >>> 7) | (u << 25)) ^ (w13 >>> 3)) + w12 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + (0xd192e819 | 0) + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w11 ^ ((w11 >>> 2) | (w11 << 30));
  u = w14 ^ ((w14 >>> 11) | (w14 << 21));
  w13 = (((s >>> 17) | (s << 15)) ^ (w11 >>> 10)) + w6 + (((u >>> 7) | (u << 25)) ^ (w14 >>> 3)) + w13 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0xd6990624 | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w12 ^ ((w12 >>> 2) | (w12 << 30));
  u = w15 ^ ((w15 >>> 11) | (w15 << 21));
  w14 = (((s >>> 17) | (s << 15)) ^ (w12 >>> 10)) + w7 + (((u >>> 7) | (u << 25)) ^ (w15 >>> 3)) + w14 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0xf40e3585 | 0) + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w13 ^ ((w13 >>> 2) | (w13 << 30));
  u = w0 ^ ((w0 >>> 11) | (w0 << 21));
  w15 = (((s >>> 17) | (s << 15)) ^ (w13 >>> 10)) + w8 + (((u >>> 7) | (u << 25)) ^ (w0 >>> 3)) + w15 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x106aa070 + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w14 ^ ((w14 >>> 2) | (w14 << 30));
  u = w1 ^ ((w1 >>> 11) | (w1 << 21));
  w0 = (((s >>> 17) | (s << 15)) ^ (w14 >>> 10)) + w9 + (((u >>> 7) | (u << 25)) ^ (w1 >>> 3)) + w0 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x19a4c116 + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w15 ^ ((w15 >>> 2) | (w15 << 30));
  u = w2 ^ ((w2 >>> 11) | (w2 << 21));
  w1 = (((s >>> 17) | (s << 15)) ^ (w15 >>> 10)) + w10 + (((u >>> 7) | (u << 25)) ^ (w2 >>> 3)) + w1 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x1e376c08 + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w0 ^ ((w0 >>> 2) | (w0 << 30));
  u = w3 ^ ((w3 >>> 11) | (w3 << 21));
  w2 = (((s >>> 17) | (s << 15)) ^ (w0 >>> 10)) + w11 + (((u >>> 7) | (u << 25)) ^ (w3 >>> 3)) + w2 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x2748774c + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w1 ^ ((w1 >>> 2) | (w1 << 30));
  u = w4 ^ ((w4 >>> 11) | (w4 << 21));
  w3 = (((s >>> 17) | (s << 15)) ^ (w1 >>> 10)) + w12 + (((u >>> 7) | (u << 25)) ^ (w4 >>> 3)) + w3 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x34b0bcb5 + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w2 ^ ((w2 >>> 2) | (w2 << 30));
  u = w5 ^ ((w5 >>> 11) | (w5 << 21));
  w4 = (((s >>> 17) | (s << 15)) ^ (w2 >>> 10)) + w13 + (((u >>> 7) | (u << 25)) ^ (w5 >>> 3)) + w4 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x391c0cb3 + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w3 ^ ((w3 >>> 2) | (w3 << 30));
  u = w6 ^ ((w6 >>> 11) | (w6 << 21));
  w5 = (((s >>> 17) | (s << 15)) ^ (w3 >>> 10)) + w14 + (((u >>> 7) | (u << 25)) ^ (w6 >>> 3)) + w5 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x4ed8aa4a + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w4 ^ ((w4 >>> 2) | (w4 << 30));
  u = w7 ^ ((w7 >>> 11) | (w7 << 21));
  w6 = (((s >>> 17) | (s << 15)) ^ (w4 >>> 10)) + w15 + (((u >>> 7) | (u << 25)) ^ (w7 >>> 3)) + w6 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + 0x5b9cca4f + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w5 ^ ((w5 >>> 2) | (w5 << 30));
  u = w8 ^ ((w8 >>> 11) | (w8 << 21));
  w7 = (((s >>> 17) | (s << 15)) ^ (w5 >>> 10)) + w0 + (((u >>> 7) | (u << 25)) ^ (w8 >>> 3)) + w7 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x682e6ff3 + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w6 ^ ((w6 >>> 2) | (w6 << 30));
  u = w9 ^ ((w9 >>> 11) | (w9 << 21));
  w8 = (((s >>> 17) | (s << 15)) ^ (w6 >>> 10)) + w1 + (((u >>> 7) | (u << 25)) ^ (w9 >>> 3)) + w8 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x748f82ee + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w7 ^ ((w7 >>> 2) | (w7 << 30));
  u = w10 ^ ((w10 >>> 11) | (w10 << 21));
  w9 = (((s >>> 17) | (s << 15)) ^ (w7 >>> 10)) + w2 + (((u >>> 7) | (u << 25)) ^ (w10 >>> 3)) + w9 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x78a5636f + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w8 ^ ((w8 >>> 2) | (w8 << 30));
  u = w11 ^ ((w11 >>> 11) | (w11 << 21));
  w10 = (((s >>> 17) | (s << 15)) ^ (w8 >>> 10)) + w3 + (((u >>> 7) | (u << 25)) ^ (w11 >>> 3)) + w10 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0x84c87814 | 0) + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w9 ^ ((w9 >>> 2) | (w9 << 30));
  u = w12 ^ ((w12 >>> 11) | (w12 << 21));
  w11 = (((s >>> 17) | (s << 15)) ^ (w9 >>> 10)) + w4 + (((u >>> 7) | (u << 25)) ^ (w12 >>> 3)) + w11 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0x8cc70208 | 0) + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w10 ^ ((w10 >>> 2) | (w10 << 30));
  u = w13 ^ ((w13 >>> 11) | (w13 << 21));
  w12 = (((s >>> 17) | (s << 15)) ^ (w10 >>> 10)) + w5 + (((u >>> 7) | (u << 25)) ^ (w13 >>> 3)) + w12 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + (0x90befffa | 0) + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w11 ^ ((w11 >>> 2) | (w11 << 30));
  u = w14 ^ ((w14 >>> 11) | (w14 << 21));
  w13 = (((s >>> 17) | (s << 15)) ^ (w11 >>> 10)) + w6 + (((u >>> 7) | (u << 25)) ^ (w14 >>> 3)) + w13 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0xa4506ceb | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w12 ^ ((w12 >>> 2) | (w12 << 30));
  u = w15 ^ ((w15 >>> 11) | (w15 << 21));
  w14 = (((s >>> 17) | (s << 15)) ^ (w12 >>> 10)) + w7 + (((u >>> 7) | (u << 25)) ^ (w15 >>> 3)) + w14 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0xbef9a3f7 | 0) + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w13 ^ ((w13 >>> 2) | (w13 << 30));
  u = w0 ^ ((w0 >>> 11) | (w0 << 21));
  w15 = (((s >>> 17) | (s << 15)) ^ (w13 >>> 10)) + w8 + (((u >>> 7) | (u << 25)) ^ (w0 >>> 3)) + w15 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0xc67178f2 | 0) + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  H[0] = H[0] + a | 0; H[1] = H[1] + b | 0; H[2] = H[2] + c | 0; H[3] = H[3] + d | 0;
  H[4] = H[4] + e | 0; H[5] = H[5] + f | 0; H[6] = H[6] + g | 0; H[7] = H[7] + h | 0;
}

/** As {@link compressBytes}, for a block already in words: m[mo .. mo+16). */
function compressWords(m: Int32Array, mo: number): void {
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7], t = 0;
  let w0 = m[mo];
  let w1 = m[mo + 1];
  let w2 = m[mo + 2];
  let w3 = m[mo + 3];
  let w4 = m[mo + 4];
  let w5 = m[mo + 5];
  let w6 = m[mo + 6];
  let w7 = m[mo + 7];
  let w8 = m[mo + 8];
  let w9 = m[mo + 9];
  let w10 = m[mo + 10];
  let w11 = m[mo + 11];
  let w12 = m[mo + 12];
  let w13 = m[mo + 13];
  let w14 = m[mo + 14];
  let w15 = m[mo + 15];
  let s = 0, u = 0;
  let x = b ^ c, y = 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x428a2f98 + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x71374491 + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0xb5c0fbcf | 0) + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0xe9b5dba5 | 0) + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x3956c25b + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x59f111f1 + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0x923f82a4 | 0) + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0xab1c5ed5 | 0) + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0xd807aa98 | 0) + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x12835b01 + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x243185be + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x550c7dc3 + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x72be5d74 + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0x80deb1fe | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0x9bdc06a7 | 0) + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0xc19bf174 | 0) + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w14 ^ ((w14 >>> 2) | (w14 << 30));
  u = w1 ^ ((w1 >>> 11) | (w1 << 21));
  w0 = (((s >>> 17) | (s << 15)) ^ (w14 >>> 10)) + w9 + (((u >>> 7) | (u << 25)) ^ (w1 >>> 3)) + w0 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0xe49b69c1 | 0) + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w15 ^ ((w15 >>> 2) | (w15 << 30));
  u = w2 ^ ((w2 >>> 11) | (w2 << 21));
  w1 = (((s >>> 17) | (s << 15)) ^ (w15 >>> 10)) + w10 + (((u >>> 7) | (u << 25)) ^ (w2 >>> 3)) + w1 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + (0xefbe4786 | 0) + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w0 ^ ((w0 >>> 2) | (w0 << 30));
  u = w3 ^ ((w3 >>> 11) | (w3 << 21));
  w2 = (((s >>> 17) | (s << 15)) ^ (w0 >>> 10)) + w11 + (((u >>> 7) | (u << 25)) ^ (w3 >>> 3)) + w2 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x0fc19dc6 + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w1 ^ ((w1 >>> 2) | (w1 << 30));
  u = w4 ^ ((w4 >>> 11) | (w4 << 21));
  w3 = (((s >>> 17) | (s << 15)) ^ (w1 >>> 10)) + w12 + (((u >>> 7) | (u << 25)) ^ (w4 >>> 3)) + w3 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x240ca1cc + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w2 ^ ((w2 >>> 2) | (w2 << 30));
  u = w5 ^ ((w5 >>> 11) | (w5 << 21));
  w4 = (((s >>> 17) | (s << 15)) ^ (w2 >>> 10)) + w13 + (((u >>> 7) | (u << 25)) ^ (w5 >>> 3)) + w4 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x2de92c6f + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w3 ^ ((w3 >>> 2) | (w3 << 30));
  u = w6 ^ ((w6 >>> 11) | (w6 << 21));
  w5 = (((s >>> 17) | (s << 15)) ^ (w3 >>> 10)) + w14 + (((u >>> 7) | (u << 25)) ^ (w6 >>> 3)) + w5 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x4a7484aa + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w4 ^ ((w4 >>> 2) | (w4 << 30));
  u = w7 ^ ((w7 >>> 11) | (w7 << 21));
  w6 = (((s >>> 17) | (s << 15)) ^ (w4 >>> 10)) + w15 + (((u >>> 7) | (u << 25)) ^ (w7 >>> 3)) + w6 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + 0x5cb0a9dc + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w5 ^ ((w5 >>> 2) | (w5 << 30));
  u = w8 ^ ((w8 >>> 11) | (w8 << 21));
  w7 = (((s >>> 17) | (s << 15)) ^ (w5 >>> 10)) + w0 + (((u >>> 7) | (u << 25)) ^ (w8 >>> 3)) + w7 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x76f988da + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w6 ^ ((w6 >>> 2) | (w6 << 30));
  u = w9 ^ ((w9 >>> 11) | (w9 << 21));
  w8 = (((s >>> 17) | (s << 15)) ^ (w6 >>> 10)) + w1 + (((u >>> 7) | (u << 25)) ^ (w9 >>> 3)) + w8 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0x983e5152 | 0) + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w7 ^ ((w7 >>> 2) | (w7 << 30));
  u = w10 ^ ((w10 >>> 11) | (w10 << 21));
  w9 = (((s >>> 17) | (s << 15)) ^ (w7 >>> 10)) + w2 + (((u >>> 7) | (u << 25)) ^ (w10 >>> 3)) + w9 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + (0xa831c66d | 0) + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w8 ^ ((w8 >>> 2) | (w8 << 30));
  u = w11 ^ ((w11 >>> 11) | (w11 << 21));
  w10 = (((s >>> 17) | (s << 15)) ^ (w8 >>> 10)) + w3 + (((u >>> 7) | (u << 25)) ^ (w11 >>> 3)) + w10 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0xb00327c8 | 0) + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w9 ^ ((w9 >>> 2) | (w9 << 30));
  u = w12 ^ ((w12 >>> 11) | (w12 << 21));
  w11 = (((s >>> 17) | (s << 15)) ^ (w9 >>> 10)) + w4 + (((u >>> 7) | (u << 25)) ^ (w12 >>> 3)) + w11 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0xbf597fc7 | 0) + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w10 ^ ((w10 >>> 2) | (w10 << 30));
  u = w13 ^ ((w13 >>> 11) | (w13 << 21));
  w12 = (((s >>> 17) | (s << 15)) ^ (w10 >>> 10)) + w5 + (((u >>> 7) | (u << 25)) ^ (w13 >>> 3)) + w12 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + (0xc6e00bf3 | 0) + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w11 ^ ((w11 >>> 2) | (w11 << 30));
  u = w14 ^ ((w14 >>> 11) | (w14 << 21));
  w13 = (((s >>> 17) | (s << 15)) ^ (w11 >>> 10)) + w6 + (((u >>> 7) | (u << 25)) ^ (w14 >>> 3)) + w13 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0xd5a79147 | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w12 ^ ((w12 >>> 2) | (w12 << 30));
  u = w15 ^ ((w15 >>> 11) | (w15 << 21));
  w14 = (((s >>> 17) | (s << 15)) ^ (w12 >>> 10)) + w7 + (((u >>> 7) | (u << 25)) ^ (w15 >>> 3)) + w14 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + 0x06ca6351 + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w13 ^ ((w13 >>> 2) | (w13 << 30));
  u = w0 ^ ((w0 >>> 11) | (w0 << 21));
  w15 = (((s >>> 17) | (s << 15)) ^ (w13 >>> 10)) + w8 + (((u >>> 7) | (u << 25)) ^ (w0 >>> 3)) + w15 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x14292967 + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w14 ^ ((w14 >>> 2) | (w14 << 30));
  u = w1 ^ ((w1 >>> 11) | (w1 << 21));
  w0 = (((s >>> 17) | (s << 15)) ^ (w14 >>> 10)) + w9 + (((u >>> 7) | (u << 25)) ^ (w1 >>> 3)) + w0 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x27b70a85 + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w15 ^ ((w15 >>> 2) | (w15 << 30));
  u = w2 ^ ((w2 >>> 11) | (w2 << 21));
  w1 = (((s >>> 17) | (s << 15)) ^ (w15 >>> 10)) + w10 + (((u >>> 7) | (u << 25)) ^ (w2 >>> 3)) + w1 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x2e1b2138 + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w0 ^ ((w0 >>> 2) | (w0 << 30));
  u = w3 ^ ((w3 >>> 11) | (w3 << 21));
  w2 = (((s >>> 17) | (s << 15)) ^ (w0 >>> 10)) + w11 + (((u >>> 7) | (u << 25)) ^ (w3 >>> 3)) + w2 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x4d2c6dfc + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w1 ^ ((w1 >>> 2) | (w1 << 30));
  u = w4 ^ ((w4 >>> 11) | (w4 << 21));
  w3 = (((s >>> 17) | (s << 15)) ^ (w1 >>> 10)) + w12 + (((u >>> 7) | (u << 25)) ^ (w4 >>> 3)) + w3 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x53380d13 + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w2 ^ ((w2 >>> 2) | (w2 << 30));
  u = w5 ^ ((w5 >>> 11) | (w5 << 21));
  w4 = (((s >>> 17) | (s << 15)) ^ (w2 >>> 10)) + w13 + (((u >>> 7) | (u << 25)) ^ (w5 >>> 3)) + w4 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x650a7354 + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w3 ^ ((w3 >>> 2) | (w3 << 30));
  u = w6 ^ ((w6 >>> 11) | (w6 << 21));
  w5 = (((s >>> 17) | (s << 15)) ^ (w3 >>> 10)) + w14 + (((u >>> 7) | (u << 25)) ^ (w6 >>> 3)) + w5 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x766a0abb + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w4 ^ ((w4 >>> 2) | (w4 << 30));
  u = w7 ^ ((w7 >>> 11) | (w7 << 21));
  w6 = (((s >>> 17) | (s << 15)) ^ (w4 >>> 10)) + w15 + (((u >>> 7) | (u << 25)) ^ (w7 >>> 3)) + w6 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0x81c2c92e | 0) + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w5 ^ ((w5 >>> 2) | (w5 << 30));
  u = w8 ^ ((w8 >>> 11) | (w8 << 21));
  w7 = (((s >>> 17) | (s << 15)) ^ (w5 >>> 10)) + w0 + (((u >>> 7) | (u << 25)) ^ (w8 >>> 3)) + w7 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0x92722c85 | 0) + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w6 ^ ((w6 >>> 2) | (w6 << 30));
  u = w9 ^ ((w9 >>> 11) | (w9 << 21));
  w8 = (((s >>> 17) | (s << 15)) ^ (w6 >>> 10)) + w1 + (((u >>> 7) | (u << 25)) ^ (w9 >>> 3)) + w8 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + (0xa2bfe8a1 | 0) + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w7 ^ ((w7 >>> 2) | (w7 << 30));
  u = w10 ^ ((w10 >>> 11) | (w10 << 21));
  w9 = (((s >>> 17) | (s << 15)) ^ (w7 >>> 10)) + w2 + (((u >>> 7) | (u << 25)) ^ (w10 >>> 3)) + w9 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + (0xa81a664b | 0) + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w8 ^ ((w8 >>> 2) | (w8 << 30));
  u = w11 ^ ((w11 >>> 11) | (w11 << 21));
  w10 = (((s >>> 17) | (s << 15)) ^ (w8 >>> 10)) + w3 + (((u >>> 7) | (u << 25)) ^ (w11 >>> 3)) + w10 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0xc24b8b70 | 0) + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w9 ^ ((w9 >>> 2) | (w9 << 30));
  u = w12 ^ ((w12 >>> 11) | (w12 << 21));
  w11 = (((s >>> 17) | (s << 15)) ^ (w9 >>> 10)) + w4 + (((u >>> 7) | (u << 25)) ^ (w12 >>> 3)) + w11 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0xc76c51a3 | 0) + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w10 ^ ((w10 >>> 2) | (w10 << 30));
  u = w13 ^ ((w13 >>> 11) | (w13 << 21));
  w12 = (((s >>> 17) | (s << 15)) ^ (w10 >>> 10)) + w5 + (((u >>> 7) | (u << 25)) ^ (w13 >>> 3)) + w12 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + (0xd192e819 | 0) + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w11 ^ ((w11 >>> 2) | (w11 << 30));
  u = w14 ^ ((w14 >>> 11) | (w14 << 21));
  w13 = (((s >>> 17) | (s << 15)) ^ (w11 >>> 10)) + w6 + (((u >>> 7) | (u << 25)) ^ (w14 >>> 3)) + w13 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0xd6990624 | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w12 ^ ((w12 >>> 2) | (w12 << 30));
  u = w15 ^ ((w15 >>> 11) | (w15 << 21));
  w14 = (((s >>> 17) | (s << 15)) ^ (w12 >>> 10)) + w7 + (((u >>> 7) | (u << 25)) ^ (w15 >>> 3)) + w14 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0xf40e3585 | 0) + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w13 ^ ((w13 >>> 2) | (w13 << 30));
  u = w0 ^ ((w0 >>> 11) | (w0 << 21));
  w15 = (((s >>> 17) | (s << 15)) ^ (w13 >>> 10)) + w8 + (((u >>> 7) | (u << 25)) ^ (w0 >>> 3)) + w15 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x106aa070 + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w14 ^ ((w14 >>> 2) | (w14 << 30));
  u = w1 ^ ((w1 >>> 11) | (w1 << 21));
  w0 = (((s >>> 17) | (s << 15)) ^ (w14 >>> 10)) + w9 + (((u >>> 7) | (u << 25)) ^ (w1 >>> 3)) + w0 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x19a4c116 + w0 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w15 ^ ((w15 >>> 2) | (w15 << 30));
  u = w2 ^ ((w2 >>> 11) | (w2 << 21));
  w1 = (((s >>> 17) | (s << 15)) ^ (w15 >>> 10)) + w10 + (((u >>> 7) | (u << 25)) ^ (w2 >>> 3)) + w1 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x1e376c08 + w1 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w0 ^ ((w0 >>> 2) | (w0 << 30));
  u = w3 ^ ((w3 >>> 11) | (w3 << 21));
  w2 = (((s >>> 17) | (s << 15)) ^ (w0 >>> 10)) + w11 + (((u >>> 7) | (u << 25)) ^ (w3 >>> 3)) + w2 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + 0x2748774c + w2 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w1 ^ ((w1 >>> 2) | (w1 << 30));
  u = w4 ^ ((w4 >>> 11) | (w4 << 21));
  w3 = (((s >>> 17) | (s << 15)) ^ (w1 >>> 10)) + w12 + (((u >>> 7) | (u << 25)) ^ (w4 >>> 3)) + w3 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + 0x34b0bcb5 + w3 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w2 ^ ((w2 >>> 2) | (w2 << 30));
  u = w5 ^ ((w5 >>> 11) | (w5 << 21));
  w4 = (((s >>> 17) | (s << 15)) ^ (w2 >>> 10)) + w13 + (((u >>> 7) | (u << 25)) ^ (w5 >>> 3)) + w4 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + 0x391c0cb3 + w4 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w3 ^ ((w3 >>> 2) | (w3 << 30));
  u = w6 ^ ((w6 >>> 11) | (w6 << 21));
  w5 = (((s >>> 17) | (s << 15)) ^ (w3 >>> 10)) + w14 + (((u >>> 7) | (u << 25)) ^ (w6 >>> 3)) + w5 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + 0x4ed8aa4a + w5 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w4 ^ ((w4 >>> 2) | (w4 << 30));
  u = w7 ^ ((w7 >>> 11) | (w7 << 21));
  w6 = (((s >>> 17) | (s << 15)) ^ (w4 >>> 10)) + w15 + (((u >>> 7) | (u << 25)) ^ (w7 >>> 3)) + w6 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + 0x5b9cca4f + w6 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w5 ^ ((w5 >>> 2) | (w5 << 30));
  u = w8 ^ ((w8 >>> 11) | (w8 << 21));
  w7 = (((s >>> 17) | (s << 15)) ^ (w5 >>> 10)) + w0 + (((u >>> 7) | (u << 25)) ^ (w8 >>> 3)) + w7 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + 0x682e6ff3 + w7 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  s = w6 ^ ((w6 >>> 2) | (w6 << 30));
  u = w9 ^ ((w9 >>> 11) | (w9 << 21));
  w8 = (((s >>> 17) | (s << 15)) ^ (w6 >>> 10)) + w1 + (((u >>> 7) | (u << 25)) ^ (w9 >>> 3)) + w8 | 0;
  s = e ^ ((e >>> 14) | (e << 18));
  s = e ^ ((s >>> 5) | (s << 27));
  t = h + ((s >>> 6) | (s << 26)) + (g ^ (e & (f ^ g))) + 0x748f82ee + w8 | 0;
  d = d + t | 0;
  y = a ^ b;
  s = a ^ ((a >>> 9) | (a << 23));
  s = a ^ ((s >>> 11) | (s << 21));
  h = t + ((s >>> 2) | (s << 30)) + (b ^ (y & x)) | 0;
  s = w7 ^ ((w7 >>> 2) | (w7 << 30));
  u = w10 ^ ((w10 >>> 11) | (w10 << 21));
  w9 = (((s >>> 17) | (s << 15)) ^ (w7 >>> 10)) + w2 + (((u >>> 7) | (u << 25)) ^ (w10 >>> 3)) + w9 | 0;
  s = d ^ ((d >>> 14) | (d << 18));
  s = d ^ ((s >>> 5) | (s << 27));
  t = g + ((s >>> 6) | (s << 26)) + (f ^ (d & (e ^ f))) + 0x78a5636f + w9 | 0;
  c = c + t | 0;
  x = h ^ a;
  s = h ^ ((h >>> 9) | (h << 23));
  s = h ^ ((s >>> 11) | (s << 21));
  g = t + ((s >>> 2) | (s << 30)) + (a ^ (x & y)) | 0;
  s = w8 ^ ((w8 >>> 2) | (w8 << 30));
  u = w11 ^ ((w11 >>> 11) | (w11 << 21));
  w10 = (((s >>> 17) | (s << 15)) ^ (w8 >>> 10)) + w3 + (((u >>> 7) | (u << 25)) ^ (w11 >>> 3)) + w10 | 0;
  s = c ^ ((c >>> 14) | (c << 18));
  s = c ^ ((s >>> 5) | (s << 27));
  t = f + ((s >>> 6) | (s << 26)) + (e ^ (c & (d ^ e))) + (0x84c87814 | 0) + w10 | 0;
  b = b + t | 0;
  y = g ^ h;
  s = g ^ ((g >>> 9) | (g << 23));
  s = g ^ ((s >>> 11) | (s << 21));
  f = t + ((s >>> 2) | (s << 30)) + (h ^ (y & x)) | 0;
  s = w9 ^ ((w9 >>> 2) | (w9 << 30));
  u = w12 ^ ((w12 >>> 11) | (w12 << 21));
  w11 = (((s >>> 17) | (s << 15)) ^ (w9 >>> 10)) + w4 + (((u >>> 7) | (u << 25)) ^ (w12 >>> 3)) + w11 | 0;
  s = b ^ ((b >>> 14) | (b << 18));
  s = b ^ ((s >>> 5) | (s << 27));
  t = e + ((s >>> 6) | (s << 26)) + (d ^ (b & (c ^ d))) + (0x8cc70208 | 0) + w11 | 0;
  a = a + t | 0;
  x = f ^ g;
  s = f ^ ((f >>> 9) | (f << 23));
  s = f ^ ((s >>> 11) | (s << 21));
  e = t + ((s >>> 2) | (s << 30)) + (g ^ (x & y)) | 0;
  s = w10 ^ ((w10 >>> 2) | (w10 << 30));
  u = w13 ^ ((w13 >>> 11) | (w13 << 21));
  w12 = (((s >>> 17) | (s << 15)) ^ (w10 >>> 10)) + w5 + (((u >>> 7) | (u << 25)) ^ (w13 >>> 3)) + w12 | 0;
  s = a ^ ((a >>> 14) | (a << 18));
  s = a ^ ((s >>> 5) | (s << 27));
  t = d + ((s >>> 6) | (s << 26)) + (c ^ (a & (b ^ c))) + (0x90befffa | 0) + w12 | 0;
  h = h + t | 0;
  y = e ^ f;
  s = e ^ ((e >>> 9) | (e << 23));
  s = e ^ ((s >>> 11) | (s << 21));
  d = t + ((s >>> 2) | (s << 30)) + (f ^ (y & x)) | 0;
  s = w11 ^ ((w11 >>> 2) | (w11 << 30));
  u = w14 ^ ((w14 >>> 11) | (w14 << 21));
  w13 = (((s >>> 17) | (s << 15)) ^ (w11 >>> 10)) + w6 + (((u >>> 7) | (u << 25)) ^ (w14 >>> 3)) + w13 | 0;
  s = h ^ ((h >>> 14) | (h << 18));
  s = h ^ ((s >>> 5) | (s << 27));
  t = c + ((s >>> 6) | (s << 26)) + (b ^ (h & (a ^ b))) + (0xa4506ceb | 0) + w13 | 0;
  g = g + t | 0;
  x = d ^ e;
  s = d ^ ((d >>> 9) | (d << 23));
  s = d ^ ((s >>> 11) | (s << 21));
  c = t + ((s >>> 2) | (s << 30)) + (e ^ (x & y)) | 0;
  s = w12 ^ ((w12 >>> 2) | (w12 << 30));
  u = w15 ^ ((w15 >>> 11) | (w15 << 21));
  w14 = (((s >>> 17) | (s << 15)) ^ (w12 >>> 10)) + w7 + (((u >>> 7) | (u << 25)) ^ (w15 >>> 3)) + w14 | 0;
  s = g ^ ((g >>> 14) | (g << 18));
  s = g ^ ((s >>> 5) | (s << 27));
  t = b + ((s >>> 6) | (s << 26)) + (a ^ (g & (h ^ a))) + (0xbef9a3f7 | 0) + w14 | 0;
  f = f + t | 0;
  y = c ^ d;
  s = c ^ ((c >>> 9) | (c << 23));
  s = c ^ ((s >>> 11) | (s << 21));
  b = t + ((s >>> 2) | (s << 30)) + (d ^ (y & x)) | 0;
  s = w13 ^ ((w13 >>> 2) | (w13 << 30));
  u = w0 ^ ((w0 >>> 11) | (w0 << 21));
  w15 = (((s >>> 17) | (s << 15)) ^ (w13 >>> 10)) + w8 + (((u >>> 7) | (u << 25)) ^ (w0 >>> 3)) + w15 | 0;
  s = f ^ ((f >>> 14) | (f << 18));
  s = f ^ ((s >>> 5) | (s << 27));
  t = a + ((s >>> 6) | (s << 26)) + (h ^ (f & (g ^ h))) + (0xc67178f2 | 0) + w15 | 0;
  e = e + t | 0;
  x = b ^ c;
  s = b ^ ((b >>> 9) | (b << 23));
  s = b ^ ((s >>> 11) | (s << 21));
  a = t + ((s >>> 2) | (s << 30)) + (c ^ (x & y)) | 0;
  H[0] = H[0] + a | 0; H[1] = H[1] + b | 0; H[2] = H[2] + c | 0; H[3] = H[3] + d | 0;
  H[4] = H[4] + e | 0; H[5] = H[5] + f | 0; H[6] = H[6] + g | 0; H[7] = H[7] + h | 0;
}

/**
 * Leaves in {@link H} the full HMAC-SHA256 of `buf[offset:offset+length] || u32be(suffix)`
 * under the precomputed key state `state[so .. so+16)`.
 */
function mac(state: Int32Array, so: number, buf: Uint8Array, offset: number, length: number, suffix: number): void {
  // Inner hash: resume after the K ^ ipad block.
  H[0] = state[so]; H[1] = state[so + 1]; H[2] = state[so + 2]; H[3] = state[so + 3];
  H[4] = state[so + 4]; H[5] = state[so + 5]; H[6] = state[so + 6]; H[7] = state[so + 7];
  let p = offset;
  const end = offset + length;
  // Whole 64-byte blocks straight from the caller's bytes.
  for (const last = end - 63; p < last; p += 64) compressBytes(buf, p);
  // Final r (0..63) message bytes, the 4 suffix bytes, 0x80, zeros and the 64-bit bit
  // length (FIPS 180-4 §5.1.1) as words in M[0, 16) or M[0, 32).
  const r = end - p;
  const q = r >>> 2;
  const k = r & 3;
  let i = 0;
  for (; i < q; i++, p += 4) M[i] = (buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3];
  if (k === 0) {
    M[q] = suffix | 0;
    M[q + 1] = 0x80000000 | 0;
  } else {
    // Word q: the k last message bytes, then the high 4-k suffix bytes; word q+1: the
    // low k suffix bytes, then the 0x80 padding byte.
    const s = k << 3;
    let w = buf[p] << 24;
    if (k > 1) w |= buf[p + 1] << 16;
    if (k > 2) w |= buf[p + 2] << 8;
    M[q] = w | (suffix >>> s);
    M[q + 1] = (suffix << (32 - s)) | (0x80 << (24 - s));
  }
  const n = r < 52 ? 16 : 32; // r + 4 + 1 + 8 <= 64 fits one block
  for (i = q + 2; i < n - 2; i++) M[i] = 0;
  const total = length + 68; // bytes hashed: ipad block + message + suffix
  M[n - 2] = (total / 0x20000000) | 0;
  M[n - 1] = total << 3;
  compressWords(M, 0);
  if (n === 32) compressWords(M, 16);
  // Outer hash: resume after the K ^ opad block; message = 32-byte inner digest.
  M[32] = H[0]; M[33] = H[1]; M[34] = H[2]; M[35] = H[3];
  M[36] = H[4]; M[37] = H[5]; M[38] = H[6]; M[39] = H[7];
  H[0] = state[so + 8]; H[1] = state[so + 9]; H[2] = state[so + 10]; H[3] = state[so + 11];
  H[4] = state[so + 12]; H[5] = state[so + 13]; H[6] = state[so + 14]; H[7] = state[so + 15];
  compressWords(M, 32);
}

/**
 * Precompute the keyed inner/outer state of HMAC-SHA256 (RFC 2104 §2 and §4) for `key`
 * (any length; keys longer than the 64-byte block are hashed first per RFC 2104 §2, and
 * shorter ones are zero-padded to 64 bytes) into `state[stateOffset .. stateOffset+16)`:
 * the SHA-256 (FIPS 180-4) chaining value after compressing `K ^ ipad` (0x36 bytes),
 * then after compressing `K ^ opad` (0x5c bytes). May allocate (called once per key).
 * `state` may be an Int32Array over a SharedArrayBuffer, to share keys with workers.
 */
export function hmacPrecompute(key: Uint8Array, state: Int32Array, stateOffset: number): void {
  const k = key.length > 64 ? sha256(key) : key;
  const block = new Uint8Array(64);
  for (let half = 0; half < 2; half++) {
    const pad = half === 0 ? 0x36 : 0x5c;
    for (let i = 0; i < 64; i++) block[i] = (i < k.length ? k[i] : 0) ^ pad;
    H.set(IV);
    compressBytes(block, 0);
    for (let i = 0; i < 8; i++) state[stateOffset + 8 * half + i] = H[i];
  }
  block.fill(0);
  H.fill(0);
}

/**
 * Write the first 16 bytes of HMAC-SHA256(key, `buf[offset:offset+length] || u32be(suffix)`)
 * into `out[outOffset .. outOffset+16)`: the 128-bit truncation of RFC 2104 §5 (leftmost
 * bytes; RFC 4231 §4.6 test case 5 shows it), over SHA-256 per FIPS 180-4. `state` is
 * the key state from {@link hmacPrecompute}; `suffix` is taken as a u32 (the payload
 * length appended big-endian to the canonical bytes). `buf`, `out` and `state` may be
 * views over a SharedArrayBuffer. No allocation, never throws for in-range arguments.
 */
export function hmacTag16(
  state: Int32Array, stateOffset: number, buf: Uint8Array, offset: number, length: number, suffix: number,
  out: Uint8Array, outOffset: number,
): void {
  mac(state, stateOffset, buf, offset, length, suffix);
  let w = H[0];
  out[outOffset] = w >>> 24; out[outOffset + 1] = w >>> 16; out[outOffset + 2] = w >>> 8; out[outOffset + 3] = w;
  w = H[1];
  out[outOffset + 4] = w >>> 24; out[outOffset + 5] = w >>> 16; out[outOffset + 6] = w >>> 8; out[outOffset + 7] = w;
  w = H[2];
  out[outOffset + 8] = w >>> 24; out[outOffset + 9] = w >>> 16; out[outOffset + 10] = w >>> 8; out[outOffset + 11] = w;
  w = H[3];
  out[outOffset + 12] = w >>> 24; out[outOffset + 13] = w >>> 16; out[outOffset + 14] = w >>> 8; out[outOffset + 15] = w;
}

/**
 * Constant-time check of a 16-byte truncated HMAC-SHA256 (RFC 2104 §5 truncation,
 * FIPS 180-4 SHA-256): computes the same MAC as {@link hmacTag16} and compares it with
 * `tag[tagOffset .. tagOffset+16)` by OR-ing the XOR of all four words — no early exit
 * and no branch on secret or tag data. Returns true when equal. No allocation.
 */
export function hmacVerify16(
  state: Int32Array, stateOffset: number, buf: Uint8Array, offset: number, length: number, suffix: number,
  tag: Uint8Array, tagOffset: number,
): boolean {
  mac(state, stateOffset, buf, offset, length, suffix);
  const o = tagOffset;
  const d =
    (H[0] ^ ((tag[o] << 24) | (tag[o + 1] << 16) | (tag[o + 2] << 8) | tag[o + 3])) |
    (H[1] ^ ((tag[o + 4] << 24) | (tag[o + 5] << 16) | (tag[o + 6] << 8) | tag[o + 7])) |
    (H[2] ^ ((tag[o + 8] << 24) | (tag[o + 9] << 16) | (tag[o + 10] << 8) | tag[o + 11])) |
    (H[3] ^ ((tag[o + 12] << 24) | (tag[o + 13] << 16) | (tag[o + 14] << 8) | tag[o + 15]));
  return d === 0;
}

/**
 * Finish a SHA-256 whose chaining value in {@link H} already covers `prefixBytes`
 * (a multiple of 64) bytes: hash `data`, pad per FIPS 180-4 §5.1.1 for a message of
 * `prefixBytes + data.length` bytes, and return the 32-byte digest. Allocates.
 */
function finish(data: Uint8Array, prefixBytes: number): Uint8Array {
  const n = data.length;
  const padded = new Uint8Array(Math.ceil((n + 9) / 64) * 64);
  padded.set(data);
  padded[n] = 0x80;
  const total = prefixBytes + n;
  const hi = Math.floor(total / 0x20000000);
  const lo = total << 3;
  const e = padded.length;
  padded[e - 8] = hi >>> 24; padded[e - 7] = hi >>> 16; padded[e - 6] = hi >>> 8; padded[e - 5] = hi;
  padded[e - 4] = lo >>> 24; padded[e - 3] = lo >>> 16; padded[e - 2] = lo >>> 8; padded[e - 1] = lo;
  for (let p = 0; p < e; p += 64) compressBytes(padded, p);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = H[i];
    out[4 * i] = w >>> 24; out[4 * i + 1] = w >>> 16; out[4 * i + 2] = w >>> 8; out[4 * i + 3] = w;
  }
  return out;
}

/**
 * Plain full HMAC-SHA256 (RFC 2104 §2 over FIPS 180-4 SHA-256; 32 bytes, the RFC 4231
 * output) of `key` / `data`. Allocates; for tests and key derivation only.
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(key, state, 0);
  H.set(state.subarray(0, 8));
  const inner = finish(data, 64);
  H.set(state.subarray(8, 16));
  return finish(inner, 64);
}

/** Plain SHA-256 (FIPS 180-4 §6.2) of `data`: the 32-byte digest. Allocates; for tests and IDs. */
export function sha256(data: Uint8Array): Uint8Array {
  H.set(IV);
  return finish(data, 0);
}
