import { type Job, UnrecoverableError } from 'bullmq';
import { coerceError } from '../core/errors.ts';
import { notRunResult } from '../queues/invocation-cancel.ts';
import type { RunningJobs } from '../queues/job-cancel.ts';
import type { LogWriter } from '../queues/log-stream.ts';
import type { ReplyPublisher } from '../queues/reply-path.ts';
import type { InvocationPayload, InvocationResult } from '../queues/schemas/functions.ts';
import type { AsyncInvocations } from './functions/async-invocations.ts';
import { advise, DEFAULT_MONTHLY_INVOCATIONS, summariseSamples } from './functions/auto-tuner.ts';
import type { FunctionStore } from './functions/function-store.ts';
import { type RunInvocation, resized } from './functions/invocation-runner.ts';
import type { TuningHistory } from './functions/tuning-history.ts';
import { createProgressMarks } from './progress-marks.ts';

export interface FunctionsDeps {
  store: FunctionStore;
  run: RunInvocation;
  history: TuningHistory;
  /** Where every result also goes: Redis channel `function-results`, S3 logs. Failures here never fail the invocation. */
  sinks?: Array<(result: InvocationResult) => Promise<void>>;
  onResult?: (result: InvocationResult, runtime: string) => void;
  /** The direct way back to a waiting gateway (queues/reply-path.ts). */
  reply?: ReplyPublisher;
  /** A telemetry copy failed (history, a sink): counted, never the invocation's failure. */
  onTelemetryError?: (sink: string) => void;
  /**
   * Live logs (GET /invocations/:requestId/logs): the call's output as it is written, under
   * its job id, then its end. Queued in memory and batched to Redis: never awaited here.
   */
  liveLogs?: Pick<LogWriter, 'append' | 'end'>;
  /** Cancels (DELETE /invocations/:id): the calls running here, each with its abort signal. */
  running?: RunningJobs;
  /** Retries, event age, dead letters and destinations of Event invocations. */
  async?: AsyncInvocations;
}

/**
 * Runs one invocation. A handler's own failure (thrown error, timeout, OOM, a handler that does
 * not load) is a result with status FAILED or TIMEOUT; a sync call's is final, an Event call's is
 * retried as its function's event-invoke config says (processors/functions/async-invocations.ts).
 * Failures of Dockhand itself (Docker away, pool full) throw, so BullMQ retries them — for async
 * invocations, whose jobs have attempts; sync ones have one. A cancelled call ends CANCELLED.
 */
export function createFunctionsProcessor(deps: FunctionsDeps) {
  // The observed rate prices the tuner's savings; it moves slowly, so it is re-read from the
  // history at most every 10 s per function instead of on every call.
  const rates = new Map<string, { at: number; value: Promise<number> }>();
  const monthlyRate = (name: string): Promise<number> => {
    const cached = rates.get(name);
    if (cached && Date.now() - cached.at < 10_000) return cached.value;
    const value = deps.history
      .recent(name, 200)
      .then((samples) => summariseSamples(samples, 0).monthlyInvocations)
      .catch(() => DEFAULT_MONTHLY_INVOCATIONS);
    rates.set(name, { at: Date.now(), value });
    return value;
  };
  const runOne = async (job: Job<InvocationPayload>, signal?: AbortSignal): Promise<InvocationResult> => {
    // From the CLI or a script, `{"functionName": …, "event": …}` is enough: the job id names the call.
    const { functionName, event = {} } = job.data;
    const requestId = job.data.requestId ?? String(job.id);
    const stored = await deps.store.getVersion(functionName, job.data.version);
    if (!stored) {
      throw new UnrecoverableError(
        `Function ${functionName} does not exist (deleted after the call was queued?).`,
      );
    }
    const sweep = job.data.source === 'sweep';
    const eventCall = !sweep && job.data.invocationType !== 'RequestResponse' ? deps.async : undefined;
    const plan = await eventCall?.begin(job);
    if (plan?.expired) return plan.expired;
    if (signal?.aborted)
      return notRunResult(requestId, functionName, 'CANCELLED', {
        errorType: 'Cancelled',
        errorMessage: 'The invocation was cancelled before it ran.',
      });
    // Progress, as every queue's jobs carry it: 0 queued, 50 running (once it has run 100 ms:
    // processors/progress-marks.ts), 100 when done.
    const progress = createProgressMarks(job);
    progress.set(50);
    const record = resized(stored, job.data.memoryMb);
    // Under the job id, which is what the route looks the call up by (a CLI job may carry
    // another requestId in its payload).
    const jobId = String(job.id);
    const live = deps.liveLogs;
    const invocation = await deps
      .run(record, stored, {
        requestId,
        event,
        timeoutMs: record.timeoutMs,
        ...(signal ? { signal } : {}),
        ...(live ? { onOutput: (text, stream) => live.append('invocation', jobId, text, stream) } : {}),
      })
      .finally(() => progress.stop());
    live?.end('invocation', jobId, invocation.status);
    const rate = await monthlyRate(functionName);
    const autoTuner = advise({
      memoryLimitMb: record.memoryMb,
      peakMb: invocation.resources.memoryUsedMb,
      cpuPercent: invocation.resources.cpuUsagePercent,
      durationMs: invocation.durationMs,
      monthlyInvocations: rate,
    });
    const sample = {
      t: Date.now(),
      durationMs: invocation.durationMs,
      peakMb: invocation.resources.memoryUsedMb,
      cpuPercent: invocation.resources.cpuUsagePercent,
      status: invocation.status,
      memoryLimitMb: record.memoryMb,
    };
    const result: InvocationResult = {
      requestId,
      functionName,
      status: invocation.status,
      durationMs: invocation.durationMs,
      result: invocation.result,
      ...(invocation.error ? { error: invocation.error } : {}),
      logs: invocation.logs,
      logsTruncated: invocation.logsTruncated,
      resources: invocation.resources,
      autoTuner,
      coldStart: invocation.coldStart,
    };
    const counted = (sink: string) => () => deps.onTelemetryError?.(sink);
    // First, before anything else: a gateway is waiting on this (the job still completes below).
    if (job.data.replyTo && deps.reply)
      void deps.reply.result(job.data.replyTo, String(job.id), result).catch(counted('reply'));
    deps.onResult?.(result, record.runtime);
    // Off the caller's path: the result is final, and the profile, the pub/sub copy and the
    // S3 log are telemetry that must never fail or delay the invocation.
    if (!sweep) void deps.history.add(functionName, sample).catch(counted('history'));
    for (const sink of deps.sinks ?? []) void sink(result).catch(counted(sink.name || 'sink'));
    return eventCall && plan ? eventCall.settle(job, result, plan.config) : result;
  };

  return async (job: Job<InvocationPayload>): Promise<InvocationResult> => {
    const jobId = String(job.id);
    const running = deps.running;
    try {
      const rerun = (job.attemptsStarted ?? 1) > 1;
      return await runOne(job, running ? await running.begin(jobId, { rerun }) : undefined);
    } catch (err) {
      if (deps.async && job.data.invocationType !== 'RequestResponse' && job.data.source !== 'sweep')
        await deps.async.failed(job, err);
      // A waiting gateway hears of a final failure at once, as it hears of a result.
      const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (final && job.data.replyTo && deps.reply)
        void deps.reply
          .failure(job.data.replyTo, jobId, coerceError(err).message)
          .catch(() => deps.onTelemetryError?.('reply'));
      throw err;
    } finally {
      running?.end(jobId);
    }
  };
}
