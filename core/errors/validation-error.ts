import { DockhandError } from './dockhand-error.ts';

/** Bad input, naming the field: 400, exit 2. */
export class ValidationError extends DockhandError {
  constructor(field: string, message: string, code = 'validation_error') {
    super(code, 400, message, { field });
  }
}
