/**
 * `dtmesh probe` — authenticated probe runs against a responder: a thin layer over
 * {@link probe} and an {@link Engine} that verifies the replies (in replay-window mode,
 * so reordering on the path is counted as reordering, never as loss).
 *
 * Streams: the human summary and interval lines on stdout, progress on stderr; when
 * stdout carries JSON (`--json -`, `--json-stream -`) every human line goes to stderr.
 */
import { lookup } from 'node:dns/promises';
import * as fs from 'node:fs';
import { DtmeshError } from '../errors.js';
import { checkWritable, distinctOutputs, LineSink, writeAtomic } from './output.js';
import { onStopSignals } from './signals.js';
import { Engine } from '../engine.js';
import { dtmeshVersion } from '../probe/context.js';
import { GRACE_AUTO_RULE, type IntervalFigures, percentileDistribution, probe, type ProbeProgress, type ProbeReport, type ReportContext } from '../probe/prober.js';
import { assertValidId } from '../protocol/ids.js';
import { DROP_REASONS } from '../protocol/verdict.js';
import { formatHostPort, MEASURE_DEFAULT_LANE } from '../options.js';
import { asUsage, CLI_REPLAY_WINDOW, intFlag, numFlag, parseFlags, required, usage } from './args.js';
import { socketFlags } from './serve.js';

/**
 * The CLI's default warm-up, s (MEASUREMENT.md §2); its second half rehearses the
 * measured phase (src/probe/prober.ts). Measured (AMD EPYC, 2 cores, Node 20, native lane;
 * `taskset -c 0 dtmesh serve`, `taskset -c 1 dtmesh probe --rate 10000 --duration 3
 * --warmup W --json`, three runs each): the JIT's compile work on the prober's CPU stalls
 * its event loop in roughly the first second of sending, so with W = 0.4 the measured
 * phase began inside it: generator lateness p99 1681–1814 µs;
 * W = 1: 168–896 µs. The RTT p99 of the same runs (0.9–2.8 ms either way) moved with
 * the host, not with W. (Earlier, at 50 k pps, no warm-up gave lateness p99 42–54 ms.)
 */
export const PROBE_WARMUP_S = 1;

/** The prober's default replay window (MEASUREMENT.md §1 "Reordered": W ≥ 1024), as every command's. */
export const PROBE_REPLAY_WINDOW = CLI_REPLAY_WINDOW;
/**
 * The prober's engine batch: small, and below the engine's `inlineBelow` (64), so every
 * reply is verified on this thread in the loop turn that read it — no pool round trip
 * (≈ 40 µs wake-up each way) and no batch waiting to fill.
 */
export const PROBE_BATCH = 16;

const HELP = `Usage: dtmesh probe --state-dir DIR --tenant T --agent B --target A@HOST:PORT
                    [--count N | --duration S] [--rate PPS] [--size BYTES] [--warmup S]
                    [--interval S] [--json PATH|-] [--json-stream PATH|-] [--histogram FILE]
                    [--grace-ms MS] [--replay-window W] [--max-datagram N] [--batch N]
                    [--pacing yield|timer|spin] [--clock-synced] [--max-loss PCT] [--max-p99 MS]
                    [--listen HOST:PORT] [--workers N] [--lane auto|native|dgram]
                    [--ttl N] [--dscp N] [--quiet] [--version]

Send authenticated PROBEs from agent B to agent A at HOST:PORT, verify every REPLY
(a forged or replayed one is dropped and counted, never matched) and report loss,
late replies, duplicates, reordering, RTT (percentiles, mean, stddev), jitter, IPDV,
relative one-way delays, rates and the generator's own health (MEASUREMENT.md).
A probe with no reply by its deadline is lost; a reply after it is late, never received.

  --state-dir DIR      directory holding mesh-root-key (the tenant's root)
  --tenant T           tenant ID
  --agent B            this (probing) agent's ID
  --target A@HOST:PORT the responder's agent ID and address, e.g. edge-1@127.0.0.1:7000
  --count N            probes to measure (default 1000)
  --duration S         measure for S seconds instead of a count
  --rate PPS           probes per second, 0 = as fast as possible (default 1000)
  --size BYTES         whole datagram size, 50 up to 65507 (default 84)
  --warmup S           send for S seconds first, kept out of every figure: the JIT, GC and
                       socket buffers settle before the measured run, and its second half
                       rehearses the measured phase's code (default 1; 0 = none, every
                       probe measured)
  --interval S         a line of figures every S seconds of sending, and intervals[] in
                       the JSON (default 1 when stdout is a terminal, else none)
  --json PATH|-        write the report as JSON (- = stdout; human lines go to stderr)
  --json-stream PATH|- NDJSON: a start object, one per interval, an end object (the
                       report); flushed per line
  --histogram FILE     the RTT histogram as HdrHistogram percentile-distribution text (µs)
  --grace-ms MS        each probe's deadline, ms after its send, 0-60000 (default:
                       ${GRACE_AUTO_RULE})
  --replay-window W    replay window for the replies, 0 (strict) or a multiple of 64 up
                       to 8192 (default ${PROBE_REPLAY_WINDOW}: reordering is never loss)
  --max-datagram N     largest reply accepted, 50-65507 (default max(2048, --size))
  --batch N            the prober engine's batch, 1-4096 (default ${PROBE_BATCH}: replies verified at once)
  --pacing MODE        yield (default: sub-ms waits in short futex waits, replies read
                       between them; on a lane that stamps replies in JS (dgram) a reply
                       due within 200 µs, while replies come, is awaited round the event
                       loop, so it is stamped when it comes),
                       timer (1 ms ticks: bursts) or spin (a whole core)
  --clock-synced       also report absolute one-way delays (the clocks are synchronised)
  --max-loss PCT       exit 3 when loss exceeds PCT %
  --max-p99 MS         exit 3 when the RTT p99 exceeds MS milliseconds, or no reply was
                       received (no RTT to judge)
  --listen HOST:PORT   local address for the prober's socket (default: loopback for a
                       loopback target, else 0.0.0.0, port 0)
  --workers N          verification workers for the replies (default 1)
  --lane L             socket lane: native (kernel receive stamps, send times at the send
                       call; "timestamps": "kernel" in the report), dgram (JS clock when
                       the event loop reads the reply: a busy loop adds to every RTT) or
                       auto (native where built, else dgram with one line). Default:
                       $DTMESH_LANE, else auto
  --ttl N              IP TTL / hop limit of every probe, 1-255
  --dscp N             DSCP of every probe, 0-63 (native lane only)
  --quiet              no header, progress, interval lines or summary (JSON outputs and
                       errors only)
  --version            print the dtmesh version
  --help               this text

Exit codes: 0 ok, 1 runtime error (no verified reply at all, not even a late one), 2 usage,
3 a threshold breached.
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
  const g = r.generator;
  const f = r.owd_us.relative.forward;
  const b = r.owd_us.relative.reverse;
  return [
    `sent ${r.sent}, received ${r.received}, lost ${r.lost} (${pct} %), late ${r.late}, duplicates ${r.duplicates}, reordered ${r.reordered}${r.unmatched ? `, unmatched ${r.unmatched}` : ''}`,
    `deadline ${r.grace_ms} ms after each send (${r.grace_rule})${r.send_errors ? `; ${r.send_errors} sends failed (not counted as sent)` : ''}${r.warmup.probes ? `; warm-up ${r.warmup.duration_s} s (${r.warmup.probes} probes, in no figure)` : ''}`,
    // no reply: the JSON's RTT fields hold 0 as placeholders; the human form says so instead
    r.received === 0
      ? `rtt: no replies; timestamps ${r.timestamps}, lane ${r.lane}`
      : `rtt µs: min ${r.rtt_us.min}  p50 ${r.rtt_us.p50}  p90 ${r.rtt_us.p90}  p99 ${r.rtt_us.p99}  p999 ${r.rtt_us.p999}  max ${r.rtt_us.max}  mean ${r.rtt_us.mean}  stddev ${r.rtt_us.stddev}; jitter ${r.jitter_us} µs; ipdv |p50| ${r.ipdv_us.abs_p50} |p99| ${r.ipdv_us.abs_p99} µs\n` +
        `one-way µs (relative to own minimum): forward p50 ${f.p50} p99 ${f.p99}, reverse p50 ${b.p50} p99 ${b.p99}; timestamps ${r.timestamps}, lane ${r.lane}` +
        (r.owd_us.absolute !== null
          ? `\none-way µs (absolute, --clock-synced): forward p50 ${r.owd_us.absolute.forward.p50} p99 ${r.owd_us.absolute.forward.p99}, reverse p50 ${r.owd_us.absolute.reverse.p50} p99 ${r.owd_us.absolute.reverse.p99}`
          : ''),
    `rate: offered ${r.offered_pps} pps, achieved ${r.achieved_pps} pps, ${(r.throughput_bps / 1e6).toFixed(2)} Mbit/s over ${r.duration_s} s`,
    `generator (${g.pacing}): lateness p50 ${g.lateness_us.p50} p99 ${g.lateness_us.p99} max ${g.lateness_us.max} µs, largest burst ${g.max_burst}, event-loop delay p99 ${g.event_loop_delay_us.p99} µs, GC ${g.gc.count} pauses (max ${g.gc.max_ms} ms), CPU ${g.cpu_cores.toFixed(2)} cores${g.host_steal_cores !== null && g.host_steal_cores >= 0.01 ? ` (host: hypervisor steal ${g.host_steal_cores.toFixed(2)} cores)` : ''}${g.generator_limited ? ' — GENERATOR LIMITED: these figures describe the prober, not only the path' : ''}`,
    `reply verification: ${drops.length ? `dropped ${drops.join(', ')}` : 'nothing dropped'}${r.unmatched ? `, ${r.unmatched} unmatched replies` : ''}`,
    ...(r.kernel_drops ? [`this host's kernel dropped ${r.kernel_drops} datagrams at the prober's socket (receive buffer full: the prober did not read in time); the measured probes whose replies these were are in lost — the prober's loss, not the path's`] : []),
    ...(r.thresholds.breached.length ? [`thresholds breached: ${r.thresholds.breached.join(', ')}`] : []),
  ].join('\n');
}

/** The `--json` document (src/probe/report.schema.json): the report itself. */
export function reportJson(r: ProbeReport): object {
  return r;
}

/** One interval line. */
export function formatInterval(f: IntervalFigures): string {
  const end = (f.start_s + f.duration_s).toFixed(2);
  return `[${f.start_s.toFixed(2)}-${end} s] sent ${f.sent}, received ${f.received}, lost ${f.lost}, late ${f.late}, ${f.pps} pps, ${f.received === 0 ? 'no replies' : `rtt p50 ${f.rtt_us.p50} p99 ${f.rtt_us.p99} µs, jitter ${f.jitter_us} µs`}`;
}

function progressLine(p: ProbeProgress, tty: boolean): string {
  // Loss among probes whose fate is known: in-flight probes are never loss (MEASUREMENT.md §1).
  const decided = p.received + p.lost;
  const loss = decided > 0 ? ((100 * p.lost) / decided).toFixed(2) : '0.00';
  const head = p.warmup ? 'warming up' : `${Math.round(p.ratePps)} pps, sent ${p.sent}, received ${p.received}, lost ${p.lost} (${loss} %), late ${p.late}, in flight ${p.inFlight}`;
  if (!tty || p.target === Infinity) return head;
  const width = 24;
  const done = Math.min(width, Math.round((width * p.sent) / p.target));
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${head}`;
}

/** Run `dtmesh probe`: flags → {@link probe} → the report (MEASUREMENT.md §1–3). */
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
    warmup: { type: 'string' },
    interval: { type: 'string' },
    json: { type: 'string' },
    'json-stream': { type: 'string' },
    histogram: { type: 'string' },
    listen: { type: 'string' },
    'grace-ms': { type: 'string' },
    'replay-window': { type: 'string' },
    'max-datagram': { type: 'string' },
    batch: { type: 'string' },
    pacing: { type: 'string' },
    'clock-synced': { type: 'boolean' },
    'max-loss': { type: 'string' },
    'max-p99': { type: 'string' },
    workers: { type: 'string' },
    lane: { type: 'string' },
    ttl: { type: 'string' },
    dscp: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    version: { type: 'boolean', short: 'V' },
  });
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (v.version) {
    process.stdout.write(`dtmesh ${dtmeshVersion()}\n`);
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
  const count = intFlag(cmd, v, 'count', 1, 1e12);
  const durationS = numFlag(cmd, v, 'duration', 0.001, 31_536_000);
  const rate = numFlag(cmd, v, 'rate', 0, 10_000_000);
  const size = intFlag(cmd, v, 'size', 50, 65507);
  const warmupS = numFlag(cmd, v, 'warmup', 0, 3600) ?? PROBE_WARMUP_S;
  const graceMs = intFlag(cmd, v, 'grace-ms', 0, 60_000);
  const replayWindow = intFlag(cmd, v, 'replay-window', 0, 8192) ?? PROBE_REPLAY_WINDOW;
  const maxDatagram = intFlag(cmd, v, 'max-datagram', 50, 65507) ?? Math.max(2048, size ?? 84);
  if (size !== undefined && size > maxDatagram) throw usage(cmd, `--size ${size} is above --max-datagram ${maxDatagram} (replies are as long as probes)`);
  const batchSize = intFlag(cmd, v, 'batch', 1, 4096) ?? PROBE_BATCH;
  const workers = intFlag(cmd, v, 'workers', 1, 64) ?? 1;
  const sockets = socketFlags(cmd, v, MEASURE_DEFAULT_LANE);
  const maxLossPct = numFlag(cmd, v, 'max-loss', 0, 100);
  const maxP99Ms = numFlag(cmd, v, 'max-p99', 0, 60_000);
  const pacing = v.pacing ?? 'yield';
  if (pacing !== 'yield' && pacing !== 'timer' && pacing !== 'spin') throw usage(cmd, '--pacing must be yield, timer or spin');
  const jsonPath = typeof v.json === 'string' ? v.json : null;
  const streamPath = typeof v['json-stream'] === 'string' ? v['json-stream'] : null;
  const histPath = typeof v.histogram === 'string' ? v.histogram : null;
  if (jsonPath === '-' && streamPath === '-') throw usage(cmd, 'give --json - or --json-stream -, not both (one stdout)');
  distinctOutputs(cmd, [['--json', jsonPath], ['--json-stream', streamPath], ['--histogram', histPath]]);
  const quiet = v.quiet === true;
  const jsonOnStdout = jsonPath === '-' || streamPath === '-';
  const human = jsonOnStdout ? process.stderr : process.stdout;
  const say = (s: string): void => {
    if (!quiet) human.write(s);
  };
  let intervalS = numFlag(cmd, v, 'interval', 0.01, 86_400);
  if (intervalS === undefined && (streamPath !== null || (human.isTTY === true && !quiet))) intervalS = 1;

  // output files fail now, in one line, not after the run
  if (jsonPath !== null && jsonPath !== '-') checkWritable('--json', jsonPath);
  if (histPath !== null) checkWritable('--histogram', histPath);
  if (streamPath !== null && streamPath !== '-') checkWritable('--json-stream', streamPath);

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
    engine = await Engine.create({ stateDir, tenant, agent, peers: [target.agent], listen, workers, replayWindow, maxDatagram, batchSize, ...sockets });
  } catch (e) {
    throw asUsage(cmd, e);
  }
  // opened now that the engine holds the agent's lock: a second probe refused as "already
  // running" never empties the first one's stream
  let stream: LineSink | null = null;
  try {
    if (streamPath !== null) stream = LineSink.open('--json-stream', streamPath, (l) => process.stderr.write(`dtmesh probe: ${l}\n`));
  } catch (e) {
    await engine.close();
    throw e;
  }
  // Ctrl-C / SIGTERM: stop sending, wait out the probes in flight, then the report and its
  // files as at a normal end (a second signal meanwhile is answered, not obeyed)
  const aborter = new AbortController();
  let stoppedBy: NodeJS.Signals | null = null;
  const signals = onStopSignals(
    async (sig) => {
      stoppedBy = sig;
      aborter.abort(sig); // the report's `interrupted` names it
    },
    (l) => process.stderr.write(`dtmesh probe: ${l}\n`),
  );
  const progressTty = process.stderr.isTTY === true;
  let barShown = false;
  let report: ProbeReport;
  try {
    if (engine.laneNote !== null) say(`dtmesh probe: ${engine.laneNote}\n`);
    say(`dtmesh probe: ${agent} → ${target.agent} at ${formatHostPort(address, target.port)}, ${size ?? 84}-byte probes, ${count ?? (durationS !== undefined ? `${durationS} s` : 1000)}${count !== undefined || durationS === undefined ? ' probes' : ''} at ${rate === 0 ? 'max rate' : `${rate ?? 1000} pps`}${warmupS ? ` after a ${warmupS} s warm-up` : ''}, ${engine.lane} lane (${engine.timestamps} timestamps)\n`);
    let ctx: ReportContext | null = null;
    report = await probe(engine, {
      agent: target.agent,
      host: address,
      port: target.port,
      count,
      durationS,
      rate,
      size,
      graceMs,
      warmupS,
      intervalS,
      pacing,
      clockSynced: v['clock-synced'] === true,
      maxLossPct,
      maxP99Ms,
      // null: the system's default (no setsockopt)
      config: { replay_window: replayWindow, listen, ttl: sockets.ttl ?? null, dscp: sockets.dscp ?? null },
      progressMs: progressTty ? 200 : 1000,
      signal: aborter.signal,
      onStart: (c) => {
        ctx = c;
        stream?.write({ ...c, type: 'start' });
      },
      onInterval: (f) => {
        stream?.write({ ...ctx!, type: 'interval', ...f });
        if (quiet) return;
        if (barShown) process.stderr.write('\r\x1b[K');
        human.write(formatInterval(f) + '\n');
      },
      onProgress: quiet
        ? undefined
        : (p) => {
            if (progressTty) {
              barShown = true;
              process.stderr.write(`\r${progressLine(p, true)}\x1b[K`);
            } else process.stderr.write(`dtmesh probe: ${progressLine(p, false)}\n`);
          },
    });
  } catch (e) {
    stream?.close();
    await engine.close();
    signals.done();
    throw asUsage(cmd, e);
  }
  await engine.close();
  if (barShown) process.stderr.write('\r\x1b[K');
  say(formatReport(report) + '\n');
  if (stream !== null) {
    stream.write(report);
    stream.close();
  }
  let reportLost: string | null = null;
  if (jsonPath === '-') {
    // the report is this run's result: a stdout that closed before it was written whole (EPIPE) is said, and the exit is not 0
    reportLost = await new Promise<string | null>((resolve) => process.stdout.write(JSON.stringify(reportJson(report), null, 2) + '\n', (e) => resolve(e ? ((e as NodeJS.ErrnoException).code ?? e.message) : null)));
    if (reportLost !== null) process.stderr.write(`dtmesh probe: --json -: stdout closed (${reportLost}): the report was not written whole\n`);
  } else if (jsonPath !== null) writeAtomic('--json', jsonPath, JSON.stringify(reportJson(report), null, 2) + '\n');
  if (histPath !== null) writeAtomic('--histogram', histPath, percentileDistribution(report));
  signals.done();
  if (stoppedBy !== null) {
    process.stderr.write(
      report.interrupted !== null
        ? `dtmesh probe: ${stoppedBy}: stopped sending early; the report covers the ${report.sent} probes sent, each waited out to its deadline\n`
        : `dtmesh probe: ${stoppedBy}: came after the last probe was sent; the report is the whole run ("interrupted": null)\n`,
    );
    return 128 + (stoppedBy === 'SIGINT' ? 2 : 15);
  }
  if (report.sent === 0 && report.send_errors > 0) {
    throw new DtmeshError(`every probe was refused (${report.send_errors} send errors) — by this host's kernel (no route to ${address}, a firewall, a broadcast address?) or by Node (an address of the other family than --listen?): nothing was sent`);
  }
  if (report.sent > 0 && report.received === 0 && report.late > 0) {
    // the responder answered, verified, only after every deadline: a measurement (100 % loss), not a runtime error
    process.stderr.write(`dtmesh probe: every verified REPLY (${report.late}) came after its probe's deadline of ${report.grace_ms} ms: all late, none received — the path is slower than the deadline (--grace-ms)\n`);
  } else if (report.sent > 0 && report.received === 0) {
    throw new DtmeshError(
      `no verified REPLY from ${target.agent} at ${formatHostPort(address, target.port)}: is 'dtmesh serve' running there with tenant ${tenant}, the same root key, ${agent} in its --peers, and a clock within its window (stale replies are dropped)${(size ?? 84) > 2048 ? `, and --max-datagram ≥ ${size}` : ''}?`,
    );
  }
  if (reportLost !== null) return 1;
  if (report.thresholds.breached.length > 0) {
    process.stderr.write(`dtmesh probe: threshold breached: ${report.thresholds.breached.map((b) => (b === 'max_loss_pct' ? `loss ${report.loss_pct} % > ${maxLossPct} %` : (report.received === 0 ? `rtt p99 unknown (no reply received), --max-p99 ${maxP99Ms} ms` : `rtt p99 ${report.rtt_us.p99 / 1000} ms > ${maxP99Ms} ms`))).join(', ')}\n`);
    return 3;
  }
  return 0;
}
