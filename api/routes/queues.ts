import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { QueueSet } from '../../queues/queue-set.ts';
import { queueNames } from '../../queues/registry.ts';
import { commonErrors } from '../schemas/common.ts';
import { QueueList } from '../schemas/listings.ts';

/** Every queue's depth by state: what Bull Board shows, as numbers a client can chart. */
export default async function queueRoutes(base: FastifyInstance, deps: { queues: QueueSet }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/queues',
    {
      schema: {
        tags: ['operations'],
        summary: 'Every queue with its jobs waiting, active, delayed, failed and completed',
        response: { 200: QueueList, ...commonErrors },
      },
    },
    async () => {
      const queues = await Promise.all(
        queueNames.map(async (name) => {
          const queue = deps.queues[name];
          const [c, paused] = await Promise.all([
            queue.getJobCounts(
              'waiting',
              'prioritized',
              'waiting-children',
              'active',
              'delayed',
              'failed',
              'completed',
            ),
            queue.isPaused(),
          ]);
          const n = (state: string) => c[state] ?? 0;
          return {
            name,
            waiting: n('waiting') + n('prioritized') + n('waiting-children'),
            active: n('active'),
            delayed: n('delayed'),
            failed: n('failed'),
            completed: n('completed'),
            paused,
          };
        }),
      );
      return { queues, at: new Date().toISOString() };
    },
  );
}
