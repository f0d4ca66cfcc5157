/**
 * The mesh prober's per-peer counters in Prometheus form (src/observe/metrics.ts
 * meshMetrics, MEASUREMENT.md §4): `dtmesh_probe_sent_total` never goes down, even when a
 * probe counted sent is found refused a loop turn later (MEASUREMENT.md §1: it was never
 * sent), and a peer that left the roster and came back starts afresh.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { meshMetrics } from '../../src/observe/metrics.js';

test('dtmesh_probe_sent_total: monotonic across a refused probe taken back (10 → 9 reads 10, then 12); a peer gone and back starts again from its own count', async () => {
  let rows = [{ peer: 'b', sent: 10, received: 9, lost: 0, late: 0, reordered: 0, duplicate: 0, send_errors: 0 }];
  const reg = meshMetrics(new Registry(), { figures: () => rows, histograms: () => [] });
  const sent = async (): Promise<Record<string, number>> => {
    const m = (await reg.getSingleMetric('dtmesh_probe_sent_total')!.get()).values;
    return Object.fromEntries(m.map((v) => [String(v.labels.peer), v.value]));
  };
  assert.deepEqual(await sent(), { b: 10 });
  rows = [{ ...rows[0]!, sent: 9, send_errors: 1 }]; // the dgram lane's callback: the 10th was refused
  assert.deepEqual(await sent(), { b: 10 }, 'never lower than a value already exported');
  rows = [{ ...rows[0]!, sent: 12 }];
  assert.deepEqual(await sent(), { b: 12 });
  rows = [{ peer: 'c', sent: 3, received: 3, lost: 0, late: 0, reordered: 0, duplicate: 0, send_errors: 0 }]; // b left the roster
  assert.deepEqual(await sent(), { c: 3 });
  rows = [...rows, { peer: 'b', sent: 2, received: 2, lost: 0, late: 0, reordered: 0, duplicate: 0, send_errors: 0 }]; // b is back, its figures new
  assert.deepEqual(await sent(), { c: 3, b: 2 }, 'a peer back in the roster starts from its new count, not its old high');
  const received = (await reg.getSingleMetric('dtmesh_probe_received_total')!.get()).values.map((v) => v.value);
  assert.deepEqual(received, [3, 2], 'the other counters are the figures as they are');
  const errors = (await reg.getSingleMetric('dtmesh_probe_send_errors_total')!.get()).values.map((v) => [v.labels.peer, v.value]);
  assert.deepEqual(errors, [['c', 0], ['b', 0]], 'refusals per peer: dtmesh_probe_send_errors_total');
});
