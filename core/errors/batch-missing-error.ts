import { DockhandError } from './dockhand-error.ts';

/** The batch's folder is not there (removed after it was queued): retrying will not bring it back. */
export class BatchMissingError extends DockhandError {
  constructor(name: string) {
    super('batch_missing', 404, `Batch folder ${name} does not exist.`, { exitCode: 1 });
  }
}
