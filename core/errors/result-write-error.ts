import { DockhandError } from './dockhand-error.ts';

/** result.json could not be written: the old runner's exit code 2. */
export class ResultWriteError extends DockhandError {
  constructor(message: string) {
    super('result_not_writable', 500, message, { exitCode: 2 });
  }
}
