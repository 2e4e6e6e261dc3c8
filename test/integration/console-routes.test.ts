import Fastify from 'fastify';
import t from 'tap';
import auth from '../../api/plugins/auth.ts';
import consolePlugin from '../../api/plugins/console.ts';
import errorHandler from '../../api/plugins/error-handler.ts';
import { startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * What the console needs of the server: its files (public, strict headers, a clear 503 when
 * not built) and the read routes it added to the public API (GET /queues, /invocations, /exec,
 * PATCH /functions/:name), each behind the API key like any other route.
 */

leakCheck(t);
const KEY = 'console-routes-key';
const auth_ = { authorization: `Bearer ${KEY}` };

t.test('an unbuilt console answers 503 naming the build command, without a key', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(errorHandler, { redisReady: () => true });
  await app.register(auth, { apiKeys: [KEY] });
  await app.register(consolePlugin, { root: tempDir(t, 'no-console'), keyRequired: true });
  const res = await app.inject({ method: 'GET', url: '/console/' });
  t.equal(res.statusCode, 503);
  t.equal(res.json().error, 'console_not_built');
  t.match(res.json().message, /npm run build:console/);
  t.match(res.headers['content-security-policy'], /default-src 'self'/);
  t.equal((await app.inject({ method: 'GET', url: '/console/assets/x.js' })).statusCode, 503);
  const bare = await app.inject({ method: 'GET', url: '/console' });
  t.equal(bare.statusCode, 302);
  t.equal(bare.headers.location, '/console/');
  t.same((await app.inject({ method: 'GET', url: '/console/settings.json' })).json(), { keyRequired: true });
});

t.test('the read routes the console uses, behind the key', async (t) => {
  const config = testConfig(t, { API_KEYS: KEY });
  const { app } = await startTestRole(t, 'all', config);

  t.equal((await app.inject({ method: 'GET', url: '/queues' })).statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: '/invocations' })).statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: '/exec' })).statusCode, 401);
  // The console's files are public; a path under it that tries to climb out is not served.
  t.equal((await app.inject({ method: 'GET', url: '/console/settings.json' })).statusCode, 200);
  const climb = await app.inject({ method: 'GET', url: '/console/..%2f..%2fpackage.json' });
  t.not(climb.statusCode, 200);
  t.notMatch(climb.body, /"dependencies"/);

  const queues = await app.inject({ method: 'GET', url: '/queues', headers: auth_ });
  t.equal(queues.statusCode, 200);
  const names = queues.json().queues.map((q: { name: string }) => q.name);
  t.ok(names.includes('functions') && names.includes('exec') && names.includes('batches'));
  t.match(queues.json().queues[0], { waiting: Number, active: Number, failed: Number, paused: Boolean });

  const deployed = await app.inject({
    method: 'PUT',
    url: '/functions/listed',
    headers: auth_,
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      env: { SECRET: 's3cret' },
      code: { files: { 'index.js': 'exports.handler = async () => ({ ok: true });' } },
    },
  });
  t.equal(deployed.statusCode, 201);
  const queued = await app.inject({
    method: 'POST',
    url: '/functions/listed/invoke',
    headers: { ...auth_, 'x-invocation-type': 'Event' },
    payload: { a: 1 },
  });
  t.equal(queued.statusCode, 202);
  const { requestId } = queued.json();
  const listed = await waitFor(
    async () => {
      const res = await app.inject({ method: 'GET', url: '/invocations?function=listed', headers: auth_ });
      const found = res.json().invocations.find((i: { requestId: string }) => i.requestId === requestId);
      return found?.status === 'SUCCESS' ? found : undefined;
    },
    { what: 'the queued invocation listed as SUCCESS', timeoutMs: 60_000 },
  );
  t.match(listed, { functionName: 'listed', source: 'http', durationMs: Number, coldStart: Boolean });
  const other = await app.inject({ method: 'GET', url: '/invocations?function=nothing', headers: auth_ });
  t.same(other.json().invocations, []);
  const failedOnly = await app.inject({ method: 'GET', url: '/invocations?status=FAILED', headers: auth_ });
  t.same(failedOnly.json().invocations, []);
  const badQuery = await app.inject({ method: 'GET', url: '/invocations?limit=100000', headers: auth_ });
  t.equal(badQuery.statusCode, 400);

  // PATCH keeps the code and the env, changes the memory, makes a new version.
  const before = (await app.inject({ method: 'GET', url: '/functions/listed', headers: auth_ })).json();
  const patched = await app.inject({
    method: 'PATCH',
    url: '/functions/listed',
    headers: auth_,
    payload: { memoryMb: 256 },
  });
  t.equal(patched.statusCode, 200);
  t.equal(patched.json().memoryMb, 256);
  t.equal(patched.json().codeSha256, before.codeSha256, 'same code');
  t.not(patched.json().version, before.version, 'a new version');
  t.equal(patched.json().env.SECRET, '***', 'env values masked for a non-admin key');
  const after = await app.inject({
    method: 'POST',
    url: '/functions/listed/invoke',
    headers: auth_,
    payload: {},
  });
  t.equal(after.json().status, 'SUCCESS', 'still runs with its code');
  for (const payload of [{}, { runtime: 'python3' }, { memoryMb: 1 }, { code: { files: {} } }]) {
    const res = await app.inject({ method: 'PATCH', url: '/functions/listed', headers: auth_, payload });
    t.equal(res.statusCode, 400, `PATCH ${JSON.stringify(payload)} is refused`);
  }
  const missing = await app.inject({
    method: 'PATCH',
    url: '/functions/nope',
    headers: auth_,
    payload: { memoryMb: 256 },
  });
  t.equal(missing.statusCode, 404);

  const execs = await app.inject({ method: 'GET', url: '/exec?limit=5', headers: auth_ });
  t.equal(execs.statusCode, 200);
  t.same(execs.json().executions, []);
});
