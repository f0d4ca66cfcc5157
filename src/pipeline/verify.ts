/**
 * Stage 3, parallel: verify one batch in place (ENGINE.md "Workers"). Runs inside each
 * piscina worker (workers/verify.ts) and, in tests, on the main thread.
 *
 * For every slot: the stateless checks (PROTOCOL.md §4 u1–c3) write a verdict; a PROBE
 * that passed gets its REPLY signed into the slot's reply area (PROTOCOL.md §3), under
 * the nonce reserved for it at dispatch (`H_NONCE_*` + slot index), so that replies
 * leave in nonce order once the in-order collector releases them. Nothing is
 * allocated per datagram.
 */
import { inspect } from 'node:util';
import { OFF_NONCE, OFF_SEND_TS, OFF_SENDER_ID, OFF_TYPE, SENDER_ID_LEN, TYPE_PROBE, TYPE_REPLY } from '../protocol/wire.js';
import { BatchLayout, F_PRE_START, F_REPLY, F_UNANSWERABLE, H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_ENTRY, M_FLAGS, M_LENGTH, M_NONCE_HI, M_NONCE_LO, M_PEER, M_TYPE, M_VERDICT } from './layout.js';
import { KE_RAW_CUR, KE_STATE_CUR } from '../keys/table-layout.js';
import { clockCell, clockTick } from '../clock.js';
import { readU32, writeU64Number } from '../protocol/codec.js';
import { BoundMac } from '../protocol/mac.js';
import { checkDatagram, ReceiveResult, type ReceiveContext } from '../protocol/receive.js';
import { V_BAD_MAC, V_MALFORMED, V_PENDING_REPLAY, V_STALE, V_UNKNOWN_SENDER } from '../protocol/verdict.js';

const TWO_32 = 4294967296;

/** Everything a worker needs, passed once as piscina `workerData` (structured-clonable). */
export interface VerifyConfig {
  /** The batch ring. */
  batchSab: SharedArrayBuffer;
  /** Batches in the ring. */
  batches: number;
  /** Slots per batch. */
  slots: number;
  /** Largest accepted datagram. */
  maxDatagram: number;
  /** The key table. */
  keySab: SharedArrayBuffer;
  /** Entries per key-table half. */
  keyCapacity: number;
  /** This agent's sender_id (8 bytes). */
  selfId: Uint8Array;
  /** Clock window, µs. */
  clockWindowUs: number;
  /** Receiver start, µs since the Unix epoch. */
  startUs: number;
}

/** Verifies batches of one ring; all views made once. */
export class BatchVerifier {
  private readonly layout: BatchLayout;
  private readonly ints: Int32Array;
  private readonly times: Float64Array;
  private readonly bytes: Uint8Array;
  private readonly ctx: ReceiveContext;
  private readonly selfId: Uint8Array;
  private readonly mac: BoundMac;
  /** The checks' findings for the datagram at hand (reused: one datagram at a time on this thread). */
  private readonly result = new ReceiveResult();
  /**
   * The batch's first REPLY nonce and its `send_ts_us`, for {@link signReply}: floats go
   * through this array, not as arguments, because a float argument to a call the JIT
   * does not inline is boxed on the heap: two numbers, 32 bytes, per REPLY whenever
   * `signReply` is not inlined into {@link run}.
   */
  private readonly replyNums = new Float64Array(2);

  /** `util.inspect` / `console.log`: the ring's shape only — its views cover the key table's pair keys and HMAC states (PROTOCOL.md §1: never printed). */
  [inspect.custom](): string {
    return `BatchVerifier { batches: ${this.layout.batches}, slots: ${this.layout.slots} }`;
  }

  /**
   * `table` replaces `cfg.keySab` for a verifier that judges under a key table of the
   * engine thread's own (its `KeyTable.own` and byte view, read as half 0): the
   * collector's {@link rejudge} under the newest roster.
   */
  constructor(cfg: VerifyConfig, table?: { keys: Int32Array; keyBytes: Uint8Array }) {
    this.layout = new BatchLayout(cfg.batches, cfg.slots, cfg.maxDatagram);
    this.ints = new Int32Array(cfg.batchSab);
    this.times = new Float64Array(cfg.batchSab);
    this.bytes = new Uint8Array(cfg.batchSab);
    this.selfId = new Uint8Array(cfg.selfId);
    const keyBytes = table?.keyBytes ?? new Uint8Array(cfg.keySab);
    const keys = table?.keys ?? new Int32Array(cfg.keySab);
    this.mac = new BoundMac(keys, keyBytes, this.bytes);
    this.ctx = {
      keys,
      keyBytes,
      mac: this.mac,
      capacity: cfg.keyCapacity,
      selfHi: readU32(this.selfId, 0) | 0,
      selfLo: readU32(this.selfId, 4) | 0,
      maxDatagram: cfg.maxDatagram,
      clockWindowUs: cfg.clockWindowUs,
      startUs: cfg.startUs,
    };
  }

  /**
   * Verify batch `b` in place; returns the number of slots judged. `replyTsUs` pins the
   * `send_ts_us` written into every REPLY (tests); otherwise each REPLY gets the clock
   * read right after its PROBE was verified.
   */
  run(b: number, replyTsUs?: number): number {
    const { layout, ints } = this;
    const h = layout.headerIndex(b);
    const count = ints[h + H_COUNT]!;
    const half = ints[h + H_KEY_HALF]!;
    this.firstNonce(h);
    const pinned = replyTsUs !== undefined;
    if (pinned) this.replyNums[1] = replyTsUs;
    for (let i = 0; i < count; i++) this.judge(layout.slotNumber(b, i), i, half, pinned);
    return count;
  }

  /**
   * Judge batch `b` again under half `half` of this verifier's table, on the engine's
   * thread: every slot whose verdict depends on the roster or the keys (`unknown_sender`,
   * `bad_mac`, `stale` — c3 comes after c1 and c2 — and those that passed: a member
   * removed or a root retired since is dropped now). The collector calls it, on a verifier over `KeyTable.own`, for a
   * batch whose pinned half holds an older roster than the newest published — a publish
   * that had to wait for a free half — so that no datagram is judged under a roster the
   * engine has already replaced (PROTOCOL.md §4 c1/c2 under the newest roster and grace,
   * §1). A REPLY signed here is re-signed on its way out anyway (its half is superseded).
   * Returns how many verdicts changed.
   */
  rejudge(b: number, half: number): number {
    const { layout, ints } = this;
    const h = layout.headerIndex(b);
    const count = ints[h + H_COUNT]!;
    this.firstNonce(h);
    let changed = 0;
    for (let i = 0; i < count; i++) {
      const s = layout.slotNumber(b, i);
      const was = ints[layout.metaIndex(s) + M_VERDICT]!;
      // c1, c2, c3 and passed: the checks a roster or key change can move (c3 too, as it is
      // tested after c1 and c2: a removed sender's stale datagram is unknown_sender)
      if (was !== V_UNKNOWN_SENDER && was !== V_BAD_MAC && was !== V_STALE && was !== V_PENDING_REPLAY) continue;
      if (this.judge(s, i, half, false) !== was) changed++;
    }
    return changed;
  }

  /** The first REPLY nonce reserved for the batch of header `h` into {@link replyNums}. */
  private firstNonce(h: number): void {
    const ints = this.ints;
    this.replyNums[0] = (ints[h + H_NONCE_HI]! >>> 0) * TWO_32 + (ints[h + H_NONCE_LO]! >>> 0);
  }

  /** Judge slot `s` (index `i` of its batch) under key-table half `half`: its verdict into the slot's words, and a REPLY signed for a PROBE that passed. */
  private judge(s: number, i: number, half: number, pinned: boolean): number {
    const { layout, ints, times, bytes, ctx, result: r } = this;
    const mi = layout.metaIndex(s);
    const off = layout.datagramOffset(s);
    const len = ints[mi + M_LENGTH]!;
    // u1: a source no reply can go to is malformed before any crypto (PROTOCOL.md §4)
    const v = (ints[mi + M_FLAGS]! & F_UNANSWERABLE) !== 0 ? V_MALFORMED : checkDatagram(ctx, half, bytes, off, len, times, layout.timeIndex(s), r);
    ints[mi + M_VERDICT] = v;
    if (v !== V_PENDING_REPLAY) return v;
    // what the in-order collector needs, in the slot's words
    ints[mi + M_PEER] = r.peer;
    ints[mi + M_NONCE_HI] = r.nonceHi;
    ints[mi + M_NONCE_LO] = r.nonceLo;
    ints[mi + M_TYPE] = r.type;
    ints[mi + M_ENTRY] = r.entry;
    let flags = r.preStart ? F_PRE_START : 0;
    if (r.type === TYPE_PROBE) {
      // send_ts_us = the replier's clock when it signs, after this PROBE was verified
      // (PROTOCOL.md §3): read per REPLY, not once per batch — a batch's last REPLY is
      // signed up to a batch of MACs later. 33–36 ns a read (AMD EPYC VM, addon clock; bench:micro --only stages).
      if (!pinned) {
        clockTick();
        this.replyNums[1] = Math.floor(clockCell[0]!);
      }
      this.signReply(off, layout.replyOffset(s), len, i, r.entry);
      flags |= F_REPLY;
    }
    ints[mi + M_FLAGS] = flags;
    return v;
  }

  /**
   * REPLY to a verified PROBE (PROTOCOL.md §3): same probe_id and payload (so exactly
   * as long as the request), our sender_id, the batch's first nonce + `i`, the
   * `send_ts_us` in {@link replyNums}, a fresh MAC under the requester's current pair key
   * (entry word index `k`). Small-integer arguments only: nothing to box.
   */
  private signReply(req: number, rep: number, len: number, i: number, k: number): void {
    const bytes = this.bytes;
    bytes.copyWithin(rep, req, req + len);
    bytes[rep + OFF_TYPE] = TYPE_REPLY;
    for (let j = 0; j < SENDER_ID_LEN; j++) bytes[rep + OFF_SENDER_ID + j] = this.selfId[j]!;
    writeU64Number(bytes, rep + OFF_NONCE, this.replyNums[0]! + i);
    writeU64Number(bytes, rep + OFF_SEND_TS, this.replyNums[1]!);
    this.mac.seal(k + KE_STATE_CUR, (k + KE_RAW_CUR) * 4, rep, len);
  }

  /** Release the native MAC binding (the engine's own verifier, at close; workers end with their thread). */
  close(): void {
    this.mac.close();
  }
}
