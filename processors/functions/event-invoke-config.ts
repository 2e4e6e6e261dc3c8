import type { Redis } from 'ioredis';
import { type Static, Type } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * Where an asynchronous invocation's outcome is sent (Lambda's destinations): another
 * function (invoked asynchronously with the record as its event), a Redis pub/sub channel,
 * or an HTTP URL (POSTed through the same SSRF-guarded fetch as HTTP jobs).
 */
export const Destination = Type.Union([
  Type.Object(
    { type: Type.Literal('function'), name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('channel'), channel: Type.String({ minLength: 1, maxLength: 256 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('http'), url: Type.String({ minLength: 8, maxLength: 2048 }) },
    { additionalProperties: false },
  ),
]);
export type Destination = Static<typeof Destination>;

/** Lambda's defaults: two retries, events kept six hours. */
export const DEFAULT_MAX_RETRY_ATTEMPTS = 2;
export const DEFAULT_MAX_EVENT_AGE_SECONDS = 21_600;

/**
 * A function's settings for asynchronous (Event) invocations, Lambda's
 * PutFunctionEventInvokeConfig: how often a failed call is retried, how old an event may get
 * before it is given up, and where outcomes go.
 */
export const EventInvokeConfig = Type.Object(
  {
    maximumRetryAttempts: Type.Integer({ minimum: 0, maximum: 2, description: 'Default 2.' }),
    maximumEventAgeSeconds: Type.Integer({ minimum: 60, maximum: 21_600, description: 'Default 21,600.' }),
    onSuccess: Type.Optional(Destination),
    onFailure: Type.Optional(Destination),
    lastModified: Type.String(),
  },
  { additionalProperties: false },
);
export type EventInvokeConfig = Static<typeof EventInvokeConfig>;

export type EventInvokeConfigInput = Partial<Omit<EventInvokeConfig, 'lastModified'>>;

export interface EventInvokeConfigStore {
  /** The function's settings, or undefined when none were put (callers use the defaults). */
  get(functionName: string): Promise<EventInvokeConfig | undefined>;
  /** The settings or Lambda's defaults: what an Event invocation runs by. */
  effective(functionName: string): Promise<EventInvokeConfig>;
  /** Replaces the settings (fields left out take the defaults, as Lambda's Put does). */
  put(functionName: string, input: EventInvokeConfigInput): Promise<EventInvokeConfig>;
  /** Changes only the fields given (Lambda's Update). */
  update(functionName: string, input: EventInvokeConfigInput): Promise<EventInvokeConfig>;
  remove(functionName: string): Promise<boolean>;
}

const check = Compile(EventInvokeConfig);

const defaults = (): EventInvokeConfig => ({
  maximumRetryAttempts: DEFAULT_MAX_RETRY_ATTEMPTS,
  maximumEventAgeSeconds: DEFAULT_MAX_EVENT_AGE_SECONDS,
  lastModified: new Date(0).toISOString(),
});

/** One Redis hash field per function; a stored value that no longer parses counts as none. */
export function createEventInvokeConfigStore(redis: Redis, prefix: string): EventInvokeConfigStore {
  const key = `${prefix}:event-invoke-config`;
  const get = async (name: string) => {
    const raw = await redis.hget(key, name);
    if (!raw) return undefined;
    try {
      const value = JSON.parse(raw) as unknown;
      return check.Check(value) ? value : undefined;
    } catch {
      return undefined;
    }
  };
  const save = async (name: string, config: EventInvokeConfig) => {
    if (!check.Check(config)) throw new TypeError('Invalid event invoke config.');
    await redis.hset(key, name, JSON.stringify(config));
    return config;
  };
  const strip = (input: EventInvokeConfigInput) =>
    Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as EventInvokeConfigInput;
  return {
    get,
    async effective(name) {
      return (await get(name)) ?? defaults();
    },
    put(name, input) {
      return save(name, { ...defaults(), ...strip(input), lastModified: new Date().toISOString() });
    },
    async update(name, input) {
      const current = (await get(name)) ?? defaults();
      return save(name, { ...current, ...strip(input), lastModified: new Date().toISOString() });
    },
    async remove(name) {
      return (await redis.hdel(key, name)) > 0;
    },
  };
}
