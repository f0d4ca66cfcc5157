/**
 * Output files (src/cli/output.ts): a regular file is replaced whole by rename (no
 * temporary file left behind), a symlink is followed (the link stays a link), a device
 * such as /dev/null is written in place (never replaced by a regular file, which a root
 * process could do), and the check at start refuses what the write would fail on.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkWritable, writeAtomic } from '../../src/cli/output.js';
import { tempDir } from '../helpers.js';

test('writeAtomic: a regular file replaced whole, a symlink followed, /dev/null written in place', () => {
  const dir = tempDir('dtmesh-out-');
  const file = path.join(dir, 'r.json');
  fs.writeFileSync(file, 'old');
  writeAtomic('--json', file, 'new');
  assert.equal(fs.readFileSync(file, 'utf8'), 'new');
  assert.deepEqual(fs.readdirSync(dir), ['r.json'], 'no temporary file left');
  const link = path.join(dir, 'link.json');
  fs.symlinkSync(file, link);
  writeAtomic('--json', link, 'via link');
  assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the link is still a link');
  assert.equal(fs.readFileSync(file, 'utf8'), 'via link', 'the file it points to was written');
  checkWritable('--stats-json', '/dev/null');
  writeAtomic('--stats-json', '/dev/null', 'discarded');
  assert.ok(fs.statSync('/dev/null').isCharacterDevice(), '/dev/null is still the device');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['link.json', 'r.json']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('checkWritable: a directory, a missing directory and (not as root) a read-only directory are refused in one line', (t) => {
  const dir = tempDir('dtmesh-out-');
  assert.throws(() => checkWritable('--report', dir), /cannot write --report .*: it is a directory/);
  assert.throws(() => checkWritable('--report', path.join(dir, 'no', 'r.html')), /cannot write --report .*: ENOENT/);
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro);
  fs.writeFileSync(path.join(ro, 'r.html'), 'x');
  fs.chmodSync(ro, 0o555);
  try {
    if (process.getuid?.() === 0) {
      console.log('# as root every directory is writable: the read-only case is not checked');
      t.diagnostic('root: read-only directory case not checked');
    } else {
      assert.throws(() => checkWritable('--report', path.join(ro, 'r.html')), /cannot write --report .*: EACCES/, 'an existing writable file in a read-only directory: the rename would fail');
    }
  } finally {
    fs.chmodSync(ro, 0o755);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
