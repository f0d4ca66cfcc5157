/**
 * The mesh agent (ENGINE.md "Embedding", MEASUREMENT.md §4): one engine that answers its
 * peers and, on the same socket and nonce counter, keeps measuring every one of them
 * with a {@link MeshProber}; it keeps each peer's recent bursts (bounded), exports its
 * figures as Prometheus metrics, and learns peer addresses from its roster and the API
 * (configured) and from granted punch hints a peer sends about itself (learned). The `dtmesh agent` command and `npm start` are built on it.
 */
import type { Registry } from 'prom-client';
import { Engine, type EngineOptions, type PunchHintEvent } from '../engine.js';
import type { EngineStats } from '../observe/stats.js';
import { senderIdOf } from '../protocol/ids.js';
import { engineRegistry, meshMetrics } from '../observe/metrics.js';
import { CURVE_PERCENTILES, type ReportPair } from '../observe/report.js';
import { MeshProber, type MeshInterval, type MeshSchedule, type PeerAddress } from './mesh.js';
import { checkTarget } from './prober.js';
import { percentileWithin } from './tally.js';

/** How to start a {@link MeshAgent}. */
export interface MeshAgentOptions extends EngineOptions {
  schedule: MeshSchedule;
  /** Peers with known addresses (others in `peers` are answered, and probed once an address is known). */
  addresses: PeerAddress[];
  /** Bursts kept per peer for the report's time series (default 600). */
  keepIntervals?: number;
}

/** One agent: engine + mesh prober; see the file header. */
export class MeshAgent {
  readonly prober: MeshProber;
  /** Addresses from the roster and the API: these win over learned ones. */
  private readonly addresses = new Map<string, PeerAddress>();
  /** Addresses peers told about themselves in granted punch hints ({@link learnFromHint}). */
  private readonly learned = new Map<string, PeerAddress>();
  private readonly series = new Map<string, MeshInterval[]>();
  private readonly keep: number;

  private constructor(
    readonly engine: Engine,
    opts: MeshAgentOptions,
  ) {
    this.keep = opts.keepIntervals ?? 600;
    if (!Number.isInteger(this.keep) || this.keep < 1) throw new RangeError(`options.keepIntervals must be a positive integer, got ${opts.keepIntervals}`);
    if (!Array.isArray(opts.addresses)) throw new TypeError('options.addresses must be an array of { agent, host, port }');
    this.prober = new MeshProber(engine, opts.schedule);
    for (const a of opts.addresses) {
      checkTarget(a.host, a.port);
      this.addresses.set(a.agent, a);
    }
    this.prober.on('interval', (i: MeshInterval) => {
      let s = this.series.get(i.peer);
      if (s === undefined) this.series.set(i.peer, (s = []));
      s.push(i);
      if (s.length > this.keep) s.shift();
    });
    engine.on('punch_hint', (h: PunchHintEvent) => this.learnFromHint(h));
    this.retarget();
  }

  /** Create the engine and start probing. Throws like {@link Engine.create}. */
  static async create(opts: MeshAgentOptions): Promise<MeshAgent> {
    const engine = await Engine.create(opts);
    let agent: MeshAgent;
    try {
      agent = new MeshAgent(engine, opts);
    } catch (e) {
      await engine.close(); // a bad schedule or addresses: no socket, worker or state lock left behind
      throw e;
    }
    agent.prober.start();
    return agent;
  }

  /**
   * Probe `addr.agent` at `addr` (the API's way to tell an address; a roster member only).
   * Throws a `RangeError`, keeping the address the peer had, for a host or port no lane
   * can send to.
   */
  setAddress(addr: PeerAddress): void {
    checkTarget(addr.host, addr.port);
    this.addresses.set(addr.agent, addr);
    this.retarget();
  }

  /**
   * A granted PUNCH_HINT (PROTOCOL.md §2) whose sender names itself as the target: probe
   * that peer at the hint's address from now on, unless the roster or the API gave one.
   * The engine already sent the hint's short burst. A hint about another member teaches
   * nothing: its MAC proves who sent it, not that what it says of a third agent is true,
   * and learning it would let one member point this agent's scheduled probes — a steady
   * flow, not a rate-limited burst — at any address, and take that peer's figures with it.
   */
  private learnFromHint(h: PunchHintEvent): void {
    if (h.decision !== 'sent' || hexId(h.from) !== h.target || this.addresses.has(h.from)) return;
    if (!this.engine.peers.includes(h.from)) return;
    this.learned.set(h.from, { agent: h.from, host: h.address, port: h.port });
    this.retarget();
  }

  /** Apply a heartbeat (rotation with grace, roster) and probe the new roster's known addresses. */
  applyHeartbeat(response: unknown): { rotated: boolean } {
    const r = this.engine.applyHeartbeat(response);
    this.retarget();
    return r;
  }

  /** Replace the roster (and what is probed). */
  setPeers(peers: readonly string[]): void {
    this.engine.setPeers(peers);
    this.retarget();
  }

  /**
   * Probe every roster member whose address is known (configured first, else learned).
   * A member that left the roster takes its learned address and its kept bursts with it
   * (memory stays bounded by the roster; a member that rejoins starts afresh).
   */
  private retarget(): void {
    const roster = new Set(this.engine.peers);
    for (const m of [this.learned, this.series]) for (const p of m.keys()) if (!roster.has(p)) m.delete(p);
    this.prober.setTargets(this.engine.peers.flatMap((p) => {
      const a = this.addresses.get(p) ?? this.learned.get(p);
      return a === undefined ? [] : [a];
    }));
  }

  /** A registry with the responder's and the prober's metrics. */
  registry(): Registry {
    return meshMetrics(engineRegistry(this.engine), this.prober);
  }

  /** This agent's row of the mesh matrix, for the report. */
  reportPairs(): ReportPair[] {
    const hists = new Map(this.prober.histograms().map((h) => [h.peer, h.histogram]));
    return this.prober.figures().map((f) => {
      const h = hists.get(f.peer)!;
      return {
        from: this.engine.agent,
        to: f.peer,
        figures: f,
        series: [...(this.series.get(f.peer) ?? [])],
        // HDR gives a bucket's top: clamped into the exact [min, max], so no point of the curve lies past the extremes
        percentiles: h.totalCount === 0 ? [] : CURVE_PERCENTILES.map((q) => [q, q === 100 ? h.maxValue : q === 0 ? h.minNonZeroValue : percentileWithin(h, q)] as [number, number]),
      };
    });
  }

  /** Stop probing (the probes in flight finish), then close the engine; resolves with its final stats. */
  async close(): Promise<EngineStats> {
    await this.prober.stop();
    return this.engine.close();
  }
}

/** Hex of `SHA-256(agent)[0:8]` (the sender_id punch hints name). */
function hexId(agent: string): string {
  return Buffer.from(senderIdOf(agent)).toString('hex');
}
