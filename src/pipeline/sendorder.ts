/**
 * Nonce order across sockets (PROTOCOL.md §3: "packets leave the socket in nonce order
 * … across every socket the agent sends from"). With `serve --sockets N` the agent sends
 * from N sockets: each socket thread sends the REPLYs of the batches it received, the
 * engine's own socket sends its REPLYs and the agent's own PROBEs and punch bursts. One
 * socket keeps its own sends in order (libuv issues them FIFO); two sockets do not, so a
 * strict-mode peer could see a larger nonce first and drop the smaller one as `replay`.
 *
 * A *unit* is a run of sends on one socket (a batch's REPLYs, or one own packet), created
 * in nonce order by the engine. The rule: a unit may start only once every earlier unit
 * on another socket has completed (its last send's callback ran). Units on the socket
 * of the oldest pending unit start at once, so one socket's traffic never waits for
 * itself. With one socket nothing ever waits: every unit starts as it is submitted.
 */

/**
 * The pending units, oldest (smallest nonces) first: a ring of parallel arrays, so that
 * the per-batch path allocates nothing (a batch unit is two integers, not a closure and
 * an object: measured, the closure, the unit object, `findIndex`'s callback and
 * `splice`'s result were about 150 bytes per collected batch, a young-generation
 * collection every ~0.4 s on the native lane at any rate). Own packets keep a closure.
 */
export class SendOrder {
  private cap = 64;
  private laneOf = new Int32Array(this.cap);
  /** The batch a unit sends (`runBatch`), or -1: it runs `fn`. */
  private batchOf = new Int32Array(this.cap);
  private started = new Uint8Array(this.cap);
  private fn: Array<(() => void) | undefined> = new Array<(() => void) | undefined>(this.cap).fill(undefined);
  private head = 0;
  private len = 0;

  /** `runBatch(lane, b)` starts a batch unit ({@link submitBatch}). */
  constructor(private readonly runBatch: (lane: number, b: number) => void = () => undefined) {}

  /** Units not yet completed. */
  get pending(): number {
    return this.len;
  }

  /**
   * Add a unit on `lane` (in nonce order: after every unit already submitted); `start`
   * runs now when every pending unit is on the same lane, else once they completed.
   * `start` may call {@link complete} for its own unit right away (nothing to send).
   */
  submit(lane: number, start: () => void): void {
    this.add(lane, -1, start);
  }

  /** {@link submit} for the REPLYs of batch `b`: started by `runBatch(lane, b)`; allocates nothing. */
  submitBatch(lane: number, b: number): void {
    this.add(lane, b, undefined);
  }

  /** The oldest started unit of `lane` completed (a lane's units complete in order). */
  complete(lane: number): void {
    for (let i = 0; i < this.len; i++) {
      const k = (this.head + i) % this.cap;
      if (this.laneOf[k] === lane && this.started[k] === 1) {
        this.removeAt(i);
        this.pump();
        return;
      }
    }
  }

  /** Lane `lane` is gone (a socket thread died): its units will never complete. */
  dropLane(lane: number): void {
    for (let i = this.len - 1; i >= 0; i--) if (this.laneOf[(this.head + i) % this.cap] === lane) this.removeAt(i);
    this.pump();
  }

  private add(lane: number, b: number, start: (() => void) | undefined): void {
    if (this.len === this.cap) this.grow();
    const k = (this.head + this.len) % this.cap;
    this.laneOf[k] = lane;
    this.batchOf[k] = b;
    this.started[k] = 0;
    this.fn[k] = start;
    this.len++;
    this.pump();
  }

  /** Remove the unit at position `i` from the head, keeping the order of the rest. */
  private removeAt(i: number): void {
    const cap = this.cap;
    if (i === 0) {
      this.fn[this.head] = undefined;
      this.head = (this.head + 1) % cap;
      this.len--;
      return;
    }
    for (let j = i; j < this.len - 1; j++) {
      const to = (this.head + j) % cap;
      const from = (to + 1) % cap;
      this.laneOf[to] = this.laneOf[from]!;
      this.batchOf[to] = this.batchOf[from]!;
      this.started[to] = this.started[from]!;
      this.fn[to] = this.fn[from];
    }
    this.fn[(this.head + this.len - 1) % cap] = undefined;
    this.len--;
  }

  /** Twice the room, same order (the only allocation, and only past every earlier peak). */
  private grow(): void {
    const cap = this.cap * 2;
    const laneOf = new Int32Array(cap);
    const batchOf = new Int32Array(cap);
    const started = new Uint8Array(cap);
    const fn = new Array<(() => void) | undefined>(cap).fill(undefined);
    for (let i = 0; i < this.len; i++) {
      const k = (this.head + i) % this.cap;
      laneOf[i] = this.laneOf[k]!;
      batchOf[i] = this.batchOf[k]!;
      started[i] = this.started[k]!;
      fn[i] = this.fn[k];
    }
    this.laneOf = laneOf;
    this.batchOf = batchOf;
    this.started = started;
    this.fn = fn;
    this.cap = cap;
    this.head = 0;
  }

  private pumping = false;

  /** Start the waiting units of the oldest pending unit's lane, up to the first unit of another lane. */
  private pump(): void {
    if (this.pumping) return; // a start() that completed at once: the loop below looks again
    this.pumping = true;
    try {
      for (let again = true; again; ) {
        again = false;
        const lane = this.len > 0 ? this.laneOf[this.head]! : -1;
        for (let i = 0; i < this.len; i++) {
          const k = (this.head + i) % this.cap;
          if (this.laneOf[k] !== lane) break;
          if (this.started[k] === 0) {
            this.started[k] = 1;
            const b = this.batchOf[k]!;
            if (b >= 0) this.runBatch(lane, b);
            else this.fn[k]!();
            again = true; // the start may have completed units: scan from the head again
            break;
          }
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
