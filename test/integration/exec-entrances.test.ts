import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { Config } from '../../core/config.ts';
import { executionIdForCorrelation } from '../../queues/exec/submission.ts';
import type { ExecJobPayload, ExecResponse } from '../../queues/schemas/exec.ts';
import { REDIS_URL, startTestRole, testConfig, testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { runCli } from '../helpers/run-cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * The ways a request gets in and an answer gets out (POST/GET/DELETE /exec, the Redis
 * channels, the CLI), with the exec queue's processor replaced by a stand-in worker: what
 * runs the container is tested in exec.test.ts.
 */

leakCheck(t);

const alpine = { container: { image: 'alpine:latest', command: ['echo', 'hi'] } };

function execQueue(t: Test, config: Config) {
  const queue = new Queue('exec', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
  t.teardown(() => queue.close());
  return queue;
}

/** A worker that answers every exec job with a fixed successful response, once released. */
function standInWorker(t: Test, config: Config, gate?: Promise<void>) {
  const seen: string[] = [];
  const worker = new Worker(
    'exec',
    async (job: Job<ExecJobPayload>) => {
      seen.push(job.data.execution_id);
      await gate;
      const response: ExecResponse = {
        correlation_id: job.data.correlation_id,
        success: true,
        status: 'succeeded',
        result: {
          exit_code: 0,
          output: 'hi\n',
          logs: '',
          graph_update: null,
          output_files: [],
          minio_objects: [],
          metadata: { execution_time: '0.1s' },
        },
        timestamp: new Date().toISOString(),
        duration: '0.1s',
        execution_id: job.data.execution_id,
      };
      return response;
    },
    { connection: { url: REDIS_URL }, prefix: config.redis.prefix },
  );
  t.teardown(() => worker.close());
  return { worker, seen };
}

/** A client of the Exec Agent's channels, as its users have: PUBLISH and SUBSCRIBE. */
async function channelClient(t: Test, config: Config) {
  const sub = new Redis(REDIS_URL);
  const pub = new Redis(REDIS_URL);
  t.teardown(() => {
    sub.disconnect();
    pub.disconnect();
  });
  const heard: Array<Record<string, unknown>> = [];
  sub.on('message', (_c: string, m: string) => heard.push(JSON.parse(m)));
  await sub.subscribe(config.exec.channels.responses);
  return { heard, publish: (message: string) => pub.publish(config.exec.channels.requests, message) };
}

t.test('POST /exec queues the request with its priority; GET says queued; DELETE cancels it', async (t) => {
  const config = testConfig(t);
  const { app } = await startTestRole(t, 'gateway', config);
  const queue = execQueue(t, config);

  const posted = await app.inject({
    method: 'POST',
    url: '/exec',
    payload: { ...alpine, correlation_id: 'corr-1', priority: 5, unknown_field_of_an_old_client: 1 },
  });
  t.equal(posted.statusCode, 202);
  const { execution_id, correlation_id, status } = posted.json();
  t.equal(correlation_id, 'corr-1');
  t.equal(status, 'queued');
  t.equal(posted.headers.location, `/exec/${execution_id}`);
  const job = await queue.getJob(execution_id);
  t.equal(job?.opts.priority, 5);
  t.equal(job?.data.source, 'http');

  const got = await app.inject({ method: 'GET', url: `/exec/${execution_id}` });
  t.equal(got.statusCode, 202);
  t.equal(got.json().status, 'queued');

  const cancelled = await app.inject({ method: 'DELETE', url: `/exec/${execution_id}` });
  t.equal(cancelled.statusCode, 200);
  t.match(cancelled.json(), { success: false, status: 'cancelled', correlation_id: 'corr-1', execution_id });
  t.equal(await queue.getJob(execution_id), undefined, 'the queued job is gone: it will never run');
  const after = await app.inject({ method: 'GET', url: `/exec/${execution_id}` });
  t.equal(after.statusCode, 200);
  t.equal(after.json().status, 'cancelled');
  t.equal((await app.inject({ method: 'DELETE', url: `/exec/${execution_id}` })).statusCode, 409);
  t.equal((await app.inject({ method: 'DELETE', url: '/exec/no-such-execution' })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/exec/no-such-execution' })).statusCode, 404);
});

t.test('bad requests are refused with the field named, and nothing is queued', async (t) => {
  const config = testConfig(t, { EXEC_IMAGE_ALLOWLIST: 'alpine*,python', EXEC_MAX_TIMEOUT_SECONDS: '60' });
  const { app } = await startTestRole(t, 'gateway', config);
  const queue = execQueue(t, config);
  const cases: Array<[string, unknown, string]> = [
    ['no container', { input: {} }, 'container'],
    ['no image', { container: {} }, 'image'],
    ['image outside the allowlist', { container: { image: 'evil/miner:latest' } }, 'container.image'],
    ['timeout over the maximum', { ...alpine, timeout: 61 }, 'timeout'],
    ['memory over the maximum', { ...alpine, resources: { memory_mb: 1_000_000 } }, 'resources.memory_mb'],
    ['a relative working dir', { container: { image: 'alpine', working_dir: 'tmp' } }, 'working_dir'],
    ['a bad env name', { ...alpine, environment: { 'A-B': '1' } }, 'environment'],
    ['an unknown service', { ...alpine, service_access: ['redis'] }, 'service_access'],
    ['a non-local port mapping', { container: { image: 'alpine', ports: { '80': '0.0.0.0:80' } } }, 'ports'],
  ];
  for (const [what, body, field] of cases) {
    const res = await app.inject({ method: 'POST', url: '/exec', payload: body as object });
    t.equal(res.statusCode, 400, what);
    t.match(`${res.json().field} ${res.json().message}`, field, `${what}: names ${field}`);
  }
  t.equal(
    (await app.inject({ method: 'POST', url: '/exec', payload: { container: { image: 'python:3.12' } } }))
      .statusCode,
    202,
  );
  t.equal(await queue.count(), 1, 'only the good request was queued');
});

t.test('POST /exec?wait=true answers with the response', async (t) => {
  const config = testConfig(t);
  const { app } = await startTestRole(t, 'gateway', config);
  standInWorker(t, config);
  const res = await app.inject({ method: 'POST', url: '/exec?wait=true', payload: alpine });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { success: true, result: { exit_code: 0, output: 'hi\n' } });
  t.equal(
    res.json().correlation_id,
    res.json().execution_id,
    'without a correlation_id, the execution id is used',
  );
});

t.test('the bridge: every message on exec-requests is answered on exec-responses, once', async (t) => {
  const config = testConfig(t);
  await startTestRole(t, 'bridge', config);
  const queue = execQueue(t, config);
  const client = await channelClient(t, config);

  await client.publish('{not json');
  await client.publish(JSON.stringify({ correlation_id: 'bad-1', container: { command: ['true'] } }));
  await waitFor(() => client.heard.length === 2, { what: 'two error answers' });
  t.match(client.heard[0], { correlation_id: null, success: false, error: /not valid JSON/ });
  t.match(client.heard[1], { correlation_id: 'bad-1', success: false, error: /image/ });
  t.equal(await queue.count(), 0);

  // Published twice (a client retrying, or two bridges hearing it): one job, one answer.
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const { seen } = standInWorker(t, config, gate);
  const request = JSON.stringify({
    correlation_id: 'test-1',
    ...alpine,
    input: {},
    output: { return_logs: true },
  });
  await client.publish(request);
  await client.publish(request);
  const id = executionIdForCorrelation('test-1');
  await waitFor(() => seen.length === 1, { what: 'the stand-in worker to take the job' });
  release();
  await waitFor(() => client.heard.length === 3, { what: 'the answer' });
  t.match(client.heard[2], { correlation_id: 'test-1', success: true, execution_id: id });
  t.same(seen, [id], 'ran once');

  // Asked again after it ended (the answer was missed): the stored answer is published again.
  await client.publish(request);
  await waitFor(() => client.heard.length === 4, { what: 'the repeated answer' });
  t.match(client.heard[3], { correlation_id: 'test-1', success: true });
  t.same(seen, [id], 'still ran once');
});

t.test('dockhand enqueue exec takes the Exec Agent request as its users write it', async (t) => {
  const env = testEnv(t);
  const config = testConfig(t, {
    QUEUE_PREFIX: env.QUEUE_PREFIX as string,
    DATA_DIR: env.DATA_DIR as string,
  });
  standInWorker(t, config);
  const file = path.join(tempDir(t, 'req'), 'request.json');
  await writeFile(file, JSON.stringify({ correlation_id: 'cli-1', ...alpine }));
  const { code, stdout, stderr } = await runCli(['enqueue', 'exec', file, '--wait'], env).done;
  t.equal(code, 0, stderr);
  const [id, ...rest] = stdout.split('\n');
  const response = JSON.parse(rest.join('\n'));
  t.match(response, { correlation_id: 'cli-1', success: true, execution_id: id });
});
