import { createHash } from 'node:crypto';
import dns from 'node:dns';
import { Counter, type Registry } from 'prom-client';
import type { AddressPolicy } from '../../core/address-policy.ts';
import { coerceError } from '../../core/errors.ts';
import type { SafeFetch } from '../../core/safe-fetch.ts';
import type { Enqueue } from '../../queues/enqueue.ts';
import type { InvocationResult } from '../../queues/schemas/functions.ts';
import type { Destination } from './event-invoke-config.ts';

export type DestinationCondition = 'Success' | 'RetriesExhausted' | 'EventAgeExceeded';

/** Lambda's invocation record, as destinations receive it (version 1.0). */
export interface DestinationRecord {
  version: '1.0';
  timestamp: string;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: DestinationCondition;
    approximateInvokeCount: number;
  };
  requestPayload: unknown;
  responseContext: { statusCode: number; executedVersion: string; functionError?: 'Handled' | 'Unhandled' };
  responsePayload: unknown;
}

/**
 * A chain of destination calls (A's record invoking B, whose record invokes A, …) stops at this
 * depth, as Lambda's recursive-loop detection stops a chain after 16 calls; each call sends at
 * most one record, so a loop never grows, it only stops.
 */
export const MAX_DESTINATION_DEPTH = 16;

export function destinationRecord(input: {
  requestId: string;
  functionArn: string;
  condition: DestinationCondition;
  attempts: number;
  event: unknown;
  result?: Pick<InvocationResult, 'status' | 'result' | 'error'>;
  error?: { errorType: string; errorMessage: string };
}): DestinationRecord {
  const failed = input.condition !== 'Success';
  const error = input.result?.error ?? input.error;
  return {
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: input.requestId,
      functionArn: input.functionArn,
      condition: input.condition,
      approximateInvokeCount: input.attempts,
    },
    requestPayload: input.event,
    responseContext: {
      statusCode: 200,
      executedVersion: '$LATEST',
      ...(failed && input.attempts > 0 ? { functionError: 'Unhandled' as const } : {}),
    },
    responsePayload: failed ? (error ?? null) : (input.result?.result ?? null),
  };
}

/** Channels a destination may never publish on: Dockhand's own (cancels, replies, exec requests …). */
export interface ChannelRules {
  prefix: string;
  reserved: readonly string[];
}

function channelProblem(channel: string, rules: ChannelRules): string | undefined {
  if (channel.startsWith(`${rules.prefix}:`) || rules.reserved.includes(channel))
    return `Channel ${JSON.stringify(channel)} is one Dockhand itself uses; pick another.`;
  return undefined;
}

/**
 * Why a destination cannot be used, or undefined: a channel of Dockhand's own, or a URL the
 * HTTP-job guard refuses (its scheme, an address literal, or any address its name resolves to).
 * Checked when the config is put and again when sending (the guard re-checks every connect).
 */
export async function destinationProblem(
  destination: Destination,
  deps: { policy: AddressPolicy; channels: ChannelRules; lookup?: typeof dns.promises.lookup },
): Promise<string | undefined> {
  if (destination.type === 'channel') return channelProblem(destination.channel, deps.channels);
  if (destination.type !== 'http') return undefined;
  let url: URL;
  try {
    url = new URL(destination.url);
  } catch {
    return `${JSON.stringify(destination.url.slice(0, 200))} is not a URL.`;
  }
  try {
    deps.policy.checkUrl(url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addresses = await (deps.lookup ?? dns.promises.lookup)(host, { all: true });
    for (const a of addresses) deps.policy.checkAddress(a.address, host);
    return undefined;
  } catch (err) {
    return coerceError(err).message;
  }
}

export interface DestinationSenderDeps {
  enqueue: Enqueue;
  publish: (channel: string, message: string) => Promise<unknown>;
  fetch: SafeFetch;
  channels: ChannelRules;
  functionExists: (name: string) => Promise<boolean>;
  /** A record that did not arrive (or was not sent: a loop, a refused channel): counted and logged. */
  onFailure: (type: Destination['type'] | 'loop', reason: string) => void;
  timeoutMs?: number;
}

export type SendDestination = (
  destination: Destination,
  record: DestinationRecord,
  /** How many destination hops led to the invocation the record is about (0: none). */
  depth: number,
) => Promise<void>;

/**
 * Sends one record to one destination. Never throws: a destination that does not take it is
 * the destination's failure, never the invocation's (nothing is retried for it).
 */
export function createDestinationSender(deps: DestinationSenderDeps): SendDestination {
  const send = async (destination: Destination, record: DestinationRecord, depth: number) => {
    const body = JSON.stringify(record);
    if (destination.type === 'channel') {
      const problem = channelProblem(destination.channel, deps.channels);
      if (problem) throw new Error(problem);
      await deps.publish(destination.channel, body);
      return;
    }
    if (destination.type === 'http') {
      const res = await deps.fetch({
        url: destination.url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        timeoutMs: deps.timeoutMs ?? 10_000,
      });
      if (res.statusCode >= 300) throw new Error(`${destination.url} answered ${res.statusCode}.`);
      return;
    }
    if (!(await deps.functionExists(destination.name))) throw new Error(`No function ${destination.name}.`);
    // One id per (invocation, condition): a record sent twice (the job ran its end twice) is one call.
    const requestId = `dest-${createHash('sha256')
      .update(`${record.requestContext.requestId}\n${record.requestContext.condition}`)
      .digest('hex')
      .slice(0, 40)}`;
    await deps.enqueue(
      'functions',
      {
        functionName: destination.name,
        requestId,
        event: record,
        invocationType: 'Event',
        source: 'destination',
        destinationDepth: depth + 1,
      },
      { jobId: requestId },
    );
  };
  return async (destination, record, depth) => {
    if (depth >= MAX_DESTINATION_DEPTH) {
      deps.onFailure(
        'loop',
        `Not sent: the invocation ${record.requestContext.requestId} came through ${depth} destination hops (at most ${MAX_DESTINATION_DEPTH}).`,
      );
      return;
    }
    try {
      await send(destination, record, depth);
    } catch (err) {
      deps.onFailure(destination.type, coerceError(err).message);
    }
  };
}

/** dockhand_destination_failures_total{type}: records not delivered (type `loop`: not sent). */
export function createDestinationMetrics(registry: Registry) {
  const failures = new Counter({
    name: 'dockhand_destination_failures_total',
    help: 'Destination records of asynchronous invocations that were not delivered, by destination type (loop: a chain stopped).',
    labelNames: ['type'],
    registers: [registry],
  });
  return (type: string) => failures.inc({ type });
}
