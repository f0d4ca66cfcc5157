/**
 * The HTML mesh report (src/observe/report.ts) never shows a figure the prober does not
 * have (MEASUREMENT.md: "A number that the tool itself bends … is worse than none"): a
 * pair with no reply has no RTT — its cells say so, uncoloured, instead of "0 µs" in the
 * best colour — and a burst with no reply is a gap in the RTT-over-time lines, not a dip.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderReport, type ReportPair } from '../../src/observe/report.js';
import type { MeshInterval, PeerFigures } from '../../src/probe/mesh.js';

function figures(peer: string, received: number, lost: number, rtt: number): PeerFigures {
  return { peer, sent: received + lost, received, lost, late: 0, duplicate: 0, reordered: 0, unmatched: 0, send_errors: 0, rtt_us: { min: rtt, mean: rtt, p50: rtt, p90: rtt, p99: rtt, max: rtt } };
}

function burst(from: string, f: PeerFigures, startS: number): MeshInterval {
  return { ...f, type: 'interval', from, start: new Date(Date.UTC(2026, 0, 1) + startS * 1000).toISOString(), loss_pct: (100 * f.lost) / f.sent };
}

test('a pair with no reply shows "no replies", uncoloured; a burst with no reply is a gap in the RTT lines', () => {
  // x → y answers, but its second of three bursts got nothing back; x → z never answered (RTT placeholders are 0)
  const good = [figures('y', 10, 0, 300), figures('y', 0, 10, 0), figures('y', 10, 0, 400)];
  const pairs: ReportPair[] = [
    { from: 'x', to: 'y', figures: figures('y', 20, 10, 350), series: good.map((f, i) => burst('x', f, i)), percentiles: [[0, 300], [50, 350], [100, 400]] },
    { from: 'x', to: 'z', figures: figures('z', 0, 30, 0), series: [0, 1, 2].map((i) => burst('x', figures('z', 0, 10, 0), i)), percentiles: [] },
  ];
  const html = renderReport({ title: 't', generated: new Date().toISOString(), agents: ['x', 'y', 'z'], pairs });
  const cell = (to: string): string[] => [...html.matchAll(new RegExp(`<td[^>]*title="x → ${to}">.*?</td>`, 'g'))].map((m) => m[0]);
  const dead = cell('z');
  assert.equal(dead.length, 3, 'three matrices');
  for (const c of dead.slice(0, 2)) {
    assert.match(c, /class="none"/, `no heat colour for an RTT that does not exist: ${c}`);
    assert.match(c, /no replies/);
    assert.doesNotMatch(c, /µs/);
  }
  assert.match(dead[2]!, /100\.00 %/, 'its loss is a real figure, coloured');
  assert.match(dead[2]!, /background:hsl/);
  for (const c of cell('y')) assert.match(c, /background:hsl/, 'the live pair is coloured');
  const section = (to: string): string => html.slice(html.indexOf(`<section id="pair-x-${to}"`)).split('</section>')[0]!;
  assert.match(section('z'), /RTT: no replies/);
  assert.doesNotMatch(section('z'), /RTT min/);
  // y: p50 and p99 each broken around the silent burst into a lone point either side (dots), plus the percentile curve
  const y = section('y');
  assert.equal([...y.matchAll(/<circle /g)].length, 2 * 2, 'p50 and p99: one dot each side of the gap');
  assert.equal([...y.matchAll(/<polyline /g)].length, 1, 'only the percentile curve is a line: nothing joins the two answered bursts through the silent one');
  // and nothing was plotted for the silent burst: every dot sits at a real burst's x
  const xsOfDots = new Set([...y.matchAll(/<circle cx="([^"]+)"/g)].map((m) => m[1]));
  assert.equal(xsOfDots.size, 2, 'the first and the third burst');
});
