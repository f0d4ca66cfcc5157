/** The test helpers' own guarantees: a test run leaves no directory of its own in /tmp. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

const helpersUrl = new URL('./helpers.js', import.meta.url).href;

test('tempDir: the directories a process made are gone, contents and all, once it exits', () => {
  // a child that makes two, fills one like a state directory (a root key in a subdirectory
  // too) and exits on its own: its exit handler must remove both
  const script = `
    import * as fs from 'node:fs';
    import * as path from 'node:path';
    import { tempDir } from ${JSON.stringify(helpersUrl)};
    const a = tempDir('dtmesh-helpers-');
    const b = tempDir('dtmesh-helpers-');
    fs.writeFileSync(path.join(a, 'mesh-root-key'), Buffer.alloc(32), { mode: 0o600 });
    fs.mkdirSync(path.join(b, 'sub'));
    fs.writeFileSync(path.join(b, 'sub', 'file'), 'x');
    console.log(JSON.stringify([a, b]));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  const dirs = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string[];
  try {
    assert.equal(dirs.length, 2);
    for (const d of dirs) {
      assert.equal(path.dirname(d), path.resolve(os.tmpdir()), `${d} is in the temp dir`);
      assert.match(path.basename(d), /^dtmesh-helpers-.{6}$/, 'the prefix is kept');
      assert.equal(fs.existsSync(d), false, `${d} removed at the child's exit`);
    }
  } finally {
    for (const d of dirs) if (path.basename(d).startsWith('dtmesh-helpers-')) fs.rmSync(d, { recursive: true, force: true });
  }
});
