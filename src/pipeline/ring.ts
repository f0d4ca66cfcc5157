/**
 * The batch ring (ENGINE.md "batch ring (SharedArrayBuffer slots)"): preallocated
 * SharedArrayBuffer batches that a lane fills (one copy per datagram), workers verify in
 * place, and the collector drains in dispatch order. Every thread that touches the ring
 * holds its own `BatchRing` view of the same memory: the lane's free list covers only
 * the batches that lane owns, and each slot's remote address stays on the lane's thread
 * (plain arrays holding the strings `dgram` already made).
 *
 * On the engine's thread a batch moves FREE → FILLING (its lane) → VERIFYING (dispatch)
 * → VERIFIED (pool or inline) → SENDING (collected, back with its lane) → FREE (its
 * REPLYs left). Only the engine's thread reads these states, so they are plain memory,
 * not atomics; the hand-offs between threads are messages carrying the batch index.
 */
import { BatchLayout, F_UNANSWERABLE, M_FLAGS, M_LENGTH } from './layout.js';
import { unanswerable } from './udp.js';

/** Not in use. */
export const B_FREE = 0;
/** Receiving datagrams. */
export const B_FILLING = 1;
/** Handed to the pool. */
export const B_VERIFYING = 2;
/** Verified, waiting for its turn at the in-order collector. */
export const B_VERIFIED = 3;
/** Collected; waiting for its replies to leave the socket before reuse. */
export const B_SENDING = 4;

/** The ring and its bookkeeping. */
export class BatchRing {
  /** Offsets. */
  readonly layout: BatchLayout;
  /** The shared memory. */
  readonly sab: SharedArrayBuffer;
  /** Int32 view (headers, slot metadata). */
  readonly ints: Int32Array;
  /** Float64 view (receive times). */
  readonly times: Float64Array;
  /** Byte view, a Buffer so dgram can send straight from it. */
  readonly bytes: Buffer;
  /** State of each batch (`B_*`). */
  readonly state: Uint8Array;
  /** Filled slot count of each batch. */
  readonly count: Int32Array;
  /** Remote address of each global slot. */
  readonly addr: string[];
  /** Remote port of each global slot. */
  readonly port: Int32Array;
  private readonly free: Int32Array;
  private freeTop: number;
  private readonly order: Int32Array; // batch indices in dispatch order (circular)
  private orderHead = 0;
  private orderLen = 0;

  /**
   * `owned` (default all): batches `firstOwned … firstOwned+owned-1` are this thread's
   * lane's to fill; the rest belong to the other lanes (`serve --sockets`), each with its
   * own view of the same memory (`sab`, made here when not given).
   */
  constructor(batches: number, slots: number, maxDatagram: number, readonly owned = batches, sab?: SharedArrayBuffer, readonly firstOwned = 0) {
    this.layout = new BatchLayout(batches, slots, maxDatagram);
    this.sab = sab ?? new SharedArrayBuffer(this.layout.byteLength);
    this.ints = new Int32Array(this.sab);
    this.times = new Float64Array(this.sab);
    this.bytes = Buffer.from(this.sab);
    this.state = new Uint8Array(batches);
    this.count = new Int32Array(batches);
    this.addr = new Array<string>(batches * slots).fill('');
    this.port = new Int32Array(batches * slots);
    this.free = new Int32Array(batches);
    for (let b = 0; b < owned; b++) this.free[b] = firstOwned + owned - 1 - b;
    this.freeTop = owned;
    this.order = new Int32Array(batches);
  }

  /** Number of free batches. */
  get freeCount(): number {
    return this.freeTop;
  }

  /** Take a free batch for filling, or -1 when every batch is in flight. */
  take(): number {
    if (this.freeTop === 0) return -1;
    const b = this.free[--this.freeTop]!;
    this.state[b] = B_FILLING;
    this.count[b] = 0;
    return b;
  }

  /**
   * Copy one datagram into the next slot of filling batch `b` (the one copy ENGINE.md
   * allows). Bytes beyond the slot are not copied: such a datagram is longer than
   * `maxDatagram` and is judged `malformed` by length alone. Returns the new count.
   */
  put(b: number, msg: Uint8Array, recvUs: number, address: string, port: number): number {
    const i = this.count[b]!;
    const s = this.layout.slotNumber(b, i);
    writeSlot(this.layout, this.ints, this.times, this.bytes, s, msg, recvUs, unanswerable(address, port));
    this.addr[s] = address;
    this.port[s] = port;
    this.count[b] = i + 1;
    return i + 1;
  }

  /** Record that `b` was handed to the pool (dispatch order = collect order). */
  dispatched(b: number): void {
    this.state[b] = B_VERIFYING;
    this.order[(this.orderHead + this.orderLen) % this.order.length] = b;
    this.orderLen++;
  }

  /** The oldest dispatched, not yet collected batch, or -1. */
  head(): number {
    return this.orderLen === 0 ? -1 : this.order[this.orderHead]!;
  }

  /** Remove the head from the dispatch order (it is being collected). */
  popHead(): void {
    this.orderHead = (this.orderHead + 1) % this.order.length;
    this.orderLen--;
  }

  /** Return `b` to the free list. */
  release(b: number): void {
    this.state[b] = B_FREE;
    this.free[this.freeTop++] = b;
  }
}

/**
 * Copy one received datagram into global slot `s`: length, cleared flags, receive time,
 * bytes (the one copy ENGINE.md allows; a datagram longer than the slot keeps only its
 * length and is judged `malformed`). Shared by every lane (the engine's own and the extra
 * socket threads of `serve --sockets`). `noReply` marks a source no reply can go to
 * ({@link F_UNANSWERABLE}: judged `malformed` before any crypto). No allocation.
 */
export function writeSlot(layout: BatchLayout, ints: Int32Array, times: Float64Array, bytes: Uint8Array, s: number, msg: Uint8Array, recvUs: number, noReply: boolean): void {
  const mi = layout.metaIndex(s);
  ints[mi + M_LENGTH] = msg.length;
  ints[mi + M_FLAGS] = noReply ? F_UNANSWERABLE : 0;
  times[layout.timeIndex(s)] = recvUs;
  if (msg.length <= layout.slotBytes) bytes.set(msg, layout.datagramOffset(s));
}

/**
 * The REPLY of global slot `s` (`len` bytes at `bytes[off]`) as a Buffer view to send,
 * kept per slot and remade only when the length changes: `send(buf, offset, length, …)`
 * would make a new view for every datagram. Probes of one size reuse one view per slot.
 */
export function replyView(views: Array<Buffer | undefined>, bytes: Buffer, off: number, s: number, len: number): Buffer {
  let v = views[s];
  if (v === undefined || v.length !== len) {
    v = bytes.subarray(off, off + len);
    views[s] = v;
  }
  return v;
}
