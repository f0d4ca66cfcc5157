/**
 * GC pauses over a window (src/observe/gc-pauses.ts): a pause is counted by when it began,
 * not when Node delivered its entry — one that began before the window and arrived inside
 * it is not the window's — and summed, maxed and rounded as the reports print them.
 */
import assert from 'node:assert/strict';
import { performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { test } from 'node:test';
import { GcPauses } from '../../src/observe/gc-pauses.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Where churned objects escape to (so an optimizing compiler cannot elide them), overwritten at once. */
const sink: unknown[] = new Array(1024);

/** Allocate and drop ~`mb` MB of small objects: young-generation collections, synchronously. */
function churn(mb: number): void {
  for (let i = 0; i < mb * 16_000; i++) sink[i & 1023] = [i, i + 1, i + 2, { i }];
}

test('record: only pauses that began inside [begin, end] count; sum, longest and rounding', () => {
  const g = new GcPauses();
  g.stop();
  g.record(50, 3); // before any window
  g.begin(100);
  g.record(99.9, 5);
  g.record(100, 2.004);
  g.record(150, 7.126);
  g.end(200);
  g.record(200.1, 9);
  assert.deepEqual(g.summary(), { count: 2, total_ms: 9.1, max_ms: 7.13 });
  g.begin(300);
  assert.deepEqual(g.summary(), { count: 0, total_ms: 0, max_ms: 0 }, 'a new window forgets the last one');
});

test('real collections: the window holds exactly the pauses that began in it, not those delivered in it after they began before it', async () => {
  const all: PerformanceEntry[] = [];
  const raw = new PerformanceObserver((l) => void all.push(...l.getEntries()));
  raw.observe({ entryTypes: ['gc'] });
  const g = new GcPauses();
  churn(64); // collections before the window, whose entries Node delivers after it began
  const from = performance.now();
  g.begin(from);
  churn(64); // and collections inside it
  await sleep(100);
  const until = performance.now();
  g.end(until);
  await sleep(50);
  const got = g.summary();
  g.stop();
  for (const e of raw.takeRecords()) all.push(e);
  raw.disconnect();
  const before = all.filter((e) => e.startTime < from);
  const inside = all.filter((e) => e.startTime >= from && e.startTime <= until);
  assert.ok(before.length > 0, `64 MB of garbage before the window collected at least once (${all.length} entries)`);
  assert.ok(inside.length > 0, '64 MB of garbage inside the window collected at least once');
  assert.equal(got.count, inside.length, `counted ${got.count}, began inside ${inside.length}, before ${before.length}`);
  const max = Math.max(...inside.map((e) => e.duration));
  assert.ok(Math.abs(got.max_ms - max) <= 0.005, `longest ${got.max_ms} vs ${max}`);
});
