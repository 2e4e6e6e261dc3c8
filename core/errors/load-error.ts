import { DockhandError } from './dockhand-error.ts';

/** What a runtime said about a load that failed, and what the code printed meanwhile. */
export interface LoadFailure {
  errorType?: string;
  errorMessage?: string;
  logs?: string;
}

/** The function's code could not be loaded into its sandbox (syntax error, missing handler). */
export class LoadError extends DockhandError {
  readonly failure: LoadFailure | undefined;

  constructor(message: string, failure?: LoadFailure) {
    super('handler_load_failed', 422, message, { exitCode: 1 });
    this.failure = failure;
  }
}
