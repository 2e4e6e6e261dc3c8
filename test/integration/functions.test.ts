import { hostname } from 'node:os';
import { QueueEvents } from 'bullmq';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { REDIS_URL, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { makeZip } from '../helpers/zip.ts';

leakCheck(t);
const docker = new Docker();
const config = testConfig(t, { POOL_MIN_IDLE: '1', POOL_MAX: '12' });
// A container left by a crashed worker on this host (its pid is gone): start-up must remove it.
const leftover = await docker.createContainer({
  Image: 'dockhand-runtime-node20:local',
  Cmd: ['/usr/bin/node', '-e', '0'],
  Labels: { dockhand: '1', 'dockhand.owner': `${hostname()}/2147483646` },
});
const running = await startRole('all', config, { listen: false });
const { app } = running;
const ownContainers = async () =>
  docker.listContainers({ all: true, filters: { label: [`dockhand.owner=${hostname()}/${process.pid}`] } });

t.teardown(() => running.close());

async function deploy(name: string, body: Record<string, unknown>) {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${name}`,
    payload: { memoryMb: 128, timeoutMs: 5000, ...body },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.statusCode} ${res.body}`);
  return res.json();
}
const node = (name: string, source: string, extra: Record<string, unknown> = {}) =>
  deploy(name, {
    runtime: 'node20',
    handler: 'index.handler',
    code: { files: { 'index.js': source } },
    ...extra,
  });
const invoke = async (name: string, event: unknown = {}) => {
  const res = await app.inject({
    method: 'POST',
    url: `/functions/${name}/invoke`,
    payload: event as object,
  });
  return { res, body: res.json() };
};

t.test('start-up removed the leftover of a crashed run', async (t) => {
  await t.rejects(leftover.inspect(), /no such container/i);
});

t.test('deploy, invoke (specialised then warm), list, update, delete', async (t) => {
  const deployed = await node(
    'hello',
    'exports.handler = async (e, c) => { console.log("hi", e.name); return { hello: e.name, rid: c.requestId, left: c.getRemainingTimeInMillis() > 0, mem: c.memoryLimitInMB }; };',
  );
  t.equal(deployed.runtime, 'node20');
  t.match(deployed.version, /^[0-9a-f]{16}$/);

  const first = await invoke('hello', { name: 'world' });
  t.equal(first.res.statusCode, 200);
  t.equal(first.body.status, 'SUCCESS');
  t.same(first.body.result, { hello: 'world', rid: first.body.requestId, left: true, mem: 128 });
  t.equal(first.body.logs, 'hi world\n');
  t.equal(first.body.coldStart, false, 'a generic warm container was specialised: no cold start');
  t.ok(
    first.body.resources.memoryUsedMb > 1,
    `memory peak measured (${first.body.resources.memoryUsedMb} MB)`,
  );
  t.type(first.body.resources.cpuUsagePercent, 'number');
  t.equal(first.body.resources.networkRxBytes, 0);
  t.match(first.body.autoTuner, { recommendation: /^\d+MB$/, tip: /./ });

  const second = await invoke('hello', { name: 'again' });
  t.equal(second.body.coldStart, false);
  // The job behind a call ends completed (a call running 100 ms is marked: async-invocations.test).
  const job = await running.queues.functions.getJob(first.body.requestId);
  t.equal(await job?.getState(), 'completed');
  t.equal(second.body.result.hello, 'again');

  const list = (await app.inject({ method: 'GET', url: '/functions' })).json();
  t.ok(list.functions.some((f: { name: string }) => f.name === 'hello'));
  t.equal((await app.inject({ method: 'GET', url: '/functions/hello' })).json().handler, 'index.handler');

  const updated = await app.inject({
    method: 'PUT',
    url: '/functions/hello',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': 'exports.handler = async () => "v2";' } },
    },
  });
  t.equal(updated.statusCode, 200, 'an update answers 200');
  t.not(updated.json().version, deployed.version);
  t.equal((await invoke('hello')).body.result, 'v2', 'the new version runs, never the old container');

  const tuning = (await app.inject({ method: 'GET', url: '/functions/hello/tuning' })).json();
  t.equal(tuning.samples, 3);
  t.ok(tuning.p95PeakMb > 0);
  t.ok(tuning.advice.recommendationMb >= 128);

  t.equal((await app.inject({ method: 'DELETE', url: '/functions/hello' })).statusCode, 204);
  t.equal((await invoke('hello')).res.statusCode, 404);
});

t.test('python from a zip, with env and print output', async (t) => {
  const zip = await makeZip([
    {
      name: 'app.py',
      content:
        'import os\nfrom lib.util import double\n\ndef handler(event, context):\n    print("got", event["n"])\n    return {"n": double(event["n"]), "greeting": os.environ["GREETING"], "rid": context.aws_request_id}\n',
    },
    { name: 'lib/__init__.py', content: '' },
    { name: 'lib/util.py', content: 'def double(x):\n    return 2 * x\n' },
  ]);
  await deploy('py', {
    runtime: 'python3',
    handler: 'app.handler',
    env: { GREETING: 'hej' },
    code: { zipBase64: zip.toString('base64') },
  });
  const { body } = await invoke('py', { n: 21 });
  t.equal(body.status, 'SUCCESS', JSON.stringify(body.error));
  t.same(body.result, { n: 42, greeting: 'hej', rid: body.requestId });
  t.equal(body.logs, 'got 21\n');
});

t.test('a thrown error is FAILED with message and stack, and the container stays warm', async (t) => {
  await node(
    'thrower',
    'exports.handler = async (e) => { if (e.fail) throw new TypeError("bad input: " + e.fail); return "fine"; };',
  );
  const failed = await invoke('thrower', { fail: 'x' });
  t.equal(failed.res.statusCode, 200);
  t.equal(failed.res.headers['x-dockhand-function-error'], 'Unhandled');
  t.equal(failed.body.status, 'FAILED');
  t.equal(failed.body.error.errorType, 'TypeError');
  t.equal(failed.body.error.errorMessage, 'bad input: x');
  t.match(failed.body.error.stack, /index\.js/);
  const after = await invoke('thrower', {});
  t.equal(after.body.result, 'fine');
  t.equal(after.body.coldStart, false, 'the same container served the next call');
});

t.test('timeout, OOM and a crash end the container; the next call still works', async (t) => {
  await node('sleeper', 'exports.handler = (e) => e.hang ? new Promise(() => {}) : "awake";', {
    timeoutMs: 400,
  });
  const slow = await invoke('sleeper', { hang: true });
  t.equal(slow.body.status, 'TIMEOUT');
  t.equal(slow.res.headers['x-dockhand-function-error'], 'Timeout');
  t.match(slow.body.error.errorMessage, /timed out after 400 ms/);
  t.equal((await invoke('sleeper', {})).body.result, 'awake');

  await node(
    'hog',
    'exports.handler = async () => { const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1)); };',
    {
      memoryMb: 64,
      timeoutMs: 10000,
    },
  );
  const oom = await invoke('hog');
  t.equal(oom.body.status, 'FAILED');
  t.equal(oom.body.error.errorType, 'OutOfMemoryError');

  await node('crasher', 'exports.handler = async (e) => { if (e.exit) process.exit(3); return "alive"; };');
  const crash = await invoke('crasher', { exit: true });
  t.equal(crash.body.status, 'FAILED');
  t.equal(crash.body.error.errorType, 'RuntimeExitError');
  t.equal((await invoke('crasher', {})).body.result, 'alive');

  // The generic stock comes back by itself after the destroyed containers.
  await waitFor(
    async () =>
      /dockhand_pool_containers\{runtime="node20",state="generic"\} 1/.test(
        (await app.inject({ method: 'GET', url: '/metrics' })).body,
      ),
    { what: 'the pool to refill its generic node20 container' },
  );
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /dockhand_pool_replaced_total\{runtime="node20"\} [3-9]/);
  t.match(metrics, /worker_jobs_processed_total\{status="TIMEOUT"\} 1/);
});

t.test('the sandbox: no network, read-only root, private /tmp, pids limit, non-root', async (t) => {
  await node(
    'probe',
    `const fs = require('node:fs'); const os = require('node:os'); const cp = require('node:child_process');
exports.handler = async (e) => {
  if (e.write) { fs.writeFileSync('/tmp/secret', 'tenant A'); return 'written'; }
  if (e.read) { try { return fs.readFileSync('/tmp/secret', 'utf8'); } catch (err) { return err.code; } }
  if (e.fork) {
    let spawned = 0, failed = 0;
    for (let i = 0; i < 150; i++) {
      try {
        const c = cp.spawn(process.execPath, ['-e', 'setTimeout(()=>{}, 60000)'], { stdio: 'ignore' });
        spawned++;
        // Each child either starts or fails to (EAGAIN at the pids limit): wait for whichever it is.
        await new Promise((r) => { c.once('spawn', r); c.once('error', () => { failed++; r(); }); });
      } catch { failed++; }
    }
    return { spawned, failed };
  }
  let rootWrite; try { fs.writeFileSync('/etc/evil', 'x'); rootWrite = 'ok'; } catch (err) { rootWrite = err.code; }
  let tmpExec; try { fs.writeFileSync('/tmp/run.sh', '#!/bin/sh'); fs.chmodSync('/tmp/run.sh', 0o755); cp.execFileSync('/tmp/run.sh'); tmpExec = 'ran'; } catch (err) { tmpExec = err.code; }
  return { interfaces: Object.keys(os.networkInterfaces()), uid: process.getuid(), rootWrite, tmpExec };
};`,
    // 150 spawns take ~1 s here, many more on a loaded machine: the limit under test is pids, not time.
    { timeoutMs: 60_000 },
  );
  const probe = (await invoke('probe', {})).body.result;
  t.same(probe.interfaces, ['lo'], 'only loopback: no route out');
  t.equal(probe.uid, 65534, 'runs as nobody');
  t.equal(probe.rootWrite, 'EROFS', 'the root filesystem is read-only');
  t.equal(probe.tmpExec, 'EACCES', '/tmp is noexec');

  t.equal((await invoke('probe', { write: true })).body.result, 'written');
  t.equal((await invoke('probe', { read: true })).body.result, 'tenant A', 'same function, same container');
  await deploy('other-tenant', {
    runtime: 'node20',
    handler: 'index.handler',
    code: {
      files: {
        'index.js':
          "exports.handler = async () => { try { return require('node:fs').readFileSync('/tmp/secret', 'utf8'); } catch (err) { return err.code; } };",
      },
    },
  });
  t.equal(
    (await invoke('other-tenant')).body.result,
    'ENOENT',
    "another function never sees this one's /tmp",
  );

  const bomb = (await invoke('probe', { fork: true })).body;
  t.equal(bomb.status, 'SUCCESS');
  t.ok(
    bomb.result.failed > 0,
    `the pids limit stopped the fork bomb (${bomb.result.spawned} spawned, ${bomb.result.failed} refused)`,
  );
});

t.test('hostile archives are refused with a 400 and nothing is stored', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    [
      'slip',
      await makeZip([{ name: 'aa/evil.js', content: 'x' }], { 'aa/evil.js': '../evil.js' }),
      /invalid relative path: ..\/evil.js|not a safe relative file path/,
    ],
    [
      'absolute',
      await makeZip([{ name: 'xetc/passwd', content: 'x' }], { 'xetc/passwd': '/etc/passwd' }),
      /absolute path: \/etc\/passwd|not a safe relative file path/,
    ],
    [
      'backslash',
      await makeZip([{ name: 'a_b.js', content: 'x' }], { 'a_b.js': 'a\\b.js' }),
      /not a safe relative file path|invalid characters/,
    ],
    [
      'newline',
      await makeZip([{ name: 'a_b.js', content: 'x' }], { 'a_b.js': 'a\nb.js' }),
      /control characters are refused/,
    ],
    ['link', await makeZip([{ name: 'link', content: '/etc/passwd', mode: 0o120777 }]), /symbolic link/],
    [
      'bomb',
      await makeZip([{ name: 'zeros.js', content: Buffer.alloc(20 * 1024 * 1024) }]),
      /zip bomb|bytes uncompressed/,
    ],
    ['garbage', Buffer.from('this is not a zip archive at all'), /not a readable zip/],
  ];
  for (const [name, zip, message] of cases) {
    const res = await app.inject({
      method: 'PUT',
      url: `/functions/bad-${name}`,
      payload: {
        runtime: 'node20',
        handler: 'index.handler',
        memoryMb: 128,
        timeoutMs: 1000,
        code: { zipBase64: zip.toString('base64') },
      },
    });
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().field, 'body.code.zipBase64', name);
    t.match(res.json().message, message, name);
    t.equal(
      (await app.inject({ method: 'GET', url: `/functions/bad-${name}` })).statusCode,
      404,
      `${name}: nothing stored`,
    );
  }
  const files = await app.inject({
    method: 'PUT',
    url: '/functions/bad-files',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 1000,
      code: { files: { '../x.js': '' } },
    },
  });
  t.equal(files.statusCode, 400);
  t.match(files.json().field, /^body\.code\.files/);
  // `.` in the old pattern stopped at the newline, hiding the `..` after it.
  const slip = await app.inject({
    method: 'PUT',
    url: '/functions/bad-newline-files',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 1000,
      code: { files: { 'index.js': '', 'a\n/../../../x.js': '' } },
    },
  });
  t.equal(slip.statusCode, 400, slip.body);
  t.equal(slip.json().field, 'body.code.files');
  t.match(slip.json().message, /control characters are refused/);
  const schema = await app.inject({
    method: 'PUT',
    url: '/functions/bad-runtime',
    payload: {
      runtime: 'cobol',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 1000,
      code: { files: { 'a.js': '' } },
    },
  });
  t.equal(schema.statusCode, 400);
  t.equal(schema.json().field, 'body.runtime');
});

t.test(
  'async invocations: 202, result by id, published on function-results; a user error with no retries configured runs once',
  async (t) => {
    await node(
      'later',
      'exports.handler = async (e) => { if (e.fail) throw new Error("nope"); return e.n * 10; };',
    );
    const sub = new Redis(REDIS_URL);
    t.teardown(() => sub.disconnect());
    const published: Array<{ requestId: string; status: string }> = [];
    await sub.subscribe('function-results');
    sub.on('message', (_channel, message) => published.push(JSON.parse(message)));
    const events = new QueueEvents('functions', {
      connection: { url: REDIS_URL },
      prefix: config.redis.prefix,
    });
    t.teardown(() => events.close());
    await events.waitUntilReady();

    const accepted = await app.inject({
      method: 'POST',
      url: '/functions/later/invoke',
      headers: { 'x-invocation-type': 'Event' },
      payload: { n: 4 },
    });
    t.equal(accepted.statusCode, 202);
    const { requestId } = accepted.json();
    const job = await running.queues.functions.getJob(requestId);
    await job?.waitUntilFinished(events);
    const got = await app.inject({ method: 'GET', url: `/invocations/${requestId}` });
    t.equal(got.statusCode, 200);
    t.equal(got.json().result, 40);

    // Event calls are retried as Lambda's are (async-invocations.test.ts); here none are asked for.
    const noRetries = await app.inject({
      method: 'PUT',
      url: '/functions/later/event-invoke-config',
      payload: { maximumRetryAttempts: 0 },
    });
    t.equal(noRetries.statusCode, 200, noRetries.body);
    const failing = await app.inject({
      method: 'POST',
      url: '/functions/later/invoke',
      headers: { 'x-invocation-type': 'Event' },
      payload: { fail: true },
    });
    const failedId = failing.json().requestId;
    const failedJob = await running.queues.functions.getJob(failedId);
    await failedJob?.waitUntilFinished(events);
    const view = (await app.inject({ method: 'GET', url: `/invocations/${failedId}` })).json();
    t.equal(view.status, 'FAILED');
    t.equal(
      (await running.queues.functions.getJob(failedId))?.attemptsMade,
      1,
      'a user error with maximumRetryAttempts 0 is not retried',
    );
    t.ok(
      published.some((p) => p.requestId === requestId && p.status === 'SUCCESS'),
      'published on function-results',
    );
    t.equal((await app.inject({ method: 'GET', url: '/invocations/nope' })).statusCode, 404);

    // What `npx dockhand enqueue functions call.json --wait` sends: no requestId, no type.
    const scripted = await running.enqueue('functions', { functionName: 'later', event: { n: 2 } });
    const scriptedResult = await scripted.waitUntilFinished(events);
    t.equal(scriptedResult.result, 20);
    t.equal(scriptedResult.requestId, scripted.id, 'the job id is the request id');
  },
);

t.test('captured output is capped per invocation and says so', async (t) => {
  await node(
    'chatty',
    'exports.handler = async () => { for (let i = 0; i < 5000; i++) console.log("x".repeat(100)); return "done"; };',
  );
  const { body } = await invoke('chatty');
  t.equal(body.status, 'SUCCESS');
  t.equal(body.logsTruncated, true);
  t.ok(body.logs.length <= 262144, `logs kept to the cap (${body.logs.length} chars)`);
  t.equal((await invoke('chatty')).body.coldStart, false, 'capping is not a failure: the container stays');
});

t.test(
  'power tuning sweep: a job with progress, then sizes, counts, a pick with its reason, and its chart',
  async (t) => {
    await node(
      'sweepme',
      'exports.handler = async (e) => { let x = 0; for (let i = 0; i < e.n; i++) x += i; return x; };',
    );
    const res = await app.inject({
      method: 'POST',
      url: '/functions/sweepme/tuning/sweep',
      payload: { memorySizes: [256, 128], invocations: 3, event: { n: 1000 }, strategy: 'cost' },
    });
    t.equal(res.statusCode, 202, res.body);
    const queued = res.json();
    t.match(queued, { functionName: 'sweepme', status: /^(queued|running)$/, progress: 0 });
    t.equal(res.headers.location, queued.location);
    t.match(queued.location, new RegExp(`^/functions/sweepme/tuning/sweeps/${queued.sweepId}$`));
    // The sweep is a job: wait for it as for any job, on its queue's events.
    const job = await running.queues.sweeps.getJob(queued.sweepId);
    const events = new QueueEvents('sweeps', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
    await events.waitUntilReady();
    await job?.waitUntilFinished(events);
    await events.close();
    const followed = await app.inject({ method: 'GET', url: queued.location });
    t.equal(followed.statusCode, 200);
    t.match(followed.json(), { status: 'done', progress: 100 });
    const sweep = followed.json().result;
    t.same(
      sweep.points.map((p: { memoryMb: number }) => p.memoryMb),
      [128, 256],
    );
    // Which size wins is decided on fixed inputs in the unit tests; here only the structure.
    for (const p of sweep.points) {
      t.same([p.runs, p.failures], [3, 0], 'the warm-up call is not counted');
      t.ok(p.durationMs > 0 && p.p90Ms >= p.p50Ms && p.costUsd > 0 && p.costPerMillionUsd > 0);
    }
    t.ok([128, 256].includes(sweep.best.memoryMb));
    t.match(sweep.reason, new RegExp(`${sweep.best.memoryMb} MB`));
    const tuning = (await app.inject({ method: 'GET', url: '/functions/sweepme/tuning' })).json();
    t.equal(tuning.samples, 0, "sweep runs do not count as the function's own invocations");
    const svg = await app.inject({ method: 'GET', url: '/functions/sweepme/tuning.svg' });
    t.equal(svg.statusCode, 200);
    t.match(svg.headers['content-type'], /image\/svg\+xml/);
    t.match(svg.body, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    t.match(svg.body, /128 MB/);
    t.equal((await app.inject({ method: 'GET', url: '/functions/hello/tuning.svg' })).statusCode, 404);
  },
);

t.test('per-function concurrency: calls beyond the limit wait their turn', async (t) => {
  await node(
    'single',
    'let busy = 0; exports.handler = async () => { busy++; const seen = busy; await new Promise((r) => setTimeout(r, 150)); busy--; return { seen, host: require("node:os").hostname() }; };',
    { concurrency: 1 },
  );
  const results = await Promise.all([invoke('single'), invoke('single'), invoke('single')]);
  t.same(
    results.map((r) => r.body.result.seen),
    [1, 1, 1],
    'never two at once in one container',
  );
  // Docker names a container's host after its id; process.pid is 1 in every container.
  const hosts = [...new Set(results.map((r) => r.body.result.host as string))];
  const ids = (await ownContainers()).map((c) => c.Id);
  t.ok(
    hosts.every((h) => ids.some((id) => id.startsWith(h))),
    `the hostnames (${hosts}) are our container ids`,
  );
  t.equal(hosts.length, 1, 'and no second container was made for them');
});

t.test('a function that asks for egress gets a network interface besides loopback', async (t) => {
  await node('egress', "exports.handler = async () => Object.keys(require('node:os').networkInterfaces());", {
    network: 'egress',
  });
  const { body } = await invoke('egress');
  t.equal(body.status, 'SUCCESS');
  t.ok(body.result.includes('eth0'), `interfaces: ${body.result}`);
});

t.test('closing the role leaves no Dockhand container behind', async (t) => {
  t.ok((await ownContainers()).length > 0, 'the pool has containers while running');
  await running.close();
  t.same(await ownContainers(), []);
});
