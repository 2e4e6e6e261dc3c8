import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import type { Test } from 'tap';
import { freePort } from './redis-server.ts';
import { tempDir } from './temp-dir.ts';

/** s3rver's fixed credentials: it checks the key id, not the signature. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** A private S3-compatible server on loopback with these buckets, and a client for it; closed with t. */
export async function startS3Server(t: Test, buckets: string[]) {
  const port = await freePort();
  const server = new S3rver({
    port,
    address: '127.0.0.1',
    silent: true,
    directory: tempDir(t, 's3rver'),
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  await server.run();
  t.teardown(() => server.close());
  const endpoint = `http://127.0.0.1:${port}`;
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
  });
  t.teardown(() => s3.destroy());
  return { port, endpoint, s3 };
}
