/**
 * The agent's single outgoing nonce counter (PROTOCOL.md §3): every PROBE, REPLY and
 * PUNCH_HINT takes the next value; it starts at `max(last_persisted + 1, now_us)` so a
 * restart never goes backwards.
 *
 * Values stay below 2^53 (they start near the clock in µs and advance by one per packet;
 * a persisted value above {@link NONCE_LIMIT} is refused at start), so a float holds them
 * exactly. With a state directory, a ceiling is
 * persisted ahead of use (`<StateDir>/mesh-nonce-<hex>`, `<hex>` the agent's sender_id
 * as in src/keys/statelock.ts, {@link NONCE_RESERVE} at a time): one small atomic write per
 * 2^24 packets, never per datagram. The counter holds the agent's state-directory lock
 * (PROTOCOL.md §3 "one agent, one counter", {@link StateLock}) until {@link NonceCounter.close}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DtmeshError } from '../errors.js';
import { NotRegularFile, readRegularFile, writeFileAtomic } from './keystore.js';
import { nowUs } from '../clock.js';
import { agentFileTag, StateLock, type StateLockOptions } from './statelock.js';

/**
 * The pre-0.2 nonce file, one per state directory: read (never written) as a lower bound
 * for every agent's counter, so an upgrade never goes backwards (PROTOCOL.md §3).
 */
export const NONCE_FILE = 'mesh-nonce';
/** Nonces reserved per persisted ceiling. */
export const NONCE_RESERVE = 2 ** 24;
/**
 * The largest persisted value a start accepts: 2^53 − 2^25, so the first nonce (≤ this + 1),
 * its ceiling (+ {@link NONCE_RESERVE}) and the nonces up to that ceiling are all exact in a
 * float. From the clock (≈ 1.8·10^15 µs in 2027) a counter gets here only in centuries; a file
 * above it was altered or corrupted, and accepting it left the counter stuck at 2^53 (the
 * same nonce on every packet) and wrote a ceiling the next start refused.
 */
export const NONCE_LIMIT = 2 ** 53 - 2 ** 25;
/** After a failed ceiling write, nonces taken before the next attempt (≈ 80 ms at 50 k packets/s). */
export const NONCE_RETRY = 2 ** 12;

/** The per-agent nonce file's name inside the state directory (PROTOCOL.md §3). */
export function nonceFileName(agent: string): string {
  return `${NONCE_FILE}-${agentFileTag(agent)}`;
}

/** Options of {@link NonceCounter} beyond the state directory and the agent. */
export interface NonceCounterOptions {
  /** How the state-directory lock is held (tests force the PID-file fallback). */
  readonly lock?: StateLockOptions['kind'];
  /** Writes the ceiling file (default: the atomic 0600 write of src/keys/keystore.ts); a seam for failure tests. */
  readonly writeCeiling?: (file: string, content: string) => void;
  /** Initial value of {@link NonceCounter.onWriteError}. */
  readonly onWriteError?: (err: DtmeshError) => void;
}

/**
 * Up to `max` + 1 bytes of `file` (more than `max` means it is too long), or null when it
 * does not exist; a one-line
 * {@link DtmeshError} naming it (as `what`) when it cannot be read or is not a regular
 * file. Opened with O_NONBLOCK and O_NOFOLLOW and checked with fstat before any read: a
 * FIFO planted there must not block the start for ever, nor a symlink redirect it.
 */
function readSmallRegularFile(file: string, what: string, max: number): Buffer | null {
  const fail = (why: string): DtmeshError => new DtmeshError(`${what} ${file} ${why}: it must be a regular file this user can read and write`);
  try {
    return readRegularFile(file, max, true).bytes;
  } catch (e) {
    if (e instanceof NotRegularFile) {
      if (e.what.startsWith('larger')) return Buffer.alloc(max + 1); // longer than any value it holds: garbage, said by the caller
      throw fail(`is ${e.what}`);
    }
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') return null;
    throw fail(`cannot be read (${code})`);
  }
}

/**
 * The persisted ceiling in `file`: 0 when there is none (ENOENT), else a positive integer
 * no greater than {@link NONCE_LIMIT}, or a one-line {@link DtmeshError} (unreadable, a
 * directory, garbage, too large): a nonce file that cannot be trusted must stop the start,
 * since guessing could go backwards. The advice never says to delete or lower the file:
 * the counter must only move forward (a restart from the clock reuses nonces whenever the
 * counter had run ahead of it).
 */
function readCeiling(file: string): number {
  const bytes = readSmallRegularFile(file, 'nonce file', 64);
  if (bytes === null) return 0;
  const t = bytes.length > 64 ? '' : bytes.toString('utf8').trim(); // longer than any integer it holds: garbage
  const v = /^[0-9]{1,24}$/.test(t) ? Number(t) : NaN;
  if (!(v > 0)) {
    throw new DtmeshError(`nonce file ${file} does not hold a positive integer: restore it from a backup, or write a value no lower than the last nonce this agent sent (the counter must only move forward: deleting the file restarts it from the clock, which can reuse nonces)`);
  }
  if (v > NONCE_LIMIT) {
    throw new DtmeshError(`nonce file ${file} holds ${t}, above the largest usable start ${NONCE_LIMIT} (2^53 - 2^25; a counter started from the clock cannot get there, so the file was altered): restore it from a backup, never with a value lower than the last nonce this agent sent (the counter must only move forward)`);
  }
  return v;
}

/**
 * Monotonic outgoing nonce counter of one agent (PROTOCOL.md §3).
 *
 * A failed ceiling write on the hot path ({@link take}) never throws (the REPLY path
 * reserves nonces there): it is counted in {@link writeErrors}, reported once per failed
 * write to {@link onWriteError}, and retried every {@link NONCE_RETRY} nonces while the
 * in-memory counter keeps going up. Meanwhile the persisted ceiling
 * ({@link persistedCeiling}) lags behind the nonces in use, and **every nonce past it
 * risks reuse after a crash**: the restart begins at `max(persisted + 1, now_us)`, which
 * goes backwards if the counter had run ahead of the clock (more than one packet per µs
 * on average) — the risk of a state directory that stopped taking writes, which the
 * engine should surface as a warning.
 */
export class NonceCounter {
  /**
   * Called once per failed ceiling write on the hot path, with a one-line error naming
   * the nonce file, the errno code and the ceiling still persisted (no other content).
   * Runs inside {@link take}: keep it cheap; whatever it throws is ignored. Settable, so
   * the engine can attach its warning and counter after construction.
   */
  onWriteError: ((err: DtmeshError) => void) | undefined;
  private writeErrorCount = 0;
  /**
   * The next nonce. Declared with a number (not left `undefined` until the constructor
   * assigns it) so that V8 keeps the field a double in place: a field that starts out
   * undefined holds a freshly allocated heap number after every `take`, 16 bytes per
   * batch on the engine's thread (test/pipeline/alloc.test.ts).
   */
  private nextValue = 0;
  /** The next value at which a ceiling is written (or a failed write retried). */
  private persistAt = Infinity;
  private persistedValue = 0;
  private readonly file: string | null;
  private readonly lock: StateLock | null;
  private readonly write: (file: string, content: string) => void;

  /**
   * The counter of `agent` (its agent ID, PROTOCOL.md §1). With a `stateDir`, takes the
   * agent's state-directory lock (a second process of the same agent there gets a
   * one-line {@link DtmeshError}; other agents are unaffected), reads the persisted
   * ceiling (its own file, and the legacy shared {@link NONCE_FILE} as a lower bound;
   * an unreadable or garbled file is a DtmeshError) and persists a new one — a failure
   * of that first write is a DtmeshError too. `stateDir` null: no file, no lock.
   *
   * `agent` omitted (deprecated, only until every caller passes it): the old behaviour —
   * the directory's single shared {@link NONCE_FILE} and no lock, so it does not keep
   * PROTOCOL.md §3's "one agent, one counter".
   */
  constructor(stateDir: string | null, agent?: string, options: NonceCounterOptions = {}) {
    this.write = options.writeCeiling ?? ((file, content) => writeFileAtomic(file, content, 0o600));
    this.onWriteError = options.onWriteError;
    this.file = stateDir === null ? null : path.join(stateDir, agent === undefined ? NONCE_FILE : nonceFileName(agent));
    this.lock = stateDir === null || agent === undefined ? null : StateLock.acquire(stateDir, agent, { kind: options.lock ?? 'auto' });
    let persisted = 0;
    try {
      if (stateDir !== null) persisted = Math.max(readCeiling(this.file!), readCeiling(path.join(stateDir, NONCE_FILE)));
      this.nextValue = Math.max(persisted + 1, Math.ceil(nowUs()));
      if (this.file !== null) {
        const ceiling = this.nextValue + NONCE_RESERVE;
        try {
          this.write(this.file, `${ceiling}\n`);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? 'error';
          throw new DtmeshError(`cannot write the nonce file ${this.file} (${code}): the state directory must be writable by this user`);
        }
        this.persistedValue = ceiling;
        this.persistAt = ceiling;
      }
    } catch (e) {
      this.lock?.release();
      throw e;
    }
  }

  /** Take `n` consecutive nonces; returns the first. Never throws (see the class comment). */
  take(n = 1): number {
    const first = this.nextValue;
    this.nextValue += n;
    if (this.nextValue > this.persistAt) this.persist();
    return first;
  }

  /** Ceiling writes that failed on the hot path (each retried later); see {@link onWriteError}. */
  get writeErrors(): number {
    return this.writeErrorCount;
  }

  /** The last ceiling written to the state directory (0 without one): every nonce below it is covered. */
  get persistedCeiling(): number {
    return this.persistedValue;
  }

  /** Release the state-directory lock (idempotent); the counter must not be used after. */
  close(): void {
    this.lock?.release();
  }

  private persist(): void {
    // Past NONCE_LIMIT + 2^25 (only after a start near NONCE_LIMIT) a ceiling would not be
    // exact: write 2^53 − 1, which the next start refuses as above NONCE_LIMIT (forward only).
    const ceiling = Math.min(this.nextValue + NONCE_RESERVE, Number.MAX_SAFE_INTEGER);
    try {
      this.write(this.file!, `${ceiling}\n`);
      this.persistedValue = ceiling;
      this.persistAt = ceiling;
    } catch (e) {
      this.writeErrorCount++;
      this.persistAt = this.nextValue + NONCE_RETRY;
      this.reportWriteError(e, ceiling);
    }
  }

  private reportWriteError(e: unknown, ceiling: number): void {
    const report = this.onWriteError;
    if (report === undefined) return;
    const code = (e as NodeJS.ErrnoException | null)?.code ?? 'error';
    try {
      report(
        new DtmeshError(
          `cannot write the nonce ceiling ${ceiling} to ${this.file} (${code}): nonces from ${this.persistedValue} on are not persisted and may be reused after a crash; retrying every ${NONCE_RETRY} nonces`,
        ),
      );
    } catch {
      // take() never throws (the REPLY reservation path): a failing reporter is ignored
    }
  }
}
