/**
 * The CLI's integer and number flags (src/cli/args.ts): what they accept, and the one-line
 * usage error for everything else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asUsage, intFlag, numFlag, parseFlags } from '../../src/cli/args.js';
import { DtmeshError } from '../../src/errors.js';
import { summaryLine } from '../../src/cli/serve.js';
import { Books } from '../../src/observe/stats.js';

const int = (x: string, min = 0, max = 1e12): number | undefined => intFlag('probe', { count: x }, 'count', min, max);

test('intFlag: digits, or digits times a whole power of ten (--count 1e9); fractions, units, blanks and out-of-range values are usage errors naming the flag and range', () => {
  assert.equal(int('1000'), 1000);
  assert.equal(int('1e9'), 1_000_000_000);
  assert.equal(int('2E6'), 2_000_000);
  assert.equal(int('3e+3'), 3000);
  assert.equal(intFlag('probe', {}, 'count', 1, 10), undefined, 'absent: undefined');
  for (const bad of ['1.5', '1e-3', '1.5e3', '10k', '', ' 5', '0x10', 'e9', '1e', '2e12']) {
    assert.throws(
      () => int(bad),
      (e: Error) => e instanceof DtmeshError && e.exitCode === 2 && e.message.includes('--count must be an integer from 0 to 1000000000000') && !e.message.includes('\n'),
      `'${bad}'`,
    );
  }
  assert.throws(() => int('5', 10, 20), /--count must be an integer from 10 to 20/);
});

test('numFlag: any finite number in range (decimals and exponents); blanks and words are usage errors', () => {
  assert.equal(numFlag('probe', { rate: '2.5e3' }, 'rate', 0, 1e6), 2500);
  assert.equal(numFlag('probe', { rate: '0.25' }, 'rate', 0, 1e6), 0.25);
  for (const bad of ['', ' ', 'fast', 'Infinity', '-1']) assert.throws(() => numFlag('probe', { rate: bad }, 'rate', 0, 1e6), /--rate must be a number from 0 to 1000000/, `'${bad}'`);
});

test('a negative value after a flag gets the flag\'s own range error, not parseArgs\' "ambiguous" (--count -5, --rate -1, --every -0.5)', () => {
  const flags = { count: { type: 'string' as const }, rate: { type: 'string' as const }, every: { type: 'string' as const }, quiet: { type: 'boolean' as const } };
  const v = parseFlags('probe', ['--count', '-5', '--rate', '-1', '--every', '-.5'], flags);
  assert.deepEqual([v.count, v.rate, v.every], ['-5', '-1', '-.5']);
  assert.throws(() => intFlag('probe', v, 'count', 1, 1e12), (e: DtmeshError) => e.exitCode === 2 && /--count must be an integer from 1 to/.test(e.message));
  assert.throws(() => numFlag('probe', v, 'rate', 0, 1e7), (e: DtmeshError) => e.exitCode === 2 && /--rate must be a number from 0 to/.test(e.message));
  // a boolean flag followed by a negative number is still an error (a stray positional), and a missing value is still "ambiguous"
  assert.throws(() => parseFlags('probe', ['--quiet', '-5'], flags), (e: DtmeshError) => e.exitCode === 2);
  assert.throws(() => parseFlags('probe', ['--count', '--rate', '5'], flags), (e: DtmeshError) => e.exitCode === 2);
});

test('API errors about socket options name the CLI flag (--dscp, --gso, --ttl, --lane), not the option', () => {
  for (const name of ['dscp', 'gso', 'ttl', 'lane']) {
    const e = asUsage('serve', new RangeError(`options.${name} needs the native lane`)) as DtmeshError;
    assert.match(e.message, new RegExp(`^dtmesh serve: --${name} needs the native lane`), e.message);
  }
});

test('the closing summary says "no datagram verified" instead of receive→verdict figures of 0 µs when nothing was verified', () => {
  const none = new Books().snapshot();
  assert.match(summaryLine(none), /; receive→verdict: no datagram verified;/);
  assert.doesNotMatch(summaryLine(none), /p50 0 µs/);
  const some = { ...none, latency_us: { ...none.latency_us, count: 3, p50: 12, p99: 40 } };
  assert.match(summaryLine(some), /; receive→verdict p50 12 µs, p99 40 µs;/);
});
