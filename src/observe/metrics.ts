/**
 * Prometheus metrics through prom-client (MEASUREMENT.md §4: base units, `_total` for
 * counters, histograms for latency, one label per peer), served over HTTP for
 * `serve --metrics` and `agent --metrics`. Everything is collected at scrape time from
 * the engine's books and histograms, so the data path pays nothing for metrics.
 *
 * prom-client's own `Histogram` counts each observation as it happens; the engine and
 * the prober already keep HDR histograms (hdr-histogram-js, µs), so {@link HdrHistogramMetric}
 * renders one as a Prometheus histogram (cumulative `_bucket{le}`, `_sum`, `_count`) at
 * scrape time instead.
 */
import * as http from 'node:http';
import type * as hdr from 'hdr-histogram-js';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { DtmeshError } from '../errors.js';
import { formatHostPort } from '../options.js';
import type { EngineStats } from './stats.js';
import { DROP_REASONS } from '../protocol/verdict.js';

/** Bucket bounds, seconds, for receive→verdict latency (10 µs … 1 s). */
export const VERDICT_LATENCY_BUCKETS = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1];
/** Bucket bounds, seconds, for probe RTTs (25 µs … 5 s). */
export const RTT_BUCKETS = [2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One labelled HDR histogram (values in µs). */
export interface LabelledHistogram {
  labels: Record<string, string>;
  histogram: hdr.Histogram;
}

/** What prom-client's registry asks of a metric (`get()`), for a metric computed at scrape time. */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * A Prometheus histogram read from HDR histograms at scrape time: for each bound, the
 * count of recorded values ≤ it (HDR's resolution: 3 significant digits), `_sum` from the
 * recorded values, `_count` the total. Registered like any prom-client metric.
 */
export class HdrHistogramMetric {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bucketsSeconds: readonly number[],
    private readonly source: () => LabelledHistogram[],
    /** Seconds per recorded unit (µs: 1e-6). */
    private readonly unitSeconds = 1e-6,
  ) {}

  /** The values prom-client renders (`_bucket`, `_sum`, `_count` per label set). */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, histogram } of this.source()) {
      const bounds = this.bucketsSeconds.map((b) => b / this.unitSeconds);
      const counts = new Array<number>(bounds.length).fill(0);
      let sum = 0;
      const it = (histogram as unknown as { recordedValuesIterator: RecordedIterator }).recordedValuesIterator;
      it.reset();
      while (it.hasNext()) {
        const v = it.next();
        const value = v.valueIteratedTo;
        const n = v.countAtValueIteratedTo;
        sum += value * n;
        for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]!) counts[i]! += n;
      }
      this.bucketsSeconds.forEach((b, i) => values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: b }, value: counts[i]! }));
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.totalCount });
      values.push({ metricName: `${this.name}_sum`, labels, value: sum * this.unitSeconds });
      values.push({ metricName: `${this.name}_count`, labels, value: histogram.totalCount });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Nothing to reset: the figures belong to the engine. */
  reset(): void {}
}

/** hdr-histogram-js's iterator over recorded values (JS implementation). */
interface RecordedIterator {
  reset(): void;
  hasNext(): boolean;
  next(): { valueIteratedTo: number; countAtValueIteratedTo: number };
}

/** A counter whose value is read at scrape time (it only ever goes up: the books never go back). */
function readCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });
}

/** What the engine's metrics are read from (an {@link Engine}, or anything alike). */
export interface MetricsSource {
  stats(): EngineStats;
  /** The receive→verdict latency histogram (µs). */
  verdictLatency(): hdr.Histogram;
}

/**
 * A registry with the responder's metrics — verdicts, drops by reason, send errors,
 * kernel drops, punch decisions, receive→verdict latency (a histogram, seconds), the lane
 * — and Node's default process metrics (event-loop lag, GC, memory).
 */
export function engineRegistry(source: MetricsSource, registry = new Registry()): Registry {
  const stats = (): EngineStats => source.stats();
  readCounter(registry, 'dtmesh_received_total', 'Datagrams taken from the socket.', [], () => [[{}, stats().received]]);
  readCounter(registry, 'dtmesh_accepted_total', 'Datagrams that passed every check (PROTOCOL.md section 4).', [], () => [[{}, stats().accepted]]);
  readCounter(registry, 'dtmesh_replied_total', 'REPLYs sent for accepted PROBEs.', [], () => [[{}, stats().replied]]);
  readCounter(registry, 'dtmesh_dropped_total', 'Datagrams dropped, by canonical reason.', ['reason'], () => DROP_REASONS.map((r) => [{ reason: r }, stats().dropped[r]]));
  readCounter(registry, 'dtmesh_send_errors_total', 'Sends the kernel or Node refused (REPLYs, punch bursts, own PROBEs); counted, never fatal.', [], () => [[{}, stats().send_errors]]);
  // a counter never goes back: a scrape where the kernel's count cannot be read repeats the last one read
  let kernelDrops = 0;
  readCounter(registry, 'dtmesh_kernel_drops_total', 'Datagrams the kernel dropped for this socket (receive buffer full); 0 where unknown.', [], () => {
    const k = stats().kernel_drops;
    if (k !== undefined && k !== null && k > kernelDrops) kernelDrops = k;
    return [[{}, kernelDrops]];
  });
  readCounter(registry, 'dtmesh_punch_granted_total', 'PUNCH_HINTs granted (each sends a burst of PROBEs).', [], () => [[{}, stats().punch?.granted ?? 0]]);
  readCounter(registry, 'dtmesh_punch_refused_total', 'PUNCH_HINTs refused by the policy, by reason.', ['reason'], () =>
    Object.entries(stats().punch?.refused ?? {}).map(([r, v]) => [{ reason: r }, v]),
  );
  new Gauge({
    name: 'dtmesh_lane_info',
    help: 'The socket lane serving (1 for the one in use).',
    labelNames: ['lane'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ lane: stats().lane ?? 'dgram' }, 1);
    },
  });
  registry.registerMetric(
    new HdrHistogramMetric('dtmesh_verdict_latency_seconds', 'Receive to verdict latency of every datagram.', VERDICT_LATENCY_BUCKETS, () => [
      { labels: {}, histogram: source.verdictLatency() },
    ]) as unknown as Counter,
  );
  processMetrics(registry);
  return registry;
}

/**
 * Node's default process metrics (event-loop lag, GC, CPU, memory, handles) into
 * `registry`, less the three gauges prom-client names with `_total`
 * (`nodejs_active_{handles,requests,resources}_total`), which `promtool check metrics`
 * rejects ("non-counter metrics should not have _total suffix").
 */
export function processMetrics(registry: Registry): void {
  for (const m of defaultMetrics()) registry.registerMetric(m as unknown as Counter);
}

let defaults: unknown[] | null = null;
/**
 * prom-client's default metrics, made once per process and shared by every registry:
 * each `collectDefaultMetrics` call starts its own event-loop-delay monitor and GC
 * observer, which nothing stops — one per registry would pile up in an app that builds
 * many (an agent per peer set, a registry per reconfiguration).
 */
function defaultMetrics(): unknown[] {
  if (defaults === null) {
    const all = new Registry();
    collectDefaultMetrics({ register: all });
    defaults = all.getMetricsAsArray().filter((m) => !/^nodejs_active_\w+_total$/.test((m as { name: string }).name));
  }
  return defaults;
}

/** Serve `GET /metrics` (and `/`) from `registry` on `host:port`; resolves once listening. */
export function serveMetrics(registry: Registry, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new DtmeshError(e.code === 'EADDRINUSE' ? `metrics address ${formatHostPort(host, port)} is already in use: pick another with --metrics` : `cannot serve metrics on ${formatHostPort(host, port)}: ${e.code ?? e.message}`)),
    );
    server.listen(port, host, () => resolve(server));
  });
}

/** What the per-peer probe metrics are read from (a {@link MeshProber}). */
export interface MeshMetricsSource {
  figures(): Array<{ peer: string; sent: number; received: number; lost: number; late: number; reordered: number; duplicate: number; send_errors: number }>;
  /** Cumulative RTT histograms (µs) by peer. */
  histograms(): Array<{ peer: string; histogram: hdr.Histogram }>;
}

/**
 * Add the prober's per-peer metrics to `registry`: `dtmesh_probe_rtt_seconds{peer}`
 * (histogram) and `dtmesh_probe_{sent,received,lost,late,reordered,duplicate,send_errors}_total{peer}`
 * (MEASUREMENT.md §4: one label per peer, bounded by the roster).
 */
export function meshMetrics(registry: Registry, source: MeshMetricsSource): Registry {
  const kinds = ['sent', 'received', 'lost', 'late', 'reordered', 'duplicate', 'send_errors'] as const;
  const help: Record<(typeof kinds)[number], string> = {
    sent: 'PROBEs sent to the peer.',
    received: 'REPLYs received from the peer by the deadline (MEASUREMENT.md section 1).',
    lost: 'PROBEs with no REPLY by their deadline.',
    late: 'REPLYs after their PROBE was declared lost (never counted received).',
    reordered: 'REPLYs whose PROBE was sent before the latest one already answered.',
    duplicate: 'Second REPLYs for a PROBE already received.',
    send_errors: 'PROBEs to the peer that Node or the kernel refused to send (never sent, never lost; MEASUREMENT.md section 1).',
  };
  // `sent` can step back by a probe the dgram lane's callback reports refused a loop turn
  // after it was counted (MEASUREMENT.md §1: a refused probe was never sent). A counter must
  // not go down (Prometheus would read a reset): export the highest value seen per peer,
  // which the next probe sent passes again; a peer gone from the roster starts afresh.
  const sentHigh = new Map<string, number>();
  const monotonicSent = (peer: string, v: number, live: Set<string>): number => {
    live.add(peer);
    const x = Math.max(v, sentHigh.get(peer) ?? 0);
    sentHigh.set(peer, x);
    return x;
  };
  for (const k of kinds) {
    readCounter(registry, `dtmesh_probe_${k}_total`, help[k], ['peer'], () => {
      const figs = source.figures();
      if (k !== 'sent') return figs.map((f) => [{ peer: f.peer }, f[k]]);
      const live = new Set<string>();
      const rows = figs.map((f): [{ peer: string }, number] => [{ peer: f.peer }, monotonicSent(f.peer, f.sent, live)]);
      for (const p of sentHigh.keys()) if (!live.has(p)) sentHigh.delete(p);
      return rows;
    });
  }
  registry.registerMetric(
    new HdrHistogramMetric('dtmesh_probe_rtt_seconds', 'Round-trip time of probes answered by their deadline, per peer.', RTT_BUCKETS, () =>
      source.histograms().map((h) => ({ labels: { peer: h.peer }, histogram: h.histogram })),
    ) as unknown as Counter,
  );
  return registry;
}
