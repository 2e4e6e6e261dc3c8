import { parse as parseShellWords } from 'shell-quote';
import type { Config } from '../../core/config.ts';
import { coerceError, ValidationError } from '../../core/errors.ts';
import { formatSeconds } from '../../queues/exec/responses.ts';
import { checkExecLimits, timeoutSecondsOf } from '../../queues/exec/submission.ts';
import {
  EXEC_DEFAULT_WORKING_DIR,
  type ExecJobPayload,
  type ExecRequest,
  type ExecResponse,
} from '../../queues/schemas/exec.ts';
import { EGRESS_NETWORK } from '../../runtimes/egress-network.ts';
import type { ExecRunner, ExecRunOutcome, ExecSlot } from '../../runtimes/exec-runner.ts';
import { type MinioStore, uploadOutputDir } from './minio-transfer.ts';
import { checkInputPaths, writeInputs } from './workspace-input.ts';
import { type CollectedOutputs, checkOutputPaths, collectOutputs } from './workspace-output.ts';
import { CONTAINER_WORKSPACE } from './workspace-paths.ts';

/** What a container that asked for `service_access` joins and sees (roles/wire-service-proxy.ts). */
export interface ExecServices {
  network: string;
  extraHosts: string[];
  env(access: readonly ('data' | 'ai')[]): Record<string, string>;
}

export interface ExecutionDeps {
  runner: Pick<ExecRunner, 'ensureImage' | 'acquire'>;
  limits: Config['exec'];
  /** Absent: requests with service_access are answered with why they cannot run. */
  services?: ExecServices;
  /** Absent: requests naming MinIO objects or minio_upload are refused by name. */
  minio?: MinioStore;
  /** Each chunk of output as it is written (live logs). */
  onOutput?: (executionId: string, chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Entries the MinIO upload left out (symlinks, FIFOs), for the log. */
  onSkip?: (executionId: string, path: string, reason: string) => void;
}

/** A command given as one string is split as a shell splits words; shell syntax is refused, not run. */
export function commandOf(request: ExecRequest): string[] | undefined {
  const command = request.container.command;
  if (command === undefined || Array.isArray(command)) return command;
  const words = parseShellWords(command);
  const operator = words.find((w) => typeof w !== 'string');
  if (operator !== undefined) {
    throw new ValidationError(
      'container.command',
      `container.command uses shell syntax (${JSON.stringify(operator)}), which is not run through a shell: give an argv array, e.g. ["sh", "-c", "…"].`,
    );
  }
  return words as string[];
}

/** What the container sees: the request's environment, then Dockhand's, which it cannot override. */
function environmentOf(payload: ExecJobPayload, services: ExecServices | undefined): Record<string, string> {
  const access = payload.request.service_access ?? [];
  return {
    ...payload.request.environment,
    ...(access.length > 0 && services ? services.env(access) : {}),
    EXECUTION_ID: payload.execution_id,
    WORKSPACE_INPUT: `${CONTAINER_WORKSPACE}/input`,
    WORKSPACE_OUTPUT: `${CONTAINER_WORKSPACE}/output`,
    WORKSPACE_CONFIG: `${CONTAINER_WORKSPACE}/config`,
  };
}

/**
 * `none` unless the request needs a network: services → the service proxy's network (nothing
 * else reachable); published ports alone → the egress network (no private ranges, no host
 * ports, no metadata), since a container without a network cannot publish a port.
 */
function networkOf(services: boolean, ports: boolean, proxy: ExecServices | undefined): string {
  if (services && proxy) return proxy.network;
  return ports ? EGRESS_NETWORK : 'none';
}

/** Why a finished run did not succeed, in one sentence; undefined when it did. */
function failureOf(
  outcome: ExecRunOutcome,
  outputs: CollectedOutputs,
  timeoutSeconds: number,
  memoryMb: number,
): { status: NonNullable<ExecResponse['status']>; error: string } | undefined {
  if (outcome.cancelled)
    return { status: 'cancelled', error: 'The execution was cancelled; its container was killed.' };
  if (outcome.timedOut)
    return {
      status: 'timeout',
      error: `The command ran past its timeout of ${timeoutSeconds} s and its container was killed.`,
    };
  if (outcome.error) return { status: 'failed', error: outcome.error };
  if (outcome.oomKilled)
    return { status: 'failed', error: `The container ran out of memory (${memoryMb} MiB) and was killed.` };
  if (outcome.exitCode !== 0)
    return { status: 'failed', error: `The command exited with code ${outcome.exitCode}.` };
  if (outputs.problems.length > 0) {
    const named = outputs.problems.map((p) => `${p.name} (${p.reason})`).join('; ');
    return { status: 'failed', error: `Expected output files were not returned: ${named}.` };
  }
  return undefined;
}

/**
 * One execution, start to end: the image is made present, a container (warm when one is ready)
 * and its workspace are taken, the inputs written, the command run, the outputs read back and
 * uploaded, and the container and workspace removed whatever happened. Every way it can end is
 * an Exec Agent response; only a bug throws.
 */
export function createExecution(deps: ExecutionDeps) {
  return async function execute(payload: ExecJobPayload, signal: AbortSignal): Promise<ExecResponse> {
    const started = Date.now();
    const { request } = payload;
    const ids = { execution_id: payload.execution_id, correlation_id: payload.correlation_id };
    const respond = (
      success: boolean,
      result: ExecResponse['result'],
      failure?: { status: NonNullable<ExecResponse['status']>; error: string },
    ): ExecResponse => {
      const now = Date.now();
      return {
        ...ids,
        success,
        ...(result ? { result } : {}),
        ...(failure ? { error: failure.error } : {}),
        status: failure?.status ?? 'succeeded',
        timestamp: new Date(now).toISOString(),
        duration: formatSeconds(now - started),
      };
    };
    const refuse = (error: string) => respond(false, undefined, { status: 'failed', error });

    const timeoutSeconds = timeoutSecondsOf(request, deps.limits);
    const memoryMb = request.resources?.memory_mb ?? deps.limits.memoryMb;
    const access = request.service_access ?? [];
    let command: string[] | undefined;
    try {
      // Checked again here: the job came through Redis, whoever wrote it.
      checkExecLimits(request, deps.limits);
      checkInputPaths(request.input, deps.limits);
      checkOutputPaths(request.output);
      command = commandOf(request);
    } catch (err) {
      return refuse(`The request is invalid: ${coerceError(err).message}`);
    }
    if (access.length > 0 && !deps.services)
      return refuse(
        'service_access was asked for, but this worker has no service proxy (see SERVICE_PROXY_PORT).',
      );
    if (request.output?.minio_upload && !deps.minio)
      return refuse('output.minio_upload needs MinIO, and MINIO_ENDPOINT is not configured.');
    if (signal.aborted)
      return respond(false, undefined, {
        status: 'cancelled',
        error: 'The execution was cancelled before it started.',
      });

    let slot: ExecSlot | undefined;
    try {
      await deps.runner.ensureImage(request.container.image);
      slot = await deps.runner.acquire(
        {
          image: request.container.image,
          network: networkOf(access.length > 0, request.container.ports !== undefined, deps.services),
          extraHosts: access.length > 0 ? deps.services?.extraHosts : undefined,
          ports: request.container.ports,
          memoryMb,
          cpus: Math.min(request.resources?.cpus ?? deps.limits.maxCpus, deps.limits.maxCpus),
        },
        signal,
      );
      await writeInputs(slot.workspace, request.input, deps.limits, deps.minio);
      const outcome = await slot.run({
        command,
        env: environmentOf(payload, deps.services),
        workingDir: request.container.working_dir ?? EXEC_DEFAULT_WORKING_DIR,
        timeoutMs: timeoutSeconds * 1000,
        signal,
        onOutput: deps.onOutput && ((chunk, stream) => deps.onOutput?.(payload.execution_id, chunk, stream)),
      });
      const outputs = await collectOutputs(slot.workspace, request.output, deps.limits);
      const minioObjects =
        request.output?.minio_upload && deps.minio
          ? await uploadOutputDir(
              deps.minio.client,
              deps.minio.bucket,
              payload.execution_id,
              slot.workspace,
              {
                onSkip: deps.onSkip && ((path, reason) => deps.onSkip?.(payload.execution_id, path, reason)),
              },
            )
          : [];
      const failure = failureOf(outcome, outputs, timeoutSeconds, memoryMb);
      const executionMs = outcome.durationMs;
      return respond(
        failure === undefined,
        {
          exit_code: outcome.exitCode,
          output: outcome.output,
          logs: request.output?.return_logs ? outcome.output : '',
          graph_update: request.output?.graph_update ? outputs.graph_update : null,
          output_files: outputs.output_files,
          minio_objects: minioObjects,
          metadata: {
            execution_time: formatSeconds(executionMs),
            execution_time_ms: executionMs,
            image: request.container.image,
            warm: outcome.warm,
            ...(outcome.peakMemoryMb !== undefined ? { peak_memory_mb: outcome.peakMemoryMb } : {}),
            ...(outcome.cpuPercent !== undefined ? { cpu_percent: outcome.cpuPercent } : {}),
            ...(outputs.missing.length ? { missing_files: outputs.missing } : {}),
            ...(outputs.graphUpdateError ? { graph_update_error: outputs.graphUpdateError } : {}),
            logs_truncated: outcome.truncated,
            timed_out: outcome.timedOut,
            cancelled: outcome.cancelled,
            oom_killed: outcome.oomKilled,
          },
        },
        failure,
      );
    } catch (err) {
      if (signal.aborted)
        return respond(false, undefined, {
          status: 'cancelled',
          error: 'The execution was cancelled; its container was killed.',
        });
      return refuse(coerceError(err).message);
    } finally {
      await slot?.release();
    }
  };
}
export type Execute = ReturnType<typeof createExecution>;
