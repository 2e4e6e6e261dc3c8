import { DockhandError } from './dockhand-error.ts';

/** A configuration value is wrong: start-up stops with one line, exit 2. */
export class ConfigError extends DockhandError {
  constructor(variable: string, message: string) {
    super('config_error', 500, message, { field: variable, exitCode: 2 });
  }
}
