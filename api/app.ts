import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { AddressPolicy, isLoopbackHost } from '../core/address-policy.ts';
import { createAuthFailures } from '../core/auth-failures.ts';
import type { Config } from '../core/config.ts';
import type { HealthCheck } from '../core/health.ts';
import type { BatchFolders } from '../processors/batches/folder.ts';
import { type ChannelRules, destinationProblem } from '../processors/functions/destinations.ts';
import type { EventInvokeConfigStore } from '../processors/functions/event-invoke-config.ts';
import { createRedrive } from '../processors/functions/redrive.ts';
import type { TickHandler } from '../processors/scheduler.ts';
import type { Enqueue } from '../queues/enqueue.ts';
import { readInvocation } from '../queues/invocation-cancel.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import lambdaApi from './lambda/plugin.ts';
import { registerNodeGauges } from './nodes/node-metrics.ts';
import { createNodeStore } from './nodes/node-store.ts';
import auth from './plugins/auth.ts';
import bullBoard from './plugins/bull-board.ts';
import consolePlugin from './plugins/console.ts';
import errorHandler from './plugins/error-handler.ts';
import jsonBody from './plugins/json-body.ts';
import metrics from './plugins/metrics.ts';
import rateLimit from './plugins/rate-limit.ts';
import redisGate from './plugins/redis-gate.ts';
import swagger from './plugins/swagger.ts';
import batchRoutes from './routes/batches.ts';
import deadLetterRoutes from './routes/dead-letters.ts';
import eventInvokeConfigRoutes from './routes/event-invoke-config.ts';
import execRoutes, { type ExecRouteDeps } from './routes/exec.ts';
import functionConfigRoutes from './routes/function-config.ts';
import functionTuningRoutes from './routes/function-tuning.ts';
import functionRoutes, { type FunctionRouteDeps } from './routes/functions.ts';
import healthRoutes from './routes/health.ts';
import invocationRoutes from './routes/invocations.ts';
import jobRoutes from './routes/jobs.ts';
import logRoutes, { type LogRouteDeps } from './routes/logs.ts';
import nodeRoutes from './routes/nodes.ts';
import queueRoutes from './routes/queues.ts';
import recentExecutionRoutes from './routes/recent-executions.ts';
import recentInvocationRoutes from './routes/recent-invocations.ts';

export interface AppDeps {
  config: Config;
  /** Producer-side connection (fail fast); also holds the shared rate-limit counters. */
  redis: Redis;
  queues: QueueSet;
  enqueue: Enqueue;
  health: HealthCheck;
  registry: Registry;
  logger: FastifyBaseLogger;
  folders: BatchFolders;
  /** What a tick runs; POST /batches/tick runs them now, in this process. */
  tickHandlers: readonly TickHandler[];
  functions: Pick<
    FunctionRouteDeps,
    'store' | 'history' | 's3Code' | 'deadLetters' | 'functionsAvailable'
  > & {
    waiter?: FunctionRouteDeps['waiter'];
    /** Event-invocation settings (retries, age, destinations) and the channels destinations may not use. */
    eventInvokeConfigs: EventInvokeConfigStore;
    destinationChannels: ChannelRules;
  };
  /** Where the gateway runs: POST/GET/DELETE /exec. */
  exec?: Pick<ExecRouteDeps, 'waiter' | 'limits' | 'checkInput'>;
  /** The clock node heartbeats are stamped with and node statuses computed by. Default Date.now. */
  now?: () => number;
  /** Live logs (GET …/logs): the reader and the per-process follower limit. */
  logs?: Pick<LogRouteDeps, 'reader' | 'maxFollowers' | 'nodeExists' | 'heartbeatMs' | 'stallMs'>;
}

/**
 * The gateway as a Fastify instance, not yet listening: tests drive it with inject(),
 * api/server.ts listens. Ops-only mode (worker and scheduler roles) keeps just
 * health, readiness and metrics.
 */
export async function buildApp(
  deps: AppDeps,
  mode: 'gateway' | 'ops' = 'gateway',
  /** Bull Board holds live queue connections; describing the API needs none. Default true. */
  {
    adminUi = true,
    consoleRoot,
  }: { adminUi?: boolean /** The built console; default .build/console. */; consoleRoot?: string } = {},
) {
  const app = Fastify({
    loggerInstance: deps.logger,
    // One line per request, written when it is answered (below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.server.bodyLimitBytes,
    // X-Forwarded-For names the client only when a configured proxy sent it; believed from
    // anyone, it would let every client pick its own rate-limit and auth-failure bucket.
    trustProxy: deps.config.server.trustProxy.length > 0 ? [...deps.config.server.trustProxy] : false,
    ajv: {
      // Unknown body fields are an error naming them, not silently dropped; verbose keeps the
      // failing schema on each error so messages can use its description.
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
        allErrors: false,
        verbose: true,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        // A presigned AWS URL carries its signature in the query: never written to a log.
        url: request.url.replace(/(X-Amz-(?:Signature|Credential|Security-Token)=)[^&]*/gi, '$1***'),
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
  });
  // Every body Dockhand takes is JSON; anything else is a 415, not a confusing schema error.
  app.removeContentTypeParser('text/plain');
  await app.register(jsonBody);
  await app.register(errorHandler, { redisReady: () => deps.redis.status === 'ready' });
  await app.register(metrics, { registry: deps.registry });
  // The node registry lives in Redis, so every gateway replica answers for every node.
  const nodes = createNodeStore({
    redis: deps.redis,
    prefix: deps.config.redis.prefix,
    heartbeatIntervalSeconds: deps.config.nodes.heartbeatIntervalSeconds,
    now: deps.now,
  });
  const failures = createAuthFailures({
    redis: deps.redis,
    prefix: deps.config.redis.prefix,
    perWindow: deps.config.server.authFailuresPerMinute,
  });
  if (mode === 'gateway') {
    // Swagger first: it learns routes as they are added. Auth before routes: its hook guards them.
    await app.register(swagger);
    await app.register(auth, {
      apiKeys: deps.config.server.apiKeys,
      adminKeys: deps.config.server.adminKeys,
      failures,
      registrationToken: deps.config.nodes.registrationToken,
      openRegistration: isLoopbackHost(deps.config.server.host),
      checkNodeToken: nodes.verifyToken,
    });
    await app.register(rateLimit, {
      perMinute: deps.config.server.rateLimitPerMinute,
      redis: deps.redis,
      prefix: deps.config.redis.prefix,
    });
    await app.register(redisGate, { redisReady: () => deps.redis.status === 'ready' });
  }
  await app.register(healthRoutes, { health: deps.health });
  if (mode === 'ops') return app;

  if (adminUi) {
    // Writable only when someone may write: with no admin key the board's own handlers refuse too.
    const readOnly = deps.config.server.adminKeys.length === 0;
    await app.register(bullBoard, { queues: deps.queues, readOnly });
  }
  await app.register(consolePlugin, {
    root: consoleRoot,
    keyRequired: deps.config.server.apiKeys.length > 0,
  });
  await app.register(queueRoutes, { queues: deps.queues });
  await app.register(jobRoutes, { enqueue: deps.enqueue, queues: deps.queues });
  if (deps.functions.waiter) {
    const redis = deps.redis;
    const prefix = deps.config.redis.prefix;
    const functionDeps = {
      ...deps.functions,
      waiter: deps.functions.waiter,
      enqueue: deps.enqueue,
      queues: deps.queues,
      readInvocation: (id: string) => readInvocation(deps.queues.functions, redis, prefix, id),
    };
    await app.register(functionRoutes, functionDeps);
    await app.register(functionTuningRoutes, functionDeps);
    const store = deps.functions.store;
    await app.register(deadLetterRoutes, {
      deadLetters: deps.functions.deadLetters,
      redrive: createRedrive({
        deadLetters: deps.functions.deadLetters,
        enqueue: deps.enqueue,
        functionExists: async (name) => (await store.get(name)) !== undefined,
      }),
    });
    await app.register(invocationRoutes, { queues: deps.queues, redis, keyPrefix: prefix });
    const policy = new AddressPolicy(deps.config.httpJobs);
    const channels = deps.functions.destinationChannels;
    await app.register(eventInvokeConfigRoutes, {
      store,
      configs: deps.functions.eventInvokeConfigs,
      checkDestination: (destination) => destinationProblem(destination, { policy, channels }),
    });
    await app.register(functionConfigRoutes, { store });
    await app.register(recentInvocationRoutes, { queues: deps.queues });
    const { server } = deps.config;
    await app.register(lambdaApi, {
      ...deps.functions,
      eventInvokeConfig: deps.functions.eventInvokeConfigs,
      checkDestination: (destination) => destinationProblem(destination, { policy, channels }),
      invoke: functionDeps,
      region: deps.config.aws.region,
      // LAMBDA_CREDENTIALS, else each API key signs as its own key id and secret (docs/lambda-api.md).
      credentials: server.lambdaCredentials.length
        ? server.lambdaCredentials
        : server.apiKeys.map((k) => ({ accessKeyId: k, secretAccessKey: k })),
      adminKeys: server.adminKeys,
      failures,
      bodyLimitBytes: server.bodyLimitBytes,
      redisReady: () => deps.redis.status === 'ready',
    });
  }
  if (deps.exec) {
    await app.register(recentExecutionRoutes, {
      queues: deps.queues,
      redis: deps.redis,
      keyPrefix: deps.config.redis.prefix,
    });
    await app.register(execRoutes, {
      ...deps.exec,
      enqueue: deps.enqueue,
      queues: deps.queues,
      redis: deps.redis,
      keyPrefix: deps.config.redis.prefix,
    });
  }
  await app.register(nodeRoutes, { store: nodes });
  registerNodeGauges(deps.registry, nodes);
  if (deps.logs)
    await app.register(logRoutes, {
      nodeExists: async (id) => (await nodes.get(id)) !== undefined,
      ...deps.logs,
      queues: deps.queues,
      registry: deps.registry,
    });
  await app.register(batchRoutes, {
    enqueue: deps.enqueue,
    queues: deps.queues,
    folders: deps.folders,
    tickHandlers: deps.tickHandlers,
  });
  return app;
}
export type App = Awaited<ReturnType<typeof buildApp>>;
