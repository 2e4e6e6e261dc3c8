import { once } from 'node:events';
import { QueueEvents } from 'bullmq';
import Docker from 'dockerode';
import t from 'tap';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

// A function's containers end with it, in whichever process holds them: the gateway below has
// no pool, the worker beside it has no API, and they share only Redis.
const docker = new Docker();
const config = testConfig(t, { POOL_MIN_IDLE: '0' });
const { app } = await startTestRole(t, 'gateway', config);
await startTestRole(t, 'worker', config);

const source = `const fs = require('node:fs'); const os = require('node:os');
exports.handler = async (e) => {
  if (e.sleepMs) await new Promise((r) => setTimeout(r, e.sleepMs));
  if (e.write) fs.writeFileSync('/tmp/note', e.write);
  let note; try { note = fs.readFileSync('/tmp/note', 'utf8'); } catch (err) { note = err.code; }
  return { host: os.hostname(), note };
};`;
const deploy = async (name: string) => {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${name}`,
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': source } },
    },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.body}`);
  return res.json() as { version: string };
};
const invoke = async (name: string, event: object = {}) => {
  const res = await app.inject({ method: 'POST', url: `/functions/${name}/invoke`, payload: event });
  const body = res.json();
  if (body.status !== 'SUCCESS') throw new Error(`invoke ${name}: ${res.body}`);
  return body.result as { host: string; note: string };
};

/** Resolves once the container whose hostname (short id) is `host` no longer exists. */
async function removed(host: string): Promise<void> {
  const id = await docker
    .getContainer(host)
    .inspect()
    .then((info) => info.Id)
    .catch(() => undefined);
  if (!id) return;
  const events = (await docker.getEvents({
    filters: { container: [id], event: ['destroy'] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  try {
    const exists = await docker
      .getContainer(id)
      .inspect()
      .then(() => true)
      .catch(() => false);
    if (exists) await once(events, 'data');
  } finally {
    events.destroy();
  }
}
const exists = (host: string) =>
  docker
    .getContainer(host)
    .inspect()
    .then(() => true)
    .catch(() => false);

t.test('a redeploy of the same code never reuses a container, nor its /tmp', async (t) => {
  const first = await deploy('keeper');
  const wrote = await invoke('keeper', { write: 'tenant A' });
  t.equal(wrote.note, 'tenant A');
  const again = await invoke('keeper');
  t.same(again, wrote, 'the same container serves the same deploy, /tmp and all');

  const second = await deploy('keeper');
  t.not(second.version, first.version, 'the same code deployed again is a new version');
  const after = await invoke('keeper');
  t.equal(after.note, 'ENOENT', "the earlier deploy's /tmp is gone");
  t.not(after.host, wrote.host, 'another container');
  await removed(wrote.host);
  t.notOk(await exists(wrote.host), "the earlier deploy's container was removed, not left idle");
});

t.test('DELETE removes the function’s containers in the worker, idle and busy', async (t) => {
  await deploy('doomed');
  const idle = await invoke('doomed', { write: 'secret' });
  t.ok(await exists(idle.host));
  t.equal((await app.inject({ method: 'DELETE', url: '/functions/doomed' })).statusCode, 204);
  await removed(idle.host);
  t.notOk(await exists(idle.host), 'the idle container is gone');

  // Deleted while a call runs in a warm container: the call finishes, then the container goes.
  await deploy('doomed');
  const warm = await invoke('doomed');
  const events = new QueueEvents('functions', {
    connection: { url: REDIS_URL },
    prefix: config.redis.prefix,
  });
  t.teardown(() => events.close());
  await events.waitUntilReady();
  const active = once(events, 'active');
  const call = invoke('doomed', { sleepMs: 1500 });
  await active;
  t.equal((await app.inject({ method: 'DELETE', url: '/functions/doomed' })).statusCode, 204);
  const busy = await call;
  t.equal(busy.host, warm.host, 'the call ran in the warm container, to the end');
  await removed(busy.host);
  t.notOk(await exists(busy.host), 'the busy container went once its call was done');
});
