/**
 * The wire format's byte offsets and constants (PROTOCOL.md §2, all integers
 * big-endian): the header fields, the MAC trailer, the type codes and the PUNCH_HINT
 * payload. Nothing on the hot path uses a bare number. Shared-memory words are
 * `src/pipeline/layout.ts`'s and the key table's `src/keys/table-layout.ts`'s.
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
