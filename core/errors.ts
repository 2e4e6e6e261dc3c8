/**
 * One error base for everything Dockhand raises on purpose. `code` is the stable
 * machine word in the contract's error JSON; `statusCode` is what the gateway answers.
 */
export class DockhandError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** The request or config field the error is about, when there is one. */
  readonly field: string | undefined;

  constructor(code: string, statusCode: number, message: string, field?: string) {
    super(message);
    this.name = 'DockhandError';
    this.code = code;
    this.statusCode = statusCode;
    this.field = field;
  }
}

export class ValidationError extends DockhandError {
  constructor(field: string, message: string) {
    super('validation_error', 400, message, field);
  }
}

export class NotFoundError extends DockhandError {
  constructor(message: string) {
    super('not_found', 404, message);
  }
}

export class ConfigError extends DockhandError {
  constructor(variable: string, message: string) {
    super('config_error', 500, message, variable);
  }
}

/** Turns whatever a catch block got into an Error, so callers never print `[object Object]`. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}
