import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  HMAC_STATE_WORDS,
  KERNEL_CROSSOVER_BYTES,
  hmacPrecompute,
  hmacSha256,
  hmacTag16,
  hmacVerify16,
  sha256,
} from '../../src/protocol/sha256.js';
import { nativeMacBuilt as nativeMac, nativeMacStatus, type NativeMac } from '../../src/protocol/native.js';

/** The kernels under test: the JS kernel always; the native one where it was built (CI must build it). */
const KERNELS: Array<[string, NativeMac | null, string | false]> = [
  ['JS kernel', { tag16: hmacTag16, verify16: hmacVerify16 }, false],
  [
    'native kernel',
    nativeMac,
    nativeMac === null && !process.env.CI ? `native kernel ${nativeMacStatus} (a machine without a C compiler or Node headers)` : false,
  ],
];

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** test/vectors/rfc.json, found relative to the compiled test (dist/test/protocol/) or the working directory. */
function loadRfc(): { hmac_sha256: { key: string; data: string; mac: string }[] } {
  const candidates = [
    fileURLToPath(new URL('../../../test/vectors/rfc.json', import.meta.url)),
    fileURLToPath(new URL('../../test/vectors/rfc.json', import.meta.url)),
    `${process.cwd()}/test/vectors/rfc.json`,
  ];
  const path = candidates.find((p) => existsSync(p));
  assert.ok(path, `rfc.json not found in ${candidates.join(', ')}`);
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Tag and verify `data` (as canonical = data[0:n-4] || u32be(last 4 bytes)) with a fresh key state. */
function kernelTag(key: Uint8Array, data: Uint8Array, k: NativeMac = KERNELS[0]![1]!): Uint8Array {
  assert.ok(data.length >= 4);
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(key, state, 0);
  const n = data.length - 4;
  const suffix = new DataView(data.buffer, data.byteOffset).getUint32(n);
  const out = new Uint8Array(16);
  k.tag16(state, 0, data, 0, n, suffix, out, 0);
  assert.equal(k.verify16(state, 0, data, 0, n, suffix, out, 0), true);
  return out;
}

test('RFC 4231 HMAC-SHA256 table (test/vectors/rfc.json)', () => {
  const { hmac_sha256: cases } = loadRfc();
  assert.ok(cases.length >= 4);
  for (const { key, data, mac } of cases) {
    const k = unhex(key);
    const d = unhex(data);
    assert.equal(hex(hmacSha256(k, d)), mac, `hmacSha256 key=${key.slice(0, 16)}…`);
    assert.equal(hex(kernelTag(k, d)), mac.slice(0, 32), `hmacTag16 key=${key.slice(0, 16)}…`);
    if (nativeMac !== null) assert.equal(hex(kernelTag(k, d, nativeMac)), mac.slice(0, 32), `native tag16 key=${key.slice(0, 16)}…`);
  }
});

test('RFC 4231 §4.6 test case 5: output truncated to 128 bits', () => {
  const key = new Uint8Array(20).fill(0x0c);
  const data = new TextEncoder().encode('Test With Truncation');
  assert.equal(hex(kernelTag(key, data)), 'a3b6167473100ee06e0c796c2955552b');
  if (nativeMac !== null) assert.equal(hex(kernelTag(key, data, nativeMac)), 'a3b6167473100ee06e0c796c2955552b');
  assert.equal(hex(hmacSha256(key, data)).slice(0, 32), 'a3b6167473100ee06e0c796c2955552b');
});

test('FIPS 180-4 SHA-256 examples', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  assert.equal(hex(sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(hex(sha256(enc('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(
    hex(sha256(enc('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  assert.equal(hex(sha256(new Uint8Array(1_000_000).fill(0x61))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

/** xorshift32: reproducible cases; override the seed with SHA256_TEST_SEED. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

for (const [kernelName, kernel, skip] of KERNELS) {
test(`${kernelName}: differential vs node:crypto: ≥ 200,000 random (key, message, suffix) cases over SharedArrayBuffer views`, { skip }, () => {
  assert.ok(kernel !== null, `native kernel ${nativeMacStatus}: CI builds it (npm ci runs the build through prepare)`);
  const hmacTag16 = kernel.tag16;
  const hmacVerify16 = kernel.verify16;
  const seed = Number(process.env.SHA256_TEST_SEED ?? 0x5eed2024);
  const next = rng(seed);
  const below = (n: number): number => next() % n;

  // Buffer lengths n (canonical = n + 4): every n in 0..300, i.e. every canonical length 4..304,
  // and, up to 2048, ±3 around each 64-byte boundary of both n and n + 4, plus the band where
  // the padding no longer fits in the final block (n mod 64 = 48..59).
  const lengthSet = new Set<number>();
  for (let n = 0; n <= 300; n++) lengthSet.add(n);
  for (let m = 320; m <= 2048; m += 64) {
    for (let d = -7; d <= 3; d++) lengthSet.add(m + d);
    for (let r = 48; r <= 59; r++) if (m - 64 + r <= 2048) lengthSet.add(m - 64 + r);
  }
  const lengths = [...lengthSet].sort((a, b) => a - b);
  const keyLengths = [0, 1, 16, 31, 32, 33, 63, 64, 65, 100, 131, 200];

  const CASES = 200_000;
  const KEY_REUSE = 4; // cases per random key, so that precompute and node:crypto's key setup don't dominate
  const MAX = 2048 + 64;
  const bytes = new Uint8Array(new SharedArrayBuffer(MAX + 64)); // message, at a random offset
  const stateBuf = new Int32Array(new SharedArrayBuffer(4 * (HMAC_STATE_WORDS + 8)));
  const outBuf = new Uint8Array(new SharedArrayBuffer(64));
  const tagBuf = new Uint8Array(new SharedArrayBuffer(64));
  const sfx = Buffer.alloc(4);
  // Seeded random bytes; a case copies a random window of this pool.
  const pool = new Uint8Array(1 << 20);
  for (let i = 0; i < pool.length; i += 4) new DataView(pool.buffer).setUint32(i, next());
  const fill = (dst: Uint8Array, from: number, n: number): void => {
    const start = below(pool.length - n);
    dst.set(pool.subarray(start, start + n), from);
  };

  let key = new Uint8Array(0);
  let stateOffset = 0;
  let flips = 0;
  for (let c = 0; c < CASES; c++) {
    if (c % KEY_REUSE === 0) {
      const kl = c % (KEY_REUSE * 2) === 0 ? keyLengths[below(keyLengths.length)] : 1 + below(160);
      key = new Uint8Array(kl);
      fill(key, 0, kl);
      stateOffset = 1 + below(8);
      stateBuf.fill(0x5a5a5a5a);
      hmacPrecompute(key, stateBuf, stateOffset);
      for (let i = 0; i < stateBuf.length; i++) {
        if (i < stateOffset || i >= stateOffset + HMAC_STATE_WORDS) assert.equal(stateBuf[i], 0x5a5a5a5a, 'precompute wrote outside its 16 words');
      }
    }
    // First every length once, then random ones: half short (0..300), half from the whole set.
    const n = c < lengths.length ? lengths[c] : (c & 1) === 0 ? below(301) : lengths[below(lengths.length)];
    const offset = 1 + below(63);
    fill(bytes, offset - 1, n + 2); // random bytes around the message too
    const r = below(16);
    const suffix = r === 0 ? 0 : r === 1 ? 0xffffffff : r === 2 ? n : next();
    sfx.writeUInt32BE(suffix);
    const msg = bytes.subarray(offset, offset + n);
    const ref = createHmac('sha256', key).update(msg).update(sfx).digest();

    const outOffset = 1 + below(40);
    outBuf.fill(0xee);
    hmacTag16(stateBuf, stateOffset, bytes, offset, n, suffix, outBuf, outOffset);
    for (let i = 0; i < 16; i++) {
      if (outBuf[outOffset + i] !== ref[i]) {
        assert.fail(`hmacTag16 mismatch: seed=${seed} case=${c} keyLen=${key.length} n=${n} offset=${offset} suffix=${suffix}`);
      }
    }
    assert.equal(outBuf[outOffset - 1], 0xee, 'wrote before out[outOffset]');
    assert.equal(outBuf[outOffset + 16], 0xee, 'wrote after out[outOffset+16]');

    const tagOffset = below(48);
    tagBuf.set(ref.subarray(0, 16), tagOffset);
    if (!hmacVerify16(stateBuf, stateOffset, bytes, offset, n, suffix, tagBuf, tagOffset)) {
      assert.fail(`hmacVerify16 rejected the right tag: seed=${seed} case=${c} n=${n}`);
    }
    // Any single flipped bit must fail: every bit for some cases, one random bit for a sample.
    if (c % 2000 === 0) {
      for (let bit = 0; bit < 128; bit++) {
        tagBuf[tagOffset + (bit >> 3)] ^= 1 << (bit & 7);
        assert.equal(hmacVerify16(stateBuf, stateOffset, bytes, offset, n, suffix, tagBuf, tagOffset), false);
        tagBuf[tagOffset + (bit >> 3)] ^= 1 << (bit & 7);
        flips++;
      }
    } else if (c % 8 === 1) {
      const bit = below(128);
      tagBuf[tagOffset + (bit >> 3)] ^= 1 << (bit & 7);
      assert.equal(hmacVerify16(stateBuf, stateOffset, bytes, offset, n, suffix, tagBuf, tagOffset), false, `bit ${bit} flip accepted, case ${c}`);
      flips++;
    }
    // A different suffix must fail too (it is part of the MAC input).
    if (c % 64 === 3) {
      assert.equal(hmacVerify16(stateBuf, stateOffset, bytes, offset, n, (suffix + 1) >>> 0, tagBuf, tagOffset), false);
    }

    // The allocating plain functions, on the same bytes (a message length n, over the SharedArrayBuffer view).
    if (c < lengths.length || c % 4 === 2) {
      const data = bytes.subarray(offset, offset + n);
      assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'), `hmacSha256 case=${c}`);
      assert.equal(hex(sha256(data)), createHash('sha256').update(data).digest('hex'), `sha256 case=${c}`);
    }
  }
  assert.ok(flips > 20_000);
});
}

test('hmacTag16 / hmacVerify16 reuse one state: many keys side by side in one Int32Array', () => {
  const keys = [new Uint8Array(0), new Uint8Array(32).fill(1), new Uint8Array(64).fill(2), new Uint8Array(65).fill(3), new Uint8Array(131).fill(4)];
  const table = new Int32Array(new SharedArrayBuffer(4 * HMAC_STATE_WORDS * keys.length));
  keys.forEach((k, i) => hmacPrecompute(k, table, i * HMAC_STATE_WORDS));
  const msg = new Uint8Array(new SharedArrayBuffer(200)).map((_, i) => i);
  const out = new Uint8Array(16);
  keys.forEach((k, i) => {
    hmacTag16(table, i * HMAC_STATE_WORDS, msg, 10, 80, 76, out, 0);
    const ref = createHmac('sha256', k).update(msg.subarray(10, 90)).update(Buffer.from([0, 0, 0, 76])).digest();
    assert.equal(hex(out), ref.subarray(0, 16).toString('hex'));
  });
});

test('KERNEL_CROSSOVER_BYTES is a measured step start above the 84-byte datagram', () => {
  assert.ok(Number.isInteger(KERNEL_CROSSOVER_BYTES));
  assert.equal(KERNEL_CROSSOVER_BYTES % 64, 56, 'the kernel cost only steps up at canonical length ≡ 56 (mod 64)');
  assert.ok(KERNEL_CROSSOVER_BYTES > 84 - 16 + 4);
});
