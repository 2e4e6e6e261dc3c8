import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import t from 'tap';
import { cancelListener, createRunningJobs } from '../../queues/job-cancel.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

/** Redis as `begin` uses it: one EXISTS for the flag, counted. */
function flagStore(flagged: Set<string>) {
  const reads: string[] = [];
  const redis = {
    exists: async (key: string) => {
      reads.push(key);
      return [...flagged].some((id) => key === `p:invocations:cancel:${id}`) ? 1 : 0;
    },
  } as unknown as Redis;
  return { redis, reads };
}

t.test('while its subscriber listens, a job begins without a Redis read', async (t) => {
  const { redis, reads } = flagStore(new Set(['a']));
  const running = createRunningJobs(redis, 'p', 'invocations', { listening: () => true });
  const signal = await running.begin('a');
  t.equal(reads.length, 0, 'no flag read');
  t.notOk(signal.aborted, 'the flag is not consulted: the channel would have said so');
  t.ok(running.cancel('a'), 'a cancel for a running job stops it');
  t.ok(signal.aborted);
  running.end('a');
});

t.test('a cancel heard between pick-up and begin is not lost', async (t) => {
  const { redis } = flagStore(new Set());
  const running = createRunningJobs(redis, 'p', 'invocations', { listening: () => true });
  t.notOk(running.cancel('b'), 'not running here (yet)');
  const signal = await running.begin('b');
  t.ok(signal.aborted, 'begins already cancelled');
  running.end('b');
  t.notOk((await running.begin('b')).aborted, 'heard once: a later job of the same id runs');
  running.end('b');
  t.notOk((await running.begin('c')).aborted, 'other jobs are not touched');
  running.end('c');
});

t.test('while its subscriber is away, the flag is read', async (t) => {
  const { redis, reads } = flagStore(new Set(['d']));
  const running = createRunningJobs(redis, 'p', 'invocations', { listening: () => false });
  t.ok((await running.begin('d')).aborted, 'the flag set by the route is found');
  t.same(reads, ['p:invocations:cancel:d']);
  running.end('d');
  t.notOk((await running.begin('e')).aborted);
  running.end('e');
  const unwired = createRunningJobs(redis, 'p', 'exec-runs');
  t.ok((await unwired.begin('d')).aborted === false, 'another kind has its own keys');
  t.equal(reads.length, 3, 'without a listener, every begin reads');
});

t.test('cancels heard for jobs elsewhere are bounded', async (t) => {
  const { redis } = flagStore(new Set());
  const running = createRunningJobs(redis, 'p', 'invocations', { listening: () => true });
  for (let i = 0; i <= 10_000; i++) running.cancel(`job-${i}`);
  t.notOk((await running.begin('job-0')).aborted, 'the oldest is forgotten past 10,000');
  t.ok((await running.begin('job-10000')).aborted, 'the newest is kept');
});

t.test(
  'a job run again (a retry, a stalled job taken over) reads the flag even while listening',
  async (t) => {
    const { redis, reads } = flagStore(new Set(['f']));
    const running = createRunningJobs(redis, 'p', 'invocations', { listening: () => true });
    t.ok(
      (await running.begin('f', { rerun: true })).aborted,
      'cancelled before the worker that heard it died',
    );
    t.equal(reads.length, 1);
    running.end('f');
  },
);

t.test(
  'a cancel listener: listening once subscribed, not while away, again once subscribed anew',
  async (t) => {
    const subscriber = Object.assign(new EventEmitter(), { status: 'connecting' }) as unknown as Redis & {
      status: string;
    };
    const answers: Array<() => void> = [];
    const subscribe = () => new Promise<void>((resolve) => answers.push(resolve));
    const settle = async (k: number) => {
      answers[k]?.();
      await new Promise((resolve) => setImmediate(resolve));
    };
    const cancel = cancelListener(subscriber, subscribe);
    t.notOk(cancel.listening(), 'not before the subscription');
    (subscriber as { status: string }).status = 'ready';
    await settle(0);
    t.ok(cancel.listening(), 'subscribed');
    (subscriber as { status: string }).status = 'reconnecting';
    subscriber.emit('close');
    subscriber.emit('reconnecting');
    t.notOk(cancel.listening(), 'away: messages may be lost');
    (subscriber as { status: string }).status = 'ready';
    subscriber.emit('ready');
    t.equal(answers.length, 2, 'subscribes again itself on ready');
    t.notOk(cancel.listening(), 'back, but not yet subscribed again');
    await settle(1);
    t.ok(cancel.listening(), 'subscribed again');
    subscriber.emit('close');
    await settle(1);
    t.notOk(cancel.listening(), 'an answer about a connection gone does not count');
  },
);
