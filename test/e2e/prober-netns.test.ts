/**
 * Kernel-counted loss (MEASUREMENT.md §1 "Lost"): two network namespaces joined by a
 * veth pair, `dtmesh serve` in one, `dtmesh probe` in the other, and nftables dropping
 * ~2 % of the probes (at the responder's input) and ~2 % of the replies (at the
 * prober's input) with counters. The prober's `lost` must equal the kernel's two drop
 * counters exactly. Needs root, `ip netns` and `nft` (Debian package nftables); skipped
 * with a printed reason otherwise. Traffic stays inside the two namespaces.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { cliPath, stateDir, until, within } from '../helpers.js';
import { assertValidReport } from '../probe/validate.js';

const PORT = 47000;
const tag = `${process.pid % 10000}`;
const nsA = `dtp-a-${tag}`; // the prober
const nsB = `dtp-b-${tag}`; // the responder
const addrA = '10.231.7.1';
const addrB = '10.231.7.2';

function sh(args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', input, timeout: 15_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function whyNot(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  if (!sh(['ip', '-V']).ok) return 'no iproute2 (ip)';
  if (!sh(['nft', '--version']).ok) return 'no nft (apt-get install nftables)';
  const probeNs = `dtp-check-${tag}`;
  if (!sh(['ip', 'netns', 'add', probeNs]).ok) return 'cannot create a network namespace here';
  sh(['ip', 'netns', 'del', probeNs]);
  return null;
}

const reason = whyNot();
if (reason !== null) process.stdout.write(`# prober-netns: kernel-counted loss test SKIPPED: ${reason}\n`);

/** Drop ~2 % of UDP to/from PORT at this namespace's input hook, counted. */
function nftRules(match: string): string {
  return `table inet dtp {
  chain input {
    type filter hook input priority 0; policy accept;
    ${match} numgen random mod 1000 < 20 counter drop
  }
}
`;
}

function dropCounter(ns: string): number {
  const r = sh(['ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', 'dtp']);
  assert.ok(r.ok, r.err);
  const doc = JSON.parse(r.out) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> };
  let n = 0;
  for (const o of doc.nftables) for (const e of o.rule?.expr ?? []) if (e.counter) n += e.counter.packets;
  return n;
}

test('kernel-counted loss: lost = probes dropped by nftables + replies dropped by nftables, exactly', { skip: reason ?? false }, async () => {
  const cleanup = (): void => {
    sh(['ip', 'netns', 'del', nsA]);
    sh(['ip', 'netns', 'del', nsB]);
  };
  cleanup();
  const dir = stateDir();
  let serve: ReturnType<typeof spawn> | null = null;
  try {
    for (const cmd of [
      ['ip', 'netns', 'add', nsA],
      ['ip', 'netns', 'add', nsB],
      ['ip', 'link', 'add', `dtpa${tag}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `dtpb${tag}`, 'netns', nsB],
      ['ip', '-n', nsA, 'addr', 'add', `${addrA}/30`, 'dev', `dtpa${tag}`],
      ['ip', '-n', nsB, 'addr', 'add', `${addrB}/30`, 'dev', `dtpb${tag}`],
      ['ip', '-n', nsA, 'link', 'set', `dtpa${tag}`, 'up'],
      ['ip', '-n', nsB, 'link', 'set', `dtpb${tag}`, 'up'],
      ['ip', '-n', nsA, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', nsB, 'link', 'set', 'lo', 'up'],
    ]) {
      const r = sh(cmd);
      assert.ok(r.ok, `${cmd.join(' ')}: ${r.err}`);
    }
    // Probes into the responder's namespace, replies into the prober's.
    assert.ok(sh(['ip', 'netns', 'exec', nsB, 'nft', '-f', '-'], nftRules(`udp dport ${PORT}`)).ok, 'nft rules in the responder namespace');
    assert.ok(sh(['ip', 'netns', 'exec', nsA, 'nft', '-f', '-'], nftRules(`udp sport ${PORT}`)).ok, 'nft rules in the prober namespace');

    serve = spawn('ip', ['netns', 'exec', nsB, process.execPath, cliPath, 'serve', '--state-dir', dir, '--tenant', 't', '--agent', 'A', '--peers', 'A,B', '--listen', `${addrB}:${PORT}`, '--replay-window', '1024'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serve.stdout!.on('data', (d) => (out += d));
    await until(15_000, () => /listening on/.test(out) || serve!.exitCode !== null, 'serve in its namespace to listen');
    assert.match(out, /listening on/);

    const probeDir = stateDir(dir);
    const p = spawn('ip', ['netns', 'exec', nsA, process.execPath, cliPath, 'probe', '--state-dir', probeDir, '--tenant', 't', '--agent', 'B', '--target', `A@${addrB}:${PORT}`, '--count', '5000', '--rate', '5000', '--warmup', '0', '--grace-ms', '500', '--json', '-', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pout = '';
    let perr = '';
    p.stdout!.on('data', (d) => (pout += d));
    p.stderr!.on('data', (d) => (perr += d));
    const code = await within(30_000, new Promise<number | null>((r) => p.on('exit', r)), 'probe in its namespace');
    assert.equal(code, 0, perr);
    const rep = JSON.parse(pout);
    assertValidReport(rep);
    const probesDropped = dropCounter(nsB);
    const repliesDropped = dropCounter(nsA);
    process.stdout.write(`# prober-netns: sent ${rep.sent}, lost ${rep.lost}; nftables dropped ${probesDropped} probes + ${repliesDropped} replies\n`);
    assert.equal(rep.sent, 5000);
    assert.ok(probesDropped > 0 && repliesDropped > 0, 'nftables dropped both ways');
    assert.equal(rep.lost, probesDropped + repliesDropped, 'lost = what the kernel dropped, exactly');
    assert.equal(rep.received, 5000 - rep.lost);
    assert.equal(rep.late, 0);
    assert.equal(rep.reordered, 0);
  } finally {
    serve?.kill('SIGKILL');
    cleanup();
  }
});
