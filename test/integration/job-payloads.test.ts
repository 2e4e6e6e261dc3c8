import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { type Job, Queue, QueueEvents } from 'bullmq';
import Docker from 'dockerode';
import t from 'tap';
import { queueCatalog, queueNames } from '../../queues/registry.ts';
import { README_LB } from '../helpers/batch-samples.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

// Jobs written straight into Redis, as Bull Board's "add job", another client of the same Redis
// or a job left by an older version would: enqueue() never sees them, the worker must check.
const config = testConfig(t);
const running = await startTestRole(t, 'all', config);
const connection = { url: REDIS_URL };
const raw = Object.fromEntries(
  queueNames.map((name) => [name, new Queue(name, { connection, prefix: config.redis.prefix })]),
) as Record<(typeof queueNames)[number], Queue>;
const events = Object.fromEntries(
  queueNames.map((name) => [name, new QueueEvents(name, { connection, prefix: config.redis.prefix })]),
) as Record<(typeof queueNames)[number], QueueEvents>;
await Promise.all(Object.values(events).map((e) => e.waitUntilReady()));
t.teardown(async () => {
  await Promise.all(Object.values(events).map((e) => e.close()));
  await Promise.all(Object.values(raw).map((q) => q.close()));
});

/** Adds with the queue's own defaults (attempts and backoff), waits until the job settles. */
async function addRaw(name: keyof typeof raw, data: unknown): Promise<Job> {
  const job = await raw[name].add(name, data, queueCatalog[name].jobOptions);
  await job.waitUntilFinished(events[name]).catch(() => {});
  return (await raw[name].getJob(String(job.id))) as Job;
}

t.test('a batches job named ../../../<dir> fails on its name and touches nothing outside', async (t) => {
  // A folder outside the data dir that looks like a pending batch: before the fix the worker
  // took a .lock in it, scored it and wrote result.json there.
  const outside = tempDir(t, 'outside');
  writeFileSync(path.join(outside, 'lb_performance.json'), JSON.stringify(README_LB));
  const inputsRoot = path.join(config.batches.dataDir, 'Inputs');
  const name = path.relative(inputsRoot, outside);
  t.match(name, /^\.\.\/\.\.\/\.\.\//, `the name climbs out of Inputs/ (${name})`);

  const job = await addRaw('batches', { name });
  t.equal(await job.getState(), 'failed');
  t.equal(job.attemptsMade, 1, 'not retried');
  t.match(
    job.failedReason,
    /^The batches job's data is invalid: name must be a batch folder name under Inputs\/\.$/,
  );
  t.same(readdirSync(outside), ['lb_performance.json'], 'no .lock, no result.json, no temp file outside');
  t.notOk(
    existsSync(path.join(config.batches.dataDir, 'state', 'processed.json')),
    'nothing marked processed',
  );
});

t.test('a functions job with memoryMb 20000 fails before any container is made', async (t) => {
  const deployed = await running.app.inject({
    method: 'PUT',
    url: '/functions/big',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': 'exports.handler = async () => "ran";' } },
    },
  });
  t.equal(deployed.statusCode, 201, deployed.body);
  const docker = new Docker();
  const own = () =>
    docker.listContainers({ all: true, filters: { label: [`dockhand.owner=${hostname()}/${process.pid}`] } });
  t.same(await own(), [], 'no container before');

  const job = await addRaw('functions', { functionName: 'big', memoryMb: 20000 });
  t.equal(await job.getState(), 'failed');
  t.equal(job.attemptsMade, 1, 'not retried');
  t.match(job.failedReason, /^The functions job's data is invalid: memoryMb must be <= 10240\.$/);
  t.same(await own(), [], 'no container was created');
});

t.test('an http-jobs job with a bad url fails at once, unretried', async (t) => {
  const job = await addRaw('http-jobs', { url: 'not a url' });
  t.equal(await job.getState(), 'failed');
  t.equal(job.attemptsMade, 1, 'not retried (the queue allows 3 attempts)');
  t.match(
    job.failedReason,
    /^The http-jobs job's data is invalid: url must be an absolute http or https URL\.$/,
  );
});

t.test('valid jobs added the same way still run', async (t) => {
  const job = await addRaw('scheduler', { reason: 'test' });
  t.equal(await job.getState(), 'completed');
  t.ok(job.returnvalue.handlers.batches.ok);
});
