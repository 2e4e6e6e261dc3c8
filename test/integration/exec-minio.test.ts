import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import t, { type Test } from 'tap';
import {
  DependencyUnavailableError,
  NotFoundError,
  TooLargeError,
  ValidationError,
} from '../../core/errors.ts';
import { createMinioClient, downloadObject, uploadOutputDir } from '../../processors/exec/minio-transfer.ts';
import { writeInputs } from '../../processors/exec/workspace-input.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { freePort } from '../helpers/redis-server.ts';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

const BUCKET = 'exec-data';
const { port, s3 } = await startS3Server(t, [BUCKET]);
const credentials = {
  accessKey: S3RVER_CREDENTIALS.accessKeyId,
  secretKey: S3RVER_CREDENTIALS.secretAccessKey,
};
// The seed's `.env` form, host:port.
const store = createMinioClient({ endpoint: `127.0.0.1:${port}`, bucket: BUCKET, ...credentials });
if (!store) throw new Error('no MinIO client');

const put = (key: string, body: string | Buffer) =>
  s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
const get = async (key: string) => {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from((await res.Body?.transformToByteArray()) ?? []);
};

const SALES = 'region,amount\nnorth,10\n';
await put('data/sales.csv', SALES);
await put('blob.bin', Buffer.from([0, 255, 1, 254]));
await put('big.bin', Buffer.alloc(4096, 7));

/**
 * s3rver, but object bodies come chunked without Content-Length (as from some S3-compatible
 * servers and proxies), so only counting while streaming can stop an oversized one.
 */
const proxy = createServer((req, res) => {
  const upstream = request(
    { host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers },
    (up) => {
      const headers = { ...up.headers };
      delete headers['content-length'];
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
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
// The URL form this time.
const chunked = createMinioClient({
  endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
  bucket: BUCKET,
  ...credentials,
});
if (!chunked) throw new Error('no MinIO client');

function workspace(t: Test): string {
  const root = tempDir(t, 'workspace');
  for (const dir of ['input', 'output', 'config']) mkdirSync(path.join(root, dir));
  return root;
}

t.test('downloadObject writes the object, 0644, and nothing else', async (t) => {
  const dir = tempDir(t, 'dl');
  const dest = path.join(dir, 'sales.csv');
  const bytes = await downloadObject(store.client, BUCKET, 'data/sales.csv', dest, 1024);
  t.equal(bytes, SALES.length);
  t.equal(readFileSync(dest, 'utf8'), SALES);
  t.equal(statSync(dest).mode & 0o777, 0o644);
  t.same(readdirSync(dir), ['sales.csv'], 'no temp file left');
  await t.rejects(
    downloadObject(store.client, BUCKET, 'data/sales.csv', dest, 1024),
    /EEXIST/,
    'an existing file is never replaced',
  );
  t.same(readdirSync(dir), ['sales.csv']);
});

t.test('a missing object is named, and leaves nothing', async (t) => {
  const dir = tempDir(t, 'dl');
  await t.rejects(downloadObject(store.client, BUCKET, 'no/such.csv', path.join(dir, 'x'), 1024), {
    constructor: NotFoundError,
    message: `MinIO object "no/such.csv" does not exist in bucket "${BUCKET}".`,
  });
  t.same(readdirSync(dir), []);
});

t.test('an object over the cap is refused, streaming or not, and leaves nothing', async (t) => {
  const dir = tempDir(t, 'dl');
  const dest = path.join(dir, 'big.bin');
  // With Content-Length, before reading the body.
  await t.rejects(downloadObject(store.client, BUCKET, 'big.bin', dest, 1000), {
    constructor: TooLargeError,
    message: 'MinIO object "big.bin" is larger than 1000 bytes.',
  });
  t.same(readdirSync(dir), []);
  // Without, by counting: cut off, not drained.
  await t.rejects(downloadObject(chunked.client, BUCKET, 'big.bin', dest, 1000), TooLargeError);
  t.same(readdirSync(dir), [], 'no half-written file, no temp file');
  // Exactly at the cap is fine.
  t.equal(await downloadObject(chunked.client, BUCKET, 'big.bin', dest, 4096), 4096);
  t.same(readFileSync(dest), Buffer.alloc(4096, 7));
});

t.test('an unreachable MinIO is named as a dependency, not a missing object', async (t) => {
  const dead = createMinioClient({
    endpoint: `127.0.0.1:${await freePort()}`,
    bucket: BUCKET,
    ...credentials,
  });
  if (!dead) throw new Error('no MinIO client');
  const dir = tempDir(t, 'dl');
  await t.rejects(downloadObject(dead.client, BUCKET, 'blob.bin', path.join(dir, 'x'), 1024), {
    constructor: DependencyUnavailableError,
    message: /MinIO object "blob.bin" could not be fetched/,
  });
  t.same(readdirSync(dir), []);
});

t.test('writeInputs downloads MinIO objects to their local paths beside the files', async (t) => {
  const ws = workspace(t);
  const script = "read.csv('/workspace/input/data/sales.csv')";
  const { bytes } = await writeInputs(
    ws,
    {
      files: [{ name: 'analysis.R', content: script }],
      minio_objects: [
        { object_name: 'data/sales.csv', local_path: 'data/sales.csv' },
        { object_name: 'blob.bin', local_path: 'blob.bin' },
      ],
    },
    { maxFileBytes: 1024, maxInputBytes: 4096 },
    store,
  );
  t.equal(bytes, script.length + SALES.length + 4);
  t.equal(readFileSync(path.join(ws, 'input/data/sales.csv'), 'utf8'), SALES);
  t.same(readFileSync(path.join(ws, 'input/blob.bin')), Buffer.from([0, 255, 1, 254]));
  t.equal(statSync(path.join(ws, 'input/data')).mode & 0o777, 0o755);
  t.same(readdirSync(path.join(ws, 'input')).sort(), ['analysis.R', 'blob.bin', 'data']);
});

t.test('writeInputs: MinIO objects count toward both caps, and a missing one is named', async (t) => {
  let ws = workspace(t);
  await t.rejects(
    writeInputs(
      ws,
      { minio_objects: [{ object_name: 'big.bin', local_path: 'big.bin' }] },
      { maxFileBytes: 1000, maxInputBytes: 1e6 },
      chunked,
    ),
    {
      constructor: TooLargeError,
      field: 'input.minio_objects[0].local_path',
      message: 'MinIO object "big.bin" is over the 1000-byte limit for one input file.',
    },
  );
  t.same(readdirSync(path.join(ws, 'input')), []);

  ws = workspace(t);
  await t.rejects(
    writeInputs(
      ws,
      {
        files: [{ name: 'a.txt', content: 'x'.repeat(100) }],
        minio_objects: [{ object_name: 'big.bin', local_path: 'big.bin' }],
      },
      { maxFileBytes: 1e6, maxInputBytes: 4100 },
      store,
    ),
    {
      constructor: TooLargeError,
      message: 'MinIO object "big.bin" takes the input past its 4100-byte limit in all.',
    },
  );
  t.same(readdirSync(path.join(ws, 'input')), ['a.txt']);

  ws = workspace(t);
  await t.rejects(
    writeInputs(
      ws,
      { minio_objects: [{ object_name: 'gone.csv', local_path: 'in.csv' }] },
      { maxFileBytes: 1e6, maxInputBytes: 1e6 },
      store,
    ),
    { constructor: NotFoundError, message: /"gone\.csv"/ },
  );
  t.same(readdirSync(path.join(ws, 'input')), []);

  ws = workspace(t);
  await t.rejects(
    writeInputs(
      ws,
      { minio_objects: [{ object_name: 'blob.bin', local_path: '../config/x' }] },
      { maxFileBytes: 1e6, maxInputBytes: 1e6 },
      store,
    ),
    ValidationError,
  );
  t.same(readdirSync(path.join(ws, 'config')), []);
});

t.test('uploadOutputDir uploads the regular files of output/, and nothing a symlink points at', async (t) => {
  const ws = workspace(t);
  const out = (p: string) => path.join(ws, 'output', p);
  writeFileSync(out('results.json'), '{"ok":true}');
  writeFileSync(out('empty.txt'), '');
  mkdirSync(out('plots/deep'), { recursive: true });
  writeFileSync(out('plots/a.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  writeFileSync(out('plots/deep/b.txt'), 'bbb');
  writeFileSync(path.join(ws, 'input', 'secret'), 'input only');
  symlinkSync('/etc/passwd', out('passwd'));
  symlinkSync('/etc', out('etc'));
  symlinkSync(path.join(ws, 'input'), out('plots/inputs'));
  execFileSync('mkfifo', [out('fifo')]);
  const skipped: string[] = [];
  const uploaded = await uploadOutputDir(store.client, BUCKET, 'exec-123', ws, {
    onSkip: (p, reason) => skipped.push(`${p}: ${reason}`),
  });
  t.same(uploaded, [
    { object_name: 'executions/exec-123/output/empty.txt', size: 0 },
    { object_name: 'executions/exec-123/output/plots/a.png', size: 4 },
    { object_name: 'executions/exec-123/output/plots/deep/b.txt', size: 3 },
    { object_name: 'executions/exec-123/output/results.json', size: 11 },
  ]);
  t.same(skipped.sort(), [
    'etc: a symlink',
    'fifo: not a regular file',
    'passwd: a symlink',
    'plots/inputs: a symlink',
  ]);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'executions/exec-123/' }));
  t.same(
    (listed.Contents ?? []).map((o) => [o.Key, o.Size]).sort(),
    uploaded.map((u) => [u.object_name, u.size]).sort(),
    'the bucket holds exactly what was reported',
  );
  t.equal((await get('executions/exec-123/output/results.json')).toString(), '{"ok":true}');
  t.same(await get('executions/exec-123/output/plots/a.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
});

t.test('uploadOutputDir refuses a hostile execution id and a tree over the file cap', async (t) => {
  const ws = workspace(t);
  for (const n of ['a', 'b', 'c']) writeFileSync(path.join(ws, 'output', n), n);
  for (const id of ['../x', '', 'a/b', '..', '.hidden', `x${'y'.repeat(200)}`])
    await t.rejects(uploadOutputDir(store.client, BUCKET, id, ws), ValidationError, JSON.stringify(id));
  await t.rejects(uploadOutputDir(store.client, BUCKET, 'exec-cap', ws, { maxFiles: 2 }), TooLargeError);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'executions/exec-cap/' }));
  t.equal(listed.KeyCount ?? 0, 0, 'nothing uploaded');
  t.same(
    await uploadOutputDir(store.client, BUCKET, 'exec-empty', workspace(t)),
    [],
    'an empty output/ uploads nothing',
  );
});

t.test('uploadOutputDir skips what S3 could not name, and names an unreachable MinIO', async (t) => {
  const ws = workspace(t);
  const deep = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(250)).join('/');
  mkdirSync(path.join(ws, 'output', deep), { recursive: true });
  writeFileSync(path.join(ws, 'output', deep, 'f'), 'x');
  writeFileSync(path.join(ws, 'output', 'ok.txt'), 'ok');
  const skipped: string[] = [];
  const uploaded = await uploadOutputDir(store.client, BUCKET, 'exec-long', ws, {
    onSkip: (_p, reason) => skipped.push(reason),
  });
  t.same(uploaded, [{ object_name: 'executions/exec-long/output/ok.txt', size: 2 }]);
  t.same(skipped, ['its object name would be longer than 1024 bytes']);

  const dead = createMinioClient({
    endpoint: `127.0.0.1:${await freePort()}`,
    bucket: BUCKET,
    ...credentials,
  });
  if (!dead) throw new Error('no MinIO client');
  await t.rejects(uploadOutputDir(dead.client, BUCKET, 'exec-dead', ws), {
    constructor: DependencyUnavailableError,
    message: /^Uploading "executions\/exec-dead\/output\/.*" to MinIO failed/,
  });
});
