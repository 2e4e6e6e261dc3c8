import fs from 'node:fs/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { ConflictError, errorCode, NotFoundError, ValidationError } from '../../core/errors.ts';
import { METRIC_BY_FILE } from '../../processors/batches/catalog.ts';
import type { BatchFolder, BatchFolders } from '../../processors/batches/folder.ts';
import { validateBatch } from '../../processors/batches/validate.ts';
import { batchJobId } from '../../processors/batches.ts';
import { runTick, type TickHandler } from '../../processors/scheduler.ts';
import type { Enqueue } from '../../queues/enqueue.ts';
import type { QueueSet } from '../../queues/queue-set.ts';
import {
  BatchList,
  BatchParams,
  BatchResultSchema,
  BatchValidation,
  BatchView,
  CreateBatchBody,
  TickResult,
} from '../schemas/batches.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { failureSentence } from './jobs.ts';

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$/;

interface Deps {
  enqueue: Enqueue;
  queues: QueueSet;
  folders: BatchFolders;
  tickHandlers: readonly TickHandler[];
}

/** The 400s that POST /batches and POST /batches/validate share, beyond the schema's. */
function checkFiles(files: Record<string, unknown>): void {
  for (const file of Object.keys(files)) {
    if (!FILE_NAME.test(file)) {
      throw new ValidationError(
        `body.files.${file}`,
        `body.files.${file} must be a plain file name ending in .json.`,
      );
    }
  }
  if (!Object.keys(files).some((f) => METRIC_BY_FILE[f])) {
    throw new ValidationError(
      'body.files',
      `body.files names no metric file (e.g. ${Object.keys(METRIC_BY_FILE)[0]}).`,
    );
  }
}

/** Folder state and queue state, in the contract's four words. */
async function view(folder: BatchFolder, queues: QueueSet): Promise<Static<typeof BatchView>> {
  // Host paths stay on the host: the folder is named as the old runner's users know it.
  const base = {
    name: folder.name,
    path: `Inputs/${folder.name}`,
    files: folder.files,
    folderState: folder.state,
  };
  if (folder.state === 'processed') return { ...base, status: 'done' };
  if (folder.state === 'locked') return { ...base, status: 'processing' };
  const job = await queues.batches.getJob(batchJobId(folder.path));
  if (!job) return { ...base, status: 'pending' };
  const state = await job.getState();
  if (state === 'active') return { ...base, status: 'processing' };
  if (state === 'failed')
    return {
      ...base,
      status: 'failed',
      error: failureSentence(job),
    };
  return { ...base, status: 'pending' };
}

export default async function batchRoutes(base: FastifyInstance, deps: Deps) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/batches',
    {
      schema: {
        tags: ['batches'],
        summary: 'Create Inputs/<name>/ with metric files and queue it for scoring',
        body: CreateBatchBody,
        response: { 201: BatchView, 409: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      const { name, files } = request.body;
      checkFiles(files);
      const contents = Object.fromEntries(
        Object.entries(files).map(([file, value]) => [file, `${JSON.stringify(value, null, 2)}\n`]),
      );
      if (!(await deps.folders.create(name, contents))) {
        throw new ConflictError(
          `Batch ${name} already exists; batches are never re-run, use a new name.`,
          'body.name',
        );
      }
      const folder = (await deps.folders.get(name)) as BatchFolder;
      await deps.enqueue('batches', { name }, { jobId: batchJobId(folder.path) });
      return reply.status(201).send(await view(folder, deps.queues));
    },
  );

  app.post(
    '/batches/validate',
    {
      schema: {
        tags: ['batches'],
        summary:
          'Check a batch without writing or queueing it: per metric file, the fields understood (and under which name), key fields missing, fields ignored, and whether it would be scored',
        body: CreateBatchBody,
        response: { 200: BatchValidation, ...commonErrors },
      },
    },
    async (request) => {
      const { name, files } = request.body;
      checkFiles(files);
      return validateBatch(name, files);
    },
  );

  app.get(
    '/batches',
    {
      schema: {
        tags: ['batches'],
        summary: 'Every batch folder with its status',
        response: { 200: BatchList, ...commonErrors },
      },
    },
    async () => {
      const folders = await deps.folders.list();
      return { batches: await Promise.all(folders.map((f) => view(f, deps.queues))) };
    },
  );

  app.get(
    '/batches/:name/result',
    {
      schema: {
        tags: ['batches'],
        summary: "A done batch's result.json",
        params: BatchParams,
        response: { 200: BatchResultSchema, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const { name } = request.params;
      try {
        return JSON.parse(await fs.readFile(deps.folders.resultPath(name), 'utf8'));
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
        const folder = await deps.folders.get(name);
        throw new NotFoundError(folder ? `Batch ${name} has no result yet.` : `No batch ${name}.`);
      }
    },
  );

  app.post(
    '/batches/tick',
    {
      schema: {
        tags: ['batches'],
        summary: 'Run a scheduler tick now (batch discovery included) and return what it did',
        response: { 200: TickResult, ...commonErrors },
      },
    },
    // In this process rather than through the queue: the answer says what the tick did, and
    // it works on a gateway-only process. Handlers are idempotent, so a racing timed tick is harmless.
    async () => runTick(deps.tickHandlers, { tickId: `manual-${Date.now()}`, reason: 'manual' }),
  );
}
