/** The root key at rest and heartbeat responses (PROTOCOL.md §1). */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createSecretKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import fsDefault from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../src/engine.js';
import { DtmeshError } from '../../src/errors.js';
import { NONCE_RETRY } from '../../src/keys/nonce.js';
import { ensureStateDir, initRootKey, loadRootKey, parseHeartbeat, persistHeartbeat, rootFingerprint, rootKeyPath, saveRootKey, TENANT_FILE } from '../../src/keys/keystore.js';
import { tempDir } from '../helpers.js';

function tmp(): string {
  return tempDir('dtmesh-ks-');
}

function refuses(dir: string, re: RegExp): void {
  assert.throws(() => loadRootKey(dir), (e: unknown) => e instanceof DtmeshError && re.test(e.message) && !e.message.includes('\n'));
}

test('save then load round-trips 32 bytes with mode 0600 and leaves no temp file', () => {
  const dir = tmp();
  const key = new Uint8Array(randomBytes(32));
  saveRootKey(dir, key);
  assert.deepEqual(loadRootKey(dir), key);
  assert.equal(fs.statSync(rootKeyPath(dir)).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir), ['mesh-root-key']);
  const next = new Uint8Array(randomBytes(32));
  saveRootKey(dir, createSecretKey(next)); // an embedding app may hold the root as a KeyObject
  assert.deepEqual(loadRootKey(dir), next);
});

test('loading refuses: missing dir, missing file, wrong size (a crash-truncated key), group/other mode, symlink, directory', () => {
  const dir = tmp();
  refuses(path.join(dir, 'absent'), /does not exist/);
  refuses(dir, /no root key/);
  fs.writeFileSync(rootKeyPath(dir), randomBytes(17), { mode: 0o600 });
  refuses(dir, /is 17 bytes; a root key file holds exactly 32/);
  fs.writeFileSync(rootKeyPath(dir), randomBytes(33), { mode: 0o600 });
  refuses(dir, /is 33 bytes/);
  fs.writeFileSync(rootKeyPath(dir), randomBytes(32));
  fs.chmodSync(rootKeyPath(dir), 0o644);
  refuses(dir, /mode 0644.*chmod 600/);
  fs.chmodSync(rootKeyPath(dir), 0o640);
  refuses(dir, /mode 0640/);
  fs.rmSync(rootKeyPath(dir));
  const elsewhere = path.join(tmp(), 'k');
  fs.writeFileSync(elsewhere, randomBytes(32), { mode: 0o600 });
  fs.symlinkSync(elsewhere, rootKeyPath(dir));
  refuses(dir, /symbolic link/);
  fs.rmSync(rootKeyPath(dir));
  fs.mkdirSync(rootKeyPath(dir));
  refuses(dir, /not a regular file/);
  const aFile = path.join(tmp(), 'not-a-dir');
  fs.writeFileSync(aFile, 'x');
  refuses(aFile, /not a directory/);
});

const loadKeyChild = fileURLToPath(new URL('../fixtures/load-key.js', import.meta.url));

type ChildLoad = { ok: true; hex: string } | { ok: false; name: string; message: string };

/** Load `dir`'s key in a child (test/fixtures/load-key.ts), bounded at 10 s: a hang fails. */
function loadInChild(dir: string, swap = 'none'): ChildLoad {
  const r = spawnSync(process.execPath, [loadKeyChild, dir, swap], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.signal, null, `loader hung (killed by ${r.signal}) on ${swap}`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ChildLoad;
}

function refusesInChild(dir: string, re: RegExp, swap = 'none'): void {
  const r = loadInChild(dir, swap);
  assert.ok(!r.ok, `${swap}: loaded a key it must refuse`);
  assert.equal(r.name, 'DtmeshError', r.message);
  assert.match(r.message, re);
  assert.ok(!r.message.includes('\n'), 'one line');
}

function mkfifo(file: string): void {
  const r = spawnSync('mkfifo', ['-m', '600', file]);
  assert.equal(r.status, 0, 'mkfifo');
}

test('loading refuses a FIFO, a symlink, a directory, mode 0644 and a wrong size with one line each, and never hangs', () => {
  const dir = tmp();
  const file = rootKeyPath(dir);
  mkfifo(file); // no writer ever opens it: a blocking open would wait forever
  refusesInChild(dir, /is not a regular file/);
  fs.rmSync(file);
  const elsewhere = path.join(tmp(), 'k');
  fs.writeFileSync(elsewhere, randomBytes(32), { mode: 0o600 });
  fs.symlinkSync(elsewhere, file);
  refusesInChild(dir, /is a symbolic link/);
  fs.rmSync(file);
  fs.mkdirSync(file);
  refusesInChild(dir, /is not a regular file/);
  fs.rmdirSync(file);
  fs.writeFileSync(file, randomBytes(32), { mode: 0o600 });
  fs.chmodSync(file, 0o644);
  refusesInChild(dir, /has mode 0644; .*chmod 600/);
  fs.chmodSync(file, 0o600);
  fs.appendFileSync(file, 'x');
  refusesInChild(dir, /is 33 bytes; a root key file holds exactly 32/);
});

test('the checks hold for the file actually read: a swap between check and open (TOCTOU) is refused, never loaded', () => {
  const good = new Uint8Array(randomBytes(32));
  const setup = (): string => {
    const dir = tmp();
    saveRootKey(dir, good);
    return dir;
  };
  // a group-readable key swapped in after a path-based mode check must not be returned
  let dir = setup();
  fs.writeFileSync(path.join(dir, 'swap-in'), randomBytes(32), { mode: 0o644 });
  fs.chmodSync(path.join(dir, 'swap-in'), 0o644);
  refusesInChild(dir, /has mode 0644/, 'mode');
  // a FIFO swapped in after a path-based type check must not hang the loader
  dir = setup();
  mkfifo(path.join(dir, 'swap-in'));
  refusesInChild(dir, /is not a regular file/, 'fifo');
  // a symlink swapped in gets the symlink message, not a bare errno
  dir = setup();
  const elsewhere = path.join(tmp(), 'k');
  fs.writeFileSync(elsewhere, randomBytes(32), { mode: 0o600 });
  fs.symlinkSync(elsewhere, path.join(dir, 'swap-in'));
  refusesInChild(dir, /is a symbolic link/, 'symlink');
  // a directory swapped in
  dir = setup();
  fs.mkdirSync(path.join(dir, 'swap-in'));
  refusesInChild(dir, /is not a regular file/, 'dir');
  // and the unswapped file still loads through the child
  dir = setup();
  const r = loadInChild(dir);
  assert.ok(r.ok && r.hex === Buffer.from(good).toString('hex'));
});

test('an error never contains key bytes', () => {
  const dir = tmp();
  const key = randomBytes(31);
  fs.writeFileSync(rootKeyPath(dir), key, { mode: 0o600 });
  assert.throws(() => loadRootKey(dir), (e: Error) => !e.message.includes(key.toString('hex')) && !e.message.includes(key.toString('base64')));
});

test('an interrupted write never replaces the key: the old key stays whole', () => {
  const dir = tmp();
  const old = new Uint8Array(randomBytes(32));
  saveRootKey(dir, old);
  // a crash between writing the temp file and renaming it leaves a stray temp file, never a partial key
  fs.writeFileSync(path.join(dir, '.mesh-root-key.tmp-1-abc'), randomBytes(7), { mode: 0o600 });
  assert.deepEqual(loadRootKey(dir), old);
  assert.throws(() => saveRootKey(dir, new Uint8Array(31)), RangeError);
  assert.deepEqual(loadRootKey(dir), old);
});

const keyWriterChild = fileURLToPath(new URL('../fixtures/key-writer.js', import.meta.url));

test('a real crash during a key write (writer SIGKILLed at random moments) never leaves a partial or missing key', async () => {
  const dir = tmp();
  const a = new Uint8Array(randomBytes(32));
  const b = new Uint8Array(randomBytes(32));
  const hexA = Buffer.from(a).toString('hex');
  const hexB = Buffer.from(b).toString('hex');
  saveRootKey(dir, a);
  const kills = 40;
  const deadline = Date.now() + 15_000; // bounded: ~60 ms a round here, so 40 rounds take a few seconds
  let round = 0;
  const seen = new Set<string>();
  for (; round < kills && Date.now() < deadline; round++) {
    const child = spawn(process.execPath, [keyWriterChild, dir, hexA, hexB], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const started = once(child.stdout, 'data') as Promise<[Buffer]>;
    const first = await Promise.race([started.then(([d]) => d.toString()), exited.then(([code]) => `exited early with code ${code}`)]);
    assert.equal(first, 'started\n');
    await sleep(Math.random() * 20);
    child.kill('SIGKILL');
    const [code, signal] = await exited;
    assert.equal(signal, 'SIGKILL', `writer exited by itself (code ${code}): it must still be writing when killed`);
    const loaded = Buffer.from(loadRootKey(dir)).toString('hex'); // throws on a partial (0..31 bytes) or missing key
    assert.ok(loaded === hexA || loaded === hexB, `round ${round}: the key is neither A nor B`);
    seen.add(loaded);
    assert.equal(fs.statSync(rootKeyPath(dir)).mode & 0o777, 0o600);
  }
  assert.ok(round >= 30, `only ${round} rounds in the time bound`);
  assert.equal(seen.size, 2, 'the writer replaced the key at least once (the kills land mid-loop)');
  // temp files of the killed writers may remain until the next save, which removes those of dead processes
  saveRootKey(dir, a);
  assert.deepEqual(fs.readdirSync(dir), ['mesh-root-key']);
});

const good = { tenant_id: 'tenant-1', mesh_root_key: Buffer.from(randomBytes(32)).toString('base64'), peers: ['a', 'b'] };

test('heartbeat validation: base64 of exactly 32 bytes, valid IDs; the message never echoes the key', () => {
  assert.equal(parseHeartbeat(good).root.length, 32);
  assert.equal(parseHeartbeat({ ...good, peers: undefined }).peers, null);
  const bad: unknown[] = [
    null,
    [],
    'x',
    { ...good, tenant_id: 'a|b' },
    { ...good, tenant_id: '' },
    { ...good, mesh_root_key: Buffer.from(randomBytes(31)).toString('base64') },
    { ...good, mesh_root_key: Buffer.from(randomBytes(33)).toString('base64') },
    { ...good, mesh_root_key: good.mesh_root_key.replace(/.$/, '') },
    { ...good, mesh_root_key: good.mesh_root_key.replace(/^./, '-') }, // base64url is not standard base64
    { ...good, mesh_root_key: 42 },
    { ...good, peers: 'a,b' },
    { ...good, peers: ['ok', 'bad\n'] },
  ];
  for (const b of bad) {
    assert.throws(
      () => parseHeartbeat(b),
      (e: Error) => e instanceof TypeError && !e.message.includes(good.mesh_root_key.slice(0, 20)),
      JSON.stringify(b),
    );
  }
});

test('tenant.json is 0644 and never holds the key', () => {
  const dir = tmp();
  const hb = parseHeartbeat(good);
  persistHeartbeat(dir, hb);
  const text = fs.readFileSync(path.join(dir, TENANT_FILE), 'utf8');
  assert.equal(fs.statSync(path.join(dir, TENANT_FILE)).mode & 0o777, 0o644);
  assert.equal(JSON.parse(text).tenant_id, 'tenant-1');
  for (const enc of ['hex', 'base64', 'base64url'] as const) assert.ok(!text.includes(Buffer.from(hb.root).toString(enc)), enc);
  assert.deepEqual(loadRootKey(dir), hb.root);
});

test('a heartbeat without peers keeps the roster tenant.json holds for its tenant (roster unchanged); one with peers, or of another tenant, replaces it', () => {
  const dir = tmp();
  const tenantJson = (): { tenant_id: string; peers?: string[]; root_fingerprint: string } => JSON.parse(fs.readFileSync(path.join(dir, TENANT_FILE), 'utf8'));
  persistHeartbeat(dir, parseHeartbeat(good));
  const next = { tenant_id: 'tenant-1', mesh_root_key: Buffer.from(randomBytes(32)).toString('base64') };
  persistHeartbeat(dir, parseHeartbeat(next));
  assert.deepEqual(tenantJson(), { tenant_id: 'tenant-1', peers: ['a', 'b'], root_fingerprint: rootFingerprint(parseHeartbeat(next).root) });
  persistHeartbeat(dir, parseHeartbeat({ ...next, peers: ['c'] }));
  assert.deepEqual(tenantJson().peers, ['c']);
  persistHeartbeat(dir, parseHeartbeat({ ...next, tenant_id: 'tenant-2' }));
  assert.deepEqual(tenantJson(), { tenant_id: 'tenant-2', root_fingerprint: rootFingerprint(parseHeartbeat(next).root) }, "another tenant's roster is not kept");
});

test('keys init --force: tenant.json names the new root\'s fingerprint (as keys show does), its tenant and peers kept', () => {
  const dir = tmp();
  persistHeartbeat(dir, parseHeartbeat(good));
  const root = initRootKey(dir, true);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, TENANT_FILE), 'utf8')), { tenant_id: 'tenant-1', peers: ['a', 'b'], root_fingerprint: rootFingerprint(loadRootKey(dir)) });
  assert.equal(rootFingerprint(root), rootFingerprint(loadRootKey(dir)));
  assert.equal(fs.statSync(path.join(dir, TENANT_FILE)).mode & 0o777, 0o644);
  const fresh = tmp();
  initRootKey(fresh, false);
  assert.deepEqual(fs.readdirSync(fresh), ['mesh-root-key'], 'no tenant.json where there was none');
});

test('engine.applyHeartbeat: invalid input changes nothing; a new root persists, rotates and updates the roster', async () => {
  const dir = tmp();
  const first = new Uint8Array(randomBytes(32));
  saveRootKey(dir, first);
  const engine = await Engine.create({ stateDir: dir, tenant: 'tenant-1', agent: 'a', peers: ['a', 'b'], workers: 1 });
  try {
    assert.throws(() => engine.applyHeartbeat({ ...good, peers: ['ok', 'bad|'] }), TypeError);
    assert.throws(() => engine.applyHeartbeat({ ...good, tenant_id: 'tenant-2' }), /tenant/);
    assert.deepEqual(loadRootKey(dir), first, 'nothing persisted');
    assert.deepEqual(engine.peers, ['b']);
    assert.deepEqual(engine.applyHeartbeat(good), { rotated: true });
    assert.deepEqual(loadRootKey(dir), parseHeartbeat(good).root);
    assert.deepEqual(engine.peers, ['b']);
    assert.deepEqual(engine.applyHeartbeat({ ...good, peers: ['a', 'b', 'c'] }), { rotated: false });
    assert.deepEqual(engine.peers, ['b', 'c']);
  } finally {
    await engine.close();
  }
});

test('a state directory that cannot be made is one line at once: nested dirs are made (0700), a path under /proc is refused instead of hanging', (t) => {
  const dir = tempDir('dtmesh-mk-');
  const nested = path.join(dir, 'a', 'b', 'c');
  ensureStateDir(nested);
  assert.ok(fs.statSync(nested).isDirectory());
  for (const d of [path.join(dir, 'a'), path.join(dir, 'a', 'b'), nested]) assert.equal(fs.statSync(d).mode & 0o777, 0o700, d);
  ensureStateDir(nested); // already there: nothing to do
  fs.rmSync(dir, { recursive: true, force: true });
  if (!fs.existsSync('/proc/self')) {
    console.log('# no /proc here: the hang case is Linux-only');
    t.diagnostic('no /proc');
    return;
  }
  // in a child with a timeout: Node's recursive mkdir never returns here, and must not hang the suite
  const mod = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'keys', 'keystore.js');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { ensureStateDir } from ${JSON.stringify(mod)}; try { ensureStateDir('/proc/dtmesh-no-such/state'); } catch (e) { console.log(e.message); }`], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.signal, null, 'returned within 10 s');
  assert.match(r.stdout, /^cannot create state directory \/proc\/dtmesh-no-such\/state: ENOENT/);
});

test('persistHeartbeat is all or nothing: when tenant.json cannot be written, the root key on disk is the one before (a heartbeat reported as not applied never rotates the next start); one line naming the file', () => {
  const dir = tempDir('dtmesh-hb-persist-');
  try {
    const before = new Uint8Array(randomBytes(32));
    saveRootKey(dir, before);
    fs.mkdirSync(path.join(dir, 'tenant.json')); // cannot be replaced by a file
    const next = new Uint8Array(randomBytes(32));
    const hb = parseHeartbeat({ tenant_id: 't', mesh_root_key: Buffer.from(next).toString('base64') });
    assert.throws(() => persistHeartbeat(dir, hb), (e: Error) => /cannot write .*tenant\.json: EISDIR; the root key on disk is as it was/.test(e.message) && !e.message.includes('\n'));
    assert.deepEqual(loadRootKey(dir), before, 'the previous root key, not the heartbeat\'s');
    assert.equal(fs.statSync(rootKeyPath(dir)).mode & 0o777, 0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('engine: a nonce ceiling it cannot write is a warning (at most once a minute, not re-entering the engine from the send path) and counted in stats().nonce_write_errors', async () => {
  const dir = tempDir('dtmesh-nonce-warn-');
  saveRootKey(dir, new Uint8Array(randomBytes(32)));
  const engine = await Engine.create({ stateDir: dir, tenant: 't', agent: 'a', peers: ['b'], workers: 1 });
  try {
    const warnings: string[] = [];
    engine.on('warning', (w: string) => warnings.push(w));
    assert.equal(engine.stats().nonce_write_errors, 0);
    // the counter's write fails from now on (a full disk); take nonces past its reserve
    const nonces = (engine as unknown as { nonces: { write: (f: string, c: string) => void; take: (n: number) => number } }).nonces;
    nonces.write = () => {
      throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    };
    nonces.take(2 ** 25);
    assert.deepEqual(warnings, [], 'not from inside take(): a later microtask');
    nonces.take(NONCE_RETRY + 1); // the retry fails too
    await new Promise((r) => setImmediate(r));
    assert.equal(engine.stats().nonce_write_errors, 2);
    assert.equal(warnings.length, 1, `once a minute: ${JSON.stringify(warnings)}`);
    assert.match(warnings[0]!, /cannot write the nonce ceiling \d+ to .* \(ENOSPC\): nonces from \d+ on are not persisted and may be reused after a crash/);
  } finally {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('persistHeartbeat: when putting the previous root key back fails too, the one line says the key on disk is the heartbeat\'s — never that it is as it was', () => {
  const dir = tempDir('dtmesh-hb-undo-');
  const open = fs.openSync;
  let keyOpens = 0;
  try {
    saveRootKey(dir, new Uint8Array(randomBytes(32)));
    const next = new Uint8Array(randomBytes(32));
    const hb = parseHeartbeat({ tenant_id: 't', mesh_root_key: Buffer.from(next).toString('base64') });
    // the tenant file cannot be written, nor a second key temp file (the disk filled meanwhile)
    (fsDefault as { openSync: typeof fs.openSync }).openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
      const s = String(p);
      if (s.includes('tenant.json') || (s.includes('mesh-root-key.tmp') && ++keyOpens >= 2)) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      return (open as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync;
    syncBuiltinESMExports();
    assert.throws(() => persistHeartbeat(dir, hb), (e: Error) => e instanceof DtmeshError && /tenant\.json: ENOSPC; the root key on disk is the heartbeat's \(putting the previous one back failed: ENOSPC\)/.test(e.message));
  } finally {
    (fsDefault as { openSync: typeof fs.openSync }).openSync = open;
    syncBuiltinESMExports();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
