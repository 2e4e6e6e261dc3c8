import path from 'node:path';
import { type Static, Type } from 'typebox';
import Value from 'typebox/value';
import { isAddressOrCidr, isAllowlistEntry, isLoopbackHost } from './address-policy.ts';
import { ConfigError } from './errors.ts';

/**
 * The environment Dockhand reads, as one schema. Each `description` is the
 * "what it accepts" half of the one-line error a bad value produces, so keep
 * it short and concrete. Nothing outside this file reads `process.env`.
 */
const Port = (description = 'a port number from 1 to 65535', minimum = 1) =>
  Type.Integer({ minimum, maximum: 65535, description });
const YesNo = Type.Union(
  ['yes', 'no', 'true', 'false'].map((v) => Type.Literal(v)),
  { description: 'yes or no' },
);
const Url = (description: string) => Type.String({ pattern: '^[a-z][a-z0-9+.-]*://', description });

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
const isPort = (port: string) => port === '' || Number(port) >= 1; // URL itself rejects > 65535

/** What ioredis reads from a URL: a host, an optional port and an optional database number. */
function isRedisUrl(value: string): boolean {
  const url = parseUrl(value);
  return (
    (url?.protocol === 'redis:' || url?.protocol === 'rediss:') &&
    url.hostname !== '' &&
    isPort(url.port) &&
    /^(\/\d*)?$/.test(url.pathname)
  );
}

/** An http(s) URL with a host: what fetch can be pointed at once credentials are taken out. */
function isHttpUrl(value: string): boolean {
  const url = parseUrl(value);
  return (url?.protocol === 'http:' || url?.protocol === 'https:') && url.hostname !== '' && isPort(url.port);
}

/** The DOCKER_HOST forms createDocker() turns into a dockerode client (docker-modem's, less ssh://). */
function isDockerHost(value: string): boolean {
  if (/^(unix:\/\/\/|npipe:\/\/)\S/.test(value)) return true; // a path, taken as is
  const url = parseUrl(value);
  return (
    (url?.protocol === 'tcp:' || url?.protocol === 'http:' || url?.protocol === 'https:') &&
    url.hostname !== '' &&
    isPort(url.port) &&
    (url.pathname === '' || url.pathname === '/')
  );
}

const EnvSchema = Type.Object({
  PORT: Port('a port number from 0 (any free port) to 65535', 0),
  HOST: Type.String({ minLength: 1, description: 'a host name or IP address to listen on' }),
  API_KEYS: Type.Optional(Type.String({ description: 'a comma-separated list of bearer keys' })),
  ADMIN_API_KEYS: Type.Optional(Type.String({ description: 'a comma-separated list of bearer keys' })),
  LAMBDA_CREDENTIALS: Type.Optional(
    Type.String({
      description: 'a comma-separated list of accessKeyId:secretAccessKey pairs',
    }),
  ),
  ALLOW_UNAUTHENTICATED: YesNo,
  TRUST_PROXY: Type.Optional(Type.String({ description: 'a comma-separated list of IP addresses or CIDRs' })),
  AUTH_FAILURES_PER_MINUTE: Type.Integer({
    minimum: 0,
    description: 'failed authentications per minute per client address (0 = off)',
  }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, description: 'a byte count of at least 1024' }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({
    minimum: 0,
    description: 'requests per minute per key or IP (0 = off)',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { description: 'one of fatal, error, warn, info, debug, trace, silent' },
  ),
  REDIS_URL: Type.Refine(
    Type.String({ description: 'a redis:// or rediss:// URL: redis[s]://[user:password@]host[:port][/db]' }),
    isRedisUrl,
  ),
  // Braces only around the whole prefix: a Redis Cluster hash tag ({dockhand}) puts every key
  // Dockhand and BullMQ write in one slot, as BullMQ's multi-key scripts need there.
  QUEUE_PREFIX: Type.String({
    pattern: '^([A-Za-z0-9_-]+|\\{[A-Za-z0-9_-]+\\})$',
    description: 'letters, digits, - and _, optionally in braces as a Redis Cluster hash tag ({dockhand})',
  }),
  DATA_DIR: Type.String({ minLength: 1, description: 'a directory path' }),
  DOCKER_HOST: Type.Optional(
    Type.Refine(
      Type.String({
        description: 'one of unix:///path, tcp://host[:port], http(s)://host[:port] or npipe:////./pipe/name',
      }),
      isDockerHost,
    ),
  ),
  POOL_MIN_IDLE: Type.Integer({ minimum: 0, maximum: 64, description: 'a whole number from 0 to 64' }),
  POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, description: 'a whole number from 1 to 1000' }),
  POOL_IDLE_TTL_SECONDS: Type.Integer({ minimum: 1, description: 'a whole number of seconds, at least 1' }),
  FUNCTIONS_CHANNEL: Type.Union(
    ['auto', 'socket', 'attach'].map((v) => Type.Literal(v)),
    { description: 'auto, socket or attach' },
  ),
  MAX_RESULT_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 256 * 1024 * 1024,
    description: 'a whole number of bytes from 1024 to 268435456',
  }),
  ASYNC_RETRY_DELAY_SECONDS: Type.Number({
    minimum: 0,
    maximum: 3600,
    description: 'a number of seconds from 0 to 3600',
  }),
  FUNCTIONS_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 1000,
    description: 'a whole number from 1 to 1000',
  }),
  RUNTIME_IMAGE_NODE20: Type.String({ minLength: 1, description: 'a Docker image reference' }),
  RUNTIME_IMAGE_PYTHON3: Type.String({ minLength: 1, description: 'a Docker image reference' }),
  RUNTIME_IMAGE_PROVIDED: Type.String({ minLength: 1, description: 'a Docker image reference' }),
  S3_ENDPOINT: Type.Optional(Url('an http(s):// URL')),
  S3_CODE_BUCKET: Type.Optional(Type.String()),
  S3_CODE_BUCKETS_ALLOWED: Type.Optional(Type.String({ description: 'a comma-separated list of buckets' })),
  S3_OUTPUT_BUCKET: Type.Optional(Type.String()),
  AWS_REGION: Type.String({ minLength: 1, description: 'an AWS region name' }),
  AWS_ACCESS_KEY_ID: Type.Optional(Type.String()),
  AWS_SECRET_ACCESS_KEY: Type.Optional(Type.String()),
  SQS_QUEUE_URL: Type.Optional(Url('an http(s):// queue URL')),
  SQS_WAIT_SECONDS: Type.Integer({
    minimum: 0,
    maximum: 20,
    description: 'a whole number of seconds from 0 to 20',
  }),
  MINIO_ENDPOINT: Type.Optional(Type.String()),
  MINIO_ACCESS_KEY: Type.Optional(Type.String()),
  MINIO_SECRET_KEY: Type.Optional(Type.String()),
  MINIO_BUCKET: Type.Optional(Type.String()),
  LLM_PROVIDER: Type.Optional(
    Type.Union([Type.Literal('openai'), Type.Literal('gemini')], { description: 'openai or gemini' }),
  ),
  OPENAI_API_KEY: Type.Optional(Type.String()),
  OPENAI_BASE_URL: Type.Optional(Url('an http(s):// URL')),
  OPENAI_MODEL: Type.Optional(Type.String()),
  GOOGLE_API_KEY: Type.Optional(Type.String()),
  GOOGLE_MODEL: Type.Optional(Type.String()),
  CLOUD_INFRA_DATA_DIR: Type.Optional(Type.String({ minLength: 1, description: 'a directory path' })),
  BATCHES_PER_TICK: Type.Integer({
    minimum: 0,
    description: 'a whole number, 0 meaning all pending batches',
  }),
  BATCHES_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 256,
    description: 'a whole number from 1 to 256',
  }),
  BATCH_LOCK_STALE_SECONDS: Type.Integer({
    minimum: 1,
    description: 'a whole number of seconds, at least 1',
  }),
  BATCH_CONFIG: Type.Optional(Type.String({ minLength: 1, description: 'a path to a config.yaml' })),
  BATCH_ENGINE_ENV: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\s*,\\s*[A-Za-z_][A-Za-z0-9_]*)*$',
      description: 'a comma-separated list of environment variable names',
    }),
  ),
  SCHEDULER_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    description: 'a whole number of seconds, at least 1',
  }),
  JOB_LOCK_SECONDS: Type.Integer({ minimum: 2, description: 'a whole number of seconds, at least 2' }),
  STALLED_CHECK_SECONDS: Type.Integer({ minimum: 1, description: 'a whole number of seconds, at least 1' }),
  MAX_STALLED_COUNT: Type.Integer({ minimum: 0, maximum: 100, description: 'a whole number from 0 to 100' }),
  LEFTOVER_SWEEP_SECONDS: Type.Integer({ minimum: 1, description: 'a whole number of seconds, at least 1' }),
  ALLOW_EXTERNAL_REQUESTS: YesNo,
  HTTP_JOBS_ALLOWLIST: Type.Optional(
    Type.String({ description: 'a comma-separated list of hosts or CIDRs' }),
  ),
  HTTP_JOBS_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 1000,
    description: 'a whole number from 1 to 1000',
  }),
  SERVICE_PROXY_PORT: Port(),
  DATA_SERVICE_URL: Type.Optional(Url('an http(s):// URL')),
  SERVICE_PROXY_BODY_LIMIT_BYTES: Type.Integer({
    minimum: 1024,
    description: 'a byte count of at least 1024',
  }),
  SERVICE_PROXY_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    description: 'a whole number of milliseconds, at least 100',
  }),
  EXEC_IMAGE_ALLOWLIST: Type.Optional(
    Type.String({ description: 'a comma-separated list of image names, * and ? allowed' }),
  ),
  EXEC_REQUESTS_CHANNEL: Type.String({ pattern: '^[^\\s]{1,128}$', description: 'a Redis channel name' }),
  EXEC_RESPONSES_CHANNEL: Type.String({ pattern: '^[^\\s]{1,128}$', description: 'a Redis channel name' }),
  EXEC_WARM_IMAGES: Type.Optional(Type.String({ description: 'a comma-separated list of image names' })),
  EXEC_WARM_PER_IMAGE: Type.Integer({ minimum: 0, maximum: 64, description: 'a whole number from 0 to 64' }),
  EXEC_RECENT_IMAGES: Type.Integer({ minimum: 0, maximum: 64, description: 'a whole number from 0 to 64' }),
  EXEC_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, description: 'a whole number from 1 to 256' }),
  EXEC_MEMORY_MB: Type.Integer({ minimum: 16, description: 'a whole number of MiB, at least 16' }),
  EXEC_MAX_MEMORY_MB: Type.Integer({ minimum: 16, description: 'a whole number of MiB, at least 16' }),
  EXEC_MAX_CPUS: Type.Number({ exclusiveMinimum: 0, description: 'a number of CPUs greater than 0' }),
  EXEC_MAX_TIMEOUT_SECONDS: Type.Integer({
    minimum: 1,
    description: 'a whole number of seconds, at least 1',
  }),
  EXEC_MAX_FILE_BYTES: Type.Integer({ minimum: 1, description: 'a byte count of at least 1' }),
  EXEC_MAX_INPUT_BYTES: Type.Integer({ minimum: 1, description: 'a byte count of at least 1' }),
  EXEC_MAX_OUTPUT_FILE_BYTES: Type.Integer({ minimum: 1, description: 'a byte count of at least 1' }),
  EXEC_MAX_OUTPUT_BYTES: Type.Integer({ minimum: 1, description: 'a byte count of at least 1' }),
  EXEC_MAX_LOG_BYTES: Type.Integer({ minimum: 1024, description: 'a byte count of at least 1024' }),
  EXEC_USER: Type.String({
    pattern: '^(root|[0-9]+(:[0-9]+)?)$',
    description: 'root or a uid[:gid], e.g. 65534:65534',
  }),
  EXEC_READONLY_ROOTFS: YesNo,
  EXEC_PIDS_LIMIT: Type.Integer({ minimum: 8, description: 'a whole number, at least 8' }),
  EXEC_INIT_PATH: Type.Optional(
    Type.String({ pattern: '^/', description: 'an absolute path on the Docker host' }),
  ),
  EXEC_REGISTRY_SERVER: Type.Optional(Type.String({ minLength: 1, description: 'a registry host name' })),
  EXEC_REGISTRY_USERNAME: Type.Optional(Type.String()),
  EXEC_REGISTRY_PASSWORD: Type.Optional(Type.String()),
  CONTROL_PLANE_URL: Type.Optional(
    Type.Refine(Url('an http(s):// URL, credentials allowed (http://agent:<token>@host:3000)'), isHttpUrl),
  ),
  HEARTBEAT_INTERVAL: Type.Integer({ minimum: 1, description: 'a whole number of seconds, at least 1' }),
  NODE_REGISTRATION_TOKEN: Type.Optional(
    Type.String({ minLength: 16, description: 'a secret of at least 16 characters' }),
  ),
  NODE_NAME: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$',
      description: 'a host name: letters, digits, ., - and _ (at most 63)',
    }),
  ),
  NODE_IP: Type.Optional(
    Type.Refine(Type.String({ description: 'an IPv4 or IPv6 address' }), isAddressOrCidr),
  ),
  NODE_AGENT: YesNo,
  WORKER_METRICS_PORT: Port('a port number from 0 (any free port) to 65535', 0),
  LIVE_LOGS_MAX_CHARS: Type.Integer({
    minimum: 1024,
    maximum: 256 * 1024 * 1024,
    description: 'a whole number of characters from 1024 to 268435456',
  }),
  LIVE_LOGS_TTL_SECONDS: Type.Integer({ minimum: 60, description: 'a whole number of seconds, at least 60' }),
  LIVE_LOGS_MAX_FOLLOWERS: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    description: 'a whole number from 1 to 10000',
  }),
});
type Env = Static<typeof EnvSchema>;

/** Every variable loadConfig reads; deployment manifests are checked against this list. */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(EnvSchema.properties));

const DEFAULTS = {
  PORT: 3000,
  HOST: '127.0.0.1',
  BODY_LIMIT_BYTES: 6 * 1024 * 1024, // Lambda's synchronous payload limit
  // 10,000 a second per key or address, API Gateway's default account throttle: the limit
  // stops a runaway client, not a platform team's load (6000/min throttled a single load test).
  RATE_LIMIT_PER_MINUTE: 600_000,
  AUTH_FAILURES_PER_MINUTE: 20,
  ALLOW_UNAUTHENTICATED: 'no',
  LOG_LEVEL: 'info',
  REDIS_URL: 'redis://127.0.0.1:6379',
  QUEUE_PREFIX: 'dockhand',
  DATA_DIR: './data',
  POOL_MIN_IDLE: 2,
  POOL_MAX: 32,
  POOL_IDLE_TTL_SECONDS: 300,
  FUNCTIONS_CHANNEL: 'auto',
  FUNCTIONS_CONCURRENCY: 32,
  // Lambda's limit for a synchronous response; larger data belongs in S3/MinIO.
  MAX_RESULT_BYTES: 6 * 1024 * 1024,
  ASYNC_RETRY_DELAY_SECONDS: 60,
  RUNTIME_IMAGE_NODE20: 'dockhand-runtime-node20:local',
  RUNTIME_IMAGE_PYTHON3: 'dockhand-runtime-python3:local',
  RUNTIME_IMAGE_PROVIDED: 'dockhand-runtime-provided:local',
  AWS_REGION: 'us-east-1',
  SQS_WAIT_SECONDS: 20,
  SCHEDULER_INTERVAL_SECONDS: 600,
  // A worker that dies mid-job (SIGKILL, OOM, lost node) holds its job's lock until it expires;
  // the next stalled check after that puts the job back in its queue. So a dead worker's jobs
  // are running again within JOB_LOCK_SECONDS + STALLED_CHECK_SECONDS: 17 s, not BullMQ's 60.
  // A live worker renews its locks at least every JOB_LOCK_SECONDS / 3 (4 s) from a timer in its
  // event loop, so a lock is lost only when that loop stalls for 8 s on end; Dockhand's jobs run in
  // containers, child processes or async I/O, and a loaded CPU delays timers by milliseconds,
  // not seconds (docs/faults.md). Each stalled check is one Lua script per queue for the whole
  // cluster (BullMQ takes turns between workers), so every 5 s costs Redis nothing noticeable.
  JOB_LOCK_SECONDS: 12,
  STALLED_CHECK_SECONDS: 5,
  // BullMQ's default: a job whose worker died under it twice fails instead of killing a third.
  MAX_STALLED_COUNT: 1,
  // How soon a surviving worker removes the containers and workspaces of a dead one on its host.
  LEFTOVER_SWEEP_SECONDS: 10,
  BATCHES_PER_TICK: 0,
  BATCHES_CONCURRENCY: 16,
  BATCH_LOCK_STALE_SECONDS: 1800,
  ALLOW_EXTERNAL_REQUESTS: 'no',
  HTTP_JOBS_CONCURRENCY: 10,
  SERVICE_PROXY_PORT: 9000,
  SERVICE_PROXY_BODY_LIMIT_BYTES: 1024 * 1024,
  SERVICE_PROXY_TIMEOUT_MS: 60_000,
  // The Exec Agent's channels. Pub/sub channels are not under QUEUE_PREFIX: two Dockhands on
  // one Redis both hear every request unless one of them is given other names.
  EXEC_REQUESTS_CHANNEL: 'exec-requests',
  EXEC_RESPONSES_CHANNEL: 'exec-responses',
  EXEC_WARM_PER_IMAGE: 1,
  // Images used lately are kept warm too, as OpenFaaS keeps a function's replica after its call.
  EXEC_RECENT_IMAGES: 4,
  EXEC_CONCURRENCY: 4,
  EXEC_MEMORY_MB: 512,
  EXEC_MAX_MEMORY_MB: 4096,
  EXEC_MAX_CPUS: 2,
  EXEC_MAX_TIMEOUT_SECONDS: 3600,
  EXEC_MAX_FILE_BYTES: 10 * 1024 * 1024,
  EXEC_MAX_INPUT_BYTES: 100 * 1024 * 1024,
  EXEC_MAX_OUTPUT_FILE_BYTES: 10 * 1024 * 1024,
  // A response travels through Redis (job result, pub/sub): bigger outputs belong in MinIO.
  EXEC_MAX_OUTPUT_BYTES: 50 * 1024 * 1024,
  EXEC_MAX_LOG_BYTES: 1024 * 1024,
  EXEC_USER: '65534:65534',
  EXEC_READONLY_ROOTFS: 'yes',
  EXEC_PIDS_LIMIT: 256,
  HEARTBEAT_INTERVAL: 30,
  NODE_AGENT: 'yes',
  WORKER_METRICS_PORT: 8001,
  // What a result's `logs` keeps: streaming costs the call the time to send it (a pipe, then
  // Redis), so a chatty loop pays for as much as its result carries anyway, not more.
  LIVE_LOGS_MAX_CHARS: 256 * 1024,
  // As long as a finished job is kept: its logs can be replayed while its result can be read.
  LIVE_LOGS_TTL_SECONDS: 86_400,
  LIVE_LOGS_MAX_FOLLOWERS: 100,
} as const satisfies Partial<Record<keyof Env, string | number>>;

export interface Config {
  server: {
    port: number;
    host: string;
    /**
     * Every valid bearer key: API_KEYS plus ADMIN_API_KEYS (an admin key is also an API key).
     * Empty means the API is open, which loadConfig allows only on loopback or with
     * ALLOW_UNAUTHENTICATED.
     */
    apiKeys: string[];
    /** ADMIN_API_KEYS: the keys that may retry, promote, clean, pause and resume in Bull Board. */
    adminKeys: string[];
    /**
     * LAMBDA_CREDENTIALS: the key pairs the Lambda API (api/lambda/) verifies SigV4 signatures
     * with. Empty: each API key signs as its own access key id and secret. Default none.
     */
    lambdaCredentials: Array<{ accessKeyId: string; secretAccessKey: string }>;
    /** TRUST_PROXY: proxies (IPs or CIDRs) whose X-Forwarded-For is believed. Default none. */
    trustProxy: string[];
    /** Wrong keys a client address may present per minute before it gets 429 (0 = no limit). Default 20. */
    authFailuresPerMinute: number;
    bodyLimitBytes: number;
    rateLimitPerMinute: number;
    logLevel: string;
  };
  redis: { url: string; prefix: string };
  storage: { dataDir: string };
  docker: { host: string | undefined; poolMinIdle: number };
  functions: {
    poolMax: number;
    idleTtlSeconds: number;
    /**
     * How a worker talks to its function containers (FUNCTIONS_CHANNEL): `socket`, a unix socket
     * under DATA_DIR that dh-init connects the runtime to; `attach`, Docker's attach stream; `auto`,
     * the socket where it can work (a local engine, dh-init built), else attach.
     */
    channel: 'auto' | 'socket' | 'attach';
    concurrency: number;
    /** Largest serialized result a function may return (MAX_RESULT_BYTES). */
    maxResultBytes: number;
    /**
     * A failed Event invocation's n-th retry waits n times this (ASYNC_RETRY_DELAY_SECONDS):
     * Lambda's 1 then 2 minutes by default.
     */
    asyncRetryDelaySeconds: number;
    images: { node20: string; python3: string; provided: string };
  };
  s3: {
    endpoint?: string;
    codeBucket?: string;
    /** Buckets `code.s3` may name besides codeBucket (S3_CODE_BUCKETS_ALLOWED); no other is read. */
    codeBucketsAllowed: string[];
    outputBucket?: string;
    region: string;
  };
  /** Explicit AWS credentials; without them the SDK's own chain (profile, instance role) is used. */
  aws: { region: string; credentials?: { accessKeyId: string; secretAccessKey: string } };
  sqs: { queueUrl?: string; waitSeconds: number };
  minio: { endpoint?: string; accessKey?: string; secretKey?: string; bucket?: string };
  llm: {
    provider?: 'openai' | 'gemini';
    openaiApiKey?: string;
    openaiBaseUrl?: string;
    openaiModel?: string;
    googleApiKey?: string;
    googleModel?: string;
  };
  scheduler: { intervalSeconds: number };
  /** How workers hold their jobs and find those of dead workers (docs/faults.md). */
  jobs: {
    /** A job's lock lasts this long unless renewed (JOB_LOCK_SECONDS, BullMQ lockDuration). */
    lockSeconds: number;
    /** How often the queues are checked for jobs whose lock expired (STALLED_CHECK_SECONDS). */
    stalledCheckSeconds: number;
    /** Stalls a job survives; one more and it fails (MAX_STALLED_COUNT). */
    maxStalledCount: number;
    /** How often a worker removes what dead workers on its host left (LEFTOVER_SWEEP_SECONDS). */
    leftoverSweepSeconds: number;
  };
  batches: {
    dataDir: string;
    perTick: number;
    concurrency: number;
    staleLockSeconds: number;
    configFile?: string;
    /** Variables passed to engine_command besides PATH, HOME, LANG, TZ (BATCH_ENGINE_ENV). */
    engineEnv: string[];
  };
  httpJobs: { allowExternal: boolean; allowlist: string[]; concurrency: number };
  exec: {
    /** Images that may run (EXEC_IMAGE_ALLOWLIST, globs); empty means any image. */
    imageAllowlist: string[];
    /** The bridge's channels (EXEC_REQUESTS_CHANNEL, EXEC_RESPONSES_CHANNEL). */
    channels: { requests: string; responses: string };
    /** Images kept warm from start-up (EXEC_WARM_IMAGES). */
    warmImages: string[];
    /** Ready containers kept per warm image. */
    warmPerImage: number;
    /** How many recently used images are kept warm besides warmImages. */
    recentImages: number;
    concurrency: number;
    /** Default memory of an execution and the cap a request's `resources` may ask for. */
    memoryMb: number;
    maxMemoryMb: number;
    maxCpus: number;
    maxTimeoutSeconds: number;
    /** Input caps: one file (files[], minio objects) and all input together. */
    maxFileBytes: number;
    maxInputBytes: number;
    /** Largest expected output file returned in a response. */
    maxOutputFileBytes: number;
    /** All returned output files together (EXEC_MAX_OUTPUT_BYTES). */
    maxOutputBytes: number;
    /** stdout + stderr kept per execution; the rest is dropped with truncated: true. */
    maxLogBytes: number;
    /** Container user; `root` only when the operator asks (EXEC_USER). */
    user: string;
    readonlyRootfs: boolean;
    pidsLimit: number;
    /** Where workspaces are made: DATA_DIR/exec. */
    workspaceDir: string;
    /**
     * EXEC_INIT_PATH: where dh-init is bound from, a path the Docker engine resolves on its host.
     * A worker copies its own dh-init there at start; unset, the built one is bound where it is.
     */
    initPath?: string;
    registryAuth?: { serveraddress: string; username?: string; password?: string };
  };
  serviceProxy: { port: number; dataServiceUrl?: string; bodyLimitBytes: number; timeoutMs: number };
  nodes: {
    controlPlaneUrl?: string;
    heartbeatIntervalSeconds: number;
    registrationToken?: string;
    name?: string;
    ip?: string;
    /** Workers run the node agent (NODE_AGENT, default yes). */
    agent: boolean;
    /** Where a worker-only process serves /health, /ready and /metrics. */
    workerMetricsPort: number;
  };
  /** Output streamed while calls run (GET …/logs?follow=1): Redis streams, docs/live-logs.md. */
  liveLogs: {
    /** Characters streamed per invocation or execution (LIVE_LOGS_MAX_CHARS); the rest is cut with a notice. */
    maxChars: number;
    /** How long a stream is kept after its last write (LIVE_LOGS_TTL_SECONDS). */
    ttlSeconds: number;
    /** Log streams a gateway process serves at once (LIVE_LOGS_MAX_FOLLOWERS); more get 503. */
    maxFollowers: number;
  };
}

const yes = (value: string) => value === 'yes' || value === 'true';

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function parseTrustProxy(value: string | undefined): string[] {
  const entries = list(value);
  for (const entry of entries) {
    if (!isAddressOrCidr(entry)) {
      throw new ConfigError(
        'TRUST_PROXY',
        `TRUST_PROXY must be a comma-separated list of IP addresses or CIDRs (bad entry ${JSON.stringify(entry)}).`,
      );
    }
  }
  return entries;
}

/**
 * An open API must be asked for: listening beyond loopback without a key serves every route
 * (functions, HTTP jobs, Bull Board) to whoever can reach the port.
 */
function checkOpenListener(host: string, keys: readonly string[], allowUnauthenticated: boolean): void {
  if (keys.length > 0 || allowUnauthenticated || isLoopbackHost(host)) return;
  throw new ConfigError(
    'API_KEYS',
    `HOST ${host} is not a loopback address and API_KEYS is not set: set API_KEYS, listen on 127.0.0.1, or set ALLOW_UNAUTHENTICATED=yes to serve every route without a key.`,
  );
}

function parseLambdaCredentials(value: string | undefined) {
  return list(value).map((entry) => {
    const at = entry.indexOf(':');
    const accessKeyId = entry.slice(0, at);
    const secretAccessKey = entry.slice(at + 1);
    // Named by its position, never its text: the entry holds a secret.
    if (at < 1 || !/^[A-Za-z0-9_.-]{1,128}$/.test(accessKeyId) || secretAccessKey === '')
      throw new ConfigError(
        'LAMBDA_CREDENTIALS',
        `LAMBDA_CREDENTIALS must be a comma-separated list of accessKeyId:secretAccessKey pairs (entry ${list(value).indexOf(entry) + 1} is not one).`,
      );
    return { accessKeyId, secretAccessKey };
  });
}

function parseAllowlist(value: string | undefined): string[] {
  const entries = list(value);
  for (const entry of entries) {
    if (!isAllowlistEntry(entry)) {
      throw new ConfigError(
        'HTTP_JOBS_ALLOWLIST',
        `HTTP_JOBS_ALLOWLIST must be a comma-separated list of hosts or CIDRs (bad entry ${JSON.stringify(entry)}).`,
      );
    }
  }
  return entries;
}

/**
 * Reads, checks and groups the environment once. Empty strings count as unset, so a
 * `FOO=` line in an env file means "default", as it does for most twelve-factor tools.
 * Throws ConfigError whose message is the one line to print.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = { ...DEFAULTS };
  for (const key of CONFIG_VARIABLES) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') raw[key] = value.trim();
  }
  const converted = Value.Convert(EnvSchema, raw) as Record<string, unknown>;
  const firstError = Value.Errors(EnvSchema, converted)[0];
  if (firstError) {
    const variable = firstError.instancePath.replace(/^\//, '') || 'environment';
    const schema = (EnvSchema.properties as Record<string, { description?: string }>)[variable];
    const accepts = schema?.description ?? 'a valid value';
    // A URL's password never reaches a log line, even a wrong URL's.
    const got = redactUrl(String(raw[variable]));
    throw new ConfigError(variable, `${variable} must be ${accepts} (got ${JSON.stringify(got)}).`);
  }
  const e = converted as Env;
  const dataDir = path.resolve(e.DATA_DIR);
  const adminKeys = list(e.ADMIN_API_KEYS);
  const apiKeys = [...new Set([...list(e.API_KEYS), ...adminKeys])];
  checkOpenListener(e.HOST, apiKeys, yes(e.ALLOW_UNAUTHENTICATED));
  return {
    server: {
      port: e.PORT,
      host: e.HOST,
      apiKeys,
      adminKeys,
      lambdaCredentials: parseLambdaCredentials(e.LAMBDA_CREDENTIALS),
      trustProxy: parseTrustProxy(e.TRUST_PROXY),
      authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE,
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      logLevel: e.LOG_LEVEL,
    },
    redis: { url: e.REDIS_URL, prefix: e.QUEUE_PREFIX },
    storage: { dataDir },
    docker: { host: e.DOCKER_HOST, poolMinIdle: e.POOL_MIN_IDLE },
    functions: {
      poolMax: e.POOL_MAX,
      idleTtlSeconds: e.POOL_IDLE_TTL_SECONDS,
      channel: e.FUNCTIONS_CHANNEL,
      concurrency: e.FUNCTIONS_CONCURRENCY,
      maxResultBytes: e.MAX_RESULT_BYTES,
      asyncRetryDelaySeconds: e.ASYNC_RETRY_DELAY_SECONDS,
      images: {
        node20: e.RUNTIME_IMAGE_NODE20,
        python3: e.RUNTIME_IMAGE_PYTHON3,
        provided: e.RUNTIME_IMAGE_PROVIDED,
      },
    },
    s3: {
      endpoint: e.S3_ENDPOINT,
      codeBucket: e.S3_CODE_BUCKET,
      codeBucketsAllowed: list(e.S3_CODE_BUCKETS_ALLOWED),
      outputBucket: e.S3_OUTPUT_BUCKET,
      region: e.AWS_REGION,
    },
    aws: {
      region: e.AWS_REGION,
      credentials:
        e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
          ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY }
          : undefined,
    },
    sqs: { queueUrl: e.SQS_QUEUE_URL, waitSeconds: e.SQS_WAIT_SECONDS },
    minio: {
      endpoint: e.MINIO_ENDPOINT,
      accessKey: e.MINIO_ACCESS_KEY,
      secretKey: e.MINIO_SECRET_KEY,
      bucket: e.MINIO_BUCKET,
    },
    llm: {
      provider: e.LLM_PROVIDER,
      openaiApiKey: e.OPENAI_API_KEY,
      openaiBaseUrl: e.OPENAI_BASE_URL,
      openaiModel: e.OPENAI_MODEL,
      googleApiKey: e.GOOGLE_API_KEY,
      googleModel: e.GOOGLE_MODEL,
    },
    scheduler: { intervalSeconds: e.SCHEDULER_INTERVAL_SECONDS },
    jobs: {
      lockSeconds: e.JOB_LOCK_SECONDS,
      stalledCheckSeconds: e.STALLED_CHECK_SECONDS,
      maxStalledCount: e.MAX_STALLED_COUNT,
      leftoverSweepSeconds: e.LEFTOVER_SWEEP_SECONDS,
    },
    batches: {
      dataDir: path.resolve(e.CLOUD_INFRA_DATA_DIR ?? path.join(dataDir, 'cloud_infra')),
      perTick: e.BATCHES_PER_TICK,
      concurrency: e.BATCHES_CONCURRENCY,
      staleLockSeconds: e.BATCH_LOCK_STALE_SECONDS,
      configFile: e.BATCH_CONFIG ? path.resolve(e.BATCH_CONFIG) : undefined,
      engineEnv: list(e.BATCH_ENGINE_ENV),
    },
    httpJobs: {
      allowExternal: yes(e.ALLOW_EXTERNAL_REQUESTS),
      allowlist: parseAllowlist(e.HTTP_JOBS_ALLOWLIST),
      concurrency: e.HTTP_JOBS_CONCURRENCY,
    },
    exec: {
      imageAllowlist: list(e.EXEC_IMAGE_ALLOWLIST),
      channels: { requests: e.EXEC_REQUESTS_CHANNEL, responses: e.EXEC_RESPONSES_CHANNEL },
      warmImages: list(e.EXEC_WARM_IMAGES),
      warmPerImage: e.EXEC_WARM_PER_IMAGE,
      recentImages: e.EXEC_RECENT_IMAGES,
      concurrency: e.EXEC_CONCURRENCY,
      memoryMb: Math.min(e.EXEC_MEMORY_MB, e.EXEC_MAX_MEMORY_MB),
      maxMemoryMb: e.EXEC_MAX_MEMORY_MB,
      maxCpus: e.EXEC_MAX_CPUS,
      maxTimeoutSeconds: e.EXEC_MAX_TIMEOUT_SECONDS,
      maxFileBytes: e.EXEC_MAX_FILE_BYTES,
      maxInputBytes: e.EXEC_MAX_INPUT_BYTES,
      maxOutputFileBytes: e.EXEC_MAX_OUTPUT_FILE_BYTES,
      maxOutputBytes: e.EXEC_MAX_OUTPUT_BYTES,
      maxLogBytes: e.EXEC_MAX_LOG_BYTES,
      user: e.EXEC_USER === 'root' ? '0:0' : e.EXEC_USER,
      readonlyRootfs: yes(e.EXEC_READONLY_ROOTFS),
      pidsLimit: e.EXEC_PIDS_LIMIT,
      workspaceDir: path.join(dataDir, 'exec'),
      initPath: e.EXEC_INIT_PATH && path.resolve(e.EXEC_INIT_PATH),
      registryAuth: e.EXEC_REGISTRY_SERVER
        ? {
            serveraddress: e.EXEC_REGISTRY_SERVER,
            username: e.EXEC_REGISTRY_USERNAME,
            password: e.EXEC_REGISTRY_PASSWORD,
          }
        : undefined,
    },
    serviceProxy: {
      port: e.SERVICE_PROXY_PORT,
      dataServiceUrl: e.DATA_SERVICE_URL,
      bodyLimitBytes: e.SERVICE_PROXY_BODY_LIMIT_BYTES,
      timeoutMs: e.SERVICE_PROXY_TIMEOUT_MS,
    },
    nodes: {
      controlPlaneUrl: e.CONTROL_PLANE_URL,
      heartbeatIntervalSeconds: e.HEARTBEAT_INTERVAL,
      registrationToken: e.NODE_REGISTRATION_TOKEN,
      name: e.NODE_NAME,
      ip: e.NODE_IP,
      agent: yes(e.NODE_AGENT),
      workerMetricsPort: e.WORKER_METRICS_PORT,
    },
    liveLogs: {
      maxChars: e.LIVE_LOGS_MAX_CHARS,
      ttlSeconds: e.LIVE_LOGS_TTL_SECONDS,
      maxFollowers: e.LIVE_LOGS_MAX_FOLLOWERS,
    },
  };
}

/** A URL with its credentials replaced by ***, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
