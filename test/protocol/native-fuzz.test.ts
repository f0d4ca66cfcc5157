/**
 * The native MAC kernel defends itself (src/native/mac.c, ./native.ts): every entry point
 * — tag16, verify16, bind, unbind, tagAt, verifyAt — driven by fast-check (fixed seed)
 * with random and extreme arguments: negative, NaN, ±Infinity, non-integers, 2^31, 2^32,
 * 2^53, 2^64, wrong types, detached buffers, zero-length views, offsets near the end.
 * The process never crashes; a call either does exactly what the JS model says a valid
 * call does (the PROTOCOL.md §2 MAC, checked against node:crypto createHmac, or the JS
 * kernel for a state offset between two keys) and writes nothing else, or throws
 * RangeError/TypeError and writes nothing at all.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { nativeMacBuilt as nativeMac, nativeMacStatus } from '../../src/protocol/native.js';
import { HMAC_STATE_WORDS, hmacPrecompute, hmacTag16 } from '../../src/protocol/sha256.js';

const skip = nativeMac === null && !process.env.CI ? `native kernel ${nativeMacStatus}` : false;
const SEED = 0x5eed_d7;
const RUNS = 20_000;

const KEYS = 3;
const keys = Array.from({ length: KEYS }, (_, i) => randomBytesSeeded(i === 2 ? 100 : 32, i));
/** Deterministic key bytes (the fuzz must replay from its seed). */
function randomBytesSeeded(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 71 + 7) & 0xff;
  return b;
}

function detached(n: number): Uint8Array {
  const ab = new ArrayBuffer(n);
  const v = new Uint8Array(ab);
  structuredClone(ab, { transfer: [ab] });
  return v;
}

/** Integers and non-integers a caller might pass by mistake, and the edges of every range the kernel checks. */
function numberArg(limit: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: limit }) },
    { weight: 3, arbitrary: fc.integer({ min: Math.max(0, limit - 20), max: limit + 20 }) },
    {
      weight: 3,
      arbitrary: fc.constantFrom<unknown>(
        -1, -0, 0.5, 1.5, -1.5, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1,
        2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 62, 2 ** 64, Number.MAX_VALUE, Number.MIN_VALUE, -(2 ** 31), -(2 ** 53),
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom<unknown>('1', null, undefined, {}, [], 1n, true, Symbol('x')) },
  );
}

/** A valid integer for an argument, or undefined when the model says the kernel must refuse it. */
function asInt(v: unknown, max: number): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : undefined;
}

/** Reference MAC of buf[off:off+len) || u32be(suffix) under the state at `so` (createHmac when `so` starts a key). */
function reference(state: Int32Array, so: number, buf: Uint8Array, off: number, len: number, suffix: number): Buffer {
  if (so % HMAC_STATE_WORDS === 0 && so / HMAC_STATE_WORDS < KEYS) {
    const sfx = Buffer.alloc(4);
    sfx.writeUInt32BE(suffix);
    return createHmac('sha256', keys[so / HMAC_STATE_WORDS]!).update(Buffer.from(buf.buffer, buf.byteOffset + off, len)).update(sfx).digest().subarray(0, 16);
  }
  const out = new Uint8Array(16);
  hmacTag16(state, so, buf, off, len, suffix, out, 0);
  return Buffer.from(out);
}

/** Arguments for a failure message (a Symbol or BigInt has no implicit string). */
function show(...xs: unknown[]): string {
  return xs.map((x) => (typeof x === 'symbol' || typeof x === 'bigint' ? x.toString() : String(x))).join(', ');
}

/** Calls `f`; when it throws, the error must be a RangeError or a TypeError (and the caller checks nothing was written). */
function outcome<T>(f: () => T): { ok: true; value: T } | { ok: false } {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    assert.ok(e instanceof RangeError || e instanceof TypeError, `unexpected error ${String(e)}`);
    return { ok: false };
  }
}

function makeState(shared: boolean): Int32Array {
  const state = new Int32Array(shared ? new SharedArrayBuffer(4 * KEYS * HMAC_STATE_WORDS) : new ArrayBuffer(4 * KEYS * HMAC_STATE_WORDS));
  keys.forEach((k, i) => hmacPrecompute(k, state, i * HMAC_STATE_WORDS));
  return state;
}

test('native fuzz: tag16/verify16 with hostile arguments either compute the createHmac MAC or throw RangeError/TypeError and write nothing', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const state = makeState(false);
  const buf = new Uint8Array(256);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 37) & 0xff;
  const out = new Uint8Array(48);
  const stateWords = state.length;
  const arrays = {
    state: fc.oneof(
      { weight: 8, arbitrary: fc.constant<unknown>(state) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(new Uint8Array(64), new Uint32Array(16), new Float64Array(8), [0, 1], null, 'state', new Int32Array(0)) },
    ),
    buf: fc.oneof(
      { weight: 8, arbitrary: fc.constant<unknown>(buf) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(new Int32Array(64), Buffer.alloc(0), new Uint16Array(8), {}, undefined) },
      { weight: 1, arbitrary: fc.constant(null).map(() => detached(64) as unknown) },
    ),
    out: fc.oneof(
      { weight: 8, arbitrary: fc.constant<unknown>(out) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(new Int8Array(32), new Uint8ClampedArray(32), 7) },
      { weight: 1, arbitrary: fc.constant(null).map(() => detached(32) as unknown) },
    ),
  };
  const call = fc.tuple(
    fc.boolean(),
    arrays.state,
    numberArg(stateWords),
    arrays.buf,
    numberArg(buf.length),
    numberArg(buf.length),
    numberArg(0xffffffff),
    arrays.out,
    numberArg(out.length),
    fc.boolean(),
  );
  fc.assert(
    fc.property(call, ([verify, st, so, b, off, len, sfx, o, to, plantTag]) => {
      out.fill(0xa5);
      const vso = asInt(so, 2 ** 53 - 1);
      const voff = asInt(off, 2 ** 53 - 1);
      const vlen = asInt(len, 2 ** 53 - 1);
      const vsfx = asInt(sfx, 0xffffffff);
      const vto = asInt(to, 2 ** 53 - 1);
      const valid =
        st === state && b === buf && o === out && vso !== undefined && voff !== undefined && vlen !== undefined && vsfx !== undefined && vto !== undefined &&
        vso + HMAC_STATE_WORDS <= stateWords && voff + vlen <= buf.length && vto + 16 <= out.length;
      const ref = valid ? reference(state, vso!, buf, voff!, vlen!, vsfx!) : null;
      if (ref !== null && plantTag) out.set(ref, vto!);
      const before = Buffer.from(out);
      const stateBefore = Int32Array.from(state);
      const bufBefore = Buffer.from(buf);
      const r = outcome(() => (verify ? nat.verify16 : nat.tag16)(st as Int32Array, so as number, b as Uint8Array, off as number, len as number, sfx as number, o as Uint8Array, to as number));
      assert.deepEqual(Int32Array.from(state), stateBefore, 'state never written');
      assert.ok(Buffer.from(buf).equals(bufBefore), 'the message is never written');
      if (!valid) {
        assert.equal(r.ok, false, `accepted invalid arguments ${show(so, off, len, sfx, to)}`);
        assert.ok(Buffer.from(out).equals(before), 'a refused call writes nothing');
        return;
      }
      assert.ok(r.ok, `refused valid arguments ${show(so, off, len, sfx, to)}`);
      if (verify) {
        assert.equal(r.value, plantTag, 'verify16 is true exactly when the tag is the MAC');
        assert.ok(Buffer.from(out).equals(before), 'verify16 writes nothing');
      } else {
        const expect = Buffer.from(before);
        ref!.copy(expect, vto!);
        assert.ok(Buffer.from(out).equals(expect), 'tag16 writes the MAC at tagOffset and nothing else');
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

test('native fuzz: bind/unbind with hostile arguments: TypeError/RangeError or a binding, at most 64, unbind idempotent', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const good = [makeState(true), makeState(false)];
  const bytes: Uint8Array[] = [new Uint8Array(new SharedArrayBuffer(128)), new Uint8Array(128), Buffer.alloc(16)];
  const bound = new Set<number>();
  const op = fc.oneof(
    fc.tuple(
      fc.constant('bind' as const),
      fc.oneof(fc.constantFrom<unknown>(...good), fc.constantFrom<unknown>(new Uint8Array(64), null, 3, 'x')),
      fc.oneof(fc.constantFrom<unknown>(...bytes), fc.constantFrom<unknown>(new Int32Array(4), undefined, {}), fc.constant(null).map(() => detached(16) as unknown)),
    ),
    fc.tuple(fc.constant('unbind' as const), numberArg(70), fc.constant(null)),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 100 }), (ops) => {
      for (const [kind, x, y] of ops) {
        if (kind === 'bind') {
          const valid = good.includes(x as Int32Array) && bytes.includes(y as Uint8Array);
          const r = outcome(() => nat.bind(x as Int32Array, y as Uint8Array));
          assert.equal(r.ok, valid, `bind accepted/refused wrongly`);
          if (r.ok) {
            if (bound.size === 64) assert.equal(r.value, -1, 'at most 64 bindings');
            else {
              assert.ok(Number.isInteger(r.value) && r.value >= 0 && r.value < 64 && !bound.has(r.value), `a free binding number, got ${r.value}`);
              bound.add(r.value);
            }
          }
        } else {
          const id = asInt(x, 63);
          const r = outcome(() => nat.unbind(x as number));
          assert.equal(r.ok, id !== undefined, `unbind(${show(x)})`);
          if (id !== undefined) bound.delete(id);
        }
      }
    }),
    { seed: SEED, numRuns: 300 },
  );
  for (const id of bound) nat.unbind(id);
});

test('native fuzz: tagAt/verifyAt with hostile arguments either compute the createHmac MAC in the bound bytes or throw and write nothing', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const cases = [
    { name: 'SharedArrayBuffer', state: makeState(true), bytes: new Uint8Array(new SharedArrayBuffer(300)) },
    { name: 'plain ArrayBuffer', state: makeState(false), bytes: new Uint8Array(300) },
  ];
  for (const { name, state, bytes } of cases) {
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 29 + 3) & 0xff;
    const h = nat.bind(state, bytes);
    assert.ok(h >= 0, name);
    const spare = nat.bind(state, bytes);
    nat.unbind(spare); // a number that was bound and no longer is
    const call = fc.tuple(
      fc.boolean(),
      fc.oneof({ weight: 8, arbitrary: fc.constant<unknown>(h) }, { weight: 2, arbitrary: numberArg(64) }, { weight: 1, arbitrary: fc.constant<unknown>(spare) }),
      numberArg(state.length),
      numberArg(200),
      numberArg(bytes.length),
      numberArg(0xffffffff),
      numberArg(bytes.length),
      fc.boolean(),
    );
    fc.assert(
      fc.property(call, ([verify, id, so, off, len, sfx, to, plantTag]) => {
        const vso = asInt(so, 2 ** 53 - 1);
        const voff = asInt(off, 2 ** 53 - 1);
        const vlen = asInt(len, 2 ** 53 - 1);
        const vsfx = asInt(sfx, 0xffffffff);
        const vto = asInt(to, 2 ** 53 - 1);
        const valid =
          id === h && vso !== undefined && voff !== undefined && vlen !== undefined && vsfx !== undefined && vto !== undefined &&
          vso + HMAC_STATE_WORDS <= state.length && voff + vlen <= bytes.length && vto + 16 <= bytes.length;
        const ref = valid ? reference(state, vso!, bytes, voff!, vlen!, vsfx!) : null;
        if (ref !== null && plantTag) bytes.set(ref, vto!);
        const before = Buffer.from(bytes);
        const stateBefore = Int32Array.from(state);
        const r = outcome(() => (verify ? nat.verifyAt : nat.tagAt)(id as number, so as number, off as number, len as number, sfx as number, to as number));
        assert.deepEqual(Int32Array.from(state), stateBefore, 'state never written');
        if (!valid) {
          assert.equal(r.ok, false, `${name}: accepted invalid arguments ${show(id, so, off, len, sfx, to)}`);
          assert.ok(Buffer.from(bytes).equals(before), 'a refused call writes nothing');
          return;
        }
        assert.ok(r.ok, `${name}: refused valid arguments ${show(so, off, len, sfx, to)}`);
        if (verify) {
          // a planted tag may overlap the message: then the MAC changed and false is right
          const overlaps = plantTag && vto! < voff! + vlen! && voff! < vto! + 16;
          if (!overlaps) assert.equal(r.value, plantTag, 'verifyAt is true exactly when the tag is the MAC');
          assert.ok(Buffer.from(bytes).equals(before), 'verifyAt writes nothing');
        } else {
          const expect = Buffer.from(before);
          reference(state, vso!, new Uint8Array(before), voff!, vlen!, vsfx!).copy(expect, vto!);
          assert.ok(Buffer.from(bytes).equals(expect), 'tagAt writes the MAC at tagOffset and nothing else');
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    nat.unbind(h);
  }
});

test('native fuzz: a bound plain ArrayBuffer that is detached (transferred) afterwards is refused, not read', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const state = makeState(false);
  const ab = new ArrayBuffer(256);
  const h = nat.bind(state, new Uint8Array(ab));
  nat.tagAt(h, 0, 0, 100, 100, 200);
  structuredClone(ab, { transfer: [ab] });
  assert.throws(() => nat.tagAt(h, 0, 0, 100, 100, 200), TypeError);
  assert.throws(() => nat.verifyAt(h, 0, 0, 100, 100, 200), TypeError);
  const stateAb = state.buffer as ArrayBuffer;
  const h2 = nat.bind(state, new Uint8Array(new SharedArrayBuffer(256)));
  structuredClone(stateAb, { transfer: [stateAb] });
  assert.throws(() => nat.tagAt(h2, 0, 0, 100, 100, 200), TypeError, 'a detached bound state');
  assert.throws(() => nat.tag16(state, 0, new Uint8Array(64), 0, 10, 10, new Uint8Array(16), 0), TypeError);
  nat.unbind(h);
  nat.unbind(h2);
});

test('native fuzz: a bound resizable ArrayBuffer that shrinks is checked against its new length', { skip }, () => {
  assert.ok(nativeMac !== null, `native kernel ${nativeMacStatus}: CI builds it`);
  const nat = nativeMac;
  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  const ab = new Resizable(256, { maxByteLength: 512 });
  const bytes = new Uint8Array(ab); // length-tracking
  const h = nat.bind(makeState(true), bytes);
  nat.tagAt(h, 0, 0, 100, 100, 200);
  ab.resize(64);
  assert.throws(() => nat.tagAt(h, 0, 0, 100, 100, 200), RangeError);
  nat.tagAt(h, 0, 0, 40, 40, 48);
  nat.unbind(h);
});
