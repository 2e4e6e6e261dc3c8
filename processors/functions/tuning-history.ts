import type { Redis } from 'ioredis';
import type { TuningSample } from './auto-tuner.ts';
import type { SweepResult } from './power-sweep.ts';

/** The last `keep` invocations of each function, newest first, for the tuner's view. */
export function createTuningHistory(deps: { redis: Redis; prefix: string; keep?: number }) {
  const keep = deps.keep ?? 1000;
  const key = (name: string) => `${deps.prefix}:tuning:${name}`;
  return {
    async add(name: string, sample: TuningSample): Promise<void> {
      // Two plain commands, not MULTI: on an auto-pipelined connection (bookkeeping) they share
      // the write of the call's other telemetry; an interleaved LPUSH elsewhere only trims sooner.
      await Promise.all([
        deps.redis.lpush(key(name), JSON.stringify(sample)),
        deps.redis.ltrim(key(name), 0, keep - 1),
      ]);
    },
    async recent(name: string, count = keep): Promise<TuningSample[]> {
      const raw = await deps.redis.lrange(key(name), 0, count - 1);
      return raw.map((r) => JSON.parse(r) as TuningSample);
    },
    async clear(name: string): Promise<void> {
      await deps.redis.del(key(name), `${key(name)}:sweep`);
    },
    async saveSweep(name: string, result: SweepResult): Promise<void> {
      await deps.redis.set(`${key(name)}:sweep`, JSON.stringify(result));
    },
    async lastSweep(name: string): Promise<SweepResult | undefined> {
      const raw = await deps.redis.get(`${key(name)}:sweep`);
      return raw ? (JSON.parse(raw) as SweepResult) : undefined;
    },
  };
}
export type TuningHistory = ReturnType<typeof createTuningHistory>;
