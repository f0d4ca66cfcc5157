/** keys.json and the RFC 5869 table: sender IDs, pair keys with their exact info, invalid IDs. */
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { test } from 'node:test';
import { assertValidId, compareIdBytes, idProblem, senderIdOf } from '../../src/protocol/ids.js';
import { derivePairKey, pairInfo } from '../../src/protocol/keys.js';
import { hex, loadVectors, toHex } from '../helpers.js';

const keys = loadVectors('keys.json');
const rfc = loadVectors('rfc.json');

test('sender_id = SHA-256(agent)[0:8] for every vector', () => {
  assert.ok(keys.sender_ids.length > 0);
  for (const v of keys.sender_ids) assert.equal(toHex(senderIdOf(v.agent)), v.sender_id, v.agent);
});

test('pair keys: exact info bytes and HKDF output, symmetric in A and B', () => {
  assert.ok(keys.pair_keys.length > 0);
  for (const v of keys.pair_keys) {
    assert.equal(pairInfo(v.tenant, v.a, v.b).toString('hex'), v.info);
    assert.equal(toHex(derivePairKey(hex(v.root), v.tenant, v.a, v.b)), v.pair_key);
    assert.equal(toHex(derivePairKey(hex(v.root), v.tenant, v.b, v.a)), v.pair_key);
  }
});

test('min/max of the pair info compare UTF-8 bytes, not UTF-16 code units (PROTOCOL.md §1): \'aＡ\' (U+FF21, EF BC A1) sorts before \'a😀\' (U+1F600, F0 9F 98 80) though JS string order (FF21 > D83D) says the opposite', () => {
  const emoji = 'a\u{1F600}';
  const fullwidth = 'a\uFF21';
  assert.ok(emoji < fullwidth, 'the premise: JS (UTF-16) order puts the emoji first');
  assert.ok(compareIdBytes(fullwidth, emoji) < 0 && compareIdBytes(emoji, fullwidth) > 0, 'UTF-8 byte order puts U+FF21 first');
  // "dt-mesh-v1|t|" + "aＡ" + "|" + "a😀", written out byte by byte
  const info = Buffer.from('dt-mesh-v1|t|', 'latin1').toString('hex') + '61efbca1' + '7c' + '61f09f9880';
  assert.equal(pairInfo('t', emoji, fullwidth).toString('hex'), info);
  assert.equal(pairInfo('t', fullwidth, emoji).toString('hex'), info);
  const root = new Uint8Array(32).fill(7);
  const key = Buffer.from(hkdfSync('sha256', root, new Uint8Array(0), Buffer.from(info, 'hex'), 32)).toString('hex');
  assert.equal(toHex(derivePairKey(root, 't', emoji, fullwidth)), key);
  assert.equal(toHex(derivePairKey(root, 't', fullwidth, emoji)), key);
});

test('every invalid ID is rejected wherever an ID enters', () => {
  assert.ok(keys.invalid_ids.length > 0);
  for (const id of keys.invalid_ids) {
    assert.notEqual(idProblem(id), null, JSON.stringify(id));
    assert.throws(() => assertValidId(id, 'agent'), TypeError);
    assert.throws(() => senderIdOf(id), TypeError);
    assert.throws(() => pairInfo('t', 'ok', id), TypeError);
    assert.throws(() => pairInfo(id, 'ok', 'ok2'), TypeError);
  }
});

test('an agent never derives a key with itself', () => {
  assert.throws(() => derivePairKey(new Uint8Array(32), 't', 'a', 'a'), RangeError);
});

test('RFC 5869 HKDF-SHA256 table (the primitive derivePairKey relies on)', () => {
  assert.ok(rfc.hkdf_sha256.length > 0);
  for (const v of rfc.hkdf_sha256) {
    const okm = Buffer.from(hkdfSync('sha256', hex(v.ikm), hex(v.salt), hex(v.info), v.length));
    assert.equal(okm.toString('hex'), v.okm);
  }
});

test('an error about an invalid ID never echoes the ID', () => {
  const secretish = 'x'.repeat(129);
  assert.throws(() => assertValidId(secretish, '--agent'), (e: Error) => !e.message.includes(secretish));
});
