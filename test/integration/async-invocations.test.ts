import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import t from 'tap';
import { createEventInvokeConfigStore } from '../../processors/functions/event-invoke-config.ts';
import { FUNCTION_RESULTS_CHANNEL } from '../../queues/channels.ts';
import { createDeadLetters } from '../../queues/dead-letters.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);
const docker = new Docker();
const config = testConfig(t, {
  POOL_MIN_IDLE: '0',
  // Lambda waits 1 and 2 minutes; here 50 and 100 ms.
  ASYNC_RETRY_DELAY_SECONDS: '0.05',
  // The HTTP destination below is a loopback server: allowed as HTTP jobs' tests allow theirs.
  HTTP_JOBS_ALLOWLIST: '127.0.0.1',
});
const prefix = config.redis.prefix;
const running = await startTestRole(t, 'all', config);
const { app } = running;
const redis = new Redis(REDIS_URL);
const subscriber = new Redis(REDIS_URL);
t.teardown(() => {
  redis.disconnect();
  subscriber.disconnect();
});
const deadLetters = createDeadLetters(redis, prefix);
const configs = createEventInvokeConfigStore(redis, prefix);

// Every result published on function-results and every record on the test's channels.
const results: Array<{ requestId: string; functionName: string; status: string; result: unknown }> = [];
const channelMessages = new Map<string, unknown[]>();
const destChannel = `${prefix}-dest`;
subscriber.on('message', (channel: string, raw: string) => {
  const value = JSON.parse(raw);
  if (channel === FUNCTION_RESULTS_CHANNEL) {
    if (typeof value.functionName === 'string' && value.functionName.startsWith(prefix)) results.push(value);
  } else channelMessages.set(channel, [...(channelMessages.get(channel) ?? []), value]);
});
await subscriber.subscribe(FUNCTION_RESULTS_CHANNEL, destChannel);

// Function names carry the prefix so that results of other test files on the shared channel are ignored.
const fn = (name: string) => `${prefix}-${name}`;
async function deploy(name: string, source: string, extra: Record<string, unknown> = {}) {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${fn(name)}`,
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': source } },
      ...extra,
    },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.statusCode} ${res.body}`);
}
const putConfig = (name: string, payload: Record<string, unknown>) =>
  app.inject({ method: 'PUT', url: `/functions/${fn(name)}/event-invoke-config`, payload });
async function invokeEvent(name: string, event: unknown = {}) {
  const res = await app.inject({
    method: 'POST',
    url: `/functions/${fn(name)}/invoke`,
    headers: { 'x-invocation-type': 'Event' },
    payload: event as object,
  });
  if (res.statusCode !== 202) throw new Error(`invoke ${name}: ${res.statusCode} ${res.body}`);
  return res.json().requestId as string;
}
const getInvocation = (id: string) => app.inject({ method: 'GET', url: `/invocations/${id}` });
const finished = (id: string) =>
  waitFor(
    async () => {
      const res = await getInvocation(id);
      return res.statusCode === 200 ? res.json() : undefined;
    },
    { what: `invocation ${id} to end`, timeoutMs: 20_000 },
  );
const lettersOf = async (functionName: string) =>
  (await deadLetters.recent(1000)).filter((d) => 'functionName' in d && d.functionName === functionName);

t.test(
  'a failing Event invocation is retried maximumRetryAttempts times, then dead-lettered and sent on',
  async (t) => {
    await deploy('flaky', 'exports.handler = async (e) => { throw new Error("boom " + e.n); };');
    const put = await putConfig('flaky', {
      maximumRetryAttempts: 1,
      onFailure: { type: 'channel', channel: destChannel },
    });
    t.equal(put.statusCode, 200, put.body);
    t.match(put.json(), { maximumRetryAttempts: 1, maximumEventAgeSeconds: 21_600 });

    const id = await invokeEvent('flaky', { n: 7 });
    const end = await finished(id);
    t.equal(end.status, 'FAILED');
    t.equal(results.filter((r) => r.requestId === id).length, 2, 'ran once and retried once');
    const [letter] = await lettersOf(fn('flaky'));
    t.match(letter, {
      source: 'async-invocation',
      id,
      requestId: id,
      functionName: fn('flaky'),
      event: { n: 7 },
      error: { errorType: 'Error', errorMessage: 'boom 7' },
      attempts: 2,
      condition: 'RetriesExhausted',
    });
    t.match(letter?.deadLetterId, /^[0-9a-f-]{36}$/);
    const record = (await waitFor(() => channelMessages.get(destChannel)?.[0], {
      what: 'the failure record',
    })) as Record<string, unknown>;
    t.match(record, {
      version: '1.0',
      requestContext: { requestId: id, condition: 'RetriesExhausted', approximateInvokeCount: 2 },
      requestPayload: { n: 7 },
      responseContext: { statusCode: 200, functionError: 'Unhandled' },
      responsePayload: { errorType: 'Error', errorMessage: 'boom 7' },
    });
    t.match((record.requestContext as { functionArn: string }).functionArn, `:function:${fn('flaky')}`);

    // The default (2 retries) when no config is put: three runs.
    await deploy('flaky2', 'exports.handler = async () => { throw new Error("no"); };');
    const id2 = await invokeEvent('flaky2');
    await finished(id2);
    t.equal(results.filter((r) => r.requestId === id2).length, 3, 'Lambda default: two retries');

    // A sync call is never retried.
    const sync = await app.inject({ method: 'POST', url: `/functions/${fn('flaky2')}/invoke`, payload: {} });
    t.equal(sync.json().status, 'FAILED');
    await waitFor(() => results.some((r) => r.requestId === sync.json().requestId), { what: 'its result' });
    t.equal(results.filter((r) => r.requestId === sync.json().requestId).length, 1, 'ran once');
    t.equal((await lettersOf(fn('flaky2'))).length, 1, 'only the Event call was dead-lettered');
  },
);

t.test(
  'an event older than maximumEventAgeSeconds is not run: dead-lettered as EventAgeExceeded',
  async (t) => {
    await deploy('old', 'exports.handler = async () => "ran";');
    t.equal((await putConfig('old', { maximumEventAgeSeconds: 60 })).statusCode, 200);
    const requestId = 'aged-1';
    await running.enqueue(
      'functions',
      { functionName: fn('old'), requestId, event: { x: 1 }, invocationType: 'Event' },
      { jobId: requestId, timestamp: Date.now() - 120_000 },
    );
    const end = await finished(requestId);
    t.match(end, { status: 'FAILED', error: { errorType: 'EventAgeExceeded' } }, JSON.stringify(end));
    t.equal(results.filter((r) => r.requestId === requestId).length, 0, 'the handler never ran');
    t.match(await lettersOf(fn('old')), [{ condition: 'EventAgeExceeded', attempts: 0, event: { x: 1 } }]);
  },
);

t.test('destinations: another function, an HTTP URL; a loop A → A stops', async (t) => {
  const posted: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      posted.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

  await deploy('ok', 'exports.handler = async (e) => ({ doubled: e.n * 2 });');
  await deploy('sink', 'exports.handler = async (e) => e;');
  await putConfig('ok', {
    onSuccess: { type: 'function', name: fn('sink') },
    onFailure: { type: 'http', url },
  });
  const id = await invokeEvent('ok', { n: 21 });
  const sinkRun = await waitFor(() => results.find((r) => r.functionName === fn('sink')), {
    what: 'the destination function to run',
    timeoutMs: 20_000,
  });
  t.match(sinkRun.result, {
    version: '1.0',
    requestContext: { requestId: id, condition: 'Success', approximateInvokeCount: 1 },
    requestPayload: { n: 21 },
    responsePayload: { doubled: 42 },
  });

  await deploy('ok', 'exports.handler = async () => { throw new Error("down"); };');
  await putConfig('ok', { maximumRetryAttempts: 0, onFailure: { type: 'http', url } });
  const failedId = await invokeEvent('ok', { n: 1 });
  const hook = await waitFor(() => posted[0], { what: 'the HTTP destination to be posted' });
  t.match(hook, { requestContext: { requestId: failedId, condition: 'RetriesExhausted' } });

  await deploy('loop', 'exports.handler = async () => "again";');
  await putConfig('loop', { onSuccess: { type: 'function', name: fn('loop') } });
  await invokeEvent('loop');
  await waitFor(
    async () =>
      /dockhand_destination_failures_total\{type="loop"\} 1/.test((await app.inject('/metrics')).body),
    { what: 'the loop to be stopped', timeoutMs: 60_000 },
  );
  t.equal(
    results.filter((r) => r.functionName === fn('loop')).length,
    17,
    'the first call and 16 hops, no more',
  );
});

t.test('destinations that are refused: metadata address, private names, Dockhand channels', async (t) => {
  await deploy('guarded', 'exports.handler = async () => "x";');
  const metadata = await putConfig('guarded', {
    onFailure: { type: 'http', url: 'http://169.254.169.254/latest/meta-data/' },
  });
  t.equal(metadata.statusCode, 400);
  t.equal(metadata.json().field, 'body.onFailure.url');
  const local = await putConfig('guarded', { onSuccess: { type: 'http', url: 'http://localhost.:9/' } });
  t.equal(local.statusCode, 400, 'a name that resolves to loopback is refused unless allowlisted');
  const file = await putConfig('guarded', { onSuccess: { type: 'http', url: 'file:///etc/passwd' } });
  t.equal(file.statusCode, 400);
  const internal = await putConfig('guarded', {
    onSuccess: { type: 'channel', channel: `${prefix}:invocations:cancel` },
  });
  t.equal(internal.statusCode, 400);
  t.equal(internal.json().field, 'body.onSuccess.channel');
  t.equal(
    (await putConfig('guarded', { onSuccess: { type: 'channel', channel: 'function-results' } })).statusCode,
    400,
  );
  t.equal((await putConfig('missing', {})).statusCode, 404);
  t.equal((await putConfig('guarded', { maximumRetryAttempts: 3 })).statusCode, 400);
  t.equal((await putConfig('guarded', { maximumEventAgeSeconds: 59 })).statusCode, 400);

  // Written past the route (Redis is not a trust boundary): the guard refuses it when sending.
  await configs.put(fn('guarded'), { onSuccess: { type: 'http', url: 'http://169.254.169.254/' } });
  const id = await invokeEvent('guarded');
  t.equal((await finished(id)).status, 'SUCCESS', 'a destination never fails the invocation');
  await waitFor(
    async () =>
      /dockhand_destination_failures_total\{type="http"\} [1-9]/.test((await app.inject('/metrics')).body),
    { what: 'the refused send to be counted' },
  );

  const got = await app.inject(`/functions/${fn('guarded')}/event-invoke-config`);
  t.match(got.json(), { onSuccess: { type: 'http' } });
  t.equal(
    (await app.inject({ method: 'DELETE', url: `/functions/${fn('guarded')}/event-invoke-config` }))
      .statusCode,
    204,
  );
  t.match((await app.inject(`/functions/${fn('guarded')}/event-invoke-config`)).json(), {
    maximumRetryAttempts: 2,
    maximumEventAgeSeconds: 21_600,
  });
});

t.test('cancel a running invocation: its container is removed, status CANCELLED, no retry', async (t) => {
  await deploy('spin', 'exports.handler = async () => { for (;;) {} };', { timeoutMs: 120_000 });
  await putConfig('spin', { onFailure: { type: 'channel', channel: destChannel } });
  const own = () =>
    docker.listContainers({ filters: { label: [`dockhand.owner=${hostname()}/${process.pid}`] } });
  const before = new Set((await own()).map((c) => c.Id));
  const id = await invokeEvent('spin');
  await waitFor(async () => (await getInvocation(id)).json().status === 'RUNNING', {
    what: 'the call to run',
  });
  const [container] = await waitFor(
    async () => {
      const fresh = (await own()).filter((c) => !before.has(c.Id));
      return fresh.length ? fresh : undefined;
    },
    { what: 'the call to have a container of its own' },
  );
  await waitFor(async () => (await running.queues.functions.getJob(id))?.progress === 50, {
    what: 'its job to be marked running (progress 50) once it has run 100 ms',
  });
  const records = channelMessages.get(destChannel)?.length ?? 0;

  const cancel = await app.inject({ method: 'DELETE', url: `/invocations/${id}` });
  t.ok([200, 202].includes(cancel.statusCode), `answered ${cancel.statusCode}`);
  const end = await finished(id);
  t.equal(end.status, 'CANCELLED');
  const listed = await app.inject({
    method: 'GET',
    url: `/invocations?function=${fn('spin')}&status=CANCELLED`,
  });
  t.match(listed.json().invocations, [{ requestId: id, status: 'CANCELLED' }], 'listed as CANCELLED');
  await waitFor(
    () =>
      docker
        .getContainer(container?.Id as string)
        .inspect()
        .then(
          () => false,
          () => true,
        ),
    { what: 'the container to be removed' },
  );
  t.equal((await app.inject({ method: 'DELETE', url: `/invocations/${id}` })).statusCode, 409);
  t.equal(results.filter((r) => r.requestId === id).length, 1, 'not retried');
  t.equal((await lettersOf(fn('spin'))).length, 0, 'not dead-lettered');
  t.equal(channelMessages.get(destChannel)?.length ?? 0, records, 'no destination');

  // A sync caller waiting on a call that is cancelled hears CANCELLED.
  const sync = app.inject({ method: 'POST', url: `/functions/${fn('spin')}/invoke`, payload: {} });
  const syncId = await waitFor(
    async () =>
      (await running.queues.functions.getJobs(['active'])).find((j) => j.data.functionName === fn('spin'))
        ?.id,
    { what: 'the sync call to start' },
  );
  await waitFor(async () => (await getInvocation(syncId)).json().status === 'RUNNING', { what: 'it to run' });
  await app.inject({ method: 'DELETE', url: `/invocations/${syncId}` });
  const answer = await sync;
  t.equal(answer.statusCode, 200);
  t.equal(answer.json().status, 'CANCELLED');
});

t.test('cancel a queued invocation: removed, never runs; ids of other kinds are refused', async (t) => {
  // A gateway with no worker on a prefix of its own: the call stays queued.
  const lone = testConfig(t, { POOL_MIN_IDLE: '0' });
  const gateway = await startTestRole(t, 'gateway', lone);
  const put = await gateway.app.inject({
    method: 'PUT',
    url: '/functions/queued',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': 'exports.handler = async () => 1;' } },
    },
  });
  t.equal(put.statusCode, 201);
  const inv = await gateway.app.inject({
    method: 'POST',
    url: '/functions/queued/invoke',
    headers: { 'x-invocation-type': 'Event' },
    payload: {},
  });
  const id = inv.json().requestId;
  const cancel = await gateway.app.inject({ method: 'DELETE', url: `/invocations/${id}` });
  t.equal(cancel.statusCode, 200);
  t.match(cancel.json(), { requestId: id, functionName: 'queued', status: 'CANCELLED' });
  t.equal(await gateway.queues.functions.getJob(id), undefined, 'its job is gone');
  t.match((await gateway.app.inject(`/invocations/${id}`)).json(), { status: 'CANCELLED' });
  t.equal((await gateway.app.inject({ method: 'DELETE', url: `/invocations/${id}` })).statusCode, 409);
  t.equal((await gateway.app.inject({ method: 'DELETE', url: '/invocations/nope-1' })).statusCode, 404);

  // Job-id injection: BullMQ's own key names, integers, separators.
  for (const bad of ['meta', 'id', '123', 'a:b', '.x', 'wait'])
    t.equal(
      (await gateway.app.inject({ method: 'DELETE', url: `/invocations/${encodeURIComponent(bad)}` }))
        .statusCode,
      400,
      `refused: ${bad}`,
    );
  // Another queue's job under the same id is not an invocation, and is left alone.
  const job = await gateway.enqueue('http-jobs', { url: 'http://127.0.0.1:9/' }, { jobId: 'other-kind-1' });
  t.equal((await gateway.app.inject({ method: 'DELETE', url: '/invocations/other-kind-1' })).statusCode, 404);
  t.equal(await job.getState(), 'waiting');
});

t.test(
  'dead letters: ids, get, delete, legacy entries, redrive once, bulk, forged entries refused',
  async (t) => {
    await deploy(
      'redo',
      'exports.handler = async (e) => { if (e.fail) throw new Error("bad"); return e.n; };',
    );
    await putConfig('redo', { maximumRetryAttempts: 0 });
    const id = await invokeEvent('redo', { fail: true, n: 1 });
    await finished(id);
    const [letter] = await lettersOf(fn('redo'));
    const deadLetterId = letter?.deadLetterId as string;
    t.match((await app.inject(`/dead-letters/${deadLetterId}`)).json(), {
      requestId: id,
      event: { fail: true },
    });
    t.ok(
      (await app.inject('/dead-letters'))
        .json()
        .deadLetters.some((d: { deadLetterId: string }) => d.deadLetterId === deadLetterId),
    );

    // The function is fixed, then the failed event is redriven: twice at once, queued once.
    await deploy('redo', 'exports.handler = async (e) => "fixed " + e.n;');
    const [a, b] = await Promise.all([
      app.inject({ method: 'POST', url: `/dead-letters/${deadLetterId}/redrive` }),
      app.inject({ method: 'POST', url: `/dead-letters/${deadLetterId}/redrive` }),
    ]);
    const codes = [a.statusCode, b.statusCode].sort();
    t.equal(codes[0], 202);
    t.ok([404, 409].includes(codes[1] as number), `the other answered ${codes[1]}`);
    const won = (a.statusCode === 202 ? a : b).json();
    t.equal(won.requestId, `redrive-${deadLetterId}`);
    t.match(await finished(won.requestId), { status: 'SUCCESS', result: 'fixed 1' });
    t.equal(results.filter((r) => r.requestId === won.requestId).length, 1, 'ran once');
    t.equal((await app.inject(`/dead-letters/${deadLetterId}`)).statusCode, 404, 'the entry is gone');

    // Bulk: two of one function, an SQS message for an existing function, one that is not an invocation.
    const add = (functionName: string, n: number) =>
      deadLetters.add({
        source: 'async-invocation',
        id: `r${n}`,
        body: '{}',
        reason: 'x',
        at: new Date().toISOString(),
        functionName,
        requestId: `r${n}`,
        event: { n },
        error: { errorType: 'Error', errorMessage: 'x' },
        attempts: 3,
        condition: 'RetriesExhausted',
      });
    await add(fn('redo'), 2);
    await add(fn('redo'), 3);
    await add(fn('gone'), 4);
    await deadLetters.add({
      source: 'sqs',
      id: 'm1',
      body: JSON.stringify({ functionName: fn('sink'), event: { from: 'sqs' } }),
      reason: 'No function.',
      at: new Date().toISOString(),
    });
    const junk = await deadLetters.add({ source: 'sqs', id: 'm2', body: 'not json', reason: 'x', at: '' });
    t.equal(
      (await app.inject({ method: 'POST', url: `/dead-letters/${junk.deadLetterId}/redrive` })).statusCode,
      400,
    );

    const [one, two] = await Promise.all([
      app.inject({ method: 'POST', url: '/dead-letters/redrive', payload: { functionName: fn('redo') } }),
      app.inject({ method: 'POST', url: '/dead-letters/redrive', payload: { functionName: fn('redo') } }),
    ]);
    t.equal(one.json().redriven + two.json().redriven, 2, 'each entry redriven once across two bulk calls');
    const sqs = (
      await app.inject({
        method: 'POST',
        url: '/dead-letters/redrive',
        payload: { functionName: fn('sink') },
      })
    ).json();
    t.equal(sqs.redriven, 1, 'the SQS message, now for an existing function (matched by its body)');
    const gone = (
      await app.inject({
        method: 'POST',
        url: '/dead-letters/redrive',
        payload: { functionName: fn('gone') },
      })
    ).json();
    t.match(
      gone,
      { redriven: 0, failed: [{ error: 'conflict', message: /No function/ }] },
      'a missing function: it stays',
    );
    t.ok((await lettersOf(fn('gone'))).length === 1);
    await waitFor(
      () => results.find((r) => r.functionName === fn('sink') && JSON.stringify(r.result).includes('sqs')),
      {
        what: 'the redriven SQS message to run',
      },
    );

    // An entry of an older version: listed under a content id, deleted by it.
    await redis.lpush(
      `${prefix}:dead-letters`,
      JSON.stringify({ source: 'sqs', id: 'old', body: 'b', reason: 'r', at: 'then' }),
    );
    const legacy = (await app.inject('/dead-letters?limit=1000'))
      .json()
      .deadLetters.find((d: { id: string }) => d.id === 'old');
    t.match(legacy?.deadLetterId, /^legacy-[0-9a-f]{32}$/);
    t.equal(
      (await app.inject({ method: 'DELETE', url: `/dead-letters/${legacy.deadLetterId}` })).statusCode,
      204,
    );
    t.equal(
      (await app.inject({ method: 'DELETE', url: `/dead-letters/${legacy.deadLetterId}` })).statusCode,
      404,
    );

    // Forged entries written straight into Redis: extra fields, a bad name, an id that is not its key.
    const forge = async (deadLetterId: string, entry: Record<string, unknown>) => {
      await redis.hset(`${prefix}:dead-letters:entries`, deadLetterId, JSON.stringify(entry));
      await redis.lpush(`${prefix}:dead-letters:ids`, deadLetterId);
    };
    const base = {
      source: 'async-invocation',
      id: 'f',
      body: '{}',
      reason: 'x',
      at: 'now',
      functionName: fn('redo'),
      requestId: 'f',
      event: {},
      error: { errorType: 'E', errorMessage: 'x' },
      attempts: 1,
      condition: 'RetriesExhausted',
    };
    const forged = [
      ['00000000-0000-4000-8000-000000000001', { ...base, replyTo: 'someone-else', memoryMb: 10240 }],
      ['00000000-0000-4000-8000-000000000002', { ...base, functionName: '../etc' }],
      [
        '00000000-0000-4000-8000-000000000003',
        { ...base, deadLetterId: '00000000-0000-4000-8000-000000000009' },
      ],
    ] as const;
    for (const [fid, entry] of forged) {
      await forge(fid, { deadLetterId: fid, ...entry });
      const res = await app.inject({ method: 'POST', url: `/dead-letters/${fid}/redrive` });
      t.equal(res.statusCode, 409, `forged ${fid} refused: ${res.json().message}`);
      t.equal(await running.queues.functions.getJob(`redrive-${fid}`), undefined, 'nothing queued');
      t.equal((await app.inject({ method: 'DELETE', url: `/dead-letters/${fid}` })).statusCode, 204);
    }
    t.equal((await app.inject('/dead-letters/not-an-id')).statusCode, 400);
  },
);
