/**
 * An HDR histogram (µs) rendered as a Prometheus histogram (src/observe/metrics.ts
 * HdrHistogramMetric, MEASUREMENT.md §4: base units, cumulative `_bucket{le}`): exact
 * cumulative counts per bound in seconds — a value exactly on a bound counts in that
 * bucket (`le` = less than or equal) — `_sum` in seconds, `_count`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { engineRegistry, HdrHistogramMetric, RTT_BUCKETS, type MetricsSource } from '../../src/observe/metrics.js';
import { latencyHistogram, type EngineStats } from '../../src/observe/stats.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';

/** `{le → count}` of `name`'s buckets, and its `_sum` and `_count`, from Prometheus text. */
function parseHistogram(text: string, name: string, labels = ''): { buckets: Record<string, number>; sum: number; count: number } {
  const buckets: Record<string, number> = {};
  let sum = NaN;
  let count = NaN;
  const sep = labels === '' ? '' : ',';
  for (const line of text.split('\n')) {
    const b = new RegExp(`^${name}_bucket\\{${labels}${sep}le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (b) buckets[b[1]!] = Number(b[2]);
    if (line.startsWith(`${name}_sum${labels === '' ? '' : `{${labels}}`} `)) sum = Number(line.split(' ')[1]);
    if (line.startsWith(`${name}_count${labels === '' ? '' : `{${labels}}`} `)) count = Number(line.split(' ')[1]);
  }
  return { buckets, sum, count };
}

test('dtmesh_verdict_latency_seconds: latencies 10, 30, 100, 2000 µs land in exact cumulative buckets (10 µs and 100 µs sit on bounds 1e-5 and 1e-4 and count there), _sum 0.00214 s, _count 4', async () => {
  const latency = latencyHistogram();
  for (const us of [10, 30, 100, 2000]) latency.recordValue(us);
  const source: MetricsSource = {
    stats: (): EngineStats => ({
      received: 4, accepted: 4, replied: 4, send_errors: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as EngineStats['dropped'],
      latency_us: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
      lane: 'dgram',
    }),
    verdictLatency: () => latency,
  };
  const text = await engineRegistry(source).getSingleMetricAsString('dtmesh_verdict_latency_seconds');
  const h = parseHistogram(text, 'dtmesh_verdict_latency_seconds');
  assert.deepEqual(
    h.buckets,
    {
      '0.00001': 1, // 10 µs: on the bound
      '0.000025': 1,
      '0.00005': 2, // + 30 µs
      '0.0001': 3, // + 100 µs: on the bound
      '0.00025': 3,
      '0.0005': 3,
      '0.001': 3,
      '0.0025': 4, // + 2000 µs
      '0.005': 4,
      '0.01': 4,
      '0.025': 4,
      '0.1': 4,
      '1': 4,
      '+Inf': 4,
    },
    text,
  );
  assert.ok(Math.abs(h.sum - 0.00214) < 1e-12, `_sum ${h.sum} s = (10 + 30 + 100 + 2000) µs`);
  assert.equal(h.count, 4);
});

test('HdrHistogramMetric with the RTT buckets and a peer label: RTTs 25 µs and 1000 µs on bounds count in them, 3000 µs from le 0.005 on; _sum, _count', async () => {
  const rtt = latencyHistogram();
  // below 2048 µs HDR (3 digits) stores every value exactly; 3000 µs is stored as 3001, well inside (2.5 ms, 5 ms]
  for (const us of [25, 1000, 3000]) rtt.recordValue(us);
  const registry = new Registry();
  registry.registerMetric(new HdrHistogramMetric('x_rtt_seconds', 'RTT.', RTT_BUCKETS, () => [{ labels: { peer: 'b' }, histogram: rtt }]) as never);
  const h = parseHistogram(await registry.getSingleMetricAsString('x_rtt_seconds'), 'x_rtt_seconds', 'peer="b"');
  const want: Record<string, number> = { '+Inf': 3 };
  for (const b of RTT_BUCKETS) want[String(b)] = (b >= 25e-6 ? 1 : 0) + (b >= 1e-3 ? 1 : 0) + (b >= 5e-3 ? 1 : 0);
  const got: Record<string, number> = {};
  for (const [le, n] of Object.entries(h.buckets)) got[le === '+Inf' ? le : String(Number(le))] = n; // prom-client writes 2.5e-5 as 0.000025
  assert.deepEqual(got, want);
  assert.equal(h.count, 3);
  assert.ok(Math.abs(h.sum - 0.004026) < 1e-9, `_sum ${h.sum} s = (25 + 1000 + 3001) µs`);
});

test('a value exactly on a bound counts in that bucket (le is ≤): bounds 1.024 ms and 1.5 ms (exact in µs), values 1024 µs and 1500 µs', async () => {
  // The shipped bucket sets scale to a hair above their µs value in floating point
  // (1e-5 / 1e-6 = 10.000000000000002), so there `<` and `≤` read alike; these bounds scale exactly.
  const h = latencyHistogram();
  for (const us of [1024, 1500]) h.recordValue(us);
  const registry = new Registry();
  registry.registerMetric(new HdrHistogramMetric('x_on_bound_seconds', 'On the bound.', [0.001023, 0.001024, 0.0015], () => [{ labels: {}, histogram: h }]) as never);
  const got = parseHistogram(await registry.getSingleMetricAsString('x_on_bound_seconds'), 'x_on_bound_seconds');
  assert.deepEqual(got.buckets, { '0.001023': 0, '0.001024': 1, '0.0015': 2, '+Inf': 2 });
  assert.equal(got.count, 2);
});
