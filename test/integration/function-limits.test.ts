import { hostname } from 'node:os';
import Docker from 'dockerode';
import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

// Issue 9, findings 3 and 4: a result over the limit, and a reply line over the frame cap.
const docker = new Docker();
const config = testConfig(t, { POOL_MIN_IDLE: '1', POOL_MAX: '8' });
const running = await startRole('all', config, { listen: false });
const { app } = running;
const ownContainers = async () =>
  docker.listContainers({ all: true, filters: { label: [`dockhand.owner=${hostname()}/${process.pid}`] } });

t.teardown(() => running.close());

async function deploy(
  name: string,
  runtime: 'node20' | 'python3',
  handler: string,
  files: Record<string, string>,
) {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${name}`,
    payload: { runtime, handler, memoryMb: 128, timeoutMs: 30_000, code: { files } },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.statusCode} ${res.body}`);
}
const invoke = async (name: string, event: object = {}) => {
  const res = await app.inject({ method: 'POST', url: `/functions/${name}/invoke`, payload: event });
  return { res, body: res.json() };
};
const LIMIT_MESSAGE =
  /^The result is 16777218 bytes, over the 6291456-byte limit for a function result; put large data in S3\/MinIO and return its key instead\.$/;

t.test('node: a 16 MiB result is FAILED naming the limit; it never left the container', async (t) => {
  await deploy('big-node', 'node20', 'index.handler', {
    'index.js':
      'exports.handler = async (e) => (e.big ? "x".repeat(16 * 1024 * 1024) : require("node:os").hostname());',
  });
  const first = await invoke('big-node');
  t.equal(first.body.status, 'SUCCESS');
  const big = await invoke('big-node', { big: true });
  t.equal(big.body.status, 'FAILED');
  t.equal(big.body.error.errorType, 'ResultTooLarge');
  t.match(big.body.error.errorMessage, LIMIT_MESSAGE);
  t.equal(big.body.result, null);
  t.ok(big.res.body.length < 64 * 1024, `the answer is small (${big.res.body.length} bytes)`);
  const next = await invoke('big-node');
  t.equal(next.body.status, 'SUCCESS');
  t.equal(next.body.result, first.body.result, 'the bootstrap refused it: the same container serves on');
});

t.test('python: a 16 MiB result is FAILED naming the limit; the next call works', async (t) => {
  await deploy('big-py', 'python3', 'app.handler', {
    'app.py':
      'import socket\n\ndef handler(event, context):\n    return "x" * (16 * 1024 * 1024) if event.get("big") else socket.gethostname()\n',
  });
  const first = await invoke('big-py');
  t.equal(first.body.status, 'SUCCESS', JSON.stringify(first.body.error));
  const big = await invoke('big-py', { big: true });
  t.equal(big.body.status, 'FAILED');
  t.equal(big.body.error.errorType, 'ResultTooLarge');
  t.match(big.body.error.errorMessage, LIMIT_MESSAGE);
  const next = await invoke('big-py');
  t.equal(next.body.status, 'SUCCESS');
  t.equal(next.body.result, first.body.result, 'same container');
});

t.test(
  'node: 32 MiB on fd 1 after the reply mark, no newline: FAILED, container replaced, worker answers',
  async (t) => {
    await deploy('flood', 'node20', 'index.handler', {
      'index.js': `const fs = require('node:fs');
exports.handler = async (e) => {
  if (!e.flood) return require('node:os').hostname();
  const data = Buffer.concat([Buffer.from('\\x1eDH '), Buffer.alloc(32 * 1024 * 1024, 'x')]);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let offset = 0; offset < data.length; ) {
    try {
      offset += fs.writeSync(1, data, offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
  return 'flooded';
};`,
    });
    const before = await invoke('flood');
    t.equal(before.body.status, 'SUCCESS');
    const flood = await invoke('flood', { flood: true });
    t.equal(flood.body.status, 'FAILED');
    t.equal(flood.body.error.errorType, 'OutputLimitError');
    t.equal(
      flood.body.error.errorMessage,
      'The sandbox sent a reply line longer than the 10485760-byte frame limit, so the call was ended and its container replaced.',
    );
    const health = await app.inject({ method: 'GET', url: '/health' });
    t.same([health.statusCode, health.json()], [200, { status: 'ok' }], 'the worker answers');
    const after = await invoke('flood');
    t.equal(after.body.status, 'SUCCESS');
    t.not(after.body.result, before.body.result, 'another container serves the next call');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    t.match(metrics, /dockhand_pool_replaced_total\{runtime="node20"\} [1-9]/);
  },
);

t.test('closing the role leaves no Dockhand container behind', async (t) => {
  await running.close();
  t.same(await ownContainers(), []);
});
