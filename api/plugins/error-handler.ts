import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { DockhandError } from '../../core/errors.ts';
import { describeSchemaIssue } from '../../core/schema-errors.ts';

interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

export interface ErrorHandlerOptions {
  /**
   * ioredis reports "Redis is away" as plain Errors with varying text, so the handler asks the
   * connection's state instead of reading messages: an unforeseen error while Redis is not
   * ready is a 503, not a 500.
   */
  redisReady: () => boolean;
}

function describeValidation(error: FastifyError): ErrorBody {
  const first = error.validation?.[0] as
    | (NonNullable<FastifyError['validation']>[number] & { parentSchema?: { description?: string } })
    | undefined;
  const { field, message } = describeSchemaIssue(
    first && { ...first, description: first.parentSchema?.description },
    error.validationContext ?? 'body',
  );
  return { error: 'validation_error', message, field };
}

/** Maps every error to the contract's JSON; stack traces go to the log, never to the client. */
function toResponse(
  error: FastifyError | DockhandError | Error,
  redisReady: () => boolean,
): { status: number; body: ErrorBody } {
  if (error instanceof DockhandError) {
    const body: ErrorBody = { error: error.code, message: error.message };
    if (error.field) body.field = error.field;
    return { status: error.statusCode, body };
  }
  const fe = error as FastifyError;
  if (fe.validation) return { status: 400, body: describeValidation(fe) };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: { error: 'payload_too_large', message: 'The request body is larger than allowed.' },
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        body: { error: 'unsupported_media_type', message: 'Send the body as application/json.' },
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return {
        status: 400,
        body: { error: 'invalid_json', message: 'The body is not valid JSON.', field: 'body' },
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return {
        status: 400,
        body: { error: 'validation_error', message: 'The JSON body is empty.', field: 'body' },
      };
  }
  if (fe.statusCode === 400 && error instanceof SyntaxError) {
    return {
      status: 400,
      body: { error: 'invalid_json', message: 'The body is not valid JSON.', field: 'body' },
    };
  }
  if (!redisReady()) {
    return {
      status: 503,
      body: { error: 'dependency_unavailable', message: 'Redis is not reachable; try again shortly.' },
    };
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return {
      status: fe.statusCode,
      body: { error: (fe.code ?? 'bad_request').toLowerCase(), message: error.message },
    };
  }
  return {
    status: 500,
    body: { error: 'internal_error', message: 'An unexpected error occurred; it has been logged.' },
  };
}

export default fp<ErrorHandlerOptions>(
  async (app: FastifyInstance, options) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const { status, body } = toResponse(error, options.redisReady);
      if (status >= 500) request.log.error({ err: error }, 'request failed');
      return reply.status(status).send(body);
    });
    app.setNotFoundHandler((request, reply) =>
      reply
        .status(404)
        .send({ error: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}.` }),
    );
  },
  { name: 'error-handler' },
);
