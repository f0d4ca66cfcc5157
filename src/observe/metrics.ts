/**
 * Prometheus text exposition (format 0.0.4) of the engine's stats, served over HTTP for
 * `serve --metrics HOST:PORT`. The figures are exactly `engine.stats()`'s.
 */
import * as http from 'node:http';
import { DtmeshError } from '../errors.js';
import type { EngineStats } from './stats.js';
import { DROP_REASONS } from '../protocol/verdict.js';

/** Render stats as Prometheus text. */
export function prometheusText(s: EngineStats): string {
  const lines: string[] = [];
  const counter = (name: string, help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
  };
  counter('dtmesh_received_total', 'Datagrams taken from the socket.', s.received);
  counter('dtmesh_accepted_total', 'Datagrams that passed every check (PROTOCOL.md section 4).', s.accepted);
  counter('dtmesh_replied_total', 'REPLYs sent for accepted PROBEs.', s.replied);
  lines.push('# HELP dtmesh_dropped_total Datagrams dropped, by canonical reason.', '# TYPE dtmesh_dropped_total counter');
  for (const r of DROP_REASONS) lines.push(`dtmesh_dropped_total{reason="${r}"} ${s.dropped[r]}`);
  counter('dtmesh_send_errors_total', 'Sends the kernel or Node refused (REPLYs, punch bursts, own PROBEs); counted, never fatal.', s.send_errors);
  if (s.kernel_drops !== undefined) {
    counter('dtmesh_kernel_drops_total', 'Datagrams the kernel dropped for this socket (receive buffer full).', s.kernel_drops);
  }
  if (s.punch !== undefined) {
    counter('dtmesh_punch_granted_total', 'PUNCH_HINTs granted (each sends a burst of PROBEs).', s.punch.granted);
    lines.push('# HELP dtmesh_punch_refused_total PUNCH_HINTs refused by the policy, by reason.', '# TYPE dtmesh_punch_refused_total counter');
    for (const [r, v] of Object.entries(s.punch.refused)) lines.push(`dtmesh_punch_refused_total{reason="${r}"} ${v}`);
  }
  const l = s.latency_us;
  lines.push('# HELP dtmesh_verdict_latency_us Receive to verdict latency in microseconds.', '# TYPE dtmesh_verdict_latency_us summary');
  for (const [q, v] of [['0.5', l.p50], ['0.9', l.p90], ['0.99', l.p99], ['0.999', l.p999], ['1', l.max]] as const) {
    lines.push(`dtmesh_verdict_latency_us{quantile="${q}"} ${v}`);
  }
  lines.push(`dtmesh_verdict_latency_us_count ${l.count}`);
  return lines.join('\n') + '\n';
}

/** Serve `GET /metrics` (and `/`) with `stats()` on `host:port`; resolves once listening. */
export function serveMetrics(stats: () => EngineStats, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheusText(stats()));
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new DtmeshError(e.code === 'EADDRINUSE' ? `metrics address ${host}:${port} is already in use: pick another with --metrics` : `cannot serve metrics on ${host}:${port}: ${e.code ?? e.message}`)),
    );
    server.listen(port, host, () => resolve(server));
  });
}
