/**
 * Key derivation (PROTOCOL.md §1): per-pair keys from the tenant root by HKDF-SHA256.
 */
import { hkdfSync } from 'node:crypto';
import { assertValidId, compareIdBytes } from './ids.js';

/** Root key length in bytes (PROTOCOL.md §1). */
export const ROOT_KEY_LEN = 32;
/** Pair key length in bytes (PROTOCOL.md §1). */
export const PAIR_KEY_LEN = 32;
/** HKDF `info` prefix (PROTOCOL.md §1). */
export const INFO_LABEL = 'dt-mesh-v1';

/**
 * The HKDF `info` of a pair: `utf8("dt-mesh-v1|" + tenant + "|" + min(A,B) + "|" + max(A,B))`,
 * min/max by UTF-8 bytes — so A→B and B→A share a key (PROTOCOL.md §1).
 */
export function pairInfo(tenant: string, a: string, b: string): Buffer {
  assertValidId(tenant, 'tenant ID');
  assertValidId(a, 'agent ID');
  assertValidId(b, 'agent ID');
  if (a === b) throw new RangeError('an agent never derives a key with itself (PROTOCOL.md §1)');
  const [lo, hi] = compareIdBytes(a, b) < 0 ? [a, b] : [b, a];
  return Buffer.from(`${INFO_LABEL}|${tenant}|${lo}|${hi}`, 'utf8');
}

/**
 * `HKDF-SHA256(ikm = root, salt = empty, info = pairInfo(...), L = 32)` (RFC 5869 §2;
 * an empty salt is HashLen zero bytes, RFC 5869 §2.2). node:crypto's `hkdfSync` does
 * the work: derivation happens once per peer per root, never per datagram.
 */
export function derivePairKey(root: Uint8Array, tenant: string, a: string, b: string): Uint8Array {
  if (root.length !== ROOT_KEY_LEN) throw new RangeError(`root key must be ${ROOT_KEY_LEN} bytes`);
  return new Uint8Array(hkdfSync('sha256', root, new Uint8Array(0), pairInfo(tenant, a, b), PAIR_KEY_LEN));
}
