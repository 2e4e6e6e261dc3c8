import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Type } from 'typebox';
import { DockhandError, NotFoundError, StalledClientError } from '../../core/errors.ts';
import { readJobWithState } from '../../queues/job-read.ts';
import type { LogReader } from '../../queues/log-reader.ts';
import { type LogKind, MAX_STATUS_CHARS } from '../../queues/log-stream.ts';
import { EventStream } from '../event-stream.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import {
  ExecLogParams,
  InvocationLogParams,
  LogEventStream,
  LogHeaders,
  LogQuery,
  NodeLogParams,
} from '../schemas/logs.ts';

export interface LogRouteDeps {
  reader: LogReader;
  /** The `functions` and `exec` queues: a call's job says whether it exists and how it ended. */
  queues: { functions: Queue; exec: Queue };
  /** Streams this process serves at once (LIVE_LOGS_MAX_FOLLOWERS); one more is a 503. */
  maxFollowers: number;
  registry: Registry;
  /** Does this node exist (the node store)? Without it, any well-formed id is served. */
  nodeExists?: (id: string) => Promise<boolean>;
  /** Quiet time before a `: ping` comment (and a look at whether the call ended). Default 15 s. */
  heartbeatMs?: number;
  /** A client that reads nothing this long while its buffer is full is dropped. Default 60 s. */
  stallMs?: number;
}

/** How long a stream whose call has already ended waits for its `end` entry (still being written). */
const END_GRACE_MS = 2000;
/**
 * Entries per Redis read: with the socket's high-water mark, what one slow client can hold
 * (16 entries of at most 16 Ki characters: 512 KiB at worst, usually far less).
 */
const BATCH = 16;

/** How the call ended, once it has; undefined while it runs (or forever: a node). */
type EndedCheck = () => Promise<string | undefined>;

const status = (value: unknown) => (typeof value === 'string' ? value.slice(0, MAX_STATUS_CHARS) : undefined);

/**
 * The call's job, read again each time: Redis is not trusted, so only a status string is
 * taken from its return value. A job that is gone (removed with its age) ended unknown.
 */
async function jobEndedCheck(
  queue: Queue,
  id: string,
  statuses: { of: (result: unknown) => string; failed: string; gone: string },
): Promise<EndedCheck | undefined> {
  if (!(await queue.getJob(id))) return undefined;
  return async () => {
    const read = await readJobWithState(queue, id);
    if (!read) return statuses.gone;
    const { job, state } = read;
    if (state === 'completed') return statuses.of(job.returnvalue);
    if (state === 'failed') return statuses.failed;
    return undefined;
  };
}

const functionStatuses = {
  of: (result: unknown) => status((result as { status?: unknown } | null)?.status) ?? 'SUCCESS',
  failed: 'FAILED',
  gone: 'UNKNOWN',
};
const execStatuses = {
  of: (result: unknown) => {
    const r = result as { status?: unknown; success?: unknown } | null;
    return status(r?.status) ?? (r?.success === true ? 'succeeded' : 'failed');
  },
  failed: 'failed',
  gone: 'unknown',
};

/**
 * GET …/logs for invocations, executions and nodes: what was logged so far (replay) and,
 * with follow=1, what is logged from then on, as Server-Sent Events. Authenticated like every
 * route (the auth hook runs on onRequest, before this handler; nothing here is public).
 */
export default async function logRoutes(base: FastifyInstance, deps: LogRouteDeps) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const stallMs = deps.stallMs ?? 60_000;
  const open = new Set<AbortController>();
  let paused = 0;

  new Gauge({
    name: 'dockhand_log_streams',
    help: 'Live log streams (GET …/logs) this gateway process serves now.',
    registers: [deps.registry],
    collect() {
      this.set(open.size);
    },
  });
  new Gauge({
    name: 'dockhand_log_streams_paused',
    help: 'Live log streams waiting for a slow client to read; Redis is not read for them meanwhile.',
    registers: [deps.registry],
    collect() {
      this.set(paused);
    },
  });
  const refused = new Counter({
    name: 'dockhand_log_streams_refused_total',
    help: 'Live log requests refused with 503 because LIVE_LOGS_MAX_FOLLOWERS streams were open.',
    registers: [deps.registry],
  });
  const stalled = new Counter({
    name: 'dockhand_log_streams_stalled_total',
    help: 'Live log streams dropped because their client read nothing while its buffer was full.',
    registers: [deps.registry],
  });

  // A follow never ends by itself while its call runs (a node's never does): shutdown ends them.
  app.addHook('preClose', async () => {
    for (const stream of open) stream.abort();
  });

  async function serve(
    request: FastifyRequest,
    reply: FastifyReply,
    stream: { kind: LogKind; id: string; ended: EndedCheck },
  ): Promise<void> {
    const { kind, id, ended } = stream;
    const query = request.query as { follow?: string };
    const after = (request.headers as { 'last-event-id'?: string })['last-event-id'];
    // EventSource reconnects whenever a stream closes, also after `end`, sending the last id it
    // saw: a call that has ended with nothing after that id answers 204, which tells it to stop.
    if (after !== undefined && (await ended()) && !(await deps.reader.hasAfter(kind, id, after))) {
      reply.status(204).send();
      return;
    }
    const follow = query.follow === '1' || query.follow === 'true';
    if (open.size >= deps.maxFollowers) {
      refused.inc();
      reply.header('retry-after', '5');
      throw new DockhandError(
        'too_many_log_streams',
        503,
        `This gateway already serves ${deps.maxFollowers} live log streams (LIVE_LOGS_MAX_FOLLOWERS); retry shortly.`,
      );
    }
    const done = new AbortController();
    open.add(done);
    reply.hijack();
    const res = reply.raw;
    res.on('close', () => done.abort());
    const out = new EventStream(res);
    let abort = false;
    try {
      // Headers other hooks set (rate-limit counts) go out too: hijacking skips Fastify's send.
      out.open(
        Object.fromEntries(
          Object.entries(reply.getHeaders()).map(([name, value]) => [
            name,
            typeof value === 'number' ? String(value) : value,
          ]),
        ),
      );
      // A call that had ended before we came: only its end entry can still be on its way.
      const endedBefore = follow ? await ended() : undefined;
      let finished = false;
      // An end made from the job (no end entry) carries the last id sent, so that a reconnect
      // after it is recognised as having seen everything.
      let lastId = after ?? '0-0';
      const batches = deps.reader.entries(kind, id, {
        after,
        follow,
        count: BATCH,
        blockMs: endedBefore ? END_GRACE_MS : heartbeatMs,
        signal: done.signal,
      });
      for await (const batch of batches) {
        for (const entry of batch) {
          if (entry.type === 'end') {
            out.event('end', { status: entry.status }, entry.id);
            finished = true;
            break;
          }
          lastId = entry.id;
          const fits = out.event('log', { stream: entry.stream, text: entry.text, ts: entry.ts }, entry.id);
          if (!fits) {
            // Backpressure: no more reading from Redis until the client has taken this.
            paused++;
            try {
              await out.drained(stallMs, done.signal);
            } finally {
              paused--;
            }
          }
        }
        if (finished || done.signal.aborted) break;
        if (follow && batch.length === 0) {
          // Quiet: the call may have ended without an end entry (its worker died, or Dockhand
          // could not run it and the job failed).
          const status = endedBefore ?? (await ended());
          if (status) {
            out.event('end', { status }, lastId);
            finished = true;
            break;
          }
          out.comment('ping');
        }
      }
      if (!follow && !finished && !done.signal.aborted) {
        const status = await ended();
        if (status) out.event('end', { status }, lastId);
      }
    } catch (err) {
      if (err instanceof StalledClientError) {
        stalled.inc();
        abort = true;
      } else if (!done.signal.aborted) {
        // Redis went away mid-stream: the client reconnects (EventSource does, with Last-Event-ID).
        request.log.warn({ err, kind, id }, 'A live log stream ended early.');
      }
    } finally {
      open.delete(done);
      done.abort();
      out.close({ abort });
    }
  }

  const responses = {
    200: LogEventStream,
    204: Type.Null({
      description:
        'A reconnect (Last-Event-ID) after the call ended and everything was sent: nothing more will come.',
    }),
    404: ErrorResponse,
    ...commonErrors,
  };

  app.get(
    '/invocations/:requestId/logs',
    {
      // A HEAD would follow with nowhere to write: no backpressure, a slot held for nothing.
      exposeHeadRoute: false,
      schema: {
        tags: ['functions'],
        summary: "An invocation's output as it is written (SSE); follow=1 streams until it ends",
        params: InvocationLogParams,
        querystring: LogQuery,
        headers: LogHeaders,
        response: responses,
      },
    },
    async (request, reply) => {
      const { requestId } = request.params;
      const ended = await jobEndedCheck(deps.queues.functions, requestId, functionStatuses);
      if (!ended) throw new NotFoundError(`No invocation ${requestId}; results are kept for 24 hours.`);
      return serve(request, reply, { kind: 'invocation', id: requestId, ended });
    },
  );

  app.get(
    '/exec/:execution_id/logs',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['exec'],
        summary: "An execution's output as it is written (SSE); follow=1 streams until it ends",
        params: ExecLogParams,
        querystring: LogQuery,
        headers: LogHeaders,
        response: responses,
      },
    },
    async (request, reply) => {
      const id = request.params.execution_id;
      const ended = await jobEndedCheck(deps.queues.exec, id, execStatuses);
      if (!ended) throw new NotFoundError(`No execution ${id}; responses are kept for 24 hours.`);
      return serve(request, reply, { kind: 'exec', id, ended });
    },
  );

  app.get(
    '/api/v1/nodes/:id/logs',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['nodes'],
        summary: "A node's Dockhand log (its worker's own log lines) as SSE; follow=1 streams on",
        params: NodeLogParams,
        querystring: LogQuery,
        headers: LogHeaders,
        response: responses,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (deps.nodeExists && !(await deps.nodeExists(id))) throw new NotFoundError(`No node ${id}.`);
      // A node's log never ends: it is followed until the client leaves.
      return serve(request, reply, { kind: 'node', id, ended: async () => undefined });
    },
  );
}
