import type { FunctionRecord } from '../../processors/functions/function-store.ts';
import { MASKED } from '../routes/functions.ts';
import { functionArn, lambdaRuntime } from './mapping.ts';

/** Lambda's LastModified: ISO 8601 with milliseconds and a `+0000` offset. */
export const lambdaTimestamp = (iso: string) => iso.replace(/Z$/, '+0000');

/**
 * A function as Lambda's FunctionConfiguration, whichever API deployed it. Env values follow
 * Dockhand's rule: only an admin key (ADMIN_API_KEYS) reads them; others see `***`.
 */
export function functionConfiguration(record: FunctionRecord, region: string, { admin = false } = {}) {
  const lambda = record.lambda;
  const env = Object.entries(record.env);
  return {
    FunctionName: record.name,
    FunctionArn: functionArn(region, record.name),
    Runtime: lambda?.runtime ?? lambdaRuntime(record.runtime),
    Role: lambda?.role ?? `arn:aws:iam::000000000000:role/dockhand`,
    Handler: lambda?.handler ?? record.handler,
    CodeSize: lambda?.codeSize ?? record.codeSize,
    Description: lambda?.description ?? '',
    Timeout: Math.ceil(record.timeoutMs / 1000),
    MemorySize: record.memoryMb,
    LastModified: lambdaTimestamp(record.lastModified),
    // Lambda's is the zip's SHA-256, base64; a function deployed through Dockhand's own route
    // has only the digest of its unpacked files.
    CodeSha256: lambda?.codeSha256 ?? Buffer.from(record.codeSha256, 'hex').toString('base64'),
    Version: '$LATEST',
    ...(env.length
      ? { Environment: { Variables: Object.fromEntries(env.map(([k, v]) => [k, admin ? v : MASKED])) } }
      : {}),
    TracingConfig: { Mode: 'PassThrough' },
    RevisionId: record.version,
    State: 'Active',
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
    Architectures: ['x86_64'],
    LoggingConfig: { LogFormat: 'Text', LogGroup: `/aws/lambda/${record.name}` },
  };
}
