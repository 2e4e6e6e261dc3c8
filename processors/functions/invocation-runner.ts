import { LoadError } from '../../core/errors.ts';
import { EGRESS_NETWORK } from '../../runtimes/egress-network.ts';
import type { Invocation, InvokeRequest } from '../../runtimes/invoker.ts';
import { functionArn, lambdaEnvironment } from '../../runtimes/lambda-env.ts';
import type { FunctionImage } from '../../runtimes/warm-pool.ts';
import type { FunctionRecord, FunctionStore } from './function-store.ts';

/** Lambda's default, for a caller that names none (AWS_REGION). */
const DEFAULT_REGION = 'us-east-1';

/**
 * `code` is the deployed record whose bundle to load (a sweep variant shares its code);
 * `region` is where the function says it runs (AWS_REGION, its ARN).
 */
export function toImage(
  record: FunctionRecord,
  store: FunctionStore,
  code: FunctionRecord = record,
  region = DEFAULT_REGION,
): FunctionImage {
  const lambda = lambdaEnvironment({
    name: record.name,
    // As the function was created: a Lambda `Handler` of `bootstrap` is stored as `bootstrap.handler`.
    handler: record.lambda?.handler ?? record.handler,
    memoryMb: record.memoryMb,
    region,
  });
  return {
    name: record.name,
    version: record.version,
    runtime: record.runtime,
    handler: record.handler,
    memoryMb: record.memoryMb,
    network: record.network === 'egress' ? EGRESS_NETWORK : 'none',
    env: { ...lambda, ...record.env },
    concurrency: record.concurrency,
    loadFiles: () => store.bundle(code),
    arn: functionArn(region, record.name),
  };
}

/**
 * The same function at another memory size (power tuning), under a version of its own so its
 * containers are never mixed with those of the deployed size.
 */
export function resized(record: FunctionRecord, memoryMb: number | undefined): FunctionRecord {
  if (memoryMb === undefined || memoryMb === record.memoryMb) return record;
  return { ...record, memoryMb, version: `${record.version}-m${memoryMb}` };
}

export type RunInvocation = (
  record: FunctionRecord,
  code: FunctionRecord,
  request: InvokeRequest,
) => Promise<Invocation>;

/**
 * One call of a function in its sandbox. A handler that does not load is the call's FAILED
 * result, like any handler error; only failures of Dockhand itself (Docker away) throw.
 */
export function createInvocationRunner(deps: {
  store: FunctionStore;
  invoke: (fn: FunctionImage, req: InvokeRequest) => Promise<Invocation>;
  /** AWS_REGION. Default us-east-1. */
  region?: string;
}): RunInvocation {
  return async (record, code, request) => {
    try {
      return await deps.invoke(toImage(record, deps.store, code, deps.region), request);
    } catch (err) {
      if (!(err instanceof LoadError)) throw err;
      return {
        status: 'FAILED',
        durationMs: 0,
        result: null,
        error: loadFailure(err),
        logs: err.failure?.logs ?? '',
        logsTruncated: false,
        resources: { memoryUsedMb: 0, cpuUsagePercent: 0, networkRxBytes: 0, networkTxBytes: 0 },
        coldStart: false,
        memoryLimitMb: record.memoryMb,
      };
    }
  };
}

/**
 * A custom runtime's own init errors (`Runtime.InitError`, `Runtime.ExitError`, or what its
 * bootstrap posted to /init/error) are Lambda's and pass as they are; any other load failure
 * is Dockhand's HandlerLoadError.
 */
function loadFailure(err: LoadError): Invocation['error'] {
  const { errorType, errorMessage } = err.failure ?? {};
  if (errorType?.startsWith('Runtime.') && typeof errorMessage === 'string')
    return { errorType, errorMessage };
  return { errorType: 'HandlerLoadError', errorMessage: err.message };
}
