import { Redis } from 'ioredis';
import t from 'tap';
import { README_AVAILABILITY, README_LB } from '../helpers/batch-samples.ts';
import { startTestRole, testConfig, testPrefix } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { buildLocalImage } from '../helpers/local-images.ts';
import { startRedisServer } from '../helpers/redis-server.ts';
import { startTargetServer } from '../helpers/target-server.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * A Redis that shards by key (Cluster, or a proxy in front of shards) runs a multi-key command
 * or script only when all its keys hash to one slot, and BullMQ's scripts touch several keys of
 * a queue at once. With QUEUE_PREFIX in braces ({tag}), the tag alone is hashed, so it holds
 * when every key Dockhand and BullMQ write starts with the prefix. Here every kind of work runs
 * with such a prefix on a Redis of its own, which is then listed whole: no key may lack the tag.
 */

leakCheck(t);
ensureExecInit();
const ECHO = buildLocalImage({ tag: 'dockhand-test-echo:local', binaries: ['/bin/echo', '/bin/sleep'] });

const redis = await startRedisServer();
t.teardown(() => redis.stop());
const target = await startTargetServer();
t.teardown(() => target.close());
const prefix = `{${testPrefix()}}`;
const config = testConfig(t, {
  REDIS_URL: redis.url,
  QUEUE_PREFIX: prefix,
  HTTP_JOBS_ALLOWLIST: '127.0.0.1',
  NODE_REGISTRATION_TOKEN: 'registration-token-0123456789',
});
const { app } = await startTestRole(t, 'all', config);

t.test('every kind of work runs with a hash-tagged prefix, and every key carries the tag', async (t) => {
  const job = await app.inject({ method: 'POST', url: '/jobs', payload: { url: `${target.url}/ok` } });
  t.equal(job.statusCode, 202, job.body);

  const deployed = await app.inject({
    method: 'PUT',
    url: '/functions/tagged',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: {
        files: { 'index.js': 'exports.handler = async (e) => { console.log("hi"); return { n: e.n }; };' },
      },
    },
  });
  t.equal(deployed.statusCode, 201, deployed.body);
  const invoked = await app.inject({ method: 'POST', url: '/functions/tagged/invoke', payload: { n: 1 } });
  t.match(invoked.json(), { status: 'SUCCESS', result: { n: 1 } }, 'a function call');
  const logs = await app.inject({ method: 'GET', url: `/invocations/${invoked.json().requestId}/logs` });
  t.match(logs.body, /hi/, 'its live log');

  const exec = await app.inject({
    method: 'POST',
    url: '/exec?wait=true',
    payload: {
      correlation_id: 'tagged-1',
      container: { image: ECHO, command: ['echo', 'tagged'] },
      priority: 2,
    },
  });
  t.match(exec.json(), { success: true, result: { exit_code: 0, output: 'tagged\n' } }, 'an execution');

  const batch = await app.inject({
    method: 'POST',
    url: '/batches',
    payload: {
      name: 'Tagged',
      files: { 'lb_performance.json': README_LB, 'availability_incidents.json': README_AVAILABILITY },
    },
  });
  t.equal(batch.statusCode, 201, batch.body);
  await app.inject({ method: 'POST', url: '/batches/tick' });

  const registered = await app.inject({
    method: 'POST',
    url: '/api/v1/nodes/register',
    headers: { authorization: 'Bearer registration-token-0123456789' },
    payload: {
      name: 'tagged-node',
      ip: '10.0.0.7',
      capabilities: { os: 'linux', cpu_count: 2, mem_mb: 1024, disk_mb: 1 },
    },
  });
  t.equal(registered.statusCode, 200, registered.body);
  const { node_id, node_token } = registered.json();
  const beat = await app.inject({
    method: 'POST',
    url: `/api/v1/nodes/${node_id}/heartbeat`,
    headers: { authorization: `Bearer ${node_token}` },
    payload: { cpu_usage: 1, mem_usage: 1, disk_free_mb: 1 },
  });
  t.equal(beat.statusCode, 200, beat.body);

  const id = job.json().id;
  await waitFor(
    async () => (await app.inject({ method: 'GET', url: `/jobs/${id}` })).json().status === 'succeeded',
    { what: 'the HTTP job to succeed' },
  );
  await waitFor(
    async () => {
      const list = (await app.inject({ method: 'GET', url: '/batches' })).json().batches as Array<{
        name: string;
        status: string;
      }>;
      return list.find((b) => b.name === 'Tagged')?.status === 'done';
    },
    { what: 'the batch to be scored' },
  );
  t.pass('the HTTP job and the batch finished');

  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const keys = await client.keys('*');
  t.ok(keys.length > 20, `${keys.length} keys written`);
  t.same(
    keys.filter((key) => !key.startsWith(`${prefix}:`)),
    [],
    `every key starts with ${prefix}: one slot on a sharded Redis`,
  );
  for (const queue of ['functions', 'exec', 'batches', 'http-jobs', 'scheduler']) {
    t.ok(keys.includes(`${prefix}:${queue}:meta`), `BullMQ's ${queue} queue is there`);
  }
});
