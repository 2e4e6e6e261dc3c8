/**
 * Dockhand's one error family: every class extends DockhandError (code, HTTP status, exit
 * code), one file per kind under core/errors/. Classify by class or code, never by message.
 */

export { AddressRefusedError } from './errors/address-refused-error.ts';
export { BatchLockedError } from './errors/batch-locked-error.ts';
export { BatchMissingError } from './errors/batch-missing-error.ts';
export { ChannelClosedError } from './errors/channel-closed-error.ts';
export { ConfigError } from './errors/config-error.ts';
export { ConflictError } from './errors/conflict-error.ts';
export { ControlPlaneError } from './errors/control-plane-error.ts';
export { DependencyUnavailableError } from './errors/dependency-unavailable-error.ts';
export { DockhandError } from './errors/dockhand-error.ts';
export { EngineError } from './errors/engine-error.ts';
export { FetchTimeoutError } from './errors/fetch-timeout-error.ts';
export { FrameCapError } from './errors/frame-cap-error.ts';
export { ImageUnavailableError } from './errors/image-unavailable-error.ts';
export { LoadError } from './errors/load-error.ts';
export { NotFoundError } from './errors/not-found-error.ts';
export { OutputCapError } from './errors/output-cap-error.ts';
export { ResultWriteError } from './errors/result-write-error.ts';
export { ServiceNotConfiguredError } from './errors/service-not-configured-error.ts';
export { StalledClientError } from './errors/stalled-client-error.ts';
export { TooLargeError } from './errors/too-large-error.ts';
export { UpstreamError } from './errors/upstream-error.ts';
export { UpstreamTimeoutError } from './errors/upstream-timeout-error.ts';
export { UsageError } from './errors/usage-error.ts';
export { ValidationError } from './errors/validation-error.ts';
export { WaitTimeoutError } from './errors/wait-timeout-error.ts';

/** The system error code (ENOENT, EEXIST, …) of whatever a catch block got, if it has one. */
export function errorCode(value: unknown): string | undefined {
  const code = (value as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Turns whatever a catch block got into an Error, so callers never print `[object Object]`. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}
