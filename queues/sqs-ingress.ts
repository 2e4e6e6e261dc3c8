import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { coerceError } from '../core/errors.ts';
import type { DeadLetter } from './dead-letters.ts';
import type { Enqueue } from './enqueue.ts';
import { JOB_ID_DESCRIPTION, JOB_ID_PATTERN } from './job-ids.ts';

const VALID_REQUEST_ID = new RegExp(JOB_ID_PATTERN);

export interface SqsIngressDeps {
  sqs: SQSClient;
  queueUrl: string;
  enqueue: Enqueue;
  /** Known function? A message for a missing one is dead-lettered, not queued to fail later. */
  functionExists: (name: string) => Promise<boolean>;
  deadLetter: (entry: DeadLetter) => Promise<void>;
  log: (message: string, extra?: Record<string, unknown>) => void;
  /** Long-poll wait, seconds (SQS allows 0–20). Default 20. */
  waitSeconds?: number;
}

type Verdict = { ok: true } | { ok: false; reason: string; retry?: boolean };

/**
 * Long-polls SQS and turns each message into an invocation on the `functions` queue, with the
 * message's requestId (or MessageId) as job id, so a redelivered message is one invocation.
 * A message is deleted only after its enqueue succeeded or it was dead-lettered; if Redis is
 * away it stays, and SQS delivers it again after its visibility timeout.
 *
 * Body: `{"functionName": "...", "event": {...}, "requestId"?: "..."}` (`function`/`payload`
 * are accepted as the Infra-worker's spellings).
 */
export function createSqsIngress(deps: SqsIngressDeps) {
  const controller = new AbortController();
  let loop: Promise<void> | undefined;

  async function handle(message: Message): Promise<Verdict> {
    const id = message.MessageId ?? 'unknown';
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(message.Body ?? '');
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    } catch {
      return { ok: false, reason: 'The body is not a JSON object.' };
    }
    const functionName = body.functionName ?? body.function;
    if (typeof functionName !== 'string') return { ok: false, reason: 'functionName is missing.' };
    if (!(await deps.functionExists(functionName)))
      return { ok: false, reason: `No function ${functionName}.` };
    const requestId = typeof body.requestId === 'string' ? body.requestId : id;
    // The request id becomes the job id, a route parameter and an S3 key: the routes' rule.
    if (!VALID_REQUEST_ID.test(requestId))
      return {
        ok: false,
        reason: `requestId ${JSON.stringify(requestId.slice(0, 100))} is not valid: ${JOB_ID_DESCRIPTION}`,
      };
    try {
      await deps.enqueue(
        'functions',
        {
          functionName,
          requestId,
          event: body.event ?? body.payload ?? {},
          invocationType: 'Event',
          source: 'sqs',
        },
        { jobId: requestId },
      );
      return { ok: true };
    } catch (err) {
      const e = coerceError(err);
      if ((e as { code?: string }).code === 'validation_error') return { ok: false, reason: e.message };
      return { ok: false, reason: e.message, retry: true };
    }
  }

  async function run(): Promise<void> {
    while (!controller.signal.aborted) {
      let messages: Message[] = [];
      try {
        const res = await deps.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: deps.queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: deps.waitSeconds ?? 20,
          }),
          { abortSignal: controller.signal },
        );
        messages = res.Messages ?? [];
      } catch (err) {
        if (controller.signal.aborted) return;
        deps.log('SQS receive failed; retrying in 1 s', { err: coerceError(err).message });
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const done: Array<{ Id: string; ReceiptHandle: string }> = [];
      for (const [i, message] of messages.entries()) {
        const verdict = await handle(message);
        if (!verdict.ok && verdict.retry) continue; // left in SQS: it comes back after the visibility timeout
        if (!verdict.ok) {
          try {
            await deps.deadLetter({
              source: 'sqs',
              id: message.MessageId ?? 'unknown',
              body: (message.Body ?? '').slice(0, 65_536),
              reason: verdict.reason,
              at: new Date().toISOString(),
            });
          } catch {
            continue; // not recorded, so not deleted either
          }
        }
        done.push({ Id: String(i), ReceiptHandle: message.ReceiptHandle as string });
      }
      if (done.length) {
        await deps.sqs
          .send(new DeleteMessageBatchCommand({ QueueUrl: deps.queueUrl, Entries: done }))
          .catch((err) => {
            deps.log('SQS delete failed; the messages will be redelivered and deduplicated', {
              err: coerceError(err).message,
            });
          });
      }
    }
  }

  return {
    start(): void {
      loop ??= run();
    },
    async close(): Promise<void> {
      controller.abort();
      await loop;
    },
  };
}
