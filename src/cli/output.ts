/**
 * Output files of the commands (`serve --stats-json`, `probe --json/--histogram`,
 * `agent --report`, `demo --report`): checked when the command starts, so a typo in a
 * path fails in one line before a long run and not after it, and a regular file is written
 * whole or not at all (a temporary file beside it, then `rename`), so a reader never sees
 * half a report and an interrupted write leaves the previous file as it was. A path that
 * is not a regular file — `/dev/stdout`, `/dev/null`, a FIFO — is written in place, and a
 * symbolic link is followed (the file it points to is replaced, not the link).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DtmeshError } from '../errors.js';

function reason(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** Where writing `file` goes, and how: the resolved path, and whether it is written by rename (a regular file, or none yet). */
function target(file: string): { where: string; atomic: boolean } {
  let where = path.resolve(file);
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
  const { where, atomic } = target(file);
  const fail = (why: string): DtmeshError => new DtmeshError(`cannot write ${flag} ${file}: ${why}`);
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

/** Write `text` to `file`: a regular file (or a new one) atomically, anything else in place; one line on failure. */
export function writeAtomic(flag: string, file: string, text: string): void {
  const { where, atomic } = target(file);
  const tmp = path.join(path.dirname(where), `.${path.basename(where)}.${process.pid}.tmp`);
  try {
    if (!atomic) {
      fs.writeFileSync(where, text);
      return;
    }
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, where);
  } catch (e) {
    if (atomic) fs.rmSync(tmp, { force: true });
    throw new DtmeshError(`cannot write ${flag} ${file}: ${reason(e)}`);
  }
}
