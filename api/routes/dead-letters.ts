import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { Redrive } from '../../processors/functions/redrive.ts';
import {
  DEAD_LETTER_ID_PATTERN,
  DeadLetterSchema,
  type DeadLetters,
  InvalidDeadLetter,
} from '../../queues/dead-letters.ts';
import { FUNCTION_NAME_PATTERN } from '../../queues/schemas/functions.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';

const Params = Type.Object({
  id: Type.String({ pattern: DEAD_LETTER_ID_PATTERN, description: "The entry's deadLetterId." }),
});
const RedrivenView = Type.Object({
  deadLetterId: Type.String(),
  requestId: Type.String({ description: 'The new Event invocation: GET /invocations/:requestId.' }),
  functionName: Type.String(),
});

/**
 * What could not become work (SQS messages) or failed for good (Event invocations after their
 * retries), with the reason: listed, read, redriven as fresh Event invocations, deleted.
 */
export default async function deadLetterRoutes(
  base: FastifyInstance,
  deps: { deadLetters: DeadLetters; redrive: Redrive },
) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['functions'];
  const read = async (id: string) => {
    try {
      const entry = await deps.deadLetters.get(id);
      if (!entry) throw new NotFoundError(`No dead letter ${id}.`);
      return entry;
    } catch (err) {
      if (err instanceof InvalidDeadLetter) throw new ConflictError(err.message);
      throw err;
    }
  };

  app.get(
    '/dead-letters',
    {
      schema: {
        tags,
        summary:
          'Dead letters, newest first: ingress messages that could not become work, Event invocations that failed for good',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: { 200: Type.Object({ deadLetters: Type.Array(DeadLetterSchema) }), ...commonErrors },
      },
    },
    async (request) => ({ deadLetters: await deps.deadLetters.recent(request.query.limit ?? 100) }),
  );

  app.get(
    '/dead-letters/:id',
    {
      schema: {
        tags,
        summary: 'One dead letter',
        params: Params,
        response: { 200: DeadLetterSchema, 404: ErrorResponse, 409: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => read(request.params.id),
  );

  app.delete(
    '/dead-letters/:id',
    {
      schema: {
        tags,
        summary: 'Delete a dead letter',
        params: Params,
        response: { 204: Type.Null(), 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      if (!(await deps.deadLetters.remove(request.params.id)))
        throw new NotFoundError(`No dead letter ${request.params.id}.`);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/dead-letters/:id/redrive',
    {
      schema: {
        tags,
        summary: 'Run a dead letter again as a fresh Event invocation; the entry is removed once queued',
        description:
          '400: its body is not an invocation; 409: its function is gone, the entry is not valid, or another redrive took it.',
        params: Params,
        response: { 202: RedrivenView, 404: ErrorResponse, 409: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => reply.status(202).send(await deps.redrive.one(request.params.id)),
  );

  app.post(
    '/dead-letters/redrive',
    {
      schema: {
        tags,
        summary: 'Redrive many dead letters (newest first), optionally of one function',
        body: Type.Object(
          {
            functionName: Type.Optional(Type.String({ pattern: FUNCTION_NAME_PATTERN })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            redriven: Type.Integer(),
            requests: Type.Array(RedrivenView),
            failed: Type.Array(
              Type.Object({ deadLetterId: Type.String(), error: Type.String(), message: Type.String() }),
            ),
          }),
          ...commonErrors,
        },
      },
    },
    async (request) => {
      const body = request.body ?? {};
      const { redriven, failed } = await deps.redrive.many({
        functionName: body.functionName,
        limit: body.limit ?? 100,
      });
      return { redriven: redriven.length, requests: redriven, failed };
    },
  );
}
