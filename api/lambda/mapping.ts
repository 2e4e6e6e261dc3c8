import type { Destination } from '../../processors/functions/event-invoke-config.ts';
import { FUNCTION_NAME_PATTERN } from '../../queues/schemas/functions.ts';
import { functionArn, LAMBDA_ACCOUNT_ID } from '../../runtimes/lambda-env.ts';
import { invalidParameter, LambdaError, validationFailed } from './errors.ts';

/** Lambda's account id in every ARN Dockhand answers with: a placeholder, as in LocalStack. */
export const ACCOUNT_ID = LAMBDA_ACCOUNT_ID;
export { functionArn };

/**
 * Lambda runtime identifiers → Dockhand runtimes. Node 20 runs code written for Node 20 and 22
 * alike (what 22 adds is rarely used by handlers); every Python 3 minor runs on Dockhand's one
 * Python 3; OS-only runtimes run their `bootstrap` through the Lambda Runtime API (`provided`).
 */
export function dockhandRuntime(lambdaRuntime: string): string | undefined {
  if (lambdaRuntime === 'nodejs20.x' || lambdaRuntime === 'nodejs22.x') return 'node20';
  if (/^python3\.(9|1[0-3])$/.test(lambdaRuntime)) return 'python3';
  if (lambdaRuntime === 'provided' || lambdaRuntime === 'provided.al2' || lambdaRuntime === 'provided.al2023')
    return 'provided';
  return undefined;
}

/** What GetFunction says for a function deployed through Dockhand's own route (no Lambda runtime given). */
export function lambdaRuntime(dockhandRuntime: string): string {
  if (dockhandRuntime === 'node20') return 'nodejs20.x';
  if (dockhandRuntime === 'python3') return 'python3.11';
  if (dockhandRuntime === 'provided') return 'provided.al2023';
  return dockhandRuntime;
}

const NAME = new RegExp(FUNCTION_NAME_PATTERN);

/**
 * A FunctionName as Lambda takes it: `name`, `account:function:name` or the full ARN, each
 * optionally `:qualifier`. Only `$LATEST` (or none) names a version here: Dockhand keeps no
 * published versions or aliases, so any other is a function that does not exist.
 */
export function parseFunctionName(
  raw: string,
  region: string,
  queryQualifier?: string,
): { name: string; qualifier?: string } {
  const parts = raw.split(':');
  let name: string | undefined;
  let qualifier: string | undefined;
  if (parts.length === 1 || parts.length === 2) [name, qualifier] = parts;
  else if (parts[0] === 'arn' && parts[1] === 'aws' && parts[2] === 'lambda' && parts[5] === 'function')
    [name, qualifier] = parts.slice(6);
  else if (parts[1] === 'function' && parts.length <= 4) [name, qualifier] = parts.slice(2);
  if (name === undefined || !NAME.test(name) || (parts[0] === 'arn' && parts.length > 8))
    throw validationFailed(
      `1 validation error detected: Value '${printable(raw)}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:aws:lambda:)?([a-z0-9-]+:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?`,
    );
  if (qualifier !== undefined && queryQualifier !== undefined && qualifier !== queryQualifier)
    throw invalidParameter(
      'The derived qualifier from the function name does not match the specified qualifier.',
    );
  qualifier ??= queryQualifier;
  if (qualifier !== undefined && qualifier !== '$LATEST')
    throw new LambdaError(
      'ResourceNotFoundException',
      404,
      `Function not found: ${functionArn(region, name)}:${printable(qualifier).slice(0, 128)}`,
    );
  return qualifier === undefined ? { name } : { name, qualifier };
}

/** A value safe to echo in a message: no control characters, bounded. */
export const printable = (value: string) => value.replace(/[\p{Cc}\u2028\u2029]/gu, '?').slice(0, 256);

/**
 * Lambda destinations → Dockhand's: another function by ARN, an SNS topic ARN as a Redis pub/sub
 * channel of the topic's name (Dockhand has no SNS; subscribers listen on Redis), an http(s) URL.
 */
export function toDestination(arn: string): Destination {
  const fn = /^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:([^:]+)$/.exec(arn);
  if (fn?.[1] && NAME.test(fn[1])) return { type: 'function', name: fn[1] };
  const topic = /^arn:aws:sns:[a-z0-9-]+:\d{12}:([A-Za-z0-9_-]{1,256})$/.exec(arn);
  if (topic?.[1]) return { type: 'channel', channel: topic[1] };
  if (/^https?:\/\//i.test(arn) && arn.length <= 2048) {
    try {
      const url = new URL(arn);
      if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '')
        return { type: 'http', url: url.toString() };
    } catch {
      // refused below
    }
  }
  throw invalidParameter(
    `The destination ARN ${printable(arn)} is invalid: Dockhand takes a Lambda function ARN, an SNS topic ARN (a Redis pub/sub channel) or an http(s) URL.`,
  );
}

export function fromDestination(destination: Destination, region: string): string {
  if (destination.type === 'function') return functionArn(region, destination.name);
  if (destination.type === 'channel') return `arn:aws:sns:${region}:${ACCOUNT_ID}:${destination.channel}`;
  return destination.url;
}
