import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { coerceError, ValidationError } from '../../core/errors.ts';
import type { Enqueue } from '../enqueue.ts';
import type { ExecRequest, ExecResponse } from '../schemas/exec.ts';
import { failedExecResponse } from './responses.ts';
import { describeExecution } from './state.ts';
import {
  type ExecLimits,
  execJob,
  executionIdForCorrelation,
  submitExec,
  timeoutSecondsOf,
  validateExecRequest,
} from './submission.ts';
import type { ExecWaiter } from './waiter.ts';

export interface ExecBridgeDeps {
  /** A connection of its own: a subscribed ioredis client can do nothing else. */
  subscriber: Redis;
  /** Publishes responses and holds the claims. */
  redis: Redis;
  queue: Queue;
  enqueue: Enqueue;
  waiter: ExecWaiter;
  limits: ExecLimits;
  prefix: string;
  /** The Exec Agent's channels: `exec-requests` and `exec-responses` unless configured. */
  channels: { requests: string; responses: string };
  /** How long an answer is awaited beyond the request's own timeout (time spent queued). */
  queueWaitMs?: number;
  log?: { warn(obj: object, msg: string): void };
  /** Checks the queue layer cannot make (workspace paths), injected by the role. */
  checkRequest?: (request: ExecRequest) => void;
}

/** What the channel hears that is not a request: answered, never dropped. */
type ChannelError = Omit<ExecResponse, 'correlation_id' | 'execution_id'> & {
  correlation_id: string | null;
  execution_id: string | null;
};

const DAY_MS = 86_400_000;

/**
 * The Exec Agent's Redis interface on top of the durable queue: a request PUBLISHed on
 * `exec-requests` is enqueued under an id derived from its correlation_id, and its response
 * is PUBLISHed on `exec-responses`. Pub/sub delivers to whoever listens at that moment, so
 * this path is at-most-once (a bridge that restarts mid-execution never answers): POST /exec
 * and the queue are the durable way.
 *
 * Two bridges (say `all` and a `bridge`) both hear every request: a claim in Redis picks the
 * one that enqueues and answers; the other answers only a request whose execution already
 * ended (a client publishing again after a lost answer).
 */
export function createExecBridge(deps: ExecBridgeDeps) {
  const { channels } = deps;
  const claimKey = (id: string) => `${deps.prefix}:exec:bridge:${id}`;
  const queueWaitMs = deps.queueWaitMs ?? DAY_MS;
  const pending = new Set<Promise<void>>();

  const publish = (response: ExecResponse | ChannelError) =>
    deps.redis.publish(channels.responses, JSON.stringify(response));

  const refuse = (correlationId: string | null, error: string) =>
    publish({
      ...failedExecResponse({ execution_id: '', correlation_id: '' }, error),
      correlation_id: correlationId,
      execution_id: null,
    });

  async function handle(message: string): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(message);
    } catch {
      await refuse(null, 'The message on exec-requests is not valid JSON.');
      return;
    }
    const readable = (body as { correlation_id?: unknown } | null)?.correlation_id;
    const correlation = typeof readable === 'string' && readable !== '' ? readable : null;
    let request: ReturnType<typeof validateExecRequest>;
    try {
      request = validateExecRequest(body);
    } catch (err) {
      const reason = err instanceof ValidationError ? err.message : coerceError(err).message;
      await refuse(correlation, `The request is invalid: ${reason}`);
      return;
    }
    const correlationId = request.correlation_id ?? randomUUID();
    const id = executionIdForCorrelation(correlationId);
    const won = await deps.redis.set(claimKey(id), '1', 'PX', DAY_MS, 'NX');
    if (!won) {
      const state = await describeExecution(deps.queue, deps.redis, deps.prefix, id);
      if (state?.state === 'finished') await publish(state.response);
      return;
    }
    const timeoutMs = timeoutSecondsOf(request, deps.limits) * 1000 + queueWaitMs;
    const answer = deps.waiter.expect(id, timeoutMs);
    try {
      deps.checkRequest?.(request);
      await submitExec(
        deps.enqueue,
        deps.limits,
        execJob({ ...request, correlation_id: correlationId }, 'bridge', id),
      );
    } catch (err) {
      await deps.redis.del(claimKey(id));
      deps.waiter.forget(id);
      const reason = err instanceof ValidationError ? err.message : coerceError(err).message;
      await refuse(correlationId, `The request was not accepted: ${reason}`);
      return;
    }
    const response = await answer;
    await publish(
      response ??
        failedExecResponse(
          { execution_id: id, correlation_id: correlationId },
          `No answer within ${Math.round(timeoutMs / 1000)} seconds; GET /exec/${id} may have it later.`,
        ),
    );
  }

  const onMessage = (channel: string, message: string) => {
    if (channel !== channels.requests) return;
    const task = handle(message)
      .catch((err: unknown) =>
        deps.log?.warn({ err: coerceError(err).message }, 'exec bridge: request not answered'),
      )
      .finally(() => pending.delete(task));
    pending.add(task);
  };

  return {
    async start(): Promise<void> {
      deps.subscriber.on('message', onMessage);
      await deps.subscriber.subscribe(channels.requests);
    },
    /** Stops hearing requests; answers already awaited are dropped with the waiter's close. */
    async close(): Promise<void> {
      deps.subscriber.off('message', onMessage);
      await deps.subscriber.unsubscribe(channels.requests).catch(() => {});
    },
    /** Requests still being handled (tests). */
    inFlight: () => pending.size,
  };
}
