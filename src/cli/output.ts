/**
 * Output files of the commands (`serve --stats-json`, `probe --json/--histogram`,
 * `agent --report`, `demo --report`): checked when the command starts, so a typo in a
 * path fails in one line before a long run and not after it, and written whole or not at
 * all (a temporary file beside the target, then `rename`), so a reader never sees half
 * a report and an interrupted write leaves the previous file as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DtmeshError } from '../errors.js';

function reason(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/**
 * Throw one line unless `file` can be written: its directory exists and is writable, and
 * `file` is not a directory (nor an existing file without write permission). Writes nothing.
 */
export function checkWritable(flag: string, file: string): void {
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DtmeshError(`cannot write ${flag} ${file}: ${reason(e)}`);
  }
  if (st?.isDirectory() === true) throw new DtmeshError(`cannot write ${flag} ${file}: it is a directory`);
  try {
    fs.accessSync(st !== null ? file : path.dirname(path.resolve(file)), fs.constants.W_OK);
  } catch (e) {
    throw new DtmeshError(`cannot write ${flag} ${file}: ${reason(e)}`);
  }
}

/** Write `text` to `file` atomically (temporary file in the same directory, then rename); one line on failure. */
export function writeAtomic(flag: string, file: string, text: string): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new DtmeshError(`cannot write ${flag} ${file}: ${reason(e)}`);
  }
}
