import { DockhandError } from './dockhand-error.ts';

/** A service behind a proxy did not answer within its time limit: 504. */
export class UpstreamTimeoutError extends DockhandError {
  constructor(service: string, timeoutMs: number) {
    super('upstream_timeout', 504, `The ${service} service did not answer within ${timeoutMs} ms.`, {
      exitCode: 1,
    });
  }
}
