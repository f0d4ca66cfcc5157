/** Shared test helpers: vector loading, hex, and a one-datagram receiver built from the engine's own stages. */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BatchRing } from '../src/batch.js';
import { collectBatch, type CollectSink } from '../src/collect.js';
import { KeyRing } from '../src/keyring.js';
import { KeyTable } from '../src/keytable.js';
import { H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_LENGTH, M_VERDICT } from '../src/layout.js';
import { ReplayFilter } from '../src/protocol/replay.js';
import { Books } from '../src/stats.js';
import { verdictName, type VerdictName } from '../src/verdict.js';
import { BatchVerifier } from '../src/verify.js';

/** The repository root (tests run from dist/test/…). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The project's verbatim copy of the shared vectors. */
export const vectorsDir = `${repoRoot}test/vectors/`;

/** Parse a vector file of test/vectors/. */
export function loadVectors<T = any>(name: string): T {
  return JSON.parse(fs.readFileSync(`${vectorsDir}${name}`, 'utf8')) as T;
}

/** Hex → bytes. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Bytes → hex. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** A receiver description, as in verdicts.json. */
export interface ReceiverSpec {
  root: Uint8Array;
  prevRoot?: Uint8Array | null;
  tenant: string;
  me: string;
  peers: string[];
  startUs: number;
  replayWindow: number;
  maxDatagram: number;
  clockWindowUs?: number;
}

/**
 * The engine's receive path without sockets or threads: BatchRing → BatchVerifier (the
 * worker's code, on this thread) → collectBatch (replay check, books). One datagram per
 * batch so every call sees the state the previous one left.
 */
export class TestReceiver {
  readonly keyring: KeyRing;
  readonly keyTable = new KeyTable(64);
  readonly filter: ReplayFilter;
  readonly ring: BatchRing;
  readonly books = new Books();
  readonly verifier: BatchVerifier;
  /** Slots of accepted PROBEs with their reply bytes; accepted other types. */
  readonly replies: Uint8Array[] = [];
  readonly delivered: number[] = [];
  private nonce = 1;

  constructor(spec: ReceiverSpec, slots = 1) {
    this.keyring = new KeyRing(spec.tenant, spec.me, spec.prevRoot ?? spec.root, spec.peers);
    if (spec.prevRoot) this.keyring.rotate(spec.root);
    this.keyTable.publish(this.keyring.entries());
    this.filter = new ReplayFilter(spec.replayWindow, this.keyring.peerSlots);
    this.ring = new BatchRing(2, slots, spec.maxDatagram);
    this.verifier = new BatchVerifier({
      batchSab: this.ring.sab,
      batches: 2,
      slots,
      maxDatagram: spec.maxDatagram,
      keySab: this.keyTable.sab,
      keyCapacity: this.keyTable.capacity,
      selfId: this.keyring.selfId,
      clockWindowUs: spec.clockWindowUs ?? 5_000_000,
      startUs: spec.startUs,
    });
  }

  /** Judge a batch of datagrams received at `nowUs`; returns their verdict names in order. */
  judgeAll(datagrams: Uint8Array[], nowUs: number, replyTsUs = nowUs): VerdictName[] {
    const ring = this.ring;
    const b = ring.take();
    for (const d of datagrams) ring.put(b, d, nowUs, '127.0.0.1', 9);
    const h = ring.layout.headerIndex(b);
    ring.ints[h + H_COUNT] = datagrams.length;
    ring.ints[h + H_KEY_HALF] = this.keyTable.pin();
    ring.ints[h + H_NONCE_HI] = 0;
    ring.ints[h + H_NONCE_LO] = this.nonce;
    this.nonce += datagrams.length;
    ring.dispatched(b);
    this.verifier.run(b, replyTsUs);
    ring.popHead();
    const out: VerdictName[] = [];
    const sink: CollectSink = {
      reply: (s) => this.replies.push(ring.bytes.slice(ring.layout.replyOffset(s), ring.layout.replyOffset(s) + ring.ints[ring.layout.metaIndex(s) + M_LENGTH]!)),
      deliver: (_s, type) => this.delivered.push(type),
    };
    collectBatch(ring, b, this.filter, this.books, sink, nowUs);
    for (let i = 0; i < datagrams.length; i++) {
      out.push(verdictName(ring.ints[ring.layout.metaIndex(ring.layout.slotNumber(b, i)) + M_VERDICT]!));
    }
    this.keyTable.unpin(ring.ints[h + H_KEY_HALF]!);
    ring.release(b);
    return out;
  }

  /** Judge one datagram received at `nowUs`. */
  judge(datagram: Uint8Array, nowUs: number): VerdictName {
    return this.judgeAll([datagram], nowUs)[0]!;
  }
}
