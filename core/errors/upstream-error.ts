import { DockhandError } from './dockhand-error.ts';

/** A service behind a proxy could not be reached or gave no usable answer: 502. */
export class UpstreamError extends DockhandError {
  constructor(message: string) {
    super('upstream_error', 502, message, { exitCode: 1 });
  }
}
