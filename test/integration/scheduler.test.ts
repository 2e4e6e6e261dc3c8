import { Queue, QueueEvents } from 'bullmq';
import t from 'tap';
import type { TickHandler } from '../../processors/scheduler.ts';
import { ensureTickScheduler, TICK_SCHEDULER_ID } from '../../queues/scheduler-tick.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

/** A handler that resolves a promise per call, so tests wait on ticks instead of sleeping. */
function recordingHandler(name = 'record') {
  const calls: Array<{ tickId: string; reason: string }> = [];
  let notify: (() => void) | undefined;
  const handler: TickHandler = {
    name,
    async run(context) {
      calls.push(context);
      notify?.();
      return { seen: calls.length };
    },
  };
  const nextCall = () =>
    new Promise<void>((resolve) => {
      notify = resolve;
    });
  return { handler, calls, nextCall };
}

t.test('the tick scheduler exists once, however often it is upserted', async (t) => {
  const prefix = testConfig(t).redis.prefix;
  const queue = new Queue('scheduler', { connection: { url: REDIS_URL }, prefix });
  t.teardown(() => queue.close());
  await Promise.all([ensureTickScheduler(queue, 600), ensureTickScheduler(queue, 600)]);
  await ensureTickScheduler(queue, 600);
  const schedulers = await queue.getJobSchedulers();
  t.equal(schedulers.length, 1);
  t.equal(schedulers[0]?.key, TICK_SCHEDULER_ID);
  t.equal(Number(schedulers[0]?.every), 600_000);
  const ticks = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
  t.ok(
    ticks.length >= 1 && ticks.length <= 2,
    `at most one interval tick and one startup tick (${ticks.length})`,
  );
});

t.test('a scheduler role ticks at start, and again after a restart', async (t) => {
  const config = testConfig(t, { SCHEDULER_INTERVAL_SECONDS: '600' });
  const { handler, calls, nextCall } = recordingHandler();

  let first = nextCall();
  const one = await startTestRole(t, 'scheduler', config, { tickHandlers: [handler] });
  await first;
  t.equal(calls.length, 1, 'first tick at start');
  await one.close();

  first = nextCall();
  await startTestRole(t, 'scheduler', config, { tickHandlers: [handler] });
  await first;
  t.equal(calls.length, 2, 'a restart ticks again');
  t.equal(
    calls[1]?.reason,
    'startup',
    'the restart tick is the startup tick, the interval one is 10 minutes away',
  );

  const queue = new Queue('scheduler', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
  t.teardown(() => queue.close());
  t.equal((await queue.getJobSchedulers()).length, 1, 'the restart did not duplicate the scheduler');
});

t.test('a failing handler fails the tick but does not stop the others', async (t) => {
  const config = testConfig(t);
  const good = recordingHandler('good');
  const bad: TickHandler = {
    name: 'bad',
    async run() {
      throw new Error('disk on fire');
    },
  };
  const events = new QueueEvents('scheduler', {
    connection: { url: REDIS_URL },
    prefix: config.redis.prefix,
  });
  t.teardown(() => events.close());
  await events.waitUntilReady();
  const failed = new Promise<string>((resolve) =>
    events.once('failed', ({ failedReason }) => resolve(failedReason)),
  );
  const called = good.nextCall();
  await startTestRole(t, 'scheduler', config, { tickHandlers: [bad, good.handler] });
  await called;
  t.match(await failed, /Tick handlers failed: bad: disk on fire/);
  t.equal(good.calls.length, 1);
});
