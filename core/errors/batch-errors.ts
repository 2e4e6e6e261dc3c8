import { DockhandError } from './dockhand-error.ts';

/** The engine failed: the old runner's exit code 1. */
export class EngineError extends DockhandError {
  constructor(message: string) {
    super('engine_failed', 500, message, { exitCode: 1 });
  }
}

/** result.json could not be written: the old runner's exit code 2. */
export class ResultWriteError extends DockhandError {
  constructor(message: string) {
    super('result_not_writable', 500, message, { exitCode: 2 });
  }
}

/** Another runner holds the batch's fresh .lock. */
export class BatchLockedError extends DockhandError {
  constructor(name: string) {
    super('batch_locked', 409, `Batch ${name} is locked by another runner.`, { exitCode: 1 });
  }
}

/** The batch's folder is not there (removed after it was queued): retrying will not bring it back. */
export class BatchMissingError extends DockhandError {
  constructor(name: string) {
    super('batch_missing', 404, `Batch folder ${name} does not exist.`, { exitCode: 1 });
  }
}
