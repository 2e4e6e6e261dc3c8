import { DockhandError } from './dockhand-error.ts';

/**
 * A streaming client (live logs) read nothing for too long while its buffer was full. Its
 * stream is dropped: holding it would hold its buffer and a follower slot. Never an HTTP
 * answer (the stream has begun); 408 names what happened, exit 1.
 */
export class StalledClientError extends DockhandError {
  constructor(ms: number) {
    super('stalled_client', 408, `The client read nothing for ${ms} ms; its stream was closed.`, {
      exitCode: 1,
    });
  }
}
