/**
 * The `dgram` lane (ENGINE.md "Lanes"): stages 1 and 5 on Node's `dgram` socket, on
 * whichever thread holds it — the engine's own socket, and the one inside every socket
 * thread (src/pipeline/socket-thread.ts). One `recvmsg`/`sendmsg` per datagram, JS
 * receive times. It owns: the socket, its batches' free list and the batch it is filling
 * (a {@link BatchRing} view), each slot's remote address, and the {@link SendLedger} of its
 * socket. It hands on: filled batches by index ({@link LaneSink.filled}), and word that a
 * batch's REPLYs left ({@link LaneSink.sent}).
 *
 *   message → copy into the filling batch (one copy, {@link BatchRing.put}; a source no
 *   reply can go to is flagged there) → full, or partial once the sink agrees → filled
 *   … the pipeline verifies and collects in order … → sendBatch: the REPLYs marked
 *   `F_SEND`, in slot order, the last one with a completion callback → the batch is free
 *   again once they completed (sends on one socket complete in order).
 */
import * as dgram from 'node:dgram';
import { nowUs } from '../clock.js';
import { DtmeshError } from '../errors.js';
import { reportedRecvBufferNote } from '../observe/kernel-drops.js';
import type { LaneCounts, LaneSink, PacketLane } from './lane.js';
import { F_SEND, M_FLAGS, M_LENGTH } from './layout.js';
import { SendLedger } from './ledger.js';
import { type BatchRing, replyView } from './ring.js';
import { bindErrorLine, literalLookup } from './udp.js';

/** How to open a {@link DgramLane}. */
export interface DgramLaneOptions {
  /** Lane number (0 = the engine's own socket). */
  index: number;
  /** This thread's view of the batch ring, owning this lane's batches. */
  ring: BatchRing;
  /** IP literal to bind (a v6 one makes a `udp6` socket). */
  host: string;
  /** Port to bind (0 = ephemeral). */
  port: number;
  /** Bind with `SO_REUSEPORT` (every socket on a shared port needs it; Node ≥ 22.12 / 23.1). */
  reusePort: boolean;
  /** Receive buffer to ask for, bytes (the kernel may cap it). */
  recvBufferBytes: number;
}

/** The `dgram` lane; see the file header. */
export class DgramLane implements PacketLane {
  readonly index: number;
  /** One line when the kernel capped the receive buffer, else null. */
  readonly recvBufferNote: string | null;
  private readonly ring: BatchRing;
  private readonly socket: dgram.Socket;
  private sink: LaneSink | null = null;
  private readonly ledger: SendLedger;
  /** A REPLY view per slot (kept while the length stays: {@link replyView}). */
  private readonly views: Array<Buffer | undefined>;
  private filling = -1;
  private flushScheduled = false;
  private stopping = false;
  private drainedSent = false;
  /** Batches handed to the sink and not yet given back by {@link sendBatch}. */
  private outstanding = 0;
  private received = 0;
  private overload = 0;
  /** Sends refused outside the ledger: own packets, and anything the socket reports as `'error'`. */
  private socketErrors = 0;
  private closed = false;

  private constructor(opts: DgramLaneOptions, socket: dgram.Socket, recvNote: string | null) {
    this.index = opts.index;
    this.ring = opts.ring;
    this.socket = socket;
    this.recvBufferNote = recvNote;
    this.ledger = new SendLedger(this.ring.layout.batches, (b) => this.ring.release(b), () => this.checkDrained());
    this.views = new Array<Buffer | undefined>(this.ring.layout.batches * this.ring.layout.slots).fill(undefined); // dense, not a sparse dictionary
  }

  /**
   * Open and bind the socket. Throws a one-line {@link DtmeshError} saying what is wrong
   * (address in use, not an address of this machine, privileges).
   */
  static async open(opts: DgramLaneOptions): Promise<DgramLane> {
    const { host, port } = opts;
    // reusePort is typed from @types/node 22 on; Node 20 ignores it (the engine never asks it there)
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', reusePort: opts.reusePort, lookup: literalLookup } as dgram.SocketOptions);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        socket.close();
        reject(new DtmeshError(bindErrorLine(e.code ?? e.message, host, port)));
      };
      socket.once('error', onError);
      socket.bind(port, host, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(opts.recvBufferBytes);
    } catch {
      // capped or refused by the system; the socket still works with its default
    }
    const lane = new DgramLane(opts, socket, reportedRecvBufferNote(opts.recvBufferBytes, socket.getRecvBufferSize()));
    // every send has a callback that counts refusals; anything the socket still reports is counted the same way, never fatal
    socket.on('error', () => void lane.socketErrors++);
    return lane;
  }

  /** Start receiving into the ring, handing batches to `sink`. */
  start(sink: LaneSink): void {
    this.sink = sink;
    this.socket.on('message', this.onMessage);
  }

  /** The socket (benchmarks time Node's receive and send around it; the lane alone uses it). */
  get udpSocket(): dgram.Socket {
    return this.socket;
  }

  /** The bound port. */
  get port(): number {
    return this.socket.address().port;
  }

  /** The bound address. */
  address(): { address: string; port: number; family: string } {
    return this.socket.address();
  }

  get counts(): LaneCounts {
    return { received: this.received, overload: this.overload, sendErrors: this.socketErrors + this.ledger.errors };
  }

  get drained(): boolean {
    return this.drainedSent;
  }

  // ---- 1. receive ----------------------------------------------------------------

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const t = nowUs();
    this.received++;
    const ring = this.ring;
    let b = this.filling;
    if (b < 0) {
      b = this.stopping ? -1 : ring.take();
      if (b < 0) {
        this.overload++; // every batch of this lane in flight (or stopping): shed, counted
        return;
      }
      this.filling = b;
    }
    if (ring.put(b, msg, t, rinfo.address, rinfo.port) === ring.layout.slots) this.hand();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.onFlush);
    }
  };

  /** After this loop turn's reads: the partial batch goes if the sink agrees (else it keeps filling, so batches grow under load). */
  private readonly onFlush = (): void => {
    this.flushScheduled = false;
    this.kick();
  };

  kick(): void {
    const b = this.filling;
    if (b >= 0 && (this.stopping || this.sink!.takePartial(this, this.ring.count[b]!))) this.hand();
  }

  private hand(): void {
    const b = this.filling;
    this.filling = -1;
    this.outstanding++;
    this.sink!.filled(this, b, this.ring.count[b]!);
  }

  // ---- 5. send -------------------------------------------------------------------

  sendBatch(b: number): void {
    this.outstanding--;
    const { ring, ledger } = this;
    const { layout, ints } = ring;
    const n = ring.count[b]!;
    let last = -1; // the batch's last REPLY goes with a completion callback (sends complete in order)
    for (let i = 0; i < n; i++) {
      const s = layout.slotNumber(b, i);
      if ((ints[layout.metaIndex(s) + M_FLAGS]! & F_SEND) === 0) continue;
      if (last >= 0) this.sendReply(last, false);
      last = s;
    }
    const tracked = last >= 0 && this.sendReply(last, true);
    ledger.closeBatch(b);
    ledger.release();
    if (!tracked) this.sink!.sent(this); // nothing (more) to wait for
    this.checkDrained();
    this.kick();
  }

  private sendReply(s: number, track: boolean): boolean {
    const { layout, ints, bytes } = this.ring;
    const view = replyView(this.views, bytes, layout.replyOffset(s), s, ints[layout.metaIndex(s) + M_LENGTH]!);
    return this.ledger.send(this.socket, view, this.ring.port[s]!, this.ring.addr[s]!, track, track ? this.onBatchSent : undefined);
  }

  /** Completion of a batch's last REPLY: the batch's sends are all out. */
  private readonly onBatchSent = (err?: Error | null): void => {
    this.ledger.onSent(err);
    this.sink!.sent(this);
  };

  /**
   * Engine-clock µs right before the last {@link sendPacket}'s `socket.send` call
   * (MEASUREMENT.md §1: the send time on this lane; NaN when Node refused it at once).
   */
  lastOwnSentUs = NaN;

  sendPacket(buf: Uint8Array, port: number, host: string, onSent: (err: Error | null) => void): boolean {
    this.lastOwnSentUs = NaN;
    try {
      const at = nowUs();
      this.socket.send(buf, port, host, (err) => {
        if (err) this.socketErrors++;
        onSent(err);
      });
      this.lastOwnSentUs = at;
      return true;
    } catch {
      this.socketErrors++;
      return false;
    }
  }

  // ---- drain and close -------------------------------------------------------------

  stop(): void {
    this.stopping = true;
    if (this.filling >= 0) this.hand();
    this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.stopping || this.drainedSent || this.filling >= 0 || this.outstanding > 0 || !this.ledger.idle) return;
    this.drainedSent = true;
    this.sink!.drained(this);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
