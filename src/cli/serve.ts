/**
 * `dtmesh serve` — the responder: a thin layer over {@link Engine}.
 */
import * as http from 'node:http';
import { Engine, parseHostPort, type EngineOptions } from '../engine.js';
import { envLane, formatHostPort } from '../options.js';
import { engineRegistry, serveMetrics } from '../observe/metrics.js';
import { statsDocument, type EngineStats } from '../observe/stats.js';
import { DROP_REASONS } from '../protocol/verdict.js';
import { checkWritable, writeAtomic } from './output.js';
import { onStopSignals } from './signals.js';
import { asUsage, CLI_REPLAY_WINDOW, intFlag, parseFlags, required, usage } from './args.js';

const HELP = `Usage: dtmesh serve --state-dir DIR --tenant T --agent A --peers B,C,... --listen HOST:PORT
                    [--workers N] [--sockets N] [--batch N] [--replay-window W] [--max-datagram N]
                    [--clock-window-ms N] [--recv-buffer BYTES] [--stats-json PATH]
                    [--metrics HOST:PORT] [--lane auto|native|dgram] [--ttl N] [--dscp N] [--gso]

Receive, verify and answer mesh probes (PROTOCOL.md). Serving starts once the socket
is bound and the worker pool is up. SIGTERM or SIGINT stops receiving, drains in-flight
batches, writes the final stats to PATH (when given), prints a summary and exits 0.

  --state-dir DIR        directory holding mesh-root-key (see 'dtmesh keys init')
  --tenant T             tenant ID
  --agent A              this agent's ID
  --peers B,C,...        the roster, comma-separated (A itself is ignored)
  --listen HOST:PORT     address to bind, e.g. 127.0.0.1:7000 or [::1]:7000
  --workers N            verification workers, 1-64 (default: min(2, cores))
  --sockets N            sockets on the listen port, 1-64 (default 1): N-1 extra socket
                         threads bound with reusePort, one pool, one in-order collector.
                         Any Node on the native lane; the dgram lane needs Node >= 22.12 /
                         23.1 (older Node serves on one socket and says so at start)
  --batch N              datagrams per batch, 1-4096 (default 256)
  --replay-window W      0 = strict, or a multiple of 64 up to 8192 (default
                         ${CLI_REPLAY_WINDOW}: a reordered probe is answered, not a replay drop)
  --max-datagram N       largest accepted datagram, 50-65507 bytes (default 2048)
  --clock-window-ms N    accepted clock skew in ms (default 5000)
  --recv-buffer BYTES    socket receive buffer to ask for (default 4194304); a cap by
                         net.core.rmem_max is reported in one line at start
  --stats-json PATH      write the final stats here on shutdown
  --metrics HOST:PORT    serve the counters and the receive→verdict latency histogram
                         (dtmesh_verdict_latency_seconds) in Prometheus text format at
                         http://HOST:PORT/metrics (e.g. 127.0.0.1:9464)
  --lane L               socket lane: native (recvmmsg/sendmmsg into the batches, kernel
                         timestamps, --sockets on any Node; Linux, built by npm install),
                         dgram (Node's dgram) or auto (native where built, else dgram,
                         said in one line). Default: $DTMESH_LANE, else dgram
  --ttl N                IP TTL / hop limit of every packet sent, 1-255
  --dscp N               DSCP of every packet sent, 0-63 (native lane only)
  --gso                  native lane only: the REPLYs of one batch to one address (a probe
                         burst) leave as one UDP GSO send the kernel cuts into the same
                         datagrams (Linux >= 4.18): one send per run, not per REPLY. A
                         packet filter or netem before the cut (this host, loopback, veth)
                         sees such a run as one packet and drops it whole: off by default
  --help                 this text
`;

/** One-line human summary of stats. */
export function summaryLine(s: EngineStats): string {
  const drops = DROP_REASONS.filter((r) => s.dropped[r] > 0).map((r) => `${r} ${s.dropped[r]}`);
  return (
    `received ${s.received}, accepted ${s.accepted}, replied ${s.replied}, dropped ${DROP_REASONS.reduce((a, r) => a + s.dropped[r], 0)}` +
    (drops.length ? ` (${drops.join(', ')})` : '') +
    (s.latency_us.count > 0 ? `; receive→verdict p50 ${s.latency_us.p50} µs, p99 ${s.latency_us.p99} µs` : '; receive→verdict: no datagram verified') +
    `; send errors ${s.send_errors}` +
    (s.kernel_drops !== undefined ? `; kernel drops ${s.kernel_drops}` : '')
  );
}

/** Parse `--peers B,C,...`. */
export function parsePeers(command: string, s: string): string[] {
  const peers = s.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (peers.length === 0) throw usage(command, '--peers needs at least one agent ID');
  return peers;
}

/**
 * `--lane`: auto, native or dgram; without it, the lane `DTMESH_LANE` names
 * ({@link envLane}), else undefined (the command's own default, ENGINE.md "Lanes"). A
 * `DTMESH_LANE` that names no lane is the same usage error as such a `--lane`, in the
 * engine's words, not a silent fall back to the default (empty: unset).
 */
export function laneFlag(command: string, x: string | boolean | undefined): EngineOptions['lane'] {
  if (x === undefined) {
    try {
      return envLane(); // the engine reads it alike: refused here first, before anything runs
    } catch (e) {
      throw asUsage(command, e);
    }
  }
  if (x === 'auto' || x === 'native' || x === 'dgram') return x;
  throw usage(command, `--lane must be auto, native or dgram`);
}

/** The socket flags every engine command shares: `--lane`, `--ttl`, `--dscp` (flag values as parsed). */
export function socketFlags(command: string, v: Record<string, string | boolean | undefined>, defaultLane?: EngineOptions['lane']): Pick<EngineOptions, 'lane' | 'ttl' | 'dscp'> {
  return { lane: laneFlag(command, v.lane) ?? defaultLane, ttl: intFlag(command, v, 'ttl', 1, 255), dscp: intFlag(command, v, 'dscp', 0, 63) };
}

/** Run `dtmesh serve`; resolves with the exit code once the engine has shut down. */
export async function serveCommand(argv: string[]): Promise<number> {
  const cmd = 'serve';
  const v = parseFlags(cmd, argv, {
    'state-dir': { type: 'string' },
    tenant: { type: 'string' },
    agent: { type: 'string' },
    peers: { type: 'string' },
    listen: { type: 'string' },
    workers: { type: 'string' },
    sockets: { type: 'string' },
    batch: { type: 'string' },
    'replay-window': { type: 'string' },
    'max-datagram': { type: 'string' },
    'clock-window-ms': { type: 'string' },
    'stats-json': { type: 'string' },
    'recv-buffer': { type: 'string' },
    metrics: { type: 'string' },
    lane: { type: 'string' },
    ttl: { type: 'string' },
    dscp: { type: 'string' },
    gso: { type: 'boolean' },
  });
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const opts: EngineOptions = {
    stateDir: required(cmd, v, 'state-dir'),
    tenant: required(cmd, v, 'tenant'),
    agent: required(cmd, v, 'agent'),
    peers: parsePeers(cmd, required(cmd, v, 'peers')),
    listen: required(cmd, v, 'listen'),
    workers: intFlag(cmd, v, 'workers', 1, 64),
    sockets: intFlag(cmd, v, 'sockets', 1, 64),
    batchSize: intFlag(cmd, v, 'batch', 1, 4096),
    replayWindow: intFlag(cmd, v, 'replay-window', 0, 8192) ?? CLI_REPLAY_WINDOW,
    maxDatagram: intFlag(cmd, v, 'max-datagram', 50, 65507),
    clockWindowMs: intFlag(cmd, v, 'clock-window-ms', 1, 3_600_000),
    recvBufferBytes: intFlag(cmd, v, 'recv-buffer', 4096, 1 << 30),
    ...socketFlags(cmd, v),
    gso: v.gso === true ? true : undefined,
  };
  const statsPath = typeof v['stats-json'] === 'string' ? v['stats-json'] : null;
  if (statsPath !== null) checkWritable('--stats-json', statsPath); // now, not after the run
  let metricsAt: { host: string; port: number } | null = null;
  try {
    if (typeof v.metrics === 'string') metricsAt = parseHostPort(v.metrics, '--metrics');
  } catch (e) {
    throw asUsage(cmd, e);
  }
  let engine: Engine;
  try {
    engine = await Engine.create(opts);
  } catch (e) {
    throw asUsage(cmd, e);
  }
  engine.on('warning', (w: string) => process.stderr.write(`dtmesh serve: ${w}\n`));
  // signals are handled from the moment the engine exists: a stop always drains, and a
  // second signal during the drain (a process group signalled twice) does not cut it short
  const signals = onStopSignals(() => engine.close(), (s) => process.stderr.write(`dtmesh serve: ${s}\n`));
  const stopped = signals.stopped;
  // the metrics address is bound before the start line: one that is taken fails in one
  // line with nothing announced, and the engine (socket, workers, lock) is closed first
  let metrics: http.Server | null = null;
  if (metricsAt !== null) {
    try {
      metrics = await serveMetrics(engineRegistry(engine), metricsAt.host, metricsAt.port);
    } catch (e) {
      await engine.close();
      signals.done();
      throw e;
    }
  }
  const a = engine.address;
  process.stdout.write(
    `dtmesh serve: agent ${engine.agent} of tenant ${engine.tenant} listening on ${formatHostPort(a.address, a.port)} ` +
      `with ${engine.workers} workers, ${engine.sockets} socket${engine.sockets === 1 ? '' : 's'}, ${engine.peers.length} peers, ${engine.lane} lane${engine.gso ? ', UDP GSO' : ''}, ` +
      `${opts.replayWindow === 0 ? 'strict replay check' : `replay window ${opts.replayWindow}`}\n`,
  );
  if (metrics !== null) {
    const ma = metrics.address() as { address: string; port: number };
    process.stdout.write(`dtmesh serve: metrics at http://${formatHostPort(ma.address, ma.port)}/metrics\n`);
  }
  if (engine.laneNote !== null) process.stderr.write(`dtmesh serve: ${engine.laneNote}\n`);
  if (engine.socketsNote !== null) process.stderr.write(`dtmesh serve: ${engine.socketsNote}\n`);
  if (engine.recvBufferNote !== null) process.stderr.write(`dtmesh serve: ${engine.recvBufferNote}\n`);
  if (opts.gso === true && !engine.gso) process.stderr.write(`dtmesh serve: --gso: this kernel has no UDP GSO (UDP_SEGMENT, Linux >= 4.18): REPLYs leave one per message\n`);
  const progress = setInterval(() => process.stdout.write(`dtmesh serve: ${summaryLine(engine.stats())}\n`), 10_000);
  progress.unref();
  const stats = await stopped;
  clearInterval(progress);
  metrics?.close();
  if (statsPath !== null) {
    try {
      writeAtomic('--stats-json', statsPath, JSON.stringify(statsDocument(stats), null, 2) + '\n');
    } catch (e) {
      process.stdout.write(`dtmesh serve: ${summaryLine(stats)}\n`);
      signals.done();
      throw e;
    }
  }
  process.stdout.write(`dtmesh serve: stopped. ${summaryLine(stats)}\n`);
  if (statsPath !== null) process.stdout.write(`dtmesh serve: final stats written to ${statsPath}\n`);
  signals.done();
  return 0;
}
