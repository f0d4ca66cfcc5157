/**
 * PUNCH_HINT policy (PROTOCOL.md §2): known target, sane address, loopback only when
 * allowed, token buckets per target and overall, bounded memory, refusals counted.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { HINT_LEN_V4, HINT_LEN_V6 } from '../../src/protocol/wire.js';
import {
  ADDR_BAD,
  ADDR_LOOPBACK,
  ADDR_OK,
  classifyHintAddress,
  formatHintAddress,
  PUNCH_BAD_ADDRESS,
  PUNCH_LOOPBACK_NOT_ALLOWED,
  PUNCH_RATE_LIMITED,
  PUNCH_REFUSALS,
  PUNCH_UNKNOWN_TARGET,
  PunchPolicy,
  punchRefusalName,
} from '../../src/protocol/punch.js';

const T1 = 'a1b2c3d4e5f60718';
const PUBLIC4 = new Uint8Array([198, 51, 100, 7]);

/** IPv6 text → bytes, parsed here (independent of src/protocol/punch.ts); the text must satisfy net.isIPv6. */
function v6(text: string): Uint8Array {
  assert.ok(net.isIPv6(text), text);
  let s = text;
  const tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    tail.push(...dotted.slice(1).map(Number));
    s = s.slice(0, dotted.index) + '0:0';
  }
  const [h, t] = s.includes('::') ? s.split('::') : [s, undefined];
  const head = h === '' ? [] : h!.split(':');
  const rest = t === undefined || t === '' ? [] : t.split(':');
  const groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  if (tail.length) out.set(tail, 12);
  return out;
}
function v4(text: string): Uint8Array {
  return new Uint8Array(text.split('.').map(Number));
}

function hint(over: Partial<Parameters<PunchPolicy['decide']>[0]> = {}): Parameters<PunchPolicy['decide']>[0] {
  return { target: T1, known: true, family: 4, address: PUBLIC4, port: 40000, nowMs: 0, ...over };
}

test('options are validated with TypeError/RangeError naming options.X; defaults are 4 probes, loopback refused', () => {
  const p = new PunchPolicy();
  assert.equal(p.punchBurst, 4);
  assert.equal(p.allowLoopback, false);
  assert.ok(p.perTargetPerMinute >= 1 && p.overallPerMinute >= p.perTargetPerMinute);
  const bad: Array<[unknown, RegExp, typeof TypeError | typeof RangeError]> = [
    [{ punchBurst: 0 }, /options\.punchBurst must be an integer from 1 to 64/, RangeError],
    [{ punchBurst: 65 }, /options\.punchBurst/, RangeError],
    [{ punchBurst: 2.5 }, /options\.punchBurst/, RangeError],
    [{ punchBurst: '4' }, /options\.punchBurst must be a number/, TypeError],
    [{ perTargetPerMinute: -1 }, /options\.perTargetPerMinute/, RangeError],
    [{ overallPerMinute: Number.NaN }, /options\.overallPerMinute/, RangeError],
    [{ overallPerMinute: 1e7 }, /options\.overallPerMinute/, RangeError],
    [{ maxTargets: 0 }, /options\.maxTargets/, RangeError],
    [{ allowLoopback: 'yes' }, /options\.allowLoopback must be a boolean/, TypeError],
    [null, /options must be an object/, TypeError],
  ];
  for (const [o, re, E] of bad) assert.throws(() => new PunchPolicy(o as never), (e: unknown) => e instanceof E && re.test((e as Error).message), JSON.stringify(o));
});

test('a granted hint: send punchBurst probes to the formatted address and port', () => {
  const p = new PunchPolicy({ punchBurst: 3 });
  assert.deepEqual(p.decide(hint()), { send: true, probes: 3, family: 4, address: '198.51.100.7', port: 40000 });
  assert.deepEqual(p.decide(hint({ family: 6, address: v6('2001:db8::1'), port: 1 })), {
    send: true,
    probes: 3,
    family: 6,
    address: '2001:db8::1',
    port: 1,
  });
  assert.equal(p.granted, 2);
  assert.equal(p.probesGranted, 6);
  assert.equal(p.refusedTotal, 0);
});

test('an unknown target is refused first, whatever the address', () => {
  const p = new PunchPolicy();
  assert.deepEqual(p.decide(hint({ known: false })), { send: false, reason: 'unknown_target' });
  assert.deepEqual(p.decide(hint({ known: false, address: v4('0.0.0.0'), port: 0 })), { send: false, reason: 'unknown_target' });
  assert.equal(p.refused.unknown_target, 2);
  assert.equal(p.targets, 0, 'no bucket is made for a refused hint');
});

const BAD_ADDRESSES: Array<[string, 4 | 6, Uint8Array, number]> = [
  ['0.0.0.0 (unspecified)', 4, v4('0.0.0.0'), 40000],
  ['0.1.2.3 (this network)', 4, v4('0.1.2.3'), 40000],
  ['224.0.0.1 (multicast)', 4, v4('224.0.0.1'), 40000],
  ['239.255.255.250 (multicast, SSDP)', 4, v4('239.255.255.250'), 1900],
  ['240.0.0.1 (reserved)', 4, v4('240.0.0.1'), 40000],
  ['255.255.255.255 (broadcast)', 4, v4('255.255.255.255'), 40000],
  ['port 0', 4, PUBLIC4, 0],
  ['port 65536', 4, PUBLIC4, 65536],
  [':: (unspecified)', 6, v6('::'), 40000],
  ['ff02::1 (multicast)', 6, v6('ff02::1'), 40000],
  ['ff05::1:3 (multicast)', 6, v6('ff05::1:3'), 40000],
  ['fe80::1 (link-local, no zone)', 6, v6('fe80::1'), 40000],
  ['::ffff:127.0.0.1 (IPv4-mapped loopback)', 6, v6('::ffff:7f00:1'), 40000],
  ['::ffff:198.51.100.7 (IPv4-mapped, must be family 4)', 6, v6('::ffff:c633:6407'), 40000],
  ['::ffff:255.255.255.255 (IPv4-mapped broadcast)', 6, v6('::ffff:ffff:ffff'), 40000],
  ['::127.0.0.1 (IPv4-compatible)', 6, v6('::7f00:1'), 40000],
  ['::ffff:0:127.0.0.1 (IPv4-translated)', 6, v6('::ffff:0:7f00:1'), 40000],
  ['64:ff9b::127.0.0.1 (NAT64 of loopback)', 6, v6('64:ff9b::7f00:1'), 40000],
  ['64:ff9b::224.0.0.1 (NAT64 of multicast)', 6, v6('64:ff9b::e000:1'), 40000],
  ['2002:e000:0001:: (6to4 of multicast)', 6, v6('2002:e000:1::1'), 40000],
  ['2002:7f00:0001:: (6to4 of loopback)', 6, v6('2002:7f00:1::1'), 40000],
  ['100::1 (discard-only)', 6, v6('100::1'), 40000],
  ['family 5', 5 as 4, PUBLIC4, 40000],
  ['family 6 with 4 bytes', 6, PUBLIC4, 40000],
];

test('each bad address is refused as bad_address (and counted), even with loopback allowed', () => {
  for (const allowLoopback of [false, true]) {
    const p = new PunchPolicy({ allowLoopback });
    for (const [name, family, address, port] of BAD_ADDRESSES) {
      assert.deepEqual(p.decide(hint({ family, address, port })), { send: false, reason: 'bad_address' }, name);
    }
    assert.equal(p.refused.bad_address, BAD_ADDRESSES.length);
    assert.equal(p.granted, 0);
  }
});

test('loopback (127/8, ::1) only when allowed', () => {
  const loops: Array<[4 | 6, Uint8Array]> = [
    [4, v4('127.0.0.1')],
    [4, v4('127.255.0.9')],
    [6, v6('::1')],
  ];
  const deny = new PunchPolicy();
  for (const [family, address] of loops) assert.deepEqual(deny.decide(hint({ family, address })), { send: false, reason: 'loopback_not_allowed' });
  assert.equal(deny.refused.loopback_not_allowed, 3);
  const allow = new PunchPolicy({ allowLoopback: true, perTargetPerMinute: 10 });
  assert.deepEqual(allow.decide(hint({ address: v4('127.0.0.1') })), { send: true, probes: 4, family: 4, address: '127.0.0.1', port: 40000 });
  assert.deepEqual(allow.decide(hint({ family: 6, address: v6('::1') })), { send: true, probes: 4, family: 6, address: '::1', port: 40000 });
});

test('ordinary unicast addresses pass classification', () => {
  const ok: Array<[4 | 6, Uint8Array]> = [
    [4, v4('1.1.1.1')],
    [4, v4('10.0.0.1')],
    [4, v4('192.168.1.255')],
    [4, v4('169.254.3.4')],
    [4, v4('223.255.255.254')],
    [6, v6('2001:db8::1')],
    [6, v6('fd00::1234')],
    [6, v6('64:ff9b::c633:6407')],
    [6, v6('2002:c633:6407::1')],
    [6, v6('::2:0:0:1')],
  ];
  for (const [f, a] of ok) assert.equal(classifyHintAddress(f, a, 0, 1234), ADDR_OK, formatHintAddress(f, a));
  assert.equal(classifyHintAddress(4, v4('127.0.0.1'), 0, 1234), ADDR_LOOPBACK);
  assert.equal(classifyHintAddress(4, v4('1.2.3'), 0, 1234), ADDR_BAD, 'too few bytes');
  assert.equal(classifyHintAddress(4, v4('1.2.3.4'), 1, 1234), ADDR_BAD, 'offset past the end');
});

test('a hint flood to one target gets at most N + N·T/60000 bursts (per-target bucket), then refill works', () => {
  const N = 6;
  const p = new PunchPolicy({ perTargetPerMinute: N, overallPerMinute: 1000 });
  const hi = Buffer.from(T1, 'hex').readUInt32BE(0);
  const lo = Buffer.from(T1, 'hex').readUInt32BE(4);
  // 100,000 hints, one per ms, for 100 s
  let granted = 0;
  for (let t = 0; t < 100_000; t++) if (p.judge(hi | 0, lo | 0, true, 4, PUBLIC4, 0, 40000, t) > 0) granted++;
  const bound = N + Math.floor((N * 100_000) / 60_000);
  assert.ok(granted <= bound, `${granted} ≤ ${bound}`);
  assert.ok(granted >= bound - 1, `the bucket does refill (${granted})`);
  assert.equal(p.probesGranted, granted * 4, 'at most punchBurst probes per granted hint');
  assert.equal(p.refused.rate_limited, 100_000 - granted);
  // at one instant: exactly the bucket, then refused
  const q = new PunchPolicy({ perTargetPerMinute: N });
  const got = Array.from({ length: 50 }, () => q.decide(hint({ nowMs: 5 })).send);
  assert.equal(got.filter(Boolean).length, N);
  assert.deepEqual(q.decide(hint({ nowMs: 5 })), { send: false, reason: 'rate_limited' });
  assert.equal(q.decide(hint({ nowMs: 5 + 10_000 })).send, true, 'one token back after 60000/N ms');
  assert.deepEqual(q.decide(hint({ nowMs: 5 + 10_000 })), { send: false, reason: 'rate_limited' });
});

test('a flood spread over many known targets is capped by the overall bucket; memory stays bounded', () => {
  const M = 60;
  const p = new PunchPolicy({ perTargetPerMinute: 6, overallPerMinute: M, maxTargets: 256 });
  let granted = 0;
  let maxTargets = 0;
  // 200,000 hints over 20 s to 5,000 distinct "known" targets (a compromised peer naming everyone)
  for (let i = 0; i < 200_000; i++) {
    const t = Math.floor(i / 10);
    if (p.judge(0x1000 + (i % 5000), i % 5000, true, 4, PUBLIC4, 0, 40000, t) > 0) granted++;
    if (p.targets > maxTargets) maxTargets = p.targets;
  }
  const bound = M + Math.floor((M * 20_000) / 60_000);
  assert.ok(granted <= bound, `${granted} ≤ ${bound}`);
  assert.ok(maxTargets <= 256, `target table bounded (${maxTargets})`);
  assert.equal(p.granted + p.refusedTotal, 200_000, 'every hint decided and counted once');
});

test('a full table of debts fails closed (rate_limited); refilled targets are swept out', () => {
  const p = new PunchPolicy({ perTargetPerMinute: 1, overallPerMinute: 1000, maxTargets: 4 });
  for (let i = 0; i < 4; i++) assert.ok(p.judge(0, i, true, 4, PUBLIC4, 0, 9, 0) > 0);
  assert.equal(p.targets, 4);
  assert.equal(p.judge(0, 99, true, 4, PUBLIC4, 0, 9, 1), PUNCH_RATE_LIMITED, 'no room: refused, not evicting a debt');
  assert.ok(p.judge(0, 99, true, 4, PUBLIC4, 0, 9, 60_000) > 0, 'after a minute the old buckets are full again and swept');
  assert.equal(p.targets, 1);
});

test('property: the per-target decisions equal a reference token-bucket model (fast-check)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 1, max: 200 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 30_000 })), { maxLength: 300 }),
      (perTarget, overall, steps) => {
        const p = new PunchPolicy({ perTargetPerMinute: perTarget, overallPerMinute: overall });
        const model = new Map<number, { tokens: number; at: number }>();
        let oTokens = overall;
        let oAt = Number.NaN;
        let now = 0;
        for (const [target, dt] of steps) {
          now += dt;
          if (now - oAt > 0) {
            oTokens = Math.min(overall, oTokens + (now - oAt) * (overall / 60_000));
            oAt = now;
          } else if (Number.isNaN(oAt)) oAt = now;
          let b = model.get(target);
          if (b === undefined) model.set(target, (b = { tokens: perTarget, at: now }));
          if (now - b.at > 0) {
            b.tokens = Math.min(perTarget, b.tokens + (now - b.at) * (perTarget / 60_000));
            b.at = now;
          }
          const want = oTokens >= 1 && b.tokens >= 1;
          if (want) {
            oTokens -= 1;
            b.tokens -= 1;
          }
          assert.equal(p.judge(7, target, true, 4, PUBLIC4, 0, 9, now) > 0, want);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('judgeHint reads the PUNCH_HINT payload in place (PROTOCOL.md §2 layout)', () => {
  const p = new PunchPolicy({ allowLoopback: true });
  const v4Payload = new Uint8Array(HINT_LEN_V4);
  v4Payload.set(Buffer.from(T1, 'hex'), 0);
  v4Payload[8] = 4;
  v4Payload[9] = 0x9c;
  v4Payload[10] = 0x40; // port 40000
  v4Payload.set(PUBLIC4, 11);
  assert.equal(p.judgeHint(v4Payload, 0, true, 0), 4);
  const v6Payload = new Uint8Array(3 + HINT_LEN_V6); // at an offset inside a larger buffer
  v6Payload.set(Buffer.from(T1, 'hex'), 3);
  v6Payload[3 + 8] = 6;
  v6Payload[3 + 10] = 80;
  v6Payload.set(v6('ff02::1'), 3 + 11);
  assert.equal(p.judgeHint(v6Payload, 3, true, 0), PUNCH_BAD_ADDRESS);
  assert.equal(p.judgeHint(v6Payload, 3, false, 0), PUNCH_UNKNOWN_TARGET);
  assert.equal(p.judgeHint(v4Payload, 5, true, 0), PUNCH_BAD_ADDRESS, 'a payload running past the buffer');
  const loop = new PunchPolicy();
  v4Payload.set(v4('127.0.0.1'), 11);
  assert.equal(loop.judgeHint(v4Payload, 0, true, 0), PUNCH_LOOPBACK_NOT_ALLOWED);
});

test('refusal names and codes are one-to-one; hostile inputs never throw from judge', () => {
  assert.deepEqual(
    [PUNCH_UNKNOWN_TARGET, PUNCH_BAD_ADDRESS, PUNCH_LOOPBACK_NOT_ALLOWED, PUNCH_RATE_LIMITED].map(punchRefusalName),
    [...PUNCH_REFUSALS],
  );
  assert.throws(() => punchRefusalName(4), RangeError);
  const p = new PunchPolicy();
  fc.assert(
    fc.property(fc.integer(), fc.integer(), fc.boolean(), fc.integer({ min: -2, max: 300 }), fc.uint8Array({ maxLength: 20 }), fc.integer({ min: -5, max: 25 }), fc.integer(), fc.double(), (hi, lo, known, fam, addr, off, port, now) => {
      const r = p.judge(hi, lo, known, fam, addr, off, port, now);
      assert.ok(r === 4 || (r <= -1 && r >= -4));
    }),
    { numRuns: 2000 },
  );
  assert.equal(p.granted + p.refusedTotal, 2000);
});

test('formatHintAddress: dotted quad, RFC 5952 IPv6 text (matches the WHATWG URL serializer), accepted by net.isIP', () => {
  assert.equal(formatHintAddress(4, v4('10.0.0.255')), '10.0.0.255');
  assert.equal(formatHintAddress(6, v6('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1', 'first of two equal runs');
  assert.equal(formatHintAddress(6, v6('2001:db8:0:1:1:1:1:1')), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed');
  assert.equal(formatHintAddress(6, v6('::')), '::');
  assert.equal(formatHintAddress(6, v6('::ffff:c633:6407')), '::ffff:198.51.100.7');
  assert.throws(() => formatHintAddress(5, PUBLIC4), RangeError);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8 }), (bytes, at, run) => {
      for (let i = at; i < Math.min(8, at + run); i++) bytes[2 * i] = bytes[2 * i + 1] = 0; // zero runs are the interesting part
      const s = formatHintAddress(6, bytes);
      assert.equal(net.isIP(s), 6, s);
      assert.deepEqual(v6(s), bytes);
      if (!s.startsWith('::ffff:') || s.split(':').length !== 4) assert.equal(new URL(`http://[${s}]/`).hostname, `[${s}]`);
    }),
    { numRuns: 3000 },
  );
});
