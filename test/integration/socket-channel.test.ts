import { existsSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import t, { type Test } from 'tap';
import { runtimeCatalog } from '../../runtimes/catalog.ts';
import { DockerSandboxDriver } from '../../runtimes/docker-sandbox.ts';
import type { Sandbox } from '../../runtimes/sandbox.ts';
import { chooseChannel } from '../../runtimes/socket-channel.ts';
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
