import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { QueueEvents } from 'bullmq';
import { createSqsServer } from 'local-aws-sqs';
import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { REDIS_URL, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { freePort } from '../helpers/redis-server.ts';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { makeZip } from '../helpers/zip.ts';

leakCheck(t);
const credentials = S3RVER_CREDENTIALS;
const { port: s3Port, s3 } = await startS3Server(t, ['code', 'out', 'src']);

const sqsPort = await freePort();
const sqsServer = await createSqsServer({ port: sqsPort, hostname: '127.0.0.1' });
t.teardown(
  () =>
    new Promise<void>((resolve) => {
      sqsServer.close(() => resolve());
      sqsServer.closeAllConnections(); // the SDK keeps connections alive; close() alone waits for them
    }),
);
const sqs = new SQSClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${sqsPort}`, credentials });
const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'invocations' }));

const config = testConfig(t, {
  POOL_MIN_IDLE: '1',
  S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
  S3_CODE_BUCKET: 'code',
  S3_CODE_BUCKETS_ALLOWED: 'src',
  S3_OUTPUT_BUCKET: 'out',
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  SQS_QUEUE_URL: QueueUrl as string,
  // The local SQS server answers a long poll only when it ends; real SQS answers at once.
  SQS_WAIT_SECONDS: '1',
});
const running = await startRole('all', config, { listen: false });
t.teardown(() => running.close());
const { app } = running;

t.test('deploy from a zip in S3; code kept in S3_CODE_BUCKET', async (t) => {
  const zip = await makeZip([
    {
      name: 'index.js',
      content: 'exports.handler = async (e) => { console.log("n is", e.n); return e.n * 3; };',
    },
  ]);
  await s3.send(new PutObjectCommand({ Bucket: 'src', Key: 'fn.zip', Body: zip }));
  const res = await app.inject({
    method: 'PUT',
    url: '/functions/tripler',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { s3: { bucket: 'src', key: 'fn.zip' } },
    },
  });
  t.equal(res.statusCode, 201, res.body);
  t.match(res.json().codeLocation, /^s3:\/\/code\/functions\/tripler\/[0-9a-f]{16}\.json$/);
  const sync = await app.inject({ method: 'POST', url: '/functions/tripler/invoke', payload: { n: 5 } });
  t.equal(sync.json().result, 15);

  const missing = await app.inject({
    method: 'PUT',
    url: '/functions/nothing',
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { s3: { bucket: 'src', key: 'nope.zip' } },
    },
  });
  t.equal(missing.statusCode, 400);
  t.equal(missing.json().field, 'body.code.s3');
  t.equal(missing.json().message, 'body.code.s3 could not be read from an allowed bucket.');
});

t.test(
  'SQS messages become invocations once each; bad ones are dead-lettered; logs land in S3',
  async (t) => {
    const events = new QueueEvents('functions', {
      connection: { url: REDIS_URL },
      prefix: config.redis.prefix,
    });
    t.teardown(() => events.close());
    await events.waitUntilReady();
    const done = new Promise<void>((resolve) => {
      events.on('completed', ({ jobId }) => {
        if (jobId === 'sqs-1') resolve();
      });
    });
    const send = (body: string) => sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    await send(JSON.stringify({ functionName: 'tripler', event: { n: 7 }, requestId: 'sqs-1' }));
    await send(JSON.stringify({ functionName: 'tripler', event: { n: 7 }, requestId: 'sqs-1' })); // redelivered twin
    await send('this is not json');
    await send(JSON.stringify({ functionName: 'ghost', event: {} }));
    await send(JSON.stringify({ functionName: 'tripler', event: {}, requestId: '../../x' }));
    await done;

    const result = (await app.inject({ method: 'GET', url: '/invocations/sqs-1' })).json();
    t.equal(result.status, 'SUCCESS');
    t.equal(result.result, 21);
    const jobs = await running.queues.functions.getJobs(['completed', 'waiting', 'active', 'failed']);
    t.equal(jobs.filter((j) => j.id === 'sqs-1').length, 1, 'the twin message did not run it twice');

    // Dead letters are written by the SQS ingress, which announces nothing: ask until both are there.
    let dead: Array<{ reason: string; source: string }> = [];
    await waitFor(
      async () => {
        dead = (await app.inject({ method: 'GET', url: '/dead-letters' })).json().deadLetters;
        return dead.length >= 3;
      },
      { what: 'three dead letters' },
    );
    t.same(dead.map((d) => d.reason.replace(/: A job id.*/, '')).sort(), [
      'No function ghost.',
      'The body is not a JSON object.',
      'requestId "../../x" is not valid',
    ]);
    t.ok(dead.every((d) => d.source === 'sqs'));
    const left = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 0, MaxNumberOfMessages: 10 }),
    );
    t.same(left.Messages ?? [], [], 'every message was deleted after it was queued or dead-lettered');

    const day = new Date().toISOString().slice(0, 10);
    const log = await s3.send(new GetObjectCommand({ Bucket: 'out', Key: `logs/tripler/${day}/sqs-1.json` }));
    const record = JSON.parse((await log.Body?.transformToString()) ?? '{}');
    t.equal(record.logs, 'n is 7\n');
    t.equal(record.result, 21);
  },
);
