import { createHash, randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Config } from '../../core/config.ts';
import { ValidationError } from '../../core/errors.ts';
import { imageAllowed } from '../../core/image-allowlist.ts';
import { compileValidator, type Enqueue } from '../enqueue.ts';
import { EXEC_DEFAULT_TIMEOUT_SECONDS, type ExecJobPayload, ExecRequest } from '../schemas/exec.ts';

export type ExecLimits = Pick<
  Config['exec'],
  'imageAllowlist' | 'maxTimeoutSeconds' | 'maxMemoryMb' | 'maxCpus' | 'memoryMb'
>;
export type ExecSource = ExecJobPayload['source'];

/**
 * The execution id of a request that arrives by pub/sub: derived from its correlation_id, so
 * the same request published twice (or heard by two bridges) is one job and runs once.
 */
export function executionIdForCorrelation(correlationId: string): string {
  return `c-${createHash('sha256').update(correlationId).digest('hex').slice(0, 40)}`;
}

/**
 * What the schema cannot know: limits set by the operator. Checked where requests enter (a 400
 * naming the field) and again by the processor, since a job in Redis may have been written by
 * anyone.
 */
export function checkExecLimits(request: ExecRequest, limits: ExecLimits): void {
  const image = request.container.image;
  if (!imageAllowed(image, limits.imageAllowlist)) {
    throw new ValidationError(
      'container.image',
      `Image ${JSON.stringify(image)} is not in EXEC_IMAGE_ALLOWLIST (${limits.imageAllowlist.join(', ')}).`,
    );
  }
  checkHostPorts(request.container.ports);
  const timeout = request.timeout;
  if (timeout !== undefined && timeout > limits.maxTimeoutSeconds) {
    throw new ValidationError(
      'timeout',
      `timeout must be at most ${limits.maxTimeoutSeconds} seconds (EXEC_MAX_TIMEOUT_SECONDS); got ${timeout}.`,
    );
  }
  const memory = request.resources?.memory_mb;
  if (memory !== undefined && memory > limits.maxMemoryMb) {
    throw new ValidationError(
      'resources.memory_mb',
      `resources.memory_mb must be at most ${limits.maxMemoryMb} (EXEC_MAX_MEMORY_MB); got ${memory}.`,
    );
  }
  const cpus = request.resources?.cpus;
  if (cpus !== undefined && cpus > limits.maxCpus) {
    throw new ValidationError(
      'resources.cpus',
      `resources.cpus must be at most ${limits.maxCpus} (EXEC_MAX_CPUS); got ${cpus}.`,
    );
  }
}

/**
 * Only root may listen below 1024, and the engine binds a published port for the caller (as
 * root), so a request could otherwise take 127.0.0.1:25, :53 or :80 from the host's own clients.
 * Written as a string, a port is digits without leading zeros ("00080" would be port 80 to the
 * engine, and "0" any free port).
 */
export const MIN_HOST_PORT = 1024;

function checkHostPorts(ports: ExecRequest['container']['ports']): void {
  for (const [inside, host] of Object.entries(ports ?? {})) {
    const port = typeof host === 'number' ? host : /^[1-9][0-9]*$/.test(host) ? Number(host) : Number.NaN;
    if (!(Number.isInteger(port) && port >= MIN_HOST_PORT && port <= 65_535))
      throw new ValidationError(
        'container.ports',
        `container.ports[${JSON.stringify(inside)}] must be a host port from ${MIN_HOST_PORT} to 65535; got ${JSON.stringify(host)}.`,
      );
  }
}

/** The default (300 s) gives way to a lower EXEC_MAX_TIMEOUT_SECONDS; an explicit timeout does not. */
export function timeoutSecondsOf(
  request: ExecRequest,
  limits: Pick<ExecLimits, 'maxTimeoutSeconds'>,
): number {
  return request.timeout ?? Math.min(EXEC_DEFAULT_TIMEOUT_SECONDS, limits.maxTimeoutSeconds);
}

/** A request from outside the gateway (channel, file), checked as POST /exec checks its body. */
export const validateExecRequest = compileValidator(ExecRequest);

/** The job for a request: its execution id and the correlation id it will be answered with. */
export function execJob(
  request: ExecRequest,
  source: ExecSource,
  executionId: string = randomUUID(),
): ExecJobPayload {
  return {
    execution_id: executionId,
    correlation_id: request.correlation_id ?? executionId,
    request,
    source,
  };
}

/**
 * Checks limits and puts the request on the `exec` queue under its execution id (so an id
 * given twice is one job), with the request's BullMQ priority.
 */
export async function submitExec(
  enqueue: Enqueue,
  limits: ExecLimits,
  payload: ExecJobPayload,
): Promise<Job<ExecJobPayload>> {
  checkExecLimits(payload.request, limits);
  const priority = payload.request.priority;
  return enqueue('exec', payload, { jobId: payload.execution_id, ...(priority ? { priority } : {}) });
}
