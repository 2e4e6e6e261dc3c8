import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { batchRunOnce } from '../../scripts/batch-command.ts';
import { README_LB } from '../helpers/batch-samples.ts';
import { REDIS_URL, startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

// engine_command runs an operator's program on every batch: it gets PATH, HOME, LANG, TZ,
// BATCH_DIR and the variables the operator names, never Dockhand's own secrets.
process.env.AWS_SECRET_ACCESS_KEY = 'aws-secret-of-the-server';
process.env.DOCKHAND_TEST_SECRET = 'hunter2';
process.env.ENGINE_TOKEN = 'named in config.yaml';
process.env.ENGINE_REGION = 'named in BATCH_ENGINE_ENV';

function batchWithEnvPrintingEngine(t: Test): string {
  const root = tempDir(t, 'engine-env');
  mkdirSync(path.join(root, 'Inputs', 'B1'), { recursive: true });
  writeFileSync(path.join(root, 'Inputs', 'B1', 'lb_performance.json'), JSON.stringify(README_LB));
  const engine = path.join(root, 'engine.mjs');
  writeFileSync(
    engine,
    `process.stdout.write(JSON.stringify({
  metrics: {},
  summary: { overall_score: null, category_scores: {}, breakdown: [], scored_metrics: 0 },
  env: process.env,
}));`,
  );
  writeFileSync(
    path.join(root, 'config.yaml'),
    `engine_command: "${process.execPath} ${engine}"\nengine_env: [ENGINE_TOKEN]\n`,
  );
  return root;
}

const engineSaw = (root: string) =>
  JSON.parse(readFileSync(path.join(root, 'Outputs', 'B1', 'result.json'), 'utf8')).env as Record<
    string,
    string
  >;

t.test('the engine sees the base variables and those named, no secret', async (t) => {
  const root = batchWithEnvPrintingEngine(t);
  const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root, BATCH_ENGINE_ENV: 'ENGINE_REGION' });
  const lines: string[] = [];
  t.equal(await batchRunOnce(config, (l) => lines.push(l)), 0, lines.join('\n'));
  const env = engineSaw(root);
  t.notOk('AWS_SECRET_ACCESS_KEY' in env, 'no cloud credential');
  t.notOk('DOCKHAND_TEST_SECRET' in env, 'no secret of the server');
  t.notOk('REDIS_URL' in env);
  t.equal(env.ENGINE_TOKEN, 'named in config.yaml');
  t.equal(env.ENGINE_REGION, 'named in BATCH_ENGINE_ENV');
  t.equal(env.BATCH_DIR, path.join(root, 'Inputs', 'B1'));
  t.equal(env.PATH, process.env.PATH);
  const allowed = ['PATH', 'HOME', 'LANG', 'TZ', 'BATCH_DIR', 'ENGINE_TOKEN', 'ENGINE_REGION'];
  // sh may add PWD, SHLVL and `_`; tap's process tracking adds NODE_OPTIONS and _TAPJS_* to
  // every child it spawns. Nothing else may appear.
  const added = ['PWD', 'SHLVL', '_', 'OLDPWD', 'NODE_OPTIONS'];
  t.same(
    Object.keys(env).filter((k) => !allowed.includes(k) && !added.includes(k) && !k.startsWith('_TAPJS_')),
    [],
  );
});

t.test('the same through a worker: POST /batches/tick, then the queue', async (t) => {
  const root = batchWithEnvPrintingEngine(t);
  const config = testConfig(t, { CLOUD_INFRA_DATA_DIR: root, REDIS_URL });
  const { app, queues } = await startTestRole(t, 'all', config);
  t.equal((await app.inject({ method: 'POST', url: '/batches/tick' })).statusCode, 200);
  const [job] = await queues.batches.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
  t.ok(job, 'the tick queued the batch');
  const { QueueEvents } = await import('bullmq');
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix: config.redis.prefix });
  t.teardown(() => events.close());
  await events.waitUntilReady();
  await job?.waitUntilFinished(events);
  const env = engineSaw(root);
  t.notOk('DOCKHAND_TEST_SECRET' in env);
  t.notOk('AWS_SECRET_ACCESS_KEY' in env);
  t.equal(env.ENGINE_TOKEN, 'named in config.yaml');
  t.notOk('ENGINE_REGION' in env, 'not named for this one');
});
