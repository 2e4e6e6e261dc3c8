import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';

/** `INFO memory` fields as numbers; a field that is absent or not a whole number is left out. */
export function parseInfoMemory(text: string): { used?: number; max?: number } {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const whole = (name: string) => {
    const v = fields.get(name);
    return v !== undefined && /^\d{1,20}$/.test(v) ? Number(v) : undefined;
  };
  return { used: whole('used_memory'), max: whole('maxmemory') };
}

/**
 * Redis's memory against its `maxmemory`, read with one `INFO memory` when Prometheus scrapes
 * (no Redis exporter is needed). BullMQ wants `maxmemory-policy noeviction`, so a Redis at its
 * limit refuses new jobs: the alert on these fires before that. When Redis cannot be read the
 * gauges read NaN for that scrape (a gap on a graph, false in every comparison), rather than
 * zeros that would read as "plenty left".
 */
export function registerRedisMemoryGauges(registry: Registry, redis: Redis): void {
  // One read per scrape: both gauges' collect() calls start together and share it.
  let pending: Promise<{ used?: number; max?: number } | undefined> | undefined;
  const read = () => {
    pending ??= redis
      .info('memory')
      .then(parseInfoMemory, () => undefined)
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  const gauge = (name: string, help: string, field: 'used' | 'max') =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set((await read())?.[field] ?? Number.NaN);
      },
    });
  gauge(
    'dockhand_redis_memory_used_bytes',
    'Memory Redis uses (INFO used_memory), read at scrape time.',
    'used',
  );
  gauge(
    'dockhand_redis_memory_max_bytes',
    'Redis maxmemory (INFO maxmemory); 0 when Redis has no limit of its own.',
    'max',
  );
}
