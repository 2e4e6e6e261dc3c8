import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import t from 'tap';
import { createExecProcessor } from '../../processors/exec.ts';
import { cancelExecution } from '../../queues/exec/state.ts';
import type { ExecJobPayload, ExecResponse } from '../../queues/schemas/exec.ts';
import { REDIS_URL, testPrefix, wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

// A cancel that lands after a worker picked the job up but before the run registered itself
// meets no running controller: only the flag, read when the run begins, can stop it. The flag
// must be read under the key the cancel wrote (a review found the two had drifted apart).
t.test('a cancel between pick-up and the start of the run stops it', async (t) => {
  const prefix = testPrefix();
  t.teardown(() => wipePrefix(prefix));
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.disconnect());
  // Options, not clients: BullMQ closes the connections it made itself.
  const connection = () => ({ url: REDIS_URL });
  const queue = new Queue('exec', { connection: connection(), prefix });
  t.teardown(() => queue.close());
  const exec = createExecProcessor({
    redis,
    prefix,
    execute: async (data, signal) =>
      ({
        execution_id: data.execution_id,
        correlation_id: 'race',
        success: !signal.aborted,
        error: signal.aborted ? 'cancelled' : undefined,
      }) as unknown as ExecResponse,
  });
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let pickedUp = () => {};
  const picked = new Promise<void>((resolve) => {
    pickedUp = resolve;
  });
  const worker = new Worker<ExecJobPayload>(
    'exec',
    async (job) => {
      pickedUp();
      await gate;
      return exec.processor(job);
    },
    { connection: connection(), prefix },
  );
  t.teardown(() => worker.close());
  const completed = new Promise<ExecResponse>((resolve) =>
    worker.on('completed', (_job, value) => resolve(value)),
  );
  await queue.add('exec', { execution_id: 'race-1' } as ExecJobPayload, { jobId: 'race-1' });
  await picked;
  t.equal(
    await cancelExecution(queue, redis, prefix, 'race-1'),
    'cancelling',
    'the job is locked: a flag is set',
  );
  release();
  const response = await completed;
  t.equal(response.success, false, 'the run saw the cancel');
});
