import type { CgroupProfiler, ResourceSample } from './cgroup-profiler.ts';
import { DEFAULT_MAX_RESULT_BYTES } from './frame-channel.ts';
import type { OutputSink, Sandbox } from './sandbox.ts';
import type { FunctionImage, WarmPool } from './warm-pool.ts';

export type InvocationStatus = 'SUCCESS' | 'FAILED' | 'TIMEOUT' | 'CANCELLED';

export interface InvocationError {
  errorType: string;
  errorMessage: string;
  stack?: string;
  /** Lambda's form of the stack: one string per line or frame. */
  stackTrace?: string[];
}

export interface Resources {
  memoryUsedMb: number;
  cpuUsagePercent: number;
  networkRxBytes: number;
  networkTxBytes: number;
}

export interface Invocation {
  status: InvocationStatus;
  durationMs: number;
  result: unknown;
  error?: InvocationError;
  logs: string;
  logsTruncated: boolean;
  resources: Resources;
  coldStart: boolean;
  memoryLimitMb: number;
}

export interface InvokeRequest {
  requestId: string;
  event: unknown;
  timeoutMs: number;
  /**
   * Live logs: output handed over as it is written, while the handler runs. The result's
   * `logs` are the same as without it.
   */
  onOutput?: OutputSink;
  /** Aborting stops the call: its container is destroyed (never reused), status CANCELLED. */
  signal?: AbortSignal;
}

export interface InvokerOptions {
  pool: WarmPool;
  profiler: CgroupProfiler;
  /**
   * Largest serialized (JSON, UTF-8) result, in bytes (MAX_RESULT_BYTES); the bootstrap checks it
   * before writing, and it is checked again here. Default 6,291,456, Lambda's 6 MB.
   */
  maxResultBytes?: number;
  /**
   * Characters of output a bootstrap streams per call when someone listens (LIVE_LOGS_MAX_CHARS);
   * past it the bootstrap stops sending, so a flood never crosses the pipe. Default 256 Ki.
   */
  liveLogChars?: number;
}

/** Said the same way by both bootstraps (runtimes/node, runtimes/python) and by the host check. */
export function resultTooLarge(bytes: number, limit: number): InvocationError {
  return {
    errorType: 'ResultTooLarge',
    errorMessage: `The result is ${bytes} bytes, over the ${limit}-byte limit for a function result; put large data in S3/MinIO and return its key instead.`,
  };
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function resources(before: ResourceSample | null, after: ResourceSample | null, wallMs: number): Resources {
  if (!before || !after) return { memoryUsedMb: 0, cpuUsagePercent: 0, networkRxBytes: 0, networkTxBytes: 0 };
  const cpuMs = Math.max(0, after.cpuNs - before.cpuNs) / 1e6;
  return {
    memoryUsedMb: round(after.memoryPeakBytes / (1024 * 1024)),
    cpuUsagePercent: wallMs > 0 ? round((cpuMs / wallMs) * 100) : 0,
    networkRxBytes: Math.max(0, after.netRxBytes - before.netRxBytes),
    networkTxBytes: Math.max(0, after.netTxBytes - before.netTxBytes),
  };
}

type Outcome =
  | { kind: 'frame'; frame: Record<string, unknown> }
  | { kind: 'timeout' }
  | { kind: 'cancelled' }
  | { kind: 'exit'; oomKilled: boolean; exitCode: number }
  | { kind: 'channel'; error: Error };

/**
 * Runs one invocation on a pooled sandbox: per-call memory peak and CPU from the cgroup, a
 * wall-clock deadline that kills the container, and a verdict on whether the container may be
 * reused (a handler's own error or a result over the limit: yes; timeout, crash, OOM, output
 * flood or an oversized reply line, which close the channel: never).
 */
export function createInvoker(deps: InvokerOptions) {
  const maxResultBytes = deps.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  const liveLogChars = deps.liveLogChars ?? 256 * 1024;
  return async function invoke(fn: FunctionImage, req: InvokeRequest): Promise<Invocation> {
    const lease = await deps.pool.acquire(fn);
    const { sandbox } = lease;
    let healthy = false;
    if (req.onOutput) sandbox.channel.setOutputSink?.(req.onOutput);
    try {
      await deps.profiler.resetPeak(sandbox.id);
      // Without a network there is only loopback: no traffic to read.
      const netPid = fn.network === 'none' ? undefined : sandbox.pid;
      const before = await deps.profiler.sample(sandbox.id, netPid);
      const started = performance.now();
      const deadline = Date.now() + req.timeoutMs;
      const outcome = await race(sandbox, req, fn, deadline, maxResultBytes, req.onOutput ? liveLogChars : 0);
      const durationMs = round(performance.now() - started);
      const after = await deps.profiler.sample(sandbox.id, netPid);
      const base = {
        durationMs,
        resources: resources(before, after, durationMs),
        coldStart: lease.coldStart,
        memoryLimitMb: fn.memoryMb,
      };
      const raw = sandbox.channel.takeRaw();
      // A reply arrived and nothing after it broke a cap: the container can serve the next call.
      healthy = outcome.kind === 'frame' && !sandbox.channel.closed;
      if (outcome.kind === 'frame') {
        const f = outcome.frame;
        const logs = `${(f.logs as string) ?? ''}${raw}`;
        // A bootstrap that does not stream (an image built before live logs): its logs, late.
        if (req.onOutput && f.streamed !== true && typeof f.logs === 'string' && f.logs)
          req.onOutput(f.logs, 'stdout');
        // The bootstrap checked already; this is for one that did not (an older or altered image).
        const bytes = f.ok ? Buffer.byteLength(JSON.stringify(f.result ?? null)) : 0;
        if (bytes > maxResultBytes)
          return {
            ...base,
            status: 'FAILED',
            result: null,
            error: resultTooLarge(bytes, maxResultBytes),
            logs,
            logsTruncated: Boolean(f.logsTruncated),
          };
        if (f.ok)
          return {
            ...base,
            status: 'SUCCESS',
            result: f.result,
            logs,
            logsTruncated: Boolean(f.logsTruncated),
          };
        return {
          ...base,
          status: 'FAILED',
          result: null,
          error: f.error as InvocationError,
          logs,
          logsTruncated: Boolean(f.logsTruncated),
        };
      }
      if (outcome.kind === 'cancelled') {
        return {
          ...base,
          status: 'CANCELLED',
          result: null,
          error: {
            errorType: 'Cancelled',
            errorMessage: 'The invocation was cancelled; its container was removed.',
          },
          logs: raw,
          logsTruncated: false,
        };
      }
      if (outcome.kind === 'timeout') {
        return {
          ...base,
          status: 'TIMEOUT',
          result: null,
          error: { errorType: 'TimeoutError', errorMessage: `Task timed out after ${req.timeoutMs} ms.` },
          logs: raw,
          logsTruncated: false,
        };
      }
      if (outcome.kind === 'exit') {
        return {
          ...base,
          status: 'FAILED',
          result: null,
          error: outcome.oomKilled
            ? {
                errorType: 'OutOfMemoryError',
                errorMessage: `The function used more than its ${fn.memoryMb} MB.`,
              }
            : {
                errorType: 'RuntimeExitError',
                errorMessage: `The runtime exited with code ${outcome.exitCode}.`,
              },
          logs: raw,
          logsTruncated: false,
        };
      }
      return {
        ...base,
        status: 'FAILED',
        result: null,
        error: {
          errorType: sandbox.channel.overLimit ? 'OutputLimitError' : 'RuntimeError',
          errorMessage: outcome.error.message,
        },
        logs: raw.slice(0, 64 * 1024),
        logsTruncated: true,
      };
    } finally {
      // What comes after the reply (a handler's stray timer) is not streamed as this call's.
      if (req.onOutput) sandbox.channel.setOutputSink?.(undefined);
      deps.pool.release(fn, sandbox, healthy);
    }
  };
}

async function race(
  sandbox: Sandbox,
  req: InvokeRequest,
  fn: FunctionImage,
  deadline: number,
  maxResultBytes: number,
  liveLogChars: number,
): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), req.timeoutMs);
  });
  let onAbort: (() => void) | undefined;
  const cancelled = new Promise<Outcome>((resolve) => {
    onAbort = () => resolve({ kind: 'cancelled' });
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const exited = sandbox.exited.then((e): Outcome => ({ kind: 'exit', ...e }));
  const reply = sandbox.channel
    .request({
      type: 'invoke',
      event: req.event,
      context: {
        requestId: req.requestId,
        functionName: fn.name,
        memoryLimitInMB: fn.memoryMb,
        deadline,
        ...(fn.arn ? { invokedFunctionArn: fn.arn } : {}),
      },
      maxResultBytes,
      ...(liveLogChars > 0 ? { liveLogChars } : {}),
    })
    .then(
      (frame): Outcome => ({ kind: 'frame', frame }),
      // The channel closes a moment before docker reports the exit; prefer the exit's reason.
      // Past a cap the container is still running and will not exit: nothing to wait for.
      async (error: Error): Promise<Outcome> =>
        sandbox.channel.overLimit
          ? { kind: 'channel', error }
          : Promise.race([
              exited,
              // unref'd: a call that ended by its exit must not keep the process waiting.
              new Promise<Outcome>((r) => setTimeout(() => r({ kind: 'channel', error }), 2000).unref()),
            ]),
    );
  try {
    // A cancel already asked for wins over a reply that raced it: the caller was told it stops.
    const outcome = await Promise.race(
      req.signal?.aborted ? [cancelled] : [reply, timeout, exited, cancelled],
    );
    if (outcome.kind === 'timeout' || outcome.kind === 'cancelled') await sandbox.destroy();
    return outcome;
  } finally {
    clearTimeout(timer);
    if (onAbort) req.signal?.removeEventListener('abort', onAbort);
  }
}
