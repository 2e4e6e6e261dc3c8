import { DockhandError } from './dockhand-error.ts';

/** An outgoing HTTP request (HTTP jobs) took longer than its timeout. */
export class FetchTimeoutError extends DockhandError {
  constructor(timeoutMs: number) {
    super('fetch_timeout', 504, `The request did not complete within ${timeoutMs} ms.`);
  }
}
