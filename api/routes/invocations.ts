import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Type } from 'typebox';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import { cancelInvocation } from '../../queues/invocation-cancel.ts';
import { readJobWithState } from '../../queues/job-read.ts';
import type { QueueSet } from '../../queues/queue-set.ts';
import { createReplyPublisher } from '../../queues/reply-path.ts';
import type { InvocationResult } from '../../queues/schemas/functions.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { InvocationResultSchema, RequestParams } from '../schemas/functions.ts';

export interface InvocationRouteDeps {
  queues: QueueSet;
  redis: Redis;
  /** Redis key prefix (not `prefix`: Fastify takes that option as a route prefix). */
  keyPrefix: string;
  /** How long DELETE waits for a running call's worker to stop it. Default 5 s. */
  cancelWaitMs?: number;
}

/** DELETE /invocations/:requestId: cancels a queued or running invocation. */
export default async function invocationRoutes(base: FastifyInstance, deps: InvocationRouteDeps) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const replyPublisher = createReplyPublisher(deps.redis, deps.keyPrefix);
  const waitMs = deps.cancelWaitMs ?? 5_000;

  /** The result once the worker has stopped the call, or undefined while it still runs. */
  const stopped = async (id: string): Promise<InvocationResult | undefined> => {
    const until = Date.now() + waitMs;
    for (let delay = 25; ; delay = Math.min(delay * 2, 250)) {
      const read = await readJobWithState(deps.queues.functions, id);
      if (read?.state === 'completed') return read.job.returnvalue as InvocationResult;
      if (!read || Date.now() + delay > until) return undefined;
      await new Promise((r) => setTimeout(r, delay));
    }
  };

  app.delete(
    '/invocations/:requestId',
    {
      schema: {
        tags: ['functions'],
        summary: 'Cancel a queued or running invocation (its container is removed; status CANCELLED)',
        description:
          '200 with the result once it has stopped; 202 while its worker is still stopping it; 409 when it had already finished. A cancelled Event invocation is not retried, dead-lettered or sent to a destination.',
        params: RequestParams,
        response: {
          200: InvocationResultSchema,
          202: Type.Object({ requestId: Type.String(), status: Type.Literal('CANCELLING') }),
          404: ErrorResponse,
          409: ErrorResponse,
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const id = request.params.requestId;
      const done = await cancelInvocation(
        { queue: deps.queues.functions, redis: deps.redis, prefix: deps.keyPrefix, reply: replyPublisher },
        id,
      );
      if (done.outcome === 'unknown')
        throw new NotFoundError(`No invocation ${id}; results are kept for 24 hours.`);
      if (done.outcome === 'finished') throw new ConflictError(`Invocation ${id} has already finished.`);
      if (done.outcome === 'cancelled') return reply.status(200).send(done.result);
      const result = await stopped(id);
      if (result) return reply.status(200).send(result);
      return reply.status(202).send({ requestId: id, status: 'CANCELLING' as const });
    },
  );
}
