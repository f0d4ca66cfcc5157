/**
 * The send ledger of one socket (stage 5): which collected batches still have REPLYs on
 * their way out, and which sends the kernel or Node refused (`send_errors`).
 */

/** The part of `dgram.Socket` the send path uses. */
export interface UdpSender {
  send(msg: Uint8Array, port: number, address: string, cb?: (err: Error | null) => void): void;
}

/**
 * Stage 5's bookkeeping (ENGINE.md "reply"): which collected batches still have REPLYs on
 * their way out. A batch's bytes may be reused only once its sends completed; sends on one
 * socket complete in order, so a batch is free once the completed count reaches the count
 * issued when it was closed. Only tracked sends (those with a completion callback) count.
 * Kept by each lane for its own socket.
 */
export class SendLedger {
  /** Tracked sends issued. */
  issued = 0;
  /** Tracked sends completed. */
  done = 0;
  private readonly releaseAt: Float64Array;
  private readonly queue: number[] = []; // closed batches, oldest first

  /** Sends the kernel or Node refused (PROTOCOL.md §4: counted as `send_errors`, the batch moves on). */
  errors = 0;

  /**
   * `free` gets each batch whose sends completed; `after` runs once a completion has been
   * handled (the owner checks whether it has drained).
   */
  constructor(
    batches: number,
    private readonly free: (b: number) => void,
    private readonly after: () => void,
  ) {
    this.releaseAt = new Float64Array(batches);
  }

  /** The completion callback of a tracked send (an error still completes it: the batch moves on). */
  readonly onSent = (err?: Error | null): void => {
    if (err) this.errors++;
    this.done++;
    this.release();
    this.after();
  };

  /**
   * Send `view` with `send`, tracked (with the completion callback) or not. A send Node
   * refuses synchronously is counted in {@link errors} and never throws: a tracked one
   * then simply is not issued, so the batch is freed with the sends before it (a
   * synchronous refusal means libuv never took the request). `onSent` (default
   * {@link onSent}) is the tracked send's callback. Returns whether the send was issued.
   *
   * Untracked sends get a callback too, one that only counts errors: Node 20 drops the
   * error of a send without a callback (no `'error'` event; seen here with EACCES for a
   * broadcast and EINVAL for an unroutable address), so only a callback can count it.
   * It costs a `process.nextTick` per send: 0.05–0.13 µs of the socket thread (4 runs of
   * `npm run bench:micro -- --only dgram`, 2-core Xeon VM, Node 20) — the price of
   * `send_errors` being exact.
   */
  send(socket: UdpSender, view: Uint8Array, port: number, address: string, track: boolean, onSent: (err?: Error | null) => void = this.onSent): boolean {
    try {
      if (track) {
        socket.send(view, port, address, onSent);
        this.issued++;
      } else socket.send(view, port, address, this.onUntracked);
      return true;
    } catch {
      this.errors++;
      return false;
    }
  }

  /** The callback of an untracked send: counts a refusal, nothing else. */
  readonly onUntracked = (err?: Error | null): void => {
    if (err) this.errors++;
  };

  /** Every send of batch `b` has been issued (possibly none). */
  closeBatch(b: number): void {
    this.releaseAt[b] = this.issued;
    this.queue.push(b);
  }

  /** Hand every batch whose sends all completed, oldest first, to `free`. */
  release(): void {
    const q = this.queue;
    while (q.length > 0 && this.releaseAt[q[0]!]! <= this.done) this.free(q.shift()!);
  }

  /** No batch waiting for its sends, and every tracked send completed. */
  get idle(): boolean {
    return this.queue.length === 0 && this.done === this.issued;
  }
}
