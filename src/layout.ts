/**
 * Every byte offset and shared-memory index of dtmesh, in one place.
 *
 * Wire offsets follow PROTOCOL.md §2 (all integers big-endian). Shared memory follows
 * ENGINE.md: a batch ring (one SharedArrayBuffer holding every batch: per-batch header
 * words, per-slot metadata words, per-slot receive times, per-slot datagram and reply
 * bytes) and a double-buffered key table. Nothing on the hot path uses a bare number.
 */

// ---- Wire format, PROTOCOL.md §2 -------------------------------------------------

/** `magic`, 4 bytes ASCII `DTMP`. */
export const OFF_MAGIC = 0;
/** `ver`, 1 byte. */
export const OFF_VER = 4;
/** `type`, 1 byte. */
export const OFF_TYPE = 5;
/** `sender_id`, 8 bytes. */
export const OFF_SENDER_ID = 6;
/** `nonce`, u64. */
export const OFF_NONCE = 14;
/** `probe_id`, u32. */
export const OFF_PROBE_ID = 22;
/** `send_ts_us`, u64. */
export const OFF_SEND_TS = 26;
/** First payload byte; also the header length. */
export const OFF_PAYLOAD = 34;
/** Header length in bytes. */
export const HEADER_LEN = 34;
/** Truncated MAC trailer length in bytes. */
export const MAC_LEN = 16;
/** Length of the `u32be(N)` suffix of the canonical MAC input. */
export const CANONICAL_SUFFIX_LEN = 4;
/** Smallest v1 datagram: header + trailer. */
export const MIN_DATAGRAM = HEADER_LEN + MAC_LEN;
/** `DTMP` read as one big-endian u32. */
export const MAGIC_U32 = 0x44544d50;
/** The authenticated protocol version. */
export const VERSION_V1 = 0x01;
/** The legacy unauthenticated version (always a `downgrade`). */
export const VERSION_V0 = 0x00;
/** `type` PROBE. */
export const TYPE_PROBE = 0x01;
/** `type` REPLY. */
export const TYPE_REPLY = 0x02;
/** `type` PUNCH_HINT. */
export const TYPE_PUNCH_HINT = 0x03;
/** sender_id length. */
export const SENDER_ID_LEN = 8;
/** Default largest accepted datagram (`maxDatagram`, PROTOCOL.md §2). */
export const DEFAULT_MAX_DATAGRAM = 2048;

// PUNCH_HINT payload, PROTOCOL.md §2: target_sender_id(8) | family(1) | port(2) | address(4|16)
/** Offset of `target_sender_id` inside a PUNCH_HINT payload. */
export const HINT_OFF_TARGET = 0;
/** Offset of `family` (4 or 6). */
export const HINT_OFF_FAMILY = 8;
/** Offset of `port` (u16). */
export const HINT_OFF_PORT = 9;
/** Offset of the address bytes. */
export const HINT_OFF_ADDR = 11;
/** Whole PUNCH_HINT payload length for IPv4. */
export const HINT_LEN_V4 = HINT_OFF_ADDR + 4;
/** Whole PUNCH_HINT payload length for IPv6. */
export const HINT_LEN_V6 = HINT_OFF_ADDR + 16;

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
/** Slot word: word index of the sender's key-table entry in the pinned half (reply signing). */
export const M_ENTRY = 7;
/** Flag: `send_ts_us` is before the receiver's start (restart fence, PROTOCOL.md §5). */
export const F_PRE_START = 1;
/** Flag: a signed REPLY of the same length waits in the slot's reply area. */
export const F_REPLY = 2;
/**
 * Flag set by the in-order collector: this REPLY passed the replay check and must be
 * sent. The socket thread that received the batch sends exactly these (`serve --sockets`).
 */
export const F_SEND = 4;
/**
 * Flag set by the socket stage: the source is one no reply can go to (UDP port 0, an
 * unspecified, multicast or broadcast address; src/udp.ts `unanswerable`). The verifier
 * judges the slot `malformed` before any crypto (PROTOCOL.md §4 u1).
 */
export const F_UNANSWERABLE = 8;

/** Round up to a multiple of 8 (keeps every region aligned for any typed array). */
function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Byte offsets of the batch ring inside its SharedArrayBuffer, derived from the
 * engine's options. Built identically on the socket thread and in every worker.
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

// ---- Key table, double-buffered -------------------------------------------------------

/** Int32 words of the key table header. */
export const KT_HDR_WORDS = 4;
/** Header word: which half (0 or 1) new batches should read. */
export const KT_ACTIVE_HALF = 0;

/** Int32 words per key-table entry. */
export const KE_WORDS = 64;
/** Entry word: 1 when the entry holds a peer. */
export const KE_USED = 0;
/** Entry words: sender_id as two big-endian u32 (hi, lo). */
export const KE_ID_HI = 1;
/** See {@link KE_ID_HI}. */
export const KE_ID_LO = 2;
/** Entry word: stable peer index (replay state lives under it). */
export const KE_PEER = 3;
/** Entry word: 1 when the previous root's key is still in its grace period. */
export const KE_HAS_PREV = 4;
/** Entry words: precomputed HMAC state (16 words) of the current pair key. */
export const KE_STATE_CUR = 8;
/** Entry words: precomputed HMAC state (16 words) of the previous root's pair key. */
export const KE_STATE_PREV = 24;
/** Entry words: raw current pair key, 32 bytes (for the node:crypto path of large datagrams). */
export const KE_RAW_CUR = 40;
/** Entry words: raw previous pair key, 32 bytes. */
export const KE_RAW_PREV = 48;

/** Byte size of a key table holding `capacity` entries per half (capacity a power of two). */
export function keyTableBytes(capacity: number): number {
  return (KT_HDR_WORDS + 2 * capacity * KE_WORDS) * 4;
}
/** Index of the first word of entry `e` of half `h` in the Int32 view. */
export function keyEntryIndex(capacity: number, h: number, e: number): number {
  return KT_HDR_WORDS + (h * capacity + e) * KE_WORDS;
}
