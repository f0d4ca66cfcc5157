/**
 * The batch ring's shared-memory layout (ENGINE.md): one SharedArrayBuffer holding every
 * batch — per-batch header words, per-slot metadata words, per-slot receive times,
 * per-slot datagram and reply bytes. Built identically on every thread that touches it;
 * nothing on the hot path uses a bare index. Wire offsets are `src/protocol/wire.ts`'s.
 */

// ---- Batch ring, ENGINE.md ---------------------------------------------------------

/** Int32 words of each batch header. */
export const BATCH_HDR_WORDS = 8;
/** Header word: number of filled slots. */
export const H_COUNT = 0;
/** Header word: key-table half the worker must read (pinned at dispatch). */
export const H_KEY_HALF = 1;
/** Header words: first reply nonce reserved for this batch (hi, lo u32). Slot i replies with base + i. */
export const H_NONCE_HI = 2;
/** See {@link H_NONCE_HI}. */
export const H_NONCE_LO = 3;

/** Int32 words of metadata per slot. */
export const SLOT_META_WORDS = 8;
/** Slot word: datagram length in bytes. */
export const M_LENGTH = 0;
/** Slot word: verdict code written by the worker, finalised by the collector. */
export const M_VERDICT = 1;
/** Slot word: the sender's stable peer index (replay state), or -1. */
export const M_PEER = 2;
/** Slot word: nonce high u32. */
export const M_NONCE_HI = 3;
/** Slot word: nonce low u32. */
export const M_NONCE_LO = 4;
/** Slot word: flag bits ({@link F_PRE_START}, {@link F_REPLY}, {@link F_SEND}, {@link F_UNANSWERABLE}). */
export const M_FLAGS = 5;
/** Slot word: datagram type byte. */
export const M_TYPE = 6;
/** Slot word: word index of the sender's key-table entry the worker signed the REPLY under: in the pinned half, or in `KeyTable.own` after a re-judge (collect.ts); not read after verification (a re-sign looks the sender up in `KeyTable.own`). */
export const M_ENTRY = 7;
/** Flag: `send_ts_us` is before the receiver's start (restart fence, PROTOCOL.md §5). */
export const F_PRE_START = 1;
/** Flag: a signed REPLY of the same length waits in the slot's reply area. */
export const F_REPLY = 2;
/**
 * Flag set by the in-order collector: this REPLY passed the replay check and must be
 * sent. The lane that received the batch sends exactly these, in slot order.
 */
export const F_SEND = 4;
/**
 * Flag set by the socket stage: the source is one no reply can go to (UDP port 0, an
 * unspecified, multicast or broadcast address; src/pipeline/udp.ts `unanswerable`). The verifier
 * judges the slot `malformed` before any crypto (PROTOCOL.md §4 u1).
 */
export const F_UNANSWERABLE = 8;

/** Round up to a multiple of 8 (keeps every region aligned for any typed array). */
function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Byte offsets of the batch ring inside its SharedArrayBuffer, derived from the
 * engine's options. Built identically on every lane's thread and in every worker.
 */
export class BatchLayout {
  /** Byte offset of the header words (Int32). */
  readonly headerOffset = 0;
  /** Byte offset of the slot metadata words (Int32). */
  readonly metaOffset: number;
  /** Byte offset of the slot receive times (Float64, µs since the Unix epoch). */
  readonly timeOffset: number;
  /** Byte offset of the slot data areas. */
  readonly dataOffset: number;
  /** Bytes reserved per slot for the datagram, and again for its reply. */
  readonly slotBytes: number;
  /** Total SharedArrayBuffer size. */
  readonly byteLength: number;

  constructor(
    /** Number of batch buffers in the ring. */
    readonly batches: number,
    /** Slots (datagrams) per batch. */
    readonly slots: number,
    /** Largest datagram accepted. */
    readonly maxDatagram: number,
  ) {
    const totalSlots = batches * slots;
    this.metaOffset = align8(batches * BATCH_HDR_WORDS * 4);
    this.timeOffset = align8(this.metaOffset + totalSlots * SLOT_META_WORDS * 4);
    this.dataOffset = align8(this.timeOffset + totalSlots * 8);
    this.slotBytes = align8(maxDatagram);
    this.byteLength = this.dataOffset + totalSlots * 2 * this.slotBytes;
  }

  /** Index of the first header word of batch `b` in the Int32 view. */
  headerIndex(b: number): number {
    return b * BATCH_HDR_WORDS;
  }
  /** Global slot number of slot `i` of batch `b`. */
  slotNumber(b: number, i: number): number {
    return b * this.slots + i;
  }
  /** Index of the first metadata word of global slot `s` in the Int32 view. */
  metaIndex(s: number): number {
    return (this.metaOffset >> 2) + s * SLOT_META_WORDS;
  }
  /** Index of the receive time of global slot `s` in the Float64 view. */
  timeIndex(s: number): number {
    return (this.timeOffset >> 3) + s;
  }
  /** Byte offset of the datagram of global slot `s`. */
  datagramOffset(s: number): number {
    return this.dataOffset + s * 2 * this.slotBytes;
  }
  /** Byte offset of the reply area of global slot `s`. */
  replyOffset(s: number): number {
    return this.dataOffset + (s * 2 + 1) * this.slotBytes;
  }
}
