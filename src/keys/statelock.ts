/**
 * One agent, one nonce counter (PROTOCOL.md §3): two processes of the same agent on one
 * state directory would each run a counter and make each other's packets replays, so the
 * second refuses to start with a one-line error. The lock is per agent — different agents
 * may share a directory — and is held for the life of the process.
 *
 * The lock file is `<StateDir>/mesh-agent-<hex>.lock`, `<hex>` being the agent's sender_id
 * (`SHA-256(utf8(agent_id))[0:8]`, PROTOCOL.md §1) in hex: an agent ID may hold any UTF-8
 * but `|` and controls, so it never goes into a file name itself.
 *
 * Two ways to hold it:
 * - `flock`: an exclusive non-blocking `flock(2)` on the open lock file, from the native
 *   addon ({@link nativeLockFd}; used even with `DTMESH_NATIVE=0`, which only picks the
 *   MAC kernel). The kernel releases it when the process exits or is killed (SIGKILL
 *   included): a crash never leaves it held. The file is never deleted (deleting a
 *   flock'ed file lets two processes lock two different inodes); it holds the holder's
 *   PID for the error message.
 * - `pidfile` (fallback when the addon is not built): the PID is written to a temp file
 *   which is then `link(2)`ed to the lock file's name — link fails with EEXIST when the
 *   name exists, like `O_EXCL`, but the file appears with its PID already in it: a reader
 *   never sees it empty (an empty file read as "pid 0, stale" let two fresh starts both
 *   win). A file whose PID is no longer alive (`kill(pid, 0)` → ESRCH) is stale and
 *   taken over. Its limits: a crashed holder's PID reused by another process
 *   makes the lock look held (the message names the file to delete), and two processes
 *   taking over the same stale file at the same instant can both win. flock has neither.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DtmeshError } from '../errors.js';
import { nativeLockFd } from '../protocol/native.js';
import { fileKind, NotRegularFile, readRegularFile, removeStaleTempFiles } from './keystore.js';

/** How a {@link StateLock} is held: `flock` (native addon) or the `pidfile` fallback. */
export type StateLockKind = 'flock' | 'pidfile';

/** Options of {@link StateLock.acquire}. */
export interface StateLockOptions {
  /**
   * `'auto'` (default): flock when the native addon is built, else the PID file.
   * `'pidfile'` forces the fallback (tests); `'flock'` requires the addon.
   */
  readonly kind?: 'auto' | StateLockKind;
}

/** Hex of the agent's sender_id, SHA-256(utf8(agent))[0:8] (PROTOCOL.md §1): its per-agent file-name part. */
export function agentFileTag(agent: string): string {
  return createHash('sha256').update(agent, 'utf8').digest().subarray(0, 8).toString('hex');
}

/** The per-agent lock file's name inside the state directory (PROTOCOL.md §3). */
export function lockFileName(agent: string): string {
  return `mesh-agent-${agentFileTag(agent)}.lock`;
}

// Locks this process holds, keyed by the state directory's (dev, ino) and the lock file's
// name — not the path string, which a symlink or `..` spells differently for the same
// directory: a second acquire in the same process is refused even where the PID file
// alone cannot tell (it names this very process).
const heldHere = new Set<string>();

/** The {@link heldHere} key of `agent`'s lock in `stateDir`, or the open error naming `file`. */
function heldKey(stateDir: string, agent: string, file: string): string {
  try {
    const st = fs.statSync(stateDir, { bigint: true });
    return `${st.dev}:${st.ino}/${lockFileName(agent)}`;
  } catch (e) {
    throw openFailed(file, e);
  }
}

// Marks a file written by a flock holder: its PID says who holds it, not whether it is held.
const FLOCK_MARK = ' flock';

/**
 * The PID a lock file names and whether a flock holder wrote it; pid 0 when unreadable;
 * `odd` says what it is when it is not a regular file. Opened O_NONBLOCK|O_NOFOLLOW and
 * fstat'ed before reading (at most 64 bytes): a FIFO there must not block the start for ever.
 */
function readHolder(file: string): { pid: number; flock: boolean; odd?: string } {
  try {
    const text = readRegularFile(file, 64, true).bytes.toString('utf8').trim();
    const pid = Number.parseInt(text, 10);
    return { pid: Number.isSafeInteger(pid) && pid > 0 ? pid : 0, flock: text.endsWith(FLOCK_MARK.trim()) };
  } catch (e) {
    if (e instanceof NotRegularFile && !e.what.startsWith('larger')) return { pid: 0, flock: false, odd: e.what };
    return (e as NodeJS.ErrnoException).code === 'ELOOP' ? { pid: 0, flock: false, odd: 'a symbolic link' } : { pid: 0, flock: false };
  }
}

function notRegular(file: string, what: string): DtmeshError {
  return new DtmeshError(`the agent lock file ${file} ${what}: it must be a regular file with no other hard links; remove it while no agent runs on this state directory`);
}

/** True unless `kill(pid, 0)` says no such process (EPERM: alive, someone else's). */
function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function refused(agent: string, stateDir: string, pid: number, file: string, kind: StateLockKind): DtmeshError {
  const who = pid > 0 ? ` (pid ${pid})` : '';
  const fix = kind === 'pidfile' ? `; stop it, or delete ${file} if no such process is running` : '; stop it first';
  return new DtmeshError(`agent ${JSON.stringify(agent)} is already running on state directory ${stateDir}${who}: one agent, one nonce counter${fix}`);
}

function openFailed(file: string, e: unknown): DtmeshError {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return new DtmeshError(`cannot open the agent lock file ${file} (${code}): the state directory must exist and be writable by this user`);
}

/**
 * Create `file` holding this process's PID in one step, or return false when it exists
 * (EEXIST). The PID goes into a 0600 temp file beside it (`.<name>.tmp-<pid>-<12 hex>`,
 * the pattern {@link removeStaleTempFiles} sweeps), which is `link(2)`ed to `file` and
 * then removed: `file` never exists without its PID.
 */
function linkPidFile(file: string): boolean {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw openFailed(file, e);
  }
  try {
    try {
      fs.writeSync(fd, `${process.pid}\n`);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw openFailed(file, e);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * The per-agent state-directory lock of PROTOCOL.md §3, held from {@link acquire} until
 * {@link release} or the end of the process.
 */
export class StateLock {
  private fd: number | null;
  private released = false;
  /** This lock's entry in heldHere (set by acquire). */
  private key = '';

  private constructor(
    /** The lock file's path. */
    readonly file: string,
    /** How it is held. */
    readonly kind: StateLockKind,
    fd: number | null,
  ) {
    this.fd = fd;
  }

  /**
   * Take the lock of `agent` on `stateDir`, or throw a one-line {@link DtmeshError}
   * naming the running holder's PID (PROTOCOL.md §3). Another agent's lock on the same
   * directory never conflicts.
   */
  static acquire(stateDir: string, agent: string, options: StateLockOptions = {}): StateLock {
    const file = path.join(path.resolve(stateDir), lockFileName(agent));
    const want = options.kind ?? 'auto';
    if (want === 'flock' && nativeLockFd === null) throw new DtmeshError('the flock state lock needs the native addon: run npm run build');
    const key = heldKey(stateDir, agent, file);
    if (heldHere.has(key)) throw refused(agent, stateDir, process.pid, file, 'flock');
    const lock = want !== 'pidfile' && nativeLockFd !== null ? StateLock.flock(stateDir, agent, file, nativeLockFd) : StateLock.pidfile(stateDir, agent, file);
    lock.key = key;
    heldHere.add(key);
    return lock;
  }

  private static flock(stateDir: string, agent: string, file: string, lockFd: (fd: number) => number): StateLock {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o600);
    } catch (e) {
      throw (e as NodeJS.ErrnoException).code === 'ELOOP' ? notRegular(file, 'is a symbolic link') : openFailed(file, e);
    }
    // It is truncated and written through this fd: a FIFO would block the reads, and a hard
    // link would let the truncate empty some other file.
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1) {
      fs.closeSync(fd);
      throw notRegular(file, st.isFile() ? `has ${st.nlink} hard links (for an instant while a process without the native addon takes it, or for good after a backup hard-linked it)` : `is ${fileKind(st)}`);
    }
    const rc = lockFd(fd);
    if (rc !== 0) {
      fs.closeSync(fd);
      if (rc === os.constants.errno.EWOULDBLOCK || rc === os.constants.errno.EAGAIN) throw refused(agent, stateDir, readHolder(file).pid, file, 'flock');
      throw new DtmeshError(`cannot lock the agent lock file ${file} (errno ${rc})`);
    }
    // A PID file left by a live fallback holder (a build without the addon) still counts.
    const prev = readHolder(file);
    if (!prev.flock && prev.pid !== process.pid && alive(prev.pid)) {
      fs.closeSync(fd);
      throw refused(agent, stateDir, prev.pid, file, 'pidfile');
    }
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}${FLOCK_MARK}\n`, 0);
    return new StateLock(file, 'flock', fd);
  }

  private static pidfile(stateDir: string, agent: string, file: string): StateLock {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (linkPidFile(file)) {
        removeStaleTempFiles(file); // what a crash between temp write and link left
        return new StateLock(file, 'pidfile', null);
      }
      const holder = readHolder(file);
      if (holder.odd !== undefined) throw notRegular(file, `is ${holder.odd}`);
      // our own PID but not held here (heldHere): left by an earlier run that had this PID (containers reuse them)
      if (alive(holder.pid) && holder.pid !== process.pid) throw refused(agent, stateDir, holder.pid, file, 'pidfile');
      fs.rmSync(file, { force: true }); // stale: its holder is gone
    }
    throw refused(agent, stateDir, readHolder(file).pid, file, 'pidfile');
  }

  /** True until {@link release}. */
  get held(): boolean {
    return !this.released;
  }

  /**
   * Give the lock up (idempotent). flock: the file is emptied and closed (kept, see the
   * module comment). PID file: deleted if it still names this process.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.key);
    if (this.fd !== null) {
      try {
        fs.ftruncateSync(this.fd, 0);
      } finally {
        fs.closeSync(this.fd);
        this.fd = null;
      }
      return;
    }
    if (readHolder(this.file).pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}
