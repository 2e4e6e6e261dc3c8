import type { Static } from 'typebox';
import type { SweepPoint as SweepPointSchema, SweepResult } from '../../queues/schemas/sweeps.ts';
import { PRICE_PER_GB_SECOND } from './auto-tuner.ts';

export type { SweepResult };

/**
 * AWS Lambda Power Tuning, in Dockhand: the same event at several memory sizes, per size a
 * discarded warm-up call and then measured runs, each run billed as Lambda bills it, and a pick
 * by strategy that does not mistake measurement noise for a difference.
 */
export type SweepStrategy = 'cost' | 'speed' | 'balanced';

/** Measured runs per size when the caller names none; fewer makes p90 a single sample. */
export const DEFAULT_SWEEP_RUNS = 10;

export type SweepPoint = Static<typeof SweepPointSchema>;

export interface SweepPick {
  point: SweepPoint;
  reason: string;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

export function trimmedMean(values: number[], trim = 0.2): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const cut = sorted.length >= 5 ? Math.floor(sorted.length * trim) : 0;
  const kept = sorted.slice(cut, sorted.length - cut);
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}

/** Nearest-rank percentile (the value at or below which q of the runs fall). */
export function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

/** One invocation, USD, billed per started millisecond as Lambda does. */
export function invocationCost(memoryMb: number, durationMs: number): number {
  return (memoryMb / 1024) * (Math.ceil(durationMs) / 1000) * PRICE_PER_GB_SECOND;
}

/** A size's figures from its measured runs (warm-up excluded) and how many calls failed. */
export function summarisePoint(memoryMb: number, durations: number[], failures: number): SweepPoint {
  const costUsd =
    durations.length === 0
      ? 0
      : durations.reduce((sum, d) => sum + invocationCost(memoryMb, d), 0) / durations.length;
  return {
    memoryMb,
    durationMs: round3(trimmedMean(durations)),
    p10Ms: round3(percentile(durations, 0.1)),
    p50Ms: round3(percentile(durations, 0.5)),
    p90Ms: round3(percentile(durations, 0.9)),
    costUsd,
    costPerMillionUsd: Math.round(costUsd * 1e6 * 1e4) / 1e4,
    runs: durations.length + failures,
    failures,
  };
}

/** How far a size's runs scatter: p90 − p10. Two sizes whose medians are closer are not told apart. */
const spread = (p: SweepPoint) => p.p90Ms - p.p10Ms;

const indistinguishable = (a: SweepPoint, b: SweepPoint) =>
  Math.abs(a.p50Ms - b.p50Ms) < Math.max(spread(a), spread(b));

/**
 * cost: cheapest; speed: fastest; balanced: lowest sum of cost and duration, each relative to
 * its best. A smaller size whose durations cannot be told apart from the winner's is preferred:
 * it costs less for what the measurement can show.
 */
export function pickBest(points: SweepPoint[], strategy: SweepStrategy): SweepPick | null {
  const ok = points.filter((p) => p.failures === 0 && p.runs > 0);
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
  const winner = [...ok]
    .sort((a, b) => a.memoryMb - b.memoryMb)
    .reduce((best, p) => (score(p) < score(best) ? p : best));
  const why = {
    cost: `${winner.memoryMb} MB has the lowest cost, $${winner.costPerMillionUsd} per million invocations`,
    speed: `${winner.memoryMb} MB is the fastest, ${winner.durationMs} ms (p50 ${winner.p50Ms} ms)`,
    balanced: `${winner.memoryMb} MB has the best balance of cost ($${winner.costPerMillionUsd} per million) and duration (${winner.durationMs} ms)`,
  }[strategy];
  const smaller = ok
    .filter((p) => p.memoryMb < winner.memoryMb && indistinguishable(p, winner))
    .sort((a, b) => a.memoryMb - b.memoryMb)[0];
  if (!smaller) return { point: winner, reason: `${why}.` };
  return {
    point: smaller,
    reason:
      `${why}, but ${smaller.memoryMb} MB (p50 ${smaller.p50Ms} ms) differs from it (p50 ${winner.p50Ms} ms) ` +
      `by less than their spread (p90 − p10 up to ${round3(Math.max(spread(smaller), spread(winner)))} ms), so the smaller size is preferred.`,
  };
}

/** The sweep's result from its points: the pick and the reason, or why there is none. */
export function sweepResult(
  functionName: string,
  strategy: SweepStrategy,
  points: SweepPoint[],
  at = new Date(),
): SweepResult {
  const pick = pickBest(points, strategy);
  return {
    functionName,
    strategy,
    best: pick?.point ?? null,
    reason: pick?.reason ?? 'Every size had a failed call, so none is recommended.',
    points,
    at: at.toISOString(),
  };
}

const escapeXml = (s: string) =>
  s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);

/** Money for people: $0.21, $2.08, $0.0021 — never 2.1e-7. */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0';
  // Two significant digits below a dollar, in fixed notation whatever the magnitude.
  const decimals = usd >= 1 ? 2 : Math.min(20, 1 - Math.floor(Math.log10(usd)));
  return `$${usd.toFixed(decimals)}`;
}

/**
 * Duration (bars: p50, with a whisker to p90; left axis) and cost per million invocations
 * (line, right axis) per memory size. Written by hand: a chart library for Node either needs a
 * DOM or a canvas build, and this is fifty lines of SVG with nothing to download.
 */
export function sweepChart(result: SweepResult): string {
  const W = 760;
  const H = 400;
  const m = { top: 60, right: 110, bottom: 70, left: 80 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = result.points;
  const maxD = Math.max(1, ...pts.map((p) => p.p90Ms ?? p.durationMs)) * 1.1;
  const maxC = Math.max(Number.EPSILON, ...pts.map((p) => p.costPerMillionUsd ?? p.costUsd * 1e6)) * 1.1;
  const step = pw / Math.max(1, pts.length);
  const x = (i: number) => m.left + step * i + step / 2;
  const yD = (d: number) => m.top + ph - (d / maxD) * ph;
  const yC = (c: number) => m.top + ph - (c / maxC) * ph;
  const f = (n: number) => n.toFixed(1);
  const bars = pts
    .map((p, i) => {
      const best = result.best?.memoryMb === p.memoryMb;
      const p50 = p.p50Ms ?? p.durationMs;
      const p90 = p.p90Ms ?? p.durationMs;
      return `<rect x="${f(x(i) - step * 0.3)}" y="${f(yD(p50))}" width="${f(step * 0.6)}" height="${f(m.top + ph - yD(p50))}" fill="${best ? '#2b8a3e' : '#4dabf7'}"><title>${p.memoryMb} MB: p50 ${p50} ms, p90 ${p90} ms</title></rect>
<line x1="${f(x(i))}" y1="${f(yD(p50))}" x2="${f(x(i))}" y2="${f(yD(p90))}" stroke="#1c3d5a" stroke-width="2"/>
<line x1="${f(x(i) - 6)}" y1="${f(yD(p90))}" x2="${f(x(i) + 6)}" y2="${f(yD(p90))}" stroke="#1c3d5a" stroke-width="2"/>
<text x="${f(x(i))}" y="${H - m.bottom + 18}" text-anchor="middle" font-size="12">${p.memoryMb} MB${best ? ' ✓' : ''}</text>`;
    })
    .join('\n');
  const cost = (p: SweepPoint) => p.costPerMillionUsd ?? p.costUsd * 1e6;
  const line = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${f(x(i))},${f(yC(cost(p)))}`).join(' ');
  const dots = pts
    .map(
      (p, i) =>
        `<circle cx="${f(x(i))}" cy="${f(yC(cost(p)))}" r="4" fill="#e8590c"><title>${formatUsd(cost(p))} per million invocations</title></circle>`,
    )
    .join('\n');
  const ticks = [0, 0.5, 1]
    .map(
      (
        q,
      ) => `<text x="${m.left - 8}" y="${f(m.top + ph - q * ph + 4)}" text-anchor="end" font-size="11">${(maxD * q).toFixed(1)} ms</text>
<text x="${m.left + pw + 8}" y="${f(m.top + ph - q * ph + 4)}" font-size="11">${formatUsd(maxC * q)}</text>`,
    )
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${m.left}" y="22" font-size="15" font-weight="bold">${escapeXml(result.functionName)}: duration and cost per memory size (${result.strategy}${result.best ? `, best ${result.best.memoryMb} MB` : ''})</text>
<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333"/>
<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#4dabf7"/>
<line x1="${m.left + pw}" y1="${m.top}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#e8590c"/>
${ticks}
<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">duration (ms)</text>
<text transform="translate(${W - 14} ${m.top + ph / 2}) rotate(90)" text-anchor="middle" font-size="12">cost per million invocations (USD)</text>
<text x="${m.left + pw / 2}" y="${H - m.bottom + 40}" text-anchor="middle" font-size="12">memory size</text>
<rect x="${m.left + 8}" y="${m.top - 22}" width="10" height="10" fill="#4dabf7"/>
<text x="${m.left + 22}" y="${m.top - 13}" font-size="11">duration p50 (whisker: p90)</text>
<line x1="${m.left + 200}" y1="${m.top - 17}" x2="${m.left + 214}" y2="${m.top - 17}" stroke="#e8590c" stroke-width="2"/>
<text x="${m.left + 220}" y="${m.top - 13}" font-size="11">cost per million invocations</text>
${bars}
<path d="${line}" fill="none" stroke="#e8590c" stroke-width="2"/>
${dots}
<text x="${m.left}" y="${H - 12}" font-size="11">${escapeXml(result.reason)}</text>
</svg>
`;
}
