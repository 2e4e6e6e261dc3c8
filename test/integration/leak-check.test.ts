import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import t from 'tap';
import { wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);
const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/leaky-file.ts');
const ROOT = path.resolve(import.meta.dirname, '../..');

/** Runs the leaky file in a child process of its own, as tap runs a test file. */
async function runLeaky(leak: string) {
  const prefix = `t${randomBytes(5).toString('hex')}`;
  const child = spawn(process.execPath, ['--import=tsx', FIXTURE], {
    cwd: ROOT,
    // Not the runner's TAP_* variables: the child is a file of its own, not a subtest of this one.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LEAK: leak, LEAK_PREFIX: prefix },
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const [code] = await once(child, 'exit');
  await wipePrefix(prefix);
  return { code, output, line: /leaked: .*/.exec(output)?.[0] ?? '', pid: child.pid as number };
}

// All at once: each is a second of start-up, and they share nothing.
const runs = {
  none: runLeaky('none'),
  worker: runLeaky('worker'),
  redis: runLeaky('redis'),
  tempdir: runLeaky('tempdir'),
  container: runLeaky('container'),
};
const others = (line: string, except: string) =>
  ['BullMQ Worker', 'Redis client', 'temp dir', 'Dockhand container'].filter(
    (kind) => kind !== except && line.includes(kind),
  );

t.test('a file that closes everything it opened passes', async (t) => {
  const run = await runs.none;
  if (run.code !== 0) t.comment(run.output);
  t.equal(run.code, 0, 'exits 0');
  t.equal(run.line, '', 'reports nothing');
});

t.test('a Worker left running fails the file, named with its queue', async (t) => {
  const run = await runs.worker;
  t.equal(run.code, 1);
  t.match(run.line, /BullMQ Worker of queue "leaky", prefix t[0-9a-f]+, on Redis 127\.0\.0\.1:\d+/);
  t.same(others(run.line ?? '', 'BullMQ Worker'), ['Redis client'], 'and its command connection, no more');
});

t.test('an ioredis client left connected fails the file', async (t) => {
  const run = await runs.redis;
  t.equal(run.code, 1);
  t.match(run.line, /^leaked: Redis client on 127\.0\.0\.1:\d+, unnamed/);
  t.same(others(run.line ?? '', 'Redis client'), []);
});

t.test('a temp dir left behind fails the file, and is removed', async (t) => {
  const run = await runs.tempdir;
  t.equal(run.code, 1);
  t.match(run.line, new RegExp(`^leaked: temp dir ${tmpdir()}/dockhand-test-${run.pid}-leaky-\\w+$`));
  t.same(
    readdirSync(tmpdir()).filter((d) => d.startsWith(`dockhand-test-${run.pid}-`)),
    [],
  );
});

t.test('a Dockhand container left behind fails the file, and is removed', async (t) => {
  const run = await runs.container;
  t.equal(run.code, 1);
  t.match(run.line, /^leaked: Dockhand container [0-9a-f]{12}, dockhand-runtime-node20:local, created$/);
  const left = await new Docker().listContainers({
    all: true,
    filters: { label: [`dockhand.owner=${hostname()}/${run.pid}`] },
  });
  t.same(left, []);
});
