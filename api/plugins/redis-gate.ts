import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { DependencyUnavailableError } from '../../core/errors.ts';
import { PUBLIC_PATHS, pathOf } from './auth.ts';

export interface RedisGateOptions {
  redisReady: () => boolean;
}

/** The API's description needs no Redis. */
const DESCRIBED = (path: string) => path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/');

/**
 * While Redis is not connected, every route that needs it answers 503 at once. Most would fail
 * fast on their own (the producer connection has no offline queue), but BullMQ's queues wait
 * for a connection they never had: a gateway started with Redis away would hold each request
 * until Redis came back.
 */
export default fp<RedisGateOptions>(
  async (app: FastifyInstance, options) => {
    app.addHook('onRequest', async (request) => {
      if (options.redisReady()) return;
      const path = pathOf(request.url);
      if (PUBLIC_PATHS.includes(path) || DESCRIBED(path)) return;
      // The console's files: the page loads, then says what its API calls answer.
      if (request.routeOptions.config?.auth === 'public') return;
      throw new DependencyUnavailableError('Redis is not reachable; try again shortly.');
    });
  },
  { name: 'redis-gate' },
);
