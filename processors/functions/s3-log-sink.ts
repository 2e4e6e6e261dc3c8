import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { InvocationResult } from '../../queues/schemas/functions.ts';

/** Each invocation's record, logs included, as `logs/<function>/<yyyy-mm-dd>/<requestId>.json`. */
export function s3LogSink(s3: S3Client, bucket: string) {
  return async function s3Log(result: InvocationResult) {
    const day = new Date().toISOString().slice(0, 10);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `logs/${result.functionName}/${day}/${result.requestId}.json`,
        Body: JSON.stringify(result),
        ContentType: 'application/json',
      }),
    );
  };
}
