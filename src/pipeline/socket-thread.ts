/**
 * `serve --sockets N`: extra socket threads (ENGINE.md "Socket thread", issue "more
 * sockets where Node allows"). Each is a worker thread with its own UDP socket bound to
 * the engine's port with `reusePort` (the kernel spreads flows — by 4-tuple — over the
 * sockets, so one peer's packets stay on one socket and in order). A socket thread does
 * stage 1 and the sends of stage 5 for the batches it owns:
 *
 *   receive → copy into one of its own batches of the shared ring (the same
 *   {@link writeSlot} as the engine's thread) → hand the batch to the engine by index
 *   (`batch` message) → the engine dispatches it to the pool and collects it in order
 *   with every other batch (one replay filter, one nonce counter: PROTOCOL.md §3, §5) →
 *   `send` message → the thread sends the REPLYs the collector marked {@link F_SEND},
 *   in slot order, and reuses the batch once they left.
 *
 * The engine's thread keeps all state; a socket thread keeps only its free batches and
 * the remote address of each slot it filled. Its `received`/`overload` counts travel with
 * every message, so the books stay exact (`received = accepted + Σ dropped`).
 */
import * as dgram from 'node:dgram';
import { replyView, SendLedger, writeSlot } from './ring.js';
import { nowUs } from '../clock.js';
import { BatchLayout, F_SEND, M_FLAGS, M_LENGTH } from './layout.js';
import { literalLookup, unanswerable } from './udp.js';
import type { SendOrder } from './sendorder.js';

/** `reusePort` needs Node ≥ 22.12 (22.x) or ≥ 23.1 (ENGINE.md "Platform facts"). */
export function reusePortSupported(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** What one extra socket thread is given (`workerData`). */
export interface SocketThreadConfig {
  /** Thread number, 1 … N-1 (0 is the engine's own socket). */
  index: number;
  batchSab: SharedArrayBuffer;
  batches: number;
  slots: number;
  maxDatagram: number;
  /** The batch indices this thread fills (disjoint from every other thread's). */
  own: number[];
  type: 'udp4' | 'udp6';
  host: string;
  port: number;
  /** Bind with `reusePort` (true in service; false only in tests on older Node, with port 0). */
  reusePort: boolean;
  recvBufferBytes: number;
}

/** The counts every socket-thread report carries: deltas since the previous message. */
export interface LaneCounts {
  received: number;
  overload: number;
  /** Sends the kernel or Node refused (PROTOCOL.md §4 `send_errors`). */
  sendErrors: number;
}

/**
 * Socket thread → engine. Counts are deltas since the previous message. `sent` follows
 * each `send` once that batch's REPLYs completed (the engine's {@link SendOrder} then lets
 * the next socket's packets go: nonce order across sockets, PROTOCOL.md §3).
 */
export type SocketThreadMessage =
  | { t: 'ready'; port: number }
  | { t: 'error'; message: string }
  | ({ t: 'batch'; b: number; count: number } & LaneCounts)
  | ({ t: 'sent'; b: number } & LaneCounts)
  | ({ t: 'drained' } & LaneCounts)
  | ({ t: 'closed' } & LaneCounts);

/** Engine → socket thread. */
export type EngineToSocketMessage = { t: 'send'; b: number } | { t: 'stop' } | { t: 'close' };

/** Anything that can carry messages to the engine (a worker's `parentPort`; a test double). */
export interface MessageSink {
  postMessage(m: SocketThreadMessage): void;
}

/**
 * One extra socket thread's logic. Created and driven by `workers/socket.ts`; kept
 * separate so the hand-off can be read (and tested) without the thread around it.
 */
export class SocketThread {
  private readonly layout: BatchLayout;
  private readonly ints: Int32Array;
  private readonly times: Float64Array;
  private readonly bytes: Buffer;
  private readonly addr: string[];
  private readonly port: Int32Array;
  private readonly free: number[];
  private readonly count: Int32Array;
  private readonly socket: dgram.Socket;
  private filling = -1;
  /** Batches handed to the engine and not yet sent back. */
  private inFlight = 0;
  private flushScheduled = false;
  private stopping = false;
  private received = 0;
  private overload = 0;
  /** Untracked sends the kernel refused (the socket's `'error'` events). */
  private sendErrors = 0;
  /** Send errors already reported to the engine (the socket's plus its ledger's). */
  private sendErrorsReported = 0;
  private readonly sends: SendLedger;
  private readonly replyViews: Array<Buffer | undefined>;

  constructor(
    private readonly cfg: SocketThreadConfig,
    private readonly out: MessageSink,
  ) {
    this.layout = new BatchLayout(cfg.batches, cfg.slots, cfg.maxDatagram);
    this.ints = new Int32Array(cfg.batchSab);
    this.times = new Float64Array(cfg.batchSab);
    this.bytes = Buffer.from(cfg.batchSab);
    const slotsTotal = cfg.batches * cfg.slots;
    this.addr = new Array<string>(slotsTotal).fill('');
    this.port = new Int32Array(slotsTotal);
    this.free = cfg.own.slice().reverse();
    this.count = new Int32Array(cfg.batches);
    this.sends = new SendLedger(
      cfg.batches,
      (b) => {
        this.free.push(b);
        this.out.postMessage({ t: 'sent', b, ...this.takeCounts() }); // its REPLYs left: the engine's next unit may go
      },
      () => this.checkDrained(),
    );
    this.replyViews = new Array<Buffer | undefined>(slotsTotal).fill(undefined); // dense, not a sparse dictionary
    // reusePort is typed from @types/node 22 on; Node 20 would ignore it (we never ask it there)
    this.socket = dgram.createSocket({ type: cfg.type, reusePort: cfg.reusePort, lookup: literalLookup } as dgram.SocketOptions);
  }

  /** Bind; posts `ready` (with the bound port) or `error` (one line). */
  start(): void {
    const onError = (e: NodeJS.ErrnoException): void => {
      this.out.postMessage({ t: 'error', message: `socket thread ${this.cfg.index} cannot bind ${this.cfg.host}:${this.cfg.port}: ${e.code ?? e.message}` });
      this.socket.close();
    };
    this.socket.once('error', onError);
    this.socket.bind(this.cfg.port, this.cfg.host, () => {
      this.socket.off('error', onError);
      this.socket.on('error', () => void this.sendErrors++); // refusals come through the send callbacks; anything else is counted the same way
      try {
        this.socket.setRecvBufferSize(this.cfg.recvBufferBytes);
      } catch {
        // capped or refused: the engine reports the cap for its own socket
      }
      this.socket.on('message', this.onMessage);
      this.out.postMessage({ t: 'ready', port: this.socket.address().port });
    });
  }

  /** Handle a message from the engine. */
  onEngine(m: EngineToSocketMessage): void {
    if (m.t === 'send') this.sendReplies(m.b);
    else if (m.t === 'stop') {
      this.stopping = true;
      if (this.filling >= 0) this.post();
      this.checkDrained();
    } else {
      this.socket.close(() => this.out.postMessage({ t: 'closed', ...this.takeCounts() }));
    }
  }

  // ---- 1. socket (this thread) ----

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const t = nowUs();
    this.received++;
    let b = this.filling;
    if (b < 0) {
      b = this.stopping || this.free.length === 0 ? -1 : this.free.pop()!;
      if (b < 0) {
        this.overload++; // every batch of this thread in flight (or stopping): shed, counted
        return;
      }
      this.filling = b;
      this.count[b] = 0;
    }
    const i = this.count[b]!;
    const s = this.layout.slotNumber(b, i);
    writeSlot(this.layout, this.ints, this.times, this.bytes, s, msg, t, unanswerable(rinfo.address, rinfo.port));
    this.addr[s] = rinfo.address;
    this.port[s] = rinfo.port;
    this.count[b] = i + 1;
    if (i + 1 === this.cfg.slots) this.post();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.onFlush);
    }
  };

  /** A partial batch goes once none of this thread's batches is with the engine (batches grow under load). */
  private readonly onFlush = (): void => {
    this.flushScheduled = false;
    if (this.filling >= 0 && this.inFlight === 0) this.post();
  };

  private post(): void {
    const b = this.filling;
    this.filling = -1;
    this.inFlight++;
    this.out.postMessage({ t: 'batch', b, count: this.count[b]!, ...this.takeCounts() });
  }

  /** The counts since the last report (every message carries them, so the books stay exact). */
  private takeCounts(): LaneCounts {
    const errors = this.sendErrors + this.sends.errors;
    const c = { received: this.received, overload: this.overload, sendErrors: errors - this.sendErrorsReported };
    this.received = 0;
    this.overload = 0;
    this.sendErrorsReported = errors;
    return c;
  }


  // ---- 5. reply (this thread, the batch's collector decisions) ----

  private sendReplies(b: number): void {
    this.inFlight--;
    const { layout, ints } = this;
    const n = this.count[b]!;
    let held = -1; // only the batch's last REPLY is sent with a completion callback (as in the engine)
    for (let i = 0; i <= n; i++) {
      const s = i < n ? layout.slotNumber(b, i) : -1;
      if (s >= 0 && (ints[layout.metaIndex(s) + M_FLAGS]! & F_SEND) === 0) continue;
      if (held >= 0) {
        const view = replyView(this.replyViews, this.bytes, layout.replyOffset(held), held, ints[layout.metaIndex(held) + M_LENGTH]!);
        this.sends.send(this.socket, view, this.port[held]!, this.addr[held]!, s < 0); // a refused send is counted, never thrown
      }
      held = s;
    }
    this.sends.closeBatch(b);
    this.sends.release();
    this.checkDrained();
    if (this.filling >= 0 && this.inFlight === 0) this.post();
  }


  private drainedSent = false;

  private checkDrained(): void {
    if (!this.stopping || this.drainedSent || this.inFlight > 0 || this.filling >= 0 || !this.sends.idle) return;
    this.drainedSent = true;
    this.out.postMessage({ t: 'drained', ...this.takeCounts() });
  }
}
