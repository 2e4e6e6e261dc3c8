import { DockhandError } from './dockhand-error.ts';

/**
 * The node agent's request to the control plane failed: no answer, or an answer it cannot use.
 * `status` is the control plane's HTTP status when it answered; 502 like a gateway whose
 * upstream failed, exit 1.
 */
export class ControlPlaneError extends DockhandError {
  readonly status: number | undefined;

  constructor(message: string, status?: number, cause?: unknown) {
    super('control_plane_error', 502, message, { exitCode: 1, cause });
    this.status = status;
  }

  /** The control plane does not know the node or its token (any more): register again. */
  get refusesNode(): boolean {
    return this.status === 401 || this.status === 403 || this.status === 404 || this.status === 410;
  }
}
