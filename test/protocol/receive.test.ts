/** verdicts.json: every scenario, every step, through the engine's own verify + collect stages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { macRoute } from '../../src/protocol/mac.js';
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
