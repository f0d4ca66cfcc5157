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

test('test/vectors is byte-identical to ../shared/vectors', { skip: !fs.existsSync(shared) && 'no ../shared/vectors beside this clone' }, () => {
  const theirs = fs.readdirSync(shared).filter((f) => f.endsWith('.json')).sort();
  const ours = fs.readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(ours, theirs, 'the same vector files');
  for (const f of theirs) {
    assert.ok(fs.readFileSync(path.join(shared, f)).equals(fs.readFileSync(path.join(vectorsDir, f))), `${f} differs from ../shared/vectors/${f}`);
  }
});

test('the vector copy holds the five files the protocol tests load', () => {
  const ours = fs.readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(ours, ['keys.json', 'packets.json', 'replies.json', 'rfc.json', 'verdicts.json']);
});
