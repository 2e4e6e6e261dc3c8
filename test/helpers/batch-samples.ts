/**
 * A healthy estate's 16 metric files, and the Cloud Infrastructure Agent README's own
 * example. `quality` (0–1) degrades every input together, for benchmarks and monotonicity.
 */
export function sampleBatch(quality = 1): Record<string, unknown> {
  const q = Math.max(0, Math.min(1, quality));
  const bad = 1 - q;
  return {
    'lb_performance.json': {
      ...README_LB,
      load_balancers: [
        {
          ...README_LB.load_balancers[0],
          lat_p95: 120 + 300 * bad,
          lat_p99: 240 + 600 * bad,
          r5xx: 0.002 + 0.01 * bad,
          unhealthy_minutes: 1 + Math.round(200 * bad),
        },
      ],
    },
    'availability_incidents.json': {
      incidents: bad > 0 ? [{ id: 'inc-1', severity: 'sev2', duration_minutes: Math.round(bad * 120) }] : [],
      slo_breaches: [],
      slo: { objective: 'availability', target: 0.999 },
    },
    'tagging_coverage.json': {
      required_tags: ['owner', 'env', 'cost_center'],
      resources: Array.from({ length: 20 }, (_, i) => ({
        id: `r${i}`,
        tags: i < Math.round(20 * q) ? { owner: 'a', env: 'prod', cost_center: 'cc1' } : { owner: 'a' },
      })),
    },
    'compute_utilization.json': {
      instances: [
        {
          id: 'i-1',
          cpu_avg: 0.55 * q + 0.03 * bad,
          cpu_p95: 0.8,
          mem_avg: 0.6 * q + 0.05,
          hourly_cost: 0.2,
        },
        { id: 'i-2', cpu_avg: 0.45 * q + 0.02, cpu_p95: 0.7, mem_avg: 0.5, hourly_cost: 0.4 },
      ],
    },
    'k8s_utilization.json': {
      clusters: [
        {
          name: 'prod',
          cpu_allocatable: 64,
          cpu_requested: 40 * q + 4,
          cpu_used: 26 * q + 1,
          mem_allocatable: 256,
          mem_requested: 160 * q + 10,
          mem_used: 100 * q + 3,
        },
      ],
    },
    'scaling_effectiveness.json': {
      groups: [
        {
          id: 'asg-web',
          autoscaling_enabled: true,
          avg_utilization: 0.65 * q + 0.1 * bad,
          scale_out_latency_seconds: 90 + 900 * bad,
          flapping_events: Math.round(10 * bad),
          capacity_shortfall_minutes: Math.round(60 * bad),
        },
      ],
    },
    'db_utilization.json': {
      databases: [
        {
          id: 'db-1',
          cpu_avg: 0.5 * q + 0.05,
          connections_used: 0.4 + 0.55 * bad,
          storage_used: 0.5 + 0.45 * bad,
        },
      ],
    },
    'storage_efficiency.json': {
      volumes: [
        { id: 'v1', size_gb: 100, used_gb: 80 * q + 5, attached: true },
        { id: 'v2', size_gb: 50, used_gb: 10, attached: q > 0.5 },
      ],
      snapshots: [{ id: 's1', size_gb: 20, age_days: q > 0.5 ? 30 : 400 }],
      buckets: [{ id: 'b1', lifecycle_policy: q > 0.5 }],
    },
    'iac_coverage_drift.json': {
      resources_total: 200,
      resources_managed: Math.round(200 * (0.5 + 0.48 * q)),
      drifted_resources: Math.round(30 * bad),
    },
    'cost_idle_underutilized.json': {
      total_monthly_cost: 100_000,
      idle_monthly_cost: 2_000 + 40_000 * bad,
      underutilized_monthly_cost: 5_000 + 20_000 * bad,
    },
    'cost_commit_coverage.json': {
      eligible_monthly_spend: 60_000,
      committed_monthly_spend: 48_000 * q,
      commitment_utilization: 0.97 - 0.3 * bad,
    },
    'cost_allocation_quality.json': {
      total_monthly_cost: 100_000,
      allocated_monthly_cost: 60_000 + 37_000 * q,
      shared_cost_split: q > 0.5,
    },
    'security_public_exposure.json': {
      resources: [
        { id: 'alb-1', type: 'load_balancer', public: true },
        { id: 'bucket-logs', type: 'bucket', public: bad > 0.3, sensitive: bad > 0.6 },
      ],
      open_ingress_rules: [{ id: 'sg-1', port: bad > 0.3 ? 22 : 443, cidr: '0.0.0.0/0' }],
    },
    'security_encryption.json': {
      resources: Array.from({ length: 10 }, (_, i) => ({
        id: `r${i}`,
        encrypted_at_rest: i < Math.round(10 * q),
        tls_in_transit: true,
      })),
    },
    'security_iam_risk.json': {
      root_mfa_enabled: q > 0.5,
      users: [
        { name: 'alice', mfa_enabled: true, admin: true, access_key_age_days: 30 + 200 * bad },
        { name: 'bob', mfa_enabled: q > 0.3, admin: false, access_key_age_days: 10 },
      ],
      wildcard_policies: Math.round(3 * bad),
    },
    'security_vuln_patch.json': {
      findings: [
        { id: 'CVE-1', severity: 'critical', age_days: 3 + 40 * bad, patched: false },
        { id: 'CVE-2', severity: 'high', age_days: 10 + 60 * bad, patched: false },
        { id: 'CVE-3', severity: 'medium', age_days: 200, patched: true },
      ],
    },
  };
}

/** The Cloud Infrastructure Agent README's example files, as existing users send them. */
export const README_LB = {
  load_balancers: [
    { id: 'alb-1', lat_p95: 120, lat_p99: 240, r5xx: 0.002, unhealthy_minutes: 1, requests: 1_800_000 },
  ],
  slo: { p95_ms: 200, p99_ms: 400, '5xx_rate_max': 0.005 },
};
export const README_AVAILABILITY = {
  incidents: [],
  slo_breaches: [],
  slo: { objective: 'availability', target: 0.999 },
};
