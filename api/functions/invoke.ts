import { randomUUID } from 'node:crypto';
import {
  coerceError,
  DependencyUnavailableError,
  DockhandError,
  WaitTimeoutError,
} from '../../core/errors.ts';
import type { FunctionRecord } from '../../processors/functions/function-store.ts';
import type { Enqueue } from '../../queues/enqueue.ts';
import type { ResultWaiter } from '../../queues/result-waiter.ts';
import type { InvocationResult } from '../../queues/schemas/functions.ts';

/**
 * How an invocation reaches a worker and its answer comes back, shared by Dockhand's own
 * route (POST /functions/:name/invoke) and Lambda's (POST /2015-03-31/functions/:name/invocations)
 * so the two cannot drift: the same queue payload, the same wait, the same 503 and 504.
 */
export interface InvokeDeps {
  enqueue: Enqueue;
  waiter: ResultWaiter;
  /** Is any worker able to run functions now (its Docker answers)? Unset: assume so. */
  functionsAvailable?: () => Promise<boolean>;
}

/** Sync callers wait this long past the function's own timeout for a worker to pick the call up. */
export const QUEUE_GRACE_MS = 30_000;

/** Where the call came from, kept on the job: `http` (Dockhand's route), `lambda` (Lambda's). */
export type InvokeSource = 'http' | 'lambda';

/** A synchronous call with no worker able to run it is a 503 at once, not a timeout later. */
export async function requireFunctionWorker(deps: Pick<InvokeDeps, 'functionsAvailable'>) {
  if (deps.functionsAvailable && !(await deps.functionsAvailable()))
    throw new DependencyUnavailableError(
      'No worker can run functions right now: Docker does not answer on any worker, or none is running (start dockerd or a worker, or invoke with X-Invocation-Type: Event to queue the call).',
    );
}

const payload = (record: FunctionRecord, requestId: string, event: unknown, source: InvokeSource) => ({
  functionName: record.name,
  version: record.version,
  requestId,
  event,
  source,
});

/**
 * Queues an asynchronous (Event) call and answers its request id. Its retries: the catalog's
 * attempts for Dockhand's own failures, and the function's event-invoke-config for the handler's.
 */
export async function invokeAsync(
  deps: Pick<InvokeDeps, 'enqueue'>,
  record: FunctionRecord,
  event: unknown,
  source: InvokeSource,
): Promise<string> {
  const requestId = randomUUID();
  await deps.enqueue(
    'functions',
    { ...payload(record, requestId, event, source), invocationType: 'Event' },
    { jobId: requestId },
  );
  return requestId;
}

/**
 * Runs a call and waits for its result. A handler's own failure is a result (status FAILED or
 * TIMEOUT); what throws is Dockhand's: 503 when no worker can run it or the job failed,
 * 504 `invocation_pending` when no answer came within the function's timeout plus the grace.
 */
export async function invokeSync(
  deps: InvokeDeps,
  record: FunctionRecord,
  event: unknown,
  source: InvokeSource,
): Promise<InvocationResult> {
  await requireFunctionWorker(deps);
  const requestId = randomUUID();
  const result = deps.waiter.expect<InvocationResult>(requestId, record.timeoutMs + QUEUE_GRACE_MS);
  try {
    // A caller waiting on the answer retries themselves; a retry here could run it twice.
    await deps.enqueue(
      'functions',
      {
        ...payload(record, requestId, event, source),
        invocationType: 'RequestResponse',
        replyTo: deps.waiter.replyTo,
      },
      { jobId: requestId, attempts: 1 },
    );
  } catch (err) {
    deps.waiter.cancel(requestId);
    // The waiter was cancelled: its rejection has no one left to tell.
    result.catch(() => {});
    throw err;
  }
  try {
    return await result;
  } catch (err) {
    if (err instanceof WaitTimeoutError) {
      throw new DockhandError(
        'invocation_pending',
        504,
        `No result within the wait; poll GET /invocations/${requestId}.`,
      );
    }
    throw new DockhandError(
      'invocation_failed',
      503,
      `The invocation could not run: ${coerceError(err).message}`,
    );
  }
}
