import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import t from 'tap';
import { REDIS_URL, startTestRole, testConfig, testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { freePort } from '../helpers/redis-server.ts';
import { CLI, runCli } from '../helpers/run-cli.ts';
import { startTargetServer } from '../helpers/target-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);
const target = await startTargetServer();
t.teardown(() => target.close());

const run = runCli;

/** Teardown for a worker a failed test may leave running: kill it and wait until it is gone. */
async function killIfRunning(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

t.test('enqueue from the CLI: id, --wait result, exit codes', async (t) => {
  const env = testEnv(t, { HTTP_JOBS_ALLOWLIST: '127.0.0.1' });
  const config = testConfig(t, env);
  await startTestRole(t, 'worker', config);
  const file = path.join(tempDir(t, 'job'), 'job.json');
  await writeFile(file, JSON.stringify({ url: `${target.url}/ok` }));

  const queued = await run(['enqueue', 'http-jobs', file], env).done;
  t.equal(queued.code, 0, queued.stderr);
  t.match(queued.stdout.trim(), /^[0-9a-f-]{36}$/);

  const waited = await run(
    ['enqueue', 'http-jobs', '-', '--wait'],
    env,
    JSON.stringify({ url: `${target.url}/ok` }),
  ).done;
  t.equal(waited.code, 0, waited.stderr);
  const [id, ...rest] = waited.stdout.split('\n');
  t.match(id, /^[0-9a-f-]{36}$/);
  const result = JSON.parse(rest.join('\n'));
  t.equal(result.statusCode, 200);
  t.equal(result.body, 'ok');

  const refused = await run(
    ['enqueue', 'http-jobs', '-', '--wait'],
    env,
    JSON.stringify({ url: 'http://169.254.169.254/' }),
  ).done;
  t.equal(refused.code, 1, 'a failed job exits 1');
  t.match(refused.stderr, /failed: .*169\.254\.169\.254/);

  const own = await run(
    ['enqueue', 'http-jobs', '-', '--job-id', 'my-key'],
    env,
    JSON.stringify({ url: `${target.url}/ok` }),
  ).done;
  t.equal(own.stdout.trim(), 'my-key', 'a caller-chosen id is kept (idempotency key)');

  const bad = await run(['enqueue', 'http-jobs', '-'], env, JSON.stringify({ url: 'ftp://x' })).done;
  t.equal(bad.code, 2);
  t.equal(bad.stderr.trim(), 'dockhand: url must be an absolute http or https URL.');

  const notJson = await run(['enqueue', 'http-jobs', '-'], env, '{nope').done;
  t.equal(notJson.code, 2);
  t.match(notJson.stderr, /stdin is not valid JSON/);

  const noQueue = await run(['enqueue', 'nope', '-'], env, '{}').done;
  t.equal(noQueue.code, 2);
  t.match(noQueue.stderr, /No queue nope; queues are functions, sweeps, exec, batches, http-jobs, scheduler/);

  const badConfig = await run(['enqueue', 'http-jobs', '-'], { ...env, REDIS_URL: 'nope' }, '{}').done;
  t.equal(badConfig.code, 2);
  t.equal(
    badConfig.stderr.trim(),
    'dockhand: REDIS_URL must be a redis:// or rediss:// URL: redis[s]://[user:password@]host[:port][/db] (got "nope").',
  );

  const noRedis = await run(
    ['enqueue', 'http-jobs', '-'],
    { ...env, REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
    '{"url":"http://x.test/"}',
  ).done;
  t.equal(noRedis.code, 1);
  t.match(
    noRedis.stderr,
    /^dockhand: Redis at redis:\/\/127\.0\.0\.1:\d+ does not answer .*set REDIS_URL\.\n$/,
  );
  t.notMatch(noRedis.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a role with a bad REDIS_URL or DOCKER_HOST stops at start-up with one line', async (t) => {
  const env = testEnv(t);
  const [redis, docker] = await Promise.all([
    run(['gateway'], { ...env, REDIS_URL: 'nonsense' }).done,
    run(['worker'], { ...env, DOCKER_HOST: 'nonsense' }).done,
  ]);
  t.equal(redis.code, 2);
  t.match(
    redis.stderr,
    /^dockhand: REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL.* \(got "nonsense"\)\.\n$/,
  );
  t.equal(docker.code, 2);
  t.match(docker.stderr, /^dockhand: DOCKER_HOST must be one of unix:\/\/\/path, .* \(got "nonsense"\)\.\n$/);
});

async function waitForLog(child: ChildProcess, pattern: RegExp): Promise<void> {
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buffer += d;
      if (pattern.test(buffer)) {
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before ${pattern}: ${buffer}`)));
  });
}

t.test('SIGTERM lets an in-flight job finish before the worker exits', async (t) => {
  const env = testEnv(t, {
    HTTP_JOBS_ALLOWLIST: '127.0.0.1',
    LOG_LEVEL: 'info',
    PORT: String(await freePort()),
  });
  const worker = run(['worker'], env);
  t.teardown(() => killIfRunning(worker.child));
  await waitForLog(worker.child, /dockhand started/);

  const queue = new Queue('http-jobs', { connection: { url: REDIS_URL }, prefix: env.QUEUE_PREFIX });
  const events = new QueueEvents('http-jobs', { connection: { url: REDIS_URL }, prefix: env.QUEUE_PREFIX });
  t.teardown(async () => {
    await queue.close();
    await events.close();
  });
  await events.waitUntilReady();
  const arrived = once(target.server, 'request');
  const job = await queue.add('http-jobs', { url: `${target.url}/hold` }, { jobId: 'in-flight' });
  await arrived; // the worker is mid-request now, and stays so until the target is released
  const shuttingDown = waitForLog(worker.child, /shutting down/);
  worker.child.kill('SIGTERM');
  await shuttingDown;
  target.release();
  const finished = await job.waitUntilFinished(events);
  t.equal(finished.body, 'held', 'the job completed after the signal');
  const { code, stdout } = await worker.done;
  t.equal(code, 0, 'clean exit');
  t.match(stdout, /shutting down/);
  t.equal(await (await queue.getJob('in-flight'))?.getState(), 'completed');

  // A job added while no worker runs simply waits for the next one: nothing is lost.
  const later = await queue.add('http-jobs', { url: `${target.url}/ok` }, { jobId: 'later' });
  t.equal(await later.getState(), 'waiting');
  const second = run(['worker'], env);
  t.teardown(() => killIfRunning(second.child));
  t.equal((await later.waitUntilFinished(events)).body, 'ok', 'picked up by the next worker');
  second.child.kill('SIGTERM');
  t.equal((await second.done).code, 0);
});
