/**
 * The shared key table: sender_id → pair keys (current, and the previous root's during
 * rotation grace), precomputed HMAC states and a stable peer index, in a
 * SharedArrayBuffer every worker reads (layout.ts `KE_*`).
 *
 * Double-buffered: a batch pins the active half at dispatch and its worker reads only
 * that half; an update is written into the other half only once no in-flight batch
 * pins it, then becomes active. Workers therefore never see a half being written.
 *
 * The engine's thread signs its own packets and re-signs REPLYs from a third copy of its
 * own ({@link own}, not shared), written at once by every {@link publish}: a roster or
 * root published while the other half is still pinned (batches dispatched before the
 * previous publish are in flight) is the one the engine sends under from that call on
 * (PROTOCOL.md §1 "it always sends under the newest"), not only once those batches are
 * collected. The workers judge inbound packets under the newest half they have; a batch
 * whose half a later publish replaced is judged again under {@link own} when it is
 * collected (collect.ts), so no verdict stands on a replaced roster. Limits: a REPLY
 * already collected and waiting to leave (behind another socket's units in the send
 * order, or in a would-block queue) leaves as it was signed at its collection — under
 * the previous root, which its peer accepts during the rotation grace — and goes to a
 * requester removed meanwhile; and while a publish waits behind a hung worker (up to
 * `verifyTimeoutMs`), every batch is verified twice, the second time on this thread.
 *
 * `util.inspect`, `console.log` and `JSON.stringify` of a table show its size only, never
 * the buffer's pair keys or keyed HMAC states (PROTOCOL.md §1: the key never appears in
 * anything printed).
 */
import { inspect, type InspectOptions } from 'node:util';
import { KE_HAS_PREV, KE_ID_HI, KE_ID_LO, KE_PEER, KE_RAW_CUR, KE_RAW_PREV, KE_STATE_CUR, KE_STATE_PREV, KE_USED, KE_WORDS, keyEntryIndex, keyTableBytes, KT_ACTIVE_HALF } from './table-layout.js';
import { readU32 } from '../protocol/codec.js';
import { findKeyEntry } from '../protocol/receive.js';
import { hmacPrecompute } from '../protocol/sha256.js';

/** One roster member's keys, as published to the workers. */
export interface KeyEntry {
  /** The peer's 8-byte sender_id. */
  senderId: Uint8Array;
  /** Stable peer index (replay state). */
  peer: number;
  /** Pair key under the newest root. */
  current: Uint8Array;
  /** Pair key under the previous root while its grace period lasts, else null. */
  previous: Uint8Array | null;
}

/** The smallest power of two ≥ 2 × `peers` (keeps linear probing short). */
export function keyTableCapacity(peers: number): number {
  let c = 2;
  while (c < 2 * peers) c <<= 1;
  return c;
}

/** What {@link KeyTable} prints and serialises instead of its contents (PROTOCOL.md §1). */
export interface KeyTableSummary {
  /** Entries per half. */
  capacity: number;
  /** Most peers the table can hold. */
  maxPeers: number;
  /** Entries in the active half. */
  entries: number;
  /** Whether a published roster waits for a pinned half to be released. */
  updatePending: boolean;
}

/** Writer side of the shared key table (lives on the engine's thread). */
export class KeyTable {
  /** The SharedArrayBuffer handed to workers. */
  readonly sab: SharedArrayBuffer;
  /** Int32 view from byte 0. */
  readonly keys: Int32Array;
  /** Byte view from byte 0 (same base as `keys`). */
  readonly keyBytes: Uint8Array;
  /** Entries per half. */
  readonly capacity: number;
  /**
   * The engine thread's table (one half's layout, half 0, in memory of this thread only):
   * always the newest published roster. {@link lookup} indexes it; own packets are signed
   * from it.
   */
  readonly own: Int32Array;
  /** Byte view of {@link own}. */
  readonly ownBytes: Uint8Array;
  private readonly pins = [0, 0];
  /** Publishes so far: the generation of {@link own}. */
  private generation = 0;
  /** The generation each shared half holds. */
  private readonly halfGeneration = [0, 0];
  /** Whether {@link own} holds a roster the workers' halves do not have yet. */
  private pending = false;

  constructor(
    /** Most peers the table can hold. */
    readonly maxPeers: number,
  ) {
    this.capacity = keyTableCapacity(maxPeers);
    this.sab = new SharedArrayBuffer(keyTableBytes(this.capacity));
    this.keys = new Int32Array(this.sab);
    this.keyBytes = new Uint8Array(this.sab);
    this.own = new Int32Array(keyEntryIndex(this.capacity, 1, 0));
    this.ownBytes = new Uint8Array(this.own.buffer);
  }

  /**
   * Whether `half` (a batch's pinned one) holds an older roster than the newest published:
   * what a worker signed from it is re-signed from {@link own} before it is sent.
   */
  superseded(half: number): boolean {
    return this.halfGeneration[half] !== this.generation;
  }

  /** The half new batches read. */
  get active(): number {
    return Atomics.load(this.keys, KT_ACTIVE_HALF);
  }

  /** Pin the active half for one batch; pair with {@link unpin}. */
  pin(): number {
    const h = this.active;
    this.pins[h]!++;
    return h;
  }

  /** Release a pin taken by {@link pin}; applies a waiting update once possible. */
  unpin(half: number): void {
    this.pins[half]!--;
    if (this.pending) this.flush();
  }

  /**
   * Publish a new roster/key set. Takes effect at once when the inactive half is free,
   * else as soon as the last batch pinning it completes.
   */
  publish(entries: KeyEntry[]): void {
    if (entries.length > this.maxPeers) {
      throw new RangeError(`roster has ${entries.length} peers; options.maxPeers is ${this.maxPeers}`);
    }
    this.generation++;
    writeHalf(this.own, this.ownBytes, this.capacity, 0, entries);
    this.pending = true;
    this.flush();
  }

  /** Word index of `senderId`'s entry in {@link own} (the newest published roster), or -1 (engine thread only). */
  lookup(senderId: Uint8Array): number {
    return findKeyEntry(this.own, this.capacity, 0, readU32(senderId, 0) | 0, readU32(senderId, 4) | 0);
  }

  /** The non-secret summary `JSON.stringify` writes (PROTOCOL.md §1: no key bytes). */
  toJSON(): KeyTableSummary {
    const half = this.active;
    let entries = 0;
    for (let e = 0; e < this.capacity; e++) if (this.keys[keyEntryIndex(this.capacity, half, e) + KE_USED] !== 0) entries++;
    return { capacity: this.capacity, maxPeers: this.maxPeers, entries, updatePending: this.pending };
  }

  /** `util.inspect` / `console.log`: the {@link toJSON} summary, never the shared buffer. */
  [inspect.custom](_depth: number, options: InspectOptions, inspectFn: typeof inspect = inspect): string {
    return `KeyTable ${inspectFn(this.toJSON(), options)}`;
  }

  /** Copy {@link own} (always the newest roster: every publish writes it) into the free half and make that active. */
  private flush(): void {
    const next = 1 - this.active;
    if (!this.pending || this.pins[next] !== 0) return;
    this.pending = false;
    // the words hold the HMAC states and the raw keys: a copy, not a second derivation
    const first = keyEntryIndex(this.capacity, 0, 0);
    this.keys.set(this.own.subarray(first, first + this.capacity * KE_WORDS), keyEntryIndex(this.capacity, next, 0));
    this.halfGeneration[next] = this.generation;
    Atomics.store(this.keys, KT_ACTIVE_HALF, next);
  }
}

/** Write `entries` into half `half` of a key table (`keys`, its byte view `keyBytes`), replacing what it held. */
function writeHalf(keys: Int32Array, keyBytes: Uint8Array, capacity: number, half: number, entries: KeyEntry[]): void {
  const first = keyEntryIndex(capacity, half, 0);
  keys.fill(0, first, first + capacity * KE_WORDS);
  const mask = capacity - 1;
  for (const en of entries) {
    const idHi = readU32(en.senderId, 0) | 0;
    const idLo = readU32(en.senderId, 4) | 0;
    let e = idLo & mask;
    while (keys[keyEntryIndex(capacity, half, e) + KE_USED] !== 0) e = (e + 1) & mask;
    const k = keyEntryIndex(capacity, half, e);
    keys[k + KE_ID_HI] = idHi;
    keys[k + KE_ID_LO] = idLo;
    keys[k + KE_PEER] = en.peer;
    hmacPrecompute(en.current, keys, k + KE_STATE_CUR);
    keyBytes.set(en.current, (k + KE_RAW_CUR) * 4);
    if (en.previous !== null) {
      hmacPrecompute(en.previous, keys, k + KE_STATE_PREV);
      keyBytes.set(en.previous, (k + KE_RAW_PREV) * 4);
      keys[k + KE_HAS_PREV] = 1;
    }
    keys[k + KE_USED] = 1;
  }
}
