import { Type } from 'typebox';
import { curve, InputReader, type MetricScorer, optionalNumber as N, pct, result, round2 } from './kit.ts';

// Ports whose exposure to the internet CIS benchmarks flag as critical (admin and databases).
const ADMIN_PORTS = new Set([
  22, 3389, 23, 5900, 2375, 2376, 6443, 3306, 5432, 1433, 1521, 27017, 6379, 9200, 11211,
]);

export const securityPublicExposure: MetricScorer = {
  id: 'security.public_exposure',
  input: Type.Object({
    resources: Type.Array(
      Type.Object({
        id: Type.String(),
        type: Type.Optional(Type.String()),
        public: Type.Boolean(),
        sensitive: Type.Optional(Type.Boolean({ description: 'holds data classified as sensitive' })),
      }),
    ),
    open_ingress_rules: Type.Optional(
      Type.Array(Type.Object({ id: Type.String(), port: Type.Number(), cidr: Type.String() })),
    ),
  }),
  score(input) {
    const r = new InputReader();
    const resources = r.items(input, 'resources');
    let critical = 0;
    let high = 0;
    let medium = 0;
    resources.forEach((res, i) => {
      const isPublic = r.get<boolean>(res, 'public', 'boolean', `resources[${i}].public`);
      if (!isPublic) return;
      if ((res as { sensitive?: unknown }).sensitive === true) critical++;
      else if (/bucket|storage|database|db|snapshot/i.test(String((res as { type?: unknown }).type ?? '')))
        high++;
      else medium++;
    });
    const rules = Array.isArray((input as { open_ingress_rules?: unknown })?.open_ingress_rules)
      ? (input as { open_ingress_rules: unknown[] }).open_ingress_rules
      : [];
    for (const rule of rules) {
      const { port, cidr } = (rule ?? {}) as { port?: unknown; cidr?: unknown };
      if (cidr !== '0.0.0.0/0' && cidr !== '::/0') continue;
      if (ADMIN_PORTS.has(Number(port))) critical++;
      else if (Number(port) !== 80 && Number(port) !== 443) medium++;
    }
    // Penalties: a sensitive public resource or an admin port open to the world costs 1.5.
    const score = 5 - 1.5 * critical - 0.75 * high - 0.25 * medium;
    return result(
      this.id,
      r,
      resources.length === 0 && rules.length === 0 ? undefined : score,
      `${critical} critical, ${high} high and ${medium} medium exposures across ${resources.length} resources and ${rules.length} ingress rules.`,
      { critical, high, medium },
    );
  },
};

const coverageScore = curve([
  [0, 0],
  [0.5, 1],
  [0.75, 2],
  [0.9, 3],
  [0.95, 4],
  [1, 5],
]);

export const securityEncryption: MetricScorer = {
  id: 'security.encryption',
  input: Type.Object({
    resources: Type.Array(
      Type.Object({
        id: Type.String(),
        encrypted_at_rest: Type.Optional(Type.Boolean()),
        tls_in_transit: Type.Optional(Type.Boolean()),
      }),
    ),
  }),
  score(input) {
    const r = new InputReader();
    let restTotal = 0;
    let rest = 0;
    let transitTotal = 0;
    let transit = 0;
    r.items(input, 'resources').forEach((res, i) => {
      const atRest = (res as { encrypted_at_rest?: unknown })?.encrypted_at_rest;
      const inTransit = (res as { tls_in_transit?: unknown })?.tls_in_transit;
      if (typeof atRest === 'boolean') {
        restTotal++;
        if (atRest) rest++;
      }
      if (typeof inTransit === 'boolean') {
        transitTotal++;
        if (inTransit) transit++;
      }
      if (typeof atRest !== 'boolean' && typeof inTransit !== 'boolean') {
        r.gap(`resources[${i}] states neither encrypted_at_rest nor tls_in_transit.`);
        r.asked++;
      }
    });
    if (restTotal + transitTotal === 0) return result(this.id, r, undefined, '', {});
    const restShare = restTotal ? rest / restTotal : undefined;
    const transitShare = transitTotal ? transit / transitTotal : undefined;
    // The weaker of the two rules: plaintext anywhere is the exposure.
    const shares = [restShare, transitShare].filter((x): x is number => x !== undefined);
    return result(
      this.id,
      r,
      Math.min(...shares.map(coverageScore)),
      `${restShare === undefined ? 'at rest unknown' : `${pct(restShare)} encrypted at rest`}, ${transitShare === undefined ? 'in transit unknown' : `${pct(transitShare)} TLS in transit`}.`,
      {
        at_rest_share: restShare === undefined ? null : round2(restShare),
        in_transit_share: transitShare === undefined ? null : round2(transitShare),
      },
    );
  },
};

export const securityIamRisk: MetricScorer = {
  id: 'security.iam_risk',
  input: Type.Object({
    root_mfa_enabled: Type.Boolean(),
    users: Type.Array(
      Type.Object({
        name: Type.String(),
        mfa_enabled: Type.Boolean(),
        admin: Type.Optional(Type.Boolean()),
        access_key_age_days: N(),
      }),
    ),
    wildcard_policies: N('policies granting *:* or Action * on Resource *'),
  }),
  score(input) {
    const r = new InputReader();
    const rootMfa = r.get<boolean>(input, 'root_mfa_enabled', 'boolean');
    const users = r.items(input, 'users');
    const wildcards = r.optNum(input, 'wildcard_policies', 'wildcard_policies') ?? 0;
    let adminNoMfa = 0;
    let noMfa = 0;
    let oldKeys = 0;
    users.forEach((u, i) => {
      const mfa = r.get<boolean>(u, 'mfa_enabled', 'boolean', `users[${i}].mfa_enabled`);
      const admin = (u as { admin?: unknown })?.admin === true;
      if (mfa === false && admin) adminNoMfa++;
      else if (mfa === false) noMfa++;
      const age = Number((u as { access_key_age_days?: unknown })?.access_key_age_days);
      if (Number.isFinite(age) && age > 90) oldKeys++;
    });
    // CIS: root without MFA is the worst single finding; unrotated keys are the most common.
    const penalty =
      (rootMfa === false ? 2 : 0) +
      0.75 * adminNoMfa +
      Math.min(1.5, 0.25 * noMfa) +
      Math.min(1, 0.2 * oldKeys) +
      Math.min(1.5, 0.5 * wildcards);
    return result(
      this.id,
      r,
      rootMfa === undefined && users.length === 0 ? undefined : 5 - penalty,
      `Root MFA ${rootMfa === undefined ? 'unknown' : rootMfa ? 'on' : 'OFF'}; ${adminNoMfa} admin(s) and ${noMfa} other user(s) without MFA; ${oldKeys} access key(s) older than 90 days; ${wildcards} wildcard policy(ies).`,
      {
        root_mfa_enabled: rootMfa ?? null,
        admins_without_mfa: adminNoMfa,
        users_without_mfa: noMfa,
        keys_over_90_days: oldKeys,
        wildcard_policies: wildcards,
      },
    );
  },
};

const SLA_DAYS: Record<string, number> = { critical: 15, high: 30, medium: 90, low: 180 };
const SEVERITY_WEIGHT: Record<string, number> = { critical: 1, high: 0.5, medium: 0.15, low: 0.05 };

export const securityVulnPatch: MetricScorer = {
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
  score(input) {
    const r = new InputReader();
    const sla = { ...SLA_DAYS, ...((input as { sla_days?: Record<string, number> })?.sla_days ?? {}) };
    let overdue = 0;
    let open = 0;
    const overdueBySeverity: Record<string, number> = {};
    r.items(input, 'findings').forEach((f, i) => {
      if ((f as { patched?: unknown })?.patched === true) return;
      const sevRaw = r.get<string>(f, 'severity', 'string', `findings[${i}].severity`);
      const age = r.num(f, 'age_days', `findings[${i}].age_days`);
      const severity = String(sevRaw ?? 'high').toLowerCase();
      open++;
      if (age === undefined || age <= (sla[severity] ?? 30)) return;
      overdue += SEVERITY_WEIGHT[severity] ?? 0.5;
      overdueBySeverity[severity] = (overdueBySeverity[severity] ?? 0) + 1;
    });
    // Past-SLA findings, weighted by severity: one overdue critical costs a point.
    const score = curve([
      [0, 5],
      [1, 4],
      [3, 2.5],
      [6, 1],
      [10, 0],
    ])(overdue);
    return result(
      this.id,
      r,
      score,
      `${open} open finding(s); past SLA: ${
        Object.entries(overdueBySeverity)
          .map(([s, n]) => `${n} ${s}`)
          .join(', ') || 'none'
      } (weighted ${round2(overdue)}).`,
      {
        open_findings: open,
        overdue_weighted: round2(overdue),
        overdue_by_severity: overdueBySeverity,
        sla_days: sla,
      },
    );
  },
};
