/**
 * Stage 4, in order: the collector (ENGINE.md). Takes verified batches in dispatch
 * order, applies the replay check (PROTOCOL.md §5) — the one stateful check — so no
 * amount of parallel verification can reorder one sender's packets; finalises each
 * verdict, counts it, records receive→verdict latency, and hands accepted packets to
 * the sink (REPLYs to send, REPLY and PUNCH_HINT deliveries).
 */
import type { BatchRing } from './ring.js';
import { TYPE_PROBE } from '../protocol/wire.js';
import { F_PRE_START, F_REPLY, M_FLAGS, M_NONCE_HI, M_NONCE_LO, M_PEER, M_TYPE, M_VERDICT } from './layout.js';
import type { ReplayFilter } from '../protocol/replay.js';
import type { Books } from '../observe/stats.js';
import { V_ACCEPT, V_PENDING_REPLAY } from '../protocol/verdict.js';

/** What the collector does with accepted packets (global slot number `s`). */
export interface CollectSink {
  /** An accepted PROBE whose signed REPLY (slot reply area, `length` bytes) is ready. */
  reply(s: number, slotIndex: number): void;
  /** An accepted packet of another type (REPLY, PUNCH_HINT), or a PROBE without a reply. */
  deliver(s: number, type: number): void;
}

/**
 * Finalise batch `b`: replay check, counters, latency; accepted packets go to `sink`.
 * `nowUs` is taken once by the caller for the whole batch. Never throws per datagram.
 */
export function collectBatch(ring: BatchRing, b: number, filter: ReplayFilter, books: Books, sink: CollectSink, nowUs: number): void {
  const { layout, ints, times } = ring;
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
      }
    }
    verdicts[v]++;
    const lat = nowUs - times[layout.timeIndex(s)]!;
    books.latency.recordValue(lat < 1 ? 1 : Math.round(lat));
  }
}
