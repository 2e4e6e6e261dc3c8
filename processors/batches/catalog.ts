import {
  costAllocationQuality,
  costCommitCoverage,
  costIdleUnderutilized,
  taggingCoverage,
} from './scorers/cost.ts';
import type { MetricScorer } from './scorers/define-metric.ts';
import { computeUtilization, dbUtilization, k8sUtilization } from './scorers/efficiency.ts';
import { lbPerformance } from './scorers/lb-performance.ts';
import { availabilityIncidents, iacCoverageDrift, scalingEffectiveness } from './scorers/reliability.ts';
import { securityEncryption, securityIamRisk } from './scorers/security.ts';
import { securityPublicExposure } from './scorers/security-exposure.ts';
import { storageEfficiency } from './scorers/storage-efficiency.ts';
import { securityVulnPatch } from './scorers/vuln-patch.ts';

export type Category = 'reliability' | 'efficiency' | 'cost' | 'security';

/** How much each category counts in overall_score (renormalised over the categories present). */
export const CATEGORY_WEIGHTS: Record<Category, number> = {
  reliability: 0.3,
  security: 0.3,
  efficiency: 0.2,
  cost: 0.2,
};

export interface MetricEntry {
  /** The file name the Cloud Infrastructure Agent's adapter maps the dotted id to. */
  file: string;
  category: Category;
  /** Weight within its category. */
  weight: number;
  scorer: MetricScorer;
}

/** The 16 metrics: dotted id → file, category, weight, scorer. Only ids with a file present run. */
export const METRICS: Record<string, MetricEntry> = {
  'tagging.coverage': {
    file: 'tagging_coverage.json',
    category: 'cost',
    weight: 0.75,
    scorer: taggingCoverage,
  },
  'compute.utilization': {
    file: 'compute_utilization.json',
    category: 'efficiency',
    weight: 1,
    scorer: computeUtilization,
  },
  'k8s.utilization': {
    file: 'k8s_utilization.json',
    category: 'efficiency',
    weight: 1,
    scorer: k8sUtilization,
  },
  'scaling.effectiveness': {
    file: 'scaling_effectiveness.json',
    category: 'reliability',
    weight: 1,
    scorer: scalingEffectiveness,
  },
  'db.utilization': { file: 'db_utilization.json', category: 'efficiency', weight: 1, scorer: dbUtilization },
  'lb.performance': {
    file: 'lb_performance.json',
    category: 'reliability',
    weight: 1,
    scorer: lbPerformance,
  },
  'storage.efficiency': {
    file: 'storage_efficiency.json',
    category: 'efficiency',
    weight: 0.75,
    scorer: storageEfficiency,
  },
  'iac.coverage_drift': {
    file: 'iac_coverage_drift.json',
    category: 'reliability',
    weight: 0.75,
    scorer: iacCoverageDrift,
  },
  'availability.incidents': {
    file: 'availability_incidents.json',
    category: 'reliability',
    weight: 1.5,
    scorer: availabilityIncidents,
  },
  'cost.idle_underutilized': {
    file: 'cost_idle_underutilized.json',
    category: 'cost',
    weight: 1,
    scorer: costIdleUnderutilized,
  },
  'cost.commit_coverage': {
    file: 'cost_commit_coverage.json',
    category: 'cost',
    weight: 1,
    scorer: costCommitCoverage,
  },
  'cost.allocation_quality': {
    file: 'cost_allocation_quality.json',
    category: 'cost',
    weight: 0.75,
    scorer: costAllocationQuality,
  },
  'security.public_exposure': {
    file: 'security_public_exposure.json',
    category: 'security',
    weight: 1.5,
    scorer: securityPublicExposure,
  },
  'security.encryption': {
    file: 'security_encryption.json',
    category: 'security',
    weight: 1,
    scorer: securityEncryption,
  },
  'security.iam_risk': {
    file: 'security_iam_risk.json',
    category: 'security',
    weight: 1.25,
    scorer: securityIamRisk,
  },
  'security.vuln_patch': {
    file: 'security_vuln_patch.json',
    category: 'security',
    weight: 1.25,
    scorer: securityVulnPatch,
  },
};

export const METRIC_BY_FILE: Record<string, string> = Object.fromEntries(
  Object.entries(METRICS).map(([id, entry]) => [entry.file, id]),
);
