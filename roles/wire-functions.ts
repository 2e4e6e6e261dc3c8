import { hostname } from 'node:os';
import path from 'node:path';
import type { Queue } from 'bullmq';
import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../core/config.ts';
import type { SafeFetch } from '../core/safe-fetch.ts';
import { createAsyncInvocations } from '../processors/functions/async-invocations.ts';
import { createDestinationMetrics, createDestinationSender } from '../processors/functions/destinations.ts';
import { createEventInvokeConfigStore } from '../processors/functions/event-invoke-config.ts';
import {
  createFunctionStore,
  localCodeStorage,
  s3CodeStorage,
} from '../processors/functions/function-store.ts';
import { createInvocationRunner } from '../processors/functions/invocation-runner.ts';
import { createFunctionMetrics } from '../processors/functions/metrics.ts';
import { createS3CodeReader } from '../processors/functions/s3-code-source.ts';
import { s3LogSink } from '../processors/functions/s3-log-sink.ts';
import { createTuningHistory } from '../processors/functions/tuning-history.ts';
import { createFunctionsProcessor } from '../processors/functions.ts';
import { createSweepsProcessor } from '../processors/sweeps.ts';
import {
  FUNCTION_RESULTS_CHANNEL,
  type FunctionChanged,
  functionChangedChannel,
} from '../queues/channels.ts';
import { closeRedis, createRedis, type RedisLifecycle } from '../queues/connection.ts';
import { createDeadLetters } from '../queues/dead-letters.ts';
import type { Enqueue } from '../queues/enqueue.ts';
import {
  createRunningInvocations,
  invocationCancelChannel,
  readInvocation,
} from '../queues/invocation-cancel.ts';
import { cancelListener } from '../queues/job-cancel.ts';
import type { LogWriter } from '../queues/log-stream.ts';
import { createReplyPublisher } from '../queues/reply-path.ts';
import { createResultWaiter, type JobOutcome, type ResultWaiter } from '../queues/result-waiter.ts';
import type { InvocationResult } from '../queues/schemas/functions.ts';
import { createSqsIngress } from '../queues/sqs-ingress.ts';
import { createPresenceBeacon, createPresenceCheck } from '../queues/worker-presence.ts';
import { runtimeCatalog } from '../runtimes/catalog.ts';
import { CgroupProfiler } from '../runtimes/cgroup-profiler.ts';
import { DockerSandboxDriver } from '../runtimes/docker-sandbox.ts';
import { ensureEgressNetwork } from '../runtimes/egress-network.ts';
import { placeInit } from '../runtimes/exec-init/install-init.ts';
import { createInvoker } from '../runtimes/invoker.ts';
import { functionArn } from '../runtimes/lambda-env.ts';
import { chooseChannel } from '../runtimes/socket-channel.ts';
import { WarmPool } from '../runtimes/warm-pool.ts';
import { createS3, createSqs } from './aws-clients.ts';

/**
 * Everything functions need, made once per process: the store and tuning history everywhere,
 * the result waiter where the gateway runs, the warm pool and processor where workers run.
 * A worker whose Docker engine is away serves no functions (their jobs wait) and says why.
 */
export async function wireFunctions(deps: {
  config: Config;
  producer: Redis;
  registry: Registry;
  logger: Logger;
  /** The process's one Docker client. */
  docker: Docker;
  lifecycle: RedisLifecycle;
  /** Auto-pipelined, for what a call writes once its result exists (roles/compose.ts). */
  bookkeeping: Redis;
  /** The functions queue: a sync call whose reply was lost is read from it. */
  functionsQueue: Queue;
  gateway: boolean;
  worker: boolean;
  enqueue: Enqueue;
  /** Where calls' output goes as it is written (live logs). */
  liveLogs?: LogWriter;
  /** The SSRF-guarded fetch HTTP jobs use: HTTP destinations are POSTed through it. */
  fetch: SafeFetch;
}) {
  const { config, producer } = deps;
  const prefix = config.redis.prefix;
  const s3 = createS3(config);
  const code =
    s3 && config.s3.codeBucket
      ? s3CodeStorage(s3, config.s3.codeBucket)
      : localCodeStorage(path.join(config.storage.dataDir, 'functions'));
  const store = createFunctionStore({ redis: producer, prefix, code });
  const s3Code = createS3CodeReader({
    s3,
    buckets: [config.s3.codeBucket ?? '', ...config.s3.codeBucketsAllowed],
  });
  const history = createTuningHistory({ redis: deps.bookkeeping, prefix });
  const eventInvokeConfigs = createEventInvokeConfigStore(producer, prefix);
  // Channels a destination may not publish on: Dockhand's own (under the prefix, and these).
  const destinationChannels = {
    prefix,
    reserved: [FUNCTION_RESULTS_CHANNEL, config.exec.channels.requests, config.exec.channels.responses],
  };

  const waiterRedis: Redis[] = [];
  // What waits for Redis (streams read, channels subscribed): a role may start while Redis is
  // away, and is ready once these are in place.
  const redisSetup: Promise<unknown>[] = [];
  let waiter: ResultWaiter | undefined;
  if (deps.gateway) {
    // Its own connection: a subscriber can send nothing else.
    const replies = createRedis(config.redis.url, 'worker', {}, deps.lifecycle);
    waiterRedis.push(replies);
    const jobs = deps.functionsQueue;
    waiter = createResultWaiter({ replies }, prefix, {
      // A reply that never came: read as GET /invocations/:id reads it.
      lookup: async (jobId): Promise<JobOutcome> => {
        const read = await readInvocation(jobs, producer, prefix, jobId);
        if (!read) return { state: 'missing' };
        if (read.state === 'completed') return { state: 'completed', value: read.result };
        if (read.state === 'failed') return read;
        return { state: 'pending' };
      },
    });
    redisSetup.push(waiter.ready());
  }

  /**
   * A deleted function's containers must not outlive it, nor a redeployed one's serve again with
   * what the old deploy left in /tmp, in whichever worker process holds them: the store
   * announces every change (functionChangedChannel) and each pool drops what it holds of it.
   * A message missed while Redis is away is covered: a new deploy has a new version, which no
   * old container matches, and the idle TTL removes the rest.
   */
  const listenForChanges = (target: WarmPool): Redis => {
    const subscriber = createRedis(config.redis.url, 'worker', {}, deps.lifecycle);
    const cancels = invocationCancelChannel(prefix);
    subscriber.on('message', (channel: string, raw: string) => {
      // A cancel for a call this process runs (DELETE /invocations/:id); the flag covers the rest.
      if (channel === cancels) return void running.cancel(raw);
      try {
        const { name, version } = JSON.parse(raw) as FunctionChanged;
        if (typeof name !== 'string') return;
        // The record and code this process kept go too: a deleted function's queued calls must
        // not run its code from memory.
        store.forget(name);
        target.evict(name, typeof version === 'string' ? version : undefined);
      } catch {
        deps.logger.warn({ raw: raw.slice(0, 200) }, 'Ignored a malformed function-changed message.');
      }
    });
    const cancel = cancelListener(subscriber, () =>
      subscriber.subscribe(functionChangedChannel(prefix), cancels),
    );
    redisSetup.push(cancel.subscribed);
    listening = cancel.listening;
    return subscriber;
  };

  const deadLetters = createDeadLetters(producer, prefix);
  // SQS is an ingress, like HTTP: it runs where the gateway runs.
  const sqs = deps.gateway ? createSqs(config) : undefined;
  const ingress =
    sqs && config.sqs.queueUrl
      ? createSqsIngress({
          sqs,
          queueUrl: config.sqs.queueUrl,
          waitSeconds: config.sqs.waitSeconds,
          enqueue: deps.enqueue,
          functionExists: async (name) => (await store.get(name)) !== undefined,
          deadLetter: async (entry) => {
            await deadLetters.add(entry);
          },
          log: (message, extra) => deps.logger.warn(extra ?? {}, message),
        })
      : undefined;
  ingress?.start();

  // Until the cancel subscriber below is in place, every call reads its cancel flag.
  let listening = () => false;
  const running = createRunningInvocations(producer, prefix, { listening: () => listening() });
  let pool: WarmPool | undefined;
  let profiler: CgroupProfiler | undefined;
  let changes: Redis | undefined;
  let beacon: ReturnType<typeof createPresenceBeacon> | undefined;
  let processor: ReturnType<typeof createFunctionsProcessor> | null = null;
  let sweepProcessor: ReturnType<typeof createSweepsProcessor> | null = null;
  if (deps.worker) {
    const metrics = createFunctionMetrics(deps.registry);
    // Without the network, containers of functions with egress fail to start: closed, not open.
    await ensureEgressNetwork({ docker: deps.docker, allow: config.httpJobs.allowlist }).then(
      ({ unresolved }) => {
        if (unresolved.length)
          deps.logger.warn({ unresolved }, 'Allowlisted hosts that do not resolve open nothing to egress.');
      },
      (err) =>
        deps.logger.error(
          { err },
          'The egress network could not be set up (it needs root and iptables on the Docker host): functions with network egress will fail.',
        ),
    );
    const owner = `${hostname()}/${process.pid}`;
    const channel = await chooseChannel(config.functions.channel, config.docker.host, {
      initPath: await placeInit(config.exec.initPath, (err) =>
        deps.logger.error(
          { err, initPath: config.exec.initPath },
          'dh-init could not be copied to EXEC_INIT_PATH.',
        ),
      ),
      root: path.join(config.storage.dataDir, 'sockets'),
      owner,
    });
    deps.logger.info(
      { channel: channel.sockets ? 'socket' : 'attach', reason: channel.reason },
      'Function containers talk over %s.',
      channel.sockets ? 'a unix socket each' : "Docker's attach stream",
    );
    profiler = new CgroupProfiler();
    pool = new WarmPool({
      driver: new DockerSandboxDriver(deps.docker, owner, {
        maxResultBytes: config.functions.maxResultBytes,
        sockets: channel.sockets,
        // auto: a socket the engine cannot reach (no same-path DATA_DIR, an engine in a VM) is
        // found at the first container and the attach stream taken instead; socket: it fails.
        socketFallback:
          config.functions.channel === 'auto'
            ? (reason) =>
                deps.logger.warn(
                  { reason },
                  "Function containers could not use their socket; they talk over Docker's attach stream from now on.",
                )
            : undefined,
      }),
      runtimes: runtimeCatalog(config.functions.images),
      minIdle: config.docker.poolMinIdle,
      max: config.functions.poolMax,
      idleTtlMs: config.functions.idleTtlSeconds * 1000,
      onEvent: metrics.onPoolEvent,
      onDestroyed: (id) => profiler?.forget(id),
    });
    try {
      await pool.start();
      metrics.registerPool(pool);
      const publish = async (result: InvocationResult) => {
        await deps.bookkeeping.publish(FUNCTION_RESULTS_CHANNEL, JSON.stringify(result));
      };
      const sinks = [publish];
      if (s3 && config.s3.outputBucket) sinks.push(s3LogSink(s3, config.s3.outputBucket));
      const run = createInvocationRunner({
        store,
        region: config.aws.region,
        invoke: createInvoker({
          pool,
          profiler,
          maxResultBytes: config.functions.maxResultBytes,
          liveLogChars: config.liveLogs.maxChars,
        }),
      });
      processor = createFunctionsProcessor({
        store,
        history,
        run,
        sinks,
        // Role `all`: replies to this process's own gateway never leave it.
        reply: createReplyPublisher(deps.bookkeeping, prefix, waiter),
        onResult: metrics.onResult,
        onTelemetryError: metrics.onTelemetryError,
        liveLogs: deps.liveLogs,
        running,
        async: createAsyncInvocations({
          configs: eventInvokeConfigs,
          deadLetters,
          retryDelayMs: config.functions.asyncRetryDelaySeconds * 1000,
          functionArn: (name) => functionArn(config.aws.region, name),
          log: (message, extra) => deps.logger.error(extra, message),
          send: createDestinationSender({
            enqueue: deps.enqueue,
            publish: (channel, message) => producer.publish(channel, message),
            fetch: deps.fetch,
            channels: destinationChannels,
            functionExists: async (name) => (await store.get(name)) !== undefined,
            onFailure: (() => {
              const count = createDestinationMetrics(deps.registry);
              return (type: string, reason: string) => {
                count(type);
                deps.logger.warn({ destination: type, reason }, 'A destination record was not delivered.');
              };
            })(),
          }),
        }),
      });
      sweepProcessor = createSweepsProcessor({ store, history, run, closing: () => deps.lifecycle.closing });
      // Gateways answer a sync call 503 at once when no worker's Docker answers.
      beacon = createPresenceBeacon({
        redis: producer,
        prefix,
        queue: 'functions',
        workerId: `${hostname()}/${process.pid}`,
        canWork: () => deps.docker.ping(),
        onError: (err) =>
          deps.logger.warn({ err }, 'Docker does not answer: this worker takes no functions.'),
      });
      await beacon.start();
    } catch (err) {
      deps.logger.error(
        { err },
        'Docker is not reachable: this worker serves no functions (start dockerd or set DOCKER_HOST); other queues run.',
      );
      // The pool never started: closing it is best effort, and the error above already says why.
      await pool.close().catch(() => {});
      pool = undefined;
    }
    if (pool) changes = listenForChanges(pool);
  }

  return {
    store,
    history,
    waiter,
    functionsAvailable: deps.gateway
      ? createPresenceCheck({ redis: producer, prefix, queue: 'functions' })
      : undefined,
    s3,
    s3Code,
    pool,
    /** Settles once what waits for Redis is in place; rejects only when the role closes first. */
    redisReady: Promise.all(redisSetup).then(() => {}),
    processor,
    sweepProcessor,
    deadLetters,
    eventInvokeConfigs,
    destinationChannels,
    /** First thing at shutdown: gateways stop sending sync calls here while workers drain. */
    async leave() {
      await beacon?.stop();
    },
    async close() {
      await beacon?.stop();
      await ingress?.close();
      // Their keep-alive sockets would outlive the role.
      s3?.destroy();
      sqs?.destroy();
      await waiter?.close();
      await Promise.all(waiterRedis.map(closeRedis));
      if (changes) await closeRedis(changes);
      await pool?.close();
      // The pool's close removes its containers without a word each: their open files go here.
      profiler?.close();
    },
  };
}
