import { DockhandError } from './dockhand-error.ts';

/** The sandbox's channel closed (the process exited, or the container went away). */
export class ChannelClosedError extends DockhandError {
  constructor(message = 'The sandbox closed its channel.') {
    super('channel_closed', 502, message);
  }
}
