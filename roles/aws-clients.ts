import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../core/config.ts';

/**
 * One S3 client for code and logs. Path-style addressing, because self-hosted S3 servers
 * (MinIO, s3rver) do not do virtual-host buckets. Credentials: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY from config when given, else the SDK's chain (profile, instance role).
 */
export function createS3(config: Pick<Config, 's3' | 'aws'>): S3Client | undefined {
  if (!config.s3.endpoint && !config.s3.codeBucket && !config.s3.outputBucket) return undefined;
  return new S3Client({
    region: config.aws.region,
    endpoint: config.s3.endpoint,
    forcePathStyle: true,
    credentials: config.aws.credentials,
  });
}

/** The SQS client for SQS_QUEUE_URL: its endpoint is the queue URL's origin, on AWS as on a local server. */
export function createSqs(config: Pick<Config, 'sqs' | 'aws'>): SQSClient | undefined {
  if (!config.sqs.queueUrl) return undefined;
  return new SQSClient({
    region: config.aws.region,
    endpoint: new URL(config.sqs.queueUrl).origin,
    credentials: config.aws.credentials,
  });
}
