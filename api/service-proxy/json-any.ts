import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ValidationError } from '../../core/errors.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../plugins/json-body.ts';

const rawBodies = new WeakMap<FastifyRequest['raw'], string>();

/** The body's text exactly as it came, for a route that passes it on. */
export function rawBody(request: FastifyRequest): string | undefined {
  return rawBodies.get(request.raw);
}

/**
 * Every body is read as JSON whatever its content type: the Exec Agent's own example,
 * `curl … -d '{…}'`, sends `application/x-www-form-urlencoded`. Parsed as the gateway parses
 * (prototype poisoning refused, depth bounded), within the app's body limit; the text is kept
 * so that what is forwarded is byte for byte what the container sent.
 */
export default fp(
  async (app: FastifyInstance) => {
    const parse = app.getDefaultJsonParser('error', 'error');
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
      const text = body as string; // parseAs: 'string'
      if (jsonDepthExceeds(text)) {
        return done(
          new ValidationError('body', `The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels.`),
          undefined,
        );
      }
      rawBodies.set(request.raw, text);
      return parse(request, text, done);
    });
  },
  { name: 'service-proxy-json-any' },
);
