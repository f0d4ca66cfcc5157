/**
 * Lanes: stages 1 and 5 of the pipeline (ENGINE.md "Lanes: the socket stage, twice"). A
 * lane is one socket and the thread that owns it: it receives datagrams into the batches
 * it owns, hands each filled batch on by index (stage 1), and sends back the REPLYs the
 * in-order collector marked `F_SEND` (src/pipeline/layout.ts) (stage 5). The rest of the
 * pipeline — dispatch, verify, collect, reply order — sees every lane through this one
 * interface and never knows which kind it holds:
 *
 * - `DgramLane` (src/pipeline/dgram-lane.ts): Node's `dgram` on the thread that holds it;
 * - `NativeLane` (src/pipeline/native-lane.ts): the addon's own socket, `recvmmsg` into
 *   the slots with kernel receive times, `sendmmsg` out of them (Linux, where built);
 * - `ThreadLane` (src/pipeline/thread-lane.ts): the engine's handle on a socket thread
 *   (`serve --sockets N`), which runs a lane of either kind of its own.
 */
/** Counts a lane keeps of its own socket; together with the verdicts they make the books (`received = accepted + Σ dropped`). */
export interface LaneCounts {
  /** Datagrams taken from the socket. */
  received: number;
  /** Datagrams shed because every batch of the lane was in flight (or it was stopping): `overload`. */
  overload: number;
  /** Sends the kernel or Node refused (PROTOCOL.md §4 `send_errors`). */
  sendErrors: number;
}

/** Where a lane hands on what it did (the pipeline). */
export interface LaneSink {
  /** Batch `b` of `lane` holds `count` datagrams: verify and collect it (stages 2–4). */
  filled(lane: Lane, b: number, count: number): void;
  /** May `lane` hand over its partial batch of `count` datagrams now (else it keeps filling)? */
  takePartial(lane: Lane, count: number): boolean;
  /** The oldest batch `lane` was asked to send ({@link Lane.sendBatch}) has all its REPLYs out. */
  sent(lane: Lane): void;
  /** `lane` was stopped and holds nothing any more (see {@link Lane.stop}). */
  drained(lane: Lane): void;
  /** `lane` failed (a socket thread crashed): it will never hand on or send anything again. */
  failed(lane: Lane, why: string): void;
}

/** One socket and its thread, as the pipeline sees it. */
export interface Lane {
  /** 0 for the engine's own socket, 1 … N-1 for socket threads: the unit lane of {@link SendOrder}. */
  readonly index: number;
  /** The bound port. */
  readonly port: number;
  /** Running totals. */
  readonly counts: LaneCounts;
  /** Stopped and everything handed back (after {@link stop}), or failed. */
  readonly drained: boolean;
  /**
   * Stage 5: send batch `b`'s REPLYs marked `F_SEND`, in slot (= nonce) order, then
   * reuse the batch; {@link LaneSink.sent} once they all completed (at once when none).
   */
  sendBatch(b: number): void;
  /** Hand over the partial batch if the sink agrees now (the pipeline became idle). */
  kick(): void;
  /** Stop filling: hand over the partial batch; datagrams from now on are `overload`; {@link LaneSink.drained} once idle. */
  stop(): void;
  /** Close the socket (after the drain); resolves once closed. */
  close(): Promise<void>;
}

/** A lane that can also put the agent's own packets (PROBEs, punch bursts) on its socket: the engine's own. */
export interface PacketLane extends Lane {
  /** Send `buf` to `host:port`; `onSent` runs once it left (or failed: counted in `sendErrors`). False when refused at once. */
  sendPacket(buf: Uint8Array, port: number, host: string, onSent: (err: Error | null) => void): boolean;
  /** The send-call time of the last {@link sendPacket}'s packet: the native lane's right before its `sendto` if it left during that call, the dgram lane's right before `socket.send`; else NaN. */
  readonly lastOwnSentUs?: number;
  /**
   * True when {@link sendPacket} copies `buf` before it returns and, for a host that is an
   * IP literal, runs the `onSent` callbacks in the order of the calls (the native lane: C
   * copies the bytes into its send FIFO). The reply sender then signs such packets into one
   * reused buffer and keeps no closure per packet.
   */
  readonly copiesOwnPackets?: boolean;
}
