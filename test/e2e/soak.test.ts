/**
 * Memory stays flat under a sustained flood (ENGINE.md): `dtmesh serve` flooded at the
 * highest rate one sender reaches for 60 s; RSS after a 10 s warm-up and at the end
 * differ by less than 20 MB, and the books balance. Slow: runs under `npm run test:slow`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadRootKey } from '../../src/keys/keystore.js';
import { DROP_REASONS } from '../../src/protocol/verdict.js';
import { repoRoot, tempDir, until, within } from '../helpers.js';

const cli = path.join(repoRoot, 'dist', 'cli.js');
const floodgen = path.join(repoRoot, 'dist', 'test', 'fixtures', 'floodgen.js');

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

test('RSS stays flat over a 60 s flood (growth < 20 MB after warm-up)', { skip: (!process.env.DTMESH_SLOW && 'slow: npm run test:slow') || (process.platform !== 'linux' && 'reads /proc'), timeout: 120_000 }, async () => {
  const dir = tempDir('dtmesh-soak-');
  assert.equal(spawnSync(process.execPath, [cli, 'keys', 'init', '--state-dir', dir]).status, 0);
  const stats = path.join(dir, 'stats.json');
  const child = spawn(process.execPath, [cli, 'serve', '--state-dir', dir, '--tenant', 'flood', '--agent', 'resp', '--peers', 'flood-member', '--listen', '127.0.0.1:0', '--stats-json', stats], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  try {
    await until(15_000, () => /listening on 127\.0\.0\.1:(\d+)/.test(out), 'serve to listen');
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]!;
    const gen = spawn(process.execPath, [floodgen, port, '60', '0', Buffer.from(loadRootKey(dir)).toString('hex'), 'flood', 'resp'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let genOut = '';
    gen.stdout.on('data', (d) => (genOut += d));
    const genDone = new Promise<void>((r) => gen.on('exit', () => r()));
    await new Promise((r) => setTimeout(r, 10_000));
    const warm = rssMb(child.pid!);
    const samples: number[] = [];
    for (let t = 0; t < 49; t++) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(rssMb(child.pid!));
    }
    await within(30_000, genDone, 'the flood generator to finish');
    const end = rssMb(child.pid!);
    child.kill('SIGTERM');
    assert.equal(await within(30_000, exited, 'serve to exit after SIGTERM'), 0);
    const s = JSON.parse(fs.readFileSync(stats, 'utf8'));
    const sent = JSON.parse(genOut).sent as number;
    process.stdout.write(`# soak: flood sent ${sent} in 60 s (${Math.round(sent / 60)} pps), received ${s.received}, overload ${s.dropped.overload}; RSS after warm-up ${warm.toFixed(1)} MB, max ${Math.max(...samples).toFixed(1)} MB, end ${end.toFixed(1)} MB\n`);
    assert.ok(Math.max(...samples, end) - warm < 20, `RSS grew from ${warm.toFixed(1)} MB to ${Math.max(...samples, end).toFixed(1)} MB`);
    assert.equal(s.received, s.accepted + DROP_REASONS.reduce((a: number, r) => a + s.dropped[r], 0));
  } finally {
    child.kill('SIGKILL');
  }
});
