/**
 * Stage 4, in order: the collector (ENGINE.md). Takes verified batches in dispatch
 * order, applies the replay check (PROTOCOL.md §5) — the one stateful check — so no
 * amount of parallel verification can reorder one sender's packets; finalises each
 * verdict, counts it, records receive→verdict latency, and hands on accepted packets
 * (REPLYs to send, REPLY and PUNCH_HINT deliveries) and then the batch itself, back to
 * the lane that received it (through the reply stage's send order).
 */
import { clockCell, clockTick } from '../clock.js';
import type { KeyTable } from '../keys/keytable.js';
import type { Lane } from './lane.js';
import { B_SENDING, B_VERIFIED, type BatchRing } from './ring.js';
import { TYPE_PROBE, TYPE_REPLY } from '../protocol/wire.js';
import { F_PRE_START, F_REPLY, H_KEY_HALF, M_FLAGS, M_NONCE_HI, M_NONCE_LO, M_PEER, M_TYPE, M_VERDICT } from './layout.js';
import type { ReplayFilter } from '../protocol/replay.js';
import type { Books } from '../observe/stats.js';
import type { BatchVerifier } from './verify.js';
import { V_ACCEPT, V_PENDING_REPLAY, V_REPLAY } from '../protocol/verdict.js';

/** What the collector does with accepted packets (global slot number `s`). */
export interface CollectSink {
  /** An accepted PROBE whose signed REPLY (slot reply area, `length` bytes) is ready. */
  reply(s: number, slotIndex: number): void;
  /** An accepted packet of another type (REPLY, PUNCH_HINT), or a PROBE without a reply. */
  deliver(s: number, type: number): void;
  /**
   * A REPLY that passed every check but the replay check (PROTOCOL.md §4 c4): authentic, a
   * copy of one already accepted — the network duplicated it (or someone replayed it). Still
   * counted `replay`; a prober counts it `duplicate` (MEASUREMENT.md §1).
   */
  duplicate?(s: number): void;
}

/**
 * Finalise batch `b`: replay check, counters, latency; accepted packets go to `sink`.
 * The verdict time is read once for the whole batch: the clock now, unless the caller
 * gives `nowUs` (tests pin it; a float argument may be boxed, so the engine does not).
 * Never throws per datagram.
 */
export function collectBatch(ring: BatchRing, b: number, filter: ReplayFilter, books: Books, sink: CollectSink, nowUs?: number): void {
  if (nowUs === undefined) {
    clockTick();
    collectAt(ring, b, filter, books, sink, clockCell);
  } else {
    pinnedNow[0] = nowUs;
    collectAt(ring, b, filter, books, sink, pinnedNow);
  }
}

/** A time given to {@link collectBatch} (tests). */
const pinnedNow = new Float64Array(1);

/** {@link collectBatch} at `nowCell[0]` (a typed array: the float is never merged with a boxed one). */
function collectAt(ring: BatchRing, b: number, filter: ReplayFilter, books: Books, sink: CollectSink, nowCell: Float64Array): void {
  const { layout, ints, times } = ring;
  const now = nowCell[0]!;
  const count = ring.count[b]!;
  const verdicts = books.verdicts;
  for (let i = 0; i < count; i++) {
    const s = layout.slotNumber(b, i);
    const mi = layout.metaIndex(s);
    let v = ints[mi + M_VERDICT]!;
    if (v === V_PENDING_REPLAY) {
      const flags = ints[mi + M_FLAGS]!;
      v = filter.check(ints[mi + M_PEER]!, ints[mi + M_NONCE_HI]!, ints[mi + M_NONCE_LO]!, (flags & F_PRE_START) !== 0);
      ints[mi + M_VERDICT] = v;
      if (v === V_ACCEPT) {
        const type = ints[mi + M_TYPE]!;
        if (type === TYPE_PROBE && (flags & F_REPLY) !== 0) sink.reply(s, i);
        else sink.deliver(s, type);
      } else if (v === V_REPLAY && ints[mi + M_TYPE] === TYPE_REPLY && sink.duplicate !== undefined) sink.duplicate(s);
    }
    verdicts[v]++;
    const lat = now - times[layout.timeIndex(s)]!;
    books.latency.recordValue(lat < 1 ? 1 : Math.round(lat));
  }
}

/** Where the {@link Collector} hands collected batches and accepted packets. */
export interface CollectOutput {
  /**
   * Slot `s` (index `i` of batch `b`) is an accepted PROBE whose REPLY waits in its reply
   * area: give it its nonce (in order) and mark it to be sent.
   */
  reply(b: number, s: number, i: number): void;
  /** Slot `s` is an accepted REPLY or PUNCH_HINT (read it now: the batch is reused after {@link collected}). */
  deliver(s: number, type: number): void;
  /** Slot `s` is an authentic REPLY dropped as `replay` ({@link CollectSink.duplicate}; read it now). */
  duplicate?(s: number): void;
  /** Batch `b` of `lane` is counted and unpinned: its REPLYs may go. */
  collected(lane: Lane, b: number): void;
  /** The collector caught up (nothing verified is waiting): a safe point for app code. */
  settled(): void;
}

/**
 * The in-order collector (stage 4). It owns the dispatch order (via the ring) and which
 * lane each batch came from; batches are collected strictly in dispatch order, however
 * the pool finishes them, so the replay check sees one sender's packets in the order
 * they arrived (PROTOCOL.md §5: zero false `replay` drops). Nothing it calls runs app
 * code: {@link CollectOutput.settled} marks where that may happen.
 */
export class Collector {
  private readonly laneOf: Array<Lane | null>;
  private collecting = false;
  private again = false;
  private current = -1;

  /** Batches judged again under the newest roster ({@link BatchVerifier.rejudge}). */
  rejudgedBatches = 0;
  /** Verdicts that changed when judged again (a peer added or removed, a root rotated, while its batch was in flight). */
  rejudgedVerdicts = 0;

  constructor(
    private readonly ring: BatchRing,
    private readonly filter: ReplayFilter,
    private readonly books: Books,
    private readonly keyTable: KeyTable,
    private readonly out: CollectOutput,
    /** A verifier over the engine thread's newest table (`KeyTable.own`, half 0). */
    private readonly newest: BatchVerifier,
  ) {
    this.laneOf = new Array<Lane | null>(ring.layout.batches).fill(null);
  }

  /** Batch `b` of `lane` was dispatched (its place in the order is now fixed). */
  expect(b: number, lane: Lane): void {
    this.laneOf[b] = lane;
    this.ring.dispatched(b);
  }

  /** Batch `b` is verified: collect every verified batch at the head of the order. */
  verified(b: number): void {
    this.ring.state[b] = B_VERIFIED;
    this.collect();
  }

  /** Batches dispatched and not yet collected. */
  get pending(): boolean {
    return this.ring.head() >= 0;
  }

  /** Inside a collection (app code must wait for {@link CollectOutput.settled}). */
  get busy(): boolean {
    return this.collecting;
  }

  private readonly sink: CollectSink = {
    reply: (s: number, i: number): void => {
      this.books.replied++;
      this.out.reply(this.current, s, i);
    },
    deliver: (s: number, type: number): void => this.out.deliver(s, type),
    duplicate: (s: number): void => this.out.duplicate?.(s),
  };

  private collect(): void {
    if (this.collecting) {
      this.again = true; // re-entered (a lane handed a batch verified inline): the loop below looks again
      return;
    }
    this.collecting = true;
    const ring = this.ring;
    try {
      do {
        this.again = false;
        for (let b = ring.head(); b >= 0 && ring.state[b] === B_VERIFIED; b = ring.head()) {
          ring.popHead();
          this.current = b;
          const half = ring.ints[ring.layout.headerIndex(b) + H_KEY_HALF]!;
          // judged under a half a later publish has replaced (it waited for a free half, or
          // came while the batch was in flight): judged again under the newest (rare)
          if (this.keyTable.superseded(half)) {
            this.rejudgedBatches++;
            this.rejudgedVerdicts += this.newest.rejudge(b, 0);
          }
          collectBatch(ring, b, this.filter, this.books, this.sink);
          this.keyTable.unpin(half);
          ring.state[b] = B_SENDING;
          const lane = this.laneOf[b]!;
          this.laneOf[b] = null;
          this.out.collected(lane, b);
        }
      } while (this.again);
    } finally {
      this.collecting = false;
    }
    this.out.settled();
  }
}
