/**
 * Secrets stay secret (PROTOCOL.md §1: the key never appears "in anything printed unless
 * the user asks for it explicitly"): inspecting, logging or serialising a key ring, a key
 * table or a heartbeat never shows the root, a pair key or a keyed HMAC state; and a
 * root key may come in as a `KeyObject` instead of raw bytes.
 */
import assert from 'node:assert/strict';
import { createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import * as util from 'node:util';
import { KeyRing } from '../../src/keys/keyring.js';
import { parseHeartbeat, rootFingerprint, rootKeyBytes } from '../../src/keys/keystore.js';
import { KeyTable } from '../../src/keys/keytable.js';
import { Engine } from '../../src/engine.js';
import { readU32 } from '../../src/protocol/codec.js';
import { senderIdOf } from '../../src/protocol/ids.js';
import { derivePairKey } from '../../src/protocol/keys.js';

const tenant = 'tenant-1';
const agent = 'a';
const peers = ['b', 'c'];

/** Every way a secret could leak into text that the test looks for. */
function assertNoSecret(text: string, secrets: Uint8Array[], words: Int32Array, what: string): void {
  const hexOnly = text.toLowerCase().replace(/[^0-9a-f]/g, ''); // catches `<Buffer 0c c8 ..>` and `[Uint8Contents]`
  const numbers = (text.match(/-?\d+/g) ?? []).map(Number); // catches `Uint8Array(32) [ 12, 200, ...` in columns
  const hasRun = (run: number[]): boolean => {
    outer: for (let i = 0; i + run.length <= numbers.length; i++) {
      for (let j = 0; j < run.length; j++) if (numbers[i + j] !== run[j]) continue outer;
      return true;
    }
    return false;
  };
  for (const [n, s] of secrets.entries()) {
    const b = Buffer.from(s);
    for (const enc of ['base64', 'base64url'] as const) assert.ok(!text.includes(b.toString(enc).slice(0, 12)), `${what}: ${enc} of secret ${n}`);
    const hex = b.toString('hex');
    for (let i = 0; i + 16 <= hex.length; i += 2) assert.ok(!hexOnly.includes(hex.slice(i, i + 16)), `${what}: hex of secret ${n}`);
    for (let i = 0; i + 4 <= s.length; i++) assert.ok(!hasRun([...s.subarray(i, i + 4)]), `${what}: bytes of secret ${n} as a number list`);
  }
  // the keyed HMAC states and raw pair keys as the Int32Array view shows them
  for (let i = 0; i + 4 <= words.length; i++) {
    const run = [...words.subarray(i, i + 4)];
    if (run.filter((w) => w !== 0 && w !== 1).length < 3) continue; // counters and flags, not key material
    assert.ok(!hasRun(run), `${what}: key table words ${i}.. as a number list`);
  }
}

/** Everything printed by `console.log(...args)`. */
function captureConsoleLog(...args: unknown[]): string {
  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array): boolean => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    console.log(...args);
  } finally {
    process.stdout.write = write;
  }
  return out.join('');
}

function renderings(x: unknown): [string, string][] {
  return [
    ['inspect', util.inspect(x)],
    ['inspect depth Infinity showHidden', util.inspect(x, { depth: Infinity, showHidden: true, maxArrayLength: Infinity })],
    ['inspect nested', util.inspect({ nested: [x] }, { depth: Infinity, showHidden: true, maxArrayLength: Infinity })],
    ['JSON.stringify', JSON.stringify(x) ?? ''],
    ['JSON.stringify nested', JSON.stringify({ nested: [x] })],
    ['console.log', captureConsoleLog(x)],
    ['console.log %o', captureConsoleLog('%o', x)],
    ['String', String(x)],
  ];
}

function setup(): { ring: KeyRing; table: KeyTable; secrets: Uint8Array[]; root: Uint8Array; oldRoot: Uint8Array } {
  const oldRoot = new Uint8Array(randomBytes(32));
  const root = new Uint8Array(randomBytes(32));
  const ring = new KeyRing(tenant, agent, oldRoot, peers);
  ring.rotate(root); // so the ring also holds a previous root and the table previous pair keys
  for (const p of peers) ring.pairKey(p); // fill the derivation cache
  const table = new KeyTable(8);
  table.publish(ring.entries());
  const secrets: Uint8Array[] = [root, oldRoot];
  for (const p of peers) secrets.push(derivePairKey(root, tenant, agent, p), derivePairKey(oldRoot, tenant, agent, p));
  return { ring, table, secrets, root, oldRoot };
}

test('a KeyRing shows tenant, agent, peer count and root fingerprints — never a root or pair key', () => {
  const { ring, table, secrets, root, oldRoot } = setup();
  for (const [how, text] of renderings(ring)) assertNoSecret(text, secrets, table.keys, `KeyRing ${how}`);
  assert.ok(!util.inspect(ring, { customInspect: false, showHidden: true, depth: Infinity }).includes('Uint8Array(32)'), 'secrets are private fields');
  assertNoSecret(util.inspect({ ...ring }, { depth: Infinity }), secrets, table.keys, 'KeyRing spread');
  const text = util.inspect(ring);
  assert.match(text, /^KeyRing /);
  assert.ok(text.includes(tenant) && text.includes(rootFingerprint(root)) && text.includes(rootFingerprint(oldRoot)), text);
  assert.deepEqual(JSON.parse(JSON.stringify(ring)), {
    tenant,
    agent,
    peers: 2,
    rootFingerprint: rootFingerprint(root),
    previousRootFingerprint: rootFingerprint(oldRoot),
  });
});

test('a KeyTable shows its capacity and entry count — never the SharedArrayBuffer, the HMAC states or the raw pair keys', () => {
  const { ring, table, secrets } = setup();
  for (const [how, text] of renderings(table)) assertNoSecret(text, secrets, table.keys, `KeyTable ${how}`);
  assert.match(util.inspect(table), /^KeyTable /);
  assert.deepEqual(JSON.parse(JSON.stringify(table)), { capacity: table.capacity, maxPeers: 8, entries: ring.peers.length, updatePending: false });
  // the test's own check is not vacuous: the raw view does show key material
  assert.throws(() => assertNoSecret(Buffer.from(table.sab).toString('hex'), secrets, table.keys, 'raw'), /secret|words/);
  assert.throws(() => assertNoSecret(util.inspect(table.keys, { maxArrayLength: Infinity }), [], table.keys, 'raw'), /words/);
  assert.throws(() => assertNoSecret(util.inspect(secrets[0]), secrets, table.keys, 'raw'), /number list/);
});

test('a parsed heartbeat keeps root usable but unprinted', () => {
  const root = new Uint8Array(randomBytes(32));
  const hb = parseHeartbeat({ tenant_id: tenant, mesh_root_key: Buffer.from(root).toString('base64'), peers });
  assert.deepEqual(hb.root, root);
  assert.deepEqual(hb.peers, peers);
  for (const [how, text] of renderings(hb)) assertNoSecret(text, [root], new Int32Array(0), `Heartbeat ${how}`);
  assert.ok(!('root' in JSON.parse(JSON.stringify(hb))));
  assert.ok(util.inspect(hb).includes(rootFingerprint(root)));
  assert.deepEqual(Object.keys(hb).sort(), ['peers', 'tenant']);
});

test('rootKeyBytes: a 32-byte Uint8Array or secret KeyObject becomes a copy; anything else a TypeError/RangeError naming it, with no bytes', () => {
  const raw = new Uint8Array(randomBytes(32));
  const copy = rootKeyBytes(raw, 'options.rootKey');
  assert.deepEqual(copy, raw);
  assert.notEqual(copy.buffer, raw.buffer);
  assert.deepEqual(rootKeyBytes(createSecretKey(raw), 'options.rootKey'), raw);
  assert.equal(Object.getPrototypeOf(rootKeyBytes(Buffer.from(raw), 'k')), Uint8Array.prototype, 'a plain Uint8Array, not a pooled Buffer');
  const short = randomBytes(31);
  const cases: [unknown, ErrorConstructor][] = [
    [new Uint8Array(short), RangeError],
    [createSecretKey(short), RangeError],
    [createSecretKey(randomBytes(33)), RangeError],
    [generateKeyPairSync('ed25519').privateKey, TypeError],
    [Buffer.from(raw).toString('hex'), TypeError],
    [[...raw], TypeError],
    [undefined, TypeError],
  ];
  for (const [k, type] of cases) {
    assert.throws(
      () => rootKeyBytes(k as Uint8Array, 'options.rootKey'),
      (e: Error) =>
        e instanceof type &&
        e.message.startsWith('options.rootKey ') &&
        !e.message.includes(short.toString('hex').slice(0, 8)) &&
        !e.message.includes(Buffer.from(raw).toString('hex').slice(0, 8)),
    );
  }
});

test('a KeyRing takes its root (and a rotation) as a KeyObject and derives the same pair keys', () => {
  const r1 = new Uint8Array(randomBytes(32));
  const r2 = new Uint8Array(randomBytes(32));
  const ring = new KeyRing(tenant, agent, createSecretKey(r1), peers);
  assert.deepEqual(ring.pairKey('b'), derivePairKey(r1, tenant, agent, 'b'));
  assert.equal(ring.rotate(createSecretKey(r1)), false, 'same root: no rotation');
  assert.equal(ring.rotate(createSecretKey(r2)), true);
  assert.deepEqual(ring.pairKey('b'), derivePairKey(r2, tenant, agent, 'b'));
  assert.throws(() => new KeyRing(tenant, agent, new Uint8Array(31), peers), /root key must be exactly 32 bytes/);
});

test('an engine\'s stages (the pipeline, its inline verifier and every object reachable from them) print no pair key or keyed HMAC state, at any depth', async () => {
  const root = new Uint8Array(randomBytes(32));
  // a peer whose entry is the table's first (capacity 8 for 4 peers: sender_id's low word & 7
  // = 0), so its keys are in the first 100 words inspect shows of an array
  let first = 0;
  while ((readU32(senderIdOf(`peer-${first}`), 4) & 7) !== 0) first++;
  const roster = [`peer-${first}`, ...peers];
  const engine = await Engine.create({ rootKey: root, tenant, agent, peers: roster, workers: 1, maxPeers: 4 });
  try {
    engine.setPeers(roster); // a second publish: both shared halves hold keys, the active one is half 0
    const table = (engine.stages as unknown as { cfg: { keyTable: KeyTable } }).cfg.keyTable;
    assert.equal(table.capacity, 8);
    const secrets = roster.map((p) => derivePairKey(root, tenant, agent, p));
    const words = new Int32Array([...table.keys, ...table.own]);
    // Every depth, arrays cut at inspect's default 100 entries: the pipeline's batch ring
    // is megabytes, and the key table's first 100 words already held a pair key before the
    // fix. (JSON.stringify: the pipeline is circular, it throws.)
    for (const [name, x] of [['engine.stages', engine.stages], ['engine.stages.inlineVerifier', engine.stages.inlineVerifier]] as const) {
      const texts: [string, string][] = [
        ['inspect', util.inspect(x)],
        ['inspect depth Infinity showHidden', util.inspect(x, { depth: Infinity, showHidden: true })],
        ['console.log', captureConsoleLog(x)],
        ['console.log %o', captureConsoleLog('%o', x)],
      ];
      for (const [how, text] of texts) assertNoSecret(text, secrets, words, `${name} ${how}`);
    }
  } finally {
    await engine.close();
  }
});
