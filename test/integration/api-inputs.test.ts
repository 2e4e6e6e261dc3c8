import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Worker } from 'bullmq';
import t from 'tap';
import { NO_FAILURE_REASON } from '../../api/routes/jobs.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

// Hostile request inputs the gateway must refuse before they reach BullMQ, Redis or a stack
// overflow. A gateway role works no queue: jobs stay where the test puts them.
leakCheck(t);
const config = testConfig(t);
const t0 = t;
const running = await startTestRole(t0, 'gateway', config);
const { app } = running;

const deployBody = (env: Record<string, string> = {}) => ({
  runtime: 'node20',
  handler: 'index.handler',
  memoryMb: 128,
  timeoutMs: 1000,
  env,
  code: { files: { 'index.js': 'exports.handler = async () => 1;' } },
});

t.test("job ids that name BullMQ's own keys are refused before BullMQ sees them", async (t) => {
  // Jobs on both queues, so their meta, id, events and wait keys exist.
  t.equal(
    (await app.inject({ method: 'POST', url: '/jobs', payload: { url: 'http://x.test/' } })).statusCode,
    202,
  );
  t.equal(
    (await app.inject({ method: 'PUT', url: '/functions/ids', payload: deployBody() })).statusCode,
    201,
  );
  const event = await app.inject({
    method: 'POST',
    url: '/functions/ids/invoke',
    headers: { 'x-invocation-type': 'Event' },
    payload: {},
  });
  t.equal(event.statusCode, 202);

  for (const id of ['meta', 'id', 'events', 'wait', 'marker', 'stalled-check', 'x:logs', '42']) {
    const routes: Array<[string, string]> = [
      [`/jobs/${encodeURIComponent(id)}`, 'params.id'],
      [`/invocations/${encodeURIComponent(id)}`, 'params.requestId'],
    ];
    for (const [url, field] of routes) {
      const res = await app.inject({ method: 'GET', url });
      t.equal(res.statusCode, 400, `${url}: ${res.body}`);
      t.equal(res.json().error, 'validation_error', url);
      t.equal(res.json().field, field, url);
      t.match(res.json().message, /must be a job id: a UUID, or letters/, url);
    }
  }
  t.equal(
    (await app.inject({ method: 'GET', url: `/jobs/${randomUUID()}` })).statusCode,
    404,
    'a UUID is fine',
  );
  t.equal(
    (await app.inject({ method: 'GET', url: '/invocations/sqs-1' })).statusCode,
    404,
    'so is a caller id',
  );
  t.equal(
    (await app.inject({ method: 'GET', url: `/invocations/${event.json().requestId}` })).statusCode,
    202,
    'a real invocation is still found',
  );

  for (const jobId of ['meta', 'events', '7', 'a:b']) {
    await t.rejects(
      running.enqueue('http-jobs', { url: 'http://x.test/' }, { jobId }),
      { code: 'validation_error', field: 'jobId' },
      `enqueue refuses the caller id ${jobId}`,
    );
  }
});

t.test('a JSON body nested deeper than 64 levels is a 400, not a stack overflow', async (t) => {
  const deep = (n: number, inner = '1') => '['.repeat(n) + inner + ']'.repeat(n);
  const hostile = [
    ['/jobs', deep(100_000)],
    ['/jobs', `{"url":"http://x.test/","headers":${deep(100_000)}}`],
    ['/functions/ids/invoke', deep(100_000)],
    ['/functions/ids/invoke', `{"a":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`],
  ];
  for (const [url, payload] of hostile) {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', 'x-invocation-type': 'Event' },
      payload,
    });
    t.equal(res.statusCode, 400, `${url}: ${res.body}`);
    t.same(res.json(), {
      error: 'validation_error',
      message: 'The JSON body is nested deeper than 64 levels.',
      field: 'body',
    });
  }
  const fine = await app.inject({
    method: 'POST',
    url: '/functions/ids/invoke',
    headers: { 'content-type': 'application/json', 'x-invocation-type': 'Event' },
    payload: `{"event":${deep(63)},"text":"${'['.repeat(1000)}"}`,
  });
  t.equal(fine.statusCode, 202, '64 levels, and brackets inside strings, are fine');
  const poisoned = await app.inject({
    method: 'POST',
    url: '/functions/ids/invoke',
    headers: { 'content-type': 'application/json', 'x-invocation-type': 'Event' },
    payload: '{"__proto__":{"polluted":true}}',
  });
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is still refused');
});

t.test('a failed job always says why, even when its error had no message', async (t) => {
  const job = await running.enqueue('http-jobs', { url: 'http://x.test/' }, { attempts: 1 });
  const worker = new Worker(
    'http-jobs',
    async () => {
      throw new Error('');
    },
    { connection: { url: REDIS_URL }, prefix: config.redis.prefix },
  );
  t.teardown(() => worker.close());
  while (true) {
    const [failed] = await once(worker, 'failed');
    if (failed.id === job.id) break;
  }
  const view = (await app.inject({ method: 'GET', url: `/jobs/${job.id}` })).json();
  t.equal(view.status, 'failed');
  t.equal(view.error, NO_FAILURE_REASON);
});

t.test('env values are masked everywhere but GET /functions/:name for an admin key', async (t) => {
  const put = await app.inject({
    method: 'PUT',
    url: '/functions/secretive',
    payload: deployBody({ DB_PASSWORD: 'hunter2', MODE: 'prod' }),
  });
  t.equal(put.statusCode, 201);
  const list = await app.inject({ method: 'GET', url: '/functions' });
  t.notMatch(list.body, /hunter2|prod/, 'no value in the listing');
  const listed = list.json().functions.find((f: { name: string }) => f.name === 'secretive');
  t.same(listed.env, { DB_PASSWORD: '***', MODE: '***' }, 'names kept, values masked');
  const open = (await app.inject({ method: 'GET', url: '/functions/secretive' })).json();
  t.same(open.env, { DB_PASSWORD: '***', MODE: '***' }, 'with auth off nobody is an admin');

  const keyed = await startTestRole(
    t,
    'gateway',
    testConfig(t, { API_KEYS: 'user-key', ADMIN_API_KEYS: 'boss-key' }),
  );
  const as = (key: string) =>
    keyed.app.inject({
      method: 'GET',
      url: '/functions/secretive',
      headers: { authorization: `Bearer ${key}` },
    });
  await keyed.app.inject({
    method: 'PUT',
    url: '/functions/secretive',
    headers: { authorization: 'Bearer user-key' },
    payload: deployBody({ DB_PASSWORD: 'hunter2', MODE: 'prod' }),
  });
  t.same(
    (await as('user-key')).json().env,
    { DB_PASSWORD: '***', MODE: '***' },
    'an API key sees names only',
  );
  t.same(
    (await as('boss-key')).json().env,
    { DB_PASSWORD: 'hunter2', MODE: 'prod' },
    'an admin key sees values',
  );
});
