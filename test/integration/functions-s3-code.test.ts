import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import t, { type Test } from 'tap';
import { S3_CODE_UNREADABLE } from '../../processors/functions/s3-code-source.ts';
import { startTestRole, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.ts';
import { makeZip } from '../helpers/zip.ts';

leakCheck(t);

// `code.s3` with the server's S3 credentials: only the configured buckets, one answer for every
// failure to read, and a download cut off at 50 MiB even when the object comes without a length.
const _credentials = S3RVER_CREDENTIALS;
const { port: s3Port, s3 } = await startS3Server(t, ['code', 'src', 'secret']);

/**
 * Dockhand's S3 endpoint: passes everything to s3rver, but serves object bodies chunked (no
 * Content-Length, as some S3-compatible servers and proxies do), counts the requests per bucket
 * and, per object path, the body bytes it sent before the response ended or was dropped.
 */
const requestsTo = new Map<string, number>();
const sent = new Map<string, Promise<number>>();
const proxy = createServer((req, res) => {
  const pathname = new URL(req.url ?? '/', 'http://x').pathname;
  const bucket = pathname.split('/')[1] ?? '';
  requestsTo.set(bucket, (requestsTo.get(bucket) ?? 0) + 1);
  let bytes = 0;
  sent.set(pathname, new Promise((resolve) => res.on('close', () => resolve(bytes))));
  const upstream = request(
    { host: '127.0.0.1', port: s3Port, path: req.url, method: req.method, headers: req.headers },
    (up) => {
      const headers = { ...up.headers };
      if (req.method === 'GET') delete headers['content-length'];
      res.writeHead(up.statusCode ?? 502, headers);
      up.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (!res.write(chunk)) {
          up.pause();
          res.once('drain', () => up.resume());
        }
      });
      up.on('end', () => res.end());
      res.on('close', () => up.destroy());
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
t.teardown(() => {
  proxy.closeAllConnections();
  return new Promise<void>((resolve) => proxy.close(() => resolve()));
});
const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

const env = (t: Test, overrides: Record<string, string> = {}) =>
  testConfig(t, {
    S3_ENDPOINT: proxyUrl,
    S3_CODE_BUCKET: 'code',
    // `ghost` is allowed but does not exist.
    S3_CODE_BUCKETS_ALLOWED: 'src, ghost',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    ...overrides,
  });
const { app } = await startTestRole(t, 'gateway', env(t));

const zip = await makeZip([{ name: 'index.js', content: 'exports.handler = async () => "from s3";' }]);
for (const bucket of ['src', 'secret']) {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'fn.zip', Body: zip }));
}

const deployFrom = (where: { bucket: string; key: string }, target = app) =>
  target.inject({
    method: 'PUT',
    url: '/functions/from-s3',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 1000,
      code: { s3: where },
    },
  });

t.test('an allowed bucket deploys, read as a stream without a Content-Length', async (t) => {
  const res = await deployFrom({ bucket: 'src', key: 'fn.zip' });
  t.equal(res.statusCode, 201, res.body);
  t.match(res.json().codeLocation, /^s3:\/\/code\/functions\/from-s3\//);
});

t.test('every failure to read is the same 400; a foreign bucket is never asked', async (t) => {
  const secretBefore = requestsTo.get('secret') ?? 0;
  const cases: Array<[string, { bucket: string; key: string }]> = [
    ['foreign bucket, object exists', { bucket: 'secret', key: 'fn.zip' }],
    ['foreign bucket, no such object', { bucket: 'secret', key: 'nope.zip' }],
    ['foreign bucket that does not exist', { bucket: 'nobucket', key: 'fn.zip' }],
    ['allowed bucket, no such object', { bucket: 'src', key: 'nope.zip' }],
    ['allowed bucket that does not exist', { bucket: 'ghost', key: 'fn.zip' }],
  ];
  const bodies = new Set<string>();
  for (const [name, where] of cases) {
    const res = await deployFrom(where);
    t.equal(res.statusCode, 400, name);
    bodies.add(res.body);
  }

  // Access denied: a gateway whose credentials S3 refuses (s3rver checks the key id, not SigV4).
  const denied = await startTestRole(t, 'gateway', env(t, { AWS_ACCESS_KEY_ID: 'NOBODY' }));
  const refused = await deployFrom({ bucket: 'src', key: 'fn.zip' }, denied.app);
  t.equal(refused.statusCode, 400, 'access denied');
  bodies.add(refused.body);

  t.same(
    [...bodies].map((b) => JSON.parse(b)),
    [{ error: 'validation_error', message: S3_CODE_UNREADABLE, field: 'body.code.s3' }],
    'one body for all: nothing tells a foreign bucket from a missing object or a refusal',
  );
  t.equal(requestsTo.get('secret') ?? 0, secretBefore, 'no request ever reached the foreign bucket');
  t.notOk(requestsTo.has('nobucket'));
});

t.test('an object past 50 MiB is cut off while streaming, whatever its length header', async (t) => {
  const size = 96 * 1024 * 1024;
  await s3.send(new PutObjectCommand({ Bucket: 'src', Key: 'huge.zip', Body: Buffer.alloc(size, 7) }));
  const res = await deployFrom({ bucket: 'src', key: 'huge.zip' });
  t.equal(res.statusCode, 400, res.body);
  t.same(res.json(), {
    error: 'validation_error',
    message: 'body.code.s3: the object is larger than 50 MiB.',
    field: 'body.code.s3',
  });
  const bytes = await sent.get('/src/huge.zip');
  t.ok(
    bytes !== undefined && bytes < 72 * 1024 * 1024,
    `the download was dropped near the cap (${((bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB of 96 sent)`,
  );
});
