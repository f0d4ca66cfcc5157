/**
 * Tenant and agent IDs, and sender IDs (PROTOCOL.md §1).
 */
import { createHash } from 'node:crypto';
import { SENDER_ID_LEN } from './wire.js';

/** Longest ID in UTF-8 bytes (PROTOCOL.md §1). */
export const MAX_ID_BYTES = 128;

/**
 * Why `id` is not a valid tenant or agent ID, or `null` when it is.
 * Valid: 1–128 bytes of UTF-8, no `|`, no control characters (< 0x20, 0x7F) — PROTOCOL.md §1.
 * The reason never repeats the ID itself (it may be hostile or huge).
 */
export function idProblem(id: unknown): string | null {
  if (typeof id !== 'string') return 'must be a string';
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes < 1) return 'must not be empty';
  if (bytes > MAX_ID_BYTES) return `is ${bytes} bytes of UTF-8; the limit is ${MAX_ID_BYTES}`;
  if (Buffer.from(id, 'utf8').toString('utf8') !== id) return 'is not valid Unicode (lone surrogate)';
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c === 0x7c) return "must not contain '|'";
    if (c < 0x20 || c === 0x7f) return `must not contain control characters (found 0x${c.toString(16).padStart(2, '0')} at position ${i})`;
  }
  return null;
}

/**
 * Validate an ID where it enters the system; throw a `TypeError` naming `what`
 * (e.g. `--agent`, `heartbeat peers[3]`) and the rule broken.
 */
export function assertValidId(id: unknown, what: string): asserts id is string {
  const problem = idProblem(id);
  if (problem !== null) {
    throw new TypeError(`${what} ${problem} (IDs are 1-128 bytes of UTF-8 without '|' or control characters)`);
  }
}

/** `SHA-256(utf8(agentId))[0:8]` — the wire `sender_id` (PROTOCOL.md §1). */
export function senderIdOf(agentId: string): Uint8Array {
  assertValidId(agentId, 'agent ID');
  return new Uint8Array(createHash('sha256').update(agentId, 'utf8').digest().subarray(0, SENDER_ID_LEN));
}

/** Compare two IDs by their UTF-8 bytes, lexicographically (PROTOCOL.md §1). */
export function compareIdBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
