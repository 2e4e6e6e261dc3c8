import { QueueKeys } from 'bullmq';
import { ValidationError } from '../core/errors.ts';

/**
 * A job's Redis key is `<prefix>:<queue>:<id>`, next to the queue's own keys
 * (`<prefix>:<queue>:meta`, `:id`, `:events`, …): an id that names one of those reads or
 * writes BullMQ's bookkeeping instead of a job. These are the names of the installed BullMQ,
 * plus two its older versions and its metrics use.
 */
export const RESERVED_JOB_IDS: readonly string[] = [
  ...new Set([...Object.keys(new QueueKeys().getKeys('q')).filter(Boolean), 'priority', 'metrics']),
].sort();

/**
 * The ids the routes accept: Dockhand's UUIDs, and ids callers bring (SQS `requestId`,
 * `dockhand enqueue --job-id`): a letter or digit, then letters, digits, `.`, `_`, `-`, `~`,
 * up to 128 in all; never all digits (BullMQ keeps those for itself), never a reserved name.
 */
export const JOB_ID_PATTERN = `^(?!(?:${RESERVED_JOB_IDS.join('|')})$)(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`;

export const JOB_ID_DESCRIPTION =
  'A job id: a UUID, or letters, digits, . _ ~ - (up to 128, not all digits, not a name BullMQ reserves such as meta, id or events).';

const reserved = new Set(RESERVED_JOB_IDS);

/**
 * What enqueue() refuses of a caller's job id, whatever the queue: BullMQ's own key names
 * (the job would be taken for an existing one and silently dropped), and what BullMQ itself
 * would throw on (integers, `:`), as a 400 naming the field rather than a 500.
 */
export function checkJobId(id: string, field = 'jobId'): string {
  const integer = /^[0-9]+$/.test(id) || String(Number.parseInt(id, 10)) === id;
  if (reserved.has(id) || id === '' || integer || id.includes(':')) {
    throw new ValidationError(
      field,
      `${field} ${JSON.stringify(id.slice(0, 200))} cannot be a job id: it is empty, all digits, contains ":" or is a name BullMQ reserves.`,
    );
  }
  return id;
}
