/**
 * The mesh report (`agent --report FILE.html`, `npm start`): one self-contained HTML page
 * — no script, no network, no CDN: inline CSS and SVG only — with the mesh matrix as heat
 * maps (RTT p50, RTT p99 and loss per directed pair) and, per pair, the RTT over time
 * (p50 and p99 of each burst) and its percentile curve. What people would rather look at
 * than read; the numbers are the prober's figures (MEASUREMENT.md §1–2).
 */
import type { MeshInterval, PeerFigures } from '../probe/mesh.js';

/** One directed pair. */
export interface ReportPair {
  from: string;
  to: string;
  figures: PeerFigures;
  /** The bursts, oldest first. */
  series: MeshInterval[];
  /** `[percentile, µs]` of the cumulative RTT histogram (for the curve). */
  percentiles: Array<[number, number]>;
}

/** What the page shows. */
export interface MeshReport {
  title: string;
  /** ISO 8601 UTC. */
  generated: string;
  /** Every agent (rows and columns of the matrix). */
  agents: string[];
  pairs: ReportPair[];
}

/** Percentiles the curve is drawn through. */
export const CURVE_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100];

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmtUs(us: number): string {
  return us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`;
}

/** Green (good) → red (bad) for `x` in [0, 1]. */
function heat(x: number): string {
  const t = Math.max(0, Math.min(1, x));
  return `hsl(${Math.round(120 * (1 - t))}, 70%, ${Math.round(82 - 22 * t)}%)`;
}

function lossPct(f: PeerFigures): number {
  const judged = f.received + f.lost;
  return judged === 0 ? 0 : (100 * f.lost) / judged;
}

/** A pair none of whose probes got a reply: its RTT figures are placeholders (0), never a value to colour or plot. */
function noReplies(p: ReportPair): boolean {
  return p.figures.received === 0;
}

/**
 * A matrix of `value` per pair, coloured by `scale` (0 good … 1 bad); a pair for which
 * `empty` holds has no such figure and shows `emptyText`, uncoloured.
 */
function matrix(r: MeshReport, caption: string, value: (p: ReportPair) => string, scale: (p: ReportPair) => number, empty: (p: ReportPair) => boolean, emptyText: string): string {
  const byPair = new Map(r.pairs.map((p) => [`${p.from}\u0000${p.to}`, p]));
  const head = r.agents.map((a) => `<th>${esc(a)}</th>`).join('');
  const rows = r.agents
    .map((from) => {
      const cells = r.agents
        .map((to) => {
          if (from === to) return '<td class="self">—</td>';
          const p = byPair.get(`${from}\u0000${to}`);
          if (p === undefined) return '<td class="none">·</td>';
          if (empty(p)) return `<td class="none" title="${esc(from)} → ${esc(to)}"><a href="#${esc(pairId(p))}">${esc(emptyText)}</a></td>`;
          return `<td style="background:${heat(scale(p))}" title="${esc(from)} → ${esc(to)}"><a href="#${esc(pairId(p))}">${esc(value(p))}</a></td>`;
        })
        .join('');
      return `<tr><th>${esc(from)}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<table class="matrix"><caption>${esc(caption)}</caption><tr><th>from \\ to</th>${head}</tr>\n${rows}</table>`;
}

function pairId(p: ReportPair): string {
  return `pair-${p.from}-${p.to}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** An SVG line chart of `lines` (same x) on a log-ish y axis; a null y is a gap in its line. */
function chart(title: string, xs: number[], lines: Array<{ label: string; ys: Array<number | null>; color: string }>, xLabel: (x: number) => string): string {
  const W = 360;
  const H = 140;
  const pad = 34;
  const all = lines.flatMap((l) => l.ys).filter((y): y is number => y !== null && y > 0);
  if (xs.length === 0 || all.length === 0) return `<svg class="chart" width="${W}" height="${H}"><text x="10" y="20">${esc(title)}: no data yet</text></svg>`;
  const yMax = Math.max(...all);
  const yMin = Math.min(...all);
  const ly = (y: number): number => Math.log10(Math.max(1, y));
  const y0 = ly(yMin) - 0.05;
  const y1 = ly(yMax) + 0.05;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const px = (x: number): number => pad + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - pad - 8);
  const py = (y: number): number => H - 18 - ((ly(y) - y0) / (y1 - y0 || 1)) * (H - 30);
  const paths = lines
    .flatMap((l) => {
      // one polyline per run of points with a value
      // one polyline per run of points with a value; a lone point (gaps both sides) is a dot
      const runs: Array<Array<[string, string]>> = [[]];
      xs.forEach((x, i) => {
        const y = l.ys[i];
        if (y === null || y === undefined) runs.push([]);
        else runs.at(-1)!.push([px(x).toFixed(1), py(Math.max(1, y)).toFixed(1)]);
      });
      return runs
        .filter((r) => r.length > 0)
        .map((r) =>
          r.length === 1
            ? `<circle cx="${r[0]![0]}" cy="${r[0]![1]}" r="2" fill="${l.color}"/>`
            : `<polyline fill="none" stroke="${l.color}" stroke-width="1.5" points="${r.map(([x, y]) => `${x},${y}`).join(' ')}"/>`,
        );
    })
    .join('');
  const legend = lines.map((l, i) => `<text x="${pad + 60 * i}" y="12" fill="${l.color}">${esc(l.label)}</text>`).join('');
  return (
    `<svg class="chart" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">` +
    `<text x="${W - 8}" y="12" text-anchor="end">${esc(title)}</text>${legend}` +
    `<text x="2" y="${py(yMax) + 4}">${esc(fmtUs(yMax))}</text><text x="2" y="${py(yMin) + 4}">${esc(fmtUs(yMin))}</text>` +
    `<text x="${pad}" y="${H - 4}">${esc(xLabel(x0))}</text><text x="${W - 8}" y="${H - 4}" text-anchor="end">${esc(xLabel(x1))}</text>` +
    `<line x1="${pad}" y1="${H - 18}" x2="${W - 8}" y2="${H - 18}" stroke="#999"/>${paths}</svg>`
  );
}

/** Render the page. */
export function renderReport(r: MeshReport): string {
  const p99Max = Math.max(1, ...r.pairs.filter((p) => !noReplies(p)).map((p) => p.figures.rtt_us.p99));
  const p50Max = Math.max(1, ...r.pairs.filter((p) => !noReplies(p)).map((p) => p.figures.rtt_us.p50));
  const rel = (v: number, max: number): number => Math.log10(Math.max(1, v)) / Math.log10(Math.max(10, max));
  const sections = r.pairs
    .map((p) => {
      const t0 = p.series.length > 0 ? Date.parse(p.series[0]!.start) : 0;
      const xs = p.series.map((s) => (Date.parse(s.start) - t0) / 1000);
      const overTime = chart(
        'RTT over time',
        xs,
        [
          // a burst with no reply has no RTT: a gap, not a dip to 0
          { label: 'p50', ys: p.series.map((s) => (s.received === 0 ? null : s.rtt_us.p50)), color: '#1f77b4' },
          { label: 'p99', ys: p.series.map((s) => (s.received === 0 ? null : s.rtt_us.p99)), color: '#d62728' },
        ],
        (x) => `${x.toFixed(0)} s`,
      );
      const curve = chart('RTT percentiles', p.percentiles.map(([q]) => -Math.log10(Math.max(1e-4, 1 - q / 100))), [{ label: 'RTT', ys: p.percentiles.map(([, us]) => us), color: '#2ca02c' }], (x) =>
        `p${(100 * (1 - 10 ** -x)).toPrecision(4).replace(/\.?0+$/, '')}`,
      );
      const f = p.figures;
      return (
        `<section id="${esc(pairId(p))}"><h3>${esc(p.from)} → ${esc(p.to)}</h3>` +
        `<p>sent ${f.sent}, received ${f.received}, lost ${f.lost} (${lossPct(f).toFixed(3)} %), late ${f.late}, duplicate ${f.duplicate}, reordered ${f.reordered}; ` +
        (noReplies(p) ? 'RTT: no replies</p>' : `RTT min ${fmtUs(f.rtt_us.min)}, p50 ${fmtUs(f.rtt_us.p50)}, p90 ${fmtUs(f.rtt_us.p90)}, p99 ${fmtUs(f.rtt_us.p99)}, max ${fmtUs(f.rtt_us.max)}</p>`) +
        `${overTime}${curve}</section>`
      );
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table.matrix{border-collapse:collapse;margin:0 1.5em 1.5em 0;display:inline-table}
table.matrix caption{font-weight:600;text-align:left;padding:.3em 0}
table.matrix th,table.matrix td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}
table.matrix td a{color:inherit;text-decoration:none}
td.self,td.none{background:#f4f4f4;color:#999;text-align:center}
section{display:inline-block;vertical-align:top;margin:0 1em 1em 0;border-top:1px solid #ddd}
svg.chart{margin-right:.5em;background:#fafafa}svg.chart text{font-size:10px}
</style></head><body>
<h1>${esc(r.title)}</h1>
<p>${r.agents.length} agents, ${r.pairs.length} directed pairs; generated ${esc(r.generated)}. Loss counts probes with no reply by their deadline; late replies are counted apart (MEASUREMENT.md).</p>
${matrix(r, 'RTT p50', (p) => fmtUs(p.figures.rtt_us.p50), (p) => rel(p.figures.rtt_us.p50, p50Max), noReplies, 'no replies')}
${matrix(r, 'RTT p99', (p) => fmtUs(p.figures.rtt_us.p99), (p) => rel(p.figures.rtt_us.p99, p99Max), noReplies, 'no replies')}
${matrix(r, 'loss', (p) => `${lossPct(p.figures).toFixed(2)} %`, (p) => Math.min(1, lossPct(p.figures) / 5), (p) => p.figures.received + p.figures.lost === 0, 'none judged')}
<h2>Pairs</h2>
${sections}
</body></html>
`;
}
