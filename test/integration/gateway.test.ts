import { readFile } from 'node:fs/promises';
import { Queue, QueueEvents } from 'bullmq';
import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { startRedisServer } from '../helpers/redis-server.ts';
import { startTargetServer } from '../helpers/target-server.ts';

leakCheck(t);
const target = await startTargetServer();
t.teardown(() => target.close());

async function waitForJob(prefix: string, jobId: string, queue = 'http-jobs') {
  const events = new QueueEvents(queue, { connection: { url: REDIS_URL }, prefix });
  const q = new Queue(queue, { connection: { url: REDIS_URL }, prefix });
  try {
    await events.waitUntilReady();
    const job = await q.getJob(jobId);
    await job?.waitUntilFinished(events).catch(() => {});
  } finally {
    await Promise.all([q.close(), events.close()]);
  }
}

t.test('an HTTP job goes from POST /jobs to succeeded, visible in /metrics', async (t) => {
  const config = testConfig(t, { HTTP_JOBS_ALLOWLIST: '127.0.0.1' });
  const { app } = await startTestRole(t, 'all', config);

  const posted = await app.inject({
    method: 'POST',
    url: '/jobs',
    payload: { url: `${target.url}/echo`, method: 'POST', headers: { 'x-test': 'yes' }, body: 'hello' },
  });
  t.equal(posted.statusCode, 202);
  const { id, status } = posted.json();
  t.equal(status, 'queued');
  t.match(id, /^[0-9a-f-]{36}$/);

  await waitForJob(config.redis.prefix, id);
  const got = await app.inject({ method: 'GET', url: `/jobs/${id}` });
  t.equal(got.statusCode, 200);
  const view = got.json();
  t.equal(view.status, 'succeeded');
  t.equal(view.progress, 100);
  t.equal(view.result.statusCode, 200);
  const echoed = JSON.parse(view.result.body);
  t.equal(echoed.method, 'POST');
  t.equal(echoed.body, 'hello');
  t.equal(echoed.headers['x-test'], 'yes');
  t.equal(view.result.bodyBytes, Buffer.byteLength(view.result.body));
  t.type(view.result.durationMs, 'number');
  t.type(view.result.headers, 'object');

  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /dockhand_jobs_completed_total\{queue="http-jobs"\} 1/);
  t.match(metrics, /dockhand_job_duration_seconds_count\{queue="http-jobs",status="completed"\} 1/);
  t.match(metrics, /dockhand_queue_jobs\{queue="http-jobs",state="completed"\} 1/);
  t.match(
    metrics,
    /dockhand_http_request_duration_seconds_count\{method="POST",route="\/jobs",status_code="202"\} 1/,
  );
  t.match(metrics, /process_cpu_user_seconds_total/);
});

t.test('a refused address fails the job at once, without retries', async (t) => {
  const config = testConfig(t);
  const { app } = await startTestRole(t, 'all', config);
  const posted = await app.inject({ method: 'POST', url: '/jobs', payload: { url: `${target.url}/ok` } });
  const { id } = posted.json();
  await waitForJob(config.redis.prefix, id);
  const view = (await app.inject({ method: 'GET', url: `/jobs/${id}` })).json();
  t.equal(view.status, 'failed');
  t.equal(view.attempts, 1, 'not retried');
  t.match(view.error, /127\.0\.0\.1 .*loopback|not in HTTP_JOBS_ALLOWLIST/);
  t.notOk(view.result);
});

t.test('bad input gets the contract error shape naming the field', async (t) => {
  const config = testConfig(t, { BODY_LIMIT_BYTES: '2048' });
  const { app } = await startTestRole(t, 'gateway', config);
  const cases: Array<[unknown, number, string, RegExp]> = [
    [{}, 400, 'body.url', /body\.url is required/],
    [{ url: 'ftp://example.com/' }, 400, 'body.url', /must be an absolute http or https URL/],
    [{ url: 'not a url' }, 400, 'body.url', /must be an absolute http or https URL/],
    [{ url: 'http://x.test/', extra: 1 }, 400, 'body.extra', /body\.extra is not a known field/],
    [{ url: 'http://x.test/', timeoutMs: 60001 }, 400, 'body.timeoutMs', /must be <= 60000/],
    [{ url: 'http://x.test/', method: 'TRACE' }, 400, 'body.method', /body\.method/],
    [{ url: 'http://x.test/', headers: { 'bad header': 'x' } }, 400, 'body.headers', /body\.headers/],
  ];
  for (const [payload, status, field, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/jobs', payload: payload as object });
    t.equal(res.statusCode, status, JSON.stringify(payload));
    const body = res.json();
    t.equal(body.error, 'validation_error');
    t.match(body.field, field);
    t.match(body.message, message);
    t.notMatch(res.body, /at .*\.ts:\d+/, 'no stack trace');
  }

  const big = await app.inject({
    method: 'POST',
    url: '/jobs',
    payload: { url: 'http://x.test/', body: 'x'.repeat(5000) },
  });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error, 'payload_too_large');

  const broken = await app.inject({
    method: 'POST',
    url: '/jobs',
    headers: { 'content-type': 'application/json' },
    payload: '{"url":',
  });
  t.equal(broken.statusCode, 400);
  t.equal(broken.json().error, 'invalid_json');

  const text = await app.inject({
    method: 'POST',
    url: '/jobs',
    headers: { 'content-type': 'text/plain' },
    payload: 'x',
  });
  t.equal(text.statusCode, 415);

  const missing = await app.inject({ method: 'GET', url: '/jobs/no-such-job' });
  t.equal(missing.statusCode, 404);
  t.same(Object.keys(missing.json()).sort(), ['error', 'message']);

  const noRoute = await app.inject({ method: 'GET', url: '/nope' });
  t.equal(noRoute.statusCode, 404);
  t.equal(noRoute.json().error, 'not_found');
});

t.test('API keys guard every route but health, ready and metrics', async (t) => {
  const config = testConfig(t, { API_KEYS: 'key-one,key-two' });
  const { app } = await startTestRole(t, 'gateway', config);
  for (const url of ['/health', '/ready', '/metrics']) {
    const res = await app.inject({ method: 'GET', url });
    t.not(res.statusCode, 401, `${url} is open`);
  }
  const none = await app.inject({ method: 'POST', url: '/jobs', payload: { url: 'http://x.test/' } });
  t.equal(none.statusCode, 401);
  t.equal(none.json().error, 'unauthorized');
  const wrong = await app.inject({
    method: 'POST',
    url: '/jobs',
    headers: { authorization: 'Bearer key-three' },
    payload: { url: 'http://x.test/' },
  });
  t.equal(wrong.statusCode, 401);
  t.match(wrong.json().message, /not valid/);
  const right = await app.inject({
    method: 'POST',
    url: '/jobs',
    headers: { authorization: 'Bearer key-two' },
    payload: { url: 'http://x.test/' },
  });
  t.equal(right.statusCode, 202);

  for (const url of ['/admin/queues', '/docs', '/openapi.json']) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 401, `${url} needs a key`);
  }
  const board = await app.inject({ method: 'GET', url: '/admin/queues' });
  t.match(board.headers['www-authenticate'], /^Basic/, 'browsers get a login prompt');
  const basic = Buffer.from('admin:key-one').toString('base64');
  const opened = await app.inject({
    method: 'GET',
    url: '/admin/queues',
    headers: { authorization: `Basic ${basic}` },
  });
  t.equal(opened.statusCode, 200);
  t.match(opened.body, /<html/i);
  const api = await app.inject({
    method: 'GET',
    url: '/admin/queues/api/queues',
    headers: { authorization: 'Bearer key-one' },
  });
  t.equal(api.statusCode, 200);
  const names = (api.json().queues as Array<{ name: string }>).map((q) => q.name).sort();
  t.same(
    names,
    ['batches', 'exec', 'functions', 'http-jobs', 'scheduler', 'sweeps'],
    'Bull Board shows every queue',
  );
});

t.test('rate limit answers 429 in the contract shape', async (t) => {
  const config = testConfig(t, { RATE_LIMIT_PER_MINUTE: '3' });
  const { app } = await startTestRole(t, 'gateway', config);
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push((await app.inject({ method: 'GET', url: '/jobs/x' })).statusCode);
  t.same(codes, [404, 404, 404, 429, 429]);
  const limited = await app.inject({ method: 'GET', url: '/jobs/x' });
  t.equal(limited.json().error, 'rate_limited');
  t.ok(limited.headers['retry-after']);
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'probes are never limited');
});

t.test('/ready says 503 when Redis is down, and routes that need it answer 503', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const running = await startRole('gateway', testConfig(t, { REDIS_URL: redis.url }), { listen: false });
  t.teardown(() => running.close());
  const ready = await running.app.inject({ method: 'GET', url: '/ready' });
  t.equal(ready.statusCode, 200);
  t.equal(ready.json().redis, 'up');
  t.match(ready.json().docker, /^(up|down)$/);

  await redis.stop();
  const down = await running.app.inject({ method: 'GET', url: '/ready' });
  t.equal(down.statusCode, 503);
  t.equal(down.json().redis, 'down');
  const post = await running.app.inject({ method: 'POST', url: '/jobs', payload: { url: 'http://x.test/' } });
  t.equal(post.statusCode, 503);
  t.equal(post.json().error, 'dependency_unavailable');
  t.equal((await running.app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'still alive');
});

t.test('/ready reports Docker and goes 503 once shutdown begins', async (t) => {
  const config = testConfig(t);
  const running = await startRole('gateway', config, { listen: false });
  const ready = await running.app.inject({ method: 'GET', url: '/ready' });
  t.equal(ready.json().docker, 'up', 'the prepared Docker engine answers');
  const during = running.app.inject({ method: 'GET', url: '/ready' }); // arrives as shutdown begins
  const closing = running.close();
  t.equal(running.close(), closing, 'close() twice returns the same promise');
  const answer = await during;
  t.equal(answer.statusCode, 503, 'not ready once shutdown begins');
  t.equal(answer.json().status, 'not_ready');
  await closing;
});

t.test('the committed OpenAPI document matches the routes', async (t) => {
  const { app } = await startTestRole(t, 'gateway', testConfig(t));
  const live = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
  const committed = JSON.parse(
    await readFile(new URL('../../openapi/openapi.json', import.meta.url), 'utf8'),
  );
  t.same(live, committed, 'openapi/openapi.json is stale: run `npm run openapi` and commit it');
  t.ok(live.paths['/jobs'].post.requestBody, 'schemas reach the document');
  t.same(live.paths['/jobs'].post.tags, ['http-jobs']);
  t.notOk(live.paths['/admin/queues'], 'Bull Board stays out of the API document');
  const docs = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200);
  t.match(docs.body, /swagger/i);
});

t.test(
  'with no worker whose Docker answers, a sync invocation is a 503 at once; Event still queues',
  async (t) => {
    const config = testConfig(t, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const { app } = await startTestRole(t, 'all', config);
    const deployed = await app.inject({
      method: 'PUT',
      url: '/functions/nodocker',
      payload: {
        runtime: 'node20',
        handler: 'index.handler',
        memoryMb: 128,
        timeoutMs: 60_000,
        code: { files: { 'index.js': 'exports.handler = async () => 1;' } },
      },
    });
    t.equal(deployed.statusCode, 201, deployed.body);
    const sync = await app.inject({ method: 'POST', url: '/functions/nodocker/invoke', payload: {} });
    t.equal(sync.statusCode, 503, 'not a 504 after the 60 s timeout and 30 s of grace');
    t.equal(sync.json().error, 'dependency_unavailable');
    t.match(sync.json().message, /No worker can run functions right now/);
    const queued = await app.inject({
      method: 'POST',
      url: '/functions/nodocker/invoke',
      headers: { 'x-invocation-type': 'Event' },
      payload: {},
    });
    t.equal(queued.statusCode, 202, 'an async call waits in the queue for a worker to come back');
  },
);
