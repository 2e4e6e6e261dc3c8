import { DockhandError } from './dockhand-error.ts';

/** Another runner holds the batch's fresh .lock. */
export class BatchLockedError extends DockhandError {
  constructor(name: string) {
    super('batch_locked', 409, `Batch ${name} is locked by another runner.`, { exitCode: 1 });
  }
}
