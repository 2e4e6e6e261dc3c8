import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ValidationError } from '../../core/errors.ts';

/** Arrays and objects inside one another, at most; far more than any event or payload needs. */
export const MAX_JSON_DEPTH = 64;

/**
 * The deepest nesting of `[` and `{` in a JSON text, counted without parsing (strings
 * skipped), stopping as soon as it passes `limit`. Linear, no recursion.
 */
export function jsonDepthExceeds(text: string, limit = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * JSON bodies, as Fastify parses them (prototype-poisoning refused), but no deeper than
 * MAX_JSON_DEPTH: a body nested 100,000 deep parses, then overflows the stack of whatever
 * walks it next (validation, JSON.stringify on the way to Redis) as a 500.
 */
export default fp(
  async (app: FastifyInstance) => {
    const parse = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      const text = body as string; // parseAs: 'string'
      if (jsonDepthExceeds(text)) {
        return done(
          new ValidationError('body', `The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels.`),
          undefined,
        );
      }
      return parse(request, text, done);
    });
  },
  { name: 'json-body' },
);
