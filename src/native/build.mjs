// Build the native addon — the MAC kernel (mac.c) and the native lane (lane.c), see
// src/protocol/native.ts — with node-gyp into dist/native/dtmesh_mac.node. Never fails the
// install: where it cannot be built (no compiler, no Node headers) it writes why into
// dist/native/status.json, says so in one line, and the engine uses the JS kernel and the
// dgram lane (`lane: 'auto'` says so in one line too).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const out = path.join(root, 'dist', 'native');
fs.mkdirSync(out, { recursive: true });
fs.rmSync(path.join(out, 'dtmesh_mac.node'), { force: true });

// npm hands scripts its own node-gyp (npm_config_node_gyp) and the configured Node headers (npm_config_nodedir)
const gyp =
  process.env.npm_config_node_gyp ??
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const args = [gyp, 'rebuild', `--directory=${here}`];
// without npm's nodedir setting, use this Node's own headers when it has them (no download)
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
const built = path.join(here, 'build', 'Release', 'dtmesh_mac.node');
let status;
if (r.status === 0 && fs.existsSync(built)) {
  fs.copyFileSync(built, path.join(out, 'dtmesh_mac.node'));
  status = { built: true };
} else {
  const log = `${r.stderr ?? ''}\n${r.error?.message ?? ''}`;
  const line = log.split('\n').find((l) => /gyp ERR! (stack Error|configure error)|error:|not found|ENOENT/i.test(l)) ?? `node-gyp exited ${r.status}`;
  status = { built: false, why: line.replace(/^gyp ERR! (stack )?/, '').trim().slice(0, 200) };
  process.stderr.write(`dtmesh: native MAC kernel and lane not built (${status.why}); the JS kernel and the dgram lane are used\n`);
}
fs.rmSync(path.join(here, 'build'), { recursive: true, force: true });
fs.writeFileSync(path.join(out, 'status.json'), JSON.stringify(status) + '\n');
