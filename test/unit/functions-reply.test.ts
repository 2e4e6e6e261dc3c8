import type { Job } from 'bullmq';
import t from 'tap';
import type { FunctionsDeps } from '../../processors/functions.ts';
import { createFunctionsProcessor } from '../../processors/functions.ts';
import type { InvocationPayload } from '../../queues/schemas/functions.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

/** A processor whose store and runner are stand-ins, its replies recorded. */
function processorWith(deps: Partial<FunctionsDeps>) {
  const replies: Array<{ kind: string; replyTo: string; jobId: string; body: unknown }> = [];
  const processor = createFunctionsProcessor({
    store: { getVersion: async () => undefined } as unknown as FunctionsDeps['store'],
    run: async () => {
      throw new Error('not reached');
    },
    history: { recent: async () => [], add: async () => {} } as unknown as FunctionsDeps['history'],
    reply: {
      result: async (replyTo, jobId, body) => replies.push({ kind: 'result', replyTo, jobId, body }),
      failure: async (replyTo, jobId, body) => replies.push({ kind: 'failure', replyTo, jobId, body }),
    },
    ...deps,
  });
  return { processor, replies };
}

const job = (data: Partial<InvocationPayload>, attempts = 1, attemptsMade = 0) =>
  ({
    id: 'job-1',
    data: { functionName: 'gone', event: {}, ...data },
    opts: { attempts },
    attemptsMade,
    updateProgress: async () => {},
  }) as unknown as Job<InvocationPayload>;

t.test('a sync call whose job fails for good: the waiting gateway is told at once', async (t) => {
  const { processor, replies } = processorWith({});
  await t.rejects(
    processor(job({ replyTo: 'gateway-1', invocationType: 'RequestResponse' })),
    /does not exist/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.match(replies, [{ kind: 'failure', replyTo: 'gateway-1', jobId: 'job-1', body: /does not exist/ }]);
});

t.test('a failure BullMQ will retry is not final: nothing is published', async (t) => {
  const store = {
    getVersion: async () => ({ name: 'f', version: 'v', runtime: 'node20', memoryMb: 128, timeoutMs: 1000 }),
  } as unknown as FunctionsDeps['store'];
  const { processor, replies } = processorWith({
    store,
    run: async () => {
      throw new Error('Docker went away.');
    },
  });
  await t.rejects(
    processor(job({ replyTo: 'gateway-1', invocationType: 'RequestResponse' }, 3, 0)),
    /Docker/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.same(replies, [], 'a retry may still answer');
  await t.rejects(
    processor(job({ replyTo: 'gateway-1', invocationType: 'RequestResponse' }, 3, 2)),
    /Docker/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.match(replies, [{ kind: 'failure', body: /Docker went away/ }], 'the last attempt is final');
});

t.test('a job without replyTo (CLI, SQS) publishes nothing', async (t) => {
  const { processor, replies } = processorWith({});
  await t.rejects(processor(job({ invocationType: 'RequestResponse' })), /does not exist/);
  t.same(replies, []);
});
