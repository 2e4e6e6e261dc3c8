import type { JobState } from 'bullmq';
import t from 'tap';
import { readJobWithState } from '../../queues/job-read.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

/** A job that completes the moment anyone first looks at it: the race, made certain. */
function completingOnFirstRead() {
  let done = false;
  const look = () => {
    const before = done;
    done = true;
    return before;
  };
  return {
    async getJobState(): Promise<JobState | 'unknown'> {
      return look() ? 'completed' : 'active';
    },
    async getJob() {
      return { returnvalue: look() ? { status: 'SUCCESS' } : undefined };
    },
  };
}

t.test('a job that completes between the two reads never reads completed without its result', async (t) => {
  const read = await readJobWithState(completingOnFirstRead(), 'x');
  t.ok(read);
  if (read?.state === 'completed') t.ok(read.job.returnvalue, 'completed comes with its result');
  else
    t.equal(
      read?.state,
      'active',
      'or it reads as still running (the caller answers 202 and is asked again)',
    );
});

t.test('no job: undefined, and the job is not read', async (t) => {
  let jobReads = 0;
  const read = await readJobWithState(
    {
      getJobState: async () => 'unknown' as const,
      getJob: async () => {
        jobReads++;
        return undefined;
      },
    },
    'gone',
  );
  t.equal(read, undefined);
  t.equal(jobReads, 0);
});

t.test('a job removed between the reads is undefined', async (t) => {
  const read = await readJobWithState(
    { getJobState: async () => 'completed' as const, getJob: async () => null },
    'removed',
  );
  t.equal(read, undefined);
});
