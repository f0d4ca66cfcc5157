/**
 * The engine's Prometheus counters never go backwards (MEASUREMENT.md §4, Prometheus
 * counter semantics: a drop reads as a reset and `rate()` jumps): a scrape at which the
 * kernel's drop count cannot be read repeats the last count read instead of 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineRegistry, type MetricsSource } from '../../src/observe/metrics.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { latencyHistogram, type EngineStats } from '../../src/observe/stats.js';

test('dtmesh_kernel_drops_total: an unreadable count at one scrape repeats the last one read, never 0', async () => {
  const seq: Array<number | undefined> = [5, undefined, 7];
  let i = 0;
  const latency = latencyHistogram();
  const source: MetricsSource = {
    stats: (): EngineStats => ({
      received: 0, accepted: 0, replied: 0, send_errors: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as EngineStats['dropped'],
      latency_us: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
      kernel_drops: seq[i],
      lane: 'dgram',
    }),
    verdictLatency: () => latency,
  };
  const registry = engineRegistry(source);
  const seen: number[] = [];
  for (i = 0; i < seq.length; i++) {
    const text = await registry.getSingleMetricAsString('dtmesh_kernel_drops_total');
    seen.push(Number(/^dtmesh_kernel_drops_total (\d+)$/m.exec(text)![1]));
  }
  assert.deepEqual(seen, [5, 5, 7]);
});
