import { Queue } from 'bullmq';
import t from 'tap';
import { REDIS_URL, testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { type RoleProcess, startRoleProcess } from '../helpers/role-process.ts';

/**
 * Several gateways and workers on one Redis, as real processes: a synchronous call waits in
 * the gateway that took it, for a result a worker anywhere publishes to that gateway's reply
 * channel (or its queue's event stream). Whichever pair it was, the caller is answered.
 */
leakCheck(t);

t.test(
  'two gateways and two workers: a sync invocation through either is answered, whichever worker ran it',
  async (t) => {
    // One call at a time per worker, so that concurrent calls spread over both.
    const env = testEnv(t, { PORT: '0', WORKER_METRICS_PORT: '0', FUNCTIONS_CONCURRENCY: '1' });
    const [g1, g2, w1, w2] = (await Promise.all([
      startRoleProcess(t, 'gateway', env),
      startRoleProcess(t, 'gateway', env),
      startRoleProcess(t, 'worker', env),
      startRoleProcess(t, 'worker', env),
    ])) as [RoleProcess, RoleProcess, RoleProcess, RoleProcess];
    const gateways = [g1, g2];
    const workers = new Map([w1, w2].map((w, i) => [w.owner, `worker ${i + 1}`]));
    const queue = new Queue('functions', { connection: { url: REDIS_URL }, prefix: env.QUEUE_PREFIX });
    t.teardown(() => queue.close());

    const deployed = await fetch(`${g1.url}/functions/echo`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        runtime: 'node20',
        handler: 'index.handler',
        memoryMb: 128,
        timeoutMs: 10_000,
        code: { files: { 'index.js': 'exports.handler = async (e) => ({ echo: e.n });' } },
      }),
    });
    const text = await deployed.text();
    t.equal(deployed.status, 201, `deployed through gateway 1${deployed.status === 201 ? '' : `: ${text}`}`);

    const invoke = async (gateway: RoleProcess, n: number) => {
      const res = await fetch(`${gateway.url}/functions/echo/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n }),
      });
      const body = (await res.json()) as { status: string; result: { echo: number }; requestId: string };
      const ranOn = (await queue.getJob(body.requestId))?.processedBy ?? '?';
      return { status: res.status, body, gateway: `gateway ${gateways.indexOf(gateway) + 1}`, ranOn };
    };

    const seen = new Set<string>();
    let n = 0;
    // Each round: two concurrent calls through each gateway. Rounds go on until every gateway
    // has been answered for a call each worker ran (bounded: the spread is not up to us).
    for (let round = 0; round < 15 && seen.size < 4; round++) {
      const calls = await Promise.all(gateways.flatMap((g) => [invoke(g, ++n), invoke(g, ++n)]));
      for (const call of calls) {
        t.equal(call.status, 200, `${call.gateway} answered`);
        t.equal(call.body.status, 'SUCCESS');
        t.ok(workers.has(call.ranOn), 'run by one of the two workers');
        seen.add(`${call.gateway} ← ${workers.get(call.ranOn)}`);
      }
      t.same(
        calls.map((c) => c.body.result.echo),
        Array.from({ length: 4 }, (_, i) => n - 3 + i),
        'each caller got its own result',
      );
    }
    t.same(
      [...seen].sort(),
      ['gateway 1 ← worker 1', 'gateway 1 ← worker 2', 'gateway 2 ← worker 1', 'gateway 2 ← worker 2'],
      'every gateway answered calls run by every worker',
    );
    t.same(await Promise.all([g1, g2, w1, w2].map((r) => r.stop())), [0, 0, 0, 0], 'all shut down cleanly');
  },
);
