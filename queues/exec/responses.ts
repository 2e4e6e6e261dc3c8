import type { ExecResponse } from '../schemas/exec.ts';

type Status = NonNullable<ExecResponse['status']>;

/** "5.2s", as the Exec Agent wrote durations, to the millisecond. */
export function formatSeconds(ms: number): string {
  return `${Number((Math.max(0, ms) / 1000).toFixed(3))}s`;
}

/**
 * A response for an execution that produced no result of its own: refused by a worker,
 * cancelled while queued, failed outside the processor, or invalid on the channel.
 */
export function failedExecResponse(
  ids: { execution_id: string; correlation_id: string },
  error: string,
  options: { status?: Status; startedAt?: number; now?: number } = {},
): ExecResponse {
  const now = options.now ?? Date.now();
  return {
    correlation_id: ids.correlation_id,
    success: false,
    error,
    status: options.status ?? 'failed',
    timestamp: new Date(now).toISOString(),
    duration: formatSeconds(options.startedAt === undefined ? 0 : now - options.startedAt),
    execution_id: ids.execution_id,
  };
}
