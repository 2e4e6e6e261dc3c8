import { Worker } from 'bullmq';
import { type LoggerOptions, pino } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { type App, buildApp } from '../api/app.ts';
import { createBatchFolders } from '../processors/batches/folder.ts';
import { createNarrator } from '../processors/batches/narrative.ts';
import { loadBatchSettings } from '../processors/batches/settings.ts';
import { createBatchDiscovery, createBatchesProcessor } from '../processors/batches.ts';
import { createHttpJobsProcessor } from '../processors/http-jobs.ts';
import type { ProcessorMap } from '../processors/index.ts';
import { createSchedulerProcessor, type TickHandler } from '../processors/scheduler.ts';
import { closeRedis, connectRedis, createRedis, type RedisLifecycle } from '../queues/connection.ts';
import { createEnqueue, createEnqueueBulk, type Enqueue } from '../queues/enqueue.ts';
import { createJobMetrics, registerQueueGauges } from '../queues/metrics.ts';
import { createQueueSet, type QueueSet } from '../queues/queue-set.ts';
import { type QueueName, queueNames } from '../queues/registry.ts';
import { ensureTickScheduler } from '../queues/scheduler-tick.ts';
import { AddressPolicy } from './address-policy.ts';
import type { Config } from './config.ts';
import { createDocker } from './docker.ts';
import { createFunctionServices } from './function-services.ts';
import { createHealth } from './health.ts';
import { createSafeFetch } from './safe-fetch.ts';

export const ROLES = ['all', 'gateway', 'worker', 'scheduler'] as const;
export type Role = (typeof ROLES)[number];

export interface RoleOptions {
  /** pino options; default silent (tests). The CLI passes the configured level. */
  logger?: LoggerOptions;
  /** Extra tick handlers (tests; later issues register theirs in tickHandlers()). */
  tickHandlers?: TickHandler[];
  /** Listen on config.server.port; false leaves the app for inject(). Default true. */
  listen?: boolean;
}

export interface RunningRole {
  role: Role;
  app: App;
  queues: QueueSet;
  enqueue: Enqueue;
  workers: Worker[];
  /** Where the HTTP server listens, when it does. */
  url?: string;
  /** Idempotent: not ready → stop HTTP → workers finish active jobs → queues → Redis. */
  close(): Promise<void>;
}

const servesQueue = (role: Role, queue: QueueName) =>
  role === 'all' ||
  (role === 'scheduler' ? queue === 'scheduler' : role === 'worker' && queue !== 'scheduler');

/** Wires one process's role from config: the only place that creates clients. */
export async function startRole(role: Role, config: Config, options: RoleOptions = {}): Promise<RunningRole> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const lifecycle: RedisLifecycle = { closing: false };
  const producer = await connectRedis(
    createRedis(config.redis.url, 'producer', {}, lifecycle),
    config.redis.url,
  );
  const queues = createQueueSet(producer, config.redis.prefix);
  const enqueue = createEnqueue(queues);
  const docker = createDocker(config.docker.host);
  let shuttingDown = false;
  const health = createHealth({ redis: producer, docker, isShuttingDown: () => shuttingDown });
  registerQueueGauges(registry, queues);

  const logger = pino(options.logger ?? { level: 'silent' });
  const batchLog = logger.child({ component: 'batches' });
  const folders = createBatchFolders(loadBatchSettings(config.batches));
  const narrator = createNarrator(config.llm, (line) => batchLog.warn(line));
  const tickHandlers = [
    createBatchDiscovery({
      folders,
      enqueueBulk: createEnqueueBulk(queues),
      log: (line) => batchLog.info(line),
    }),
    ...(options.tickHandlers ?? []),
  ];

  const functions = await createFunctionServices({
    config,
    producer,
    registry,
    logger: logger.child({ component: 'functions' }),
    lifecycle,
    enqueue,
    gateway: role === 'all' || role === 'gateway',
    worker: servesQueue(role, 'functions'),
  });

  const safeFetch = createSafeFetch({ policy: new AddressPolicy(config.httpJobs) });
  const processors: ProcessorMap = {
    'http-jobs': createHttpJobsProcessor({ fetch: safeFetch }),
    scheduler: createSchedulerProcessor(tickHandlers),
    functions: functions.processor,
    exec: null,
    batches: createBatchesProcessor({ folders, narrator, log: (line) => batchLog.info(line) }),
  };
  // Batches are file I/O bound (fsync per result), so many run at once; their state updates
  // share group commits of processed.json.
  const concurrency: Partial<Record<QueueName, number>> = {
    'http-jobs': config.httpJobs.concurrency,
    batches: config.batches.concurrency,
    functions: config.functions.concurrency,
  };

  const workers: Worker[] = [];
  const workerRedis = role === 'gateway' ? undefined : createRedis(config.redis.url, 'worker', {}, lifecycle);
  if (workerRedis) {
    const jobMetrics = createJobMetrics(registry);
    for (const name of queueNames) {
      const processor = processors[name];
      if (!processor || !servesQueue(role, name)) continue;
      const worker = new Worker(name, processor, {
        connection: workerRedis,
        prefix: config.redis.prefix,
        concurrency: concurrency[name] ?? 1,
      });
      worker.on('error', () => {}); // connection blips are retried by ioredis; jobs are not lost
      jobMetrics.instrument(worker);
      workers.push(worker);
    }
  }
  if (role === 'all' || role === 'scheduler') {
    await ensureTickScheduler(queues.scheduler, config.scheduler.intervalSeconds);
  }

  const app = await buildApp(
    { config, redis: producer, queues, enqueue, health, registry, logger, folders, tickHandlers, functions },
    role === 'all' || role === 'gateway' ? 'gateway' : 'ops',
  );
  let url: string | undefined;
  if (options.listen !== false) {
    url = await app.listen({ port: config.server.port, host: config.server.host });
  } else {
    await app.ready();
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      lifecycle.closing = true;
      await app.close();
      await Promise.all(workers.map((w) => w.close()));
      await functions.close();
      await safeFetch.close();
      await queues.close();
      await Promise.all([workerRedis && closeRedis(workerRedis), closeRedis(producer)]);
    })();
    return closing;
  };
  return { role, app, queues, enqueue, workers, url, close };
}
