import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { Enqueue } from '../../queues/enqueue.ts';
import { cancelExecution, describeExecution } from '../../queues/exec/state.ts';
import { type ExecLimits, execJob, submitExec, timeoutSecondsOf } from '../../queues/exec/submission.ts';
import type { ExecWaiter } from '../../queues/exec/waiter.ts';
import type { QueueSet } from '../../queues/queue-set.ts';
import { ExecRequest, ExecResponse } from '../../queues/schemas/exec.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { ExecParams, ExecPending, ExecQuery } from '../schemas/exec.ts';

export interface ExecRouteDeps {
  enqueue: Enqueue;
  queues: QueueSet;
  redis: Redis;
  /** Redis key prefix (not `prefix`: Fastify takes that option as a route prefix). */
  keyPrefix: string;
  limits: ExecLimits;
  waiter: ExecWaiter;
  /** Refuses input paths that would leave /workspace/input, before anything is queued. */
  checkInput?: (request: ExecRequest) => void;
}

// ?wait=true holds the request this long past the execution's own timeout (time queued).
const WAIT_MARGIN_MS = 30_000;
// DELETE waits this long for a running execution's worker to kill it and answer.
const CANCEL_WAIT_MS = 5_000;

const location = (id: string) => `/exec/${id}`;

export default async function execRoutes(base: FastifyInstance, deps: ExecRouteDeps) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const queue = deps.queues.exec;

  app.post(
    '/exec',
    {
      schema: {
        tags: ['exec'],
        summary: 'Run a command in any image with a /workspace (the Exec Agent request)',
        description:
          'Queues the request and answers 202 with its ids; with ?wait=true, answers with the Exec Agent response once it ends.',
        body: ExecRequest,
        querystring: ExecQuery,
        response: { 200: ExecResponse, 202: ExecPending, ...commonErrors },
      },
    },
    async (request, reply) => {
      deps.checkInput?.(request.body);
      const payload = execJob(request.body, 'http');
      const id = payload.execution_id;
      const timeoutMs = timeoutSecondsOf(request.body, deps.limits) * 1000 + WAIT_MARGIN_MS;
      // Listening starts before the job exists, so a fast execution cannot end unseen.
      const answer = request.query.wait ? deps.waiter.expect(id, timeoutMs) : undefined;
      try {
        await submitExec(deps.enqueue, deps.limits, payload);
      } catch (err) {
        deps.waiter.forget(id);
        throw err;
      }
      const response = await answer;
      if (response) return reply.status(200).send(response);
      return reply
        .status(202)
        .header('location', location(id))
        .send({
          execution_id: id,
          correlation_id: payload.correlation_id,
          status: 'queued',
          location: location(id),
        });
    },
  );

  app.get(
    '/exec/:execution_id',
    {
      schema: {
        tags: ['exec'],
        summary: 'The Exec Agent response once the execution ended; 202 with its status until then',
        params: ExecParams,
        response: { 200: ExecResponse, 202: ExecPending, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      const id = request.params.execution_id;
      const state = await describeExecution(queue, deps.redis, deps.keyPrefix, id);
      if (!state) throw new NotFoundError(`No execution ${id}; finished executions are kept for 24 hours.`);
      if (state.state === 'finished') return reply.status(200).send(state.response);
      return reply.status(202).send({ ...state, status: state.state, location: location(id) });
    },
  );

  app.delete(
    '/exec/:execution_id',
    {
      schema: {
        tags: ['exec'],
        summary: 'Cancel a queued or running execution (its container is killed)',
        description:
          'Answers the response (status cancelled) once the execution has stopped, or 202 while its worker is still stopping it.',
        params: ExecParams,
        response: {
          200: ExecResponse,
          202: ExecPending,
          404: ErrorResponse,
          409: ErrorResponse,
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const id = request.params.execution_id;
      const answer = deps.waiter.expect(id, CANCEL_WAIT_MS);
      const outcome = await cancelExecution(queue, deps.redis, deps.keyPrefix, id);
      if (outcome !== 'cancelling') deps.waiter.forget(id);
      if (outcome === 'unknown')
        throw new NotFoundError(`No execution ${id}; finished executions are kept for 24 hours.`);
      if (outcome === 'finished') throw new ConflictError(`Execution ${id} has already finished.`);
      const response =
        (await answer) ??
        (await describeExecution(queue, deps.redis, deps.keyPrefix, id).then((s) =>
          s?.state === 'finished' ? s.response : undefined,
        ));
      if (response) return reply.status(200).send(response);
      const state = await describeExecution(queue, deps.redis, deps.keyPrefix, id);
      return reply.status(202).send({
        execution_id: id,
        correlation_id: state?.correlation_id ?? id,
        status: 'cancelling',
        location: location(id),
      });
    },
  );
}
