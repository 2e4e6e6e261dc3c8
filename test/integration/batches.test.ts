import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { QueueEvents } from 'bullmq';
import t, { type Test } from 'tap';
import type { Config } from '../../core/config.ts';
import { batchRunOnce } from '../../scripts/batch-command.ts';
import { README_AVAILABILITY, README_LB, sampleBatch } from '../helpers/batch-samples.ts';
import { REDIS_URL, startTestRole, testConfig, testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);
const CLI = path.resolve(import.meta.dirname, '../../scripts/dockhand.js');

const batchRoot = (t: Test) => tempDir(t, 'batches');

function dropBatch(root: string, name: string, files: Record<string, unknown | string>, mtime?: Date) {
  const dir = path.join(root, 'Inputs', name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  }
  if (mtime) utimesSync(dir, mtime, mtime);
  return dir;
}

async function runOnce(config: Config) {
  const lines: string[] = [];
  const code = await batchRunOnce(config, (l) => lines.push(l));
  return { code, log: lines.join('\n') };
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const README = { 'lb_performance.json': README_LB, 'availability_incidents.json': README_AVAILABILITY };

t.test('run-once: the README batch, then nothing pending; state and logs as the old runner', async (t) => {
  const root = batchRoot(t);
  const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root });
  const dir = dropBatch(root, 'Sample1', README);

  const first = await runOnce(config);
  t.equal(first.code, 0);
  t.match(first.log, /\[runner\] subdirs: \["Sample1"\]/);
  t.match(first.log, /pending candidates: \["Sample1"\]/);
  t.match(first.log, /Missing mapped files: \[.*"tagging_coverage.json"/);
  t.match(first.log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /m, 'UTC timestamps');
  const result = readJson(path.join(root, 'Outputs', 'Sample1', 'result.json'));
  t.same(Object.keys(result.metrics).sort(), ['availability.incidents', 'lb.performance']);
  t.equal(result.summary.scored_metrics, 2);
  t.same(readJson(path.join(root, 'state', 'processed.json')), [dir], 'absolute path recorded');
  t.same(readdirSync(dir).sort(), ['availability_incidents.json', 'lb_performance.json'], 'lock removed');
  t.same(readdirSync(path.join(root, 'Outputs', 'Sample1')), ['result.json'], 'no temp file left');

  const second = await runOnce(config);
  t.equal(second.code, 0);
  t.match(second.log, /skip Sample1: already processed/);
  t.match(second.log, /nothing pending/);
});

t.test('run-once: globs, locks (fresh and stale) and newest-first', async (t) => {
  const root = batchRoot(t);
  const nested = dropBatch(
    root,
    'Nested',
    { 'inputs/lb_performance.json': README_LB },
    new Date(Date.now() - 60_000),
  );
  const locked = dropBatch(root, 'Locked', README, new Date(Date.now() - 50_000));
  writeFileSync(path.join(locked, '.lock'), '{}');
  const stale = dropBatch(root, 'Stale', README, new Date(Date.now() - 40_000));
  writeFileSync(path.join(stale, '.lock'), '{}');
  const old = new Date(Date.now() - 3 * 3600_000);
  utimesSync(path.join(stale, '.lock'), old, old);
  utimesSync(stale, new Date(Date.now() - 40_000), new Date(Date.now() - 40_000));

  const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root, BATCH_LOCK_STALE_SECONDS: '3600' });
  const first = await runOnce(config);
  t.match(first.log, /skip Nested: no input files/);
  t.match(first.log, /skip Locked: locked/);
  t.match(first.log, /pending candidates: \["Stale"\]/, 'a stale lock does not block');
  t.equal(first.code, 0);
  t.ok(
    readJson(path.join(root, 'state', 'processed.json')).includes(stale),
    'stale lock reclaimed and processed',
  );

  writeFileSync(path.join(root, 'config.yaml'), 'file_glob_patterns:\n  - "*.json"\n  - "inputs/*.json"\n');
  const withGlobs = testConfig(t, { CLOUD_INFRA_DATA_DIR: root });
  const second = await runOnce(withGlobs);
  t.match(second.log, /pending candidates: \["Nested"\]/);
  t.ok(readJson(path.join(root, 'state', 'processed.json')).includes(nested));
  t.ok(readJson(path.join(root, 'Outputs', 'Nested', 'result.json')).metrics['lb.performance']);

  const root2 = batchRoot(t);
  dropBatch(root2, 'Older', README, new Date(Date.now() - 100_000));
  dropBatch(root2, 'Newer', README, new Date(Date.now() - 10_000));
  const paced = await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: root2 }));
  t.match(paced.log, /pending candidates: \["Newer","Older"\]/);
  t.match(paced.log, /Newer: wrote/, 'one batch per pass, the newest');
  t.notMatch(paced.log, /Older: wrote/);
});

t.test('run-once exit codes: engine failure 1, unwritable result 2, nothing half-written', async (t) => {
  const root = batchRoot(t);
  dropBatch(root, 'B1', README);
  writeFileSync(path.join(root, 'config.yaml'), 'engine_command: "sh -c \'echo boom >&2; exit 3\'"\n');
  const failed = await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: root }));
  t.equal(failed.code, 1);
  t.match(failed.log, /B1 failed: engine_command failed \(3\): boom/);
  t.same(readdirSync(path.join(root, 'Inputs', 'B1')).sort(), [
    'availability_incidents.json',
    'lb_performance.json',
  ]);

  const blocker = path.join(root, 'not-a-dir');
  writeFileSync(blocker, 'x');
  writeFileSync(path.join(root, 'config.yaml'), `outputs_root: "${blocker}/out"\n`);
  const unwritable = await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: root }));
  t.equal(unwritable.code, 2);
  t.match(unwritable.log, /Could not write/);

  const external = JSON.stringify({
    metrics: {},
    summary: { overall_score: null, category_scores: {}, breakdown: [], scored_metrics: 0 },
  });
  writeFileSync(path.join(root, 'external.json'), external);
  writeFileSync(path.join(root, 'config.yaml'), `engine_command: "cat ${root}/external.json; true"\n`);
  const ok = await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: root }));
  t.equal(ok.code, 0, ok.log);
  t.equal(
    readJson(path.join(root, 'Outputs', 'B1', 'result.json')).summary.scored_metrics,
    0,
    'the external engine wrote it',
  );

  const broken = batchRoot(t);
  dropBatch(broken, 'Broken', {
    'lb_performance.json': '{"load_balancers": [',
    'availability_incidents.json': README_AVAILABILITY,
  });
  const partial = await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: broken }));
  t.equal(partial.code, 0, 'an unreadable file is a gap, not a failure');
  const result = readJson(path.join(broken, 'Outputs', 'Broken', 'result.json'));
  t.equal(result.metrics['lb.performance'].score, null);
  t.equal(result.metrics['lb.performance'].confidence, 0);
  t.match(result.metrics['lb.performance'].gaps[0], /lb_performance.json/);
  t.equal(result.summary.scored_metrics, 1);
});

t.test('the CLI command runs one pass with the old exit code', async (t) => {
  const root = batchRoot(t);
  dropBatch(root, 'Cli', README);
  const env = testEnv(t, { CLOUD_INFRA_DATA_DIR: root });
  const child = spawn(process.execPath, [CLI, 'batch', 'run-once'], {
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
  t.match(out, /Cli: wrote .*result\.json/);
  const bad = spawn(process.execPath, [CLI, 'batch', 'run-twice'], {
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  t.equal((await once(bad, 'exit'))[0], 2);
});

t.test('through the queue: POST /batches, GET /batches, result, ticks', async (t) => {
  const root = batchRoot(t);
  const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root });
  const { app, queues } = await startTestRole(t, 'all', config);
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
  t.teardown(() => events.close());
  await events.waitUntilReady();

  const done = new Promise((resolve) => events.once('completed', resolve));
  const created = await app.inject({
    method: 'POST',
    url: '/batches',
    payload: { name: 'All16', files: sampleBatch(1) },
  });
  t.equal(created.statusCode, 201, created.body);
  t.equal(created.json().name, 'All16');
  await done;
  const list = (await app.inject({ method: 'GET', url: '/batches' })).json();
  t.same(
    list.batches.map((b: { name: string; status: string }) => [b.name, b.status]),
    [['All16', 'done']],
  );
  t.equal(list.batches[0].path, 'Inputs/All16', 'named as users know it');
  t.notOk(JSON.stringify(list).includes(root), 'no host path in the answer');
  const result = await app.inject({ method: 'GET', url: '/batches/All16/result' });
  t.equal(result.statusCode, 200);
  t.equal(result.json().summary.scored_metrics, 16);

  const again = await app.inject({
    method: 'POST',
    url: '/batches',
    payload: { name: 'All16', files: README },
  });
  t.equal(again.statusCode, 409);
  t.equal(again.json().error, 'conflict');

  const bad: Array<[unknown, string]> = [
    [{ name: '../escape', files: README }, 'body.name'],
    [{ name: '.hidden', files: README }, 'body.name'],
    [{ name: 'ok', files: { '../x.json': {} } }, 'body.files.../x.json'],
    [{ name: 'ok', files: { 'sub/lb_performance.json': {} } }, 'body.files.sub/lb_performance.json'],
    [{ name: 'ok', files: { 'notes.txt': {} } }, 'body.files.notes.txt'],
    [{ name: 'ok', files: { 'other.json': {} } }, 'body.files'],
    [{ name: 'ok', files: {} }, 'body.files'],
  ];
  for (const [payload, field] of bad) {
    const res = await app.inject({ method: 'POST', url: '/batches', payload: payload as object });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.equal(res.json().field, field);
  }
  t.same(readdirSync(path.join(root, 'Inputs')), ['All16'], 'nothing written for refused batches');

  t.equal((await app.inject({ method: 'GET', url: '/batches/nope/result' })).statusCode, 404);

  // A folder dropped by hand waits for a tick; two racing ticks queue it once.
  dropBatch(root, 'Dropped', README);
  const pendingView = (await app.inject({ method: 'GET', url: '/batches' })).json();
  t.equal(pendingView.batches.find((b: { name: string }) => b.name === 'Dropped').status, 'pending');
  t.match(
    (await app.inject({ method: 'GET', url: '/batches/Dropped/result' })).json().message,
    /no result yet/,
  );
  const finished = new Promise<void>((resolve) => {
    events.on('completed', ({ jobId }) => {
      if (jobId.endsWith('Dropped')) resolve();
    });
  });
  const [a, b] = await Promise.all([
    app.inject({ method: 'POST', url: '/batches/tick' }),
    app.inject({ method: 'POST', url: '/batches/tick' }),
  ]);
  t.equal(a.statusCode, 200);
  t.same(a.json().handlers.batches.result.enqueued, ['Dropped']);
  t.same(b.json().handlers.batches.result.enqueued, ['Dropped']);
  await finished;
  const jobs = await queues.batches.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed']);
  t.equal(jobs.filter((j) => String(j.id).endsWith('Dropped')).length, 1, 'queued once');
  t.equal(readJson(path.join(root, 'state', 'processed.json')).length, 2);
});

t.test(
  'POST /batches/validate: understood, missing and ignored fields; 400s as POST /batches; writes nothing',
  async (t) => {
    const root = batchRoot(t);
    const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root });
    const { app, queues } = await startTestRole(t, 'gateway', config);
    const validate = (payload: object) => app.inject({ method: 'POST', url: '/batches/validate', payload });

    const res = await validate({
      name: 'Check1',
      files: {
        ...README,
        'security_public_exposure.json': {
          resources: [{ id: 'sg-1', open_to_world: true, ports: [22], colour: 'red' }],
        },
        'security_iam_risk.json': { users: [{ name: 'bob', mfa: false, admin: true, key_age_days: 400 }] },
        'security_encryption.json': { resources: [{ id: 'x', colour: 'red' }], owner: 'ops' },
        'notes.json': { anything: true },
      },
    });
    t.equal(res.statusCode, 200, res.body);
    const body = res.json();
    t.equal(body.name, 'Check1');
    t.same(Object.keys(body.metrics).sort(), [
      'availability.incidents',
      'lb.performance',
      'security.encryption',
      'security.iam_risk',
      'security.public_exposure',
    ]);
    t.same(body.ignored_files, ['notes.json']);
    t.notOk('score' in body.metrics['lb.performance'], 'no score is computed for the answer');

    const exposure = body.metrics['security.public_exposure'];
    t.equal(exposure.file, 'security_public_exposure.json');
    t.equal(exposure.would_score, true);
    t.same(
      exposure.understood.find((u: { field: string }) => u.field === 'resources[].public'),
      { field: 'resources[].public', as: ['open_to_world'] },
    );
    t.same(exposure.ignored, ['resources[].colour']);
    t.same(exposure.missing, []);

    const iam = body.metrics['security.iam_risk'];
    t.equal(iam.would_score, true);
    t.same(
      iam.missing.map((m: { field: string }) => m.field),
      ['root_mfa_enabled'],
    );
    t.ok(iam.missing[0].accepts.includes('root_mfa_enabled'));

    const encryption = body.metrics['security.encryption'];
    t.equal(encryption.would_score, false, 'nothing it understood: it would not be scored');
    t.same(encryption.ignored, ['owner', 'resources[].colour']);
    t.same(
      encryption.missing.map((m: { field: string }) => m.field),
      ['resources[].encrypted_at_rest', 'resources[].tls_in_transit'],
    );
    t.equal(body.metrics['lb.performance'].would_score, true);
    t.same(body.metrics['lb.performance'].ignored, []);

    const bad: Array<[unknown, string]> = [
      [{ name: '../escape', files: README }, 'body.name'],
      [{ name: 'ok', files: { '../x.json': {} } }, 'body.files.../x.json'],
      [{ name: 'ok', files: { 'notes.txt': {} } }, 'body.files.notes.txt'],
      [{ name: 'ok', files: { 'other.json': {} } }, 'body.files'],
      [{ name: 'ok', files: {} }, 'body.files'],
      [{ name: 'ok', files: README, extra: 1 }, 'body'],
    ];
    for (const [payload, field] of bad) {
      const refused = await validate(payload as object);
      const same = await app.inject({ method: 'POST', url: '/batches', payload: payload as object });
      t.equal(refused.statusCode, 400, JSON.stringify(payload));
      t.same(refused.json(), same.json(), `${JSON.stringify(payload)}: the same 400 as POST /batches`);
      t.match(refused.json(), { error: 'validation_error', message: String, field });
    }

    t.same(readdirSync(root), [], 'nothing written: no Inputs/, no state');
    t.equal((await queues.batches.getJobCounts()).waiting ?? 0, 0, 'nothing queued');
    t.equal(await queues.batches.count(), 0);
  },
);

t.test('a batch whose fields are all unknown is not scored: overall_score null, not 5', async (t) => {
  const root = batchRoot(t);
  const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root });
  const { app } = await startTestRole(t, 'all', config);
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
  t.teardown(() => events.close());
  await events.waitUntilReady();

  const done = new Promise((resolve) => events.once('completed', resolve));
  const created = await app.inject({
    method: 'POST',
    url: '/batches',
    payload: {
      name: 'Unknown',
      files: {
        'security_public_exposure.json': { resources: [{ id: 'sg-1', colour: 'red' }] },
        'security_iam_risk.json': { users: [{ name: 'bob', shoe_size: 44 }] },
        'lb_performance.json': { load_balancers: [{ id: 'alb-1', speed: 'fast' }] },
      },
    },
  });
  t.equal(created.statusCode, 201, created.body);
  await done;
  const res = await app.inject({ method: 'GET', url: '/batches/Unknown/result' });
  t.equal(res.statusCode, 200, res.body);
  const result = res.json();
  t.equal(result.summary.overall_score, null);
  t.equal(result.summary.scored_metrics, 0);
  t.same(result.summary.category_scores, {});
  for (const [id, m] of Object.entries(result.metrics) as Array<
    [string, { score: unknown; confidence: number; gaps: string[] }]
  >) {
    t.equal(m.score, null, `${id} score null`);
    t.equal(m.confidence, 0, `${id} confidence 0`);
    t.ok(
      m.gaps.some((g) => /was not found \(accepted names: /.test(g)),
      `${id} gaps name the fields it needed`,
    );
  }
  const onDisk = readJson(path.join(root, 'Outputs', 'Unknown', 'result.json'));
  t.equal(onDisk.metrics['security.public_exposure'].score, null, 'null is written, not 0');
});

t.test('the LLM narrative rewrites rationales, never scores, and its failure changes nothing', async (t) => {
  let mode: 'ok' | 'fail' = 'ok';
  const stub = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      if (mode === 'fail') {
        res.writeHead(500, { 'content-type': 'application/json' });
        return res.end('{"error":{"message":"down"}}');
      }
      const items = JSON.parse(JSON.parse(body).messages[1].content) as Array<{ metric_id: string }>;
      const rationales = Object.fromEntries(
        items.map((i) => [i.metric_id, `Plain words about ${i.metric_id}.`]),
      );
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          created: 0,
          model: 'stub',
          choices: [
            {
              index: 0,
              finish_reason: 'stop',
              message: { role: 'assistant', content: JSON.stringify({ rationales }) },
            },
          ],
        }),
      );
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  t.teardown(() => stub.close());
  const port = (stub.address() as AddressInfo).port;
  const llm = {
    LLM_PROVIDER: 'openai',
    OPENAI_API_KEY: 'test',
    OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
  };

  const plainRoot = batchRoot(t);
  dropBatch(plainRoot, 'S', README);
  await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: plainRoot }));
  const plain = readJson(path.join(plainRoot, 'Outputs', 'S', 'result.json'));

  const root = batchRoot(t);
  dropBatch(root, 'S', README);
  t.equal((await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: root, ...llm }))).code, 0);
  const told = readJson(path.join(root, 'Outputs', 'S', 'result.json'));
  t.equal(told.metrics['lb.performance'].rationale, 'Plain words about lb.performance.');
  t.equal(told.metrics['lb.performance'].evidence.rule_rationale, plain.metrics['lb.performance'].rationale);
  t.equal(
    told.metrics['lb.performance'].score,
    plain.metrics['lb.performance'].score,
    'scores never depend on it',
  );
  t.same(told.summary, plain.summary);

  mode = 'fail';
  const root2 = batchRoot(t);
  dropBatch(root2, 'S', README);
  const failing = await runOnce(testConfig(t, { CLOUD_INFRA_DATA_DIR: root2, ...llm }));
  t.equal(failing.code, 0, 'the run succeeds');
  t.match(failing.log, /narrative skipped/);
  t.same(
    readJson(path.join(root2, 'Outputs', 'S', 'result.json')).metrics,
    plain.metrics,
    'deterministic rationale kept',
  );
});
