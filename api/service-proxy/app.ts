import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Registry } from 'prom-client';
import type { Config } from '../../core/config.ts';
import errorHandler from '../plugins/error-handler.ts';
import clientCheck from './client-check.ts';
import { createDataService } from './data-service.ts';
import jsonAny from './json-any.ts';
import { createLlm } from './llm.ts';
import metrics from './metrics.ts';
import routes, { PROXY_MARKER } from './routes.ts';

export interface ServiceProxyDeps {
  config: Pick<Config, 'serviceProxy' | 'llm'>;
  /** The process's registry: the proxy's counters appear on its /metrics. */
  registry: Registry;
  logger: FastifyBaseLogger;
  /**
   * Clients served (CIDRs): the service network's subnet and loopback. Anyone else gets 403.
   * Default: loopback only.
   */
  allowFrom?: readonly string[];
  /** Tests point Gemini at a local stub. Default: Google's OpenAI-compatible endpoint. */
  geminiBaseUrl?: string;
}

export const LOOPBACK = ['127.0.0.0/8', '::1/128'] as const;

/**
 * The service proxy exec containers call (docs/service-proxy.md): a Fastify app of its own, not
 * the gateway's: no API keys (the network decides who reaches it), no Swagger, no queues.
 * Not yet listening; server.ts opens it on one address.
 */
export async function buildServiceProxy(deps: ServiceProxyDeps) {
  const { serviceProxy, llm } = deps.config;
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: serviceProxy.bodyLimitBytes,
    // A body may take no longer to arrive than an upstream may take to answer.
    requestTimeout: serviceProxy.timeoutMs,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, verbose: true } },
  });
  // Method, path, status and time only: bodies hold prompts and data, headers nothing we need.
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        service: (request.routeOptions.config as { service?: string } | undefined)?.service ?? 'none',
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'service proxy request',
    );
  });
  // On every answer, so that another Dockhand process can tell this proxy holds the port (server.ts).
  app.addHook('onRequest', async (_request, reply) => {
    reply.header(PROXY_MARKER.header, PROXY_MARKER.value);
  });
  await app.register(jsonAny);
  // No Redis behind this app: every unforeseen error is the proxy's own 500.
  await app.register(errorHandler, { redisReady: () => true });
  await app.register(metrics, { registry: deps.registry });
  await app.register(clientCheck, { allowFrom: deps.allowFrom ?? LOOPBACK });
  await app.register(routes, {
    data: createDataService({ url: serviceProxy.dataServiceUrl, timeoutMs: serviceProxy.timeoutMs }),
    llm: createLlm({ llm, timeoutMs: serviceProxy.timeoutMs, geminiBaseUrl: deps.geminiBaseUrl }),
  });
  return app;
}

export type ServiceProxyApp = Awaited<ReturnType<typeof buildServiceProxy>>;
