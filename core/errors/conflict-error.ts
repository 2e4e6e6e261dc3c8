import { DockhandError } from './dockhand-error.ts';

/** The request clashes with what exists (a name taken): 409, exit 1. */
export class ConflictError extends DockhandError {
  constructor(message: string, field?: string) {
    super('conflict', 409, message, { field, exitCode: 1 });
  }
}
