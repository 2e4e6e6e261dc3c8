import { DockhandError } from './dockhand-error.ts';

/** One reply line was longer than the frame limit: the call ends and its container is replaced. */
export class FrameCapError extends DockhandError {
  constructor(cap: number) {
    super(
      'frame_limit',
      502,
      `The sandbox sent a reply line longer than the ${cap}-byte frame limit, so the call was ended and its container replaced.`,
    );
  }
}
