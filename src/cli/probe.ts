/**
 * `dtmesh probe` — authenticated probe bursts against a responder: a thin layer over
 * {@link probe} and an {@link Engine} that verifies the replies.
 */
import { lookup } from 'node:dns/promises';
import * as fs from 'node:fs';
import { DtmeshError } from '../errors.js';
import { Engine } from '../engine.js';
import { GRACE_AUTO_RULE, probe, type ProbeProgress, type ProbeReport } from '../probe/prober.js';
import { assertValidId } from '../protocol/ids.js';
import { DROP_REASONS } from '../protocol/verdict.js';
import { asUsage, intFlag, numFlag, parseFlags, required, usage } from './args.js';

const HELP = `Usage: dtmesh probe --state-dir DIR --tenant T --agent B --target A@HOST:PORT
                    [--count N | --duration S] [--rate PPS] [--size BYTES] [--json PATH]
                    [--listen HOST:PORT] [--grace-ms MS] [--workers N]

Send authenticated PROBEs from agent B to agent A at HOST:PORT, verify every REPLY
(a forged or replayed one is dropped and counted, never matched) and report loss,
late replies, duplicates, reordering, RTT percentiles, jitter and throughput.
A probe with no reply by its deadline is lost; a reply after it is late, never received.

  --state-dir DIR      directory holding mesh-root-key (the tenant's root)
  --tenant T           tenant ID
  --agent B            this (probing) agent's ID
  --target A@HOST:PORT the responder's agent ID and address, e.g. edge-1@127.0.0.1:7000
  --count N            probes to send (default 1000)
  --duration S         send for S seconds instead of a count
  --rate PPS           probes per second, 0 = as fast as possible (default 1000)
  --size BYTES         whole datagram size, 50 up to 2048 (default 84)
  --json PATH          write the report as JSON
  --listen HOST:PORT   local address for the prober's socket (default: loopback for a
                       loopback target, else 0.0.0.0, port 0)
  --grace-ms MS        each probe's deadline, ms after its send, 0-60000 (default:
                       ${GRACE_AUTO_RULE})
  --workers N          verification workers for the replies (default 1)
  --help               this text
`;

/** Parse `A@HOST:PORT`. */
export function parseTarget(s: string): { agent: string; host: string; port: number } {
  const m = /^(.+)@(\[[^\]]+\]|[^@:]+):(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`--target must be AGENT@HOST:PORT (port 1-65535), e.g. edge-1@127.0.0.1:7000`);
  }
  assertValidId(m[1], '--target agent');
  return { agent: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

/** The report's human form: the figures of MEASUREMENT.md §1–2, loss percentage of probes sent. */
export function formatReport(r: ProbeReport): string {
  const pct = r.sent > 0 ? ((100 * r.lost) / r.sent).toFixed(3) : '0';
  const drops = DROP_REASONS.filter((k) => r.dropped[k] > 0).map((k) => `${k} ${r.dropped[k]}`);
  return [
    `sent ${r.sent}, received ${r.received}, lost ${r.lost} (${pct} %), late ${r.late}, duplicates ${r.duplicates}, reordered ${r.reordered}`,
    `deadline ${r.grace_ms} ms after each send (${r.grace_rule})${r.send_errors ? `; ${r.send_errors} sends failed (not counted as sent)` : ''}`,
    `rtt µs: min ${r.rtt_us.min}  p50 ${r.rtt_us.p50}  p90 ${r.rtt_us.p90}  p99 ${r.rtt_us.p99}  p999 ${r.rtt_us.p999}  max ${r.rtt_us.max}; jitter ${r.jitter_us} µs`,
    `rate: offered ${r.offered_pps} pps, achieved ${r.achieved_pps} pps, ${(r.throughput_bps / 1e6).toFixed(2)} Mbit/s over ${r.duration_s} s`,
    `reply verification: ${drops.length ? `dropped ${drops.join(', ')}` : 'nothing dropped'}${r.unmatched ? `, ${r.unmatched} unmatched replies` : ''}`,
  ].join('\n');
}

/**
 * The `--json` document: the contract's twelve keys, then the probe-life figures of
 * MEASUREMENT.md §1 (`late`, `in_flight`, `send_errors`) and the deadline with the rule
 * that chose it (`grace_ms`, `grace_rule`).
 */
export function reportJson(r: ProbeReport): object {
  const { sent, received, lost, duplicates, reordered, rtt_us, jitter_us, offered_pps, achieved_pps, throughput_bps, duration_s, dropped } = r;
  const { late, in_flight, send_errors, grace_ms, grace_rule } = r;
  return { sent, received, lost, duplicates, reordered, rtt_us, jitter_us, offered_pps, achieved_pps, throughput_bps, duration_s, dropped, late, in_flight, send_errors, grace_ms, grace_rule };
}

function progressLine(p: ProbeProgress, tty: boolean): string {
  // Loss among probes whose fate is known: in-flight probes are never loss (MEASUREMENT.md §1).
  const decided = p.received + p.lost;
  const loss = decided > 0 ? ((100 * p.lost) / decided).toFixed(2) : '0.00';
  const head = `${Math.round(p.ratePps)} pps, sent ${p.sent}, received ${p.received}, lost ${p.lost} (${loss} %), late ${p.late}, in flight ${p.inFlight}`;
  if (!tty || p.target === Infinity) return head;
  const width = 24;
  const done = Math.min(width, Math.round((width * p.sent) / p.target));
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${head}`;
}

/** Run `dtmesh probe`: flags → {@link probe} → the report (MEASUREMENT.md §1–2). */
export async function probeCommand(argv: string[]): Promise<number> {
  const cmd = 'probe';
  const v = parseFlags(cmd, argv, {
    'state-dir': { type: 'string' },
    tenant: { type: 'string' },
    agent: { type: 'string' },
    target: { type: 'string' },
    count: { type: 'string' },
    duration: { type: 'string' },
    rate: { type: 'string' },
    size: { type: 'string' },
    json: { type: 'string' },
    listen: { type: 'string' },
    'grace-ms': { type: 'string' },
    workers: { type: 'string' },
  });
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const stateDir = required(cmd, v, 'state-dir');
  const tenant = required(cmd, v, 'tenant');
  const agent = required(cmd, v, 'agent');
  let target;
  try {
    target = parseTarget(required(cmd, v, 'target'));
  } catch (e) {
    throw asUsage(cmd, e);
  }
  if (v.count !== undefined && v.duration !== undefined) throw usage(cmd, 'give --count or --duration, not both');
  const count = intFlag(cmd, v, 'count', 1, 1e9);
  const durationS = numFlag(cmd, v, 'duration', 0.001, 86_400);
  const rate = numFlag(cmd, v, 'rate', 0, 10_000_000);
  const size = intFlag(cmd, v, 'size', 50, 65507);
  const graceMs = intFlag(cmd, v, 'grace-ms', 0, 60_000);
  const workers = intFlag(cmd, v, 'workers', 1, 64) ?? 1;
  const jsonPath = typeof v.json === 'string' ? v.json : null;
  let address: string;
  let family: number;
  try {
    ({ address, family } = await lookup(target.host));
  } catch {
    throw new DtmeshError(`cannot resolve ${target.host}: check the --target host`);
  }
  const loopback = family === 4 ? address.startsWith('127.') : address === '::1';
  const listen = typeof v.listen === 'string' ? v.listen : family === 6 ? (loopback ? '[::1]:0' : '[::]:0') : loopback ? '127.0.0.1:0' : '0.0.0.0:0';
  let engine: Engine;
  try {
    engine = await Engine.create({ stateDir, tenant, agent, peers: [target.agent], listen, workers });
  } catch (e) {
    throw asUsage(cmd, e);
  }
  const tty = process.stdout.isTTY === true;
  let report: ProbeReport;
  try {
    process.stdout.write(`dtmesh probe: ${agent} → ${target.agent} at ${address}:${target.port}, ${size ?? 84}-byte probes, ${count ?? (durationS !== undefined ? `${durationS} s` : 1000)}${count !== undefined || durationS === undefined ? ' probes' : ''} at ${rate === 0 ? 'max rate' : `${rate ?? 1000} pps`}\n`);
    report = await probe(engine, {
      agent: target.agent,
      host: address,
      port: target.port,
      count,
      durationS,
      rate,
      size,
      graceMs,
      progressMs: tty ? 200 : 1000,
      onProgress: (p) => process.stdout.write(tty ? `\r${progressLine(p, true)}\x1b[K` : `dtmesh probe: ${progressLine(p, false)}\n`),
    });
  } catch (e) {
    await engine.close();
    throw asUsage(cmd, e);
  }
  await engine.close();
  if (tty) process.stdout.write('\r\x1b[K');
  process.stdout.write(formatReport(report) + '\n');
  if (jsonPath !== null) {
    try {
      fs.writeFileSync(jsonPath, JSON.stringify(reportJson(report), null, 2) + '\n');
    } catch (e) {
      throw new DtmeshError(`cannot write ${jsonPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (report.sent > 0 && report.received === 0) {
    throw new DtmeshError(
      `no verified REPLY from ${target.agent} at ${address}:${target.port}: is 'dtmesh serve' running there with tenant ${tenant}, the same root key and ${agent} in its --peers?`,
    );
  }
  return 0;
}
