/**
 * The agent's single outgoing nonce counter (PROTOCOL.md §3): every PROBE, REPLY and
 * PUNCH_HINT takes the next value; it starts at `max(last_persisted + 1, now_us)` so a
 * restart never goes backwards.
 *
 * Values stay far below 2^53 (they start near the clock in µs and advance by one per
 * packet), so a float holds them exactly. With a state directory, a ceiling is
 * persisted ahead of use (`<StateDir>/mesh-nonce`, {@link NONCE_RESERVE} at a time):
 * one small atomic write per 2^24 packets, never per datagram.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from './keys/keystore.js';
import { nowUs } from './clock.js';

/** File holding the persisted ceiling. */
export const NONCE_FILE = 'mesh-nonce';
/** Nonces reserved per persisted ceiling. */
export const NONCE_RESERVE = 2 ** 24;

/** Monotonic outgoing nonce counter. */
export class NonceCounter {
  private nextValue: number;
  private ceiling = Infinity;
  private readonly file: string | null;

  constructor(stateDir: string | null) {
    this.file = stateDir === null ? null : path.join(stateDir, NONCE_FILE);
    let persisted = 0;
    if (this.file !== null) {
      try {
        const v = Number(fs.readFileSync(this.file, 'utf8').trim());
        if (Number.isSafeInteger(v) && v > 0) persisted = v;
      } catch {
        // no file yet: the clock alone starts the counter
      }
    }
    this.nextValue = Math.max(persisted + 1, Math.ceil(nowUs()));
    if (this.file !== null) this.persist();
  }

  /** Take `n` consecutive nonces; returns the first. */
  take(n = 1): number {
    const first = this.nextValue;
    this.nextValue += n;
    if (this.nextValue > this.ceiling) this.persist();
    return first;
  }

  private persist(): void {
    this.ceiling = this.nextValue + NONCE_RESERVE;
    writeFileAtomic(this.file!, `${this.ceiling}\n`, 0o600);
  }
}
