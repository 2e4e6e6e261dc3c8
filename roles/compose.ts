import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import { type Level, type LoggerOptions, pino } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { type App, buildApp } from '../api/app.ts';
import { listen } from '../api/server.ts';
import { AddressPolicy } from '../core/address-policy.ts';
import { type Config, redactUrl } from '../core/config.ts';
import { createHealth } from '../core/health.ts';
import { createSafeFetch } from '../core/safe-fetch.ts';
import { invocationBackoff } from '../processors/functions/async-invocations.ts';
import { createHttpJobsProcessor } from '../processors/http-jobs.ts';
import { checkPayloads, type ProcessorMap } from '../processors/index.ts';
import { createSchedulerProcessor, type TickHandler } from '../processors/scheduler.ts';
import {
  closeRedis,
  connectRedis,
  createRedis,
  type RedisLifecycle,
  startConnecting,
  untilDone,
} from '../queues/connection.ts';
import { createEnqueue, createEnqueueBulk, type Enqueue } from '../queues/enqueue.ts';
import { createLogReader } from '../queues/log-reader.ts';
import { createLogWriter, registerLogWriterMetrics } from '../queues/log-stream.ts';
import { createJobMetrics, registerQueueGauges } from '../queues/metrics.ts';
import { createNodeLogDestination } from '../queues/node-log-destination.ts';
import { createQueueSet, type QueueSet } from '../queues/queue-set.ts';
import { watchRedisDurability } from '../queues/redis-durability.ts';
import { registerRedisMemoryGauges } from '../queues/redis-metrics.ts';
import type { QueueName } from '../queues/registry.ts';
import { ensureTickScheduler } from '../queues/scheduler-tick.ts';
import { registerWorkerGauges } from '../queues/worker-metrics.ts';
import { startLeftoverSweep } from '../runtimes/leftover-sweep.ts';
import { createDocker } from './docker-client.ts';
import { httpPort, queueConcurrency, type RoleSpec, worksQueues } from './spec.ts';
import { wireBatches } from './wire-batches.ts';
import { checkRequest, wireExec } from './wire-exec.ts';
import { wireFunctions } from './wire-functions.ts';
import { wireNodeAgent } from './wire-node-agent.ts';

export interface RoleOptions {
  /** pino options; default silent (tests). The CLI passes the configured level. */
  logger?: LoggerOptions;
  /** Extra tick handlers (tests; later issues register theirs in tickHandlers()). */
  tickHandlers?: TickHandler[];
  /** Listen on config.server.port; false leaves the app for inject(). Default true. */
  listen?: boolean;
  /** The clock node statuses are computed by (tests move it). Default Date.now. */
  now?: () => number;
}

export interface RunningRole {
  role: string;
  app: App;
  queues: QueueSet;
  enqueue: Enqueue;
  workers: Worker[];
  /** Where the HTTP server listens, when it does. */
  url?: string;
  /** Idempotent: not ready → stop HTTP → workers finish active jobs → queues → Redis. */
  close(): Promise<void>;
}

/**
 * Wires one process from its role's spec and the config: the only code that creates clients
 * (Redis, Docker, S3, SQS, fetch) and hands them to the features.
 */
export async function startProcess(
  role: string,
  spec: RoleSpec,
  config: Config,
  options: RoleOptions = {},
): Promise<RunningRole> {
  const works = (queue: QueueName) => spec.queues.includes(queue);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const lifecycle: RedisLifecycle = { closing: false };
  const producer = createRedis(config.redis.url, 'producer', {}, lifecycle);
  // What a call writes once its result exists (its reply to another gateway, its copy on
  // function-results, its tuning sample, its live log), auto-pipelined: one write instead of
  // four. A connection of its own: auto-pipelining queues every command behind a batch in
  // flight, so on a reconnect to a Redis not yet answering (loading its AOF) routes would hang
  // instead of answering 503; here only telemetry waits, and at most commandTimeout. Never
  // BullMQ's: its users report lost job data with auto-pipelining (OptimalBits/bull#2276, bullmq#457).
  const bookkeeping = createRedis(
    config.redis.url,
    'producer',
    { enableAutoPipelining: true, commandTimeout: 2000 },
    lifecycle,
  );
  // With Redis away the role starts all the same (routes answer 503, /ready 503) and carries on
  // once it answers; before the queues are made, so that they wait for the connection.
  const [redisAtStart] = await Promise.all([startConnecting(producer), startConnecting(bookkeeping)]);
  const queues = createQueueSet(producer, config.redis.prefix);
  const enqueue = createEnqueue(queues);
  const docker = createDocker(config.docker.host);
  let shuttingDown = false;
  let started = false;
  let durability: ReturnType<typeof watchRedisDurability> | undefined;
  const health = createHealth({
    redis: producer,
    docker,
    isShuttingDown: () => shuttingDown,
    isStarted: () => started,
    durability: () => durability?.current(),
  });
  registerQueueGauges(registry, queues, () => producer.status === 'ready');
  registerWorkerGauges(registry, { redis: producer, prefix: config.redis.prefix });
  registerRedisMemoryGauges(registry, producer);

  // Live logs: calls run here append their output; gateways here read it back, each follower
  // on a connection of its own (its reads block), as many as LIVE_LOGS_MAX_FOLLOWERS.
  const liveLogs = createLogWriter({
    redis: bookkeeping,
    prefix: config.redis.prefix,
    maxCallChars: config.liveLogs.maxChars,
    ttlSeconds: config.liveLogs.ttlSeconds,
    // Live enough for a person reading; under load the lines of several calls share a write.
    batchMs: 10,
  });
  registerLogWriterMetrics(registry, liveLogs);
  const logReader = createLogReader({
    redis: producer,
    prefix: config.redis.prefix,
    connect: () => connectRedis(createRedis(config.redis.url, 'producer', {}, lifecycle), config.redis.url),
  });

  // A worker's log lines also go to its node's live log (GET /api/v1/nodes/:id/logs), once the
  // node agent has an id; writer failures are counted by the writer, never logged through here.
  const node: { id: () => string | undefined } = { id: () => undefined };
  const logger =
    options.logger && worksQueues(spec) && config.nodes.agent
      ? pino(
          options.logger,
          pino.multistream([
            { level: (options.logger.level ?? 'info') as Level, stream: process.stdout },
            {
              level: (options.logger.level ?? 'info') as Level,
              stream: createNodeLogDestination(liveLogs, () => node.id()),
            },
          ]),
        )
      : pino(options.logger ?? { level: 'silent' });
  if (!redisAtStart)
    logger.warn(
      { redis: redactUrl(config.redis.url) },
      'Redis does not answer: starting anyway; /ready says 503 and work waits until it does.',
    );
  // BullMQ's production checklist: AOF on and no eviction, or accepted jobs can vanish.
  durability = watchRedisDurability(producer, (warnings) => {
    for (const warning of warnings) logger.warn({ redis: redactUrl(config.redis.url) }, warning);
  });
  const batches = wireBatches({
    config,
    logger: logger.child({ component: 'batches' }),
    enqueueBulk: createEnqueueBulk(queues),
  });
  const tickHandlers = [batches.discovery, ...(options.tickHandlers ?? [])];

  const safeFetch = createSafeFetch({ policy: new AddressPolicy(config.httpJobs) });
  const functions = await wireFunctions({
    config,
    producer,
    registry,
    logger: logger.child({ component: 'functions' }),
    docker,
    lifecycle,
    bookkeeping,
    functionsQueue: queues.functions,
    enqueue,
    gateway: spec.http === 'api',
    worker: works('functions'),
    liveLogs,
    fetch: safeFetch,
  });

  const exec = await wireExec({
    config,
    docker,
    worker: works('exec'),
    registry,
    liveLogs,
    producer,
    queues,
    enqueue,
    logger: logger.child({ component: 'exec' }),
    lifecycle,
    gateway: spec.http === 'api',
    bridge: spec.bridge ?? false,
  });

  const processors: ProcessorMap = {
    'http-jobs': createHttpJobsProcessor({ fetch: safeFetch }),
    scheduler: createSchedulerProcessor(tickHandlers),
    functions: functions.processor,
    sweeps: functions.sweepProcessor,
    exec: exec.processor,
    batches: batches.processor,
  };
  const concurrency = queueConcurrency(config);

  const owner = `${hostname()}/${process.pid}`;
  const workers: Worker[] = [];
  const workerRedis =
    spec.queues.length > 0 ? createRedis(config.redis.url, 'worker', {}, lifecycle) : undefined;
  if (workerRedis) {
    const jobMetrics = createJobMetrics(registry);
    for (const name of spec.queues) {
      const processor = processors[name];
      if (!processor) continue;
      // Every job's data is checked against its queue's schema before its processor runs.
      const worker = new Worker(name, checkPayloads(name, processor), {
        connection: workerRedis,
        prefix: config.redis.prefix,
        concurrency: concurrency[name],
        // Recorded on each job it takes (processedBy): which process ran it.
        name: owner,
        // Why these values: core/config.ts and docs/faults.md. Renewed at a third of the lock,
        // not BullMQ's half, so a late timer has two chances before the lock runs out.
        lockDuration: config.jobs.lockSeconds * 1000,
        lockRenewTime: (config.jobs.lockSeconds * 1000) / 3,
        stalledInterval: config.jobs.stalledCheckSeconds * 1000,
        maxStalledCount: config.jobs.maxStalledCount,
        // A failed Event invocation waits ASYNC_RETRY_DELAY_SECONDS × n before retry n.
        ...(name === 'functions'
          ? {
              settings: {
                backoffStrategy: invocationBackoff(config.functions.asyncRetryDelaySeconds * 1000),
              },
            }
          : {}),
      });
      worker.on('error', () => {}); // connection blips are retried by ioredis; jobs are not lost
      jobMetrics.instrument(worker);
      workers.push(worker);
    }
  }
  // Started with Redis away: these complete once it answers, and /ready waits for them.
  const redisSetup = Promise.all([
    functions.redisReady,
    exec.redisReady,
    spec.tick &&
      untilDone(producer, lifecycle, () =>
        ensureTickScheduler(queues.scheduler, config.scheduler.intervalSeconds),
      ),
  ]).then(() => {
    started = true;
  });
  if (redisAtStart) await redisSetup;
  else
    redisSetup.catch((err) => {
      // Closing before Redis ever answered: nothing left to wait for.
      if (!lifecycle.closing) logger.error({ err }, 'Start-up could not finish once Redis answered.');
    });

  const app = await buildApp(
    {
      config,
      redis: producer,
      queues,
      enqueue,
      health,
      registry,
      logger,
      folders: batches.folders,
      tickHandlers,
      functions,
      exec: exec.waiter && { waiter: exec.waiter, limits: config.exec, checkInput: checkRequest(config) },
      now: options.now,
      logs: { reader: logReader, maxFollowers: config.liveLogs.maxFollowers },
    },
    spec.http === 'api' ? 'gateway' : 'ops',
  );
  let url: string | undefined;
  if (options.listen !== false) url = await listen(app, { ...config.server, port: httpPort(spec, config) });
  else await app.ready();

  const pool = functions.pool;
  const nodeAgent = worksQueues(spec)
    ? wireNodeAgent({
        config,
        logger,
        docker,
        workers,
        poolStats:
          pool &&
          (() => {
            const s = pool.stats();
            const generic = Object.values(s.generic).reduce((sum, n) => sum + n, 0);
            const execPool = exec.stats();
            return {
              idle: generic + s.idleBound + (execPool?.idle ?? 0),
              busy: s.busy + (execPool?.busy ?? 0),
            };
          }),
        apiPort: spec.http === 'api' && url ? Number(new URL(url).port) : undefined,
      })
    : undefined;
  node.id = () => nodeAgent?.agent.nodeId;

  // A worker killed without a word leaves its containers running: the survivors on its host
  // remove them (and its exec workspaces) within a sweep, not when a replacement starts.
  const leftovers =
    works('functions') || works('exec')
      ? startLeftoverSweep({
          docker,
          owner,
          workspaceDir: config.exec.workspaceDir,
          intervalMs: config.jobs.leftoverSweepSeconds * 1000,
          onRemoved: (removed) => logger.info(removed, 'Removed what dead workers on this host left.'),
          onError: (err) => logger.debug({ err }, 'The leftover sweep failed; the next one tries again.'),
        })
      : undefined;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      durability?.stop();
      await leftovers?.stop();
      await nodeAgent?.close();
      await functions.leave();
      lifecycle.closing = true;
      await app.close();
      await Promise.all(workers.map((w) => w.close()));
      await exec.close();
      await functions.close();
      // What the last calls printed reaches Redis before its connection closes.
      await liveLogs.flush();
      await safeFetch.close();
      await queues.close();
      await Promise.all([
        workerRedis && closeRedis(workerRedis),
        closeRedis(producer),
        closeRedis(bookkeeping),
      ]);
    })();
    return closing;
  };
  return { role, app, queues, enqueue, workers, url, close };
}
