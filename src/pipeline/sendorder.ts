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
 * itself. With one socket nothing ever waits, and the engine does not use this at all.
 */

/** One run of sends on lane `lane`; `start` issues them, the owner calls {@link SendOrder.complete} when they completed. */
interface Unit {
  lane: number;
  start: () => void;
  started: boolean;
}

/** The pending units, oldest (smallest nonces) first. */
export class SendOrder {
  private readonly units: Unit[] = [];

  /** Units not yet completed. */
  get pending(): number {
    return this.units.length;
  }

  /**
   * Add a unit on `lane` (in nonce order: after every unit already submitted); `start`
   * runs now when every pending unit is on the same lane, else once they completed.
   * `start` may call {@link complete} for its own unit right away (nothing to send).
   */
  submit(lane: number, start: () => void): void {
    this.units.push({ lane, start, started: false });
    this.pump();
  }

  /** The oldest started unit of `lane` completed (a lane's units complete in order). */
  complete(lane: number): void {
    const i = this.units.findIndex((u) => u.lane === lane && u.started);
    if (i < 0) return;
    this.units.splice(i, 1);
    this.pump();
  }

  /** Lane `lane` is gone (a socket thread died): its units will never complete. */
  dropLane(lane: number): void {
    for (let i = this.units.length - 1; i >= 0; i--) if (this.units[i]!.lane === lane) this.units.splice(i, 1);
    this.pump();
  }

  private pumping = false;

  /** Start the waiting units of the oldest pending unit's lane, up to the first unit of another lane. */
  private pump(): void {
    if (this.pumping) return; // a start() that completed at once: the loop below looks again
    this.pumping = true;
    try {
      for (let again = true; again; ) {
        again = false;
        const us = this.units;
        const lane = us.length > 0 ? us[0]!.lane : -1;
        for (let i = 0; i < us.length && us[i]!.lane === lane; i++) {
          const u = us[i]!;
          if (!u.started) {
            u.started = true;
            u.start();
            again = true; // start() may have completed units: scan from the head again
            break;
          }
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
