import { DockhandError } from './dockhand-error.ts';

/** Something sent or fetched is over a configured size limit: 413, naming the field. */
export class TooLargeError extends DockhandError {
  constructor(field: string, message: string) {
    super('payload_too_large', 413, message, { field });
  }
}
