import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { DockhandError } from '../../core/errors.ts';
import { PUBLIC_PATHS, pathOf, presentedKey } from './auth.ts';
import { sharedWindowStore } from './shared-window-store.ts';

export interface RateLimitOptions {
  perMinute: number;
  /** Shared counters, so several gateways enforce one limit. */
  redis: Redis;
  prefix: string;
}

/** Per API key when one is sent (hashed: keys never reach Redis), else per client IP. */
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
      // Redis being away must not turn every request into an error: probes and 503s say why.
      skipOnError: true,
      allowList: (request) => PUBLIC_PATHS.includes(pathOf(request.url)),
      keyGenerator: (request) => {
        const key = presentedKey(request);
        return key
          ? `key:${createHash('sha256').update(key).digest('hex').slice(0, 32)}`
          : `ip:${request.ip}`;
      },
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
