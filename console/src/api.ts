/*
 * The console's only way to the server: the public HTTP API, typed here by hand from
 * openapi/openapi.json (nothing is imported from the server). No DOM here, so the unit test
 * runs it under Node with a fake fetch; the key comes from a getter the page supplies.
 */

import { parseSse, type SseEvent } from './sse.ts';

export interface ApiErrorBody {
  error: string;
  message: string;
  field?: string;
}

/** A non-2xx answer, with the contract's `{error, message, field}` when the server sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, body: Partial<ApiErrorBody> | undefined, fallback: string) {
    super(body?.message ?? fallback);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.error ?? `http_${status}`;
    this.field = body?.field;
  }
  /** The route is not on this server (an older gateway): the button says so instead of failing. */
  get missingRoute(): boolean {
    return this.status === 404 && this.message.startsWith('No route ');
  }
}

export interface QueueCounts {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
  paused: boolean;
}

export type InvocationStatus = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'TIMEOUT' | 'CANCELLED';

export interface InvocationSummary {
  requestId: string;
  functionName: string;
  status: InvocationStatus;
  source?: string;
  durationMs?: number;
  coldStart?: boolean;
  memoryUsedMb?: number;
  error?: string;
  createdAt: string;
  finishedAt?: string;
}

export interface FunctionView {
  name: string;
  runtime: string;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  env: Record<string, string>;
  network: string;
  concurrency: number;
  version: string;
  codeSha256: string;
  codeSize: number;
  codeLocation: string;
  lastModified: string;
}

export interface DeployBody {
  runtime: string;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  env?: Record<string, string>;
  network?: 'none' | 'egress';
  concurrency?: number;
  code: { zipBase64: string } | { files: Record<string, string> };
}

export interface InvocationResult {
  requestId: string;
  functionName: string;
  status: 'SUCCESS' | 'FAILED' | 'TIMEOUT' | 'CANCELLED';
  durationMs: number;
  result: unknown;
  error?: { errorType: string; errorMessage: string; stack?: string };
  logs?: string;
  logsTruncated?: boolean;
  resources: {
    memoryUsedMb: number;
    cpuUsagePercent: number;
    networkRxBytes: number;
    networkTxBytes: number;
  };
  autoTuner: {
    recommendation: string;
    recommendationMb: number;
    savings: number;
    monthlySavingsUsd: number;
    pattern: string;
    tip: string;
  };
  coldStart: boolean;
}

/** GET /invocations/:id: the result (done) or where it stands. */
export type InvocationState =
  | { done: true; result: InvocationResult }
  | { done: false; requestId: string; status: 'PENDING' | 'RUNNING' };

export interface TuningAdvice {
  recommendation: string;
  recommendationMb: number;
  savings: number;
  monthlySavingsUsd: number;
  pattern: string;
  tip: string;
}

export interface TuningView {
  functionName: string;
  samples: number;
  successful: number;
  memoryLimitMb: number;
  p95PeakMb: number;
  p50DurationMs: number;
  p95DurationMs: number;
  p50CpuPercent: number;
  observedPerHour: number | null;
  monthlyInvocations: number;
  advice: TuningAdvice | null;
}

export interface SweepOptions {
  memorySizes?: number[];
  invocations?: number;
  event?: unknown;
  strategy?: 'cost' | 'speed' | 'balanced';
}

export interface SweepPoint {
  memoryMb: number;
  durationMs: number;
  p10Ms: number;
  p50Ms: number;
  p90Ms: number;
  costUsd: number;
  costPerMillionUsd: number;
  runs: number;
  failures: number;
}

export interface SweepResult {
  functionName: string;
  strategy: 'cost' | 'speed' | 'balanced';
  best: SweepPoint | null;
  reason: string;
  points: SweepPoint[];
  at: string;
}

export interface SweepStatus {
  sweepId: string;
  functionName: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  progress: number;
  location: string;
  result?: SweepResult;
  error?: string;
}

export type ExecStatus =
  | 'queued'
  | 'running'
  | 'cancelling'
  | 'succeeded'
  | 'failed'
  | 'timeout'
  | 'cancelled';

export interface ExecSummary {
  execution_id: string;
  correlation_id: string;
  status: ExecStatus;
  image?: string;
  duration?: string;
  exit_code?: number | null;
  output_files?: number;
  error?: string;
  createdAt: string;
  finishedAt?: string;
}

export interface ExecOutputFile {
  name: string;
  path: string;
  content: string;
  size: number;
  encoding?: 'utf8' | 'base64';
}

export interface ExecResponse {
  correlation_id: string;
  success: boolean;
  result?: {
    exit_code: number | null;
    output: string;
    logs: string;
    graph_update: unknown;
    output_files: ExecOutputFile[];
    minio_objects: { object_name: string; size: number }[];
    metadata: Record<string, unknown> & { execution_time: string };
  };
  error?: string;
  status?: 'succeeded' | 'failed' | 'timeout' | 'cancelled';
  timestamp: string;
  duration: string;
  execution_id: string;
}

export interface ExecPending {
  execution_id: string;
  correlation_id: string;
  status: 'queued' | 'running' | 'cancelling';
  location: string;
}

export type ExecState = { done: true; response: ExecResponse } | { done: false; pending: ExecPending };

export type BatchStatus = 'pending' | 'processing' | 'done' | 'failed';

export interface BatchView {
  name: string;
  status: BatchStatus;
  path: string;
  files: string[];
  folderState: string;
  error?: string;
}

export interface MetricScore {
  metric_id: string;
  score: number | null;
  confidence: number;
  rationale: string;
  evidence: Record<string, unknown>;
  gaps: string[];
}

export interface BatchResult {
  metrics: Record<string, MetricScore>;
  summary: {
    overall_score: number | null;
    category_scores: Record<string, number>;
    breakdown: Array<{
      category: string;
      weight: number;
      score: number;
      metrics: Array<{ metric_id: string; weight: number; score: number }>;
    }>;
    scored_metrics: number;
  };
  [extra: string]: unknown;
}

export interface NodeMetrics {
  cpu_usage: number;
  mem_usage: number;
  disk_free_mb: number;
  running_containers: unknown[];
  pool?: { idle: number; busy: number };
  active_jobs?: Record<string, number>;
  gpus?: Array<Record<string, unknown>>;
}

export type NodeStatus = 'online' | 'offline' | 'draining' | 'drained' | 'ineligible';

export interface NodeView {
  node_id: string;
  name: string;
  ip: string;
  status: NodeStatus;
  capabilities: {
    os: string;
    cpu_count: number;
    mem_mb: number;
    disk_mb?: number;
    gpus?: Array<{ name?: string; memory_mb?: number; [k: string]: unknown }>;
    [k: string]: unknown;
  };
  metrics?: NodeMetrics;
  reported_state?: string;
  desired: { eligible: boolean; drain: boolean };
  registered_at: string;
  last_seen: string;
  heartbeat_age_seconds: number;
}

export interface DeadLetter {
  source: string;
  id: string;
  body: string;
  reason: string;
  at: string;
}

export interface LogLine {
  stream: 'stdout' | 'stderr' | string;
  text: string;
  ts: number;
}

export type LogKind = 'invocations' | 'exec';

export interface ApiOptions {
  /** Where the API is; default '' (the page's own origin). */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** The key the user typed, sent as a bearer token; never put in a URL. */
  getKey?: () => string | undefined;
  /** Told of every 401, so the page can ask for a key again. */
  onUnauthorized?: (error: ApiError) => void;
}

interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Statuses answered as values rather than thrown; default 2xx only. */
  accept?: (status: number) => boolean;
}

const enc = encodeURIComponent;

function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== '');
  if (entries.length === 0) return '';
  return `?${entries.map(([k, v]) => `${enc(k)}=${enc(String(v))}`).join('&')}`;
}

export function createApi(options: ApiOptions = {}) {
  const base = options.baseUrl ?? '';
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));

  function headersFor(extra: Record<string, string> = {}, json = false): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra };
    const key = options.getKey?.();
    if (key) headers.authorization = `Bearer ${key}`;
    if (json) headers['content-type'] = 'application/json';
    return headers;
  }

  async function fail(res: Response): Promise<never> {
    const text = await res.text().catch(() => '');
    let body: Partial<ApiErrorBody> | undefined;
    try {
      body = text ? (JSON.parse(text) as Partial<ApiErrorBody>) : undefined;
    } catch {
      body = undefined;
    }
    const error = new ApiError(res.status, body, `${res.status} ${res.statusText || 'error'}`.trim());
    if (res.status === 401) options.onUnauthorized?.(error);
    throw error;
  }

  async function request<T>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<{ status: number; body: T }> {
    const hasBody = opts.body !== undefined;
    const res = await doFetch(`${base}${path}`, {
      method,
      headers: headersFor(opts.headers, hasBody),
      body: hasBody ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
      credentials: 'omit',
    });
    const ok = (res.status >= 200 && res.status < 300) || opts.accept?.(res.status);
    if (!ok) return fail(res);
    const text = res.status === 204 ? '' : await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  const get = async <T>(path: string, signal?: AbortSignal) =>
    (await request<T>('GET', path, { signal })).body;

  /**
   * A log stream (SSE) read through fetch, so the key goes in a header (EventSource cannot send
   * one). Resolves when the stream ends: with the end status, or undefined if it closed without.
   */
  async function streamLogs(
    kind: LogKind,
    id: string,
    handlers: { onLog: (line: LogLine) => void; signal?: AbortSignal; follow?: boolean },
  ): Promise<string | undefined> {
    const follow = handlers.follow ?? true;
    const res = await doFetch(`${base}/${kind}/${enc(id)}/logs${follow ? '?follow=1' : ''}`, {
      headers: headersFor({ accept: 'text/event-stream' }),
      signal: handlers.signal,
      credentials: 'omit',
    });
    if (!res.ok) return fail(res);
    if (!res.body) return undefined;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let ended: string | undefined;
    const handle = (event: SseEvent) => {
      try {
        const data = JSON.parse(event.data) as Record<string, unknown>;
        if (event.event === 'log') handlers.onLog(data as unknown as LogLine);
        else if (event.event === 'end') ended = typeof data.status === 'string' ? data.status : 'ended';
      } catch {
        // Not JSON: not one of ours; skipped.
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const parsed = parseSse(buffer);
        buffer = parsed.rest;
        for (const event of parsed.events) handle(event);
        if (ended !== undefined) break;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    return ended;
  }

  return {
    settings: () => get<{ keyRequired: boolean }>('/console/settings.json'),
    ready: () =>
      request<{ status: string; checks?: Record<string, unknown> }>('GET', '/ready', { accept: () => true }),

    queues: (signal?: AbortSignal) => get<{ queues: QueueCounts[]; at: string }>('/queues', signal),

    functions: async (signal?: AbortSignal) =>
      (await get<{ functions: FunctionView[] }>('/functions', signal)).functions,
    getFunction: (name: string) => get<FunctionView>(`/functions/${enc(name)}`),
    deploy: async (name: string, body: DeployBody) =>
      (await request<FunctionView>('PUT', `/functions/${enc(name)}`, { body })).body,
    configure: async (
      name: string,
      body: Partial<Pick<FunctionView, 'memoryMb' | 'timeoutMs' | 'concurrency'>>,
    ) => (await request<FunctionView>('PATCH', `/functions/${enc(name)}`, { body })).body,
    deleteFunction: async (name: string) => {
      await request('DELETE', `/functions/${enc(name)}`);
    },
    /** Sync: waits for the result. Async: answers the request id at once (202). */
    invoke: async (
      name: string,
      event: unknown,
      mode: 'sync' | 'async' = 'sync',
    ): Promise<{ result: InvocationResult } | { requestId: string }> => {
      const res = await request<InvocationResult | { requestId: string }>(
        'POST',
        `/functions/${enc(name)}/invoke`,
        {
          body: event ?? {},
          headers: mode === 'async' ? { 'x-invocation-type': 'Event' } : {},
        },
      );
      return res.status === 202
        ? { requestId: (res.body as { requestId: string }).requestId }
        : { result: res.body as InvocationResult };
    },
    invocation: async (requestId: string): Promise<InvocationState> => {
      const res = await request<InvocationResult | { requestId: string; status: 'PENDING' | 'RUNNING' }>(
        'GET',
        `/invocations/${enc(requestId)}`,
      );
      if (res.status === 202) {
        const pending = res.body as { requestId: string; status: 'PENDING' | 'RUNNING' };
        return { done: false, requestId: pending.requestId, status: pending.status };
      }
      return { done: true, result: res.body as InvocationResult };
    },
    invocations: async (
      filter: { function?: string; status?: InvocationStatus; limit?: number } = {},
      signal?: AbortSignal,
    ) =>
      (
        await get<{ invocations: InvocationSummary[] }>(
          `/invocations${query({ function: filter.function, status: filter.status, limit: filter.limit })}`,
          signal,
        )
      ).invocations,
    /** DELETE /invocations/:id (another change adds it; older servers answer 404). */
    cancelInvocation: async (requestId: string) => {
      await request('DELETE', `/invocations/${enc(requestId)}`, { accept: (s) => s === 202 });
    },

    tuning: (name: string) => get<TuningView>(`/functions/${enc(name)}/tuning`),
    startSweep: async (name: string, body: SweepOptions) =>
      (await request<SweepStatus>('POST', `/functions/${enc(name)}/tuning/sweep`, { body })).body,
    sweep: (name: string, sweepId: string) =>
      get<SweepStatus>(`/functions/${enc(name)}/tuning/sweeps/${enc(sweepId)}`),

    executions: async (limit = 50, signal?: AbortSignal) =>
      (await get<{ executions: ExecSummary[] }>(`/exec${query({ limit })}`, signal)).executions,
    submitExec: async (body: unknown) => (await request<ExecPending>('POST', '/exec', { body })).body,
    execution: async (id: string): Promise<ExecState> => {
      const res = await request<ExecResponse | ExecPending>('GET', `/exec/${enc(id)}`);
      return res.status === 202
        ? { done: false, pending: res.body as ExecPending }
        : { done: true, response: res.body as ExecResponse };
    },
    cancelExec: async (id: string) =>
      (await request<ExecResponse | ExecPending>('DELETE', `/exec/${enc(id)}`)).body,

    batches: async (signal?: AbortSignal) =>
      (await get<{ batches: BatchView[] }>('/batches', signal)).batches,
    createBatch: async (name: string, files: Record<string, unknown>) =>
      (await request<BatchView>('POST', '/batches', { body: { name, files } })).body,
    batchResult: (name: string) => get<BatchResult>(`/batches/${enc(name)}/result`),

    nodes: async (signal?: AbortSignal) => (await get<{ nodes: NodeView[] }>('/api/v1/nodes', signal)).nodes,
    drain: async (id: string) => {
      await request('POST', `/api/v1/nodes/${enc(id)}/drain`);
    },
    setEligible: async (id: string, eligible: boolean) => {
      await request('POST', `/api/v1/nodes/${enc(id)}/eligibility`, { body: { eligible } });
    },

    deadLetters: async (limit = 100, signal?: AbortSignal) =>
      (await get<{ deadLetters: DeadLetter[] }>(`/dead-letters${query({ limit })}`, signal)).deadLetters,
    /** POST /dead-letters/:id/redrive (another change adds it; older servers answer 404). */
    redrive: async (id: string) => {
      await request('POST', `/dead-letters/${enc(id)}/redrive`, { accept: (s) => s === 202 });
    },

    streamLogs,
  };
}

export type Api = ReturnType<typeof createApi>;
