import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import t from 'tap';
import { KIND_LABEL, OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { startLeftoverSweep } from '../../runtimes/leftover-sweep.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);
const docker = new Docker();

// A run killed mid-test (a timeout) never reaches its teardowns: its stand-in containers, under
// host names of the form sweep-*, which no real worker has, are removed by the next run.
for (const c of await docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } })) {
  if ((c.Labels[OWNER_LABEL] ?? '').startsWith('sweep-'))
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
}

t.test(
  "a running worker's sweep removes a dead worker's containers and workspaces, nothing else",
  async (t) => {
    // A host name of this test's own: no other Dockhand process on this machine judges its owners.
    const host = `sweep-${randomBytes(4).toString('hex')}`;
    const dead = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
    const container = async (owner: string, kind = 'function') => {
      const c = await docker.createContainer({
        Image: 'dockhand-runtime-node20:local',
        Cmd: ['/usr/bin/node', '-e', '0'],
        Labels: { [SANDBOX_LABEL]: '1', [OWNER_LABEL]: owner, [KIND_LABEL]: kind },
      });
      t.teardown(() => c.remove({ force: true }).catch(() => {}));
      return c;
    };
    const exists = (c: Docker.Container) =>
      c.inspect().then(
        () => true,
        () => false,
      );
    const deadFunction = await container(`${host}/${dead}`);
    const deadExec = await container(`${host}/${dead}`, 'exec');
    const own = await container(`${host}/${process.pid}`);
    const live = await container(`${host}/1`);
    const root = tempDir(t, 'exec');
    const deadDir = path.join(root, `${host}-${dead}`, 'abc');
    const ownDir = path.join(root, `${host}-${process.pid}`, 'def');
    const liveDir = path.join(root, `${host}-1`, 'ghi');
    for (const d of [deadDir, ownDir, liveDir]) mkdirSync(path.join(d, 'output'), { recursive: true });

    // The sweep's timer is unref'd (it must not keep a worker alive): this keeps the test alive.
    const alive = setInterval(() => {}, 1000);
    t.teardown(() => clearInterval(alive));
    const removed = new Promise<{ containers: number; workspaces: number }>((resolve) => {
      const sweep = startLeftoverSweep({
        docker,
        owner: `${host}/${process.pid}`,
        workspaceDir: root,
        intervalMs: 100,
        onRemoved: resolve,
        onError: (err) => t.fail(String(err)),
      });
      t.teardown(() => sweep.stop());
    });
    t.same(
      await removed,
      { containers: 2, workspaces: 1 },
      'one sweep removed both containers and the workspace',
    );
    t.notOk(await exists(deadFunction), "the dead worker's function container is gone");
    t.notOk(await exists(deadExec), 'and its exec container');
    t.notOk(existsSync(path.dirname(deadDir)), 'and its workspaces');
    t.ok(await exists(own), "this process's own container stays (it is in use)");
    t.ok(existsSync(ownDir), 'and its workspace');
    t.ok(await exists(live), "a live process's container stays");
    t.ok(existsSync(liveDir), 'and its workspace');
  },
);
