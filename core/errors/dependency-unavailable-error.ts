import { DockhandError } from './dockhand-error.ts';

/** Redis or Docker is not reachable: 503 (the rest keeps working), exit 1. */
export class DependencyUnavailableError extends DockhandError {
  constructor(message: string, cause?: unknown) {
    super('dependency_unavailable', 503, message, { exitCode: 1, cause });
  }
}
