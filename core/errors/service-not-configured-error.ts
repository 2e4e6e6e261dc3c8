import { DockhandError } from './dockhand-error.ts';

/** A service the proxy fronts (data, AI) has no configuration: 503, the message says what to set. */
export class ServiceNotConfiguredError extends DockhandError {
  constructor(message: string) {
    super('service_not_configured', 503, message, { exitCode: 1 });
  }
}
