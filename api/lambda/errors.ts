import type { FastifyError } from 'fastify';
import { DockhandError } from '../../core/errors.ts';

/**
 * An error in Lambda's own shape (restJson1): the type travels in the `x-amzn-ErrorType`
 * header, the body is `{"Type": "User"|"Service", "message": ...}`, which is what the AWS SDKs
 * and CLI read (`message` or `Message`) into their typed exceptions.
 */
export class LambdaError extends Error {
  readonly type: string;
  readonly statusCode: number;
  /** Extra body fields some types carry (TooManyRequestsException's Reason). */
  readonly extra: Record<string, unknown>;

  constructor(type: string, statusCode: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'LambdaError';
    this.type = type;
    this.statusCode = statusCode;
    this.extra = extra;
  }

  body(): Record<string, unknown> {
    return { Type: this.statusCode >= 500 ? 'Service' : 'User', message: this.message, ...this.extra };
  }
}

export const invalidParameter = (message: string) =>
  new LambdaError('InvalidParameterValueException', 400, message);

export const validationFailed = (message: string) => new LambdaError('ValidationException', 400, message);

export const requestTooLarge = (limit: number, operation: string) =>
  new LambdaError(
    'RequestTooLargeException',
    413,
    `Request must be smaller than ${limit} bytes for the ${operation} operation`,
  );

/** Dockhand's own errors (and Fastify's) as Lambda's: the same status, Lambda's type and shape. */
export function toLambdaError(error: unknown, redisReady: () => boolean): LambdaError {
  if (error instanceof LambdaError) return error;
  if (error instanceof DockhandError) {
    switch (error.statusCode) {
      case 400:
        return invalidParameter(error.message);
      case 404:
        return new LambdaError('ResourceNotFoundException', 404, error.message);
      case 409:
        return new LambdaError('ResourceConflictException', 409, error.message);
      case 413:
        return new LambdaError('RequestTooLargeException', 413, error.message);
      case 429:
        return new LambdaError('TooManyRequestsException', 429, error.message, {
          Reason: 'CallerRateLimitExceeded',
        });
      case 401:
      case 403:
        return new LambdaError('AccessDeniedException', 403, error.message);
    }
    return new LambdaError('ServiceException', Math.max(error.statusCode, 500), error.message);
  }
  const fe = error as FastifyError;
  if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new LambdaError('RequestTooLargeException', 413, 'The request body is larger than allowed.');
  if (fe?.validation) return validationFailed(`1 validation error detected: ${fe.message}`);
  if (!redisReady())
    return new LambdaError('ServiceException', 503, 'Redis is not reachable; try again shortly.');
  if (fe?.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
    return new LambdaError('InvalidRequestContentException', fe.statusCode, fe.message);
  return new LambdaError('ServiceException', 500, 'An unexpected error occurred; it has been logged.');
}
