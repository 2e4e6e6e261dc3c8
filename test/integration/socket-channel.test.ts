import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import t, { type Test } from 'tap';
import { ChannelClosedError } from '../../core/errors.ts';
import { runtimeCatalog } from '../../runtimes/catalog.ts';
import { DockerSandboxDriver } from '../../runtimes/docker-sandbox.ts';
import type { Sandbox, SandboxSpec } from '../../runtimes/sandbox.ts';
import { chooseChannel, type SocketChannels } from '../../runtimes/socket-channel.ts';
import { testConfig } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// Function containers on the socket channel (runtimes/socket-channel.ts): dh-init connects the
// runtime's stdio to a unix socket the worker listens on, so frames skip dockerd and the shim.
// What the attach stream gave must still hold (order of frames and children's output, stderr,
// no leftovers), and the socket must open nothing more to the code inside.

leakCheck(t);
const docker = new Docker();
const owner = `${hostname()}/${process.pid}`;
const root = path.join(tempDir(t, 'sockets'), 's');
const { sockets } = await chooseChannel('socket', undefined, { initPath: ensureExecInit(), root, owner });
const driver = new DockerSandboxDriver(docker, owner, { sockets });
const catalog = runtimeCatalog(testConfig(t).functions.images);
const b64 = (text: string) => Buffer.from(text).toString('base64');

async function started(t: Test, runtime: 'node20' | 'python3'): Promise<Sandbox> {
  const def = catalog[runtime];
  const sandbox = await driver.create({ image: def.image, cmd: def.cmd, memoryMb: 128 });
  t.teardown(() => sandbox.destroy());
  await sandbox.channel.waitFor('ready');
  return sandbox;
}

async function load(t: Test, sandbox: Sandbox, files: Record<string, string>) {
  const loaded = await sandbox.channel.request({
    type: 'load',
    handler: 'index.handler',
    env: {},
    files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, b64(v)])),
  });
  t.equal(loaded.ok, true, JSON.stringify(loaded.error));
}

const invoke = (sandbox: Sandbox, event: unknown = {}) =>
  sandbox.channel.request({ type: 'invoke', event, context: {}, deadlineMs: Date.now() + 20_000 });

t.test(
  "node: a child's output arrives before the reply, stderr too; the container has no attach",
  async (t) => {
    const sandbox = await started(t, 'node20');
    await load(t, sandbox, {
      'index.js': `const cp = require('node:child_process');
exports.handler = async () => {
  cp.spawnSync(process.execPath, ['-e', 'console.log("child out"); console.error("child err")'], { stdio: 'inherit' });
  return { ok: true };
};`,
    });
    for (let i = 0; i < 3; i++) {
      const reply = await invoke(sandbox);
      t.same(reply.result, { ok: true });
      const raw = sandbox.channel.takeRaw();
      t.match(raw, /child out\n/, `call ${i}: the child's stdout was there before the reply`);
    }
    const info = await docker.getContainer(sandbox.id).inspect();
    t.equal(info.Config.AttachStdin, false, 'no attach stream: dockerd carries no frame');
    t.equal(info.Config.OpenStdin, false);
    t.same(info.Config.Entrypoint, ['/.dockhand/init']);
    t.ok(
      info.HostConfig.Binds?.some((b) => b.endsWith(':/.dockhand/init:ro')),
      'dh-init is bound read-only',
    );
    t.same(readdirSync(path.join(root, `${hostname()}-${process.pid}`)), [], 'no socket left on disk');
  },
);

t.test('python: the same channel, its children included', async (t) => {
  const sandbox = await started(t, 'python3');
  await load(t, sandbox, {
    'index.py':
      'import subprocess, sys\ndef handler(event, context):\n    subprocess.run([sys.executable, "-c", "print(\\"child out\\")"])\n    return {"ok": True}\n',
  });
  const reply = await invoke(sandbox);
  t.same(reply.result, { ok: true });
  t.match(sandbox.channel.takeRaw(), /child out\n/);
});

t.test('attack: code inside cannot reach the socket again, nor change dh-init', async (t) => {
  const sandbox = await started(t, 'node20');
  await load(t, sandbox, {
    'index.js': `const net = require('node:net');
const fs = require('node:fs');
const attempt = (fn) => { try { return { ok: true, value: fn() } } catch (e) { return { ok: false, code: e.code } } };
exports.handler = async () => {
  const reconnect = await new Promise((resolve) => {
    const s = net.connect('/.dockhand/run/s');
    s.on('connect', () => { s.destroy(); resolve({ ok: true }); });
    s.on('error', (e) => resolve({ ok: false, code: e.code }));
  });
  return {
    reconnect,
    list: attempt(() => fs.readdirSync('/.dockhand/run')),
    replaceInit: attempt(() => fs.writeFileSync('/.dockhand/init', 'x')),
    plant: attempt(() => fs.writeFileSync('/.dockhand/run/s2', 'x')),
    token: [process.env.DOCKHAND_CHANNEL_TOKEN ?? '', attempt(() => fs.readFileSync('/proc/1/environ', 'latin1')).value ?? ''].join(' '),
  };
};`,
  });
  const reply = await invoke(sandbox);
  const r = reply.result as Record<string, { ok: boolean; code?: string; value?: unknown }>;
  t.equal(r.reconnect?.ok, false, `a third connection is refused (${r.reconnect?.code})`);
  t.match(r.reconnect?.code, /ENOENT|ECONNREFUSED/);
  t.ok(
    r.list?.ok === false || (Array.isArray(r.list?.value) && r.list.value.length === 0),
    'nothing to list',
  );
  t.equal(r.replaceInit?.ok, false, `dh-init is read-only (${r.replaceInit?.code})`);
  t.equal(r.plant?.ok, false, `the socket's directory is read-only (${r.plant?.code})`);
  t.notMatch(
    String(r.token),
    /DOCKHAND_CHANNEL_TOKEN|[0-9a-f]{64}/,
    'the connection token is in no environment the code can read',
  );
});

t.test('a runtime that closes its stderr keeps its channel, as it did on the attach stream', async (t) => {
  const sandbox = await started(t, 'node20');
  await load(t, sandbox, {
    'index.js': `const fs = require('node:fs');
let closed = false;
exports.handler = async () => { if (!closed) { fs.closeSync(2); closed = true; } return { ok: true }; };`,
  });
  t.same((await invoke(sandbox)).result, { ok: true });
  t.same((await invoke(sandbox)).result, { ok: true }, 'the next call is answered');
  t.notOk(sandbox.channel.closed);
});

t.test("an image's own ENTRYPOINT still runs first, under dh-init", async (t) => {
  const image = `dockhand-test-entrypoint:${process.pid}`;
  // The provided runtime's image has /usr/bin/env; node20's bootstrap is copied in beside it.
  const context = tempDir(t, 'image');
  copyFileSync(
    path.join(import.meta.dirname, '../../runtimes/node/bootstrap.mjs'),
    path.join(context, 'node.mjs'),
  );
  writeFileSync(
    path.join(context, 'Dockerfile'),
    `FROM ${catalog.provided.image}\nCOPY node.mjs /opt/node.mjs\nENTRYPOINT ["/usr/bin/env", "VIA_ENTRYPOINT=yes"]\n`,
  );
  execFileSync('docker', ['build', '-q', '-t', image, context], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
  });
  t.teardown(() =>
    docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => {}),
  );
  const sandbox = await driver.create({ image, cmd: ['/usr/bin/node', '/opt/node.mjs'], memoryMb: 128 });
  t.teardown(() => sandbox.destroy());
  await sandbox.channel.waitFor('ready');
  await load(t, sandbox, { 'index.js': 'exports.handler = async () => process.env.VIA_ENTRYPOINT ?? null;' });
  t.equal((await invoke(sandbox)).result, 'yes', 'the entrypoint ran, then the runtime');
});

t.test('auto: a socket the engine cannot reach turns the driver to the attach stream, once', async (t) => {
  const reasons: string[] = [];
  // The engine does not see this worker's sockets: every container exits before it connects.
  const unreachable = {
    listen: async () => ({
      wrap: (spec: SandboxSpec) => ({
        ...spec,
        entrypoint: ['/usr/bin/node', '-e', 'process.exit(3)'],
        cmd: [],
      }),
      connected: async (exited: Promise<unknown>) => {
        await exited;
        throw new ChannelClosedError('The function container exited before connecting to its socket.');
      },
      abandon: async () => {},
    }),
    removeLeftovers: async () => 0,
  } as unknown as SocketChannels;
  const fallback = new DockerSandboxDriver(docker, owner, {
    sockets: unreachable,
    socketFallback: (reason) => reasons.push(reason),
  });
  for (let i = 0; i < 2; i++) {
    const sandbox = await fallback.create({
      image: catalog.node20.image,
      cmd: catalog.node20.cmd,
      memoryMb: 128,
    });
    t.teardown(() => sandbox.destroy());
    await sandbox.channel.waitFor('ready');
    t.same((await invoke(sandbox)).type, 'result', `container ${i + 1} answers over the attach stream`);
    t.equal((await docker.getContainer(sandbox.id).inspect()).Config.AttachStdin, true);
  }
  t.same(reasons, ['The function container exited before connecting to its socket.'], 'told once');
  const strict = new DockerSandboxDriver(docker, owner, { sockets: unreachable });
  await t.rejects(
    strict.create({ image: catalog.node20.image, cmd: catalog.node20.cmd, memoryMb: 128 }),
    { message: /exited before connecting/ },
    'FUNCTIONS_CHANNEL=socket fails instead',
  );
});

t.test('a runtime that cannot start: ready never comes, dh-init says why, nothing is left', async (t) => {
  const sandbox = await driver.create({
    image: catalog.node20.image,
    cmd: ['/no/such/runtime'],
    memoryMb: 128,
  });
  await t.rejects(sandbox.channel.waitFor('ready', 20_000), 'the channel closes when the container exits');
  t.match(sandbox.channel.takeRaw(), /dh-init: cannot run \/no\/such\/runtime: No such file or directory/);
  t.equal((await sandbox.exited).exitCode, 127);
  await sandbox.destroy();
  const left = await docker.listContainers({ all: true, filters: { label: [`dockhand.owner=${owner}`] } });
  t.same(
    left.filter((c) => c.Id === sandbox.id),
    [],
    'the container was removed',
  );
  t.same(readdirSync(path.join(root, `${hostname()}-${process.pid}`)), [], 'no socket left');
});

t.test('destroy closes the socket: the runtime sees its stdin end and the container goes', async (t) => {
  const sandbox = await started(t, 'node20');
  await sandbox.destroy();
  await t.rejects(invoke(sandbox), 'a destroyed sandbox answers nothing');
  const gone = await docker
    .getContainer(sandbox.id)
    .inspect()
    .then(
      () => 200,
      (err: { statusCode?: number }) => err.statusCode,
    );
  t.equal(gone, 404, 'the container is removed');
  t.ok(sandbox.channel.closed);
  await driver.removeLeftovers();
  t.notOk(
    existsSync(path.join(root, `${hostname()}-${process.pid}`)),
    'the owner directory goes with the leftovers',
  );
});
