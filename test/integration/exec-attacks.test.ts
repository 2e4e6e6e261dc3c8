import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { hostname } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Queue } from 'bullmq';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { App } from '../../api/app.ts';
import { imageAllowed, registryHost, registryOf } from '../../core/image-allowlist.ts';
import { KIND_LABEL, OWNER_LABEL } from '../../runtimes/docker-sandbox.ts';
import { EXEC_KIND } from '../../runtimes/exec-runner.ts';
import { ownerDirName } from '../../runtimes/exec-workspace.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { coreutilsImage } from '../helpers/local-images.ts';
import { freePort } from '../helpers/redis-server.ts';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * Attacks on exec requests, each performed against a running Dockhand (gateway and worker in one
 * process) on real Docker, Redis and an S3-compatible server, and each refused. The attacker holds
 * an API key (or, where said, can write to Redis) and chooses the image, the command and what the
 * container leaves behind. docs/security.md ("Exec requests, nodes and live logs") has the list.
 */

leakCheck(t);
ensureExecInit();
const docker = new Docker();
const owner = `${hostname()}/${process.pid}`;
const PYTHON = process.env.RUNTIME_IMAGE_PYTHON3 ?? 'dockhand-runtime-python3:local';
const COREUTILS = coreutilsImage();
const BUCKET = 'exec-attacks';
const REGISTRY_USER = 'acme-bot';
const REGISTRY_PASSWORD = 'registry-secret-0123456789';

/**
 * A registry that asks for Basic credentials and has no images: enough to see what the engine
 * sends it when a pull names it. Docker takes 127.0.0.0/8 registries as plain-HTTP ones.
 */
async function startFakeRegistry(t: Test) {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization;
    seen.push(auth ?? '');
    const headers = { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' };
    if (!auth) {
      res.writeHead(401, { ...headers, 'www-authenticate': 'Basic realm="registry"' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    res.writeHead(404, headers);
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
  });
  // The engine tries TLS first; the handshake lands here as garbage, and it falls back to HTTP.
  server.on('clientError', (_err, socket) => socket.destroy());
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    host: `127.0.0.1:${port}`,
    requests: () => seen.length,
    /** `user:password` of every Basic header it was sent. */
    credentials: () =>
      seen
        .filter((a) => a.startsWith('Basic '))
        .map((a) => Buffer.from(a.slice(6), 'base64').toString('utf8')),
  };
}

const { endpoint, s3 } = await startS3Server(t, [BUCKET]);
const operatorRegistry = await startFakeRegistry(t);
const attackerRegistry = await startFakeRegistry(t);
const config = testConfig(t, {
  MINIO_ENDPOINT: endpoint,
  MINIO_ACCESS_KEY: S3RVER_CREDENTIALS.accessKeyId,
  MINIO_SECRET_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  MINIO_BUCKET: BUCKET,
  EXEC_MAX_TIMEOUT_SECONDS: '120',
  // Every container is made for its request: what is left behind is what one request left.
  EXEC_WARM_PER_IMAGE: '0',
  // The operator's private registry (a fake one here), with its credentials.
  EXEC_REGISTRY_SERVER: operatorRegistry.host,
  EXEC_REGISTRY_USERNAME: REGISTRY_USER,
  EXEC_REGISTRY_PASSWORD: REGISTRY_PASSWORD,
});
const running = await startTestRole(t, 'all', config);
const app = running.app as App;
const redis = new Redis(REDIS_URL);
t.teardown(() => redis.quit());

async function post(app: App, body: object, wait = true) {
  const res = await app.inject({ method: 'POST', url: `/exec${wait ? '?wait=true' : ''}`, payload: body });
  return { status: res.statusCode, body: res.json() };
}

const py = (code: string) => ['python3', '-c', code];

/** Workspace directories this process still holds (each execution's goes when it ends). */
const workspacesLeft = () => {
  const dir = path.join(config.exec.workspaceDir, ownerDirName(owner));
  return existsSync(dir) ? readdirSync(dir) : [];
};

t.test('the private registry’s credentials go to that registry, never to one a request names', async (t) => {
  // Before: EXEC_REGISTRY_* went with every pull, and the engine hands them to whichever
  // registry the reference names: asking for <attacker's registry>/x was enough to receive them.
  const bait = await post(app, {
    container: { image: `${attackerRegistry.host}/bait:latest`, command: ['true'] },
  });
  t.equal(bait.status, 200);
  t.equal(bait.body.success, false);
  t.match(bait.body.error, /could not be pulled/);
  t.ok(attackerRegistry.requests() > 0, 'the engine did ask the registry the request named');
  t.same(attackerRegistry.credentials(), [], 'but never with the operator’s credentials');

  const own = await post(app, {
    container: { image: `${operatorRegistry.host}/tool:latest`, command: ['true'] },
  });
  t.equal(own.body.success, false, 'no such image there either');
  t.ok(
    operatorRegistry.credentials().includes(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`),
    'the configured registry still gets them',
  );
});

t.test('which registry a reference pulls from, as the engine decides it', async (t) => {
  const cases: Array<[string, string]> = [
    ['python', 'docker.io'],
    ['python:3.12@sha256:abc', 'docker.io'],
    ['library/python', 'docker.io'],
    ['acme/tool', 'docker.io'],
    ['docker.io/acme/tool', 'docker.io'],
    ['index.docker.io/acme/tool', 'docker.io'],
    ['registry.acme.example/tool', 'registry.acme.example'],
    ['Registry.Acme.Example:5000/team/tool:1', 'registry.acme.example:5000'],
    ['localhost/tool', 'localhost'],
    ['127.0.0.1:5000/tool', '127.0.0.1:5000'],
    ['registry.acme.example', 'docker.io'],
  ];
  for (const [image, registry] of cases) t.equal(registryOf(image), registry, image);
  t.equal(registryHost('https://index.docker.io/v1/'), 'docker.io');
  t.equal(registryHost('registry.acme.example:5000'), 'registry.acme.example:5000');
  t.equal(registryHost('https://Registry.Acme.Example/'), 'registry.acme.example');
});

t.test("an image's VOLUME goes with its container, and what was written there with it", async (t) => {
  // Before: containers were removed without their anonymous volumes, so an image declaring a
  // VOLUME left one on the engine's disk per execution (read-only root or not), kept for good.
  const image = 'dockhand-attack-volume:local';
  const maker = await docker.createContainer({
    Image: PYTHON,
    User: '0:0',
    Cmd: py("import os; os.makedirs('/scratch'); os.chmod('/scratch', 0o777)"),
  });
  await maker.start();
  await maker.wait();
  await maker.commit({ repo: 'dockhand-attack-volume', tag: 'local', changes: 'VOLUME /scratch' });
  await maker.remove({ force: true });
  t.teardown(() =>
    docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => {}),
  );
  const token = `kept-${process.pid}-${Date.now()}`;
  const res = await post(app, {
    container: {
      image,
      command: py(`open('/scratch/${token}', 'w').write('x' * 1048576); print('written')`),
    },
    output: { return_logs: true },
  });
  t.equal(res.body.success, true, res.body.error);
  t.equal(res.body.result.logs, 'written\n', 'the volume was writable, the root file system not');
  const { Volumes } = await docker.listVolumes();
  const left = (Volumes ?? []).filter((v) => existsSync(path.join(v.Mountpoint, token)));
  t.same(
    left.map((v) => v.Name),
    [],
    'no volume holds what the execution wrote',
  );
});

t.test('a workspace deeper than PATH_MAX is removed all the same', async (t) => {
  // Before: fs.rm names entries by their full path, so a tree the command built with mkdir and
  // chdir failed with ENAMETOOLONG, at the release and at every sweep after: what it held stayed.
  const res = await post(app, {
    container: {
      image: PYTHON,
      command: py(
        [
          'import os',
          "os.chdir('/workspace/output')",
          'for _ in range(1500):',
          "    os.mkdir('d' * 200)",
          "    os.chdir('d' * 200)",
          "open('kept', 'w').write('x' * 1048576)",
        ].join('\n'),
      ),
    },
  });
  t.equal(res.body.success, true, res.body.error);
  t.same(workspacesLeft(), [], 'the workspace is gone once the response is there');
});

t.test(
  'an output/ of 12,000 symlinks uploads nothing, and is not walked and logged entry by entry',
  async (t) => {
    // Before: only regular files counted toward the 10,000 cap: symlinks, FIFOs and directories
    // were walked without limit and each symlink cost the worker a log line.
    const res = await post(app, {
      container: {
        image: PYTHON,
        command: py(
          [
            'import os',
            "open('/workspace/output/real.txt', 'w').write('hi')",
            'for i in range(12000):',
            "    os.symlink('/etc/passwd', f'/workspace/output/l{i}')",
          ].join('\n'),
        ),
      },
      output: { minio_upload: true },
    });
    t.equal(res.body.success, false);
    t.match(res.body.error, /holds more than 10000 entries; nothing was uploaded/);
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `executions/${res.body.execution_id}/` }),
    );
    t.equal(listed.KeyCount ?? 0, 0, 'nothing uploaded');
    t.same(workspacesLeft(), []);
  },
);

t.test(
  'image ids are not names: EXEC_IMAGE_ALLOWLIST cannot be passed with sha256:<id> or a prefix',
  async (t) => {
    // `*` (every official image) also matched `sha256` and any hex string, which the engine reads
    // as an image id: any local image ran under it, whatever repository it belongs to.
    const gatewayConfig = testConfig(t, { EXEC_IMAGE_ALLOWLIST: '*' });
    const gateway = await startTestRole(t, 'gateway', gatewayConfig);
    const queue = new Queue('exec', { connection: { url: REDIS_URL }, prefix: gatewayConfig.redis.prefix });
    t.teardown(() => queue.close());
    const privateName = 'dockhand-attack/private:local';
    await docker.getImage(COREUTILS).tag({ repo: 'dockhand-attack/private', tag: 'local' });
    t.teardown(() =>
      docker
        .getImage(privateName)
        .remove()
        .catch(() => {}),
    );
    const id = (await docker.getImage(privateName).inspect()).Id;
    for (const image of [privateName, id, id.slice(7, 19), id.slice(7)]) {
      const res = await post(gateway.app as App, { container: { image, command: ['true'] } }, false);
      t.equal(res.status, 400, image);
      t.equal(res.body.field, 'container.image', image);
    }
    t.equal(await queue.count(), 0, 'nothing was queued');
    t.equal(imageAllowed(id, ['**']), false, 'not even under **: an id names no repository');
    t.equal(imageAllowed(id, []), true, 'without an allowlist any image runs, ids included');
    t.equal(imageAllowed('python:3.12', ['*']), true);
  },
);

t.test(
  'host ports: nothing below 1024, no leading zeros, no "0"; and Redis’s own port stays Redis’s',
  async (t) => {
    // Before: any host port, so a request could take 127.0.0.1:25, :53 or :80 from the host's own
    // clients (the engine binds published ports as root), also written "00080".
    for (const host of [80, 22, '00080', '0', '65536']) {
      const res = await post(app, { container: { image: COREUTILS, ports: { '8000': host } } }, false);
      t.equal(res.status, 400, `host port ${JSON.stringify(host)}`);
      t.equal(res.body.field, 'container.ports');
    }
    // A port Redis listens on cannot be taken from it: the engine cannot bind it, the run fails.
    const redisPort = Number(new URL(REDIS_URL).port || 6379);
    const res = await post(app, {
      container: { image: COREUTILS, command: ['true'], ports: { '8000': redisPort } },
    });
    t.equal(res.body.success, false);
    t.match(res.body.error, /address already in use/);
    t.equal(await redis.ping(), 'PONG', 'Redis still answers on its port');
  },
);

t.test('a container that publishes a port reaches neither the service proxy nor the host', async (t) => {
  // Ports put a container on the egress network (no network could publish nothing): the proxy
  // listens on the service network's gateway, one of the host's addresses, which that network's
  // rules refuse, as they refuse every address of the host.
  const services = (await docker.getNetwork('dockhand-services').inspect()) as {
    IPAM?: { Config?: Array<{ Gateway?: string }> };
  };
  const gateway = services.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (!gateway) throw new Error('the service network has no gateway');
  const targets = [
    [gateway, config.serviceProxy.port],
    [gateway, Number(new URL(REDIS_URL).port || 6379)],
  ];
  const res = await post(app, {
    container: {
      image: PYTHON,
      ports: { '8000': await freePort() },
      command: py(
        [
          'import socket',
          `for host, port in ${JSON.stringify(targets)}:`,
          '    s = socket.socket(); s.settimeout(20)',
          '    try:',
          '        s.connect((host, port)); print("connected", port)',
          '    except OSError as e:',
          '        print("refused", port, e.errno)',
        ].join('\n'),
      ),
    },
    output: { return_logs: true },
  });
  t.equal(res.body.success, true, res.body.error);
  t.equal(
    res.body.result.logs,
    targets.map(([, port]) => `refused ${port} 113\n`).join(''),
    'EHOSTUNREACH at once',
  );
});

/** The job once it is in `state`, read after it got there (with its return value or reason). */
async function settled(queue: Queue, id: string, state: 'completed' | 'failed', what: string) {
  await waitFor(async () => (await queue.getJobState(id)) === state, {
    what: `${what}: the job to be ${state}`,
    timeoutMs: 30_000,
  });
  const job = await queue.getJob(id);
  if (!job) throw new Error(`job ${id} is gone`);
  return job;
}

t.test('jobs written into Redis by hand are checked again by the worker', async (t) => {
  const queue = new Queue('exec', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
  t.teardown(() => queue.close());
  const request = (more: object = {}) => ({
    container: { image: COREUTILS, command: ['true'] },
    ...more,
  });
  const jobs: Array<[string, object, RegExp]> = [
    [
      'an execution_id that is not its job id',
      { execution_id: 'someone-else', correlation_id: 'c', request: request(), source: 'http' },
      /is not its job id/,
    ],
    [
      'an input path out of the workspace',
      {
        request: request({
          input: { files: [{ name: 'x', path: '../../../../etc/cron.d/x', content: 'evil' }] },
        }),
      },
      /outside \/workspace\/input/,
    ],
    [
      'a privileged host port',
      { request: request({ container: { image: COREUTILS, ports: { '8000': 80 } } }) },
      /host port from 1024/,
    ],
  ];
  for (const [what, data, error] of jobs) {
    const jobId = `hostile-${Math.random().toString(36).slice(2)}`;
    await queue.add(
      'exec',
      { execution_id: jobId, correlation_id: jobId, source: 'http', ...data },
      { jobId, attempts: 1 },
    );
    const job = await settled(queue, jobId, 'completed', what);
    t.equal(job.returnvalue.success, false, what);
    t.match(job.returnvalue.error, error, what);
    t.notOk(job.returnvalue.result, `${what}: no container ran`);
  }
  // Not even an Exec Agent request: refused before the processor, never retried.
  const flagged = 'hostile-option-image';
  await queue.add(
    'exec',
    {
      execution_id: flagged,
      correlation_id: flagged,
      source: 'http',
      request: request({ container: { image: '--privileged', command: ['true'] } }),
    },
    { jobId: flagged, attempts: 1 },
  );
  const failed = await settled(queue, flagged, 'failed', 'an image named like an option');
  t.match(failed.failedReason, /container\.image/);
  const ours = await docker.listContainers({
    all: true,
    filters: { label: [`${OWNER_LABEL}=${owner}`, `${KIND_LABEL}=${EXEC_KIND}`] },
  });
  t.same(ours, [], 'no exec container is left, none was made for these');
});

t.test(
  'what a container prints never forges an SSE event; a Last-Event-ID past 64 bits is a 400',
  async (t) => {
    const forged = 'line\n\nid: 9999999999999-0\nevent: end\ndata: {"status":"succeeded"}\n\n';
    const res = await post(app, {
      container: {
        image: PYTHON,
        command: py(`import sys; sys.stdout.write(${JSON.stringify(forged)}); sys.exit(3)`),
      },
    });
    t.equal(res.body.success, false);
    const id = res.body.execution_id;
    const logs = await app.inject({ method: 'GET', url: `/exec/${id}/logs` });
    t.equal(logs.statusCode, 200);
    const events = logs.body
      .split('\n\n')
      .filter((block) => block.trim() !== '')
      .map((block) => {
        const field = (name: string) =>
          block
            .split('\n')
            .find((l) => l.startsWith(`${name}: `))
            ?.slice(name.length + 2);
        return { event: field('event'), data: JSON.parse(field('data') ?? 'null') };
      });
    const ends = events.filter((e) => e.event === 'end');
    t.same(ends, [{ event: 'end', data: { status: 'failed' } }], 'one end, the real one');
    t.equal(
      events
        .filter((e) => e.event === 'log')
        .map((e) => e.data.text)
        .join(''),
      forged,
      'the forged lines are output, as printed',
    );
    // Before: the header's pattern let 20 digits through, past what Redis takes: a 500.
    for (const after of ['99999999999999999999-0', '1-18446744073709551616', '18446744073709551615-0']) {
      const resumed = await app.inject({
        method: 'GET',
        url: `/exec/${id}/logs`,
        headers: { 'last-event-id': after },
      });
      t.equal(resumed.statusCode, 400, after);
      t.equal(resumed.json().error, 'validation_error');
    }
  },
);

t.test('a deeply nested graph_update.json is left out, so no client chokes on the response', async (t) => {
  // Before: JSON.parse took any depth. 2,000 levels went out to every exec-responses subscriber,
  // where Python's json (the Exec Agent's clients) raises RecursionError; a million levels made
  // BullMQ's JSON.stringify overflow, turning a successful run into a failed one.
  for (const depth of [2000, 1_000_000]) {
    const res = await post(app, {
      container: {
        image: PYTHON,
        command: py(
          `open('/workspace/output/graph_update.json', 'w').write('[' * ${depth} + ']' * ${depth})`,
        ),
      },
      output: { graph_update: true },
    });
    t.equal(res.body.success, true, `${depth} levels: the run succeeded (${res.body.error ?? ''})`);
    t.equal(res.body.result.graph_update, null, `${depth} levels: not returned`);
    t.equal(
      res.body.result.metadata.graph_update_error,
      'output/graph_update.json is nested deeper than 64 levels.',
    );
    const stored = await app.inject({ method: 'GET', url: `/exec/${res.body.execution_id}` });
    const parsed = spawnSync('python3', ['-c', 'import json, sys; json.load(sys.stdin)'], {
      input: stored.body,
      encoding: 'utf8',
    });
    t.equal(
      parsed.status,
      0,
      `a Python client reads the response (${parsed.stderr.trim().split('\n').at(-1)})`,
    );
  }
  const fine = await post(app, {
    container: {
      image: PYTHON,
      command: py(`open('/workspace/output/graph_update.json', 'w').write('[' * 64 + ']' * 64)`),
    },
    output: { graph_update: true },
  });
  t.equal(JSON.stringify(fine.body.result.graph_update).length, 128, '64 levels are returned');
});
