import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { flag, list, num, text } from './input-reader.ts';
import { curve, optionalNumber as N, pct, round2 } from './kit.ts';

const coverageScore = curve([
  [0, 0],
  [0.5, 1],
  [0.75, 2],
  [0.9, 3],
  [0.95, 4],
  [1, 5],
]);

const ENC = {
  resources: list(['resources', 'assets', 'data_stores', 'items']),
  id: text(['id', 'arn', 'resource_id', 'name']),
  atRest: flag(
    [
      'encrypted_at_rest',
      'encrypted',
      'encryption_at_rest',
      'storage_encrypted',
      'kms_encrypted',
      'sse_enabled',
      'server_side_encryption',
      'encryption',
    ],
    { yes: ['aes256', 'aws:kms', 'aws:kms:dsse', 'kms', 'sse-s3', 'sse-kms', 'cmk'] },
  ),
  inTransit: flag([
    'tls_in_transit',
    'tls',
    'tls_enabled',
    'encrypted_in_transit',
    'in_transit_encryption',
    'transit_encryption_enabled',
    'https_only',
    'ssl_enforced',
    'require_ssl',
    'enforce_ssl',
    'secure_transport',
  ]),
};

export const securityEncryption = defineMetric({
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
  fields: {
    resources: ENC.resources,
    'resources[].id': ENC.id,
    'resources[].encrypted_at_rest': ENC.atRest,
    'resources[].tls_in_transit': ENC.inTransit,
  },
  keys: ['resources[].encrypted_at_rest', 'resources[].tls_in_transit'],
  assess(input, r) {
    let restTotal = 0;
    let rest = 0;
    let transitTotal = 0;
    let transit = 0;
    for (const { value, at } of r.items(input, ENC.resources)) {
      r.label(value, ENC.id, at);
      const atRest = r.opt(value, ENC.atRest, at);
      const inTransit = r.opt(value, ENC.inTransit, at);
      if (atRest !== undefined) {
        restTotal++;
        if (atRest) rest++;
      }
      if (inTransit !== undefined) {
        transitTotal++;
        if (inTransit) transit++;
      }
      if (atRest === undefined && inTransit === undefined) {
        r.gap(`${at} states neither encrypted_at_rest nor tls_in_transit.`);
        r.asked++;
      }
    }
    const restShare = restTotal ? rest / restTotal : undefined;
    const transitShare = transitTotal ? transit / transitTotal : undefined;
    // The weaker of the two rules: plaintext anywhere is the exposure.
    const shares = [restShare, transitShare].filter((x): x is number => x !== undefined);
    return {
      score: shares.length ? Math.min(...shares.map(coverageScore)) : undefined,
      rationale: `${restShare === undefined ? 'at rest unknown' : `${pct(restShare)} encrypted at rest`}, ${transitShare === undefined ? 'in transit unknown' : `${pct(transitShare)} TLS in transit`}.`,
      evidence: {
        at_rest_share: restShare === undefined ? null : round2(restShare),
        in_transit_share: transitShare === undefined ? null : round2(transitShare),
      },
    };
  },
});

const IAM = {
  rootMfa: flag(['root_mfa_enabled', 'root_mfa', 'root_account_mfa', 'account_mfa_enabled', 'root_has_mfa']),
  users: list(['users', 'iam_users', 'accounts', 'principals', 'identities']),
  name: text(['name', 'user', 'username', 'user_name', 'arn', 'id']),
  mfa: flag(['mfa_enabled', 'mfa', 'has_mfa', 'mfa_active', 'is_mfa_enabled', 'two_factor', '2fa']),
  admin: flag([
    'admin',
    'is_admin',
    'administrator',
    'has_admin',
    'admin_access',
    'privileged',
    'is_privileged',
  ]),
  keyAge: num([
    'access_key_age_days',
    'key_age_days',
    'access_key_age',
    'key_age',
    'oldest_access_key_age_days',
    'days_since_key_rotation',
  ]),
  wildcards: num(['wildcard_policies', 'wildcard_policy_count', 'policies_with_wildcards']),
};

export const securityIamRisk = defineMetric({
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
  fields: {
    root_mfa_enabled: IAM.rootMfa,
    users: IAM.users,
    'users[].name': IAM.name,
    'users[].mfa_enabled': IAM.mfa,
    'users[].admin': IAM.admin,
    'users[].access_key_age_days': IAM.keyAge,
    wildcard_policies: IAM.wildcards,
  },
  // MFA is the signal; key age and wildcards alone cannot say an account is safe.
  keys: ['root_mfa_enabled', 'users[].mfa_enabled'],
  assess(input, r) {
    const rootMfa = r.get(input, IAM.rootMfa);
    const users = r.items(input, IAM.users);
    const wildcards = r.opt(input, IAM.wildcards) ?? 0;
    let adminNoMfa = 0;
    let noMfa = 0;
    let oldKeys = 0;
    for (const { value, at } of users) {
      r.label(value, IAM.name, at);
      const mfa = r.get(value, IAM.mfa, at);
      const admin = r.opt(value, IAM.admin, at) === true;
      if (mfa === false && admin) adminNoMfa++;
      else if (mfa === false) noMfa++;
      if ((r.opt(value, IAM.keyAge, at) ?? 0) > 90) oldKeys++;
    }
    // Root or an admin without MFA is one phished password from full control: each caps the
    // score (2, then 1.5, …); unrotated keys and wildcards are the common lesser findings.
    const critical = (rootMfa === false ? 1 : 0) + adminNoMfa;
    const penalties =
      5 - Math.min(1.5, 0.25 * noMfa) - Math.min(1, 0.2 * oldKeys) - Math.min(1.5, 0.5 * wildcards);
    return {
      score: critical > 0 ? Math.min(penalties, 2.5 - 0.5 * critical) : penalties,
      rationale: `Root MFA ${rootMfa === undefined ? 'unknown' : rootMfa ? 'on' : 'OFF'}; ${adminNoMfa} admin(s) and ${noMfa} other user(s) without MFA; ${oldKeys} access key(s) older than 90 days; ${wildcards} wildcard policy(ies).`,
      evidence: {
        root_mfa_enabled: rootMfa ?? null,
        admins_without_mfa: adminNoMfa,
        users_without_mfa: noMfa,
        keys_over_90_days: oldKeys,
        wildcard_policies: wildcards,
      },
    };
  },
});
