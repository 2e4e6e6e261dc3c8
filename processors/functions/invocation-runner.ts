import { LoadError } from '../../core/errors.ts';
import { EGRESS_NETWORK } from '../../runtimes/egress-network.ts';
import type { Invocation, InvokeRequest } from '../../runtimes/invoker.ts';
import type { FunctionImage } from '../../runtimes/warm-pool.ts';
import type { FunctionRecord, FunctionStore } from './function-store.ts';

/** `code` is the deployed record whose bundle to load (a sweep variant shares its code). */
export function toImage(
  record: FunctionRecord,
  store: FunctionStore,
  code: FunctionRecord = record,
): FunctionImage {
  return {
    name: record.name,
    version: record.version,
    runtime: record.runtime,
    handler: record.handler,
    memoryMb: record.memoryMb,
    network: record.network === 'egress' ? EGRESS_NETWORK : 'none',
    env: record.env,
    concurrency: record.concurrency,
    loadFiles: () => store.bundle(code),
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
}): RunInvocation {
  return async (record, code, request) => {
    try {
      return await deps.invoke(toImage(record, deps.store, code), request);
    } catch (err) {
      if (!(err instanceof LoadError)) throw err;
      return {
        status: 'FAILED',
        durationMs: 0,
        result: null,
        error: { errorType: 'HandlerLoadError', errorMessage: err.message },
        logs: '',
        logsTruncated: false,
        resources: { memoryUsedMb: 0, cpuUsagePercent: 0, networkRxBytes: 0, networkTxBytes: 0 },
        coldStart: false,
        memoryLimitMb: record.memoryMb,
      };
    }
  };
}
