import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { DockhandError } from '../../core/errors.ts';

export interface ConsoleOptions {
  /** The built console (Vite's output). Default `.build/console` in the checkout. */
  root?: string;
  /** API_KEYS is set: the page asks for a key before its first call, instead of after a 401. */
  keyRequired: boolean;
}

export const DEFAULT_CONSOLE_ROOT = path.resolve(import.meta.dirname, '../../.build/console');

/**
 * The page holds no data and runs only its own scripts: everything it shows comes from API
 * calls that carry the key the user typed. 'self' only, so an injected string can neither
 * load a script nor send what it read elsewhere; style attributes set from script (CSSOM) are
 * not inline styles, so no 'unsafe-inline' either.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const notBuilt = () =>
  new DockhandError(
    'console_not_built',
    503,
    'The console is not built; run `npm run build:console` (npm start does it), then restart.',
  );

/**
 * The console at /console/: static files, public (auth rule `public`), never in OpenAPI.
 * Encapsulated, so its onRoute and onSend hooks touch its own routes only.
 */
export default async function consolePlugin(app: FastifyInstance, options: ConsoleOptions) {
  const root = options.root ?? DEFAULT_CONSOLE_ROOT;
  app.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object), auth: 'public' } as typeof route.config;
    route.schema = { ...route.schema, hide: true };
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    return payload;
  });
  app.get('/console', (_request, reply) => reply.redirect('/console/', 302));
  // Says no more than a 401 would; the page reads it so that it need not provoke one.
  app.get('/console/settings.json', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ keyRequired: options.keyRequired }),
  );

  if (!existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ root }, 'The console is not built: /console answers 503 (run npm run build:console).');
    app.get('/console/', async () => {
      throw notBuilt();
    });
    app.get('/console/*', async () => {
      throw notBuilt();
    });
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    decorateReply: false,
    index: ['index.html'],
    dotfiles: 'deny',
    // Hashed file names change with their content: cached for good. The page itself is
    // revalidated every time, so a new build is picked up at the next load.
    cacheControl: false,
    setHeaders(reply, file) {
      reply.header(
        'cache-control',
        file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
}
