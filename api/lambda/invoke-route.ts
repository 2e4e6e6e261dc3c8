import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FunctionRecord } from '../../processors/functions/function-store.ts';
import type { InvocationResult } from '../../queues/schemas/functions.ts';
import { invokeAsync, invokeSync } from '../functions/invoke.ts';
import { LambdaError, requestTooLarge, validationFailed } from './errors.ts';
import { functionArn, parseFunctionName, printable } from './mapping.ts';
import type { LambdaRouteDeps } from './plugin.ts';

/** Lambda's payload limits: 6 MB for a synchronous call, 256 KB for an asynchronous one. */
export const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
export const ASYNC_PAYLOAD_LIMIT = 256 * 1024;
/** X-Amz-Log-Result carries the last 4 KB of the call's log, as Lambda's does. */
export const LOG_TAIL_BYTES = 4096;

const INVOCATION_TYPES = ['RequestResponse', 'Event', 'DryRun'] as const;

/**
 * The function's log as Lambda's tail shows it: START, what the handler wrote, END and REPORT
 * with the duration, the memory size and the peak, cut to its last 4 KB and base64-encoded.
 */
export function logTail(out: InvocationResult, memoryMb: number): string {
  const id = out.requestId;
  const logs = out.logs ?? '';
  const text =
    `START RequestId: ${id} Version: $LATEST\n${logs}${logs && !logs.endsWith('\n') ? '\n' : ''}` +
    `END RequestId: ${id}\n` +
    `REPORT RequestId: ${id}\tDuration: ${out.durationMs.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(out.durationMs))} ms\t` +
    `Memory Size: ${memoryMb} MB\tMax Memory Used: ${Math.round(out.resources.memoryUsedMb)} MB\t\n`;
  const bytes = Buffer.from(text, 'utf8');
  return bytes.subarray(Math.max(0, bytes.length - LOG_TAIL_BYTES)).toString('base64');
}

const lines = (stack: string | undefined) => (stack ?? '').split('\n').filter((l) => l.trim() !== '');

/**
 * A failed call's payload in the shape each Lambda runtime gives: Node's `{errorType,
 * errorMessage, trace}`, Python's `{errorMessage, errorType, requestId, stackTrace}`, and for a
 * timeout Lambda's own `Sandbox.Timedout`.
 */
export function errorPayload(out: InvocationResult, record: FunctionRecord): Record<string, unknown> {
  if (out.status === 'TIMEOUT')
    return {
      errorType: 'Sandbox.Timedout',
      errorMessage: `RequestId: ${out.requestId} Error: Task timed out after ${(record.timeoutMs / 1000).toFixed(2)} seconds`,
    };
  const error = (out.error ?? { errorType: 'Error', errorMessage: 'The function failed.' }) as NonNullable<
    InvocationResult['error']
  > & { trace?: unknown; stackTrace?: unknown };
  const given = Array.isArray(error.trace)
    ? error.trace
    : Array.isArray(error.stackTrace)
      ? error.stackTrace
      : undefined;
  const trace = (given as string[] | undefined) ?? lines(error.stack);
  if (record.runtime === 'node20')
    return { errorType: error.errorType, errorMessage: error.errorMessage, trace };
  if (record.runtime === 'python3')
    return {
      errorMessage: error.errorMessage,
      errorType: error.errorType,
      requestId: out.requestId,
      stackTrace: trace,
    };
  return { errorMessage: error.errorMessage, errorType: error.errorType, stackTrace: trace };
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export default async function lambdaInvokeRoute(app: FastifyInstance, deps: LambdaRouteDeps) {
  const { region } = deps;
  // The body is taken up to BODY_LIMIT_BYTES (default 6 MB, Lambda's own): an Event call's
  // smaller limit is checked below.
  app.post(
    '/functions/:FunctionName/invocations',
    { config: { auth: 'sigv4' }, schema: { hide: true } },
    async (request, reply) => {
      const params = request.params as { FunctionName: string };
      const query = request.query as { Qualifier?: string };
      const { name } = parseFunctionName(params.FunctionName, region, query.Qualifier);
      const type = headerOf(request, 'x-amz-invocation-type') ?? 'RequestResponse';
      if (!(INVOCATION_TYPES as readonly string[]).includes(type))
        throw validationFailed(
          `1 validation error detected: Value '${printable(type)}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`,
        );
      const logType = headerOf(request, 'x-amz-log-type') ?? 'None';
      if (logType !== 'None' && logType !== 'Tail')
        throw validationFailed(
          `1 validation error detected: Value '${printable(logType)}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]`,
        );
      const body = request.body as Buffer | undefined;
      const size = body?.length ?? 0;
      if (type === 'Event' && size > ASYNC_PAYLOAD_LIMIT)
        throw requestTooLarge(ASYNC_PAYLOAD_LIMIT, 'Invoke');
      if (size > SYNC_PAYLOAD_LIMIT) throw requestTooLarge(SYNC_PAYLOAD_LIMIT, 'Invoke');
      const record = await deps.store.getFresh(name);
      if (!record)
        throw new LambdaError(
          'ResourceNotFoundException',
          404,
          `Function not found: ${functionArn(region, name)}`,
        );
      // Lambda's event for an empty payload is {}; any JSON value is an event.
      const event = size === 0 ? {} : await deps.json(request, 'InvalidRequestContentException');
      if (type === 'DryRun') return reply.status(204).send();
      if (type === 'Event') {
        const requestId = await invokeAsync(deps.invoke, record, event, 'lambda');
        return reply.status(202).header('x-amzn-requestid', requestId).send();
      }
      const out = await invokeSync(deps.invoke, record, event, 'lambda');
      reply
        .status(200)
        .header('x-amzn-requestid', out.requestId)
        .header('x-amz-executed-version', '$LATEST')
        .header('content-type', 'application/json');
      if (logType === 'Tail') reply.header('x-amz-log-result', logTail(out, record.memoryMb));
      if (out.status !== 'SUCCESS') {
        reply.header('x-amz-function-error', 'Unhandled');
        return reply.send(JSON.stringify(errorPayload(out, record)));
      }
      // The handler's value, exactly: `undefined` is Lambda's `null`.
      return reply.send(JSON.stringify(out.result ?? null));
    },
  );
}
