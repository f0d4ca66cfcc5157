/**
 * Verdict codes: every inbound datagram gets exactly one (PROTOCOL.md §4).
 *
 * The numeric codes are what the hot path returns and what workers write into the
 * batch's shared memory; the names are the canonical names of PROTOCOL.md §4, used in
 * stats, metrics, tests and vectors. `overload` is the engine's own (ENGINE.md): a
 * datagram shed before verification because every batch buffer was in flight.
 */

/** Accepted: passed all three unconditional drops and all four checks. */
export const V_ACCEPT = 0;
/** u1: bad length, magic or type; a PUNCH_HINT payload that does not parse. */
export const V_MALFORMED = 1;
/** u2: `ver != 1`. */
export const V_DOWNGRADE = 2;
/** u3: `sender_id` is the receiver's own. */
export const V_REFLECTED = 3;
/** c1: no pair key for `sender_id`. */
export const V_UNKNOWN_SENDER = 4;
/** c2: MAC does not verify under the current (nor, in grace, the previous) key. */
export const V_BAD_MAC = 5;
/** c3: outside the clock window, or before the restart fence. */
export const V_STALE = 6;
/** c4: nonce at or below the high-water mark (or already seen, window mode). */
export const V_REPLAY = 7;
/** Shed before verification: every batch buffer was in flight (ENGINE.md). */
export const V_OVERLOAD = 8;
/** Written by a worker for a slot that passed every stateless check; the collector still owes it the replay check (PROTOCOL.md §5). */
export const V_PENDING_REPLAY = 9;

/** Canonical drop reason names, in the order of PROTOCOL.md §4 (then `overload`). */
export const DROP_REASONS = [
  'malformed',
  'downgrade',
  'reflected',
  'unknown_sender',
  'bad_mac',
  'stale',
  'replay',
  'overload',
] as const;

/** One of the canonical drop reason names. */
export type DropReason = (typeof DROP_REASONS)[number];
/** `accept` or a drop reason. */
export type VerdictName = 'accept' | DropReason;

/** Names indexed by verdict code (V_ACCEPT … V_OVERLOAD). */
export const VERDICT_NAMES: readonly VerdictName[] = ['accept', ...DROP_REASONS];

/** Number of final verdict codes (accept + drops); sizes counter arrays. */
export const VERDICT_COUNT = VERDICT_NAMES.length;

/** The name of a final verdict code. */
export function verdictName(code: number): VerdictName {
  const name = VERDICT_NAMES[code];
  if (name === undefined) throw new RangeError(`unknown verdict code ${code}`);
  return name;
}
