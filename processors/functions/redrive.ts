import { ConflictError, coerceError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { type DeadLetterEntry, type DeadLetters, InvalidDeadLetter } from '../../queues/dead-letters.ts';
import type { Enqueue } from '../../queues/enqueue.ts';

export interface RedriveDeps {
  deadLetters: Pick<DeadLetters, 'get' | 'remove' | 'recent'>;
  enqueue: Enqueue;
  functionExists: (name: string) => Promise<boolean>;
}

export interface Redriven {
  deadLetterId: string;
  requestId: string;
  functionName: string;
}

/** The invocation an entry stands for: a failed one's own event, or an ingress message's body. */
function invocationOf(entry: DeadLetterEntry): { functionName: string; event: unknown } {
  if (entry.source === 'async-invocation' && 'functionName' in entry)
    return { functionName: entry.functionName, event: entry.event };
  let body: unknown;
  try {
    body = JSON.parse(entry.body);
  } catch {
    throw new ValidationError(
      'body',
      `Dead letter ${entry.deadLetterId}'s body is not JSON: it cannot become an invocation.`,
    );
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new ValidationError('body', `Dead letter ${entry.deadLetterId}'s body is not a JSON object.`);
  const b = body as Record<string, unknown>;
  const functionName = b.functionName ?? b.function;
  if (typeof functionName !== 'string')
    throw new ValidationError('body', `Dead letter ${entry.deadLetterId}'s body names no functionName.`);
  return { functionName, event: b.event ?? b.payload ?? {} };
}

/**
 * Redrives dead letters: each becomes a fresh Event invocation (request id `redrive-<its id>`),
 * and the entry is removed only once that job is added, so nothing is lost when Redis refuses the
 * add. Two redrives of one entry add one job (same id) and only one of them removes the entry
 * and answers it redriven; the other hears 409.
 */
export function createRedrive(deps: RedriveDeps) {
  async function one(deadLetterId: string): Promise<Redriven> {
    let entry: DeadLetterEntry | undefined;
    try {
      entry = await deps.deadLetters.get(deadLetterId);
    } catch (err) {
      // Redis is not a trust boundary: an entry that is not one of ours is not run.
      if (err instanceof InvalidDeadLetter) throw new ConflictError(err.message);
      throw err;
    }
    if (!entry) throw new NotFoundError(`No dead letter ${deadLetterId}.`);
    const { functionName, event } = invocationOf(entry);
    if (!(await deps.functionExists(functionName).catch(() => false)))
      throw new ConflictError(`No function ${functionName} (deleted?): dead letter ${deadLetterId} stays.`);
    const requestId = `redrive-${deadLetterId}`;
    // Only the name and the event are carried: nothing else a stored entry says reaches the job.
    await deps.enqueue(
      'functions',
      { functionName, requestId, event, invocationType: 'Event', source: 'redrive' },
      { jobId: requestId },
    );
    if (!(await deps.deadLetters.remove(deadLetterId)))
      throw new ConflictError(
        `Dead letter ${deadLetterId} was redriven by another request (as ${requestId}).`,
      );
    return { deadLetterId, requestId, functionName };
  }

  async function many(options: { functionName?: string; limit: number }) {
    const redriven: Redriven[] = [];
    const failed: Array<{ deadLetterId: string; error: string; message: string }> = [];
    // Read a bounded window: the filter may skip many entries of other functions.
    const entries = await deps.deadLetters.recent(10_000);
    for (const entry of entries) {
      if (redriven.length + failed.length >= options.limit) break;
      if (options.functionName) {
        let name: string | undefined;
        try {
          name = invocationOf(entry).functionName;
        } catch {}
        if (name !== options.functionName) continue;
      }
      try {
        redriven.push(await one(entry.deadLetterId));
      } catch (err) {
        const e = coerceError(err);
        failed.push({
          deadLetterId: entry.deadLetterId,
          error: (e as { code?: string }).code ?? 'error',
          message: e.message,
        });
      }
    }
    return { redriven, failed };
  }

  return { one, many };
}
export type Redrive = ReturnType<typeof createRedrive>;
