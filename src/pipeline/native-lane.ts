/**
 * The native lane (ENGINE.md "Lanes: the socket stage, twice"): stages 1 and 5 on a
 * socket the addon opens and binds itself (src/native/lane.c), on whichever thread holds
 * it — the engine's own socket, and the one inside every socket thread of `serve
 * --sockets N` (SO_REUSEPORT from C, so on Node 20 too). One `uv_poll_t` on this thread's
 * event loop; `recvmmsg` straight into the batch slots (bytes, true length, flags, kernel
 * receive time), `sendmmsg` straight out of their reply areas, in slot (= nonce) order.
 * It owns: the native handle, its batches' free list and the batch it is filling (a
 * {@link BatchRing} view), the mirror of the native send FIFO. It hands on: filled
 * batches by index ({@link LaneSink.filled}), and word that a batch's REPLYs left
 * ({@link LaneSink.sent}).
 *
 *   wake-up → C drains the socket into the filling batch → one `onRecv(b, count)` per
 *   wake-up or full batch (never per datagram) → full, or partial once the sink agrees
 *   → filled … the pipeline verifies and collects in order … → sendBatch → C's FIFO:
 *   `sendmmsg` of the slots marked `F_SEND`; the batch is free as soon as the kernel took
 *   them (at once, unless the socket would block: then once it is writable, `onSent`).
 *
 * The protocol with C (both sides on this thread; C writes the ring only inside its
 * poll callback, so no fences): C fills the batch JS last gave it (`laneFill`, or the
 * answer of `onRecv`: {@link KEEP} the same one, a fresh one, or -1 = none, arrivals are
 * `overload`). Sends complete in FIFO order; `laneSend`/`laneSendTo` return how many
 * completed during the call, `onSent(n)` reports those completed on writable. Counters
 * live in a Float64Array C writes ({@link LaneCounts} are read from it), so the books are
 * exact at any moment: `received = accepted + Σ dropped` (ENGINE.md).
 */
import { promises as dnsp } from 'node:dns';
import { isIP } from 'node:net';
import { constants as osConstants } from 'node:os';
import { monoOffsetUs } from '../clock.js';
import { DtmeshError } from '../errors.js';
import { reportedRecvBufferNote } from '../observe/kernel-drops.js';
import { nativeLane, nativeLaneStatus, type NativeLaneCalls } from '../protocol/native.js';
import { DgramLane } from './dgram-lane.js';
import type { LaneCounts, LaneSink, PacketLane } from './lane.js';
import { F_SEND, F_UNANSWERABLE, M_FLAGS, M_LENGTH, SLOT_META_WORDS } from './layout.js';
import type { BatchRing } from './ring.js';
import { bindErrorLine } from './udp.js';

/** `onRecv` answer: keep filling the same batch (src/native/lane.c KEEP). */
const KEEP = -2;
/** Counter words C writes (src/native/lane.c C_*). */
const C_RECEIVED = 0;
const C_OVERLOAD = 1;
const C_SEND_ERRORS = 2;
const C_RECV_ERRORS = 3;
/** Engine-clock µs C took right before the `sendto` of the last own packet that left (MEASUREMENT.md §1 "Sent"). */
const C_OWN_AT = 4;
/** Own packets C is done with (left or refused), in FIFO order. */
const C_OWN_N = 5;
/** Own packets the kernel refused; C reports at most one per call, as the last own packet done in it. */
const C_OWN_REFUSED = 6;
/** errno of the last refused own packet. */
const C_OWN_ERRNO = 7;
/** REPLYs that left inside UDP GSO messages ({@link NativeLaneOptions.gso}). */
const C_GSO_SENT = 8;
/** Datagrams that came without a kernel stamp while {@link NativeLane.timestamps} is `'kernel'`. */
const C_UNSTAMPED = 9;
const C_WORDS = 10;
/** errno → its name (EPERM …), for the one-line error of a refused own packet. */
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The error an own packet's callback gets when the kernel refused its `sendto`. */
function sendRefused(errno: number): DtmeshError {
  return new DtmeshError(`the kernel refused the send (${ERRNO_NAMES.get(errno) ?? `errno ${errno}`})`);
}

/** Geometry words given at attach (src/native/lane.c G_*), in this order. */
const G_WORDS = 13;

/** How to open a {@link NativeLane}. */
export interface NativeLaneOptions {
  /** Lane number (0 = the engine's own socket). */
  index: number;
  /** This thread's view of the batch ring, owning this lane's batches. */
  ring: BatchRing;
  /** Address to bind (an IP literal — IPv6 with an optional `%scope`, as `net.isIP` takes it — or a name resolved once here; a v6 one makes an IPv6 dual-stack socket). */
  host: string;
  /** Port to bind (0 = ephemeral). */
  port: number;
  /** Bind with `SO_REUSEPORT` (every socket on a shared port needs it; any Node version). */
  reusePort: boolean;
  /** Receive buffer to ask for, bytes (`SO_RCVBUFFORCE`, else `SO_RCVBUF`: capped by `net.core.rmem_max`). */
  recvBufferBytes: number;
  /** @internal `SO_SNDBUF` bytes (0 = the system's default; tests shrink it to force would-block). */
  sendBufferBytes?: number;
  /** IP TTL / IPv6 hop limit of every packet sent, 1–255 (default: the system's). */
  ttl?: number;
  /** DSCP of every packet sent, 0–63 (RFC 2474; default: the system's, 0). */
  dscp?: number;
  /** Kernel receive timestamps (`SO_TIMESTAMPNS`); default true. */
  timestamps?: boolean;
  /** UDP GSO for REPLY runs to one address ({@link EngineOptions.gso}); default false. */
  gso?: boolean;
}


/** The native lane; see the file header. */
export class NativeLane implements PacketLane {
  readonly index: number;
  /** One line when the kernel capped the receive buffer, else null. */
  readonly recvBufferNote: string | null;
  /** Where receive times come from: the kernel's stamp (`SO_TIMESTAMPNS`), or the clock read once per `recvmmsg` call. */
  readonly timestamps: 'kernel' | 'js';
  /** Effective `SO_SNDBUF`, bytes. */
  readonly sendBufferBytes: number;
  /** TTL (hop limit) and DSCP every datagram of this socket carries, as the kernel holds them (getsockopt after `--ttl`/`--dscp`, else the system's defaults). */
  readonly socketMarks: { ttl: number; dscp: number };
  private readonly ring: BatchRing;
  private readonly native: NativeLaneCalls;
  private readonly h: object;
  private readonly bound: { address: string; port: number; family: string };
  /**
   * Counters C writes (C_*) from attach to close; allocated once, read by {@link counts}. Over a
   * SharedArrayBuffer: it can never be detached under C's pointer (lane.c refuses a plain one).
   */
  private readonly c = new Float64Array(new SharedArrayBuffer(C_WORDS * Float64Array.BYTES_PER_ELEMENT));
  private sink: LaneSink | null = null;
  private filling = -1;
  private fillCount = 0;
  /** Inside `onRecv`: the batch to fill goes back as its result, not by `laneFill`. */
  private inRecv = false;
  /** The batch C filled was replaced during this `onRecv`. */
  private replaced = false;
  /** {@link start} attached the ring: C can send (before it, C has no counters to write and refuses). */
  private started = false;
  private stopping = false;
  private drainedSent = false;
  private closed = false;
  /** Batches handed to the sink and not yet given back by {@link sendBatch}. */
  private outstanding = 0;
  /** Own packets refused before they reached C (a host of the wrong family, closed). */
  private refused = 0;
  /** Mirror of C's send FIFO: a batch index, or -1 for an own packet (circular; grows only with queued own packets). */
  private fifo: Int32Array;
  private fifoHead = 0;
  private fifoLen = 0;
  private readonly packetDone: Array<(err: Error | null) => void> = [];
  /** FIFO entries C completed and not yet handled here (handled in order, one loop at a time). */
  private completedUnhandled = 0;
  private completing = false;

  private constructor(opts: NativeLaneOptions, native: NativeLaneCalls, h: object) {
    this.index = opts.index;
    this.ring = opts.ring;
    this.native = native;
    this.h = h;
    const [address, port, rcvbuf, kernelTs, sndbuf, ttl, dscp] = native.laneInfo(h);
    this.socketMarks = { ttl, dscp };
    this.bound = { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
    this.timestamps = kernelTs === 1 ? 'kernel' : 'js';
    this.sendBufferBytes = sndbuf;
    this.recvBufferNote = reportedRecvBufferNote(opts.recvBufferBytes, rcvbuf);
    this.fifo = new Int32Array(opts.ring.owned + 16);
  }

  /**
   * Open and bind the socket (no receiving yet: {@link start}). Throws a one-line
   * {@link DtmeshError} saying what is wrong (no native lane here, address in use, not an
   * address of this machine, privileges).
   */
  static async open(opts: NativeLaneOptions): Promise<NativeLane> {
    const native = nativeLane;
    if (native === null) throw new DtmeshError(`the native lane is ${nativeLaneStatus}`);
    const family = opts.host.includes(':') ? 6 : 4;
    let host = opts.host;
    if (isIP(host) === 0) {
      try {
        host = (await dnsp.lookup(host, { family })).address;
      } catch (e) {
        throw new DtmeshError(bindErrorLine((e as NodeJS.ErrnoException).code, opts.host, opts.port));
      }
    }
    let h: object;
    try {
      h = native.laneOpen(host, opts.port, family, opts.reusePort, opts.recvBufferBytes, opts.sendBufferBytes ?? 0, opts.ttl ?? -1, opts.dscp ?? -1, opts.timestamps ?? true, opts.gso ?? false);
    } catch (e) {
      throw new DtmeshError(bindErrorLine((e as NodeJS.ErrnoException).code, opts.host, opts.port));
    }
    return new NativeLane(opts, native, h);
  }

  /** Start receiving into the ring, handing batches to `sink`. From here on {@link close} is required (see there). */
  start(sink: LaneSink): void {
    this.sink = sink;
    const l = this.ring.layout;
    const g = new Int32Array(G_WORDS);
    g.set([l.slots, l.slotBytes, l.metaOffset, l.timeOffset, l.dataOffset, l.batches, this.ring.firstOwned, this.ring.owned, SLOT_META_WORDS, M_LENGTH, M_FLAGS, F_SEND, F_UNANSWERABLE]);
    this.native.laneAttach(this.h, this.ring.bytes, g, this.c, this.onRecv, this.onSent, monoOffsetUs());
    this.started = true;
    this.refill();
  }

  /** The native lane has no `dgram` socket (benchmarks that time Node's socket need the dgram lane). */
  get udpSocket(): undefined {
    return undefined;
  }

  /** The bound port. */
  get port(): number {
    return this.bound.port;
  }

  /** The bound address. */
  address(): { address: string; port: number; family: string } {
    return { ...this.bound };
  }

  get counts(): LaneCounts {
    const c = this.c;
    return { received: c[C_RECEIVED]!, overload: c[C_OVERLOAD]!, sendErrors: c[C_SEND_ERRORS]! + this.refused };
  }

  /** REPLYs that left inside UDP GSO messages, several datagrams per send ({@link NativeLaneOptions.gso}; tests, benchmarks). */
  get gsoSent(): number {
    return this.c[C_GSO_SENT]!;
  }

  /**
   * Datagrams that came without the kernel's receive stamp although {@link timestamps} is
   * `'kernel'` (the control message was missing or cut): their receive time is the clock read
   * at the `recvmmsg` call, as on a `'js'` lane. 0 on a healthy kernel; counted so it is never silent.
   */
  get unstampedReceives(): number {
    return this.c[C_UNSTAMPED]!;
  }

  /** Receive calls the kernel failed (not EAGAIN): never a datagram lost silently, the kernel still holds or dropped it (`kernel_drops`). */
  get recvErrors(): number {
    return this.c[C_RECV_ERRORS]!;
  }

  get drained(): boolean {
    return this.drainedSent;
  }

  /**
   * @internal tests: the next `wouldBlock` send calls report EAGAIN (the queue and the
   * writable watch; loopback never pushes back), the next `refuse` messages fail (EPERM),
   * the next `gsoRefuse` GSO messages fail (EIO: a device that cannot segment; the fallback).
   */
  injectSendFaults(wouldBlock: number, refuse: number, gsoRefuse = 0): void {
    this.native.laneTestFault(this.h, wouldBlock, refuse, gsoRefuse);
  }

  /**
   * REPLY runs to one address leave as UDP GSO messages ({@link NativeLaneOptions.gso}): asked
   * for, the kernel has `UDP_SEGMENT`, and it has not refused a GSO send outright since (then
   * every REPLY leaves on its own, as without it).
   */
  get gso(): boolean {
    return !this.closed && this.native.laneInfo(this.h)[7] === 1;
  }

  /** Source `{address, port}` of global slot `s` of this lane, as `dgram` would format it (events, tests). */
  slotAddress(s: number): { address: string; port: number } {
    const [address, port] = this.native.laneSlotAddress(this.h, s);
    return { address, port };
  }

  // ---- 1. receive ----------------------------------------------------------------

  /** C read datagrams into batch `b` (now `count` of them): a full batch goes on, a partial one if the sink agrees. */
  private readonly onRecv = (b: number, count: number): number => {
    this.inRecv = true;
    this.replaced = false;
    try {
      if (b !== this.filling) return KEEP; // cannot happen: C fills only what JS gave it
      this.fillCount = count;
      if (count === this.ring.layout.slots || this.partialGoes()) this.hand();
      return this.replaced ? this.filling : KEEP;
    } finally {
      this.inRecv = false;
    }
  };

  kick(): void {
    if (this.filling >= 0 && this.partialGoes()) this.hand();
  }

  /**
   * Does the partial batch go now? When stopping, always; else when the sink agrees and
   * another batch is free to fill next. Without a free batch, handing a partial one only
   * turns the next arrivals into `overload` while it waits for its turn at the in-order
   * collector, so it keeps filling instead (until full, or a batch comes back: then
   * {@link kick}). Measured: at 40 k/s (2-core VM, loaded) the native lane hands 1–2
   * datagrams per wake-up, and one pooled batch ahead in the collector used up every
   * batch — 41 `overload` per 45 000 datagrams before this rule.
   */
  private partialGoes(): boolean {
    const n = this.fillCount;
    return n > 0 && (this.stopping || (this.ring.freeCount > 0 && this.sink!.takePartial(this, n)));
  }

  /** Tell C which batch to fill (from slot 0): now, or as `onRecv`'s result. */
  private setFilling(b: number): void {
    this.filling = b;
    this.fillCount = 0;
    if (this.inRecv) this.replaced = true;
    else if (!this.closed) this.native.laneFill(this.h, b);
  }

  private hand(): void {
    const b = this.filling;
    const n = this.fillCount;
    this.setFilling(-1); // C must not write into b once it is verified
    this.outstanding++;
    this.ring.count[b] = n;
    this.sink!.filled(this, b, n);
    this.refill();
  }

  /** Give C a free batch when it has none (not while stopping). */
  private refill(): void {
    if (this.filling >= 0 || this.stopping || this.closed || this.sink === null) return;
    const b = this.ring.take();
    if (b >= 0) this.setFilling(b);
  }

  // ---- 5. send -------------------------------------------------------------------

  sendBatch(b: number): void {
    this.outstanding--;
    this.fifoPush(b);
    this.complete(this.native.laneSend(this.h, b, this.ring.count[b]!));
    this.checkDrained();
    this.kick();
  }

  /** {@link PacketLane.sendPacket}; refused (false, counted in `sendErrors`) before {@link start} and after {@link close}. */
  sendPacket(buf: Uint8Array, port: number, host: string, onSent: (err: Error | null) => void): boolean {
    this.lastOwnAt = NaN; // until this packet is known to have left during this call
    if (this.closed || !this.started) {
      // closed, or not started: C would refuse it (a RangeError before attach), so it is refused here, counted
      this.refused++;
      return false;
    }
    if (host !== this.lastHost) {
      // net.isIP allocates a match array on every call: once per host, not per packet
      this.lastHost = host;
      this.lastHostIsIp = isIP(host) !== 0;
    }
    if (!this.lastHostIsIp) return this.sendToName(buf, port, host, onSent);
    this.fifoPush(-1);
    this.packetDone.push(onSent);
    const ownRefused = this.c[C_OWN_REFUSED]!;
    const done = this.native.laneSendTo(this.h, buf, 0, buf.length, host, port);
    if (done < 0) {
      this.fifoLen--; // not queued: undo
      this.packetDone.pop();
      this.refused++;
      return false;
    }
    this.ownQueued++;
    // C sends own packets in FIFO order: this one left during the call when C is done with
    // every own packet queued so far and refused no own packet (a REPLY refused in the same
    // call says nothing about this packet: C_OWN_REFUSED, not C_SEND_ERRORS)
    this.lastOwnAt = this.c[C_OWN_N] === this.ownQueued && this.c[C_OWN_REFUSED] === ownRefused ? this.c[C_OWN_AT]! : NaN;
    this.complete(done);
    return true;
  }

  /** C copies an own packet's bytes in `laneSendTo` and completes its FIFO in order ({@link PacketLane.copiesOwnPackets}). */
  readonly copiesOwnPackets = true;

  /** The last host {@link sendPacket} saw, and whether it is an IP literal. */
  private lastHost = '';
  private lastHostIsIp = false;

  /**
   * {@link sendPacket} to a host name (rare: own packets go to addresses): resolved first,
   * then queued behind whatever is queued by then. A method of its own, so that the
   * variables its closures capture do not cost {@link sendPacket} a context object per call.
   */
  private sendToName(buf: Uint8Array, port: number, host: string, onSent: (err: Error | null) => void): boolean {
    dnsp.lookup(host, { family: this.bound.family === 'IPv6' ? 0 : 4 }).then(
      (r) => {
        if (!this.sendPacket(buf, port, r.address, onSent)) onSent(new DtmeshError(`cannot send to ${host}`));
      },
      (e: Error) => {
        this.refused++;
        onSent(e);
      },
    );
    return true;
  }

  /** Own packets handed to C (see {@link lastOwnSentUs}). */
  private ownQueued = 0;
  private lastOwnAt = NaN;

  /**
   * Engine-clock µs taken by C right before the `sendto` of the packet of the last
   * {@link sendPacket} call, when it left during that call (MEASUREMENT.md §1: the send
   * time, at the send call); NaN when it was queued (the socket would block), refused, or
   * not sent through this lane yet.
   */
  get lastOwnSentUs(): number {
    return this.lastOwnAt;
  }

  /** C completed more of its send FIFO while the socket was writable again. */
  private readonly onSent = (n: number): void => {
    this.complete(n);
    this.checkDrained();
    this.kick();
  };

  /** Own packets C reported done, and refused, as far as {@link noteOwnOutcomes} took them in. */
  private ownDoneSeen = 0;
  private ownRefusedSeen = 0;
  /** Outcome of each own packet C is done with and whose callback has not run yet, in FIFO order: null = it left, else why not. */
  private readonly ownOutcomes: Array<Error | null> = [];

  /**
   * After every C call that can send (laneSend, laneSendTo, the sent callback): the own
   * packets C finished in it, in order. C ends a call at a refused own packet, so a refusal
   * is always the last own packet of the call that reported it.
   */
  private noteOwnOutcomes(): void {
    const done = this.c[C_OWN_N]! - this.ownDoneSeen;
    const refused = this.c[C_OWN_REFUSED]! - this.ownRefusedSeen;
    for (let k = 0; k < done; k++) this.ownOutcomes.push(refused > 0 && k === done - 1 ? sendRefused(this.c[C_OWN_ERRNO]!) : null);
    this.ownDoneSeen += done;
    this.ownRefusedSeen += refused;
  }

  /** Handle `n` more completed FIFO entries, oldest first: a batch is free again and its unit done; an own packet's callback runs (with the kernel's refusal, if it refused). */
  private complete(n: number): void {
    this.noteOwnOutcomes();
    this.completedUnhandled += n;
    if (this.completing) return; // the loop below is running further up the stack: it takes these too, in order
    this.completing = true;
    try {
      while (this.completedUnhandled > 0) {
        this.completedUnhandled--;
        const v = this.fifo[this.fifoHead]!;
        this.fifoHead = (this.fifoHead + 1) % this.fifo.length;
        this.fifoLen--;
        if (v >= 0) {
          this.ring.release(v);
          this.sink!.sent(this);
        } else this.packetDone.shift()!(this.ownOutcomes.shift() ?? null);
      }
    } finally {
      this.completing = false;
    }
    this.refill();
  }

  private fifoPush(v: number): void {
    if (this.fifoLen === this.fifo.length) {
      // only queued own packets grow it (rare): copy in order
      const next = new Int32Array(this.fifo.length * 2);
      for (let i = 0; i < this.fifoLen; i++) next[i] = this.fifo[(this.fifoHead + i) % this.fifo.length]!;
      this.fifo = next;
      this.fifoHead = 0;
    }
    this.fifo[(this.fifoHead + this.fifoLen) % this.fifo.length] = v;
    this.fifoLen++;
  }

  // ---- drain and close -------------------------------------------------------------

  stop(): void {
    this.stopping = true;
    if (this.filling >= 0) {
      if (this.fillCount > 0) this.hand();
      else {
        const b = this.filling;
        this.setFilling(-1);
        this.ring.release(b); // taken in advance, nothing in it
      }
    }
    this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.stopping || this.drainedSent || this.filling >= 0 || this.outstanding > 0 || this.fifoLen > 0) return;
    this.drainedSent = true;
    this.sink!.drained(this);
  }

  /**
   * Close the socket now (its fd is closed before this returns); sends still queued are dropped.
   * Required once {@link start} ran: from then on C holds strong references to this lane's
   * callbacks (and so to the lane), so a lane dropped without `close()` is never collected and
   * its socket stays open until the thread exits (the addon's cleanup hook closes it then).
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.native.laneClose(this.h);
    }
    return Promise.resolve();
  }
}

// ---- choosing a lane (ENGINE.md "Lanes": `lane: 'auto' | 'native' | 'dgram'`) ------------

/** The lanes there are. */
export type LaneKind = 'native' | 'dgram';
/** What the `lane` option may ask for: `auto` = native where it was built (Linux), else dgram. */
export type LaneChoice = 'auto' | LaneKind;

/**
 * The lane `asked` resolves to here, with one line when `auto` fell back to dgram
 * (`note`). Throws a {@link DtmeshError} (one line) when `native` is asked for where it
 * is not available.
 */
export function resolveLane(asked: LaneChoice, status: string = nativeLaneStatus, available: boolean = nativeLane !== null): { kind: LaneKind; note: string | null } {
  if (asked === 'dgram') return { kind: 'dgram', note: null };
  if (available) return { kind: 'native', note: null };
  if (asked === 'native') throw new DtmeshError(`lane 'native' asked for, but the native lane is ${status}: use --lane dgram (or auto)`);
  return { kind: 'dgram', note: `native lane ${status}: using the dgram lane` };
}

/** Socket options of every lane of an engine (the engine's own and its socket threads'). */
export interface LaneSocketOptions {
  kind: LaneKind;
  /** -1 = the system's. */
  ttl: number;
  /** -1 = the system's; native lane only (the engine refuses it on dgram). */
  dscp: number;
  /** 0 = the system's; native lane only. */
  sendBufferBytes: number;
  /** UDP GSO for REPLYs; native lane only (the engine refuses it on dgram). */
  gso: boolean;
}

/** Open a lane of `o.kind` (TTL set on either kind). Throws a one-line {@link DtmeshError}. */
export async function openLane(base: NativeLaneOptions, o: LaneSocketOptions): Promise<DgramLane | NativeLane> {
  if (o.kind === 'native') {
    return NativeLane.open({ ...base, ttl: o.ttl >= 0 ? o.ttl : undefined, dscp: o.dscp >= 0 ? o.dscp : undefined, sendBufferBytes: o.sendBufferBytes, gso: o.gso });
  }
  const lane = await DgramLane.open(base);
  if (o.ttl >= 0) {
    try {
      lane.udpSocket.setTTL(o.ttl);
    } catch (e) {
      await lane.close();
      throw new DtmeshError(`cannot set the TTL to ${o.ttl}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return lane;
}
