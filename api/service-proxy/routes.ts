import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ServiceNotConfiguredError, ValidationError } from '../../core/errors.ts';
import { AiQuery, type ProxyHealth } from '../schemas/service-proxy.ts';
import type { DataService } from './data-service.ts';
import { rawBody } from './json-any.ts';
import type { Llm } from './llm.ts';
import type { ServiceRouteConfig } from './metrics.ts';

const DATA_NOT_CONFIGURED = 'The data service is not configured: set DATA_SERVICE_URL.';
/** On every answer: tells a Dockhand proxy from another program holding the port (server.ts). */
export const PROXY_MARKER = { header: 'x-dockhand-service', value: 'proxy' } as const;

/** Aborts when the container hangs up before its answer is sent, so the upstream call stops too. */
function hangUpSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** The Exec Agent's proxy routes: GET /health, POST /data/query, POST /ai/query. */
export default async function serviceProxyRoutes(
  instance: FastifyInstance,
  { data, llm }: { data: DataService; llm: Llm },
) {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/health',
    { config: { service: 'health' } satisfies ServiceRouteConfig },
    async (_request, reply) => {
      const body: ProxyHealth = {
        status: 'ok',
        services: { data: { configured: data.configured }, ai: llm.status() },
      };
      return reply.send(body);
    },
  );

  app.post(
    '/data/query',
    { config: { service: 'data' } satisfies ServiceRouteConfig },
    async (request, reply) => {
      if (!data.configured) throw new ServiceNotConfiguredError(DATA_NOT_CONFIGURED);
      const text = rawBody(request);
      if (text === undefined || text.trim() === '')
        throw new ValidationError('body', 'The JSON body is empty.');
      const answer = await data.query(text, hangUpSignal(reply));
      reply.status(answer.status).type(answer.contentType);
      return reply.send(answer.body ?? '');
    },
  );

  app.post(
    '/ai/query',
    { schema: { body: AiQuery }, config: { service: 'ai' } satisfies ServiceRouteConfig },
    async (request, reply) => llm.query(request.body, hangUpSignal(reply)),
  );
}
