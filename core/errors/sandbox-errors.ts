import { DockhandError } from './dockhand-error.ts';

/** The sandbox's channel closed (the process exited, or the container went away). */
export class ChannelClosedError extends DockhandError {
  constructor(message = 'The sandbox closed its channel.') {
    super('channel_closed', 502, message);
  }
}

/** The function printed more than is captured between two calls. */
export class OutputCapError extends DockhandError {
  constructor(cap: number) {
    super('output_limit', 502, `The function wrote more than ${cap} bytes outside its log capture.`);
  }
}

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

/** The function's code could not be loaded into its sandbox (syntax error, missing handler). */
export class LoadError extends DockhandError {
  constructor(message: string) {
    super('handler_load_failed', 422, message, { exitCode: 1 });
  }
}
