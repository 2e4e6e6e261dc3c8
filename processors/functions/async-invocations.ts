import { type Job, UnrecoverableError } from 'bullmq';
import { coerceError } from '../../core/errors.ts';
import type { DeadLetters } from '../../queues/dead-letters.ts';
import { notRunResult } from '../../queues/invocation-cancel.ts';
import type { InvocationPayload, InvocationResult } from '../../queues/schemas/functions.ts';
import { type DestinationCondition, destinationRecord, type SendDestination } from './destinations.ts';
import type { EventInvokeConfig, EventInvokeConfigStore } from './event-invoke-config.ts';

/**
 * Thrown for a handler's failure (FAILED, TIMEOUT) of an Event invocation that has retries left:
 * BullMQ retries the job after invocationBackoff's delay. Sync calls never see it.
 */
export class HandlerFailureRetry extends Error {
  override name = 'HandlerFailureRetry';
}

/**
 * The `functions` queue's backoff (type `invocation`): a handler's failure waits n × delayMs
 * before retry n (Lambda: 1 then 2 minutes); Dockhand's own failures (Docker away) back off
 * exponentially from 1 s, as every retried queue does.
 */
export function invocationBackoff(delayMs: number) {
  return (attemptsMade: number, _type?: string, err?: Error): number =>
    err?.name === 'HandlerFailureRetry' ? delayMs * attemptsMade : 1000 * 2 ** Math.max(0, attemptsMade - 1);
}

export interface AsyncInvocationDeps {
  configs: EventInvokeConfigStore;
  deadLetters: Pick<DeadLetters, 'add'>;
  send: SendDestination;
  /** The delay before retry 1 (retry n waits n times it), ms. */
  retryDelayMs: number;
  functionArn: (name: string) => string;
  /** A dead letter could not be written (the job fails instead, and keeps the event). */
  log?: (message: string, extra: Record<string, unknown>) => void;
  now?: () => number;
}

type EventJob = Job<InvocationPayload>;

/**
 * What happens to an asynchronous (Event) invocation around its run, as Lambda does it: an event
 * older than the function's maximumEventAgeSeconds is not run; a handler's failure is retried up
 * to maximumRetryAttempts; after the last failure (or expiry) the event is dead-lettered and the
 * on-failure destination is sent; a success goes to the on-success destination. A cancelled call
 * ends there: not retried, not dead-lettered, no destination (it was stopped on purpose).
 */
export function createAsyncInvocations(deps: AsyncInvocationDeps) {
  const now = deps.now ?? Date.now;
  const depth = (job: EventJob) => job.data.destinationDepth ?? 0;
  const requestIdOf = (job: EventJob) => job.data.requestId ?? String(job.id);
  const expiresAt = (job: EventJob, config: EventInvokeConfig) =>
    job.timestamp + config.maximumEventAgeSeconds * 1000;

  const giveUp = async (
    job: EventJob,
    config: EventInvokeConfig | undefined,
    condition: Exclude<DestinationCondition, 'Success'>,
    attempts: number,
    error: { errorType: string; errorMessage: string },
    result?: InvocationResult,
  ) => {
    const { functionName, event = {} } = job.data;
    const requestId = requestIdOf(job);
    try {
      await deps.deadLetters.add({
        source: 'async-invocation',
        id: requestId,
        body: JSON.stringify(event) ?? 'null',
        reason: `${error.errorType}: ${error.errorMessage}`,
        at: new Date(now()).toISOString(),
        functionName,
        requestId,
        event,
        error: { errorType: error.errorType, errorMessage: error.errorMessage },
        attempts,
        condition,
      });
    } catch (err) {
      deps.log?.('A failed invocation could not be dead-lettered; its job fails and keeps it.', {
        requestId,
        err: coerceError(err).message,
      });
      throw new UnrecoverableError(
        `The invocation failed (${error.errorType}) and could not be dead-lettered: ${coerceError(err).message}`,
      );
    }
    if (config?.onFailure) {
      const record = destinationRecord({
        requestId,
        functionArn: deps.functionArn(functionName),
        condition,
        attempts,
        event,
        result,
        error,
      });
      await deps.send(config.onFailure, record, depth(job));
    }
  };

  return {
    /** The function's settings; `expired` when the event is too old to run now. */
    async begin(job: EventJob): Promise<{ config: EventInvokeConfig; expired?: InvocationResult }> {
      const config = await deps.configs.effective(job.data.functionName);
      if (now() <= expiresAt(job, config)) return { config };
      const error = {
        errorType: 'EventAgeExceeded',
        errorMessage: `The event was older than ${config.maximumEventAgeSeconds} s (maximumEventAgeSeconds) when its turn came; it was not run.`,
      };
      const attempts = job.attemptsMade;
      await giveUp(job, config, 'EventAgeExceeded', attempts, error);
      return {
        config,
        expired: notRunResult(requestIdOf(job), job.data.functionName, 'FAILED', error),
      };
    },

    /** After a run: the result to complete with, or HandlerFailureRetry thrown to run again. */
    async settle(
      job: EventJob,
      result: InvocationResult,
      config: EventInvokeConfig,
    ): Promise<InvocationResult> {
      if (result.status === 'CANCELLED') return result;
      const attempts = job.attemptsMade + 1;
      if (result.status === 'SUCCESS') {
        if (config.onSuccess)
          await deps.send(
            config.onSuccess,
            destinationRecord({
              requestId: requestIdOf(job),
              functionArn: deps.functionArn(job.data.functionName),
              condition: 'Success',
              attempts,
              event: job.data.event ?? {},
              result,
            }),
            depth(job),
          );
        return result;
      }
      const error = result.error ?? {
        errorType: result.status,
        errorMessage: `The invocation ended ${result.status}.`,
      };
      const allowed = Math.min(config.maximumRetryAttempts, (job.opts.attempts ?? 1) - 1);
      if (job.attemptsMade < allowed) {
        const nextAt =
          now() + invocationBackoff(deps.retryDelayMs)(attempts, undefined, new HandlerFailureRetry());
        if (nextAt <= expiresAt(job, config))
          throw new HandlerFailureRetry(`${error.errorType}: ${error.errorMessage}`);
        // The retry would start after the event expired: it is given up now, not after the wait.
        await giveUp(job, config, 'EventAgeExceeded', attempts, error, result);
        return result;
      }
      await giveUp(job, config, 'RetriesExhausted', attempts, error, result);
      return result;
    },

    /**
     * Dockhand itself could not run the call (Docker away, function deleted): on the job's last
     * attempt the event is dead-lettered before the job fails, so it is not lost.
     */
    async failed(job: EventJob, err: unknown): Promise<void> {
      const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (!final || err instanceof HandlerFailureRetry) return;
      const config = await deps.configs.effective(job.data.functionName).catch(() => undefined);
      const e = coerceError(err);
      await giveUp(job, config, 'RetriesExhausted', job.attemptsMade + 1, {
        errorType: 'InvocationError',
        errorMessage: e.message,
      }).catch(() => {});
    },
  };
}
export type AsyncInvocations = ReturnType<typeof createAsyncInvocations>;
