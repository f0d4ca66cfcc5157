/**
 * `dtmesh agent`: serve and, on the same engine, keep measuring every peer of the roster
 * (src/probe/agent.ts). A thin layer: flags, the roster file, the control plane's
 * heartbeat file (watched, and re-read on SIGHUP), metrics, the NDJSON stream of per-peer
 * intervals, and the HTML report written at the end.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type * as http from 'node:http';
import { DtmeshError } from '../errors.js';
import { parseHostPort } from '../engine.js';
import { serveMetrics } from '../observe/metrics.js';
import { renderReport } from '../observe/report.js';
import { assertValidId } from '../protocol/ids.js';
import { MeshAgent } from '../probe/agent.js';
import { dtmeshVersion, hostInfo, SCHEMA_VERSION } from '../probe/context.js';
import type { MeshInterval, PeerAddress } from '../probe/mesh.js';
import { checkWritable, distinctOutputs, LineSink, readInputFile, writeAtomic } from './output.js';
import { onStopSignals } from './signals.js';
import { asUsage, CLI_REPLAY_WINDOW, intFlag, numFlag, parseFlags, required, usage } from './args.js';
import { formatHostPort, MEASURE_DEFAULT_LANE } from '../options.js';
import { DEFAULT_MAX_DATAGRAM } from '../protocol/wire.js';
import { socketFlags, summaryLine } from './serve.js';

const HELP = `Usage: dtmesh agent --state-dir DIR --tenant T --agent A --listen HOST:PORT
                    (--peers B[@HOST:PORT],C[@HOST:PORT],... | --peers-file F)
                    [--burst N] [--rate PPS] [--every S] [--size BYTES] [--grace-ms MS]
                    [--heartbeat FILE] [--metrics HOST:PORT] [--json-stream PATH|-]
                    [--report FILE.html] [--duration S] [--workers N] [--replay-window W]
                    [--lane auto|native|dgram] [--ttl N] [--dscp N]

Run agent A of the mesh: answer every peer's probes and, on the same socket and nonce
counter, probe every peer whose address is known — a burst of N probes at PPS every S
seconds per peer, the peers' start times spread over the period — keeping per-peer
figures (loss, late, duplicates, reordering, RTT percentiles). Runs until SIGTERM or
SIGINT (or --duration), then drains, writes the report and prints each peer's figures.

  --peers LIST         roster: agent IDs, each optionally @HOST:PORT (where to probe it)
  --peers-file F       roster file: one 'agent' or 'agent@host:port' per line (# comments,
                       at a line's start or after a space); re-read on SIGHUP
  --burst N            probes per burst (default 10)
  --rate PPS           pace within a burst (default 100)
  --every S            seconds between one peer's bursts (default 1)
  --size BYTES         probe size, 50-65507 (default 84; above 2048 the agent accepts
                       datagrams that long; its peers must too: serve --max-datagram,
                       or an agent with the same --size)
  --grace-ms MS        a probe with no reply by then is lost (default 1000)
  --heartbeat FILE     the control plane's heartbeat response ({"tenant_id",
                       "mesh_root_key", "peers"?}): applied when the file changes and on
                       SIGHUP — the root rotates with grace, the roster changes live
  --metrics HOST:PORT  Prometheus metrics at http://HOST:PORT/metrics
  --json-stream PATH   one JSON object per line: start, each peer's interval (a burst
                       once its deadline passed), end; '-' for stdout
  --report FILE.html   a self-contained HTML page (matrix, RTT over time, percentiles)
  --duration S         stop after S seconds
  --workers N          verification workers (default 1)
  --replay-window W    replay window (0 = strict; default ${CLI_REPLAY_WINDOW}: reordering is not loss)
  --lane L             socket lane: native (kernel receive stamps), dgram or auto (native
                       where built, else dgram with one line). Default: $DTMESH_LANE, else auto
  --ttl N              IP TTL / hop limit of every packet sent, 1-255
  --dscp N             DSCP of every packet sent, 0-63 (native lane only)
  --help               this text
`;

/**
 * Roster entries `agent` or `agent@host:port`, each optionally followed by a `#` comment
 * after whitespace (a line that starts with `#` is all comment); a TypeError/RangeError
 * saying which entry is wrong, without the command's name ({@link parseRoster} adds it).
 */
function rosterEntries(entries: string[], what: string): { peers: string[]; addresses: PeerAddress[] } {
  const peers: string[] = [];
  const addresses: PeerAddress[] = [];
  for (const raw of entries) {
    const e = raw.replace(/(^|\s)#.*$/, '').trim();
    if (e === '') continue;
    const at = e.lastIndexOf('@');
    const agent = at < 0 ? e : e.slice(0, at);
    assertValidId(agent, `${what} entry`);
    if (at >= 0) {
      const { host, port } = parseHostPort(e.slice(at + 1), `${what} entry '${e}'`);
      if (port === 0) throw new RangeError(`${what} entry '${e}': port must be from 1 to 65535`);
      addresses.push({ agent, host, port });
    }
    peers.push(agent);
  }
  return { peers, addresses };
}

/** Parse roster entries `agent` or `agent@host:port` (`# comments` allowed); a usage error (exit 2) for a bad one. */
export function parseRoster(command: string, entries: string[], what: string): { peers: string[]; addresses: PeerAddress[] } {
  try {
    return rosterEntries(entries, what);
  } catch (err) {
    throw usage(command, (err as Error).message);
  }
}

/** The roster file's lines; a one-line {@link DtmeshError} naming the file when it cannot be read. */
function rosterLines(file: string): string[] {
  try {
    return readInputFile(file).text.split('\n');
  } catch (e) {
    throw new DtmeshError(`cannot read roster file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Run `dtmesh agent`. */
export async function agentCommand(argv: string[]): Promise<number> {
  const cmd = 'agent';
  const v = parseFlags(cmd, argv, {
    'state-dir': { type: 'string' },
    tenant: { type: 'string' },
    agent: { type: 'string' },
    peers: { type: 'string' },
    'peers-file': { type: 'string' },
    listen: { type: 'string' },
    burst: { type: 'string' },
    rate: { type: 'string' },
    every: { type: 'string' },
    size: { type: 'string' },
    'grace-ms': { type: 'string' },
    heartbeat: { type: 'string' },
    metrics: { type: 'string' },
    'json-stream': { type: 'string' },
    report: { type: 'string' },
    duration: { type: 'string' },
    workers: { type: 'string' },
    'replay-window': { type: 'string' },
    lane: { type: 'string' },
    ttl: { type: 'string' },
    dscp: { type: 'string' },
  });
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if ((typeof v.peers === 'string') === (typeof v['peers-file'] === 'string')) throw usage(cmd, 'give exactly one of --peers and --peers-file');
  const rosterFile = typeof v['peers-file'] === 'string' ? v['peers-file'] : null;
  const roster = parseRoster(cmd, rosterFile !== null ? rosterLines(rosterFile) : (v.peers as string).split(','), rosterFile !== null ? '--peers-file' : '--peers');
  const schedule = {
    burst: intFlag(cmd, v, 'burst', 1, 100_000) ?? 10,
    rate: numFlag(cmd, v, 'rate', 1, 1_000_000) ?? 100,
    everyS: numFlag(cmd, v, 'every', 0.01, 86_400) ?? 1,
    size: intFlag(cmd, v, 'size', 50, 65507) ?? 84,
    graceMs: intFlag(cmd, v, 'grace-ms', 1, 60_000) ?? 1000,
  };
  const durationS = numFlag(cmd, v, 'duration', 0.1, 1e9);
  let metricsAt: { host: string; port: number } | null = null;
  try {
    if (typeof v.metrics === 'string') metricsAt = parseHostPort(v.metrics, '--metrics');
  } catch (e) {
    throw asUsage(cmd, e);
  }
  const streamPath = typeof v['json-stream'] === 'string' ? v['json-stream'] : null;
  const reportPath = typeof v.report === 'string' ? v.report : null;
  distinctOutputs(cmd, [['--report', reportPath], ['--json-stream', streamPath]]);
  if (reportPath !== null) checkWritable('--report', reportPath); // now, not after the run
  const heartbeatFile = typeof v.heartbeat === 'string' ? v.heartbeat : null;
  const log = (s: string): boolean => (streamPath === '-' ? process.stderr : process.stdout).write(`dtmesh agent: ${s}\n`);
  if (streamPath !== null && streamPath !== '-') checkWritable('--json-stream', streamPath); // now; opened once the agent's lock is held
  let stream: LineSink | null = null;
  const emit = (o: object): void => stream?.write(o);

  const replayWindow = intFlag(cmd, v, 'replay-window', 0, 8192) ?? CLI_REPLAY_WINDOW;
  let agent: MeshAgent;
  try {
    agent = await MeshAgent.create({
      stateDir: required(cmd, v, 'state-dir'),
      tenant: required(cmd, v, 'tenant'),
      agent: required(cmd, v, 'agent'),
      peers: roster.peers,
      listen: required(cmd, v, 'listen'),
      workers: intFlag(cmd, v, 'workers', 1, 64) ?? 1,
      replayWindow,
      maxDatagram: Math.max(DEFAULT_MAX_DATAGRAM, schedule.size), // REPLYs are as long as the PROBEs (probe does the same)
      ...socketFlags(cmd, v, MEASURE_DEFAULT_LANE),
      schedule,
      addresses: roster.addresses,
    });
  } catch (e) {
    throw asUsage(cmd, e);
  }
  // the metrics address is bound before the stream is opened (emptied) and the start line
  // says we run: one that is taken fails in one line, the agent (socket, lock) closed first
  let metrics: http.Server | null = null;
  if (metricsAt !== null) {
    try {
      metrics = await serveMetrics(agent.registry(), metricsAt.host, metricsAt.port);
    } catch (e) {
      await agent.close();
      throw e;
    }
  }
  try {
    if (streamPath !== null) stream = LineSink.open('--json-stream', streamPath, log);
  } catch (e) {
    metrics?.close();
    await agent.close();
    throw e;
  }
  const engine = agent.engine;
  engine.on('warning', (w: string) => log(w));
  if (engine.laneNote !== null) log(engine.laneNote);
  // what every JSON document carries (MEASUREMENT.md §3): each line of the stream, as probe's
  const context = {
    schema_version: SCHEMA_VERSION,
    version: dtmeshVersion(),
    start_time: new Date().toISOString(),
    lane: engine.lane,
    timestamps: engine.timestamps,
    host: hostInfo(),
    config: { workers: engine.workers, replay_window: replayWindow, duration_s: durationS ?? null, heartbeat: heartbeatFile, peers_file: rosterFile },
  };
  agent.prober.on('interval', (i: MeshInterval) => {
    const { type, ...figures } = i;
    emit({ type, ...context, ...figures });
  });
  // SIGHUP is ours before the start line says we run (its default action ends the process);
  // `reload` is declared below, before this function next awaits: no signal runs before it
  const onHup = (): void => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  const a = engine.address;
  log(
    `agent ${engine.agent} of tenant ${engine.tenant} on ${formatHostPort(a.address, a.port)}: ` +
      `${engine.peers.length} peers, probing ${agent.prober.targets.length} (${schedule.burst} probes at ${schedule.rate} pps every ${schedule.everyS} s each), ${engine.lane} lane`,
  );
  // an address of the other family than --listen: every probe to it would be refused, seen
  // only as send errors — said once per peer and address, at start and whenever the roster,
  // a heartbeat or a punch hint gives one
  const warned = new Set<string>();
  const checkFamilies = (): void => {
    for (const t of agent.prober.targets) {
      const fam = net.isIP(t.host);
      const key = `${t.agent}@${t.host}`;
      if (fam === 0 || (fam === 6) === (a.family === 'IPv6') || warned.has(key)) continue;
      warned.add(key);
      log(`peer ${t.agent} at ${t.host}: an IPv${fam} address, but --listen is IPv${fam === 6 ? 4 : 6}: every probe to it will be refused (send errors); listen on the other family, or give ${t.agent} an IPv${fam === 6 ? 4 : 6} address`);
    }
  };
  checkFamilies();
  engine.on('punch_hint', checkFamilies);
  emit({ type: 'start', ...context, agent: engine.agent, tenant: engine.tenant, listen: formatHostPort(a.address, a.port), start: context.start_time, schedule: { burst: schedule.burst, rate_pps: schedule.rate, every_s: schedule.everyS, size: schedule.size, grace_ms: schedule.graceMs }, peers: agent.prober.targets });

  // the control plane: a changed heartbeat file or SIGHUP applies it (and re-reads the roster file)
  let lastHeartbeat = '';
  let modeWarned = false; // said once: a heartbeat file others can read
  const reload = (why: string): void => {
    if (rosterFile !== null) {
      try {
        // the bare reason: this line has its own prefix, and no usage hint mid-run
        const r = rosterEntries(rosterLines(rosterFile), '--peers-file');
        for (const addr of r.addresses) agent.setAddress(addr);
        if (heartbeatFile === null) agent.setPeers(r.peers);
        checkFamilies();
      } catch (e) {
        log(`roster file not applied (${why}): ${(e as Error).message}`);
      }
    }
    if (heartbeatFile === null) return;
    let text: string;
    try {
      const f = readInputFile(heartbeatFile);
      text = f.text;
      if ((f.mode & 0o077) !== 0 && !modeWarned) {
        modeWarned = true;
        log(`${heartbeatFile} can be read by other users (mode ${f.mode.toString(8).padStart(4, '0')}) and holds the root key: chmod 600 it (PROTOCOL.md §1 keeps the key at rest 0600)`);
      }
    } catch (e) {
      log(`heartbeat not applied (${why}): cannot read ${heartbeatFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    if (text === lastHeartbeat && why === 'file changed') return;
    lastHeartbeat = text;
    let response: unknown;
    try {
      response = JSON.parse(text);
    } catch {
      // never JSON.parse's own message: it quotes the text around the fault, which is the root key
      log(`heartbeat not applied (${why}): ${heartbeatFile} is not valid JSON (expected a heartbeat response object)`);
      return;
    }
    try {
      const { rotated } = agent.applyHeartbeat(response);
      checkFamilies();
      log(`heartbeat applied (${why}): ${rotated ? `root rotated, the previous one verifies for ${engine.rotationGraceMs / 1000} s more` : 'same root'}; roster ${engine.peers.length} peers, probing ${agent.prober.targets.length}`);
    } catch (e) {
      log(`heartbeat not applied (${why}): ${(e as Error).message}`);
    }
  };
  if (heartbeatFile !== null) {
    reload('start');
    fs.watchFile(heartbeatFile, { interval: 250 }, () => reload('file changed'));
  }

  if (metrics !== null) {
    const ma = metrics.address() as { address: string; port: number };
    log(`metrics at http://${formatHostPort(ma.address, ma.port)}/metrics`);
  }
  // progress on a long run: every 10 s, the probing so far and the responder's books
  const progress = setInterval(() => {
    const f = agent.prober.figures();
    const sum = (k: 'sent' | 'received' | 'lost' | 'late'): number => f.reduce((x, p) => x + p[k], 0);
    log(`${f.length} peers probed: sent ${sum('sent')}, received ${sum('received')}, lost ${sum('lost')}, late ${sum('late')}; ${summaryLine(engine.stats())}`);
  }, 10_000);
  progress.unref();
  // the first signal (or --duration) stops; later signals during the drain are said and ignored
  const signals = onStopSignals(async (sig) => sig, log);
  const timer = durationS !== undefined ? new Promise<null>((r) => setTimeout(() => r(null), durationS * 1000).unref()) : null;
  // the end line's `interrupted`, as probe's report: the signal that stopped the run, null when --duration ran out
  const interrupted = await (timer !== null ? Promise.race([signals.stopped, timer]) : signals.stopped);
  signals.stopping();
  clearInterval(progress);
  try {
    process.off('SIGHUP', onHup);
    if (heartbeatFile !== null) fs.unwatchFile(heartbeatFile);
    await agent.prober.stop(); // probes in flight get their reply or their deadline first
    const pairs = agent.reportPairs();
    const stats = await agent.close();
    metrics?.close();
    for (const p of pairs) {
      const f = p.figures;
      log(`${engine.agent} → ${f.peer}: sent ${f.sent}, received ${f.received}, lost ${f.lost}, late ${f.late}, duplicate ${f.duplicate}, reordered ${f.reordered}; ${f.received === 0 ? 'no replies' : `RTT µs p50 ${f.rtt_us.p50} p99 ${f.rtt_us.p99}`}`);
    }
    log(`stopped. ${summaryLine(stats)}`);
    emit({ type: 'end', ...context, agent: engine.agent, end: new Date().toISOString(), interrupted, peers: pairs.map((p) => p.figures), books: stats });
    stream?.close();
    if (reportPath !== null) {
      writeAtomic('--report', reportPath, renderReport({ title: `dtmesh agent ${engine.agent} (tenant ${engine.tenant})`, generated: new Date().toISOString(), agents: [engine.agent, ...pairs.map((p) => p.to)], pairs }));
      log(`report written to ${reportPath}`);
    }
  } finally {
    signals.done();
  }
  return 0;
}
