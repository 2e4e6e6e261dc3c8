import { DockhandError } from './dockhand-error.ts';

/** A CLI command was called wrongly: exit 2. */
export class UsageError extends DockhandError {
  constructor(message: string) {
    super('usage', 400, message, { exitCode: 2 });
  }
}
