import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { NotFoundError } from '../../core/errors.ts';
import { summariseSamples } from '../../processors/functions/auto-tuner.ts';
import { sweepChart } from '../../processors/functions/power-sweep.ts';
import { readJobWithState } from '../../queues/job-read.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { FunctionParams, SweepBody, SweepParams, SweepStatus, TuningView } from '../schemas/functions.ts';
import { type FunctionRouteDeps, requireFunction, requireFunctionWorker } from './functions.ts';
import { failureSentence } from './jobs.ts';

const sweepLink = (name: string, sweepId: string) => `/functions/${name}/tuning/sweeps/${sweepId}`;

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
        summary:
          'Power tuning: queue a sweep that runs the event at several memory sizes and picks one by strategy (202; follow its link)',
        params: FunctionParams,
        body: SweepBody,
        response: { 202: SweepStatus, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      const record = await getRecord(request.params.name);
      await requireFunctionWorker(deps);
      const sweepId = randomUUID();
      await deps.enqueue(
        'sweeps',
        { functionName: record.name, version: record.version, ...request.body },
        { jobId: sweepId },
      );
      const location = sweepLink(record.name, sweepId);
      return reply
        .status(202)
        .header('location', location)
        .send({ sweepId, functionName: record.name, status: 'queued', progress: 0, location });
    },
  );

  app.get(
    '/functions/:name/tuning/sweeps/:sweepId',
    {
      schema: {
        tags,
        summary: "A sweep's state and progress; its result once done",
        params: SweepParams,
        response: { 200: SweepStatus, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const { name, sweepId } = request.params;
      const read = await readJobWithState(deps.queues.sweeps, sweepId);
      if (!read || read.job.data.functionName !== name)
        throw new NotFoundError(`No sweep ${sweepId} of ${name}; sweeps are kept for 24 hours.`);
      const { job, state } = read;
      const base = {
        sweepId,
        functionName: name,
        progress: typeof job.progress === 'number' ? job.progress : 0,
        location: sweepLink(name, sweepId),
      };
      if (state === 'completed')
        return { ...base, status: 'done' as const, progress: 100, result: job.returnvalue };
      if (state === 'failed')
        return {
          ...base,
          status: 'failed' as const,
          error: failureSentence(job),
        };
      return { ...base, status: state === 'active' ? ('running' as const) : ('queued' as const) };
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
