import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import YAML from 'yaml';
import { closeRedis, connectRedis, createRedis } from '../../queues/connection.ts';
import { parseInfoMemory, registerRedisMemoryGauges } from '../../queues/redis-metrics.ts';
import { clientNames } from '../../queues/worker-metrics.ts';
import { startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import {
  familyOf,
  parseScrape,
  type Scrape,
  type Selector,
  selectors,
  withoutGrafanaVariables,
} from '../helpers/promql.ts';
import { startRedisServer } from '../helpers/redis-server.ts';
import { startTargetServer } from '../helpers/target-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

const ROOT = new URL('../../', import.meta.url).pathname;
const PROMETHEUS_DIR = join(ROOT, 'docker/prometheus');
const DASHBOARD = join(ROOT, 'docker/grafana/dashboards/dockhand.json');
const REG = 'dashboards-registration-token-0123';
// Grafana's syntax for the dashboard's data source variable.
const DATASOURCE = ['$', '{datasource}'].join('');

// Made by Prometheus itself, never by a target.
const PROMETHEUS_MADE = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'ALERTS']);
// Labels Prometheus puts on every scraped series (the role label is prometheus.yml's).
const TARGET_LABELS = new Set(['job', 'instance', 'role']);

/** Runs promtool without blocking this process (its child may be slow; nothing here is served to it). */
function promtool(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: PROMETHEUS_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(input ?? '');
  });
}
const havePromtool = await promtool(['--version']).then(
  (r) => r.code === 0,
  () => false,
);

interface Expression {
  where: string;
  expr: string;
}

/** Every query of the dashboard: panel targets and the queue variable's label_values(). */
async function dashboardExpressions(): Promise<{ exprs: Expression[]; dashboard: Dashboard }> {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  const exprs: Expression[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? [])
      exprs.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
  }
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (variable.type !== 'query' || !query) continue;
    const labelValues = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
    exprs.push({ where: `variable ${variable.name}`, expr: labelValues?.[1] ?? query });
  }
  return { exprs, dashboard };
}
interface Dashboard {
  uid: string;
  panels: Array<{
    id: number;
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
  }>;
  templating: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
}

async function ruleFile(): Promise<{
  exprs: Expression[];
  records: Set<string>;
}> {
  const doc = YAML.parse(await readFile(join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as {
    groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string }> }>;
  };
  const exprs: Expression[] = [];
  const records = new Set<string>();
  for (const group of doc.groups)
    for (const rule of group.rules) {
      if (rule.record) records.add(rule.record);
      exprs.push({ where: `rule ${rule.record ?? rule.alert}`, expr: rule.expr });
    }
  return { exprs, records };
}

/** What is wrong with one selector against the scrape; empty when nothing is. */
function problems(scrape: Scrape, records: Set<string>, { metric, matchers }: Selector): string[] {
  if (records.has(metric) || PROMETHEUS_MADE.has(metric)) return [];
  if (!familyOf(scrape, metric)) return [`${metric} is not a metric Dockhand serves`];
  const series = scrape.samples.get(metric);
  // A labelled counter nothing has counted yet has no samples to check labels against.
  if (!series) return [];
  const found: string[] = [];
  for (const { label, op, value } of matchers) {
    if (TARGET_LABELS.has(label)) continue;
    if (!series.some((s) => label in s)) {
      found.push(`${metric} has no label ${label}`);
      continue;
    }
    // Values named literally (`state="waiting"`, `state=~"waiting|prioritized"`) must occur.
    const literal =
      op === '=' ? [value] : op === '=~' && /^[\w-]+(\|[\w-]+)*$/.test(value) ? value.split('|') : [];
    for (const v of literal)
      if (!series.some((s) => s[label] === v)) found.push(`${metric} has no series with ${label}="${v}"`);
  }
  return found;
}

t.test('parsing helpers', async (t) => {
  t.same(
    selectors(
      'sum by (queue) (rate(x_total{queue=~"a|b", s!="c"}[5m])) / on (queue) group_left(kind) max(y) or vector(0) > bool 1 and z offset 5m',
    ),
    [
      {
        metric: 'x_total',
        matchers: [
          { label: 'queue', op: '=~', value: 'a|b' },
          { label: 's', op: '!=', value: 'c' },
        ],
      },
      { metric: 'y', matchers: [] },
      { metric: 'z', matchers: [] },
    ],
  );
  t.same(selectors('sum(rate(a[5m:1m])) by (le)'), [{ metric: 'a', matchers: [] }]);
  t.same(selectors('{__name__="a", b="c"}'), [
    { metric: 'a', matchers: [{ label: 'b', op: '=', value: 'c' }] },
  ]);
  t.equal(withoutGrafanaVariables('rate(a{q=~"$queue"}[$__rate_interval])'), 'rate(a{q=~".*"}[5m])');
  t.same(parseInfoMemory('# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\nused_memory_human:1K\r\n'), {
    used: 1024,
    max: 0,
  });
  t.same(parseInfoMemory('used_memory:-1\r\nmaxmemory:lots\r\n'), { used: undefined, max: undefined });
  t.same(clientNames('id=1 addr=x name=p:aHR0cA== age=1\nid=2 addr=y name= age=2\nid=3 name=q:w:z\n'), [
    'p:aHR0cA==',
    'q:w:z',
  ]);
});

t.test('Redis memory gauges read INFO memory; NaN when Redis cannot be read', async (t) => {
  const server = await startRedisServer(['--maxmemory', '64mb']);
  t.teardown(() => server.stop());
  const redis = await connectRedis(createRedis(server.url, 'producer'), server.url);
  t.teardown(() => closeRedis(redis));
  const registry = new Registry();
  registerRedisMemoryGauges(registry, redis);
  const text = await registry.metrics();
  t.match(text, /^dockhand_redis_memory_max_bytes 67108864$/m);
  const used = Number(/^dockhand_redis_memory_used_bytes (\d+)$/m.exec(text)?.[1]);
  t.ok(used > 0 && used < 67108864, `used_memory ${used}`);
  await server.stop();
  const down = await registry.metrics();
  t.match(down, /^dockhand_redis_memory_used_bytes NaN$/im, 'no zero that would read as plenty left');
  t.match(down, /^dockhand_redis_memory_max_bytes NaN$/im);
});

t.test('a running Dockhand serves every metric the dashboard and the alerts name', async (t) => {
  const target = await startTargetServer();
  t.teardown(() => target.close());
  const config = testConfig(t, {
    HTTP_JOBS_ALLOWLIST: '127.0.0.1',
    NODE_REGISTRATION_TOKEN: REG,
    NODE_AGENT: 'no',
  });
  // A gateway alone first: no worker of this prefix is connected yet.
  const gateway = await startTestRole(t, 'gateway', config);
  t.match(
    (await gateway.app.inject({ url: '/metrics' })).body,
    /^dockhand_queue_workers\{queue="http-jobs"\} 0$/m,
    'a gateway alone sees no worker',
  );

  const { app } = await startTestRole(t, 'all', config);

  // A little of everything, so counters and histograms have series: an HTTP job that completes
  // and one that fails (refused address), a function called cold then warm, a node heartbeat.
  const job = async (url: string) => {
    const { id } = (await app.inject({ method: 'POST', url: '/jobs', payload: { url } })).json();
    return waitFor(
      async () => {
        const view = (await app.inject({ url: `/jobs/${id}` })).json();
        return ['succeeded', 'failed'].includes(view.status) && view.status;
      },
      { what: `job ${id} to finish` },
    );
  };
  t.equal(await job(`${target.url}/ok`), 'succeeded');
  t.equal(await job('http://127.0.0.2:9/'), 'failed', 'an address outside the allowlist fails the job');

  const deployed = await app.inject({
    method: 'PUT',
    url: '/functions/hello',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': 'exports.handler = async () => "hi";' } },
    },
  });
  t.equal(deployed.statusCode, 201, deployed.body);
  for (const expected of [true, false]) {
    const call = (await app.inject({ method: 'POST', url: '/functions/hello/invoke', payload: {} })).json();
    t.equal(call.status, 'SUCCESS');
    t.equal(call.coldStart, expected, expected ? 'first call: cold' : 'second call: warm');
  }

  const reg = await app.inject({
    method: 'POST',
    url: '/api/v1/nodes/register',
    headers: { authorization: `Bearer ${REG}` },
    payload: {
      name: 'node-a',
      ip: '192.0.2.5',
      capabilities: { os: 'linux', cpu_count: 2, mem_mb: 2048, disk_mb: 10000 },
    },
  });
  t.equal(reg.statusCode, 200, reg.body);
  const { node_id, node_token } = reg.json();
  const beat = await app.inject({
    method: 'POST',
    url: `/api/v1/nodes/${node_id}/heartbeat`,
    headers: { authorization: `Bearer ${node_token}` },
    payload: { cpu_usage: 12.5, mem_usage: 40, disk_free_mb: 1000 },
  });
  t.equal(beat.statusCode, 200, beat.body);

  const text = (await app.inject({ url: '/metrics' })).body;
  const scrape = parseScrape(text);

  t.test('the new gauges say what they should', async (t) => {
    t.match(text, /^dockhand_queue_workers\{queue="http-jobs"\} [1-9]/m, 'the worker of http-jobs is seen');
    t.match(text, /^dockhand_queue_workers\{queue="scheduler"\} [1-9]/m);
    t.match(text, /^dockhand_queue_ready_workers\{queue="functions"\} 1$/m, 'its presence beacon too');
    t.match(text, /^dockhand_redis_memory_used_bytes [1-9]\d*$/m);
    t.match(text, /^dockhand_redis_memory_max_bytes \d+$/m);
    t.match(text, new RegExp(`^dockhand_node_cpu_usage_percent\\{node="${node_id}"\\} 12.5$`, 'm'));
  });

  const { exprs: dashboardExprs, dashboard } = await dashboardExpressions();
  const { exprs: ruleExprs, records } = await ruleFile();

  t.test('every metric and label the dashboard and the rules name exists', async (t) => {
    const named = new Set<string>();
    const found: string[] = [];
    for (const { where, expr } of [...dashboardExprs, ...ruleExprs]) {
      const list = selectors(withoutGrafanaVariables(expr));
      if (list.length === 0) found.push(`${where}: names no metric`);
      for (const selector of list) {
        named.add(selector.metric);
        for (const problem of problems(scrape, records, selector)) found.push(`${where}: ${problem}`);
      }
    }
    t.same(found, [], 'no expression names a metric, label or value Dockhand does not serve');
    t.ok(
      dashboardExprs.length >= 30 && ruleExprs.length >= 10,
      `${dashboardExprs.length} + ${ruleExprs.length} expressions`,
    );

    // The list: each of these is on the dashboard.
    const dashboardMetrics = new Set(
      dashboardExprs.flatMap(({ expr }) => selectors(withoutGrafanaVariables(expr)).map((s) => s.metric)),
    );
    for (const metric of [
      'dockhand_queue_jobs',
      'dockhand_job_duration_seconds_bucket',
      'dockhand_jobs_completed_total',
      'dockhand_jobs_failed_total',
      'worker_jobs_processed_total',
      'dockhand_cold_starts_total',
      'dockhand_warm_starts_total',
      'dockhand_pool_containers',
      'dockhand_nodes',
      'dockhand_node_cpu_usage_percent',
      'dockhand_node_memory_usage_percent',
      'dockhand_queue_workers',
      'dockhand_redis_memory_used_bytes',
    ])
      t.ok(dashboardMetrics.has(metric), `the dashboard shows ${metric}`);
    // And the alerts watch what wakes someone.
    const ruleMetrics = new Set(ruleExprs.flatMap(({ expr }) => selectors(expr).map((s) => s.metric)));
    for (const metric of [
      'dockhand_queue_jobs',
      'dockhand_jobs_failed_total',
      'dockhand_queue_workers',
      'dockhand_redis_memory_max_bytes',
      'dockhand_node_heartbeat_age_seconds',
    ])
      t.ok(ruleMetrics.has(metric), `an alert watches ${metric}`);
  });

  t.test('the checker itself refuses a metric or a label value that does not exist', async (t) => {
    const check = (expr: string) => selectors(expr).flatMap((s) => problems(scrape, records, s));
    t.same(check('rate(dockhand_jobs_failed_total[5m])'), []);
    t.same(check('dockhand_job_duration_seconds_bucket{le="+Inf"}'), []);
    t.match(check('rate(dockhand_jobs_failled_total[5m])'), [/dockhand_jobs_failled_total is not a metric/]);
    t.match(check('dockhand_job_duration_seconds_total'), [/not a metric/]);
    t.match(check('dockhand_queue_jobs{state="wating"}'), [/no series with state="wating"/]);
    t.match(check('dockhand_nodes{state="online"}'), [/has no label state/]);
  });

  t.test('every panel queries the dashboard data source variable', async (t) => {
    t.equal(dashboard.uid, 'dockhand');
    const ids = new Set<number>();
    for (const panel of dashboard.panels) {
      t.notOk(ids.has(panel.id), `panel id ${panel.id} is unique`);
      ids.add(panel.id);
      if (panel.type === 'row') continue;
      t.equal(panel.datasource?.uid, DATASOURCE, `${panel.title}: data source`);
      t.ok(panel.targets?.length, `${panel.title}: has queries`);
    }
  });

  t.test('promtool accepts the config, the rules, every dashboard query and the scrape', async (t) => {
    if (!havePromtool) {
      t.fail("promtool is not installed: scripts/prepare.sh installs it (Debian's prometheus package)");
      return;
    }
    const config = await promtool(['check', 'config', 'prometheus.yml']);
    t.equal(config.code, 0, config.output);
    const rules = await promtool(['check', 'rules', 'alerts.yml']);
    t.equal(rules.code, 0, rules.output);
    const unit = await promtool(['test', 'rules', 'alerts.test.yml']);
    t.equal(unit.code, 0, unit.output);

    // Each dashboard query as a recording rule, so promtool parses it as Prometheus would.
    const dir = tempDir(t, 'promql');
    const file = join(dir, 'dashboard-rules.yml');
    await writeFile(
      file,
      YAML.stringify({
        groups: [
          {
            name: 'dashboard',
            rules: dashboardExprs.map(({ expr }, i) => ({
              record: `dashboard:query_${i}`,
              expr: withoutGrafanaVariables(expr),
            })),
          },
        ],
      }),
    );
    const queries = await promtool(['check', 'rules', file]);
    t.equal(queries.code, 0, queries.output);
    t.match(queries.output, new RegExp(`SUCCESS: ${dashboardExprs.length} rules found`));

    // Lint of the exposition: only prom-client's own gauges and the Infra-worker's
    // worker_cpu_usage_seconds (a counter without _total, its name kept for old dashboards).
    const lint = await promtool(['check', 'metrics'], text);
    const lines = lint.output
      .split('\n')
      .filter((l) => l.trim() && !/^(nodejs_active_|worker_cpu_usage_seconds )/.test(l));
    t.same(lines, [], 'no other metric breaks the naming conventions');
  });
});
