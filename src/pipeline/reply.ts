/**
 * Stage 5's order, sequential on the engine's thread: the reply sender (PROTOCOL.md §3
 * "every packet an agent sends takes the next value of that agent's single outgoing
 * nonce counter … packets leave in nonce order — across every socket"). It owns the
 * {@link SendOrder} of every lane, the nonce of the last packet put in it, and the
 * agent's own packets:
 *
 * - a REPLY the collector accepts gets the nonce reserved for it at dispatch — unless an
 *   own packet took a larger one since, or a roster or root was published since (the
 *   worker signed under the superseded one; PROTOCOL.md §1 sends under the newest), then
 *   a fresh nonce and a fresh MAC here ({@link resign}; rare) — and is marked `F_SEND`;
 * - a collected batch becomes one send unit of the lane that received it;
 * - an own packet (PROBE, punch burst) is signed under the next nonce and the newest
 *   pair key and becomes a unit of the engine's own lane.
 *
 * A unit starts once every earlier unit on another socket completed, so the wire sees
 * the nonces in order; with one socket nothing ever waits.
 */
import { isIP } from 'node:net';
import type { KeyTable } from '../keys/keytable.js';
import { KE_RAW_CUR, KE_STATE_CUR } from '../keys/table-layout.js';
import type { NonceCounter } from '../keys/nonce.js';
import { clockCell, clockTick, nowUs } from '../clock.js';
import { writeHeaderHalves, writeU64Number } from '../protocol/codec.js';
import { senderIdOf } from '../protocol/ids.js';
import { macSeal } from '../protocol/mac.js';
import { MIN_DATAGRAM, OFF_NONCE, OFF_PAYLOAD, OFF_SEND_TS, OFF_SENDER_ID } from '../protocol/wire.js';
import type { Lane, PacketLane } from './lane.js';
import { F_SEND, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_FLAGS, M_LENGTH } from './layout.js';
import type { BatchRing } from './ring.js';
import { SendOrder } from './sendorder.js';

const TWO_32 = 4294967296;
/** Most agent names whose sender_id {@link ReplySender.send} keeps (a roster is at most `maxPeers`; beyond this, computed per send). */
const PEER_ID_CACHE_MAX = 65_536;

/**
 * Own packets of the reply sender's allocation-free path ({@link PacketLane.copiesOwnPackets}),
 * oldest first, from their submission to their completion: a ring of parallel arrays
 * (grown only past an earlier peak). They start in the order they were submitted (the
 * send order starts a lane's units in order) and complete in the order they started (the
 * lane's own FIFO); one refused at its start completes then and is skipped later.
 */
class OwnQueue {
  private cap = 16;
  type = new Int32Array(this.cap);
  port = new Int32Array(this.cap);
  probeId = new Uint32Array(this.cap);
  /** The packet's number in {@link ReplySender}'s own count (identifies its {@link ReplySender.send} call). */
  seq = new Int32Array(this.cap);
  /** 1: refused at its start, already completed. */
  skip = new Uint8Array(this.cap);
  agent: string[] = new Array<string>(this.cap).fill('');
  host: string[] = new Array<string>(this.cap).fill('');
  /** The packet's own copy of its bytes, when its start had to wait; null: it starts from the shared buffer at once. */
  kept: Array<Buffer | null> = new Array<Buffer | null>(this.cap).fill(null);
  private head = 0;
  private len = 0;
  private nStarted = 0;

  push(type: number, agent: string, host: string, port: number, probeId: number, seq: number, kept: Buffer | null): void {
    if (this.len === this.cap) this.grow();
    const k = (this.head + this.len) % this.cap;
    this.type[k] = type;
    this.agent[k] = agent;
    this.host[k] = host;
    this.port[k] = port;
    this.probeId[k] = probeId;
    this.seq[k] = seq;
    this.skip[k] = 0;
    this.kept[k] = kept;
    this.len++;
  }

  /** The oldest packet not started yet (there is one: the send order starts one unit per packet). */
  startNext(): number {
    const k = (this.head + this.nStarted) % this.cap;
    this.nStarted++;
    return k;
  }

  /** The oldest started packet that has not completed; remove it with {@link pop}. */
  oldestDone(): number {
    this.popSkipped();
    return this.head;
  }

  /** Remove the oldest packet (and the refused-at-start ones behind it). */
  pop(): void {
    this.kept[this.head] = null;
    this.head = (this.head + 1) % this.cap;
    this.len--;
    this.nStarted--;
    this.popSkipped();
  }

  /** Packet `k` was refused at its start: completed now, skipped by {@link oldestDone}. */
  refusedAtStart(k: number): void {
    this.skip[k] = 1;
    this.kept[k] = null;
    this.popSkipped();
  }

  private popSkipped(): void {
    while (this.nStarted > 0 && this.skip[this.head] === 1) {
      this.head = (this.head + 1) % this.cap;
      this.len--;
      this.nStarted--;
    }
  }

  private grow(): void {
    const cap = this.cap * 2;
    const type = new Int32Array(cap);
    const port = new Int32Array(cap);
    const probeId = new Uint32Array(cap);
    const seq = new Int32Array(cap);
    const skip = new Uint8Array(cap);
    const agent = new Array<string>(cap).fill('');
    const host = new Array<string>(cap).fill('');
    const kept = new Array<Buffer | null>(cap).fill(null);
    for (let i = 0; i < this.len; i++) {
      const k = (this.head + i) % this.cap;
      type[i] = this.type[k]!;
      port[i] = this.port[k]!;
      probeId[i] = this.probeId[k]!;
      seq[i] = this.seq[k]!;
      skip[i] = this.skip[k]!;
      agent[i] = this.agent[k]!;
      host[i] = this.host[k]!;
      kept[i] = this.kept[k]!;
    }
    this.type = type;
    this.port = port;
    this.probeId = probeId;
    this.seq = seq;
    this.skip = skip;
    this.agent = agent;
    this.host = host;
    this.kept = kept;
    this.cap = cap;
    this.head = 0;
  }
}

/** The reply sender; see the file header. */
export class ReplySender {
  /** REPLYs re-signed on this thread because an own packet took a later nonce first (rare). */
  resigned = 0;
  /** Lanes by index, as their batches were collected ({@link SendOrder.submitBatch} carries the index only). */
  private readonly lanes: Lane[] = [];
  private readonly order = new SendOrder((lane, b) => this.lanes[lane]!.sendBatch(b));
  private lastSentNonce = 0;
  private readonly peerIds = new Map<string, Uint8Array>();
  /** Own packets of the allocation-free path, submitted and not completed. */
  private readonly ownQ = new OwnQueue();
  /** The one buffer packets of that path are signed into, and its view of the last size asked for. */
  private readonly scratch: Buffer;
  private scratchView: Buffer;
  /** The last host {@link send} saw, and whether it is an IP literal (net.isIP once per host, not per packet). */
  private lastHost = '';
  private lastHostIsIp = false;
  /** The nonce of the last {@link send}'s packet (a typed array: see {@link send}). */
  private readonly sentNonce = new Float64Array(1);
  /** Own packets of the allocation-free path so far (wraps), and the number of the one whose {@link send} call is running (-1: none), and whether it was refused meanwhile. */
  private ownSeq = 0;
  private callingSeq = -1;
  private refusedInCall = false;

  constructor(
    private readonly ring: BatchRing,
    private readonly keyTable: KeyTable,
    private readonly nonces: NonceCounter,
    private readonly selfId: Uint8Array,
    private readonly maxDatagram: number,
    /** The engine's own lane: own packets leave there. */
    private readonly own: PacketLane,
    /** Runs after an own packet completed (the pipeline checks whether it drained). */
    private readonly after: () => void,
    /** An own packet refused after its {@link sendPacket} or {@link send} call returned (its type byte, target agent and probe_id); counted in `send_errors` by the lane. */
    private readonly ownFailed: (type: number, agent: string, probeId: number, err: Error) => void = () => undefined,
  ) {
    this.scratch = Buffer.alloc(Math.max(MIN_DATAGRAM, maxDatagram));
    this.scratchView = this.scratch.subarray(0, MIN_DATAGRAM);
  }

  /** Units not yet completed (the pipeline is idle only at 0). */
  get pending(): number {
    return this.order.pending;
  }

  /** The accepted PROBE of slot `s` (index `i` of batch `b`): its REPLY's nonce, in order, and the mark to send it. */
  reply(b: number, s: number, i: number): void {
    const { layout, ints } = this.ring;
    const h = layout.headerIndex(b);
    let nonce = (ints[h + H_NONCE_HI]! >>> 0) * TWO_32 + (ints[h + H_NONCE_LO]! >>> 0) + i;
    // A roster or root published since dispatch: the worker signed under the old one
    // (PROTOCOL.md §1: a REPLY always goes under the newest root).
    if (nonce <= this.lastSentNonce || this.keyTable.superseded(ints[h + H_KEY_HALF]!)) {
      nonce = this.resign(s);
      if (nonce < 0) return; // its requester is in no roster now: no REPLY (not marked, no nonce spent)
    }
    this.lastSentNonce = nonce;
    const mi = layout.metaIndex(s);
    ints[mi + M_FLAGS] = ints[mi + M_FLAGS]! | F_SEND;
  }

  /** A REPLY whose reserved nonce was overtaken by an own packet, or signed under a roster since superseded: fresh nonce, fresh `send_ts_us` (signed now, PROTOCOL.md §3), fresh MAC here; its nonce, or -1 when its requester is in no roster. */
  private resign(s: number): number {
    const { layout, ints, bytes } = this.ring;
    // Under the newest roster (the engine thread's own table). The requester is in it: its
    // batch was verified under a half holding the newest roster, or judged again under the
    // newest (collect.ts) — a requester removed since is `unknown_sender`, with no REPLY.
    // Should a publish ever come from inside a collection, -1: no REPLY, no nonce taken.
    const req = layout.datagramOffset(s);
    const t = this.keyTable;
    const k = t.lookup(bytes.subarray(req + OFF_SENDER_ID, req + OFF_SENDER_ID + 8));
    if (k < 0) return -1;
    const off = layout.replyOffset(s);
    const len = ints[layout.metaIndex(s) + M_LENGTH]!;
    const nonce = this.nonces.take();
    writeU64Number(bytes, off + OFF_NONCE, nonce);
    clockTick();
    writeU64Number(bytes, off + OFF_SEND_TS, Math.floor(clockCell[0]!));
    macSeal(t.own, k + KE_STATE_CUR, bytes, off, len, t.ownBytes, (k + KE_RAW_CUR) * 4);
    this.resigned++;
    return nonce;
  }

  /** Batch `b`, collected, goes back to `lane` to send its marked REPLYs, as one unit of the order. */
  batchCollected(lane: Lane, b: number): void {
    this.lanes[lane.index] = lane;
    this.order.submitBatch(lane.index, b);
  }

  /** `lane`'s oldest unit completed. */
  sent(lane: Lane): void {
    this.order.complete(lane.index);
  }

  /** `lane` is gone: its units will never complete. */
  laneFailed(lane: Lane): void {
    this.order.dropLane(lane.index);
  }

  /**
   * Sign an own packet of `type` to `agent` at `host:port`, `size` bytes (50 …
   * maxDatagram), under the next nonce and the newest pair key (PROTOCOL.md §3), and put
   * it in the order. Returns the nonce, or -1 when the send was refused during this call
   * (by Node, or by the kernel's `sendto` on the native lane; counted in `send_errors`); a
   * refusal after it returned (the dgram lane's callback, a send queued behind a full
   * buffer or another socket's REPLYs, a host name resolved first) goes to
   * {@link ownFailed}. Throws a `RangeError` for an agent not in the roster, a size or a
   * port out of range.
   */
  sendPacket(type: number, agent: string, host: string, port: number, probeId: number, size: number, payload?: Uint8Array): number {
    return this.send(type, agent, host, port, probeId, size, payload) ? this.sentNonce[0]! : -1;
  }

  /**
   * {@link sendPacket} without the nonce: true when the packet was sent or queued, false
   * when refused during this call. A float return value is a heap number on every call
   * V8 does not inline (16 bytes per PROBE): the prober's path takes this one. `probeId`
   * is a u32, or the same 32 bits as an int32.
   */
  send(type: number, agent: string, host: string, port: number, probeId: number, size: number, payload?: Uint8Array): boolean {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be an integer from 1 to 65535, got ${port}`);
    let id = this.peerIds.get(agent);
    if (id === undefined) id = senderIdOf(agent);
    const k = this.keyTable.lookup(id);
    if (k < 0) throw new RangeError(`${agent} is not in the roster`);
    // cached for roster members only: names the app tries that are not in it never pile up
    if (this.peerIds.size < PEER_ID_CACHE_MAX) this.peerIds.set(agent, id);
    if (!Number.isInteger(size) || size < MIN_DATAGRAM || size > this.maxDatagram) {
      throw new RangeError(`size must be an integer from ${MIN_DATAGRAM} to ${this.maxDatagram}`);
    }
    if (host !== this.lastHost) {
      this.lastHost = host;
      this.lastHostIsIp = isIP(host) !== 0;
    }
    // On a lane that copies the bytes at once and completes in order, sign into the shared
    // buffer and keep no closure: a Buffer, two closures and their context per packet were
    // most of the prober's young-generation collections (test/pipeline/alloc.test.ts).
    const fast = this.lastHostIsIp && this.own.copiesOwnPackets === true;
    const buf = fast ? this.scratchOf(size) : Buffer.allocUnsafe(size);
    const nonce = this.nonces.take();
    const ts = Math.floor(nowUs());
    // int32 halves: a float argument to a call V8 does not inline is a heap number each time
    writeHeaderHalves(buf, 0, type, this.selfId, Math.floor(nonce / TWO_32) | 0, (nonce % TWO_32) | 0, probeId | 0, Math.floor(ts / TWO_32) | 0, (ts % TWO_32) | 0);
    buf.fill(0, OFF_PAYLOAD, size);
    if (payload !== undefined) buf.set(payload.subarray(0, size - MIN_DATAGRAM), OFF_PAYLOAD);
    macSeal(this.keyTable.own, k + KE_STATE_CUR, buf, 0, size, this.keyTable.ownBytes, (k + KE_RAW_CUR) * 4);
    this.lastSentNonce = nonce;
    const ok = fast ? this.submitOwn(buf, type, agent, host, port, probeId | 0) : this.submitWithClosures(buf, type, agent, host, port, probeId >>> 0);
    this.sentNonce[0] = nonce; // after the submit: whatever ran inside it, this is the nonce of this call's packet
    return ok;
  }

  /**
   * {@link send}'s general path (false: refused during this call): the packet keeps its
   * own Buffer and callbacks. In a method of its own, so that the variables its closures
   * capture are not those of {@link send} — V8 gives a function whose variables a
   * closure captures a context object on every call, taken or not (so the allocation-free
   * path paid for one per packet before this was split off).
   */
  private submitWithClosures(buf: Buffer, type: number, agent: string, host: string, port: number, probeId: number): boolean {
    // 0: this call is running; 1: it returned; 2: refused while it ran (returns false).
    // A refusal after the return goes to ownFailed, named by this packet's own callback —
    // lanes may complete a packet whose host needed a lookup after later ones.
    let state = 0;
    this.order.submit(0, () => {
      const handed = this.own.sendPacket(buf, port, host, (err) => {
        if (err) {
          if (state === 0) state = 2;
          else this.ownFailed(type, agent, probeId, err);
        }
        this.order.complete(0);
        this.after();
      });
      if (!handed) {
        if (state === 0) state = 2;
        else this.ownFailed(type, agent, probeId, new Error('refused by Node at once (socket closed, or an address of the other family)'));
        this.order.complete(0);
      }
    });
    if (state === 2) return false;
    state = 1;
    return true;
  }

  /** The shared buffer's view of `size` bytes (a new view only when the size changes). */
  private scratchOf(size: number): Buffer {
    if (this.scratchView.length !== size) this.scratchView = this.scratch.subarray(0, size);
    return this.scratchView;
  }

  /**
   * {@link send}'s allocation-free path (false: refused during this call): the packet,
   * signed in the shared buffer, becomes a unit of the send order whose start is
   * {@link startOwn}. With nothing pending it starts within this call, before the buffer is
   * used again; behind pending units it waits with a copy of its bytes (the only
   * allocation, and only then).
   */
  private submitOwn(buf: Buffer, type: number, agent: string, host: string, port: number, probeId: number): boolean {
    const seq = this.ownSeq;
    this.ownSeq = (seq + 1) & 0x3fffffff;
    this.ownQ.push(type, agent, host, port, probeId, seq, this.order.pending > 0 ? Buffer.from(buf) : null);
    const outerSeq = this.callingSeq; // a packet sent from inside another's call (nested): restore its state after
    const outerRefused = this.refusedInCall;
    this.callingSeq = seq;
    this.refusedInCall = false;
    let refused: boolean;
    try {
      this.order.submit(0, this.startOwn);
    } finally {
      refused = this.refusedInCall;
      this.callingSeq = outerSeq;
      this.refusedInCall = outerRefused;
    }
    return !refused;
  }

  /** A unit of {@link submitOwn} starts: its packet goes to the lane (one callback for all, {@link ownSent}). */
  private readonly startOwn = (): void => {
    const q = this.ownQ;
    const k = q.startNext();
    const handed = this.own.sendPacket(q.kept[k] ?? this.scratchView, q.port[k]!, q.host[k]!, this.ownSent);
    if (!handed) {
      this.ownRefused(k, new Error('refused by Node at once (socket closed, or an address of the other family)'));
      q.refusedAtStart(k);
      this.order.complete(0);
    }
  };

  /** The lane is done with the oldest started packet of {@link submitOwn} (it left, or `err`). */
  private readonly ownSent = (err: Error | null): void => {
    const q = this.ownQ;
    const k = q.oldestDone();
    if (err) this.ownRefused(k, err);
    q.pop();
    this.order.complete(0);
    this.after();
  };

  /** Packet `k` of the queue was refused: false from its own {@link send} call if that is still running, else {@link ownFailed}. */
  private ownRefused(k: number, err: Error): void {
    const q = this.ownQ;
    if (q.seq[k] === this.callingSeq) this.refusedInCall = true;
    else this.ownFailed(q.type[k]!, q.agent[k]!, q.probeId[k]!, err);
  }
}
