import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { field, flag, list, num, text } from './input-reader.ts';
import { curve, round2 } from './kit.ts';

const SLA_DAYS: Record<string, number> = { critical: 15, high: 30, medium: 90, low: 180 };
const SEVERITY_WEIGHT: Record<string, number> = { critical: 1, high: 0.5, medium: 0.15, low: 0.05 };
// Scanner vocabularies (Microsoft, Red Hat, Inspector, Security Hub) onto the four grades.
const SEVERITY_WORDS: Record<string, string> = {
  important: 'high',
  moderate: 'medium',
  informational: 'none',
  info: 'none',
  negligible: 'none',
  untriaged: 'high',
};
/** CVSS v3 base score bands. */
const cvssGrade = (score: number) =>
  score >= 9 ? 'critical' : score >= 7 ? 'high' : score >= 4 ? 'medium' : score > 0 ? 'low' : 'none';

const VULN = {
  findings: list(['findings', 'vulnerabilities', 'vulns', 'cves'], { emptyMeansNone: true }),
  id: text(['id', 'cve', 'cve_id', 'vulnerability_id', 'finding_id']),
  severity: text(['severity', 'severity_label', 'severity.label', 'sev', 'risk']),
  cvss: num(['cvss', 'cvss_score', 'cvss_v3_score', 'base_score'], 0, 10),
  age: num([
    'age_days',
    'age',
    'days_open',
    'open_days',
    'age_in_days',
    'days_since_published',
    'days_since_detected',
  ]),
  patched: flag(['patched', 'fixed', 'remediated', 'resolved', 'is_patched', 'status', 'workflow.status'], {
    yes: ['fixed', 'resolved', 'closed', 'remediated', 'patched'],
    no: ['open', 'active', 'new', 'notified', 'in_progress', 'unresolved'],
  }),
  sla: field<Record<string, number>>(
    ['sla_days', 'sla', 'patch_sla_days'],
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Object.values(v).every((d) => typeof d === 'number')
        ? { ok: true, value: v as Record<string, number> }
        : { ok: false, why: 'is not a table of severity → days' },
    { opaque: true },
  ),
};

export const securityVulnPatch = defineMetric({
  id: 'security.vuln_patch',
  input: Type.Object({
    findings: Type.Array(
      Type.Object({
        id: Type.String(),
        severity: Type.String({ description: 'critical | high | medium | low' }),
        age_days: Type.Number({ description: 'days since published or detected' }),
        patched: Type.Optional(Type.Boolean()),
      }),
    ),
    sla_days: Type.Optional(Type.Record(Type.String(), Type.Number())),
  }),
  fields: {
    findings: VULN.findings,
    'findings[].id': VULN.id,
    'findings[].severity': VULN.severity,
    'findings[].cvss': VULN.cvss,
    'findings[].age_days': VULN.age,
    'findings[].patched': VULN.patched,
    sla_days: VULN.sla,
  },
  // A patched finding needs no age.
  keys: [['findings[].age_days', 'findings[].patched']],
  assess(input, r) {
    const sla: Record<string, number> = { ...SLA_DAYS, ...(r.opt(input, VULN.sla) ?? {}) };
    let overdue = 0;
    let open = 0;
    let assessed = 0;
    const overdueBySeverity: Record<string, number> = {};
    const findings = r.items(input, VULN.findings);
    for (const { value, at } of findings) {
      r.label(value, VULN.id, at);
      const patched = r.opt(value, VULN.patched, at);
      const stated = r.opt(value, VULN.severity, at)?.toLowerCase();
      const cvss = r.opt(value, VULN.cvss, at);
      const age = patched ? r.opt(value, VULN.age, at) : r.get(value, VULN.age, at);
      if (patched) {
        assessed++;
        continue;
      }
      if (stated === undefined && cvss === undefined) {
        r.gap(`${at} states no severity; counted as high.`);
        r.asked++;
      }
      const severity = stated
        ? (SEVERITY_WORDS[stated] ?? stated)
        : cvss !== undefined
          ? cvssGrade(cvss)
          : 'high';
      if (age === undefined) continue;
      assessed++;
      open++;
      if (age <= (sla[severity] ?? 30)) continue;
      overdue += SEVERITY_WEIGHT[severity] ?? (severity === 'none' ? 0 : 0.5);
      overdueBySeverity[severity] = (overdueBySeverity[severity] ?? 0) + 1;
    }
    // Past-SLA findings, weighted by severity: one overdue critical costs a point.
    const score = curve([
      [0, 5],
      [1, 4],
      [3, 2.5],
      [6, 1],
      [10, 0],
    ])(overdue);
    return {
      // A list of findings none of which says how old it is shows nothing about patching.
      score: findings.length > 0 && assessed === 0 ? undefined : score,
      rationale: `${open} open finding(s); past SLA: ${
        Object.entries(overdueBySeverity)
          .map(([s, n]) => `${n} ${s}`)
          .join(', ') || 'none'
      } (weighted ${round2(overdue)}).`,
      evidence: {
        open_findings: open,
        overdue_weighted: round2(overdue),
        overdue_by_severity: overdueBySeverity,
        sla_days: sla,
      },
    };
  },
});
