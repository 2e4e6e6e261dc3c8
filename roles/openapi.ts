import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type AppDeps, buildApp } from '../api/app.ts';
import type { Config } from '../core/config.ts';

/**
 * A stand-in for a client this process does not need: printing the OpenAPI document builds
 * every route and schema but serves no request, so nothing may connect to Redis or Docker.
 */
function unavailable<T>(what: string): T {
  return new Proxy(
    {},
    {
      get(_, property) {
        // Not a thenable: `await unavailable(...)` must not call it.
        if (property === 'then') return undefined;
        return () => {
          throw new Error(`${what} is not available while the API is only being described.`);
        };
      },
    },
  ) as T;
}

/** The OpenAPI document of the gateway's routes, built without Redis or Docker. */
export async function describeApi(config: Config): Promise<unknown> {
  const deps: AppDeps = {
    // Rate limiting registers a Redis store at start; it adds no route or schema.
    config: { ...config, server: { ...config.server, rateLimitPerMinute: 0 } },
    redis: unavailable('Redis'),
    queues: unavailable('the queues'),
    enqueue: unavailable('enqueue'),
    health: unavailable('the health check'),
    registry: new Registry(),
    logger: pino({ level: 'silent' }),
    folders: unavailable('the batch folders'),
    tickHandlers: [],
    functions: {
      store: unavailable('the function store'),
      history: unavailable('the tuning history'),
      deadLetters: unavailable('the dead letters'),
      s3Code: unavailable('S3'),
      waiter: unavailable('the result waiter'),
      eventInvokeConfigs: unavailable('the event invoke configs'),
      destinationChannels: { prefix: config.redis.prefix, reserved: [] },
    },
    exec: { waiter: unavailable('the exec waiter'), limits: config.exec },
    logs: { reader: unavailable('the log reader'), maxFollowers: 1 },
  };
  const app = await buildApp(deps, 'gateway', { adminUi: false });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
  }
}
