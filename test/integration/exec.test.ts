import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import t from 'tap';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { buildLocalImage } from '../helpers/local-images.ts';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.ts';
import { startOpenAiStub } from '../helpers/service-stubs.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * The Exec Agent README's examples, end to end through a running Dockhand (gateway, worker and
 * bridge in one process), on real Docker, Redis and an S3-compatible server. Its images are
 * registry images; here they are built from this machine's binaries: python3 for
 * python:3.9-slim, coreutils' echo for alpine.
 */

leakCheck(t);
ensureExecInit();
const docker = new Docker();
const PYTHON = process.env.RUNTIME_IMAGE_PYTHON3 ?? 'dockhand-runtime-python3:local';
const ECHO = buildLocalImage({ tag: 'dockhand-test-echo:local', binaries: ['/bin/echo', '/bin/sleep'] });
const BUCKET = 'exec-data';
const { endpoint, s3 } = await startS3Server(t, [BUCKET]);
const openai = await startOpenAiStub();
t.teardown(() => openai.close());

const config = testConfig(t, {
  MINIO_ENDPOINT: endpoint,
  MINIO_ACCESS_KEY: S3RVER_CREDENTIALS.accessKeyId,
  MINIO_SECRET_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  MINIO_BUCKET: BUCKET,
  EXEC_MAX_TIMEOUT_SECONDS: '120',
  OPENAI_BASE_URL: `${openai.url}/v1`,
  OPENAI_API_KEY: 'sk-test',
  OPENAI_MODEL: 'gpt-test',
});
const running = await startTestRole(t, 'all', config);
const { app } = running;

const post = async (body: object, wait = true) => {
  const res = await app.inject({ method: 'POST', url: `/exec${wait ? '?wait=true' : ''}`, payload: body });
  return { status: res.statusCode, body: res.json() };
};

t.test('python data analysis with graph data (README example 1)', async (t) => {
  const script = [
    'import json, os',
    "data = json.load(open('/workspace/input/graph_data.json'))",
    "cfg = json.load(open(os.environ['WORKSPACE_CONFIG'] + '/config.json'))",
    "json.dump({'node_count': len(data['nodes']), 'param': cfg['param1']}, open('/workspace/output/analysis.json', 'w'))",
    "json.dump({'nodes': [{'id': '3'}], 'relationships': []}, open('/workspace/output/graph_update.json', 'w'))",
    "print('analysed', os.environ['EXECUTION_ID'], os.environ['CUSTOM_VAR'])",
  ].join('\n');
  const { status, body } = await post({
    correlation_id: 'analysis-1',
    container: { image: PYTHON, command: ['python3', '-c', script] },
    input: {
      graph_data: { nodes: [{ id: '1' }, { id: '2' }], relationships: [] },
      config_data: { param1: 'value1', param2: 42 },
    },
    output: { expected_files: ['analysis.json'], graph_update: true, return_logs: true },
    environment: { CUSTOM_VAR: 'value', EXECUTION_ID: 'spoofed' },
  });
  t.equal(status, 200);
  t.equal(body.success, true, body.error);
  t.equal(body.correlation_id, 'analysis-1');
  t.equal(body.result.exit_code, 0);
  t.same(JSON.parse(body.result.output_files[0].content), { node_count: 2, param: 'value1' });
  t.match(body.result.output_files[0], { name: 'analysis.json', path: '/workspace/output/analysis.json' });
  t.same(body.result.graph_update, { nodes: [{ id: '3' }], relationships: [] });
  t.equal(body.result.logs, `analysed ${body.execution_id} value\n`, 'EXECUTION_ID cannot be overridden');
  t.match(body.result.metadata, { execution_time: /^[0-9.]+s$/, image: PYTHON, logs_truncated: false });
  t.type(body.result.metadata.peak_memory_mb, 'number');
  t.match(body.duration, /^[0-9.]+s$/);

  // The same output, replayed from the live log (GET …/logs?follow=1 streams it while it runs).
  const logs = await app.inject({ method: 'GET', url: `/exec/${body.execution_id}/logs` });
  t.equal(logs.statusCode, 200);
  t.match(logs.headers['content-type'], /text\/event-stream/);
  t.match(logs.body, /event: log\n[\s\S]*analysed/);
  t.match(logs.body, /event: end\ndata: .*succeeded/);
});

t.test('a script with a MinIO input and minio_upload (README example 2)', async (t) => {
  await s3.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: 'datasets/sales.csv',
      Body: 'region,amount\nnorth,3\nsouth,4\n',
    }),
  );
  const script = [
    "rows = open('/workspace/input/sales.csv').read().splitlines()[1:]",
    "total = sum(int(r.split(',')[1]) for r in rows)",
    "open('/workspace/output/summary.csv', 'w').write(f'rows,total\\n{len(rows)},{total}\\n')",
  ].join('\n');
  const { body } = await post({
    correlation_id: 'stats-1',
    container: { image: PYTHON, command: ['python3', '/workspace/input/analysis.py'] },
    input: {
      minio_objects: [{ object_name: 'datasets/sales.csv', local_path: 'sales.csv' }],
      files: [{ name: 'analysis.py', path: 'analysis.py', content: script }],
    },
    output: { expected_files: ['summary.csv'], minio_upload: true },
  });
  t.equal(body.success, true, body.error);
  t.equal(body.result.output_files[0].content, 'rows,total\n2,7\n');
  const key = `executions/${body.execution_id}/output/summary.csv`;
  t.same(body.result.minio_objects, [{ object_name: key, size: 15 }]);
  const stored = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  t.equal(await stored.Body?.transformToString(), 'rows,total\n2,7\n');
});

t.test('an AI call through the service proxy, and nothing else reachable (README example 3)', async (t) => {
  const script = [
    'import json, os, socket, urllib.request',
    "data = json.load(open('/workspace/input/graph_data.json'))",
    "body = json.dumps({'provider': 'openai', 'prompt': f'Analyze this graph data: {data}'}).encode()",
    "req = urllib.request.Request(os.environ['AI_SERVICE_URL'] + '/query', data=body, headers={'content-type': 'application/json'})",
    'answer = json.load(urllib.request.urlopen(req, timeout=30))',
    "proxy = urllib.parse.urlparse(os.environ['SERVICE_PROXY_URL'])",
    'def reachable(host, port):',
    '    try:',
    '        socket.create_connection((host, port), timeout=10).close()',
    '        return True',
    '    except OSError:',
    '        return False',
    // Redis and another port on the host, and the internet: refused at once by the firewall.
    "probes = {'redis': reachable(proxy.hostname, 6379), 'host_port': reachable(proxy.hostname, 22), 'internet': reachable('1.1.1.1', 53)}",
    "json.dump({'ai': answer, 'reachable': probes}, open('/workspace/output/ai_analysis.json', 'w'))",
  ].join('\n');
  const { body } = await post({
    correlation_id: 'ai-analysis-1',
    container: { image: PYTHON, command: ['python3', '/workspace/input/ai_analysis.py'] },
    input: {
      files: [{ name: 'ai_analysis.py', path: 'ai_analysis.py', content: script }],
      graph_data: { nodes: [{ id: '1' }], relationships: [] },
    },
    output: { expected_files: ['ai_analysis.json'], return_logs: true },
    service_access: ['ai'],
  });
  t.equal(body.success, true, `${body.error} ${body.result?.logs}`);
  const written = JSON.parse(body.result.output_files[0].content);
  t.match(written.ai, { provider: 'openai', model: 'gpt-test' });
  t.match(openai.calls.at(-1)?.body, /Analyze this graph data/);
  t.same(written.reachable, { redis: false, host_port: false, internet: false });
});

t.test('a missing expected file is named, and the execution did not succeed', async (t) => {
  const { body } = await post({
    container: { image: ECHO, command: ['echo', 'nothing written'] },
    output: { expected_files: ['results.json'] },
  });
  t.equal(body.success, false);
  t.equal(body.result.exit_code, 0);
  t.match(body.error, /results\.json/);
  t.same(body.result.metadata.missing_files, ['results.json']);
});

t.test('timeout kills the container and answers with the exit code', async (t) => {
  const { body } = await post({ container: { image: ECHO, command: ['sleep', '60'] }, timeout: 1 });
  t.equal(body.success, false);
  t.equal(body.status, 'timeout');
  t.equal(body.result.exit_code, 137);
  t.match(body.error, /timeout of 1 s/);
});

t.test('DELETE /exec/:id kills a running execution', async (t) => {
  const { status, body } = await post({ container: { image: ECHO, command: ['sleep', '60'] } }, false);
  t.equal(status, 202);
  const id = body.execution_id;
  await waitFor(
    async () => (await app.inject({ method: 'GET', url: `/exec/${id}` })).json().status === 'running',
    { what: 'the execution to start' },
  );
  // 200 with the response once the container is gone; 202 if that takes more than a few
  // seconds on a busy machine. Either way the response ends up saying cancelled.
  const cancelled = await app.inject({ method: 'DELETE', url: `/exec/${id}` });
  t.ok([200, 202].includes(cancelled.statusCode), `DELETE answered ${cancelled.statusCode}`);
  const response = await waitFor(
    async () => {
      const got = await app.inject({ method: 'GET', url: `/exec/${id}` });
      return got.statusCode === 200 && got.json();
    },
    { what: 'the cancelled response', timeoutMs: 60_000 },
  );
  // A cancel that lands before the container exists has no result; one after it, exit code 137.
  t.match(response, { success: false, status: 'cancelled', execution_id: id });
  if (response.result) t.equal(response.result.exit_code, 137);
});

t.test('paths that leave the workspace are refused before anything is queued', async (t) => {
  for (const [file, field] of [
    [{ name: 'x', path: '../../etc/cron.d/x', content: '' }, 'input.files[0].path'],
    [{ name: 'x', path: '/etc/passwd', content: '' }, 'input.files[0].path'],
  ] as const) {
    const { status, body } = await post({ container: { image: ECHO }, input: { files: [file] } }, false);
    t.equal(status, 400);
    t.match(`${body.field} ${body.message}`, field);
  }
  const { status } = await post({ container: { image: ECHO }, output: { expected_files: ['../x'] } }, false);
  t.equal(status, 400);
});

t.test("the README's redis-cli PUBLISH test, answered on exec-responses", async (t) => {
  const subscriber = new Redis(REDIS_URL);
  t.teardown(() => subscriber.disconnect());
  const heard: Array<Record<string, unknown>> = [];
  subscriber.on('message', (_c: string, m: string) => heard.push(JSON.parse(m)));
  await subscriber.subscribe(config.exec.channels.responses);
  const url = new URL(REDIS_URL);
  const request = JSON.stringify({
    correlation_id: 'test-1',
    container: { image: ECHO, command: ['echo', 'Hello from container!'] },
    input: {},
    output: { return_logs: true },
  });
  const cli = spawn('redis-cli', [
    '-h',
    url.hostname,
    '-p',
    url.port || '6379',
    'PUBLISH',
    config.exec.channels.requests,
    request,
  ]);
  t.equal(await new Promise((resolve) => cli.on('close', resolve)), 0);
  await waitFor(() => heard.length > 0, { what: 'the response', timeoutMs: 60_000 });
  t.match(heard[0], { correlation_id: 'test-1', success: true, result: { logs: 'Hello from container!\n' } });
});

t.test('no container and no workspace is left once the worker stops', async (t) => {
  await running.close();
  const left = await docker.listContainers({ all: true, filters: { label: ['dockhand.kind=exec'] } });
  const mine = left.filter((c) => (c.Labels['dockhand.owner'] ?? '').endsWith(`/${process.pid}`));
  t.same(mine, []);
  const workspaces = await readdir(path.join(config.storage.dataDir, 'exec')).catch(() => []);
  const entries = await Promise.all(
    workspaces.map((d) => readdir(path.join(config.storage.dataDir, 'exec', d)).catch(() => [])),
  );
  t.same(entries.flat(), [], 'every workspace removed');
});
