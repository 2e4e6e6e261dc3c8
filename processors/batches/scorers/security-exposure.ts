import { Type } from 'typebox';
import { type Assessment, defineMetric } from './define-metric.ts';
import { field, flag, type InputReader, type Item, list, text } from './input-reader.ts';

// Ports whose exposure to the internet CIS benchmarks flag as critical (admin and databases).
const ADMIN_PORTS = [22, 3389, 23, 5900, 2375, 2376, 6443, 3306, 5432, 1433, 1521, 27017, 6379, 9200, 11211];
const WEB_PORTS = new Set([80, 443]);
const WORLD = new Set(['0.0.0.0/0', '::/0', '0.0.0.0', '*', 'any', 'internet', 'all']);
const ALL_PORTS: readonly [number, number] = [0, 65535];

type Range = readonly [number, number];

/** 22, "22", "tcp/22", "8000-8080", "*" or -1 (all, as AWS writes it), or a list of them. */
function parsePorts(value: unknown): Range[] | undefined {
  if (Array.isArray(value)) {
    const ranges = value.map(parsePorts);
    return ranges.every((r) => r !== undefined) ? ranges.flat() : undefined;
  }
  if (typeof value !== 'number' && typeof value !== 'string') return undefined;
  const s = String(value)
    .trim()
    .toLowerCase()
    .replace(/^(tcp|udp)\/|\/(tcp|udp)$/g, '');
  if (s === '-1' || s === '*' || s === 'all' || s === 'any') return [ALL_PORTS];
  const m = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(s);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2] ?? m[1]);
  return lo <= hi && hi <= 65535 ? [[lo, hi]] : undefined;
}

const portsField = (names: string[]) =>
  field<Range[]>(names, (v) => {
    const ranges = parsePorts(v);
    return ranges
      ? { ok: true, value: ranges }
      : { ok: false, why: 'is not a port, a range or a list of them' };
  });

/** A CIDR string, or AWS's `{CidrIp}` / `{CidrIpv6}` wrapper around one. */
function cidrText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return undefined;
  const entry = Object.entries(value).find(([k]) => /^cidr(ip|ipv6|block)?$/i.test(k.replace(/[_-]/g, '')));
  return typeof entry?.[1] === 'string' ? entry[1] : undefined;
}

const F = {
  resources: list(['resources', 'security_groups', 'assets', 'endpoints', 'items']),
  rules: list([
    'open_ingress_rules',
    'ingress_rules',
    'ingress',
    'inbound_rules',
    'security_group_rules',
    'firewall_rules',
    'ip_permissions',
    'rules',
  ]),
  id: text(['id', 'arn', 'resource_id', 'group_id', 'name']),
  type: text(['type', 'resource_type', 'kind']),
  public: flag(
    [
      'public',
      'open_to_world',
      'publicly_accessible',
      'internet_facing',
      'is_public',
      'public_access',
      'internet_exposed',
      'exposed',
      'scheme',
    ],
    { yes: ['internet-facing', 'public'], no: ['internal', 'private'] },
  ),
  publicIp: text(['public_ip', 'public_ip_address', 'external_ip']),
  sensitive: flag(['sensitive', 'contains_sensitive_data', 'pii', 'data_classification', 'classification'], {
    yes: ['confidential', 'restricted', 'secret', 'sensitive', 'pii'],
    no: ['public', 'internal', 'unclassified'],
  }),
  ports: portsField(['ports', 'port', 'open_ports', 'exposed_ports', 'port_range', 'destination_port_range']),
  port: portsField(['port', 'ports', 'port_range', 'destination_port_range']),
  fromPort: field<number>(['from_port', 'port_from', 'start_port'], (v) => {
    const r = parsePorts(v);
    return r?.length === 1 && r[0] ? { ok: true, value: r[0][0] } : { ok: false, why: 'is not a port' };
  }),
  toPort: field<number>(['to_port', 'port_to', 'end_port'], (v) => {
    const r = parsePorts(v);
    return r?.length === 1 && r[0] ? { ok: true, value: r[0][1] } : { ok: false, why: 'is not a port' };
  }),
  // AWS writes "-1" for every protocol and port, with no port range at all.
  protocol: text(['protocol', 'ip_protocol']),
  cidr: field<string[]>(
    [
      'cidr',
      'cidrs',
      'source',
      'sources',
      'cidr_blocks',
      'cidr_ip',
      'cidr_ipv4',
      'cidr_ipv6',
      'ipv6_cidr_blocks',
      'ip_ranges',
      'source_ranges',
      'source_address_prefix',
      'remote_ip_prefix',
    ],
    (v) => {
      const cidrs = (Array.isArray(v) ? v : [v]).map(cidrText);
      return cidrs.every((c) => c !== undefined)
        ? { ok: true, value: cidrs.map((c) => c.trim().toLowerCase()) }
        : { ok: false, why: 'is not a CIDR or a list of them' };
    },
    { opaque: true },
  ),
};

interface Exposure {
  id: string;
  /** Reachable from anywhere; undefined when the entry says nothing we understood. */
  open: boolean | undefined;
  ports: Range[] | undefined;
  sensitive: boolean;
  type: string;
}

/** What one resource or rule says about reachability: an explicit flag wins, then CIDRs, then a public IP. */
function exposureOf(r: InputReader, { value, at }: Item, ports = F.ports): Exposure {
  const flagged = r.opt(value, F.public, at);
  const cidrs = r.opt(value, F.cidr, at);
  const publicIp = r.opt(value, F.publicIp, at);
  const from = r.opt(value, F.fromPort, at);
  const to = r.opt(value, F.toPort, at);
  const listed = r.opt(value, ports, at);
  const everything = ['-1', 'all', '*'].includes(r.opt(value, F.protocol, at) ?? '')
    ? [ALL_PORTS]
    : undefined;
  const ranged: Range[] | undefined = from === undefined ? everything : [[from, to ?? from]];
  return {
    id: r.label(value, F.id, at) ?? at,
    open: flagged ?? (cidrs ? cidrs.some((c) => WORLD.has(c)) : publicIp ? true : undefined),
    ports: listed || ranged ? [...(listed ?? []), ...(ranged ?? [])] : undefined,
    sensitive: r.opt(value, F.sensitive, at) === true,
    type: r.opt(value, F.type, at) ?? '',
  };
}

const adminPortsIn = (ranges: Range[]) =>
  ADMIN_PORTS.filter((p) => ranges.some(([lo, hi]) => p >= lo && p <= hi));
const NAMED_PORTS = [...WEB_PORTS, ...ADMIN_PORTS];
/** Whether a range holds any port that is neither web nor admin: more ports than named ones in it. */
const otherPortsIn = (ranges: Range[]) =>
  ranges.some(([lo, hi]) => hi - lo + 1 > NAMED_PORTS.filter((p) => p >= lo && p <= hi).length);

/**
 * Findings in three grades. Each further critical lowers the cap: one admin port open to the
 * world is a failing grade however tidy the rest is (Security Hub rates it CRITICAL).
 */
function assess(input: unknown, r: InputReader): Assessment {
  const findings: Array<{ severity: 'critical' | 'high' | 'medium'; what: string }> = [];
  let assessed = 0;
  const portFindings = (e: Exposure) => {
    const admin = adminPortsIn(e.ports ?? []);
    if (admin.length)
      findings.push({
        severity: 'critical',
        what: `${e.id}: admin port(s) ${admin.join(', ')} open to the world`,
      });
    if (e.ports && otherPortsIn(e.ports))
      findings.push({ severity: 'medium', what: `${e.id}: non-web port(s) open to the world` });
  };
  // Either list alone will do: a security-group export has rules and no resources.
  const resources = r.items(input, F.resources, '', 'optional');
  for (const item of resources) {
    const e = exposureOf(r, item);
    if (e.open === undefined) continue;
    assessed++;
    if (!e.open) continue;
    if (e.sensitive)
      findings.push({ severity: 'critical', what: `${e.id}: sensitive data publicly reachable` });
    else if (/bucket|storage|database|\bdb|rds|s3|snapshot|blob/i.test(e.type))
      findings.push({ severity: 'high', what: `${e.id}: public ${e.type}` });
    else findings.push({ severity: 'medium', what: `${e.id}: public ${e.type || 'resource'}` });
    portFindings(e);
  }
  const rules = r.items(input, F.rules, '', 'optional');
  for (const item of rules) {
    const e = exposureOf(r, item, F.port);
    if (e.open === undefined) {
      r.gap(`${item.at} states no source CIDR.`);
      continue;
    }
    assessed++;
    if (!e.open) continue;
    if (e.ports === undefined) {
      r.gap(`${item.at} is open to the world on unstated ports; counted as medium.`);
      findings.push({ severity: 'medium', what: `${e.id}: open to the world` });
    } else portFindings(e);
  }
  const count = (s: string) => findings.filter((f) => f.severity === s).length;
  const [critical, high, medium] = [count('critical'), count('high'), count('medium')];
  const penalties = 5 - 0.75 * high - 0.25 * medium;
  const score = critical > 0 ? Math.min(penalties, 2.5 - 0.5 * critical) : penalties;
  return {
    score: assessed === 0 ? undefined : score,
    rationale: `${critical} critical, ${high} high and ${medium} medium exposures across ${resources.length} resources and ${rules.length} ingress rules${critical ? `; critical exposures cap the score at ${Math.max(0, 2.5 - 0.5 * critical)}` : ''}.`,
    evidence: {
      critical,
      high,
      medium,
      findings: findings.slice(0, 20).map((f) => `${f.severity}: ${f.what}`),
    },
  };
}

export const securityPublicExposure = defineMetric({
  id: 'security.public_exposure',
  input: Type.Object({
    resources: Type.Array(
      Type.Object({
        id: Type.String(),
        type: Type.Optional(Type.String()),
        public: Type.Boolean(),
        sensitive: Type.Optional(Type.Boolean({ description: 'holds data classified as sensitive' })),
        ports: Type.Optional(Type.Array(Type.Number(), { description: 'ports it listens on' })),
      }),
    ),
    open_ingress_rules: Type.Optional(
      Type.Array(Type.Object({ id: Type.String(), port: Type.Number(), cidr: Type.String() })),
    ),
  }),
  fields: {
    resources: F.resources,
    'resources[].id': F.id,
    'resources[].type': F.type,
    'resources[].public': F.public,
    'resources[].public_ip': F.publicIp,
    'resources[].cidr': F.cidr,
    'resources[].ports': F.ports,
    'resources[].from_port': F.fromPort,
    'resources[].to_port': F.toPort,
    'resources[].protocol': F.protocol,
    'resources[].sensitive': F.sensitive,
    open_ingress_rules: F.rules,
    'open_ingress_rules[].id': F.id,
    'open_ingress_rules[].public': F.public,
    'open_ingress_rules[].cidr': F.cidr,
    'open_ingress_rules[].port': F.port,
    'open_ingress_rules[].from_port': F.fromPort,
    'open_ingress_rules[].to_port': F.toPort,
    'open_ingress_rules[].protocol': F.protocol,
  },
  // Any statement of reachability will do; ports and types only grade what is reachable.
  keys: [
    [
      'resources[].public',
      'resources[].cidr',
      'resources[].public_ip',
      'open_ingress_rules[].cidr',
      'open_ingress_rules[].public',
    ],
  ],
  assess,
});
