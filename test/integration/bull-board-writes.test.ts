import { QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import t from 'tap';
import type { App } from '../../api/app.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

// Real requests to Bull Board's own API (paths from @bull-board/api's routes.js), on a gateway
// with no worker: jobs stay where the test puts them.
const API = '/admin/queues/api/queues';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

function call(
  app: App,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH',
  url: string,
  key?: string,
  payload?: object,
) {
  return app.inject({ method, url, headers: key ? bearer(key) : {}, ...(payload ? { payload } : {}) });
}

t.test('nobody can add a job or change its data through Bull Board, admin or not', async (t) => {
  const config = testConfig(t, { API_KEYS: 'user-key', ADMIN_API_KEYS: 'admin-key' });
  const { app, queues, enqueue } = await startTestRole(t, 'gateway', config);
  const job = await enqueue('http-jobs', { url: 'http://x.test/' });

  for (const key of ['admin-key', 'user-key']) {
    const added = await call(app, 'POST', `${API}/batches/add`, key, {
      name: 'batches',
      data: { name: '../../../tmp/x' },
      options: {},
    });
    t.equal(added.statusCode, 403, `add refused for ${key}`);
    t.equal(added.json().error, 'forbidden');
    t.match(added.json().message, /cannot add jobs, change their data/);

    const edited = await call(app, 'PATCH', `${API}/http-jobs/${job.id}/update-data`, key, {
      jobData: { url: 'http://169.254.169.254/' },
    });
    t.equal(edited.statusCode, 403, `update-data refused for ${key}`);
  }
  t.equal(await queues.batches.count(), 0, 'no job was added');
  t.same(
    (await queues['http-jobs'].getJob(String(job.id)))?.data,
    { url: 'http://x.test/' },
    'data unchanged',
  );

  // Everything else that is neither a read nor an admin action is refused too (deny by default).
  const others: Array<['PUT' | 'PATCH', string, object?]> = [
    ['PUT', `${API}/http-jobs/empty`],
    ['PUT', `${API}/http-jobs/obliterate`, {}],
    ['PUT', `${API}/http-jobs/concurrency`, { concurrency: 1 }],
    ['PATCH', `${API}/http-jobs/${job.id}/priority`, { priority: 1 }],
    ['PUT', `${API}/scheduler/job-schedulers/dockhand-tick/run`],
  ];
  for (const [method, url, body] of others) {
    t.equal((await call(app, method, url, 'admin-key', body)).statusCode, 403, `${method} ${url}`);
  }
  t.equal(await queues['http-jobs'].count(), 1, 'the queue was not emptied');
});

t.test('retry, promote, clean, pause and resume: admin keys only', async (t) => {
  const config = testConfig(t, { API_KEYS: 'user-key', ADMIN_API_KEYS: 'admin-key' });
  const { app, queues, enqueue } = await startTestRole(t, 'gateway', config);
  const q = queues['http-jobs'];

  // A failed job to retry: a short-lived worker fails it.
  const events = new QueueEvents('http-jobs', {
    connection: { url: REDIS_URL },
    prefix: config.redis.prefix,
  });
  await events.waitUntilReady();
  const failed = await enqueue('http-jobs', { url: 'http://x.test/' });
  const worker = new Worker(
    'http-jobs',
    async () => {
      throw new UnrecoverableError('made to fail');
    },
    { connection: { url: REDIS_URL }, prefix: config.redis.prefix },
  );
  await failed.waitUntilFinished(events).catch(() => {});
  await worker.close();
  await events.close();
  t.equal(await failed.getState(), 'failed');

  const delayed = await enqueue('http-jobs', { url: 'http://x.test/' }, { delay: 3_600_000 });
  // Cleaning a whole state spares jobs younger than Bull Board's 5 s grace: this one is older.
  const old = await enqueue('http-jobs', { url: 'http://x.test/' }, { timestamp: Date.now() - 60_000 });
  const actions: Array<[string, () => Promise<boolean>]> = [
    [`${API}/http-jobs/pause`, () => q.isPaused()],
    [`${API}/http-jobs/resume`, async () => !(await q.isPaused())],
    [`${API}/http-jobs/${failed.id}/retry`, async () => (await failed.getState()) === 'waiting'],
    [`${API}/http-jobs/${delayed.id}/promote`, async () => (await delayed.getState()) === 'waiting'],
    [`${API}/http-jobs/${delayed.id}/clean`, async () => (await q.getJob(String(delayed.id))) === undefined],
    [`${API}/pause`, () => q.isPaused()],
    [`${API}/resume`, async () => !(await q.isPaused())],
    [`${API}/http-jobs/clean/waiting`, async () => (await q.getJob(String(old.id))) === undefined],
  ];
  for (const [url, done] of actions) {
    const refused = await call(app, 'PUT', url, 'user-key');
    t.equal(refused.statusCode, 403, `a plain key may not PUT ${url}`);
    t.match(refused.json().message, /Only a key in ADMIN_API_KEYS/);
    t.notOk(await done(), 'and nothing changed');
    const anonymous = await call(app, 'PUT', url);
    t.equal(anonymous.statusCode, 401, 'no key, no action');
    const allowed = await call(app, 'PUT', url, 'admin-key');
    t.ok(allowed.statusCode < 300, `an admin key may PUT ${url} (${allowed.statusCode} ${allowed.body})`);
    t.ok(await done(), 'and it took effect');
  }

  const read = await call(app, 'GET', API, 'user-key');
  t.equal(read.statusCode, 200, 'any key reads the board');
  t.ok(
    (read.json().queues as Array<{ readOnlyMode: boolean }>).every((x) => !x.readOnlyMode),
    'with admin keys configured the board shows its buttons',
  );
});

t.test('without ADMIN_API_KEYS the board is read-only for everyone', async (t) => {
  const envs: Array<Record<string, string>> = [{ API_KEYS: 'user-key' }, {}];
  for (const env of envs) {
    const config = testConfig(t, env);
    const { app, queues } = await startTestRole(t, 'gateway', config);
    const key = env.API_KEYS;
    const read = await call(app, 'GET', API, key);
    t.equal(read.statusCode, 200);
    t.ok(
      (read.json().queues as Array<{ readOnlyMode: boolean }>).every((x) => x.readOnlyMode),
      'every queue is read-only in the UI',
    );
    const pause = await call(app, 'PUT', `${API}/http-jobs/pause`, key);
    t.equal(pause.statusCode, 403, `pause refused (${key ? 'with a key' : 'auth off'})`);
    t.notOk(await queues['http-jobs'].isPaused());
    const add = await call(app, 'POST', `${API}/http-jobs/add`, key, {
      name: 'x',
      data: { url: 'file:///' },
    });
    t.equal(add.statusCode, 403, 'add refused');
    t.equal(await queues['http-jobs'].count(), 0);
  }
});
