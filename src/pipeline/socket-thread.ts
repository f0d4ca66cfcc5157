/**
 * `serve --sockets N`: an extra socket thread (ENGINE.md "Lanes"). Each is a worker
 * thread running a lane of its own — a {@link NativeLane} (SO_REUSEPORT from C, any Node)
 * or a {@link DgramLane}, the engine's kind — on the engine's port (`reusePort`: the
 * kernel spreads flows — by 4-tuple — over the sockets, so one peer's packets stay on one
 * socket and in order). This file is that thread's side: it relays between its lane and
 * the engine, whose side is a {@link ThreadLane} (src/pipeline/thread-lane.ts):
 *
 *   lane fills one of its batches → `batch` message (by index, with the count) → the
 *   engine verifies and collects it in order with every other batch (one replay filter,
 *   one nonce counter: PROTOCOL.md §3, §5) → `send` message when its turn in the send
 *   order comes → the lane sends the REPLYs marked `F_SEND` → `sent` once they left.
 *
 * Every message carries the lane's counts since the last one, so the books stay exact
 * (`received = accepted + Σ dropped`).
 */
import type { DgramLane } from './dgram-lane.js';
import type { Lane, LaneCounts, LaneSink } from './lane.js';
import { type LaneSocketOptions, type NativeLane, openLane } from './native-lane.js';
import { BatchRing } from './ring.js';

/** `reusePort` needs Node ≥ 22.12 (22.x) or ≥ 23.1 (ENGINE.md "Platform facts"). */
export function reusePortSupported(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** What one extra socket thread is given (`workerData`). */
export interface SocketThreadConfig {
  /** Lane number, 1 … N-1 (0 is the engine's own socket). */
  index: number;
  batchSab: SharedArrayBuffer;
  batches: number;
  slots: number;
  maxDatagram: number;
  /** The first batch this thread fills; it owns `perLane` consecutive batches. */
  firstBatch: number;
  /** Batches per lane. */
  perLane: number;
  host: string;
  port: number;
  /** Bind with `reusePort` (true in service; false only in tests on older Node, with port 0). */
  reusePort: boolean;
  recvBufferBytes: number;
  /** The engine's lane kind and socket options (every socket of an engine runs the same kind). */
  laneOptions: LaneSocketOptions;
}

/**
 * Socket thread → engine. Counts are deltas since the previous message. `sent` follows
 * each `send` once that batch's REPLYs completed (nonce order across sockets, PROTOCOL.md §3).
 */
export type SocketThreadMessage =
  | { t: 'ready'; port: number }
  | { t: 'error'; message: string }
  | ({ t: 'batch'; b: number; count: number } & LaneCounts)
  | ({ t: 'sent' } & LaneCounts)
  | ({ t: 'drained' } & LaneCounts)
  | ({ t: 'closed' } & LaneCounts);

/** Engine → socket thread. */
export type EngineToSocketMessage = { t: 'send'; b: number } | { t: 'stop' } | { t: 'close' };

/** Anything that can carry messages to the engine (a worker's `parentPort`; a test double). */
export interface MessageSink {
  postMessage(m: SocketThreadMessage): void;
}

/**
 * The socket thread's relay: the {@link LaneSink} of its lane (each event becomes a
 * message) and the handler of the engine's messages. Created by `workers/socket.ts`.
 */
export class SocketThread implements LaneSink {
  private lane: DgramLane | NativeLane | null = null;
  /** Batches handed to the engine and not yet given back by a `send`. */
  private inFlight = 0;
  private reported: LaneCounts = { received: 0, overload: 0, sendErrors: 0 };

  constructor(
    private readonly cfg: SocketThreadConfig,
    private readonly out: MessageSink,
  ) {}

  /** Bind; posts `ready` (with the bound port) or `error` (one line). */
  async start(): Promise<void> {
    const c = this.cfg;
    const ring = new BatchRing(c.batches, c.slots, c.maxDatagram, c.perLane, c.batchSab, c.firstBatch);
    try {
      this.lane = await openLane({ index: c.index, ring, host: c.host, port: c.port, reusePort: c.reusePort, recvBufferBytes: c.recvBufferBytes }, c.laneOptions);
    } catch (e) {
      this.out.postMessage({ t: 'error', message: `socket thread ${c.index}: ${(e as Error).message}` });
      return;
    }
    this.lane.start(this);
    this.out.postMessage({ t: 'ready', port: this.lane.port });
  }

  /** Handle a message from the engine. */
  onEngine(m: EngineToSocketMessage): void {
    const lane = this.lane!;
    if (m.t === 'send') {
      this.inFlight--;
      lane.sendBatch(m.b);
    } else if (m.t === 'stop') lane.stop();
    else void lane.close().then(() => this.out.postMessage({ t: 'closed', ...this.delta() }));
  }

  filled(_lane: Lane, b: number, count: number): void {
    this.inFlight++;
    this.out.postMessage({ t: 'batch', b, count, ...this.delta() });
  }

  /** A partial batch goes once none of this thread's batches is with the engine (batches grow under load). */
  takePartial(): boolean {
    return this.inFlight === 0;
  }

  sent(): void {
    this.out.postMessage({ t: 'sent', ...this.delta() });
  }

  drained(): void {
    this.out.postMessage({ t: 'drained', ...this.delta() });
  }

  failed(): void {
    // the lane in this thread never fails on its own; a crash of the thread is seen by the engine
  }

  /** The lane's counts since the last report. */
  private delta(): LaneCounts {
    const c = this.lane!.counts;
    const r = this.reported;
    this.reported = c;
    return { received: c.received - r.received, overload: c.overload - r.overload, sendErrors: c.sendErrors - r.sendErrors };
  }
}
