import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { field, flag, list, num, text } from './input-reader.ts';
import { curve, optionalNumber as N, pct, round2, weightedMean } from './kit.ts';

const attachedWords = { yes: ['in-use', 'attached'], no: ['available', 'detached', 'unattached'] };
const lifecycleFlag = flag(['lifecycle_policy']);

const STORAGE = {
  volumes: list(['volumes', 'ebs_volumes', 'disks', 'persistent_disks']),
  id: text(['id', 'volume_id', 'name', 'arn']),
  snapshotId: text(['id', 'snapshot_id', 'name', 'arn']),
  bucketId: text(['id', 'bucket', 'bucket_name', 'name', 'arn']),
  size: num(['size_gb', 'size_gib', 'size', 'capacity_gb', 'provisioned_gb', ['size_tb', 1024]]),
  used: num(['used_gb', 'used_gib', 'used', 'consumed_gb', ['used_tb', 1024]]),
  attached: flag(['attached', 'in_use', 'is_attached', 'state', 'status'], attachedWords),
  snapshots: list(['snapshots', 'ebs_snapshots', 'disk_snapshots']),
  snapshotSize: num(['size_gb', 'size_gib', 'volume_size', 'size']),
  snapshotAge: num(['age_days', 'age', 'age_in_days', 'days_old']),
  buckets: list(['buckets', 's3_buckets', 'storage_buckets']),
  // A list of lifecycle rules counts as a policy when it has any.
  lifecycle: field<boolean>(
    [
      'lifecycle_policy',
      'lifecycle',
      'has_lifecycle',
      'lifecycle_configured',
      'lifecycle_enabled',
      'lifecycle_rules',
    ],
    (v, alias) => (Array.isArray(v) ? { ok: true, value: v.length > 0 } : lifecycleFlag.parse(v, alias)),
    { opaque: true },
  ),
};

const usedCurve = curve([
  [0.2, 1],
  [0.5, 3],
  [0.7, 5],
]);
const unattachedCurve = curve([
  [0, 5],
  [0.1, 3],
  [0.3, 1],
  [0.5, 0],
]);
const oldSnapshotCurve = curve([
  [0, 5],
  [0.3, 3],
  [0.7, 1],
]);

export const storageEfficiency = defineMetric({
  id: 'storage.efficiency',
  input: Type.Object({
    volumes: Type.Array(
      Type.Object({ id: Type.String(), size_gb: N(), used_gb: N(), attached: Type.Optional(Type.Boolean()) }),
    ),
    snapshots: Type.Optional(Type.Array(Type.Object({ id: Type.String(), size_gb: N(), age_days: N() }))),
    buckets: Type.Optional(
      Type.Array(Type.Object({ id: Type.String(), lifecycle_policy: Type.Optional(Type.Boolean()) })),
    ),
  }),
  fields: {
    volumes: STORAGE.volumes,
    'volumes[].id': STORAGE.id,
    'volumes[].size_gb': STORAGE.size,
    'volumes[].used_gb': STORAGE.used,
    'volumes[].attached': STORAGE.attached,
    snapshots: STORAGE.snapshots,
    'snapshots[].id': STORAGE.snapshotId,
    'snapshots[].size_gb': STORAGE.snapshotSize,
    'snapshots[].age_days': STORAGE.snapshotAge,
    buckets: STORAGE.buckets,
    'buckets[].id': STORAGE.bucketId,
    'buckets[].lifecycle_policy': STORAGE.lifecycle,
  },
  keys: [['volumes[].used_gb', 'volumes[].attached', 'snapshots[].age_days', 'buckets[].lifecycle_policy']],
  confidence: 0.8,
  assess(input, r) {
    // Each part is measured over the items that state it: an unstated part is left out, never perfect.
    const space = { sized: 0, used: 0, stated: 0, unattached: 0 };
    for (const { value, at } of r.items(input, STORAGE.volumes)) {
      r.label(value, STORAGE.id, at);
      const size = r.get(value, STORAGE.size, at);
      const used = r.opt(value, STORAGE.used, at);
      const attached = r.opt(value, STORAGE.attached, at);
      if (size === undefined) continue;
      if (used !== undefined) {
        space.sized += size;
        space.used += Math.min(used, size);
      }
      if (attached !== undefined) {
        space.stated += size;
        if (!attached) space.unattached += size;
      }
    }
    let snapshotGb = 0;
    let oldSnapshotGb = 0;
    for (const { value, at } of r.items(input, STORAGE.snapshots, '', 'optional')) {
      r.label(value, STORAGE.snapshotId, at);
      const size = r.get(value, STORAGE.snapshotSize, at);
      const age = r.get(value, STORAGE.snapshotAge, at);
      if (size === undefined || age === undefined) continue;
      snapshotGb += size;
      if (age > 90) oldSnapshotGb += size;
    }
    const buckets = r.items(input, STORAGE.buckets, '', 'optional').map(({ value, at }) => {
      r.label(value, STORAGE.bucketId, at);
      return r.opt(value, STORAGE.lifecycle, at);
    });
    const stating = buckets.filter((b) => b !== undefined);
    const usedShare = space.sized > 0 ? space.used / space.sized : undefined;
    const unattachedShare = space.stated > 0 ? space.unattached / space.stated : undefined;
    const oldShare = snapshotGb > 0 ? oldSnapshotGb / snapshotGb : undefined;
    const lifecycle = stating.length ? stating.filter(Boolean).length / stating.length : undefined;
    const show = (x: number | undefined) => (x === undefined ? 'unknown' : pct(x));
    return {
      score: weightedMean([
        [usedShare === undefined ? undefined : usedCurve(usedShare), 2],
        [unattachedShare === undefined ? undefined : unattachedCurve(unattachedShare), 2],
        [oldShare === undefined ? undefined : oldSnapshotCurve(oldShare), 1],
        [lifecycle === undefined ? undefined : 5 * lifecycle, 1],
      ]),
      rationale: `${show(usedShare)} of provisioned volume space used, ${show(unattachedShare)} unattached, ${show(oldShare)} of snapshot space older than 90 days, ${show(lifecycle)} of buckets with lifecycle rules.`,
      evidence: {
        used_share: usedShare === undefined ? null : round2(usedShare),
        unattached_share: unattachedShare === undefined ? null : round2(unattachedShare),
        old_snapshot_share: oldShare === undefined ? null : round2(oldShare),
        lifecycle_coverage: lifecycle === undefined ? null : round2(lifecycle),
      },
    };
  },
});
