/**
 * test/vectors/ must stay a verbatim copy of ../shared/vectors/ (checked whenever that
 * folder exists, as it does in CI), and every file in it must be one the tests load.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot, vectorsDir } from './helpers.js';

const shared = path.resolve(repoRoot, '..', 'shared', 'vectors');

test('test/vectors is byte-identical to ../shared/vectors: the same directory listing, every file the same bytes', { skip: !fs.existsSync(shared) && `no ../shared/vectors beside this clone (${shared})` }, () => {
  const theirs = fs.readdirSync(shared).sort();
  const ours = fs.readdirSync(vectorsDir).sort();
  assert.deepEqual(ours, theirs, 'the same files, README included, nothing extra or missing');
  for (const f of theirs) {
    assert.ok(fs.readFileSync(path.join(shared, f)).equals(fs.readFileSync(path.join(vectorsDir, f))), `${f} differs from ../shared/vectors/${f}`);
  }
});

test('every vector file is loaded by a test', () => {
  const ours = fs.readdirSync(vectorsDir).filter((f) => f.endsWith('.json'));
  assert.ok(ours.length > 0);
  const sources = [path.join(repoRoot, 'dist', 'test', 'protocol'), path.join(repoRoot, 'dist', 'test')]
    .flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith('.js')).map((f) => fs.readFileSync(path.join(d, f), 'utf8')))
    .join('\n');
  for (const f of ours) assert.match(sources, new RegExp(`loadVectors\\('${f.replace('.', '\\.')}'\\)`), `${f} is loaded by some test`);
});
