import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  DeleteFunctionEventInvokeConfigCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  PutFunctionEventInvokeConfigCommand,
  type Runtime as Runtime_,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  UpdateFunctionEventInvokeConfigCommand,
} from '@aws-sdk/client-lambda';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { RUNTIME_NAMES } from '../../runtimes/catalog.ts';
import { testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { S3RVER_CREDENTIALS, startS3Server } from '../helpers/s3-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { makeZip } from '../helpers/zip.ts';

// The real @aws-sdk/client-lambda against a listening Dockhand: the SDK signs (SigV4), sends
// Lambda's shapes over HTTP and parses Lambda's answers and errors itself.
leakCheck(t);

const KEY = 'lambda-user-key';
const ADMIN = 'lambda-admin-key';
const { port: s3Port, s3 } = await startS3Server(t, ['src']);
const config = testConfig(t, {
  PORT: '0',
  API_KEYS: KEY,
  ADMIN_API_KEYS: ADMIN,
  POOL_MIN_IDLE: '1',
  AWS_REGION: 'eu-west-1',
  S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
  S3_CODE_BUCKETS_ALLOWED: 'src',
  AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  // Destinations go through the HTTP jobs' guard: this one public address (never called) is allowed.
  HTTP_JOBS_ALLOWLIST: '93.184.216.34',
});
const running = await startRole('all', config, { listen: true });
t.teardown(() => running.close());
const { app } = running;
const endpoint = running.url as string;
const bearer = { authorization: `Bearer ${KEY}` };

const client = (key: string, region = 'eu-west-1') => {
  const c = new LambdaClient({ endpoint, region, credentials: { accessKeyId: key, secretAccessKey: key } });
  t.teardown(() => c.destroy());
  return c;
};
const lambda = client(KEY);
const admin = client(ADMIN);

const nodeZip = (source: string, file = 'index.js') => makeZip([{ name: file, content: source }]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const decode = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8'));
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** The SDK's typed exception: its name (x-amzn-ErrorType), its HTTP status and its message. */
async function refused(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to be refused');
}

const ECHO = `exports.handler = async (event, context) => {
  console.log('got', JSON.stringify(event));
  if (event.fail) throw new Error('boom: ' + event.fail);
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep));
  return { echo: event, greeting: process.env.GREETING ?? null };
};`;

t.test('create, get, list, update, invoke and delete a node function with the SDK', async (t) => {
  const zip = await nodeZip(ECHO);
  const created = await lambda.send(
    new CreateFunctionCommand({
      FunctionName: 'echo',
      Runtime: 'nodejs20.x',
      Role: 'arn:aws:iam::123456789012:role/lambda-role',
      Handler: 'index.handler',
      Code: { ZipFile: zip },
      Description: 'echoes',
      Timeout: 10,
      MemorySize: 256,
      Environment: { Variables: { GREETING: 'hello', SECRET: 's3cr3t' } },
    }),
  );
  t.equal(created.$metadata.httpStatusCode, 201);
  t.match(created, {
    FunctionName: 'echo',
    FunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:echo',
    Runtime: 'nodejs20.x',
    Role: 'arn:aws:iam::123456789012:role/lambda-role',
    Handler: 'index.handler',
    Description: 'echoes',
    Timeout: 10,
    MemorySize: 256,
    CodeSha256: sha(zip),
    CodeSize: zip.length,
    Version: '$LATEST',
    State: 'Active',
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
  });
  t.match(created.LastModified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
  // Env values are secrets, as on Dockhand's own routes: only an admin key reads them.
  t.same(created.Environment?.Variables, { GREETING: '***', SECRET: '***' });
  const full = await admin.send(new GetFunctionCommand({ FunctionName: 'echo' }));
  t.same(full.Configuration?.Environment?.Variables, { GREETING: 'hello', SECRET: 's3cr3t' });

  const again = await refused(
    lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'echo',
        Runtime: 'nodejs20.x',
        Role: 'r',
        Handler: 'index.handler',
        Code: { ZipFile: zip },
      }),
    ),
  );
  t.match(again, { name: 'ResourceConflictException', status: 409, message: /echo/ });

  const got = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }));
  t.equal(got.Configuration?.CodeSha256, sha(zip));
  t.ok(got.Code?.Location);
  const byArn = await lambda.send(
    new GetFunctionConfigurationCommand({
      FunctionName: 'arn:aws:lambda:eu-west-1:000000000000:function:echo',
    }),
  );
  t.equal(byArn.FunctionName, 'echo');

  // RequestResponse with the log tail.
  const res = await lambda.send(
    new InvokeCommand({ FunctionName: 'echo', Payload: json({ n: 1, s: 'x' }), LogType: 'Tail' }),
  );
  t.equal(res.StatusCode, 200);
  t.equal(res.ExecutedVersion, '$LATEST');
  t.equal(res.FunctionError, undefined);
  t.same(decode(res.Payload), { echo: { n: 1, s: 'x' }, greeting: 'hello' });
  const tail = Buffer.from(res.LogResult ?? '', 'base64').toString('utf8');
  t.match(tail, /^START RequestId: \S+ Version: \$LATEST\n/);
  t.match(tail, /got \{"n":1,"s":"x"\}/);
  t.match(
    tail,
    /END RequestId: \S+\nREPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB/,
  );

  // No payload at all: the event is {}.
  const empty = await lambda.send(new InvokeCommand({ FunctionName: 'echo' }));
  t.same(decode(empty.Payload), { echo: {}, greeting: 'hello' });

  // A handler's error: 200, X-Amz-Function-Error, Node's payload.
  const failed = await lambda.send(
    new InvokeCommand({ FunctionName: 'echo', Payload: json({ fail: 'x1' }) }),
  );
  t.equal(failed.StatusCode, 200);
  t.equal(failed.FunctionError, 'Unhandled');
  const error = decode(failed.Payload);
  t.match(error, { errorType: 'Error', errorMessage: 'boom: x1' });
  t.ok(Array.isArray(error.trace) && error.trace.length > 0, 'a trace, as the Node runtime gives it');

  // DryRun: the function exists and may be called.
  const dry = await lambda.send(new InvokeCommand({ FunctionName: 'echo', InvocationType: 'DryRun' }));
  t.equal(dry.StatusCode, 204);

  // Event: 202 at once, the call queued and run.
  const queued = await lambda.send(
    new InvokeCommand({ FunctionName: 'echo', InvocationType: 'Event', Payload: json({ later: true }) }),
  );
  t.equal(queued.StatusCode, 202);
  const requestId = queued.$metadata.requestId as string;
  t.ok(requestId);
  const done = await waitFor(
    async () => {
      const r = await app.inject({ method: 'GET', url: `/invocations/${requestId}`, headers: bearer });
      // A job read just before it completed answers 200 without its result (GET /invocations'
      // own race): wait for the result itself.
      return r.statusCode === 200 && r.json().status ? r.json() : undefined;
    },
    { what: 'the Event call to finish', timeoutMs: 30_000 },
  );
  t.match(done, { status: 'SUCCESS', result: { echo: { later: true } } });

  // Only $LATEST names a version.
  const v1 = await refused(lambda.send(new InvokeCommand({ FunctionName: 'echo', Qualifier: '1' })));
  t.match(v1, { name: 'ResourceNotFoundException', status: 404 });

  // UpdateFunctionCode: new code, new hash.
  const zip2 = await nodeZip('exports.handler = async (e) => ({ v: 2, e });');
  const updated = await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'echo', ZipFile: zip2 }));
  t.equal(updated.CodeSha256, sha(zip2));
  t.equal(updated.Description, 'echoes', 'the configuration is kept');
  const v2 = await lambda.send(new InvokeCommand({ FunctionName: 'echo', Payload: json({ a: 1 }) }));
  t.same(decode(v2.Payload), { v: 2, e: { a: 1 } });

  // UpdateFunctionConfiguration: fields left out keep their values; `***` keeps a stored value.
  const reconf = await admin.send(
    new UpdateFunctionConfigurationCommand({
      FunctionName: 'echo',
      MemorySize: 512,
      Timeout: 20,
      Environment: { Variables: { GREETING: 'hi', SECRET: '***' } },
    }),
  );
  t.match(reconf, {
    MemorySize: 512,
    Timeout: 20,
    Handler: 'index.handler',
    Description: 'echoes',
    CodeSha256: sha(zip2),
  });
  t.same(reconf.Environment?.Variables, { GREETING: 'hi', SECRET: 's3cr3t' });
  // Dockhand's PATCH (the console's "use 256 MB") keeps what Lambda's API stored: role,
  // description, the zip's hash, and env values sent back masked.
  const patched = await running.app.inject({
    method: 'PATCH',
    url: '/functions/echo',
    headers: bearer,
    payload: { memoryMb: 256, env: { GREETING: 'hey', SECRET: '***' } },
  });
  t.equal(patched.statusCode, 200, patched.body);
  const afterPatch = await admin.send(new GetFunctionConfigurationCommand({ FunctionName: 'echo' }));
  t.match(afterPatch, {
    MemorySize: 256,
    Description: 'echoes',
    Role: 'arn:aws:iam::123456789012:role/lambda-role',
    CodeSha256: sha(zip2),
  });
  t.same(afterPatch.Environment?.Variables, { GREETING: 'hey', SECRET: 's3cr3t' });
  const stale = await refused(
    lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'echo', RevisionId: 'not-current' })),
  );
  t.match(stale, { name: 'PreconditionFailedException', status: 412 });

  const deleted = await lambda.send(new DeleteFunctionCommand({ FunctionName: 'echo' }));
  t.equal(deleted.$metadata.httpStatusCode, 204);
  t.match(await refused(lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }))), {
    name: 'ResourceNotFoundException',
    status: 404,
    message: 'Function not found: arn:aws:lambda:eu-west-1:000000000000:function:echo',
  });
  t.match(await refused(lambda.send(new DeleteFunctionCommand({ FunctionName: 'echo' }))), {
    name: 'ResourceNotFoundException',
  });
});

t.test('a timeout is Lambda’s Sandbox.Timedout', async (t) => {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: 'sleepy',
      Runtime: 'nodejs22.x',
      Role: 'r',
      Handler: 'index.handler',
      Code: { ZipFile: await nodeZip(ECHO) },
      Timeout: 1,
    }),
  );
  const res = await lambda.send(
    new InvokeCommand({ FunctionName: 'sleepy', Payload: json({ sleep: 5000 }) }),
  );
  t.equal(res.FunctionError, 'Unhandled');
  const payload = decode(res.Payload);
  t.equal(payload.errorType, 'Sandbox.Timedout');
  t.match(payload.errorMessage, /^RequestId: \S+ Error: Task timed out after 1\.00 seconds$/);
  await lambda.send(new DeleteFunctionCommand({ FunctionName: 'sleepy' }));
});

t.test('a python function, its error payload, and code from S3', async (t) => {
  const zip = await makeZip([
    {
      name: 'lambda_function.py',
      content: [
        'def lambda_handler(event, context):',
        '    if event.get("fail"):',
        '        raise ValueError("bad value")',
        '    return {"sum": event["a"] + event["b"]}',
        '',
      ].join('\n'),
    },
  ]);
  await s3.send(new PutObjectCommand({ Bucket: 'src', Key: 'py.zip', Body: zip }));
  const created = await lambda.send(
    new CreateFunctionCommand({
      FunctionName: 'adder',
      Runtime: 'python3.12',
      Role: 'r',
      Handler: 'lambda_function.lambda_handler',
      Code: { S3Bucket: 'src', S3Key: 'py.zip' },
    }),
  );
  t.match(created, { Runtime: 'python3.12', CodeSha256: sha(zip), Timeout: 3, MemorySize: 128 });
  const ok = await lambda.send(new InvokeCommand({ FunctionName: 'adder', Payload: json({ a: 2, b: 3 }) }));
  t.same(decode(ok.Payload), { sum: 5 });
  const bad = await lambda.send(new InvokeCommand({ FunctionName: 'adder', Payload: json({ fail: 1 }) }));
  t.equal(bad.FunctionError, 'Unhandled');
  const error = decode(bad.Payload);
  t.match(error, { errorType: 'ValueError', errorMessage: 'bad value', requestId: String });
  t.ok(Array.isArray(error.stackTrace), 'Python’s stackTrace');

  const missing = await refused(
    lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'nos3',
        Runtime: 'python3.12',
        Role: 'r',
        Handler: 'lambda_function.lambda_handler',
        Code: { S3Bucket: 'other', S3Key: 'py.zip' },
      }),
    ),
  );
  t.match(missing, { name: 'InvalidParameterValueException', status: 400, message: /GetObject/ });
  await lambda.send(new DeleteFunctionCommand({ FunctionName: 'adder' }));
});

t.test('runtimes: mapped, refused when not run here', async (t) => {
  const zip = await nodeZip(ECHO);
  const create = (Runtime: string, FunctionName: string) =>
    lambda.send(
      new CreateFunctionCommand({
        FunctionName,
        Runtime: Runtime as Runtime_,
        Role: 'r',
        Handler: 'index.handler',
        Code: { ZipFile: zip },
      }),
    );
  t.match(await refused(create('java21', 'j')), {
    name: 'InvalidParameterValueException',
    message: /java21/,
  });
  t.match(await refused(create('nodejs16.x', 'n16')), { name: 'InvalidParameterValueException' });
  if (!(RUNTIME_NAMES as readonly string[]).includes('provided')) {
    t.match(await refused(create('provided.al2023', 'go')), {
      name: 'InvalidParameterValueException',
      message: /provided\.al2023/,
    });
  }
  const noHandler = await refused(
    lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'h',
        Runtime: 'nodejs20.x',
        Role: 'r',
        Code: { ZipFile: zip },
      }),
    ),
  );
  t.match(noHandler, { name: 'InvalidParameterValueException', message: /Handler/ });
  const reserved = await refused(
    lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'r',
        Runtime: 'nodejs20.x',
        Role: 'r',
        Handler: 'index.handler',
        Code: { ZipFile: zip },
        Environment: { Variables: { AWS_REGION: 'x' } },
      }),
    ),
  );
  t.match(reserved, { name: 'InvalidParameterValueException', message: /AWS_REGION/ });
  const memory = await refused(
    lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'm',
        Runtime: 'nodejs20.x',
        Role: 'r',
        Handler: 'index.handler',
        Code: { ZipFile: zip },
        MemorySize: 64,
      }),
    ),
  );
  t.match(memory, { name: 'ValidationException', status: 400, message: /memorySize/ });
});

t.test('one function, two APIs', async (t) => {
  // Deployed through Dockhand's route: seen and called through Lambda's.
  const put = await app.inject({
    method: 'PUT',
    url: '/functions/native',
    headers: bearer,
    payload: {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 2500,
      code: { files: { 'index.js': 'exports.handler = async (e) => e.x * 2;' } },
    },
  });
  t.equal(put.statusCode, 201, put.body);
  const conf = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'native' }));
  t.match(conf, { Runtime: 'nodejs20.x', Handler: 'index.handler', Timeout: 3, MemorySize: 128 });
  t.equal(conf.CodeSha256, Buffer.from(put.json().codeSha256, 'hex').toString('base64'));
  const res = await lambda.send(new InvokeCommand({ FunctionName: 'native', Payload: json({ x: 21 }) }));
  t.equal(decode(res.Payload), 42);

  // Deployed through Lambda's: seen and called through Dockhand's.
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: 'viaLambda',
      Runtime: 'nodejs20.x',
      Role: 'r',
      Handler: 'index.handler',
      Code: { ZipFile: await nodeZip('exports.handler = async (e) => ({ got: e });') },
    }),
  );
  const view = await app.inject({ method: 'GET', url: '/functions/viaLambda', headers: bearer });
  t.match(view.json(), { name: 'viaLambda', runtime: 'node20', memoryMb: 128, timeoutMs: 3000 });
  const call = await app.inject({
    method: 'POST',
    url: '/functions/viaLambda/invoke',
    headers: bearer,
    payload: { y: 1 },
  });
  t.match(call.json(), { status: 'SUCCESS', result: { got: { y: 1 } } });

  // ListFunctions pages with Marker / MaxItems over both.
  const names: string[] = [];
  let Marker: string | undefined;
  let pages = 0;
  do {
    const page = await lambda.send(new ListFunctionsCommand({ MaxItems: 1, Marker }));
    names.push(...(page.Functions ?? []).map((f) => f.FunctionName as string));
    Marker = page.NextMarker;
    pages++;
  } while (Marker && pages < 10);
  t.same(names, ['native', 'viaLambda']);
  const all = await lambda.send(new ListFunctionsCommand({}));
  t.same(
    all.Functions?.map((f) => f.FunctionName),
    ['native', 'viaLambda'],
  );
  t.equal(all.NextMarker, undefined);

  // A deploy through Dockhand's route drops what only Lambda's knew (its runtime string).
  await lambda.send(new DeleteFunctionCommand({ FunctionName: 'viaLambda' }));
  const gone = await app.inject({ method: 'GET', url: '/functions/viaLambda', headers: bearer });
  t.equal(gone.statusCode, 404);
  await lambda.send(new DeleteFunctionCommand({ FunctionName: 'native' }));
});

t.test('event-invoke-config: Put, Get, Update, Delete, destinations mapped', async (t) => {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: 'withcfg',
      Runtime: 'nodejs20.x',
      Role: 'r',
      Handler: 'index.handler',
      Code: { ZipFile: await nodeZip(ECHO) },
    }),
  );
  t.match(await refused(lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'withcfg' }))), {
    name: 'ResourceNotFoundException',
  });
  const put = await lambda.send(
    new PutFunctionEventInvokeConfigCommand({
      FunctionName: 'withcfg',
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: 120,
      DestinationConfig: {
        OnSuccess: { Destination: 'arn:aws:sns:eu-west-1:123456789012:done-topic' },
        OnFailure: { Destination: 'arn:aws:lambda:eu-west-1:123456789012:function:on-fail' },
      },
    }),
  );
  t.match(put, {
    FunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:withcfg:$LATEST',
    MaximumRetryAttempts: 1,
    MaximumEventAgeInSeconds: 120,
    DestinationConfig: {
      OnSuccess: { Destination: 'arn:aws:sns:eu-west-1:000000000000:done-topic' },
      OnFailure: { Destination: 'arn:aws:lambda:eu-west-1:000000000000:function:on-fail' },
    },
  });
  t.ok(put.LastModified instanceof Date && !Number.isNaN(put.LastModified.getTime()));
  // What the async path reads: Dockhand's destinations.
  const stored = await running.app.inject({ method: 'GET', url: '/functions/withcfg', headers: bearer });
  t.equal(stored.statusCode, 200);

  const updated = await lambda.send(
    new UpdateFunctionEventInvokeConfigCommand({
      FunctionName: 'withcfg',
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnSuccess: { Destination: 'https://93.184.216.34/done' } },
    }),
  );
  t.match(updated, {
    MaximumRetryAttempts: 0,
    MaximumEventAgeInSeconds: 120,
    DestinationConfig: {
      OnSuccess: { Destination: 'https://93.184.216.34/done' },
      OnFailure: { Destination: 'arn:aws:lambda:eu-west-1:000000000000:function:on-fail' },
    },
  });
  const got = await lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'withcfg' }));
  t.equal(got.MaximumRetryAttempts, 0);
  const bad = await refused(
    lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: 'withcfg',
        DestinationConfig: { OnFailure: { Destination: 'arn:aws:sqs:eu-west-1:123456789012:q' } },
      }),
    ),
  );
  t.match(bad, { name: 'InvalidParameterValueException', status: 400 });
  // The same SSRF guard as Dockhand's own route and HTTP jobs: the metadata address is no destination.
  const metadata = await refused(
    lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: 'withcfg',
        DestinationConfig: { OnFailure: { Destination: 'http://169.254.169.254/latest/meta-data/' } },
      }),
    ),
  );
  t.match(metadata, { name: 'InvalidParameterValueException', status: 400 });
  const range = await refused(
    lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: 'withcfg', MaximumRetryAttempts: 3 }),
    ),
  );
  t.match(range, { name: 'ValidationException', status: 400 });
  const del = await lambda.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: 'withcfg' }));
  t.equal(del.$metadata.httpStatusCode, 204);
  t.match(await refused(lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'withcfg' }))), {
    name: 'ResourceNotFoundException',
  });
  t.match(await refused(lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'nope' }))), {
    name: 'ResourceNotFoundException',
    message: /Function not found/,
  });
  await lambda.send(new DeleteFunctionCommand({ FunctionName: 'withcfg' }));
});

t.test('a client signing for another region is served; a wrong secret is not', async (t) => {
  const other = client(KEY, 'ap-south-1');
  const list = await other.send(new ListFunctionsCommand({}));
  t.ok(Array.isArray(list.Functions));
  const wrong = new LambdaClient({
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: KEY, secretAccessKey: 'nope' },
  });
  t.teardown(() => wrong.destroy());
  t.match(await refused(wrong.send(new ListFunctionsCommand({}))), {
    name: 'InvalidSignatureException',
    status: 403,
  });
  const stranger = client('not-a-key');
  t.match(await refused(stranger.send(new ListFunctionsCommand({}))), {
    name: 'UnrecognizedClientException',
    status: 403,
  });
});

/**
 * Runs the AWS CLI as a child, asynchronously: spawnSync would block this process's own server,
 * which the CLI is talking to. Only the credentials and a home of its own: no profile leaks in.
 */
function aws(bin: string, args: string[], home: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(
      bin,
      [...args, '--endpoint-url', endpoint, '--region', 'eu-west-1', '--output', 'json'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: home,
          AWS_ACCESS_KEY_ID: KEY,
          AWS_SECRET_ACCESS_KEY: KEY,
          AWS_PAGER: '',
          AWS_CONFIG_FILE: path.join(home, 'config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', () => resolve({ code: -1, stdout, stderr }));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

// Debian's awscli (scripts/prepare.sh installs it); else whatever `aws` is on PATH.
const awsBin = existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws';
const awsVersion = await aws(awsBin, ['--version'], tempDir(t, 'aws-probe'));
const noCli =
  awsVersion.code === 0
    ? false
    : `the AWS CLI is not installed or does not run (${awsBin} --version failed): install Debian's awscli to run this test`;

t.test('the AWS CLI deploys, invokes and deletes against Dockhand', { skip: noCli }, async (t) => {
  const bin = awsBin;
  const home = tempDir(t, 'aws-home');
  t.comment(`using ${(awsVersion.stdout || awsVersion.stderr).trim()}`);
  const version = awsVersion;
  const v2 = /aws-cli\/2\./.test(version.stdout + version.stderr);
  const zipFile = path.join(home, 'fn.zip');
  await writeFile(zipFile, await nodeZip(ECHO));
  const created = await aws(
    bin,
    [
      'lambda',
      'create-function',
      '--function-name',
      'cli-fn',
      '--runtime',
      'nodejs20.x',
      '--handler',
      'index.handler',
      '--role',
      'arn:aws:iam::123456789012:role/r',
      '--zip-file',
      `fileb://${zipFile}`,
    ],
    home,
  );
  t.equal(created.code, 0, created.stderr);
  t.match(JSON.parse(created.stdout), { FunctionName: 'cli-fn', Runtime: 'nodejs20.x', State: 'Active' });

  const out = path.join(home, 'out.json');
  const invoked = await aws(
    bin,
    [
      'lambda',
      'invoke',
      '--function-name',
      'cli-fn',
      '--payload',
      '{"from":"cli"}',
      ...(v2 ? ['--cli-binary-format', 'raw-in-base64-out'] : []),
      '--log-type',
      'Tail',
      out,
    ],
    home,
  );
  t.equal(invoked.code, 0, invoked.stderr);
  const meta = JSON.parse(invoked.stdout);
  t.match(meta, { StatusCode: 200, ExecutedVersion: '$LATEST' });
  t.match(Buffer.from(meta.LogResult, 'base64').toString('utf8'), /got \{"from":"cli"\}/);
  t.same(JSON.parse(await readFile(out, 'utf8')), { echo: { from: 'cli' }, greeting: null });

  const failed = await aws(
    bin,
    [
      'lambda',
      'invoke',
      '--function-name',
      'cli-fn',
      '--payload',
      '{"fail":"cli"}',
      ...(v2 ? ['--cli-binary-format', 'raw-in-base64-out'] : []),
      out,
    ],
    home,
  );
  t.equal(failed.code, 0, failed.stderr);
  t.match(JSON.parse(failed.stdout), { StatusCode: 200, FunctionError: 'Unhandled' });
  t.match(JSON.parse(await readFile(out, 'utf8')), { errorType: 'Error', errorMessage: 'boom: cli' });

  const missing = await aws(bin, ['lambda', 'get-function', '--function-name', 'no-such-fn'], home);
  t.not(missing.code, 0);
  t.match(missing.stderr, /ResourceNotFoundException/);

  const deleted = await aws(bin, ['lambda', 'delete-function', '--function-name', 'cli-fn'], home);
  t.equal(deleted.code, 0, deleted.stderr);
});
