/** Property tests of the replay filter (PROTOCOL.md §5) against a plain reference model. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ReplayFilter } from '../../src/protocol/replay.js';
import { V_ACCEPT, V_REPLAY, V_STALE } from '../../src/protocol/verdict.js';

const runs = process.env.DTMESH_SLOW ? 2000 : 200;

function split(n: bigint): [number, number] {
  return [Number(n >> 32n), Number(n & 0xffffffffn)];
}

/** Reference: a set of seen nonces and the high-water mark. */
function reference(window: number, nonces: bigint[]): string[] {
  const seen = new Set<bigint>();
  let hwm: bigint | null = null;
  return nonces.map((n) => {
    if (hwm === null || n > hwm) {
      hwm = n;
      seen.add(n);
      return 'accept';
    }
    if (window === 0 || hwm - n >= BigInt(window) || seen.has(n)) return 'replay';
    seen.add(n);
    return 'accept';
  });
}

const nonceStream = fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 20000n }), fc.array(fc.integer({ min: -9000, max: 9000 }), { minLength: 1, maxLength: 300 }));

for (const window of [0, 64, 128, 1024, 8192]) {
  test(`replay filter (window ${window}) never accepts a nonce twice and matches the reference model`, () => {
    fc.assert(
      fc.property(nonceStream, ([base, deltas]) => {
        const f = new ReplayFilter(window, 1);
        let cur = base;
        const nonces = deltas.map((d) => {
          cur += BigInt(d);
          if (cur < 0n) cur = 0n;
          if (cur >= 1n << 64n) cur = (1n << 64n) - 1n;
          return cur;
        });
        const accepted = new Set<bigint>();
        const got = nonces.map((n) => {
          const [hi, lo] = split(n);
          const v = f.check(0, hi, lo, false);
          if (v === V_ACCEPT) {
            assert.ok(!accepted.has(n), `nonce ${n} accepted twice`);
            accepted.add(n);
          }
          return v === V_ACCEPT ? 'accept' : 'replay';
        });
        assert.deepEqual(got, reference(window, nonces));
      }),
      { numRuns: runs },
    );
  });
}

test('crossing a 2^32 boundary of the nonce is handled (hi/lo arithmetic)', () => {
  for (const window of [0, 64, 8192]) {
    const f = new ReplayFilter(window, 1);
    const b = (1n << 32n) - 3n;
    const seq = [b, b + 5n, b + 2n, b + 2n, b + 1n, b + 70n, b + 6n];
    const got = seq.map((n) => (f.check(0, ...split(n), false) === V_ACCEPT ? 'accept' : 'replay'));
    assert.deepEqual(got, reference(window, seq), `window ${window}`);
  }
});

test('restart fence: a sender with no mark yet is stale when sent before the start; with a mark, replay rules apply', () => {
  const f = new ReplayFilter(0, 2);
  assert.equal(f.check(0, 0, 10, true), V_STALE);
  assert.equal(f.hasMark(0), false, 'a dropped packet never creates a mark');
  assert.equal(f.check(0, 0, 10, false), V_ACCEPT);
  assert.equal(f.check(0, 0, 11, true), V_ACCEPT);
  assert.equal(f.check(0, 0, 11, true), V_REPLAY);
  assert.equal(f.mark(0), 11n);
  assert.equal(f.mark(1), null);
});

test('restart fence in window mode: once a sender has a mark, a pre-start nonce below it is a replay', () => {
  const f = new ReplayFilter(64, 1);
  assert.equal(f.check(0, 0, 100, false), V_ACCEPT);
  assert.equal(f.check(0, 0, 99, true), V_REPLAY, 'sent before the start: the previous process may have seen it');
  assert.equal(f.check(0, 0, 98, false), V_ACCEPT, 'sent after the start: ordinary window rules');
  assert.equal(f.check(0, 0, 101, true), V_ACCEPT, 'above the mark it is new whenever it was sent');
});

test('replay windows outside the spec are refused', () => {
  for (const w of [-64, 1, 63, 100, 8256, 1.5]) assert.throws(() => new ReplayFilter(w), RangeError);
});

/** `check` of each nonce in turn (peer 0, sent after the start), as 'accept' / 'replay'. */
function judge(f: ReplayFilter, nonces: number[]): string[] {
  return nonces.map((n) => (f.check(0, 0, n, false) === V_ACCEPT ? 'accept' : 'replay'));
}

test('window edge (PROTOCOL.md §5: accept in (hwm − W, hwm]): hwm 1000, W 64 — 936 (distance W) is a replay, 937 (distance W − 1) is accepted', () => {
  const f = new ReplayFilter(64, 1);
  assert.deepEqual(judge(f, [1000, 936, 937, 937, 999]), ['accept', 'replay', 'accept', 'replay', 'accept']);
  assert.equal(f.mark(0), 1000n);
  const g = new ReplayFilter(1024, 1);
  assert.deepEqual(judge(g, [5000, 3976, 3977]), ['accept', 'replay', 'accept'], 'W 1024: 5000 − 1024 out, 5000 − 1023 in');
});

test('advancing the window clears every bitmap word it passes: a word reused for newer nonces holds no bit of the old ones (W 64: 4 words of 32 nonces)', () => {
  // one word at a time: 134 lands in the word that held 5 and 6; 133 was never seen
  assert.deepEqual(judge(new ReplayFilter(64, 1), [5, 6, 40, 70, 100, 134, 133, 102]), ['accept', 'accept', 'accept', 'accept', 'accept', 'accept', 'accept', 'accept']);
  // a jump of 4 words inside the bitmap (31 → 128, distance 97 < 128): all 4 are cleared, so
  // 140 (in the word that held 12) is new once the mark has passed it
  assert.deepEqual(judge(new ReplayFilter(64, 1), [12, 31, 128, 150, 140, 140]), ['accept', 'accept', 'accept', 'accept', 'accept', 'replay']);
});
