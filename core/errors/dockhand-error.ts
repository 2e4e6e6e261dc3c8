/**
 * The base of every error Dockhand raises on purpose. `code` is the stable machine word in the
 * contract's error JSON; `statusCode` is what the gateway answers; `exitCode` is what a CLI
 * command exits with (0 is never an error; 1 a failure at run time; 2 bad usage or input).
 * HTTP statuses and exit codes are separate facts, each set by the class.
 */
export class DockhandError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly exitCode: 1 | 2;
  /** The request or config field the error is about, when there is one. */
  readonly field: string | undefined;

  constructor(
    code: string,
    statusCode: number,
    message: string,
    options: { field?: string; exitCode?: 1 | 2; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
    this.exitCode = options.exitCode ?? (statusCode >= 400 && statusCode < 500 ? 2 : 1);
    this.field = options.field;
  }
}
