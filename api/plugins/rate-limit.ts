import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { clientBucket } from '../../core/auth-failures.ts';
import { DockhandError } from '../../core/errors.ts';
import { PUBLIC_PATHS, pathOf } from './auth.ts';
import { sharedWindowStore } from './shared-window-store.ts';

export interface RateLimitOptions {
  perMinute: number;
  /** Shared counters, so several gateways enforce one limit. */
  redis: Redis;
  prefix: string;
}

/**
 * Per authenticated key (its digest: keys never reach Redis), else per client address. Only a
 * key the auth hook accepted names a bucket: a presented but unchecked key (auth off, or a wrong
 * one) would let a client have a fresh bucket per made-up key.
 */
export default fp<RateLimitOptions>(
  async (app: FastifyInstance, options) => {
    if (options.perMinute === 0) return;
    // Counted in memory and shared through Redis in batches: no Redis round trip per request.
    const store = sharedWindowStore({ redis: options.redis, prefix: `${options.prefix}:ratelimit:` });
    app.addHook('onClose', () => store.close());
    await app.register(rateLimit, {
      max: options.perMinute,
      timeWindow: 60_000,
      store: store.Store,
      allowList: (request) => PUBLIC_PATHS.includes(pathOf(request.url)),
      keyGenerator: (request) =>
        request.principal ? `key:${request.principal.id}` : `ip:${clientBucket(request.ip)}`,
      errorResponseBuilder: (_request, context) =>
        new DockhandError(
          'rate_limited',
          429,
          `Too many requests: at most ${context.max} a minute; retry in ${context.after}.`,
        ),
    });
  },
  { name: 'rate-limit' },
);
