import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import t, { type Test } from 'tap';
import { OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { coreutilsImage } from '../helpers/local-images.ts';
import { freePort } from '../helpers/redis-server.ts';
import { startTargetServer } from '../helpers/target-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * docker/compose.yml with docker/compose.local.yml, as a user without a registry runs it:
 * Redis, the gateway, two worker containers (host network, the host's Docker socket), the
 * scheduler, the bridge and Prometheus, under a project name and ports of this run's own.
 * Grafana and MinIO have no local image and stay out (profile `registry`).
 */

leakCheck(t);
// Building the images (first run, or after a source change) and starting six Node processes on
// a busy machine take longer than tap's default for a file.
t.setTimeout(300_000);

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

async function hasCompose(): Promise<boolean> {
  try {
    await run('docker-compose', ['version', '--short']);
    return true;
  } catch {
    return false;
  }
}

if (!(await hasCompose())) {
  t.plan(
    0,
    'docker-compose is not installed and scripts/prepare.sh could not install it (Debian: docker-compose)',
  );
} else {
  await composeSuite();
}

async function composeSuite() {
  const docker = new Docker();
  const project = `dhc${randomBytes(4).toString('hex')}`;
  const apiKey = randomBytes(16).toString('hex');
  const dataDir = tempDir(t, 'compose');
  const [port, redisPort, worker1Port, worker2Port, prometheusPort] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const target = await startTargetServer();
  t.teardown(() => target.close());

  // Prometheus reads docker/prometheus/ when it is there; otherwise a config of this run's.
  const files = ['docker/compose.yml', 'docker/compose.local.yml'];
  const ownPrometheus = !existsSync(path.join(ROOT, 'docker/prometheus/prometheus.yml'));
  if (ownPrometheus) {
    const dir = path.join(dataDir, 'prometheus-config');
    await mkdir(dir);
    const job = (name: string, targets: string[]) =>
      `  - job_name: ${name}\n    static_configs: [{ targets: [${targets.map((x) => `"${x}"`).join(', ')}] }]\n`;
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 2s }\nscrape_configs:\n${[
        job('gateway', ['gateway:3000']),
        job('scheduler', ['scheduler:3000']),
        job('bridge', ['bridge:3000']),
        job('worker', [`host.docker.internal:${worker1Port}`, `host.docker.internal:${worker2Port}`]),
      ].join('')}`,
    );
    const override = path.join(dataDir, 'prometheus.override.yml');
    await writeFile(override, `services:\n  prometheus:\n    volumes:\n      - ${dir}:/etc/prometheus:ro\n`);
    files.push(override);
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    COMPOSE_PROJECT_NAME: project,
    DOCKHAND_HOSTNAME_PREFIX: project,
    DOCKHAND_DATA_DIR: dataDir,
    DOCKHAND_BIND: '127.0.0.1',
    DOCKHAND_PORT: String(port),
    DOCKHAND_REDIS_PORT: String(redisPort),
    DOCKHAND_WORKER_1_PORT: String(worker1Port),
    DOCKHAND_WORKER_2_PORT: String(worker2Port),
    DOCKHAND_PROMETHEUS_PORT: String(prometheusPort),
    API_KEYS: apiKey,
    ALLOW_UNAUTHENTICATED: 'no',
    QUEUE_PREFIX: 'dockhand',
    LOG_LEVEL: 'info',
    POOL_MIN_IDLE: '0',
    // The target server listens on the host's loopback, where the workers' network is.
    HTTP_JOBS_ALLOWLIST: '127.0.0.1',
  };

  /** Runs a command to its end (killed after `timeoutMs`), with its output for messages. */
  const exec = (cmd: string, args: string[], timeoutMs: number) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const keep = (d: Buffer) => {
        output = (output + d).slice(-20_000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  const compose = (args: string[], timeoutMs = 150_000) =>
    exec('docker-compose', [...files.flatMap((f) => ['-f', f]), ...args], timeoutMs);

  const projectFilter = { label: [`com.docker.compose.project=${project}`] };
  /** Containers the workers made (functions, exec): owned by `<project>-worker-N/<pid>`. */
  const workerContainers = async () =>
    (await docker.listContainers({ all: true, filters: { label: [`${SANDBOX_LABEL}=1`] } })).filter((c) =>
      (c.Labels[OWNER_LABEL] ?? '').startsWith(`${project}-worker-`),
    );
  const leftovers = async () => ({
    containers: (await docker.listContainers({ all: true, filters: projectFilter })).map((c) => c.Names[0]),
    workerContainers: (await workerContainers()).map((c) => c.Labels[OWNER_LABEL]),
    networks: (await docker.listNetworks({ filters: projectFilter })).map((n) => n.Name),
    volumes: ((await docker.listVolumes({ filters: projectFilter })).Volumes ?? []).map((v) => v.Name),
  });

  // Even when a test failed: the stack, then whatever a killed worker could not remove.
  t.teardown(async () => {
    await compose(['down', '-v', '--remove-orphans', '--timeout', '20']);
    await Promise.all(
      (await workerContainers()).map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {}),
      ),
    );
  });

  const api = (method: string, url: string, body?: unknown) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: url,
          agent: false, // no keep-alive socket outlives the test
          headers: {
            authorization: `Bearer ${apiKey}`,
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} });
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  const logsOnFailure = async (t: Test) => {
    if (t.passing()) return;
    const { output } = await compose(['logs', '--no-color', '--tail', '40'], 30_000);
    t.comment(output);
  };

  await t.test('the images build and every role comes up healthy', async (t) => {
    t.teardown(() => logsOnFailure(t));
    const built = await exec('bash', ['scripts/build-compose-images.sh'], 240_000);
    t.equal(built.code, 0, 'scripts/build-compose-images.sh', { output: built.output });
    const up = await compose(['up', '-d']);
    t.equal(up.code, 0, 'docker-compose up -d', { output: up.output });
    const services = ['redis', 'gateway', 'worker-1', 'worker-2', 'scheduler', 'bridge', 'prometheus'];
    const states = await waitFor(
      async () => {
        const list = await docker.listContainers({ all: true, filters: projectFilter });
        const state = Object.fromEntries(
          list.map((c) => [
            c.Labels['com.docker.compose.service'],
            c.Status.replace(/^Up .*\((.*)\)$/, '$1'),
          ]),
        );
        const healthy = services.every((s) =>
          s === 'prometheus' ? state[s]?.startsWith('Up') : state[s] === 'healthy',
        );
        return healthy ? state : undefined;
      },
      { what: 'every service to be healthy', timeoutMs: 150_000 },
    );
    t.same(Object.keys(states).sort(), [...services].sort(), 'MinIO and Grafana stay out here');

    const redis = (
      await docker.listContainers({
        filters: { label: [...projectFilter.label, 'com.docker.compose.service=redis'] },
      })
    )[0];
    const config = await run('docker', ['exec', String(redis?.Id), 'redis-cli', 'config', 'get', '*']);
    const lines = config.stdout.split('\n');
    const get = (key: string) => lines[lines.indexOf(key) + 1];
    t.equal(get('appendonly'), 'yes', 'Redis keeps an append-only file');
    t.equal(get('appendfsync'), 'everysec', 'fsynced every second');
    t.equal(get('maxmemory-policy'), 'noeviction', 'and never evicts a key');
  });

  await t.test('a function deploys and runs in a container a worker container made', async (t) => {
    t.teardown(() => logsOnFailure(t));
    const deployed = await api('PUT', '/functions/hello', {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 10_000,
      code: { files: { 'index.js': 'exports.handler = async (e) => ({ hello: e.name });' } },
    });
    t.equal(deployed.status, 201, 'deployed', { body: deployed.body });
    const invoked = await api('POST', '/functions/hello/invoke', { name: 'compose' });
    t.equal(invoked.status, 200, 'invoked', { body: invoked.body });
    t.equal(invoked.body.status, 'SUCCESS', 'the function ran');
    t.same(invoked.body.result, { hello: 'compose' }, 'and answered');
    const owners = (await workerContainers()).map((c) => c.Labels[OWNER_LABEL]);
    t.ok(
      owners.some((o) => /-worker-[12]\/\d+$/.test(o ?? '')),
      `the function's container is a worker's (owners: ${owners.join(', ')})`,
    );
    // DATA_DIR is at the same path for the workers and the engine: the socket channel works there.
    const bound = (await workerContainers()).filter((c) => c.Labels['dockhand.runtime'] === 'node20');
    const entrypoints = await Promise.all(
      bound.map(async (c) => (await docker.getContainer(c.Id).inspect()).Config.Entrypoint),
    );
    t.ok(
      entrypoints.length > 0 && entrypoints.every((e) => JSON.stringify(e) === '["/.dockhand/init"]'),
      `function containers talk over the socket channel, under dh-init (${JSON.stringify(entrypoints)})`,
    );
    const unauthenticated = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/functions', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    t.equal(unauthenticated, 401, 'the published API wants a key');
  });

  await t.test('an HTTP job is fetched by a worker', async (t) => {
    t.teardown(() => logsOnFailure(t));
    const queued = await api('POST', '/jobs', { url: `${target.url}/ok` });
    t.equal(queued.status, 202, 'queued', { body: queued.body });
    const done = await waitFor(
      async () => {
        const job = await api('GET', `/jobs/${queued.body.id}`);
        return ['succeeded', 'failed'].includes(String(job.body.status)) ? job.body : undefined;
      },
      { what: 'the HTTP job to finish', timeoutMs: 30_000 },
    );
    t.equal(done.status, 'succeeded', 'the job succeeded', { job: done });
    t.match(done.result, { statusCode: 200, body: 'ok' }, "with the target's answer");
  });

  await t.test('exec binds dh-init and the workspace from the same host paths', async (t) => {
    t.teardown(() => logsOnFailure(t));
    const image = coreutilsImage();
    const { status, body } = await api('POST', '/exec?wait=true', {
      container: { image, command: ['/usr/bin/echo', 'hello from exec'] },
      output: { return_logs: true },
    });
    t.equal(status, 200, 'the execution answered', { body });
    t.equal(body.success, true, 'and succeeded', { body });
    t.match(
      body.result,
      { exit_code: 0, logs: 'hello from exec\n' },
      'the command ran in the exec container',
    );
    t.ok(existsSync(path.join(dataDir, 'bin/dh-init')), 'the workers copied dh-init into DATA_DIR');
  });

  await t.test('Prometheus scrapes the roles', async (t) => {
    t.teardown(() => logsOnFailure(t));
    const query = () =>
      new Promise<Array<{ metric: { job: string; instance: string }; value: [number, string] }>>(
        (resolve, reject) => {
          request(
            { host: '127.0.0.1', port: prometheusPort, path: '/api/v1/query?query=up', agent: false },
            (res) => {
              let text = '';
              res.on('data', (d) => {
                text += d;
              });
              res.on('end', () => {
                try {
                  resolve(JSON.parse(text).data.result);
                } catch (err) {
                  reject(err);
                }
              });
            },
          )
            .on('error', reject)
            .end();
        },
      );
    // Its own config names every role; the real one (docker/prometheus/) may name other ports.
    const wanted = ownPrometheus ? 5 : 1;
    const up = await waitFor(
      async () => {
        const targets = (await query()).filter((r) => r.value[1] === '1');
        return targets.length >= wanted ? targets : undefined;
      },
      { what: `${wanted} Prometheus target(s) up`, timeoutMs: 60_000 },
    );
    t.ok(up.length >= wanted, up.map((r) => `${r.metric.job} ${r.metric.instance}`).join(', '));
  });

  await t.test('down -v leaves nothing behind', async (t) => {
    const down = await compose(['down', '-v', '--remove-orphans', '--timeout', '60']);
    t.equal(down.code, 0, 'docker-compose down -v --remove-orphans', { output: down.output });
    t.same(
      await leftovers(),
      { containers: [], workerContainers: [], networks: [], volumes: [] },
      'no container, function or exec container, network or volume of the project is left',
    );
  });
}
