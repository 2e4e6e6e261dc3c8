import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config.ts';

/**
 * One S3 client for code, logs and (later) MinIO-style objects. Path-style addressing, because
 * self-hosted S3 servers (MinIO, s3rver) do not do virtual-host buckets. Credentials come from
 * the standard AWS chain (AWS_ACCESS_KEY_ID …), read by the SDK itself.
 */
export function createS3(config: Config['s3']): S3Client | undefined {
  if (!config.endpoint && !config.codeBucket && !config.outputBucket) return undefined;
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: true,
  });
}
