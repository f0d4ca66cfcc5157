/**
 * The agent's view of its tenant: who it is, its roster, the root key and (during
 * rotation grace) the previous root, and the pair keys derived from them
 * (PROTOCOL.md §1). Produces the entries the shared {@link KeyTable} publishes.
 *
 * Roots and pair keys live in `#private` fields, and `util.inspect`, `console.log` and
 * `JSON.stringify` show a summary with root fingerprints only (PROTOCOL.md §1: the key
 * never appears in anything printed).
 */
import { type KeyObject, timingSafeEqual } from 'node:crypto';
import { inspect, type InspectOptions } from 'node:util';
import { rootFingerprint, rootKeyBytes } from './keystore.js';
import type { KeyEntry } from './keytable.js';
import { assertValidId, senderIdOf } from '../protocol/ids.js';
import { derivePairKey } from '../protocol/keys.js';

/** Hex of a sender_id: the roster's map key. */
export function senderIdHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

/** What {@link KeyRing} prints and serialises instead of its keys (PROTOCOL.md §1). */
export interface KeyRingSummary {
  tenant: string;
  agent: string;
  /** Roster size (this agent excluded). */
  peers: number;
  /** {@link rootFingerprint} of the current root. */
  rootFingerprint: string;
  /** {@link rootFingerprint} of the previous root during rotation grace, else null. */
  previousRootFingerprint: string | null;
}

/** Roster and roots of one agent in one tenant. */
export class KeyRing {
  /** This agent's sender_id. */
  readonly selfId: Uint8Array;
  // secrets: #private, so no inspect option, spread or structuredClone reaches them
  #root: Uint8Array;
  #previous: Uint8Array | null = null;
  readonly #cache = new Map<string, { root: Uint8Array; key: Uint8Array }>(); // agent → newest derivation
  private roster: string[] = [];
  private readonly peerIndex = new Map<string, number>(); // sender_id hex → stable index
  private readonly peerNames: string[] = []; // stable index → agent ID

  constructor(
    /** Tenant ID. */
    readonly tenant: string,
    /** This agent's ID. */
    readonly agent: string,
    /** The tenant root (PROTOCOL.md §1), raw or as a secret `KeyObject`; copied. */
    root: Uint8Array | KeyObject,
    peers: readonly string[],
  ) {
    assertValidId(tenant, 'tenant ID');
    assertValidId(agent, 'agent ID');
    this.selfId = senderIdOf(agent);
    this.#root = rootKeyBytes(root, 'root key');
    this.setPeers(peers);
  }

  /** The roster without this agent (an agent never derives a key with itself). */
  get peers(): readonly string[] {
    return this.roster;
  }

  /** Number of stable peer indices handed out so far (sizes the replay state). */
  get peerSlots(): number {
    return this.peerIndex.size;
  }

  /** Replace the roster; validates every ID first, so invalid input changes nothing. */
  setPeers(peers: readonly string[]): void {
    if (!Array.isArray(peers)) throw new TypeError('peers must be an array of agent IDs');
    peers.forEach((p, i) => assertValidId(p, `peers[${i}]`));
    const roster = [...new Set(peers)].filter((p) => p !== this.agent);
    for (const p of roster) {
      const hex = senderIdHex(senderIdOf(p));
      if (!this.peerIndex.has(hex)) {
        this.peerIndex.set(hex, this.peerIndex.size);
        this.peerNames.push(p);
      }
    }
    this.roster = roster;
  }

  /**
   * Install a new root (PROTOCOL.md §1 rotation): the old one becomes `previous` until
   * {@link endGrace}. Returns false (and changes nothing) when `root` is the current one.
   */
  rotate(root: Uint8Array | KeyObject): boolean {
    const next = rootKeyBytes(root, 'root key');
    if (timingSafeEqual(next, this.#root)) {
      next.fill(0);
      return false;
    }
    this.#previous = this.#root;
    this.#root = next;
    return true;
  }

  /** Forget the previous root: its grace period is over. */
  endGrace(): void {
    this.#previous = null;
  }

  /** Stable peer index of `agent`, or -1 when it is not in the roster. */
  indexOf(agent: string): number {
    if (!this.roster.includes(agent)) return -1;
    return this.peerIndex.get(senderIdHex(senderIdOf(agent))) ?? -1;
  }

  /** Agent ID of stable peer index `peer` (for events), or undefined. */
  agentOf(peer: number): string | undefined {
    return this.peerNames[peer];
  }

  /** The current pair key with `agent` (sending always uses the newest root). */
  pairKey(agent: string): Uint8Array {
    const hit = this.#cache.get(agent);
    if (hit !== undefined && hit.root === this.#root) return hit.key;
    const key = derivePairKey(this.#root, this.tenant, this.agent, agent);
    this.#cache.set(agent, { root: this.#root, key });
    return key;
  }

  /** Key-table entries for the whole roster (derives; called on change, never per datagram). */
  entries(): KeyEntry[] {
    return this.roster.map((p) => {
      const senderId = senderIdOf(p);
      return {
        senderId,
        peer: this.peerIndex.get(senderIdHex(senderId))!,
        current: this.pairKey(p),
        previous: this.#previous === null ? null : derivePairKey(this.#previous, this.tenant, this.agent, p),
      };
    });
  }

  /** The non-secret summary `JSON.stringify` writes (PROTOCOL.md §1: no key bytes). */
  toJSON(): KeyRingSummary {
    return {
      tenant: this.tenant,
      agent: this.agent,
      peers: this.roster.length,
      rootFingerprint: rootFingerprint(this.#root),
      previousRootFingerprint: this.#previous === null ? null : rootFingerprint(this.#previous),
    };
  }

  /** `util.inspect` / `console.log`: the {@link toJSON} summary, never key bytes. */
  [inspect.custom](_depth: number, options: InspectOptions, inspectFn: typeof inspect = inspect): string {
    return `KeyRing ${inspectFn(this.toJSON(), options)}`;
  }
}
