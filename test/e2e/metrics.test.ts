/**
 * The Prometheus metrics (src/observe/metrics.ts, prom-client): collected at scrape time
 * from the engine's books and HDR histograms, in base units with `_total` counters, and
 * clean under `promtool check metrics` (Debian's `prometheus` package; CI installs it —
 * where it is missing the lint is skipped with the reason printed, and under CI=true that
 * fails instead).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Engine } from '../../src/engine.js';
import { engineRegistry, serveMetrics } from '../../src/observe/metrics.js';
import { promtoolCheck, TestPeer, within } from '../helpers.js';

const tenant = 'tenant-metrics';

/** The value of the sample `name{labels}` in Prometheus text. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `metrics has ${series}`);
  return Number(line.slice(series.length + 1));
}

test('engine metrics over HTTP: counters and the latency histogram match the books; promtool finds nothing to say', async (t) => {
  const root = new Uint8Array(randomBytes(32));
  const engine = await Engine.create({ rootKey: root, tenant, agent: 'resp', peers: ['p'], workers: 1 });
  const peer = await TestPeer.open(root, tenant, 'p', 'resp');
  const stranger = await TestPeer.open(root, tenant, 'stranger', 'resp');
  const server = await serveMetrics(engineRegistry(engine), '127.0.0.1', 0);
  try {
    for (let i = 0; i < 30; i++) await peer.send(peer.packet({ probeId: i }), engine.address.port);
    for (let i = 0; i < 7; i++) await stranger.send(stranger.packet(), engine.address.port);
    await peer.waitFor(30, 5000);
    const addr = server.address() as { port: number };
    const res = await within(5000, fetch(`http://127.0.0.1:${addr.port}/metrics`), 'GET /metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const s = engine.stats();
    assert.equal(sample(text, 'dtmesh_received_total'), s.received);
    assert.equal(sample(text, 'dtmesh_received_total'), 37);
    assert.equal(sample(text, 'dtmesh_accepted_total'), 30);
    assert.equal(sample(text, 'dtmesh_replied_total'), 30);
    assert.equal(sample(text, 'dtmesh_dropped_total{reason="unknown_sender"}'), 7);
    assert.equal(sample(text, 'dtmesh_send_errors_total'), 0);
    assert.equal(sample(text, `dtmesh_lane_info{lane="${s.lane ?? 'dgram'}"}`), 1);
    // the histogram: cumulative buckets ending in +Inf = _count = every judged datagram; _sum in seconds
    const buckets = text.split('\n').filter((l) => l.startsWith('dtmesh_verdict_latency_seconds_bucket')).map((l) => Number(l.split(' ')[1]));
    assert.ok(buckets.length > 5);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, 'cumulative');
    assert.equal(buckets.at(-1), 37);
    assert.equal(sample(text, 'dtmesh_verdict_latency_seconds_count'), 37);
    // on loopback every receive→verdict latency is far below the largest finite bound (1 s): that bucket holds them all
    assert.equal(sample(text, 'dtmesh_verdict_latency_seconds_bucket{le="1"}'), 37);
    const sum = sample(text, 'dtmesh_verdict_latency_seconds_sum');
    assert.ok(sum > 0 && sum < 37, `sum of latencies in seconds (${sum})`);
    assert.ok(/^nodejs_eventloop_lag_seconds /m.test(text) && /^process_cpu_user_seconds_total /m.test(text) && /^# TYPE nodejs_gc_duration_seconds histogram/m.test(text), 'Node process metrics: event-loop lag, CPU, GC');
    const lint = promtoolCheck(text);
    if (lint === undefined) {
      assert.ok(!process.env.CI, 'CI installs promtool (Debian prometheus)');
      console.log('# promtool not on PATH: lint skipped');
      t.diagnostic('promtool not on PATH: lint skipped');
    } else assert.equal(lint, null, `promtool check metrics: ${lint}`);
    assert.equal((await within(5000, fetch(`http://127.0.0.1:${addr.port}/nope`), 'GET /nope')).status, 404);
  } finally {
    server.close();
    peer.close();
    stranger.close();
    await engine.close();
  }
});
