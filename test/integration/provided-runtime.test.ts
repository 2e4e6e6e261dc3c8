import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import t from 'tap';
import { startRole } from '../../roles/index.ts';
import { runtimeCatalog } from '../../runtimes/catalog.ts';
import type { CgroupProfiler } from '../../runtimes/cgroup-profiler.ts';
import { DockerSandboxDriver } from '../../runtimes/docker-sandbox.ts';
import { createInvoker } from '../../runtimes/invoker.ts';
import type { FunctionImage, WarmPool } from '../../runtimes/warm-pool.ts';
import { testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { makeZip } from '../helpers/zip.ts';

// Custom runtimes (`provided`): the function's own executable `bootstrap` talks to the Lambda
// Runtime API that Dockhand serves inside its sandbox. One runtime is a C program built here
// with gcc (dynamically linked against this machine's glibc, which the image carries), the
// other a python script with only its standard library.

leakCheck(t);
const MAX_RESULT_BYTES = 1024 * 1024;
const config = testConfig(t, {
  POOL_MIN_IDLE: '1',
  POOL_MAX: '12',
  MAX_RESULT_BYTES: String(MAX_RESULT_BYTES),
});
const running = await startRole('all', config, { listen: false });
t.teardown(() => running.close());
const { app } = running;

const build = tempDir(t, 'cboot');
const cBinary = path.join(build, 'bootstrap');
execFileSync('gcc', [
  '-O2',
  '-o',
  cBinary,
  path.join(import.meta.dirname, '../fixtures/provided/bootstrap.c'),
]);
// Mode 0644 as a zip made on another system may leave it: the sandbox makes it executable.
const cZip = (
  await makeZip([{ name: 'bootstrap', content: readFileSync(cBinary), mode: 0o100644 }])
).toString('base64');

async function deploy(name: string, body: Record<string, unknown>) {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${name}`,
    payload: { runtime: 'provided', handler: 'function.handler', memoryMb: 128, timeoutMs: 5000, ...body },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.statusCode} ${res.body}`);
  return res.json();
}
const invoke = async (name: string, event: unknown = {}) => {
  const res = await app.inject({
    method: 'POST',
    url: `/functions/${name}/invoke`,
    payload: event as object,
  });
  return res.json();
};

t.test('a C bootstrap: event, Lambda headers, logs, warm reuse', async (t) => {
  await deploy('cfn', { code: { zipBase64: cZip } });
  const first = await invoke('cfn', { x: 1 });
  t.equal(first.status, 'SUCCESS', JSON.stringify(first.error));
  t.same(first.result.event, { x: 1 });
  t.equal(first.result.requestId, first.requestId, 'Lambda-Runtime-Aws-Request-Id is the call id');
  t.equal(first.result.arn, 'arn:aws:lambda:us-east-1:000000000000:function:cfn');
  t.ok(first.result.deadline > 1.6e12, 'Lambda-Runtime-Deadline-Ms is epoch milliseconds');
  t.equal(first.result.traced, true, 'Lambda-Runtime-Trace-Id has X-Ray form');
  t.equal(first.result.count, 1);
  t.match(first.logs, /C runtime starting for function\.handler\n/, 'init output is in the first call');
  t.match(first.logs, new RegExp(`C handling ${first.requestId}\\n`));
  t.equal(first.coldStart, false, 'a generic provided container was specialised');
  t.ok(first.resources.memoryUsedMb > 1, `profiled like any function (${first.resources.memoryUsedMb} MB)`);

  const second = await invoke('cfn', { x: 2 });
  t.equal(second.status, 'SUCCESS');
  t.equal(second.coldStart, false);
  t.equal(second.result.pid, first.result.pid, 'the same runtime process served the next call');
  t.equal(second.result.count, 2);
  t.notMatch(second.logs, /starting/, 'init output only once');
});

t.test('a handler error posted to /error is FAILED with its type; the runtime stays warm', async (t) => {
  const ok = await invoke('cfn', {});
  const failed = await invoke('cfn', { fail: 1 });
  t.equal(failed.status, 'FAILED');
  t.equal(failed.error.errorType, 'Handler.Failure');
  t.equal(failed.error.errorMessage, 'it failed');
  t.same(failed.error.stackTrace, ['bootstrap.c:80', 'bootstrap.c:1']);
  const after = await invoke('cfn', {});
  t.equal(after.status, 'SUCCESS');
  t.equal(after.result.pid, ok.result.pid, 'the same process');
  t.equal(after.result.count, ok.result.count + 2);
});

t.test('a runtime that exits mid-call is Runtime.ExitError; the next call starts it again', async (t) => {
  const before = await invoke('cfn', {});
  const crash = await invoke('cfn', { crash: 1 });
  t.equal(crash.status, 'FAILED');
  t.equal(crash.error.errorType, 'Runtime.ExitError');
  t.match(crash.error.errorMessage, /Runtime exited with error: exit status 3/);
  t.match(crash.logs, /C crashing on purpose/);
  const after = await invoke('cfn', {});
  t.equal(after.status, 'SUCCESS');
  t.not(after.result.pid, before.result.pid, 'a fresh runtime process');
  t.equal(after.result.count, 1);
  t.match(after.logs, /C runtime starting/);
});

t.test('init errors: /init/error, an exit before /next, no bootstrap', async (t) => {
  await deploy('c-init-fail', { code: { zipBase64: cZip }, env: { INIT_FAIL: '1' } });
  const posted = await invoke('c-init-fail');
  t.equal(posted.status, 'FAILED');
  t.equal(posted.error.errorType, 'Runtime.ConfigError', 'the type the runtime posted');
  t.equal(posted.error.errorMessage, 'missing setting');
  t.match(posted.logs, /C runtime starting/, 'what init printed comes back');
  const again = await invoke('c-init-fail');
  t.equal(again.error.errorType, 'Runtime.ConfigError', 'every call tries init again, in a new container');

  await deploy('c-init-exit', { code: { zipBase64: cZip }, env: { INIT_EXIT: '1' } });
  const exited = await invoke('c-init-exit');
  t.equal(exited.status, 'FAILED');
  t.equal(exited.error.errorType, 'Runtime.ExitError');
  t.match(exited.error.errorMessage, /exit status 4/);

  await deploy('no-bootstrap', { code: { files: { 'main.sh': 'echo hi' } } });
  const missing = await invoke('no-bootstrap');
  t.equal(missing.error.errorType, 'Runtime.InvalidEntrypoint');
  t.match(missing.error.errorMessage, /bootstrap/);
});

const PY_BOOTSTRAP = `#!/usr/bin/env python3
# A custom runtime in python with only its standard library.
import json, os, sys, time, urllib.request, urllib.error

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"

def call(method, path, body=None, headers=None):
    req = urllib.request.Request(API + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()

ENV_NAMES = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
             "AWS_REGION", "AWS_DEFAULT_REGION", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_LOG_GROUP_NAME",
             "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_INITIALIZATION_TYPE", "GREETING"]
print("python runtime up", flush=True)
while True:
    status, headers, body = call("GET", "/invocation/next")
    rid = headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(body)
    op = event.get("op")
    if op == "env":
        out = json.dumps({name: os.environ.get(name) for name in ENV_NAMES}).encode()
    elif op == "text":
        out = b"plain words"
    elif op == "big":
        out = json.dumps("x" * event["n"]).encode()
    elif op == "hang":
        time.sleep(60)
    elif op == "raise":
        try:
            raise ValueError("bad value")
        except ValueError as err:
            import traceback
            doc = {"errorMessage": str(err), "errorType": "ValueError",
                   "stackTrace": traceback.format_tb(err.__traceback__)}
            call("POST", "/invocation/%s/error" % rid, json.dumps(doc).encode(),
                 {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
    elif op == "misbehave":
        # Answers for a call that is not this one, a late init error, a route that does not exist.
        wrong = call("POST", "/invocation/not-the-id/response", b'"stolen"')[0]
        late_init = call("POST", "/init/error", b'{"errorMessage":"late","errorType":"X"}')[0]
        nowhere = call("GET", "/../../etc/passwd")[0]
        out = json.dumps({"wrong": wrong, "lateInit": late_init, "nowhere": nowhere}).encode()
    else:
        out = json.dumps({"echo": event}).encode()
    status = call("POST", "/invocation/%s/response" % rid, out)[0]
    print("posted", op, status, flush=True)
`;

t.test('a python script bootstrap: Lambda environment, results, errors, limits', async (t) => {
  await deploy('pyrt', {
    handler: 'handler.main',
    env: { GREETING: 'hej' },
    code: { files: { bootstrap: PY_BOOTSTRAP } },
  });
  const env = await invoke('pyrt', { op: 'env' });
  t.equal(env.status, 'SUCCESS', JSON.stringify(env.error));
  t.match(env.result, {
    AWS_LAMBDA_FUNCTION_NAME: 'pyrt',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    _HANDLER: 'handler.main',
    LAMBDA_TASK_ROOT: '/tmp/task',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/pyrt',
    AWS_LAMBDA_LOG_STREAM_NAME: /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/,
    AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    GREETING: 'hej',
  });
  t.match(env.logs, /python runtime up\n/);

  t.equal(
    (await invoke('pyrt', { op: 'text' })).result,
    'plain words',
    'a response that is not JSON is text',
  );

  const raised = await invoke('pyrt', { op: 'raise' });
  t.equal(raised.status, 'FAILED');
  t.equal(raised.error.errorType, 'ValueError');
  t.equal(raised.error.errorMessage, 'bad value');
  t.match(raised.error.stackTrace[0], /File ".*bootstrap", line \d+/);

  const fits = await invoke('pyrt', { op: 'big', n: MAX_RESULT_BYTES - 100 });
  t.equal(fits.status, 'SUCCESS');
  const big = await invoke('pyrt', { op: 'big', n: MAX_RESULT_BYTES + 10 });
  t.equal(big.status, 'FAILED');
  t.equal(big.error.errorType, 'ResultTooLarge');
  const next = await invoke('pyrt', { op: 'echo' });
  t.equal(next.status, 'SUCCESS', 'and carries on');
  // It prints after its answer is taken: that line is in the next call's log.
  t.match(next.logs, /posted big 413/, 'the runtime was told 413');
});

t.test('a runtime cannot answer for another call or re-open init; unknown routes are 404', async (t) => {
  const res = await invoke('pyrt', { op: 'misbehave' });
  t.equal(res.status, 'SUCCESS', JSON.stringify(res.error));
  t.same(res.result, { wrong: 400, lateInit: 403, nowhere: 404 });
});

t.test('a runtime past its timeout is killed; the next call gets a new one', async (t) => {
  await deploy('pyslow', { timeoutMs: 1500, code: { files: { bootstrap: PY_BOOTSTRAP } } });
  const first = await invoke('pyslow', { op: 'echo' });
  t.equal(first.status, 'SUCCESS');
  const slow = await invoke('pyslow', { op: 'hang' });
  t.equal(slow.status, 'TIMEOUT');
  const after = await invoke('pyslow', { op: 'echo', n: 1 });
  t.equal(after.status, 'SUCCESS');
  t.same(after.result, { echo: { op: 'echo', n: 1 } });
});

t.test('an init that never asks for an event fails after 10 s, as Lambda bounds init', async (t) => {
  await deploy('stuck-init', {
    code: { files: { bootstrap: '#!/bin/sh\necho stuck\nexec python3 -c "import time; time.sleep(60)"\n' } },
  });
  const res = await invoke('stuck-init');
  t.equal(res.status, 'FAILED');
  t.equal(res.error.errorType, 'Runtime.InitTimeout');
  t.match(res.logs, /stuck/);
});

t.test("live logs: the runtime's output streams up to the budget, labelled by stream", async (t) => {
  const { provided } = runtimeCatalog(config.functions.images);
  const driver = new DockerSandboxDriver(new Docker(), `${hostname()}/${process.pid}`);
  const sandbox = await driver.create({
    image: provided.image,
    cmd: provided.cmd,
    memoryMb: 128,
    tmpfsExec: provided.tmpfsExec,
  });
  t.teardown(() => sandbox.destroy());
  await sandbox.channel.waitFor('ready');
  const chatty = PY_BOOTSTRAP.replace(
    'op = event.get("op")',
    'op = event.get("op")\n    for i in range(40000):\n        print("o%d" % i)\n        print("e%d" % i, file=sys.stderr)\n    sys.stdout.flush()',
  );
  const loaded = await sandbox.channel.request({
    type: 'load',
    handler: 'x.y',
    env: {},
    files: { bootstrap: Buffer.from(chatty).toString('base64') },
  });
  t.equal(loaded.ok, true, JSON.stringify(loaded.error));
  const pool = {
    acquire: async () => ({ sandbox, coldStart: false }),
    release: () => {},
  } as unknown as WarmPool;
  const profiler = { resetPeak: async () => true, sample: async () => null } as unknown as CgroupProfiler;
  const invokeDirect = createInvoker({ pool, profiler, liveLogChars: 5000 });
  const pieces: Array<[string, string]> = [];
  const fn = { name: 'f', runtime: 'provided', handler: 'x.y', memoryMb: 128 } as FunctionImage;
  const out = await invokeDirect(fn, {
    requestId: 'live-1',
    event: { op: 'echo' },
    timeoutMs: 60_000,
    onOutput: (text, stream) => pieces.push([stream, text]),
  });
  t.equal(out.status, 'SUCCESS', JSON.stringify(out.error));
  const streamed = pieces.map(([, text]) => text).join('');
  t.equal(streamed.length, 5001, 'the budget and one character more crossed the pipe, no more');
  t.equal(out.logs.length, 262144, 'the result keeps its own 256 Ki');
  t.ok(
    pieces.every(([stream, text]) =>
      text
        .split('\n')
        .filter((line) => /^[oe]\d/.test(line))
        .every((line) => (line[0] === 'o') === (stream === 'stdout')),
    ),
    'every piece is labelled with the stream it was written to',
  );
});
