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

test('writeAtomic and checkWritable refuse a symlink another user planted in a sticky world-writable directory (the kernel\'s protected_symlinks rule, which Node\'s realpath bypasses); the victim is untouched; a link of our own there is still followed', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: the test makes a link owned by another user (lchown)');
  const sticky = tempDir('dtmesh-sticky-');
  fs.chmodSync(sticky, 0o1777);
  const safe = tempDir('dtmesh-victim-');
  const victim = path.join(safe, 'important');
  fs.writeFileSync(victim, 'secret', { mode: 0o600 });
  const planted = path.join(sticky, 'report.html');
  fs.symlinkSync(victim, planted);
  fs.lchownSync(planted, 65534, 65534); // nobody's link
  try {
    assert.throws(() => checkWritable('--report', planted), (e: Error) => /not followed/.test(e.message) && !e.message.includes('\n'));
    assert.throws(() => writeAtomic('--report', planted, '<html>'), /not followed/);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'secret', 'the victim is untouched');
    assert.equal(fs.statSync(victim).mode & 0o777, 0o600);
    const mine = path.join(sticky, 'mine.html');
    fs.symlinkSync(victim, mine); // root's own link: followed, as before
    writeAtomic('--report', mine, 'ours');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'ours');
    assert.deepEqual(fs.readdirSync(safe), ['important'], 'no temporary file left beside it');
    // a planted link to a directory, with the file named under it: checked as the kernel resolves, every component
    const dirLink = path.join(sticky, 'out');
    fs.symlinkSync(safe, dirLink);
    fs.lchownSync(dirLink, 65534, 65534);
    assert.throws(() => checkWritable('--report', path.join(dirLink, 'important')), /out is a symbolic link another user .* not followed/);
    assert.throws(() => writeAtomic('--report', path.join(dirLink, 'important'), 'pwned'), /not followed/);
    assert.throws(() => writeAtomic('--report', path.join(sticky, 'x', '..', 'out', 'important'), 'pwned'), /not followed/, 'also behind a ..');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'ours');
  } finally {
    fs.rmSync(sticky, { recursive: true, force: true });
    fs.rmSync(safe, { recursive: true, force: true });
  }
});
