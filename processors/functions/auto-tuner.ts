/**
 * The Infra-worker's Smart Auto-Tuner: from memory peak, CPU share and duration, a memory size
 * with headroom and what it would save. Prices are AWS Lambda's x86 on-demand rate, so the
 * dollars read like a Lambda bill: $0.0000166667 per GB-second.
 */
export const PRICE_PER_GB_SECOND = 0.0000166667;
/** With no observed rate yet, savings are quoted for this many invocations a month. */
export const DEFAULT_MONTHLY_INVOCATIONS = 1_000_000;
const MONTH_SECONDS = 30 * 24 * 3600;

/** Above this share of the limit, an OOM kill is one spike away. */
export const RISK_SHARE = 0.85;
/** Below this share of the limit, memory (and money) is idle. */
export const WASTE_SHARE = 0.3;
/** Low CPU over a long wall time: waiting on I/O, which more memory (and CPU) will not fix. */
export const IO_BOUND = { cpuPercent: 20, durationMs: 1000 };

export interface TunerInput {
  memoryLimitMb: number;
  peakMb: number;
  cpuPercent: number;
  durationMs: number;
  monthlyInvocations?: number;
}

export interface TunerAdvice {
  /** "128MB", as the Infra-worker printed it. */
  recommendation: string;
  recommendationMb: number;
  /** Percent of the memory bill saved (negative: it costs more, to be safe). */
  savings: number;
  monthlySavingsUsd: number;
  pattern: 'memory_risk' | 'resource_waste' | 'io_bound' | 'balanced';
  tip: string;
}

const step = (mb: number) => Math.max(128, Math.ceil(mb / 64) * 64);
const money = (usd: number) => `$${Math.abs(usd).toFixed(2)}`;

export function advise(input: TunerInput): TunerAdvice {
  const { memoryLimitMb: limit, peakMb, cpuPercent, durationMs } = input;
  const monthly = input.monthlyInvocations ?? DEFAULT_MONTHLY_INVOCATIONS;
  const share = limit > 0 ? peakMb / limit : 0;
  let recommendationMb = limit;
  let pattern: TunerAdvice['pattern'] = 'balanced';
  if (share > RISK_SHARE) {
    pattern = 'memory_risk';
    recommendationMb = step(peakMb / 0.7); // peak back to ~70% of the limit
  } else if (share < WASTE_SHARE && step(peakMb * 1.5) < limit) {
    pattern = 'resource_waste';
    recommendationMb = step(peakMb * 1.5); // 50% headroom over the observed peak
  } else if (cpuPercent < IO_BOUND.cpuPercent && durationMs > IO_BOUND.durationMs) {
    pattern = 'io_bound';
  }
  const gbSecondsSaved = ((limit - recommendationMb) / 1024) * (durationMs / 1000) * monthly;
  const monthlySavingsUsd = Math.round(gbSecondsSaved * PRICE_PER_GB_SECOND * 100) / 100;
  const savings = limit > 0 ? Math.round(((limit - recommendationMb) / limit) * 1000) / 10 : 0;
  const peak = `${Math.round(peakMb)}MB`;
  const tip = {
    memory_risk: `🚨 Memory risk: peak usage was ${peak} of ${limit}MB (${Math.round(share * 100)}%). Raise it to ${recommendationMb}MB to stay clear of OOM kills (${money(monthlySavingsUsd)}/month more).`,
    resource_waste: `💡 Resource waste: you allocated ${limit}MB but peak usage was only ${peak}. Switch to ${recommendationMb}MB to save ${money(monthlySavingsUsd)}/month.`,
    io_bound: `🐢 I/O bound: ${Math.round(cpuPercent)}% CPU over ${Math.round(durationMs)} ms means the function waits on the network or disk; more memory will not make it faster.`,
    balanced: `✅ Balanced: peak usage ${peak} is ${Math.round(share * 100)}% of ${limit}MB; keep it.`,
  }[pattern];
  return {
    recommendation: `${recommendationMb}MB`,
    recommendationMb,
    savings,
    monthlySavingsUsd,
    pattern,
    tip,
  };
}

export interface TuningSample {
  /** When it ran, ms since epoch. */
  t: number;
  durationMs: number;
  peakMb: number;
  cpuPercent: number;
  status: string;
  memoryLimitMb: number;
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? 0;
};

/** The tuner over recent invocations: p95 peak decides, the observed rate prices it. */
export function summariseSamples(samples: TuningSample[], memoryLimitMb: number) {
  const ok = samples.filter((s) => s.status === 'SUCCESS' && s.peakMb > 0);
  const times = samples.map((s) => s.t);
  const spanSeconds = times.length > 1 ? (Math.max(...times) - Math.min(...times)) / 1000 : 0;
  const perSecond = spanSeconds > 0 ? (samples.length - 1) / spanSeconds : undefined;
  const p95PeakMb = quantile(
    ok.map((s) => s.peakMb),
    0.95,
  );
  const p50DurationMs = quantile(
    ok.map((s) => s.durationMs),
    0.5,
  );
  const p95DurationMs = quantile(
    ok.map((s) => s.durationMs),
    0.95,
  );
  const cpu = quantile(
    ok.map((s) => s.cpuPercent),
    0.5,
  );
  const monthlyInvocations = perSecond ? Math.round(perSecond * MONTH_SECONDS) : undefined;
  return {
    samples: samples.length,
    successful: ok.length,
    memoryLimitMb,
    p95PeakMb: Math.round(p95PeakMb * 100) / 100,
    p50DurationMs,
    p95DurationMs,
    p50CpuPercent: cpu,
    observedPerHour: perSecond ? Math.round(perSecond * 3600 * 100) / 100 : null,
    monthlyInvocations: monthlyInvocations ?? DEFAULT_MONTHLY_INVOCATIONS,
    advice:
      ok.length === 0
        ? null
        : advise({
            memoryLimitMb,
            peakMb: p95PeakMb,
            cpuPercent: cpu,
            durationMs: p50DurationMs,
            monthlyInvocations,
          }),
  };
}
