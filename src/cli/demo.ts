/**
 * `dtmesh demo` (`npm start`): a whole dev mesh on loopback with no setup — a fresh root
 * key in a temp state dir, five agents in this process (five engines, one socket each)
 * measuring each other continuously with a live matrix, then a handful of hostile probes,
 * each of which must be dropped by the right check, every agent's books, and a
 * self-contained HTML report of the mesh.
 */
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MeshAgent } from '../probe/agent.js';
import { renderReport } from '../observe/report.js';
import { initRootKey } from '../keys/keystore.js';
import { nowUs } from '../clock.js';
import { encodePacket } from '../protocol/codec.js';
import { senderIdOf } from '../protocol/ids.js';
import { derivePairKey } from '../protocol/keys.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../protocol/sha256.js';
import type { EngineStats } from '../observe/stats.js';
import { DROP_REASONS, type VerdictName } from '../protocol/verdict.js';
import { CLI_REPLAY_WINDOW, numFlag, parseFlags } from './args.js';
import { checkWritable, writeAtomic } from './output.js';
import { laneFlag } from './serve.js';

const HELP = `Usage: dtmesh demo [--duration S] [--rate PPS] [--report FILE.html]

Runs a dev mesh on 127.0.0.1 with nothing to set up: a fresh root key in a temporary
state directory and five agents (edge-a … edge-e), each serving and probing the other
four (bursts of 20 probes at --rate pps every second, start times spread), with the
mesh matrix (RTT p50 / loss per directed pair) refreshed every second. Then forged,
replayed, stale, cross-tenant, v0, unknown-sender and reflected probes are thrown at
edge-a, every agent's books are printed, and an HTML report of the mesh is written.

  --duration S        how long the mesh runs, seconds (default 10)
  --rate PPS          pace within a burst (default 200)
  --report FILE.html  where to write the report (default: a file in the temp directory
                      that is kept)
  --help              this text
`;

const TENANT = 'demo-tenant';
const AGENTS = ['edge-a', 'edge-b', 'edge-c', 'edge-d', 'edge-e'];
const A = AGENTS[0]!;
const B = AGENTS[1]!;
const C = AGENTS[2]!;

/** Verdict of the one datagram that moved `after` away from `before`. */
function verdictBetween(before: EngineStats, after: EngineStats): VerdictName | 'none' {
  if (after.accepted > before.accepted) return 'accept';
  for (const r of DROP_REASONS) if (after.dropped[r] > before.dropped[r]) return r;
  return 'none';
}

/** The live matrix: RTT p50 and loss of each directed pair so far. */
function matrixLines(agents: MeshAgent[]): string[] {
  const names = agents.map((a) => a.engine.agent);
  const w = 13;
  const lines = [`   ${'from \\ to'.padEnd(8)} ${names.map((n) => n.padStart(w)).join('')}`];
  for (const a of agents) {
    const figs = new Map(a.prober.figures().map((f) => [f.peer, f]));
    const cells = names.map((to) => {
      if (to === a.engine.agent) return '—'.padStart(w);
      const f = figs.get(to);
      if (f === undefined || f.received + f.lost === 0) return '·'.padStart(w);
      const loss = (100 * f.lost) / (f.received + f.lost);
      return (f.received === 0 ? `no reply ${loss.toFixed(0)}%` : `${f.rtt_us.p50}µs ${loss.toFixed(0)}%`).padStart(w);
    });
    lines.push(`   ${a.engine.agent.padEnd(8)} ${cells.join('')}`);
  }
  return lines;
}

/** Run `dtmesh demo`. */
export async function demoCommand(argv: string[]): Promise<number> {
  const v = parseFlags('demo', argv, { duration: { type: 'string' }, rate: { type: 'string' }, report: { type: 'string' } });
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const durationS = numFlag('demo', v, 'duration', 1, 300) ?? 10;
  const rate = numFlag('demo', v, 'rate', 1, 100_000) ?? 200;
  laneFlag('demo', undefined); // its engines take their lane from DTMESH_LANE: one that names none is refused here
  // default: a directory of its own (mkdtemp, 0700), not a guessable name in the shared /tmp
  const reportPath = typeof v.report === 'string' ? v.report : path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-report-')), 'mesh-report.html');
  checkWritable('--report', reportPath); // now, not after the run
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dtmesh-demo-'));
  const agents: MeshAgent[] = [];
  const hostile = dgram.createSocket('udp4');
  // Ctrl-C: the dev root key goes with the demo, as the first line promises
  const onSignal = (sig: NodeJS.Signals): void => {
    fs.rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`dtmesh demo: ${sig}: stopped; its root key and state (${dir}) removed\n`);
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const root = initRootKey(dir, false);
    const out = (s: string): boolean => process.stdout.write(s + '\n');
    out(`dtmesh demo — tenant ${TENANT}, fresh root key in ${dir} (removed at the end)`);
    const schedule = { burst: 20, rate, everyS: 1, size: 84, graceMs: 1000 };
    for (const name of AGENTS) {
      agents.push(await MeshAgent.create({ stateDir: dir, tenant: TENANT, agent: name, peers: AGENTS, workers: 1, replayWindow: CLI_REPLAY_WINDOW, schedule, addresses: [] }));
    }
    for (const a of agents) for (const b of agents) if (a !== b) a.setAddress({ agent: b.engine.agent, host: '127.0.0.1', port: b.engine.address.port });
    out(`${agents.length} agents on 127.0.0.1 (${agents.map((a) => `${a.engine.agent}:${a.engine.address.port}`).join(', ')}), one engine each: every agent answers the others and probes them (bursts of ${schedule.burst} at ${rate} pps every ${schedule.everyS} s, start times spread)`);
    out(`\n1. the mesh, ${durationS} s: RTT p50 and loss of each directed pair so far`);
    // on a terminal the matrix is redrawn in place every second; in a log, every 5 s
    const tty = process.stdout.isTTY === true;
    for (let t = 1; t <= durationS; t++) {
      await new Promise((r) => setTimeout(r, 1000));
      const lines = [`   after ${t} s`, ...matrixLines(agents)];
      if (tty) {
        if (t > 1) process.stdout.write(`\x1b[${lines.length}A`);
        for (const l of lines) out(`${l}\x1b[K`);
      } else if (t === durationS || t % 5 === 0) for (const l of lines) out(l);
    }
    for (const a of agents) await a.prober.stop();
    const pairs = agents.flatMap((a) => a.reportPairs());
    let sent = 0;
    let lost = 0;
    let received = 0;
    for (const p of pairs) {
      sent += p.figures.sent;
      lost += p.figures.lost;
      received += p.figures.received;
    }
    out(`   ${pairs.length} directed pairs: sent ${sent}, received ${received}, lost ${lost}, in flight 0`);
    const responder = agents[0]!.engine;
    const port = responder.address.port;

    out(`\n2. hostile probes thrown at ${A} (each must be dropped by the check in the right column)`);
    await new Promise<void>((r) => hostile.bind(0, '127.0.0.1', () => r()));
    let answered = 0;
    hostile.on('message', () => answered++);
    const keyState = (rootKey: Uint8Array, tenant: string, agent: string): Int32Array => {
      const s = new Int32Array(HMAC_STATE_WORDS);
      hmacPrecompute(derivePairKey(rootKey, tenant, agent, A), s, 0);
      return s;
    };
    const cState = keyState(root, TENANT, C);
    const now = (): bigint => BigInt(Math.floor(nowUs()));
    let cNonce = now() * 16n;
    const packet = (state: Int32Array, agent: string, o: { nonce?: bigint; ts?: bigint; ver?: number; senderId?: Uint8Array } = {}): Uint8Array =>
      encodePacket(
        { type: 1, ver: o.ver, senderId: o.senderId ?? senderIdOf(agent), nonce: o.nonce ?? ++cNonce, probeId: 7, sendTsUs: o.ts ?? now(), payload: new Uint8Array(34) },
        state,
      );
    const captured = packet(cState, C);
    const forged = packet(cState, B);
    forged.set(randomBytes(16), forged.length - 16);
    const cases: Array<[string, Uint8Array, VerdictName]> = [
      [`valid probe from ${C} (will be captured)`, captured, 'accept'],
      ['the same probe replayed', captured, 'replay'],
      [`forged: ${B}'s sender_id, random MAC`, forged, 'bad_mac'],
      [`stale: valid MAC, sent 60 s ago`, packet(cState, C, { ts: now() - 60_000_000n }), 'stale'],
      ['cross-tenant: same agent names, another tenant', packet(keyState(new Uint8Array(randomBytes(32)), 'other-tenant', C), C), 'bad_mac'],
      ['v0 (legacy, unauthenticated)', packet(cState, C, { ver: 0 }), 'downgrade'],
      ['unknown sender (not in the roster)', packet(keyState(root, TENANT, 'intruder'), 'intruder'), 'unknown_sender'],
      [`reflected: ${A}'s own sender_id`, packet(cState, C, { senderId: senderIdOf(A) }), 'reflected'],
    ];
    let ok = true;
    const rows: string[][] = [['probe', 'expected', 'verdict', '']];
    for (const [what, d, want] of cases) {
      const before = responder.stats();
      await new Promise<void>((r) => hostile.send(d, port, '127.0.0.1', () => r()));
      let got: VerdictName | 'none' = 'none';
      for (let i = 0; i < 100 && got === 'none'; i++) {
        await new Promise((r) => setTimeout(r, 5));
        got = verdictBetween(before, responder.stats());
      }
      ok &&= got === want;
      rows.push([what, want, got, got === want ? 'ok' : 'MISMATCH']);
    }
    await new Promise((r) => setTimeout(r, 100));
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) out(`   ${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}`);
    out(`   datagrams sent back to the hostile socket: ${answered} (only the one valid probe is answered)`);
    ok &&= answered === 1;

    out(`\n3. every agent's books (received = accepted + dropped; REPLYs sent; sends refused)`);
    for (const a of agents) {
      const st = await a.close();
      const dropped = DROP_REASONS.reduce((x, r) => x + st.dropped[r], 0);
      const reasons = DROP_REASONS.filter((r) => st.dropped[r] > 0).map((r) => `${r} ${st.dropped[r]}`);
      out(`   ${a.engine.agent}: received ${st.received} = accepted ${st.accepted} + dropped ${dropped}${reasons.length ? ` (${reasons.join(', ')})` : ''}; replied ${st.replied}; send errors ${st.send_errors}; receive→verdict p99 ${st.latency_us.p99} µs`);
      ok &&= st.received === st.accepted + dropped;
    }
    writeAtomic('--report', reportPath, renderReport({ title: `dtmesh demo mesh (tenant ${TENANT})`, generated: new Date().toISOString(), agents: AGENTS, pairs }));
    out(`\n4. the mesh report (matrix heat maps, RTT over time and percentiles per pair): ${reportPath}`);
    out(
      `\nNext: 'dtmesh keys init --state-dir DIR', then 'dtmesh agent --help' to run a real mesh (or 'dtmesh serve' and` +
        ` 'dtmesh probe' for a single pair); the README covers the embedding API, metrics and the benchmarks.`,
    );
    if (!ok) process.stderr.write('dtmesh demo: a hostile probe was not dropped by the expected check (see the table above)\n');
    return ok ? 0 : 1;
  } finally {
    hostile.close();
    await Promise.all(agents.map((a) => a.close()));
    fs.rmSync(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
