import type { Redis } from 'ioredis';

/** A message no ingress could turn into work, with the reason. */
export interface DeadLetter {
  source: string;
  id: string;
  body: string;
  reason: string;
  at: string;
}

/** Messages no ingress could turn into work, with the reason: kept, never silently dropped. */
export function createDeadLetters(redis: Redis, prefix: string, keep = 10_000) {
  const key = `${prefix}:dead-letters`;
  return {
    async add(entry: DeadLetter): Promise<void> {
      await redis
        .multi()
        .lpush(key, JSON.stringify(entry))
        .ltrim(key, 0, keep - 1)
        .exec();
    },
    async recent(count = 100): Promise<DeadLetter[]> {
      return (await redis.lrange(key, 0, count - 1)).map((e) => JSON.parse(e) as DeadLetter);
    },
  };
}
export type DeadLetters = ReturnType<typeof createDeadLetters>;
