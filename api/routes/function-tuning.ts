import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { NotFoundError } from '../../core/errors.ts';
import { summariseSamples } from '../../processors/functions/auto-tuner.ts';
import {
  DEFAULT_SWEEP_RUNS,
  type SweepPoint,
  summarisePoint,
  sweepChart,
  sweepResult,
} from '../../processors/functions/power-sweep.ts';
import type { InvocationResult } from '../../queues/schemas/functions.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { FunctionParams, SweepBody, SweepView, TuningView } from '../schemas/functions.ts';
import {
  type FunctionRouteDeps,
  QUEUE_GRACE_MS,
  requireFunction,
  requireFunctionWorker,
} from './functions.ts';

/** The auto-tuner's view, the power-tuning sweep and its chart. */
export default async function functionTuningRoutes(base: FastifyInstance, deps: FunctionRouteDeps) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['functions'];
  const getRecord = (name: string) => requireFunction(deps.store, name);

  app.get(
    '/functions/:name/tuning',
    {
      schema: {
        tags,
        summary: "The auto-tuner's view over recent invocations",
        params: FunctionParams,
        response: { 200: TuningView, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const record = await getRecord(request.params.name);
      const samples = await deps.history.recent(record.name);
      return { functionName: record.name, ...summariseSamples(samples, record.memoryMb) };
    },
  );

  app.post(
    '/functions/:name/tuning/sweep',
    {
      schema: {
        tags,
        summary: 'Power tuning: run the event at several memory sizes and pick one by strategy',
        params: FunctionParams,
        body: SweepBody,
        response: { 200: SweepView, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const record = await getRecord(request.params.name);
      await requireFunctionWorker(deps);
      const sizes = [...new Set(request.body.memorySizes ?? [128, 256, 512, 1024, 1769])].sort(
        (a, b) => a - b,
      );
      const runs = request.body.invocations ?? DEFAULT_SWEEP_RUNS;
      const call = async (memoryMb: number) => {
        const requestId = randomUUID();
        const result = deps.waiter.expect<InvocationResult>(requestId, record.timeoutMs + QUEUE_GRACE_MS);
        await deps.enqueue(
          'functions',
          {
            functionName: record.name,
            requestId,
            event: request.body.event ?? {},
            invocationType: 'RequestResponse',
            source: 'sweep',
            memoryMb,
            replyTo: deps.waiter.replyTo,
          },
          { jobId: requestId, attempts: 1 },
        );
        // A call that did not come back counts as a failure of this size; the sweep goes on.
        const out = await result.catch(() => undefined);
        return out?.status === 'SUCCESS' ? out.durationMs : undefined;
      };
      const points: SweepPoint[] = [];
      for (const memoryMb of sizes) {
        // The first call after a resize pays for the new container; it is not the size's figure.
        await call(memoryMb);
        const durations: number[] = [];
        let failures = 0;
        for (let i = 0; i < runs; i++) {
          const duration = await call(memoryMb);
          if (duration === undefined) failures++;
          else durations.push(duration);
        }
        points.push(summarisePoint(memoryMb, durations, failures));
      }
      const sweep = sweepResult(record.name, request.body.strategy ?? 'balanced', points);
      await deps.history.saveSweep(record.name, sweep);
      return sweep;
    },
  );

  app.get(
    '/functions/:name/tuning.svg',
    {
      schema: {
        tags,
        summary: 'The last sweep as an SVG chart: duration and cost per memory size',
        params: FunctionParams,
        produces: ['image/svg+xml'],
        response: { 200: Type.String(), 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      const sweep = await deps.history.lastSweep(request.params.name);
      if (!sweep)
        throw new NotFoundError(
          `No sweep of ${request.params.name} yet; POST /functions/${request.params.name}/tuning/sweep first.`,
        );
      return reply.type('image/svg+xml').send(sweepChart(sweep));
    },
  );
}
