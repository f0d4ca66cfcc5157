/** verdicts.json: every scenario, every step, through the engine's own verify + collect stages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePacket } from '../../src/protocol/codec.js';
import { senderIdOf } from '../../src/protocol/ids.js';
import { derivePairKey } from '../../src/protocol/keys.js';
import { macRoute } from '../../src/protocol/mac.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../../src/protocol/sha256.js';
import { assertMacRoute, hex, loadVectors, TestReceiver } from '../helpers.js';

const { scenarios } = loadVectors('verdicts.json');

test(`MAC route under test: ${macRoute()}`, () => {
  assertMacRoute();
});

test('verdicts.json has scenarios', () => assert.ok(scenarios.length >= 8));

for (const sc of scenarios) {
  test(`verdict scenario ${sc.name}`, () => {
    const r = sc.receiver;
    const rx = new TestReceiver({
      root: hex(r.root),
      prevRoot: r.prev_root === null ? null : hex(r.prev_root),
      tenant: r.tenant,
      me: r.me,
      peers: r.peers,
      startUs: Number(r.start_us),
      replayWindow: r.replay_window,
      maxDatagram: r.max_datagram,
    });
    sc.steps.forEach((st: { datagram: string; now_us: string; verdict: string }, i: number) => {
      assert.equal(rx.judge(hex(st.datagram), Number(st.now_us)), st.verdict, `${sc.name} step ${i}`);
    });
    // the books count each verdict exactly as often as the vectors expect it (not just the total)
    const want = new Map<string, number>();
    for (const st of sc.steps as Array<{ verdict: string }>) want.set(st.verdict, (want.get(st.verdict) ?? 0) + 1);
    const dropped = rx.books.dropped() as Record<string, number>;
    assert.equal(rx.books.verdicts[0], want.get('accept') ?? 0, `${sc.name}: accepted`);
    for (const r of Object.keys(dropped)) assert.equal(dropped[r], want.get(r) ?? 0, `${sc.name}: dropped.${r}`);
  });
}

test('a v0 datagram carrying the receiver\'s own sender_id is downgrade, not reflected: u2 is tested before u3 (PROTOCOL.md §4); the same as v1 is reflected, as v2 downgrade', () => {
  const root = new Uint8Array(32).fill(3);
  const startUs = 1_700_000_000_000_000;
  const rx = new TestReceiver({ root, tenant: 't', me: 'me', peers: ['p'], startUs, replayWindow: 0, maxDatagram: 2048 });
  const state = new Int32Array(HMAC_STATE_WORDS);
  hmacPrecompute(derivePairKey(root, 't', 'me', 'p'), state, 0);
  const own = (ver: number, nonce: bigint): Uint8Array =>
    encodePacket({ ver, type: 1, senderId: senderIdOf('me'), nonce, probeId: 1, sendTsUs: BigInt(startUs + 1000), payload: new Uint8Array(8) }, state);
  const now = startUs + 2000;
  assert.equal(rx.judge(own(0, 10n), now), 'downgrade');
  assert.equal(rx.judge(own(1, 11n), now), 'reflected');
  assert.equal(rx.judge(own(2, 12n), now), 'downgrade');
  const dropped = rx.books.dropped() as Record<string, number>;
  assert.deepEqual([dropped.downgrade, dropped.reflected, rx.books.verdicts[0]], [2, 1, 0]);
});
