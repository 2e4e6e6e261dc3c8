import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { QueueSet } from '../../queues/queue-set.ts';
import { queueNames } from '../../queues/registry.ts';

export const BULL_BOARD_PATH = '/admin/queues';

/** Bull Board over every queue; it sits behind the same auth hook as the API. */
export default async function bullBoard(app: FastifyInstance, { queues }: { queues: QueueSet }) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queueNames.map((name) => new BullMQAdapter(queues[name])),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Dockhand' } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
