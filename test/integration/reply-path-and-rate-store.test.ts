import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import t from 'tap';
import { sharedWindowStore } from '../../api/plugins/shared-window-store.ts';
import { readJobWithState } from '../../queues/job-read.ts';
import { createReplyPublisher, replyChannel } from '../../queues/reply-path.ts';
import { createResultWaiter, type JobOutcome } from '../../queues/result-waiter.ts';
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

/** The job itself, as the backstop reads it: here, a queue's own state. */
const lookupIn =
  (queue: Queue) =>
  async (jobId: string): Promise<JobOutcome> => {
    const found = await readJobWithState(queue, jobId);
    if (!found) return { state: 'missing' };
    if (found.state === 'completed') return { state: 'completed', value: found.job.returnvalue };
    if (found.state === 'failed') return { state: 'failed', reason: found.job.failedReason };
    return { state: 'pending' };
  };

t.test('a sync caller is answered on its own reply channel, before the job is even finished', async (t) => {
  // No backstop read within the test: only the reply channel can answer.
  const waiter = createResultWaiter({ replies: redis(true) }, prefix, {
    lookup: async () => ({ state: 'pending' }),
    checkAfterMs: 60_000,
  });
  await waiter.ready();
  t.teardown(() => waiter.close());
  const publish = createReplyPublisher(redis(), prefix);
  const answer = waiter.expect<{ ok: boolean }>('job-1', 5000);
  // No job exists at all: only the direct path can have answered.
  await publish.result(waiter.replyTo, 'job-1', { ok: true });
  t.same(await answer, { ok: true });

  const failed = waiter.expect('job-f', 5000);
  await publish.failure(waiter.replyTo, 'job-f', 'Docker went away.');
  await t.rejects(failed, /Docker went away/, 'a final failure is told on the same channel');

  const other = waiter.expect('job-2', 200);
  await publish.result('some-other-gateway', 'job-2', { ok: true });
  await redis().publish(replyChannel(prefix, waiter.replyTo), 'not json');
  await t.rejects(
    other,
    /No result for job-2 within 200 ms/,
    "another gateway's reply and garbage are ignored",
  );
  t.equal(waiter.size(), 0, 'nothing left waiting');
});

t.test(
  'a reply that never comes (a worker without the reply path, a lost message): the job itself answers',
  async (t) => {
    const queue = new Queue('plain', { connection: redis(), prefix });
    const waiter = createResultWaiter({ replies: redis(true) }, prefix, {
      lookup: lookupIn(queue),
      checkAfterMs: 50,
    });
    await waiter.ready();
    const worker = new Worker(
      'plain',
      async (job) => {
        if (job.data.fail) throw new Error('The handler broke.');
        return { via: 'the job' };
      },
      { connection: redis(true), prefix },
    );
    t.teardown(async () => {
      await worker.close();
      await queue.close();
      await waiter.close();
    });
    const answer = waiter.expect('job-3', 30_000);
    await queue.add('plain', {}, { jobId: 'job-3' });
    t.same(await answer, { via: 'the job' }, 'completed: its return value');

    const failed = waiter.expect('job-4', 30_000);
    await queue.add('plain', { fail: true }, { jobId: 'job-4' });
    await t.rejects(failed, /The handler broke/, 'failed: its reason');

    // Gone from the queue (trimmed from the kept history, or removed): nothing to read, and no
    // answer is made up; the caller's own wait ends it (a 504 `invocation_pending` at the route).
    await worker.pause();
    const removed = waiter.expect('job-5', 500);
    await queue.add('plain', {}, { jobId: 'job-5', delay: 60_000 });
    await queue.remove('job-5');
    await t.rejects(removed, /No result for job-5 within 500 ms/);
  },
);

t.test('a worker in the same process hands its reply over in memory, never through Redis', async (t) => {
  const waiter = createResultWaiter({ replies: redis(true) }, prefix, {
    lookup: async () => ({ state: 'pending' }),
    checkAfterMs: 60_000,
  });
  await waiter.ready();
  t.teardown(() => waiter.close());
  const published: string[] = [];
  const spy = { publish: async (channel: string) => published.push(channel) } as unknown as Redis;
  const publish = createReplyPublisher(spy, prefix, waiter);
  const answer = waiter.expect('job-7', 5000);
  await publish.result(waiter.replyTo, 'job-7', { ok: true, gone: undefined });
  t.same(await answer, { ok: true }, 'the same serialised message as over Redis');
  const failed = waiter.expect('job-8', 5000);
  await publish.failure(waiter.replyTo, 'job-8', 'Docker went away.');
  await t.rejects(failed, /Docker went away/);
  t.same(published, [], 'nothing was published');
  await publish.result('another-gateway', 'job-9', {});
  t.same(
    published,
    [replyChannel(prefix, 'another-gateway')],
    'another gateway is still reached through Redis',
  );
});

t.test('after its connection comes back, a waiter reads every waiting job at once', async (t) => {
  const outcomes = new Map<string, JobOutcome>([['job-6', { state: 'pending' }]]);
  let reads = 0;
  const replies = redis(true);
  const waiter = createResultWaiter({ replies }, prefix, {
    lookup: async (id) => {
      reads++;
      return outcomes.get(id) ?? { state: 'missing' };
    },
    checkAfterMs: 60_000,
  });
  await waiter.ready();
  t.teardown(() => waiter.close());
  const answer = waiter.expect('job-6', 30_000);
  // Finished while the connection was down: its reply was published to no one.
  outcomes.set('job-6', { state: 'completed', value: { late: true } });
  replies.disconnect(true);
  t.same(await answer, { late: true });
  t.ok(reads >= 1, 'read on reconnect, long before its first scheduled read');
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
