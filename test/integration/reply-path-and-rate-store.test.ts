import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import t from 'tap';
import { sharedWindowStore } from '../../api/plugins/shared-window-store.ts';
import { createReplyPublisher, replyChannel } from '../../queues/reply-path.ts';
import { createResultWaiter } from '../../queues/result-waiter.ts';
import { REDIS_URL, wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const prefix = `t${randomBytes(5).toString('hex')}`;
const clients: Redis[] = [];
const redis = (blocking = false) => {
  const client = new Redis(REDIS_URL, blocking ? { maxRetriesPerRequest: null } : {});
  clients.push(client);
  return client;
};
t.teardown(async () => {
  await wipePrefix(prefix);
  await Promise.all(clients.map((c) => c.quit()));
});

t.test('a sync caller is answered on its own reply channel, before the job is even finished', async (t) => {
  const waiter = createResultWaiter('functions', { events: redis(true), replies: redis(true) }, prefix);
  await waiter.ready();
  t.teardown(() => waiter.close());
  const publish = createReplyPublisher(redis(), prefix);
  const answer = waiter.expect<{ ok: boolean }>('job-1', 5000);
  // No job exists at all: only the direct path can have answered.
  await publish(waiter.replyTo, 'job-1', { ok: true });
  t.same(await answer, { ok: true });

  const other = waiter.expect('job-2', 200);
  await publish('some-other-gateway', 'job-2', { ok: true });
  await redis().publish(replyChannel(prefix, waiter.replyTo), 'not json');
  await t.rejects(
    other,
    /No result for job-2 within 200 ms/,
    "another gateway's reply and garbage are ignored",
  );
});

t.test('without the reply path (an older worker), the events stream still answers', async (t) => {
  const waiter = createResultWaiter('plain', { events: redis(true), replies: redis(true) }, prefix);
  await waiter.ready();
  const queue = new Queue('plain', { connection: redis(), prefix });
  const worker = new Worker('plain', async () => ({ via: 'events' }), { connection: redis(true), prefix });
  t.teardown(async () => {
    await worker.close();
    await queue.close();
    await waiter.close();
  });
  const answer = waiter.expect('job-3', 10_000);
  await queue.add('plain', {}, { jobId: 'job-3' });
  t.same(await answer, { via: 'events' });
});

t.test('rate-limit counts: exact on one gateway, shared across gateways through Redis', async (t) => {
  const a = sharedWindowStore({ redis: redis(), prefix: `${prefix}:rl:`, flushMs: 60_000 });
  const b = sharedWindowStore({ redis: redis(), prefix: `${prefix}:rl:`, flushMs: 60_000 });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const storeA = new a.Store({ timeWindow: 60_000 });
  const storeB = new b.Store({ timeWindow: 60_000 });
  const incr = (store: InstanceType<typeof a.Store>, key: string) =>
    new Promise<number>((resolve, reject) =>
      store.incr(key, (err, res) => (err ? reject(err) : resolve(res?.current ?? -1))),
    );
  for (let i = 1; i <= 5; i++) t.equal(await incr(storeA, 'k'), i, 'counted at once, no round trip');
  t.equal(await incr(storeB, 'k'), 1, 'B has not heard of A yet');
  await a.flush();
  await b.flush();
  t.equal(await incr(storeB, 'k'), 7, "after B's flush it counts A's five as well");
  await a.flush(true);
  t.equal(await incr(storeA, 'k'), 7, "and A learns of B's flushed hit at its next flush");
  t.equal(await incr(storeA, 'other'), 1, 'keys are separate');
});
