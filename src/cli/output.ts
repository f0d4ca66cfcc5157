/**
 * Output files of the commands (`serve --stats-json`, `probe --json/--histogram`,
 * `agent --report`, `demo --report`): checked when the command starts, so a typo in a
 * path fails in one line before a long run and not after it, and a regular file is written
 * whole or not at all (a temporary file beside it, then `rename`), so a reader never sees
 * half a report and an interrupted write leaves the previous file as it was. A path that
 * is not a regular file — `/dev/stdout`, `/dev/null`, a FIFO — is written in place, and a
 * symbolic link is followed (the file it points to is replaced, not the link) — except one
 * the kernel's `protected_symlinks` would refuse: a link in a sticky world-writable
 * directory (`/tmp`) owned by neither that directory's owner nor this user. Node resolves
 * links by `readlink`, which that protection does not cover, so without this check root
 * writing a report to `/tmp/x.html` would replace any file another user pointed it at.
 * The temporary file has a random name and is created exclusively, never through a link.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DtmeshError } from '../errors.js';
import { type NotRegularFile, readRegularFile } from '../keys/keystore.js';
import { usage } from './args.js';

function reason(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/**
 * Why following a link on the way to `p` is refused, or null: the kernel's
 * `protected_symlinks` rule (a symlink in a sticky world-writable directory is followed only
 * when its owner is the follower or the directory's owner), applied as the kernel resolves
 * a path — every component, a directory link included, `..` taken in the directory a link
 * led to — which Node's `realpath` (by `readlink`) would otherwise follow unchecked.
 */
export function unsafeLink(p: string): string | null {
  const me = process.geteuid?.() ?? -1;
  let todo = path.resolve(p).split(path.sep).filter((x) => x !== '');
  let cur: string = path.sep;
  for (let hops = 0; todo.length > 0; ) {
    const part = todo.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(next);
    } catch {
      return null; // not there (yet): nothing more to follow
    }
    if (!st.isSymbolicLink()) {
      cur = next;
      continue;
    }
    if (++hops > 40) return null; // a loop: the write itself says ELOOP
    const ds = fs.statSync(cur);
    if ((ds.mode & 0o1002) === 0o1002 && st.uid !== ds.uid && st.uid !== me) {
      return `${next} is a symbolic link another user (uid ${st.uid}) owns in the sticky world-writable directory ${cur}: not followed`;
    }
    const to = fs.readlinkSync(next);
    todo = [...to.split(path.sep).filter((x) => x !== ''), ...todo];
    if (path.isAbsolute(to)) cur = path.sep;
  }
  return null;
}

/** Where writing `file` goes, and how: the resolved path, and whether it is written by rename (a regular file, or none yet). Throws `fail(why)` for a link not to follow ({@link unsafeLink}). */
function target(file: string, fail: (why: string) => Error): { where: string; atomic: boolean } {
  let where = path.resolve(file);
  const unsafe = unsafeLink(where);
  if (unsafe !== null) throw fail(unsafe);
  try {
    where = fs.realpathSync(where); // a symlink: its target
  } catch {
    // not there yet (or a dangling link: written as a new file where the path says)
  }
  try {
    return { where, atomic: fs.statSync(where).isFile() };
  } catch {
    return { where, atomic: true };
  }
}

/**
 * Throw one line unless `file` can be written as {@link writeAtomic} will: not a
 * directory; an existing non-regular file writable; otherwise its directory exists and is
 * writable (the temporary file and the rename need it). Writes nothing.
 */
export function checkWritable(flag: string, file: string): void {
  const fail = (why: string): DtmeshError => new DtmeshError(`cannot write ${flag} ${file}: ${why}`);
  const { where, atomic } = target(file, fail);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(where);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fail(reason(e));
  }
  if (st?.isDirectory() === true) throw fail('it is a directory');
  try {
    if (st !== null) fs.accessSync(where, fs.constants.W_OK);
    if (atomic) fs.accessSync(path.dirname(where), fs.constants.W_OK);
  } catch (e) {
    throw fail(reason(e));
  }
}

/**
 * Which file writing `file` replaces, or null for one written in place (`/dev/null`, a FIFO:
 * {@link writeAtomic}) that two outputs may share: an existing file by device and inode
 * (a symbolic or hard link to it is the same file), a new one by its directory's real path.
 */
function outputIdentity(file: string): string | null {
  const where = path.resolve(file);
  try {
    const st = fs.statSync(where);
    return st.isFile() ? `${st.dev}:${st.ino}` : null;
  } catch {
    try {
      return path.join(fs.realpathSync(path.dirname(where)), path.basename(where));
    } catch {
      return where; // its directory is not there either: checkWritable says so
    }
  }
}

/**
 * Throw a usage error (exit 2) when two of a command's output flags name one file: the
 * last written would silently replace the other (`probe --json F --json-stream F`).
 * `outputs` pairs each flag with its path, null when not given; `-` (stdout) is left to
 * the command, which knows which of its outputs may go there.
 */
export function distinctOutputs(command: string, outputs: Array<[flag: string, file: string | null]>): void {
  const seen = new Map<string, string>();
  for (const [flag, file] of outputs) {
    if (file === null || file === '-') continue;
    const id = outputIdentity(file);
    if (id === null) continue;
    const other = seen.get(id);
    if (other !== undefined) throw usage(command, `${other} and ${flag} name the same file ${file}: one would overwrite the other; give each its own`);
    seen.set(id, flag);
  }
}

/** Write `text` to `file`: a regular file (or a new one) atomically, anything else in place; one line on failure. */
export function writeAtomic(flag: string, file: string, text: string): void {
  const fail = (why: string): DtmeshError => new DtmeshError(`cannot write ${flag} ${file}: ${why}`);
  const { where, atomic } = target(file, fail);
  // a name no one can guess, created here and nowhere else (O_EXCL | O_NOFOLLOW): never a planted file or link
  const tmp = path.join(path.dirname(where), `.${path.basename(where)}.${randomBytes(6).toString('hex')}.tmp`);
  let made = false;
  try {
    if (!atomic) {
      fs.writeFileSync(where, text);
      return;
    }
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    made = true;
    try {
      fs.writeFileSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, where);
  } catch (e) {
    if (made) fs.rmSync(tmp, { force: true });
    throw fail(reason(e));
  }
}

/**
 * An NDJSON stream (`--json-stream PATH|-`): one whole line per {@link write}, to stdout or
 * to a file opened (and emptied) by {@link LineSink.open} — which the commands call only once
 * their engine holds the agent's lock, so a second process refused as "already running"
 * does not empty the running one's stream ({@link checkWritable} tells a bad path earlier).
 * A write that fails — a reader gone (`| head`: EPIPE), a full disk — ends the stream with one
 * line through `say`, never an unhandled error with a stack: the run goes on, its report and
 * metrics are whole.
 */
export class LineSink {
  private fd = -1;
  private dead = false;

  private constructor(
    private readonly flag: string,
    private readonly where: string,
    private readonly say: (line: string) => void,
  ) {}

  /** Open `where` ('-': stdout) for `flag`; one-line {@link DtmeshError} when it cannot be. */
  static open(flag: string, where: string, say: (line: string) => void): LineSink {
    const sink = new LineSink(flag, where, say);
    if (where === '-') process.stdout.on('error', (e) => sink.fail(e));
    else {
      const unsafe = unsafeLink(where);
      if (unsafe !== null) throw new DtmeshError(`cannot write ${flag} ${where}: ${unsafe}`);
      try {
        sink.fd = fs.openSync(where, 'w');
      } catch (e) {
        throw new DtmeshError(`cannot write ${flag} ${where}: ${reason(e)}`);
      }
    }
    return sink;
  }

  /** Write `o` as one line (nothing once the stream failed). */
  write(o: object): void {
    if (this.dead) return;
    const line = JSON.stringify(o) + '\n';
    if (this.fd < 0) {
      process.stdout.write(line);
      return;
    }
    try {
      fs.writeSync(this.fd, line);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Close the file (stdout stays open). */
  close(): void {
    this.dead = true;
    const fd = this.fd;
    this.fd = -1;
    if (fd < 0) return;
    try {
      fs.closeSync(fd);
    } catch (e) {
      this.say(`${this.flag} ${this.where}: closing it failed (${reason(e)}): its last lines may be missing`);
    }
  }

  private fail(e: unknown): void {
    if (this.dead) return;
    this.close();
    this.say(`${this.flag} ${this.where === '-' ? 'stdout' : this.where}: cannot write (${reason(e)}): no more lines there; the run goes on`);
  }
}

/**
 * An input file of a command (a roster, a heartbeat) as text, with its permission bits:
 * a regular file of at most 1 MiB, never waited on ({@link readRegularFile}: a FIFO is
 * refused). Throws the open's error (its `code` the errno) or a {@link NotRegularFile}
 * whose message says what the file is instead.
 */
export function readInputFile(file: string): { text: string; mode: number } {
  const { bytes, mode } = readRegularFile(file, 1 << 20);
  return { text: bytes.toString('utf8'), mode };
}
