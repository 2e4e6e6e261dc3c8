import { DockhandError } from './dockhand-error.ts';

/** The function printed more than is captured between two calls. */
export class OutputCapError extends DockhandError {
  constructor(cap: number) {
    super('output_limit', 502, `The function wrote more than ${cap} bytes outside its log capture.`);
  }
}
