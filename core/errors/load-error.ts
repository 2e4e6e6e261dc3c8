import { DockhandError } from './dockhand-error.ts';

/** The function's code could not be loaded into its sandbox (syntax error, missing handler). */
export class LoadError extends DockhandError {
  constructor(message: string) {
    super('handler_load_failed', 422, message, { exitCode: 1 });
  }
}
