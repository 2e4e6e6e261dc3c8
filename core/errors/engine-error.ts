import { DockhandError } from './dockhand-error.ts';

/** The engine failed: the old runner's exit code 1. */
export class EngineError extends DockhandError {
  constructor(message: string) {
    super('engine_failed', 500, message, { exitCode: 1 });
  }
}
