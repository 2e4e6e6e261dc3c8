import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { FunctionStore } from '../../processors/functions/function-store.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { DeployBody, FunctionParams, FunctionView } from '../schemas/functions.ts';
import { MASKED, maskEnv, requireFunction } from './functions.ts';

const p = DeployBody.properties;

/** What PATCH may change: the configuration, never the code or the runtime. */
export const ConfigurationBody = Type.Object(
  {
    memoryMb: Type.Optional(p.memoryMb),
    timeoutMs: Type.Optional(p.timeoutMs),
    env: p.env,
    network: p.network,
    concurrency: p.concurrency,
  },
  { additionalProperties: false, minProperties: 1 },
);

/**
 * PATCH /functions/:name: change a function's settings (memory from a tuning sweep, timeout…)
 * without sending its code again; the code of the current version is kept, under a new version.
 */
export default async function functionConfigRoutes(base: FastifyInstance, deps: { store: FunctionStore }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.patch(
    '/functions/:name',
    {
      schema: {
        tags: ['functions'],
        summary: "Change a function's memory, timeout, env, network or concurrency; its code is kept",
        params: FunctionParams,
        body: ConfigurationBody,
        response: { 200: FunctionView, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const record = await requireFunction(deps.store, request.params.name);
      const bundle = await deps.store.bundle(record);
      const { record: updated } = await deps.store.put(
        record.name,
        {
          runtime: record.runtime,
          handler: record.handler,
          memoryMb: request.body.memoryMb ?? record.memoryMb,
          timeoutMs: request.body.timeoutMs ?? record.timeoutMs,
          // A value sent back as `***` (what a non-admin reads) keeps the stored one.
          env: request.body.env
            ? Object.fromEntries(
                Object.entries(request.body.env).map(([k, v]) => [
                  k,
                  v === MASKED && record.env[k] !== undefined ? record.env[k] : v,
                ]),
              )
            : record.env,
          network: request.body.network ?? record.network,
          concurrency: request.body.concurrency ?? record.concurrency,
          // Made through Lambda's API: its runtime, role, description and handler stay (same code).
          ...(record.lambda ? { lambda: record.lambda } : {}),
        },
        bundle,
      );
      // As the list shows them: env values are for GET with an admin key.
      return request.principal?.admin ? updated : maskEnv(updated);
    },
  );
}
