/**
 * Stage 5's order, sequential on the engine's thread: the reply sender (PROTOCOL.md §3
 * "every packet an agent sends takes the next value of that agent's single outgoing
 * nonce counter … packets leave in nonce order — across every socket"). It owns the
 * {@link SendOrder} of every lane, the nonce of the last packet put in it, and the
 * agent's own packets:
 *
 * - a REPLY the collector accepts gets the nonce reserved for it at dispatch — unless an
 *   own packet took a larger one since, then a fresh nonce and a fresh MAC here
 *   ({@link resign}; rare) — and is marked `F_SEND`;
 * - a collected batch becomes one send unit of the lane that received it;
 * - an own packet (PROBE, punch burst) is signed under the next nonce and the newest
 *   pair key and becomes a unit of the engine's own lane.
 *
 * A unit starts once every earlier unit on another socket completed, so the wire sees
 * the nonces in order; with one socket nothing ever waits.
 */
import type { KeyTable } from '../keys/keytable.js';
import { KE_RAW_CUR, KE_STATE_CUR } from '../keys/table-layout.js';
import type { NonceCounter } from '../keys/nonce.js';
import { nowUs } from '../clock.js';
import { writeHeader, writeU64Number } from '../protocol/codec.js';
import { senderIdOf } from '../protocol/ids.js';
import { macSeal } from '../protocol/mac.js';
import { MIN_DATAGRAM, OFF_NONCE, OFF_PAYLOAD, OFF_SENDER_ID } from '../protocol/wire.js';
import type { Lane, PacketLane } from './lane.js';
import { F_SEND, H_NONCE_HI, H_NONCE_LO, M_ENTRY, M_FLAGS, M_LENGTH } from './layout.js';
import type { BatchRing } from './ring.js';
import { SendOrder } from './sendorder.js';

const TWO_32 = 4294967296;

/** The reply sender; see the file header. */
export class ReplySender {
  /** REPLYs re-signed on this thread because an own packet took a later nonce first (rare). */
  resigned = 0;
  /** Lanes by index, as their batches were collected ({@link SendOrder.submitBatch} carries the index only). */
  private readonly lanes: Lane[] = [];
  private readonly order = new SendOrder((lane, b) => this.lanes[lane]!.sendBatch(b));
  private lastSentNonce = 0;
  private readonly peerIds = new Map<string, Uint8Array>();

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
    /** An own packet refused after {@link sendPacket} returned its nonce (its type byte, target agent and probe_id); counted in `send_errors` by the lane. */
    private readonly ownFailed: (type: number, agent: string, probeId: number, err: Error) => void = () => undefined,
  ) {}

  /** Units not yet completed (the pipeline is idle only at 0). */
  get pending(): number {
    return this.order.pending;
  }

  /** The accepted PROBE of slot `s` (index `i` of batch `b`): its REPLY's nonce, in order, and the mark to send it. */
  reply(b: number, s: number, i: number): void {
    const { layout, ints } = this.ring;
    const h = layout.headerIndex(b);
    let nonce = (ints[h + H_NONCE_HI]! >>> 0) * TWO_32 + (ints[h + H_NONCE_LO]! >>> 0) + i;
    if (nonce <= this.lastSentNonce) nonce = this.resign(s);
    this.lastSentNonce = nonce;
    const mi = layout.metaIndex(s);
    ints[mi + M_FLAGS] = ints[mi + M_FLAGS]! | F_SEND;
  }

  /** A REPLY whose reserved nonce was overtaken by an own packet: fresh nonce, fresh MAC here. */
  private resign(s: number): number {
    const { layout, ints, bytes } = this.ring;
    const off = layout.replyOffset(s);
    const len = ints[layout.metaIndex(s) + M_LENGTH]!;
    const nonce = this.nonces.take();
    writeU64Number(bytes, off + OFF_NONCE, nonce);
    // The pinned half may have been rewritten since; look the requester up in the active half.
    const req = layout.datagramOffset(s);
    const k2 = this.keyTable.lookup(bytes.subarray(req + OFF_SENDER_ID, req + OFF_SENDER_ID + 8));
    const k = k2 >= 0 ? k2 : ints[layout.metaIndex(s) + M_ENTRY]!;
    macSeal(this.keyTable.keys, k + KE_STATE_CUR, bytes, off, len, this.keyTable.keyBytes, (k + KE_RAW_CUR) * 4);
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
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be an integer from 1 to 65535, got ${port}`);
    let id = this.peerIds.get(agent);
    if (id === undefined) {
      id = senderIdOf(agent);
      this.peerIds.set(agent, id);
    }
    const k = this.keyTable.lookup(id);
    if (k < 0) throw new RangeError(`${agent} is not in the roster`);
    if (!Number.isInteger(size) || size < MIN_DATAGRAM || size > this.maxDatagram) {
      throw new RangeError(`size must be an integer from ${MIN_DATAGRAM} to ${this.maxDatagram}`);
    }
    const buf = Buffer.allocUnsafe(size);
    const nonce = this.nonces.take();
    writeHeader(buf, 0, type, this.selfId, nonce, probeId >>> 0, Math.floor(nowUs()));
    buf.fill(0, OFF_PAYLOAD, size);
    if (payload !== undefined) buf.set(payload.subarray(0, size - MIN_DATAGRAM), OFF_PAYLOAD);
    macSeal(this.keyTable.keys, k + KE_STATE_CUR, buf, 0, size, this.keyTable.keyBytes, (k + KE_RAW_CUR) * 4);
    this.lastSentNonce = nonce;
    // 0: this call is running; 1: it returned the nonce; 2: refused while it ran (returns -1).
    // A refusal after the return goes to ownFailed, named by this packet's own callback —
    // lanes may complete a packet whose host needed a lookup after later ones.
    let state = 0;
    this.order.submit(0, () => {
      const handed = this.own.sendPacket(buf, port, host, (err) => {
        if (err) {
          if (state === 0) state = 2;
          else this.ownFailed(type, agent, probeId >>> 0, err);
        }
        this.order.complete(0);
        this.after();
      });
      if (!handed) {
        if (state === 0) state = 2;
        else this.ownFailed(type, agent, probeId >>> 0, new Error('refused by Node at once (socket closed, or an address of the other family)'));
        this.order.complete(0);
      }
    });
    if (state === 2) return -1;
    state = 1;
    return nonce;
  }
}
