/**
 * What a mesh agent learns from PUNCH_HINTs (src/probe/agent.ts; PROTOCOL.md §2 "a short
 * burst", issue 13 "addresses come from the roster, punch hints and the API"), over real
 * UDP on 127.0.0.1: a hint one member sends about another earns the rate-limited burst and
 * nothing more — it never moves the agent's scheduled probing of that peer, configured or
 * not, to the hinted address; a hint a peer sends about itself points the schedule there
 * unless the roster or the API gave that peer an address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MeshAgent } from '../../src/probe/agent.js';
import { senderIdOf } from '../../src/protocol/ids.js';
import { TestPeer } from '../helpers.js';

const tenant = 'tenant-hint';
const schedule = { burst: 10, rate: 1000, everyS: 0.1, size: 84, graceMs: 200 };
const PUNCH_BURST = 4;
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A PUNCH_HINT payload naming `target` at 127.0.0.1:`port`. */
function hintPayload(target: string, port: number): Uint8Array {
  const p = new Uint8Array(15);
  p.set(senderIdOf(target), 0);
  p[8] = 4;
  p[9] = port >> 8;
  p[10] = port & 0xff;
  p.set([127, 0, 0, 1], 11);
  return p;
}

async function setup(cConfigured: boolean) {
  const root = new Uint8Array(randomBytes(32));
  const b = await TestPeer.open(root, tenant, 'b', 'a');
  const c = await TestPeer.open(root, tenant, 'c', 'a'); // c's configured address, and c's own hints
  const c2 = await TestPeer.open(root, tenant, 'c', 'a'); // the address c's own hint names
  const victim = await TestPeer.open(root, tenant, 'v', 'a'); // the address b's hint names
  const agent = await MeshAgent.create({
    rootKey: root, tenant, agent: 'a', peers: ['b', 'c'], workers: 1, schedule,
    punch: { allowLoopback: true, punchBurst: PUNCH_BURST, perTargetPerMinute: 60, overallPerMinute: 60 },
    addresses: cConfigured ? [{ agent: 'c', host: '127.0.0.1', port: c.socket.address().port }] : [],
  });
  const close = async (): Promise<void> => {
    await agent.close();
    for (const p of [b, c, c2, victim]) p.close();
  };
  return { agent, b, c, c2, victim, close };
}

test('a hint one member sends about another earns its burst only: the schedule stays at the configured address, or at none', async () => {
  for (const configured of [true, false]) {
    const { agent, b, c, victim, close } = await setup(configured);
    try {
      const port = agent.engine.address.port;
      if (configured) assert.ok((await c.waitFor(10, 3000)) >= 10, 'c probed at its configured address');
      await b.send(b.packet({ type: 3, payload: hintPayload('c', victim.socket.address().port) }), port);
      assert.equal(await victim.waitFor(PUNCH_BURST, 3000), PUNCH_BURST, 'the hint was granted: its burst left');
      const atC = c.received.length;
      await settle(1000); // ten of the schedule's periods
      assert.equal(victim.received.length, PUNCH_BURST, `configured=${configured}: nothing but the burst at the hinted address`);
      if (configured) assert.ok(c.received.length - atC >= 50, `probing of c at its configured address went on (${c.received.length - atC} more)`);
      else assert.equal(c.received.length, 0, 'c, without an address, is not probed anywhere');
      assert.equal(agent.engine.punchStats().granted, 1);
    } finally {
      await close();
    }
  }
});

test('a hint a peer sends about itself points the schedule at that address, unless the roster gave one', async () => {
  for (const configured of [false, true]) {
    const { agent, c, c2, close } = await setup(configured);
    try {
      const port = agent.engine.address.port;
      await c.send(c.packet({ type: 3, payload: hintPayload('c', c2.socket.address().port) }), port);
      assert.ok((await c2.waitFor(PUNCH_BURST, 3000)) >= PUNCH_BURST, 'the burst left');
      const atC = c.received.length;
      await settle(1000);
      if (configured) {
        assert.equal(c2.received.length, PUNCH_BURST, 'the configured address wins: only the burst at the hinted one');
        assert.ok(c.received.length - atC >= 50, 'probing at the configured address went on');
      } else {
        assert.ok(c2.received.length >= PUNCH_BURST + 50, `learned: c probed at the address it named (${c2.received.length})`);
      }
    } finally {
      await close();
    }
  }
});
