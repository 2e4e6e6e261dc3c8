import type { Alias } from '../../processors/batches/scorers/input-reader.ts';
import { README_LB } from './batch-samples.ts';

/**
 * Inputs holding the fields that sampleBatch() leaves out (alternatives and optional ones),
 * so that every field of every metric appears in at least one fixture.
 */
export const EXTRA_INPUTS: Record<string, unknown[]> = {
  'lb.performance': [{ ...README_LB, window_days: 30 }],
  'availability.incidents': [
    {
      incidents: [{ id: 'inc-1', severity: 'sev1', duration_minutes: 30 }],
      slo_breaches: [],
      slo: { objective: 'availability', target: 0.999 },
      window_days: 30,
    },
  ],
  'cost.commit_coverage': [{ coverage: 0.7, commitment_utilization: 0.9 }],
  'cost.allocation_quality': [
    { total_monthly_cost: 100, unallocated_monthly_cost: 12, shared_cost_split: true },
    { allocated_share: 0.85 },
  ],
  'security.public_exposure': [
    {
      resources: [
        { id: 'i-1', public_ip: '54.1.2.3', type: 'instance' },
        { id: 'vm-1', public: true, ports: [22, 8080] },
        { id: 'sg-1', cidr: '0.0.0.0/0', from_port: 20, to_port: 23 },
        { id: 'nacl-1', cidr: '0.0.0.0/0', protocol: 'all' },
      ],
      open_ingress_rules: [
        { id: 'r-1', public: true, from_port: 3306, to_port: 3306 },
        { id: 'r-2', cidr: '::/0', protocol: '-1' },
      ],
    },
  ],
  'security.vuln_patch': [
    {
      findings: [
        { id: 'CVE-9', cvss: 9.8, age_days: 20 },
        { id: 'CVE-8', severity: 'high', age_days: 40, patched: false },
      ],
      sla_days: { critical: 10 },
    },
  ],
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The objects a path's parent reaches: `resources[]` → every item of resources. */
function parents(root: unknown, parentPath: string): Json[] {
  let level: unknown[] = [root];
  for (const part of parentPath.split('.').filter(Boolean)) {
    const list = part.endsWith('[]');
    const key = list ? part.slice(0, -2) : part;
    level = level.flatMap((o) => {
      const v = isObject(o) ? o[key] : undefined;
      return list ? (Array.isArray(v) ? v : []) : [v];
    });
  }
  return level.filter(isObject);
}

function take(obj: Json, dotted: string): unknown {
  const parts = dotted.split('.');
  const last = parts.pop() as string;
  let o: unknown = obj;
  for (const p of parts) o = isObject(o) ? o[p] : undefined;
  if (!isObject(o) || !(last in o)) return undefined;
  const value = o[last];
  delete o[last];
  return value;
}

function put(obj: Json, dotted: string, value: unknown) {
  const parts = dotted.split('.');
  const last = parts.pop() as string;
  let o = obj;
  for (const p of parts) {
    if (!isObject(o[p])) o[p] = {};
    o = o[p] as Json;
  }
  o[last] = value;
}

/**
 * A copy of `input` with the field at `path` (documented names) spelled as `alias`, its value
 * converted into the alias's unit. Undefined when the input does not hold that field.
 */
export function respell(input: unknown, path: string, canonical: string, alias: Alias): unknown {
  const copy = structuredClone(input);
  const parentPath = path.slice(0, path.length - canonical.length).replace(/\.$/, '');
  let moved = 0;
  for (const parent of parents(copy, parentPath)) {
    const value = take(parent, canonical);
    if (value === undefined) continue;
    put(parent, alias.name, typeof value === 'number' && alias.scale ? value / alias.scale : value);
    moved++;
  }
  return moved ? copy : undefined;
}

/** A copy of `input` with every key that any of `names` would match renamed out of reach. */
export function hideFields(input: unknown, names: string[]): unknown {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const hidden = new Set(names.map((n) => norm(n.split('.').pop() as string)));
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!isObject(v)) return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, child]) => [hidden.has(norm(k)) ? `unknown_${k}` : k, walk(child)]),
    );
  };
  return walk(input);
}
