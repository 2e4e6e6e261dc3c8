import { DockhandError } from './dockhand-error.ts';

/** The named thing does not exist: 404, exit 1. */
export class NotFoundError extends DockhandError {
  constructor(message: string) {
    super('not_found', 404, message, { exitCode: 1 });
  }
}
