/** Redis pub/sub channels Dockhand publishes on: part of the public contract. */
export const FUNCTION_RESULTS_CHANNEL = 'function-results';

/**
 * Internal, under the queue prefix (two Dockhands on one Redis do not hear each other): the
 * function store publishes `{name, version?}` here on every deploy (with the new version) and
 * delete (without), and every worker drops the containers that served what was replaced.
 */
export const functionChangedChannel = (prefix: string) => `${prefix}:function-changed`;

export interface FunctionChanged {
  name: string;
  /** The version now current; absent when the function was deleted. */
  version?: string;
}
