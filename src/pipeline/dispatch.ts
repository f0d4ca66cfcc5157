/**
 * Stage 2, sequential on the engine's thread: the dispatcher (ENGINE.md "Socket thread …
 * hands a full batch — or a partial one after a short flush deadline — to the pool").
 * It owns the routing decision and the count of batches in the pool. For each filled
 * batch of any lane it writes the batch header — count, the pinned key-table half, the
 * first of the REPLY nonces reserved for it in dispatch order (= send order, PROTOCOL.md
 * §3) — registers it with the in-order collector, and hands it on:
 *
 * - fewer than `inlineBelow` datagrams: verified right here by the workers' own code
 *   ({@link BatchVerifier}): a pool round trip costs more than the batch (see
 *   `EngineOptions.inlineBelow` for the measured figures);
 * - otherwise to the {@link VerifyPool}, in parallel.
 *
 * It also answers the lanes' "may I hand over my partial batch now?": yes when it is
 * small enough to verify here or the pool is idle, so batches grow under load.
 */
import type { KeyTable } from '../keys/keytable.js';
import type { NonceCounter } from '../keys/nonce.js';
import type { Collector } from './collect.js';
import type { Lane } from './lane.js';
import { H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO } from './layout.js';
import type { VerifyPool } from './pool.js';
import type { BatchRing } from './ring.js';
import type { BatchVerifier } from './verify.js';

const TWO_32 = 4294967296;

/** The dispatcher; see the file header. */
export class Dispatcher {
  /** Batches in the pool now. */
  inVerify = 0;
  /** Batches verified on this thread. */
  inlineBatches = 0;
  /** Batches handed to the pool. */
  pooledBatches = 0;
  /** Batches filled by lanes other than the engine's own (socket threads). */
  threadBatches = 0;
  /** Shutting down: every partial batch goes at once. */
  closing = false;

  constructor(
    private readonly ring: BatchRing,
    private readonly keyTable: KeyTable,
    private readonly nonces: NonceCounter,
    private readonly collector: Collector,
    private readonly pool: VerifyPool,
    private readonly inline: BatchVerifier,
    private readonly inlineBelow: number,
    /** Called when the pool becomes idle: the lanes may hand over their partial batches. */
    private readonly onIdle: () => void,
  ) {}

  /** Dispatch batch `b` of `lane`, holding `count` datagrams. */
  dispatch(lane: Lane, b: number, count: number): void {
    const ring = this.ring;
    const h = ring.layout.headerIndex(b);
    const nonce = this.nonces.take(count); // reserved in dispatch order = send order (PROTOCOL.md §3)
    ring.count[b] = count;
    ring.ints[h + H_COUNT] = count;
    ring.ints[h + H_KEY_HALF] = this.keyTable.pin();
    ring.ints[h + H_NONCE_HI] = Math.floor(nonce / TWO_32);
    ring.ints[h + H_NONCE_LO] = nonce % TWO_32;
    if (lane.index > 0) this.threadBatches++;
    this.collector.expect(b, lane);
    if (count < this.inlineBelow) {
      this.inline.run(b);
      this.inlineBatches++;
      this.collector.verified(b);
      return;
    }
    this.inVerify++;
    this.pooledBatches++;
    this.pool.verify(b, () => {
      this.inVerify--;
      this.collector.verified(b);
      if (this.inVerify === 0) this.onIdle();
    });
  }

  /** May a lane hand over its partial batch of `count` datagrams now? */
  takePartial(count: number): boolean {
    return this.closing || this.inVerify === 0 || count < this.inlineBelow;
  }
}
