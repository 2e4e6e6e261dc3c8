import { PRICE_PER_GB_SECOND } from './auto-tuner.ts';

/**
 * AWS Lambda Power Tuning, in Dockhand: the same event at several memory sizes, a trimmed mean
 * of the durations per size, the cost of one invocation at each, and a pick by strategy.
 */
export type SweepStrategy = 'cost' | 'speed' | 'balanced';

export interface SweepPoint {
  memoryMb: number;
  /** Trimmed mean: the fastest and slowest 20% dropped when there are 5 or more runs. */
  durationMs: number;
  /** One invocation, USD, billed per started millisecond as Lambda does. */
  costUsd: number;
  runs: number;
  failures: number;
}

export interface SweepResult {
  functionName: string;
  strategy: SweepStrategy;
  best: SweepPoint | null;
  points: SweepPoint[];
  at: string;
}

export function trimmedMean(values: number[], trim = 0.2): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const cut = sorted.length >= 5 ? Math.floor(sorted.length * trim) : 0;
  const kept = sorted.slice(cut, sorted.length - cut);
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}

export function invocationCost(memoryMb: number, durationMs: number): number {
  return (memoryMb / 1024) * (Math.ceil(durationMs) / 1000) * PRICE_PER_GB_SECOND;
}

/** cost: cheapest; speed: fastest; balanced: lowest sum of cost and duration, each relative to its best. */
export function pickBest(points: SweepPoint[], strategy: SweepStrategy): SweepPoint | null {
  const ok = points.filter((p) => p.failures === 0);
  if (ok.length === 0) return null;
  const minCost = Math.min(...ok.map((p) => p.costUsd)) || Number.EPSILON;
  const minDuration = Math.min(...ok.map((p) => p.durationMs)) || Number.EPSILON;
  const score = (p: SweepPoint) =>
    strategy === 'cost'
      ? p.costUsd
      : strategy === 'speed'
        ? p.durationMs
        : p.costUsd / minCost + p.durationMs / minDuration;
  // Ties go to the smaller size.
  return ok.reduce((best, p) => (score(p) < score(best) ? p : best));
}

const escapeXml = (s: string) =>
  s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);

/**
 * Duration (bars, left axis) and cost per invocation (line, right axis) per memory size.
 * Written by hand: a chart library for Node either needs a DOM or a canvas build, and this is
 * forty lines of SVG with nothing to download.
 */
export function sweepChart(result: SweepResult): string {
  const W = 720;
  const H = 360;
  const m = { top: 52, right: 90, bottom: 50, left: 70 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = result.points;
  const maxD = Math.max(1, ...pts.map((p) => p.durationMs)) * 1.1;
  const maxC = Math.max(Number.EPSILON, ...pts.map((p) => p.costUsd)) * 1.1;
  const step = pw / Math.max(1, pts.length);
  const x = (i: number) => m.left + step * i + step / 2;
  const yD = (d: number) => m.top + ph - (d / maxD) * ph;
  const yC = (c: number) => m.top + ph - (c / maxC) * ph;
  const bars = pts
    .map((p, i) => {
      const best = result.best?.memoryMb === p.memoryMb;
      return `<rect x="${(x(i) - step * 0.3).toFixed(1)}" y="${yD(p.durationMs).toFixed(1)}" width="${(step * 0.6).toFixed(1)}" height="${(m.top + ph - yD(p.durationMs)).toFixed(1)}" fill="${best ? '#2b8a3e' : '#4dabf7'}"><title>${p.memoryMb} MB: ${p.durationMs.toFixed(2)} ms</title></rect>
<text x="${x(i).toFixed(1)}" y="${H - m.bottom + 18}" text-anchor="middle" font-size="12">${p.memoryMb} MB</text>`;
    })
    .join('\n');
  const line = pts
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${yC(p.costUsd).toFixed(1)}`)
    .join(' ');
  const dots = pts
    .map(
      (p, i) =>
        `<circle cx="${x(i).toFixed(1)}" cy="${yC(p.costUsd).toFixed(1)}" r="4" fill="#e8590c"><title>$${p.costUsd.toExponential(3)} per invocation</title></circle>`,
    )
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${m.left}" y="22" font-size="15" font-weight="bold">${escapeXml(result.functionName)}: duration and cost per memory size (${result.strategy}${result.best ? `, best ${result.best.memoryMb} MB` : ''})</text>
<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333"/>
<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#4dabf7"/>
<line x1="${m.left + pw}" y1="${m.top}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#e8590c"/>
<text x="${m.left - 8}" y="${m.top + 4}" text-anchor="end" font-size="11">${maxD.toFixed(1)} ms</text>
<text x="${m.left - 8}" y="${m.top + ph}" text-anchor="end" font-size="11">0</text>
<text x="${m.left + pw + 8}" y="${m.top + 4}" font-size="11">$${maxC.toExponential(2)}</text>
<text x="${m.left + pw + 8}" y="${m.top + ph}" font-size="11">$0</text>
<rect x="${m.left + 8}" y="${m.top - 14}" width="10" height="10" fill="#4dabf7"/>
<text x="${m.left + 22}" y="${m.top - 5}" font-size="11">duration (trimmed mean, ms)</text>
<line x1="${m.left + 200}" y1="${m.top - 9}" x2="${m.left + 214}" y2="${m.top - 9}" stroke="#e8590c" stroke-width="2"/>
<text x="${m.left + 220}" y="${m.top - 5}" font-size="11">cost per invocation ($)</text>
${bars}
<path d="${line}" fill="none" stroke="#e8590c" stroke-width="2"/>
${dots}
</svg>
`;
}
