import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { DockhandError, NotFoundError } from '../../core/errors.ts';
import { bundleFromFiles, bundleFromZip, type CodeBundle } from '../../processors/functions/code-archive.ts';
import type { EventInvokeConfigStore } from '../../processors/functions/event-invoke-config.ts';
import type { FunctionRecord, FunctionStore } from '../../processors/functions/function-store.ts';
import type { S3CodeReader } from '../../processors/functions/s3-code-source.ts';
import type { TuningHistory } from '../../processors/functions/tuning-history.ts';
import type { DeadLetters } from '../../queues/dead-letters.ts';
import type { Enqueue } from '../../queues/enqueue.ts';
import type { InvocationState } from '../../queues/invocation-cancel.ts';
import type { QueueSet } from '../../queues/queue-set.ts';
import type { ResultWaiter } from '../../queues/result-waiter.ts';
import { invokeAsync, invokeSync } from '../functions/invoke.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import {
  DeployBody,
  FunctionParams,
  FunctionView,
  InvocationPending,
  InvocationResultSchema,
  RequestParams,
} from '../schemas/functions.ts';

export interface FunctionRouteDeps {
  store: FunctionStore;
  history: TuningHistory;
  enqueue: Enqueue;
  queues: QueueSet;
  waiter: ResultWaiter;
  /** Is any worker able to run functions now (its Docker answers)? Unset: assume so. */
  functionsAvailable?: () => Promise<boolean>;
  deadLetters: DeadLetters;
  /** Reads `code.s3` zips from the allowed buckets (processors/functions/s3-code-source.ts). */
  s3Code: S3CodeReader;
  /** Its Event-call settings go with a deleted function (as Lambda's DeleteFunction does). */
  eventInvokeConfigs?: Pick<EventInvokeConfigStore, 'remove'>;
  /** Where a call stands, its kept CANCELLED result included (queues/invocation-cancel.ts). */
  readInvocation: (requestId: string) => Promise<InvocationState | undefined>;
}

async function resolveCode(
  code: { zipBase64?: string; files?: Record<string, string>; s3?: { bucket: string; key: string } },
  readS3: S3CodeReader,
): Promise<CodeBundle> {
  if (code.files) return bundleFromFiles(code.files);
  if (code.zipBase64) return bundleFromZip(Buffer.from(code.zipBase64, 'base64'));
  return bundleFromZip(await readS3(code.s3 as { bucket: string; key: string }), 'body.code.s3');
}

/** Env values hold secrets (API keys, passwords): a listing names the variables, never their values. */
export const MASKED = '***';
export function maskEnv(record: FunctionRecord): FunctionRecord {
  return { ...record, env: Object.fromEntries(Object.keys(record.env).map((k) => [k, MASKED])) };
}

export { QUEUE_GRACE_MS, requireFunctionWorker } from '../functions/invoke.ts';

/** The function's record, or the 404 every function route answers; `fresh` allows a 1 s old read. */
export async function requireFunction(store: FunctionStore, name: string, { fresh = false } = {}) {
  const record = fresh ? await store.getFresh(name) : await store.get(name);
  if (!record) throw new NotFoundError(`No function ${name}.`);
  return record;
}

export default async function functionRoutes(base: FastifyInstance, deps: FunctionRouteDeps) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['functions'];

  app.put(
    '/functions/:name',
    {
      schema: {
        tags,
        summary: 'Deploy (create or replace) a function',
        params: FunctionParams,
        body: DeployBody,
        response: { 200: FunctionView, 201: FunctionView, ...commonErrors },
      },
    },
    async (request, reply) => {
      const { code, ...rest } = request.body;
      const bundle = await resolveCode(code, deps.s3Code).catch((err: Error) => {
        // The caller hears one sentence; why the read failed is for the operator.
        if (err.cause) request.log.info({ err: err.cause, field: 'body.code.s3' }, err.message);
        throw err;
      });
      const { record, created } = await deps.store.put(
        request.params.name,
        {
          runtime: rest.runtime,
          handler: rest.handler,
          memoryMb: rest.memoryMb,
          timeoutMs: rest.timeoutMs,
          env: rest.env ?? {},
          network: rest.network ?? 'none',
          concurrency: rest.concurrency ?? 10,
        },
        bundle,
      );
      return reply.status(created ? 201 : 200).send(record);
    },
  );

  app.get(
    '/functions',
    {
      schema: {
        tags,
        summary: "Every deployed function, env values masked (GET /functions/:name shows a function's)",
        response: { 200: Type.Object({ functions: Type.Array(FunctionView) }), ...commonErrors },
      },
    },
    async () => ({ functions: (await deps.store.list()).map(maskEnv) }),
  );

  const getRecord = (name: string) => requireFunction(deps.store, name);

  app.get(
    '/functions/:name',
    {
      schema: {
        tags,
        summary: 'One function, with its env values',
        params: FunctionParams,
        response: { 200: FunctionView, 404: ErrorResponse, ...commonErrors },
      },
    },
    // Env values are secrets: only an admin key (ADMIN_API_KEYS) reads them; the list masks them for all.
    async (request) => {
      const record = await getRecord(request.params.name);
      return request.principal?.admin ? record : maskEnv(record);
    },
  );

  app.delete(
    '/functions/:name',
    {
      schema: {
        tags,
        summary: 'Delete a function and its code',
        params: FunctionParams,
        response: { 204: Type.Null(), 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      if (!(await deps.store.remove(request.params.name)))
        throw new NotFoundError(`No function ${request.params.name}.`);
      await deps.history.clear(request.params.name);
      await deps.eventInvokeConfigs?.remove(request.params.name);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/functions/:name/invoke',
    {
      schema: {
        tags,
        summary: 'Invoke: the body is the event. X-Invocation-Type: Event answers 202 at once.',
        params: FunctionParams,
        headers: Type.Object({
          'x-invocation-type': Type.Optional(
            Type.Union([Type.Literal('RequestResponse'), Type.Literal('Event')]),
          ),
        }),
        response: {
          200: InvocationResultSchema,
          202: Type.Object({ requestId: Type.String() }),
          404: ErrorResponse,
          504: ErrorResponse,
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const record = await requireFunction(deps.store, request.params.name, { fresh: true });
      const event = request.body ?? {};
      if (request.headers['x-invocation-type'] === 'Event') {
        const requestId = await invokeAsync(deps, record, event, 'http');
        return reply.status(202).send({ requestId });
      }
      const out = await invokeSync(deps, record, event, 'http');
      if (out.status !== 'SUCCESS')
        reply.header('x-dockhand-function-error', out.status === 'TIMEOUT' ? 'Timeout' : 'Unhandled');
      return reply.status(200).send(out);
    },
  );

  app.get(
    '/invocations/:requestId',
    {
      schema: {
        tags,
        summary: "An invocation's result (200), or its state while it waits or runs (202)",
        params: RequestParams,
        response: {
          200: InvocationResultSchema,
          202: InvocationPending,
          404: ErrorResponse,
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const read = await deps.readInvocation(request.params.requestId);
      if (!read)
        throw new NotFoundError(`No invocation ${request.params.requestId}; results are kept for 24 hours.`);
      if (read.state === 'completed') return reply.status(200).send(read.result);
      if (read.state === 'failed')
        throw new DockhandError('invocation_failed', 503, `The invocation could not run: ${read.reason}`);
      return reply.status(202).send({
        requestId: request.params.requestId,
        status: read.state === 'running' ? 'RUNNING' : 'PENDING',
      });
    },
  );
}
