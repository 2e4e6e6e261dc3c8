import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { NotFoundError, ValidationError } from '../../core/errors.ts';
import type { Destination, EventInvokeConfigStore } from '../../processors/functions/event-invoke-config.ts';
import { EventInvokeConfig } from '../../processors/functions/event-invoke-config.ts';
import type { FunctionStore } from '../../processors/functions/function-store.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { FunctionParams } from '../schemas/functions.ts';

export interface EventInvokeConfigRouteDeps {
  store: FunctionStore;
  configs: EventInvokeConfigStore;
  /** Why a destination cannot be used (a refused URL, a channel of Dockhand's own), or undefined. */
  checkDestination: (destination: Destination) => Promise<string | undefined>;
}

const PutBody = Type.Object(
  {
    maximumRetryAttempts: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 2, description: 'Retries after a handler failure. Default 2.' }),
    ),
    maximumEventAgeSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 21_600,
        description: 'An older event is not run (nor retried). Default 21,600.',
      }),
    ),
    onSuccess: Type.Optional(EventInvokeConfig.properties.onSuccess),
    onFailure: Type.Optional(EventInvokeConfig.properties.onFailure),
  },
  { additionalProperties: false },
);

const field = (which: string, d: Destination) =>
  `body.${which}.${d.type === 'http' ? 'url' : d.type === 'channel' ? 'channel' : 'name'}`;

/**
 * A function's settings for Event invocations (Lambda's PutFunctionEventInvokeConfig): retries,
 * maximum event age, destinations. The Lambda-shaped routes read and write the same store.
 */
export default async function eventInvokeConfigRoutes(
  base: FastifyInstance,
  deps: EventInvokeConfigRouteDeps,
) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['functions'];
  const requireFunction = async (name: string) => {
    if (!(await deps.store.get(name))) throw new NotFoundError(`No function ${name}.`);
  };

  app.put(
    '/functions/:name/event-invoke-config',
    {
      schema: {
        tags,
        summary:
          "Set how the function's Event invocations are retried, aged out and reported (fields left out take the defaults)",
        params: FunctionParams,
        body: PutBody,
        response: { 200: EventInvokeConfig, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      await requireFunction(request.params.name);
      for (const which of ['onSuccess', 'onFailure'] as const) {
        const destination = request.body[which];
        if (!destination) continue;
        const problem = await deps.checkDestination(destination);
        if (problem) throw new ValidationError(field(which, destination), problem);
      }
      return deps.configs.put(request.params.name, request.body);
    },
  );

  app.get(
    '/functions/:name/event-invoke-config',
    {
      schema: {
        tags,
        summary:
          "The function's Event-invocation settings (the defaults, lastModified 1970, when none were put)",
        params: FunctionParams,
        response: { 200: EventInvokeConfig, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      await requireFunction(request.params.name);
      return deps.configs.effective(request.params.name);
    },
  );

  app.delete(
    '/functions/:name/event-invoke-config',
    {
      schema: {
        tags,
        summary: "Remove the function's Event-invocation settings (the defaults apply again)",
        params: FunctionParams,
        response: { 204: Type.Null(), 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      if (!(await deps.configs.remove(request.params.name)))
        throw new NotFoundError(`Function ${request.params.name} has no event invoke config.`);
      return reply.status(204).send(null);
    },
  );
}
