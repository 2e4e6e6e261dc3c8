/** Redis pub/sub channels Dockhand publishes on: part of the public contract. */
export const FUNCTION_RESULTS_CHANNEL = 'function-results';
