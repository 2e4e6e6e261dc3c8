import { readFile } from 'node:fs/promises';
import t from 'tap';
import { METRIC_BY_FILE, METRICS } from '../../processors/batches/catalog.ts';
import { type MetricInput, scoreBatch } from '../../processors/batches/engine.ts';
import type { MetricScorer } from '../../processors/batches/scorers/define-metric.ts';
import { EXTRA_INPUTS, hideFields, respell } from '../helpers/batch-fields.ts';
import { README_AVAILABILITY, README_LB, sampleBatch } from '../helpers/batch-samples.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const asInputs = (files: Record<string, unknown>): Record<string, MetricInput> =>
  Object.fromEntries(
    Object.entries(files).map(([file, value]) => [
      METRIC_BY_FILE[file] as string,
      { ok: true, value } as MetricInput,
    ]),
  );

t.test('the README example batch scores its two metrics and nothing else', async (t) => {
  const result = scoreBatch(
    asInputs({ 'lb_performance.json': README_LB, 'availability_incidents.json': README_AVAILABILITY }),
  );
  t.same(Object.keys(result.metrics).sort(), ['availability.incidents', 'lb.performance']);
  const lb = result.metrics['lb.performance'];
  t.equal(lb?.metric_id, 'lb.performance');
  t.ok((lb?.score ?? 0) >= 4 && (lb?.score ?? 0) <= 5, `well inside its SLO scores 4–5 (${lb?.score})`);
  t.same(lb?.gaps, []);
  t.ok((lb?.confidence ?? 0) >= 0.85);
  t.equal(result.metrics['availability.incidents']?.score, 5, 'no incidents, no breaches');
  t.equal(result.summary.scored_metrics, 2);
  t.same(Object.keys(result.summary.category_scores), ['reliability']);
  t.equal(result.summary.overall_score, result.summary.category_scores.reliability);
  t.equal(result.summary.breakdown[0]?.metrics.length, 2);
});

t.test('a batch with all 16 files scores all 16 with full confidence', async (t) => {
  const result = scoreBatch(asInputs(sampleBatch(1)));
  t.equal(Object.keys(result.metrics).length, 16);
  t.equal(result.summary.scored_metrics, 16);
  for (const [id, m] of Object.entries(result.metrics)) {
    t.same(m.gaps, [], `${id} has no gaps`);
    t.ok(m.score !== null && m.score >= 3.5, `${id} healthy input scores well (${m.score})`);
    t.equal(Math.round((m.score ?? 0) * 10) / 10, m.score, `${id} has one decimal`);
    t.ok(m.confidence > 0.5 && m.confidence <= 1, `${id} confidence ${m.confidence}`);
    t.type(m.rationale, 'string');
  }
  t.same(Object.keys(result.summary.category_scores).sort(), [
    'cost',
    'efficiency',
    'reliability',
    'security',
  ]);
  t.ok(result.summary.overall_score !== null && result.summary.overall_score >= 3.5);
});

t.test('scores move the right way: a worse estate never scores higher', async (t) => {
  const qualities = [1, 0.9, 0.75, 0.6, 0.45, 0.3, 0.15, 0];
  const runs = qualities.map((q) => scoreBatch(asInputs(sampleBatch(q))));
  for (const id of Object.keys(METRICS)) {
    const scores = runs.map((r) => r.metrics[id]?.score ?? Number.NaN);
    for (let i = 1; i < scores.length; i++) {
      t.ok((scores[i] as number) <= (scores[i - 1] as number), `${id}: ${scores.join(' ≥ ')}`);
    }
    t.ok((scores[scores.length - 1] as number) < (scores[0] as number), `${id} reacts to a worse input`);
  }
  const overall = runs.map((r) => r.summary.overall_score ?? 0);
  for (let i = 1; i < overall.length; i++) t.ok((overall[i] as number) <= (overall[i - 1] as number));
});

// Targeted single-field changes, each making one thing worse.
const worse: Array<[string, unknown, unknown]> = [
  [
    'lb.performance',
    README_LB,
    { ...README_LB, load_balancers: [{ ...README_LB.load_balancers[0], lat_p95: 390 }] },
  ],
  [
    'lb.performance',
    README_LB,
    { ...README_LB, load_balancers: [{ ...README_LB.load_balancers[0], r5xx: 0.02 }] },
  ],
  [
    'lb.performance',
    README_LB,
    { ...README_LB, load_balancers: [{ ...README_LB.load_balancers[0], unhealthy_minutes: 300 }] },
  ],
  [
    'availability.incidents',
    README_AVAILABILITY,
    { ...README_AVAILABILITY, incidents: [{ id: 'x', severity: 'sev1', duration_minutes: 30 }] },
  ],
  ['availability.incidents', README_AVAILABILITY, { ...README_AVAILABILITY, slo_breaches: [{ at: 'x' }] }],
  [
    'compute.utilization',
    { instances: [{ id: 'a', cpu_avg: 0.5 }] },
    { instances: [{ id: 'a', cpu_avg: 0.05 }] },
  ],
  [
    'compute.utilization',
    { instances: [{ id: 'a', cpu_avg: 0.5 }] },
    { instances: [{ id: 'a', cpu_avg: 0.97 }] },
  ],
  ['security.iam_risk', { root_mfa_enabled: true, users: [] }, { root_mfa_enabled: false, users: [] }],
  [
    'security.vuln_patch',
    { findings: [{ id: 'a', severity: 'critical', age_days: 3 }] },
    { findings: [{ id: 'a', severity: 'critical', age_days: 30 }] },
  ],
  [
    'cost.idle_underutilized',
    { total_monthly_cost: 100, idle_monthly_cost: 1 },
    { total_monthly_cost: 100, idle_monthly_cost: 30 },
  ],
];
t.test('single-field regressions never raise a score', async (t) => {
  for (const [id, good, bad] of worse) {
    const scorer = METRICS[id]?.scorer;
    const a = scorer?.score(good).score ?? 0;
    const b = scorer?.score(bad).score ?? 0;
    t.ok(b < a, `${id}: ${a} → ${b}`);
  }
});

t.test('malformed input is not scored: score null, confidence 0, gaps; never throws', async (t) => {
  const shapes: unknown[] = [
    {},
    null,
    [],
    'text',
    42,
    { load_balancers: 'x', resources: {}, instances: [null, 7] },
  ];
  for (const [id, entry] of Object.entries(METRICS)) {
    for (const shape of shapes) {
      const m = entry.scorer.score(shape);
      t.equal(m.metric_id, id);
      t.ok(m.gaps.length > 0, `${id} on ${JSON.stringify(shape)} lists a gap`);
      t.equal(m.score, null, `${id} on ${JSON.stringify(shape)} is not scored`);
      t.equal(m.confidence, 0);
    }
  }
  const partial = METRICS['lb.performance']?.scorer.score({
    ...README_LB,
    load_balancers: [{ id: 'x', lat_p95: 'fast', lat_p99: 240, r5xx: 0.002 }],
  });
  t.ok(partial && partial.confidence < 0.9 && partial.confidence > 0, 'one bad field costs some confidence');
  t.match(partial?.gaps, [/lat_p95 is not a number/]);

  const unreadable = scoreBatch({ 'lb.performance': { ok: false, error: 'Unexpected token' } });
  t.equal(unreadable.metrics['lb.performance']?.score, null);
  t.equal(unreadable.metrics['lb.performance']?.confidence, 0);
  t.match(unreadable.metrics['lb.performance']?.gaps, [/lb_performance.json: Unexpected token/]);
  t.equal(unreadable.summary.scored_metrics, 0, 'an unscored metric does not count');
  t.equal(unreadable.summary.overall_score, null);
});

// The worked examples of docs/metrics.md: if a rubric changes, its documentation must too.
const documented: Array<[string, unknown, number]> = [
  ['lb.performance', README_LB, 4.7],
  [
    'availability.incidents',
    { ...README_AVAILABILITY, incidents: [{ severity: 'sev1', duration_minutes: 30 }] },
    3.4,
  ],
  [
    'scaling.effectiveness',
    {
      groups: [
        {
          id: 'a',
          autoscaling_enabled: true,
          avg_utilization: 0.65,
          scale_out_latency_seconds: 90,
          flapping_events: 0,
        },
      ],
    },
    4.9,
  ],
  ['iac.coverage_drift', { resources_total: 200, resources_managed: 190, drifted_resources: 2 }, 4.8],
  ['compute.utilization', { instances: [{ id: 'a', cpu_avg: 0.55, mem_avg: 0.6 }] }, 5],
  ['compute.utilization', { instances: [{ id: 'a', cpu_avg: 0.05 }] }, 0.8],
  [
    'db.utilization',
    { databases: [{ id: 'd', cpu_avg: 0.55, connections_used: 0.4, storage_used: 0.95 }] },
    1,
  ],
  [
    'storage.efficiency',
    {
      volumes: [
        { id: 'v1', size_gb: 100, used_gb: 85, attached: true },
        { id: 'v2', size_gb: 50, used_gb: 10, attached: true },
      ],
      snapshots: [{ id: 's', size_gb: 20, age_days: 30 }],
      buckets: [{ id: 'b', lifecycle_policy: true }],
    },
    4.8,
  ],
  [
    'cost.idle_underutilized',
    { total_monthly_cost: 100000, idle_monthly_cost: 2000, underutilized_monthly_cost: 5000 },
    4.1,
  ],
  [
    'cost.commit_coverage',
    { eligible_monthly_spend: 60000, committed_monthly_spend: 48000, commitment_utilization: 0.97 },
    5,
  ],
  [
    'tagging.coverage',
    {
      required_tags: ['a', 'b', 'c'],
      resources: [
        ...Array.from({ length: 18 }, (_, i) => ({ id: `${i}`, tags: { a: 'x', b: 'x', c: 'x' } })),
        { id: 'x', tags: { a: 'x' } },
        { id: 'y', tags: { a: 'x' } },
      ],
    },
    4.2,
  ],
  [
    'security.public_exposure',
    {
      resources: [{ id: 'alb', type: 'load_balancer', public: true }],
      open_ingress_rules: [
        { id: 'r', port: 443, cidr: '0.0.0.0/0' },
        { id: 'r2', port: 22, cidr: '0.0.0.0/0' },
      ],
    },
    2,
  ],
  [
    'security.public_exposure',
    {
      resources: [{ id: 'alb', type: 'load_balancer', public: true }],
      open_ingress_rules: [{ id: 'r', port: 443, cidr: '0.0.0.0/0' }],
    },
    4.8,
  ],
  [
    'security.encryption',
    {
      resources: Array.from({ length: 10 }, (_, i) => ({
        id: `${i}`,
        encrypted_at_rest: i < 9,
        tls_in_transit: true,
      })),
    },
    3,
  ],
  [
    'security.iam_risk',
    { root_mfa_enabled: false, users: [{ name: 'a', mfa_enabled: true, access_key_age_days: 10 }] },
    2,
  ],
  [
    'security.iam_risk',
    { root_mfa_enabled: true, users: [{ name: 'a', mfa_enabled: true, access_key_age_days: 10 }] },
    5,
  ],
  [
    'security.vuln_patch',
    {
      findings: [
        { id: 'a', severity: 'critical', age_days: 43 },
        { id: 'b', severity: 'high', age_days: 10 },
      ],
    },
    4,
  ],
];
t.test('the worked examples in docs/metrics.md hold', async (t) => {
  for (const [id, input, score] of documented) t.equal(METRICS[id]?.scorer.score(input).score, score, id);
});

t.test("each scorer's TypeBox input schema describes the inputs it scores fully", async (t) => {
  const { default: Value } = await import('typebox/value');
  for (const [file, value] of Object.entries(sampleBatch(1))) {
    const id = METRIC_BY_FILE[file] as string;
    const schema = METRICS[id]?.scorer.input;
    t.ok(schema && Value.Check(schema, value), `${file} matches ${id}'s schema`);
    t.notOk(schema && Value.Check(schema, 'not an object'), `${id}'s schema rejects a string`);
  }
});

const fileOf = (id: string) => METRICS[id]?.file as string;
const keyNames = (scorer: MetricScorer) =>
  scorer.keys.flat().flatMap((k) => scorer.fields[k]?.names.map((a) => a.name) ?? []);

t.test('a file whose key fields are all spelled in unknown ways is not scored, never best', async (t) => {
  for (const [id, { scorer }] of Object.entries(METRICS)) {
    const input = hideFields(sampleBatch(1)[fileOf(id)], keyNames(scorer));
    const m = scorer.score(input);
    t.equal(m.score, null, `${id} is not scored`);
    t.equal(m.confidence, 0, `${id} confidence 0`);
    const report = scorer.inspect(input);
    t.equal(report.would_score, false);
    t.ok(report.missing.length > 0, `${id} names its missing key fields`);
    for (const { field } of report.missing) {
      t.ok(
        m.gaps.some((g) => g.replace(/\[\d+\]/g, '[]').includes(field)),
        `${id}: a gap names ${field}`,
      );
    }
  }
  const all = scoreBatch(
    Object.fromEntries(
      Object.entries(METRICS).map(([id, { scorer }]) => [
        id,
        { ok: true, value: hideFields(sampleBatch(1)[fileOf(id)], keyNames(scorer)) } as MetricInput,
      ]),
    ),
  );
  t.equal(all.summary.overall_score, null, 'nothing understood: no overall score, not 5');
  t.equal(all.summary.scored_metrics, 0);
  t.same(all.summary.category_scores, {});
});

t.test('every accepted name of every field is read as that field, in its own unit', async (t) => {
  for (const [id, { scorer }] of Object.entries(METRICS)) {
    const fixtures = [sampleBatch(1)[fileOf(id)], ...(EXTRA_INPUTS[id] ?? [])];
    for (const [path, field] of Object.entries(scorer.fields)) {
      const [canonical, ...aliases] = field.names;
      const base = fixtures.find((f) => scorer.inspect(f).understood.some((u) => u.field === path));
      if (!base || !canonical) {
        t.fail(`${id}: no fixture holds ${path}`);
        continue;
      }
      const expected = scorer.score(base).score;
      for (const alias of aliases) {
        const respelled = respell(base, path, canonical.name, alias);
        t.equal(scorer.score(respelled).score, expected, `${id}: ${path} as ${alias.name}`);
        const seen = scorer.inspect(respelled).understood.find((u) => u.field === path);
        t.ok(seen?.as.includes(alias.name), `${id}: ${path} understood as ${alias.name}`);
      }
    }
  }
});

t.test('no name is claimed by two fields of the same object', async (t) => {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  for (const [id, { scorer }] of Object.entries(METRICS)) {
    const owner = new Map<string, string>();
    for (const [path, field] of Object.entries(scorer.fields)) {
      const parent = path.slice(0, path.length - (field.names[0]?.name.length ?? 0));
      for (const { name } of field.names) {
        const key = `${parent}${norm(name)}`;
        t.notOk(
          owner.has(key) && owner.get(key) !== path,
          `${id}: ${name} read by ${owner.get(key)} and ${path}`,
        );
        owner.set(key, path);
      }
    }
  }
});

t.test('docs/metrics.md lists every accepted name under its metric', async (t) => {
  const docs = await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  for (const [id, { scorer }] of Object.entries(METRICS)) {
    const start = docs.indexOf(`### ${id} `);
    t.ok(start >= 0, `${id} has a section`);
    const next = docs.slice(start + 4).search(/\n##/);
    const section = docs.slice(start, next < 0 ? undefined : start + 4 + next);
    for (const [path, field] of Object.entries(scorer.fields)) {
      t.ok(section.includes(`\`${path}\``), `${id} documents ${path}`);
      for (const { name } of field.names.slice(1))
        t.ok(section.includes(`\`${name}\``), `${id}: ${path} as ${name}`);
    }
  }
});

t.test("the users' own exports score their risks badly", async (t) => {
  const exposure = METRICS['security.public_exposure']?.scorer;
  const iam = METRICS['security.iam_risk']?.scorer;
  const cases: Array<[MetricScorer | undefined, unknown]> = [
    [exposure, { resources: [{ id: 'sg-1', open_to_world: true, ports: [22] }] }],
    [exposure, { security_group_rules: [{ FromPort: 0, ToPort: 65535, CidrBlocks: ['0.0.0.0/0'] }] }],
    [exposure, { resources: [{ id: 'db-1', PubliclyAccessible: 'true', port: '5432' }] }],
    [iam, { users: [{ name: 'bob', mfa: false, admin: true, key_age_days: 400 }] }],
    [iam, { users: [{ UserName: 'bob', 'MFA Enabled': 'No', IsAdmin: 'Yes', AccessKeyAgeDays: '400' }] }],
    [iam, { AccountMFAEnabled: 0, users: [] }],
  ];
  for (const [scorer, input] of cases) {
    const m = scorer?.score(input);
    t.ok(
      m?.score !== null && m?.score !== undefined && m.score <= 2,
      `${JSON.stringify(input)} → ${m?.score}`,
    );
    t.ok((m?.confidence ?? 0) > 0);
  }
  const closed = exposure?.score({ resources: [{ id: 'sg-2', cidr_blocks: ['10.0.0.0/8'], ports: [22] }] });
  t.equal(closed?.score, 5, 'SSH open to a private range is not an exposure');
});

t.test('inspect says what was understood, missing and ignored, without scoring', async (t) => {
  const iam = METRICS['security.iam_risk']?.scorer as MetricScorer;
  const report = iam.inspect({
    users: [{ name: 'bob', mfa: false, admin: true, key_age_days: 400, colour: 'blue' }],
    notes: 'x',
  });
  t.equal(report.would_score, true);
  t.same(
    report.understood.find((u) => u.field === 'users[].mfa_enabled'),
    {
      field: 'users[].mfa_enabled',
      as: ['mfa'],
    },
  );
  t.same(
    report.missing.map((m) => m.field),
    ['root_mfa_enabled'],
  );
  t.ok(report.missing[0]?.accepts.includes('account_mfa_enabled'));
  t.same(report.ignored, ['notes', 'users[].colour']);
  t.notOk('score' in report);

  const vuln = METRICS['security.vuln_patch']?.scorer as MetricScorer;
  const nested = vuln.inspect({
    findings: [{ Id: 'x', Severity: { Label: 'CRITICAL', Normalized: 90 }, Age: '40' }],
  });
  t.same(nested.understood.find((u) => u.field === 'findings[].severity')?.as, ['Severity.Label']);
  t.same(nested.ignored, ['findings[].Severity.Normalized']);
  t.equal(vuln.score({ findings: [{ Severity: { Label: 'CRITICAL' }, Age: '40' }] }).score, 4);
});

t.test('values as exports write them: numeric strings, yes/no, percentages with a hint', async (t) => {
  const compute = METRICS['compute.utilization']?.scorer as MetricScorer;
  t.equal(compute.score({ instances: [{ id: 'a', cpu_avg: '0.55', mem_avg: 0.6 }] }).score, 5);
  t.equal(compute.score({ instances: [{ id: 'a', cpu_percent: 55, mem_percent: '60' }] }).score, 5);
  const out = compute.score({ instances: [{ id: 'a', cpu_avg: 55 }] });
  t.equal(out.score, null);
  t.match(out.gaps, [/cpu_avg \(55\) is outside 0–1; a percentage goes in cpu_avg_percent/]);
  const enc = METRICS['security.encryption']?.scorer as MetricScorer;
  t.equal(enc.score({ resources: [{ id: 'b', server_side_encryption: 'aws:kms', tls: 'yes' }] }).score, 5);
  t.match(enc.score({ resources: [{ id: 'b', encrypted: 'maybe' }] }).gaps, [
    /encrypted_at_rest \(given as encrypted\) is not true or false/,
  ]);
});

t.test('a batch name never reaches a path outside its root', async (t) => {
  const { folderIn } = await import('../../processors/batches/folder.ts');
  t.equal(folderIn('/data/Inputs', 'Sample1'), '/data/Inputs/Sample1');
  for (const name of ['../../../tmp/x', '..', '.', '', 'a/b', '/etc', 'a/../../b'])
    t.throws(() => folderIn('/data/Inputs', name), /is not a batch folder name/, JSON.stringify(name));
});
