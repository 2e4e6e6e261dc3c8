/**
 * Whether a Redis server keeps what it is given, judged from its INFO text (INFO works where
 * managed services rename CONFIG). BullMQ's production checklist asks for two settings; each
 * one missing loses accepted jobs in a way no retry brings back.
 */
export interface RedisDurability {
  /** `appendonly`: yes, no, or unknown when INFO does not say. */
  appendonly: 'yes' | 'no' | 'unknown';
  /** `maxmemory-policy`, as INFO reports it, or unknown. */
  maxmemoryPolicy: string;
  /** One sentence per setting that loses jobs: the setting, why, and the fix. */
  warnings: string[];
}

function field(info: string, name: string): string | undefined {
  const match = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

export function assessRedisDurability(info: string): RedisDurability {
  const aof = field(info, 'aof_enabled');
  const appendonly = aof === '1' ? 'yes' : aof === '0' ? 'no' : 'unknown';
  const maxmemoryPolicy = field(info, 'maxmemory_policy') ?? 'unknown';
  const warnings: string[] = [];
  if (appendonly === 'no')
    warnings.push(
      'Redis runs with appendonly no: a restart loses every job accepted since its last snapshot (set appendonly yes, appendfsync everysec).',
    );
  if (maxmemoryPolicy !== 'noeviction' && maxmemoryPolicy !== 'unknown')
    warnings.push(
      `Redis runs with maxmemory-policy ${maxmemoryPolicy}: when memory fills it deletes keys, queued jobs and their locks among them (set maxmemory-policy noeviction).`,
    );
  return { appendonly, maxmemoryPolicy, warnings };
}
