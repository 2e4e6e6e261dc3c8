import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { DeadLetters } from '../../queues/dead-letters.ts';
import { commonErrors } from '../schemas/common.ts';

/** What no ingress could turn into work (SQS today), with the reason. */
export default async function deadLetterRoutes(base: FastifyInstance, deps: { deadLetters: DeadLetters }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['functions'];
  app.get(
    '/dead-letters',
    {
      schema: {
        tags,
        summary: 'Ingress messages that could not become work (malformed, unknown function), newest first',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: {
          200: Type.Object({
            deadLetters: Type.Array(
              Type.Object({
                source: Type.String(),
                id: Type.String(),
                body: Type.String(),
                reason: Type.String(),
                at: Type.String(),
              }),
            ),
          }),
          ...commonErrors,
        },
      },
    },
    async (request) => ({ deadLetters: await deps.deadLetters.recent(request.query.limit ?? 100) }),
  );
}
