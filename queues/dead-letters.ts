import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { type Static, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { FUNCTION_NAME_PATTERN, InvocationError } from './schemas/functions.ts';

/*
 * What could not become work, or could not be done, kept instead of dropped: messages no ingress
 * could turn into an invocation (SQS) and asynchronous invocations that failed for good. Each
 * entry has an id of its own (`deadLetterId`; `id` stays the source's id, as before), so one can
 * be read, redriven and deleted. Entries live in a hash by id and a list of ids (newest first);
 * removal is one HDEL, so of two callers removing one entry exactly one succeeds. Entries of
 * older versions (JSON in the list `<prefix>:dead-letters`, without an id) still list, under an
 * id made from their content, and are removed by LREM of their exact JSON.
 */

/** The id routes name an entry by: a UUID, or `legacy-` and 32 hex digits for an old entry. */
export const DEAD_LETTER_ID_PATTERN =
  '^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|legacy-[0-9a-f]{32})$';

const common = {
  deadLetterId: Type.String({ pattern: DEAD_LETTER_ID_PATTERN }),
  /** The source's own id: the SQS MessageId, the invocation's requestId. */
  id: Type.String({ maxLength: 256 }),
  /** The message body, or the event as JSON; at most 64 KiB (an invocation keeps `event` whole). */
  body: Type.String(),
  reason: Type.String(),
  at: Type.String(),
};

/** A message an ingress could not turn into work (malformed, unknown function). */
export const IngressDeadLetter = Type.Object(
  { ...common, source: Type.String({ pattern: '^(?!async-invocation$).{1,64}$' }) },
  { additionalProperties: false },
);

/** An asynchronous (Event) invocation that failed after its retries, or grew too old to run. */
export const InvocationDeadLetter = Type.Object(
  {
    ...common,
    source: Type.Literal('async-invocation'),
    functionName: Type.String({ pattern: FUNCTION_NAME_PATTERN }),
    requestId: Type.String({ maxLength: 128 }),
    event: Type.Unknown(),
    error: InvocationError,
    /** Times the handler ran (0 when the event expired before its first run). */
    attempts: Type.Integer({ minimum: 0 }),
    condition: Type.Union([Type.Literal('RetriesExhausted'), Type.Literal('EventAgeExceeded')]),
  },
  { additionalProperties: false },
);

export const DeadLetterSchema = Type.Union([InvocationDeadLetter, IngressDeadLetter]);
export type DeadLetterEntry = Static<typeof DeadLetterSchema>;
export type InvocationDeadLetter = Static<typeof InvocationDeadLetter>;

/** What an ingress hands in (the shape of older versions' entries). */
export interface DeadLetter {
  source: string;
  id: string;
  body: string;
  reason: string;
  at: string;
}
export type NewDeadLetter = DeadLetter | Omit<InvocationDeadLetter, 'deadLetterId'>;

const LegacyDeadLetter = Type.Object({
  source: Type.String(),
  id: Type.String(),
  body: Type.String(),
  reason: Type.String(),
  at: Type.String(),
});

const checkEntry = Compile(DeadLetterSchema);
const checkLegacy = Compile(LegacyDeadLetter);
export const BODY_CAP = 65_536;

/** An entry read back from Redis that is not one of ours (written by something else). */
export class InvalidDeadLetter extends Error {}

const legacyId = (raw: string) => `legacy-${createHash('sha256').update(raw).digest('hex').slice(0, 32)}`;

// Adds one entry and drops the oldest past the bound, in one step: no id without its entry.
const ADD = `
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('LPUSH', KEYS[1], ARGV[1])
local keep = tonumber(ARGV[3])
while redis.call('LLEN', KEYS[1]) > keep do
  local old = redis.call('RPOP', KEYS[1])
  redis.call('HDEL', KEYS[2], old)
end
return 1`;
const REMOVE = `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
  redis.call('LREM', KEYS[1], 1, ARGV[1])
  return 1
end
return 0`;

export function createDeadLetters(redis: Redis, prefix: string, keep = 10_000) {
  const legacyKey = `${prefix}:dead-letters`;
  const idsKey = `${prefix}:dead-letters:ids`;
  const entriesKey = `${prefix}:dead-letters:entries`;

  const parse = (deadLetterId: string, raw: string): DeadLetterEntry => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new InvalidDeadLetter(`Dead letter ${deadLetterId} is not JSON.`);
    }
    if (!checkEntry.Check(value) || (value as DeadLetterEntry).deadLetterId !== deadLetterId)
      throw new InvalidDeadLetter(
        `Dead letter ${deadLetterId} is not a valid entry (written by something else?).`,
      );
    return value as DeadLetterEntry;
  };
  const parseLegacy = (raw: string): DeadLetterEntry | undefined => {
    try {
      const value = JSON.parse(raw) as unknown;
      if (!checkLegacy.Check(value)) return undefined;
      const { source, id, body, reason, at } = value;
      // Only the old fields: a legacy entry is never taken for an invocation.
      return {
        deadLetterId: legacyId(raw),
        source: source === 'async-invocation' ? 'legacy' : source,
        id,
        body,
        reason,
        at,
      };
    } catch {
      return undefined;
    }
  };
  const legacyRaw = async (deadLetterId: string) =>
    (await redis.lrange(legacyKey, 0, keep - 1)).find((raw) => legacyId(raw) === deadLetterId);

  return {
    async add(entry: NewDeadLetter): Promise<DeadLetterEntry> {
      const stored = {
        ...entry,
        body: entry.body.slice(0, BODY_CAP),
        deadLetterId: randomUUID(),
      } as DeadLetterEntry;
      await redis.eval(ADD, 2, idsKey, entriesKey, stored.deadLetterId, JSON.stringify(stored), keep);
      return stored;
    },
    /** Newest first; entries that are not valid are left out (GET by id says why). */
    async recent(count = 100): Promise<DeadLetterEntry[]> {
      const ids = await redis.lrange(idsKey, 0, count - 1);
      const raws = ids.length ? await redis.hmget(entriesKey, ...ids) : [];
      const out: DeadLetterEntry[] = [];
      raws.forEach((raw, i) => {
        if (raw === null) return;
        try {
          out.push(parse(ids[i] as string, raw));
        } catch {}
      });
      if (out.length < count) {
        for (const raw of await redis.lrange(legacyKey, 0, count - out.length - 1)) {
          const entry = parseLegacy(raw);
          if (entry) out.push(entry);
        }
      }
      return out;
    },
    /** The entry, undefined when there is none, InvalidDeadLetter when what is stored is not one. */
    async get(deadLetterId: string): Promise<DeadLetterEntry | undefined> {
      if (deadLetterId.startsWith('legacy-')) {
        const raw = await legacyRaw(deadLetterId);
        if (raw === undefined) return undefined;
        const entry = parseLegacy(raw);
        if (!entry) throw new InvalidDeadLetter(`Dead letter ${deadLetterId} is not a valid entry.`);
        return entry;
      }
      const raw = await redis.hget(entriesKey, deadLetterId);
      return raw === null ? undefined : parse(deadLetterId, raw);
    },
    /** Removes the entry; true for exactly one of several callers removing the same one. */
    async remove(deadLetterId: string): Promise<boolean> {
      if (deadLetterId.startsWith('legacy-')) {
        const raw = await legacyRaw(deadLetterId);
        return raw !== undefined && (await redis.lrem(legacyKey, 1, raw)) === 1;
      }
      return (await redis.eval(REMOVE, 2, idsKey, entriesKey, deadLetterId)) === 1;
    },
  };
}
export type DeadLetters = ReturnType<typeof createDeadLetters>;
