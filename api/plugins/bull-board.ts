import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { QueueSet } from '../../queues/queue-set.ts';
import { queueNames } from '../../queues/registry.ts';

export const BULL_BOARD_PATH = '/admin/queues';

/**
 * What an admin key may do in Bull Board: actions on jobs that are already on a queue. Anything
 * not listed is refused to everyone, first of all adding a job and editing a job's data (they
 * would skip enqueue()'s checks), but also whatever a later Bull Board adds: deny by default.
 */
const ADMIN_ACTIONS: ReadonlySet<string> = new Set(
  [
    'PUT /api/queues/pause',
    'PUT /api/queues/resume',
    'PUT /api/queues/:queueName/pause',
    'PUT /api/queues/:queueName/resume',
    'PUT /api/queues/:queueName/retry/:queueStatus',
    'PUT /api/queues/:queueName/promote',
    'PUT /api/queues/:queueName/clean/:queueStatus',
    'PUT /api/queues/:queueName/:jobId/retry',
    'PUT /api/queues/:queueName/:jobId/promote',
    'PUT /api/queues/:queueName/:jobId/clean',
  ].map((action) => action.replace(' /', ` ${BULL_BOARD_PATH}/`)),
);

/** Only GET and HEAD read; every other method changes something. */
const READS = new Set(['GET', 'HEAD']);

/** Answers in the contract's shape here: Bull Board's routes have an error handler of their own. */
function forbid(reply: FastifyReply, message: string) {
  return reply.status(403).send({ error: 'forbidden', message });
}

/**
 * The server-side guard on Bull Board's API (the UI's read-only flag only hides buttons). Runs
 * after the auth hook, which has set `request.principal` for a valid key.
 */
async function guardWrites(request: FastifyRequest, reply: FastifyReply) {
  if (READS.has(request.method)) return;
  const action = `${request.method} ${request.routeOptions.url ?? ''}`;
  if (!ADMIN_ACTIONS.has(action)) {
    return forbid(
      reply,
      'Bull Board cannot add jobs, change their data or reconfigure queues; use the API, which checks every payload.',
    );
  }
  if (!request.principal?.admin) {
    return forbid(
      reply,
      'Only a key in ADMIN_API_KEYS may retry, promote, clean, pause or resume in Bull Board.',
    );
  }
}

export interface BullBoardOptions {
  queues: QueueSet;
  /**
   * False when ADMIN_API_KEYS is empty: the board shows no write buttons and its handlers
   * refuse writes too. The guard above applies either way. Default true.
   */
  readOnly?: boolean;
}

/** Bull Board over every queue; it sits behind the same auth hook as the API. */
export default async function bullBoard(app: FastifyInstance, { queues, readOnly = true }: BullBoardOptions) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queueNames.map((name) => new BullMQAdapter(queues[name], { readOnlyMode: readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Dockhand' } },
  });
  // This plugin is encapsulated, so the hook guards Bull Board's routes and no others.
  app.addHook('onRequest', guardWrites);
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
