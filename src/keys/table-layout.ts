/**
 * The key table's shared-memory layout (ENGINE.md "Workers": key lookup in place): a
 * header and two halves of fixed-size entries (sender_id, stable peer index, the keyed
 * HMAC states and raw pair keys of the current and, during rotation grace, the previous
 * root; PROTOCOL.md §1). Written by `KeyTable` (src/keys/keytable.ts), read by the
 * receive checks on every thread.
 */

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
