import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

// Handlers written for AWS Lambda run unchanged: Lambda's context and environment, callback
// handlers and context.succeed/fail/done, ES modules, and errors in Lambda's shape.

leakCheck(t);
const config = testConfig(t, { POOL_MIN_IDLE: '1', POOL_MAX: '12', AWS_REGION: 'eu-north-1' });
const running = await startRole('all', config, { listen: false });
t.teardown(() => running.close());
const { app } = running;

async function deploy(name: string, body: Record<string, unknown>) {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${name}`,
    payload: { runtime: 'node20', handler: 'index.handler', memoryMb: 128, timeoutMs: 5000, ...body },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.statusCode} ${res.body}`);
}
const node = (name: string, files: Record<string, string>, extra: Record<string, unknown> = {}) =>
  deploy(name, { code: { files }, ...extra });
const invoke = async (name: string, event: unknown = {}) => {
  const res = await app.inject({
    method: 'POST',
    url: `/functions/${name}/invoke`,
    payload: event as object,
  });
  return res.json();
};

const ENV_NAMES = [
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  '_HANDLER',
  'LAMBDA_TASK_ROOT',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
];
const STREAM = /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/;
const ARN = 'arn:aws:lambda:eu-north-1:000000000000:function:';

t.test('node: Lambda context fields beside Dockhand own, and Lambda environment', async (t) => {
  await node('ctx', {
    'index.js': `exports.handler = async (event, context) => ({
  ctx: { ...context, remaining: context.getRemainingTimeInMillis() },
  env: Object.fromEntries(${JSON.stringify(ENV_NAMES)}.map((n) => [n, process.env[n]])),
});`,
  });
  const res = await invoke('ctx');
  t.equal(res.status, 'SUCCESS', JSON.stringify(res.error));
  const { ctx, env } = res.result;
  t.match(ctx, {
    awsRequestId: res.requestId,
    requestId: res.requestId,
    functionName: 'ctx',
    functionVersion: '$LATEST',
    invokedFunctionArn: `${ARN}ctx`,
    memoryLimitInMB: 128,
    logGroupName: '/aws/lambda/ctx',
    logStreamName: STREAM,
    callbackWaitsForEmptyEventLoop: true,
  });
  t.ok(ctx.remaining > 0 && ctx.remaining <= 5000, 'getRemainingTimeInMillis counts down from the timeout');
  t.type(ctx.deadline, 'number');
  t.match(env, {
    AWS_LAMBDA_FUNCTION_NAME: 'ctx',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_REGION: 'eu-north-1',
    AWS_DEFAULT_REGION: 'eu-north-1',
    _HANDLER: 'index.handler',
    LAMBDA_TASK_ROOT: '/tmp/task',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/ctx',
    AWS_LAMBDA_LOG_STREAM_NAME: ctx.logStreamName,
    AWS_EXECUTION_ENV: /^AWS_Lambda_nodejs\d+\.x$/,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
  });
});

t.test("a function's own env wins over Lambda's", async (t) => {
  await node(
    'own-region',
    {
      'index.js':
        'exports.handler = async () => [process.env.AWS_REGION, process.env.AWS_LAMBDA_FUNCTION_NAME];',
    },
    { env: { AWS_REGION: 'ap-south-1' } },
  );
  t.same((await invoke('own-region')).result, ['ap-south-1', 'own-region']);
});

t.test('node callback handlers', async (t) => {
  await node('cb', {
    'index.js': `exports.handler = (event, context, callback) => {
  if (event.mode === 'later') setTimeout(() => callback(null, { later: true }), 20);
  else if (event.mode === 'error') callback(new RangeError('out of range'));
  else if (event.mode === 'string-error') callback('plain failure');
  else if (event.mode === 'waits') {
    callback(null, 'answered');
    setTimeout(() => console.log('the loop emptied first'), 30);
  } else if (event.mode === 'no-wait') {
    context.callbackWaitsForEmptyEventLoop = false;
    callback(null, { flag: context.callbackWaitsForEmptyEventLoop });
    setTimeout(() => console.log('never in this call'), 60000);
  } else if (event.mode === 'succeed') setTimeout(() => context.succeed({ legacy: 'succeed' }), 5);
  else if (event.mode === 'fail') context.fail(new Error('legacy fail'));
  else if (event.mode === 'done') context.done(null, 'done ok');
  else if (event.mode === 'nothing') setTimeout(() => {}, 10);
  else callback(null, 'default');
};`,
  });
  t.same((await invoke('cb', { mode: 'later' })).result, { later: true });

  const error = await invoke('cb', { mode: 'error' });
  t.equal(error.status, 'FAILED');
  t.equal(error.error.errorType, 'RangeError');
  t.equal(error.error.errorMessage, 'out of range');
  t.equal(error.error.stackTrace[0], 'RangeError: out of range');
  t.match(error.error.stackTrace[1], /index\.js/);

  const text = await invoke('cb', { mode: 'string-error' });
  t.equal(text.status, 'FAILED');
  t.equal(text.error.errorMessage, 'plain failure');

  const waits = await invoke('cb', { mode: 'waits' });
  t.equal(waits.result, 'answered');
  t.equal(
    waits.logs,
    'the loop emptied first\n',
    'callbackWaitsForEmptyEventLoop: the timer ran before the answer',
  );

  const noWait = await invoke('cb', { mode: 'no-wait' });
  t.same(noWait.result, { flag: false }, 'the property is settable');
  t.equal(noWait.logs, '', 'answered without waiting for the pending timer');

  t.same((await invoke('cb', { mode: 'succeed' })).result, { legacy: 'succeed' });
  const fail = await invoke('cb', { mode: 'fail' });
  t.equal(fail.status, 'FAILED');
  t.equal(fail.error.errorMessage, 'legacy fail');
  t.equal((await invoke('cb', { mode: 'done' })).result, 'done ok');
  const nothing = await invoke('cb', { mode: 'nothing' });
  t.equal(nothing.status, 'SUCCESS');
  t.equal(nothing.result, null, 'no answer at all: null once the event loop is empty');
  const last = await invoke('cb', {});
  t.equal(last.result, 'default');
  t.equal(last.coldStart, false, 'one warm container served every call');
});

t.test('node: a handler that never answers times out', async (t) => {
  await node(
    'forever',
    {
      'index.js': 'exports.handler = (e, c, cb) => { setInterval(() => {}, 1000); cb(null, "never sent"); };',
    },
    { timeoutMs: 800 },
  );
  const res = await invoke('forever');
  t.equal(res.status, 'TIMEOUT', 'a callback waits for the event loop, which an interval never empties');
});

t.test('node: ES modules, as index.mjs and as .js with "type": "module"', async (t) => {
  await node('esm', {
    'index.mjs': `import { hostname } from 'node:os';
export const handler = async (event) => ({ esm: typeof hostname === 'function', got: event.n });`,
  });
  t.same((await invoke('esm', { n: 1 })).result, { esm: true, got: 1 });

  await node(
    'esm-js',
    {
      'package.json': JSON.stringify({ type: 'module' }),
      'src/app.js': `import { helper } from './helper.js';
export async function main(event, context) { return helper(event.n) + ':' + context.functionName; }`,
      'src/helper.js': 'export const helper = (n) => "module " + n * 2;',
    },
    { handler: 'src/app.main' },
  );
  const res = await invoke('esm-js', { n: 21 });
  t.equal(res.status, 'SUCCESS', JSON.stringify(res.error));
  t.equal(res.result, 'module 42:esm-js');
});

t.test('node: a thrown error keeps stack and adds stackTrace', async (t) => {
  await node('throws', { 'index.js': 'exports.handler = async () => { throw new TypeError("nope"); };' });
  const res = await invoke('throws');
  t.equal(res.status, 'FAILED');
  t.equal(res.error.errorType, 'TypeError');
  t.match(res.error.stack, /^TypeError: nope\n\s+at /);
  t.same(res.error.stackTrace, res.error.stack.split('\n'));
});

t.test('python: Lambda context and environment, errors with stackTrace', async (t) => {
  await deploy('pyctx', {
    runtime: 'python3',
    handler: 'app.handler',
    code: {
      files: {
        'app.py': `import os

NAMES = ${JSON.stringify(ENV_NAMES)}

def handler(event, context):
    if event.get("fail"):
        helper()
    return {
        "aws_request_id": context.aws_request_id,
        "request_id": context.request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": context.identity,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {name: os.environ.get(name) for name in NAMES},
    }

def helper():
    raise KeyError("missing")
`,
      },
    },
  });
  const res = await invoke('pyctx');
  t.equal(res.status, 'SUCCESS', JSON.stringify(res.error));
  t.match(res.result, {
    aws_request_id: res.requestId,
    request_id: res.requestId,
    function_name: 'pyctx',
    function_version: '$LATEST',
    invoked_function_arn: `${ARN}pyctx`,
    memory_limit_in_mb: '128',
    log_group_name: '/aws/lambda/pyctx',
    log_stream_name: STREAM,
    identity: null,
    env: {
      AWS_LAMBDA_FUNCTION_NAME: 'pyctx',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
      AWS_REGION: 'eu-north-1',
      _HANDLER: 'app.handler',
      LAMBDA_TASK_ROOT: '/tmp/task',
      AWS_EXECUTION_ENV: /^AWS_Lambda_python3\.\d+$/,
    },
  });
  t.ok(res.result.remaining > 0 && res.result.remaining <= 5000);
  t.equal(res.result.env.AWS_LAMBDA_LOG_STREAM_NAME, res.result.log_stream_name);

  const failed = await invoke('pyctx', { fail: true });
  t.equal(failed.status, 'FAILED');
  t.equal(failed.error.errorType, 'KeyError');
  t.match(failed.error.stack, /Traceback/);
  t.equal(failed.error.stackTrace.length, 2, 'one entry per frame: handler, helper');
  t.match(failed.error.stackTrace[1], /File "\/tmp\/task\/app\.py", line \d+, in helper/);
});
