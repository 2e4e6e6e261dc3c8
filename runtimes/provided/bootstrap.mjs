// Runs inside a `provided` function container as its main process: a custom runtime (the
// function's own executable `bootstrap`, a Go or Rust binary or a script) talks to it over
// the Lambda Runtime API on loopback, while the host talks to it over the same framed
// stdin/stdout protocol as the node and python bootstraps (load/invoke/ping, live `log`
// frames). What the custom runtime prints is the invocation's log. Lambda's behaviour kept:
// init ends at the first /next; /init/error or an exit before it fails the load; an exit
// mid-call is that call's Runtime.ExitError and the next call starts the runtime again.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { StringDecoder } from 'node:string_decoder';

const MARK = '\x1eDH ';
const TASK_DIR = '/tmp/task';
const LOG_CAP = Number(process.env.DOCKHAND_LOG_CAP || 262144);
// The host sends its limit with each call (maxResultBytes); this is for a host that does not.
const MAX_RESULT_BYTES = 6 * 1024 * 1024;
// An error's text is cut here, so that a reply always fits the host's frame cap (result cap + 4 MiB).
const ERROR_CAP = 65536;
// Lambda's own bound on an error document posted by a runtime.
const MAX_ERROR_BODY = 1024 * 1024;
const API_ADDRESS = '127.0.0.1:9001';
const API = '/2018-06-01/runtime';
// Lambda gives a runtime's init 10 s; past it the load fails (the host's pool has no bound of its own).
const INIT_TIMEOUT_MS = 10_000;

// --- frames to the host (as runtimes/node/bootstrap.mjs) ---

const pause = new Int32Array(new SharedArrayBuffer(4));
const reply = (message) => {
  const frame = Buffer.from(`${MARK}${JSON.stringify(message)}\n`);
  let offset = 0;
  while (offset < frame.length) {
    try {
      offset += fs.writeSync(1, frame, offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
};

// --- the custom runtime's output: the call's log, and live `log` frames within its budget ---

let logs = [];
let logBytes = 0;
let logsTruncated = false;
const LIVE_FRAME_CHARS = 16384;
let liveLeft = 0;
let livePending = [];
let liveScheduled = false;

const liveFlush = () => {
  liveScheduled = false;
  const pieces = livePending;
  livePending = [];
  for (const [stream, text] of pieces) {
    for (let i = 0; i < text.length; i += LIVE_FRAME_CHARS)
      reply({ type: 'log', stream, text: text.slice(i, i + LIVE_FRAME_CHARS) });
  }
};
const capture = (stream, text) => {
  if (text.length === 0) return;
  if (logBytes + text.length > LOG_CAP) {
    logsTruncated = true;
    const room = LOG_CAP - logBytes;
    if (room > 0) logs.push(text.slice(0, room));
    logBytes = LOG_CAP;
  } else {
    logs.push(text);
    logBytes += text.length;
  }
  if (liveLeft <= 0) return;
  const piece = text.length > liveLeft ? text.slice(0, liveLeft) : text;
  liveLeft -= piece.length;
  const last = livePending.at(-1);
  if (last && last[0] === stream) last[1] += piece;
  else livePending.push([stream, piece]);
  if (!liveScheduled) {
    liveScheduled = true;
    setImmediate(liveFlush);
  }
};
/** The log so far, which the next call's log starts after. */
const takeLogs = () => {
  liveFlush();
  liveLeft = 0;
  const taken = { logs: logs.join(''), logsTruncated };
  logs = [];
  logBytes = 0;
  logsTruncated = false;
  return taken;
};

const cut = (text) => (text.length > ERROR_CAP ? `${text.slice(0, ERROR_CAP)} [cut]` : text);
const describe = (err) =>
  err instanceof Error
    ? { errorType: cut(err.name), errorMessage: cut(err.message), stack: cut(String(err.stack)) }
    : { errorType: 'Error', errorMessage: cut(String(err)) };

process.on('uncaughtException', (err) => {
  reply({ type: 'fatal', error: describe(err) });
  process.exit(1);
});

// --- the custom runtime's process ---

let runtimeEnv;
/** The running `bootstrap`; null before load and after it exited. */
let child = null;
/** While the runtime initialises: settles the init with its outcome. */
let init = null;
/** A held GET /next, answered when a call comes. */
let waitingNext = null;
/** The call in progress: {id, context, event, limit, sent, settle}. */
let current = null;

const exitStatus = (code, signal) =>
  signal ? `signal: ${signal.replace(/^SIG/, '').toLowerCase()}` : `exit status ${code}`;

function startRuntime() {
  return new Promise((resolve) => {
    const file = path.join(TASK_DIR, 'bootstrap');
    const timer = setTimeout(() => {
      child?.kill('SIGKILL');
      settle({
        errorType: 'Runtime.InitTimeout',
        errorMessage: `The runtime did not ask for an event within ${INIT_TIMEOUT_MS} ms of starting.`,
      });
    }, INIT_TIMEOUT_MS);
    const settle = (error) => {
      if (init !== settle) return;
      init = null;
      clearTimeout(timer);
      if (error) {
        child?.kill('SIGKILL');
        child = null;
      }
      resolve(error ? { ok: false, error } : { ok: true });
    };
    init = settle;
    if (!fs.existsSync(file)) {
      return settle({
        errorType: 'Runtime.InvalidEntrypoint',
        errorMessage: `Couldn't find valid bootstrap(s): [${file}]`,
      });
    }
    const proc = spawn(file, [], { cwd: TASK_DIR, env: runtimeEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    for (const stream of ['stdout', 'stderr']) {
      const decoder = new StringDecoder('utf8');
      proc[stream].on('data', (chunk) => capture(stream, decoder.write(chunk)));
    }
    const closed = new Promise((r) => proc.on('close', r));
    proc.on('error', (err) => {
      if (child === proc) child = null;
      settle({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: cut(`${file}: ${err.message}`) });
    });
    proc.on('exit', async (code, signal) => {
      // Not live: killed after a failed init, whose call has its answer already.
      const live = child === proc;
      if (live) child = null;
      // Its last words (a panic on stderr) belong to the call; a grandchild holding the pipes must not hold us.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 200))]);
      const status = exitStatus(code, signal);
      settle({ errorType: 'Runtime.ExitError', errorMessage: `Runtime exited with error: ${status}` });
      if (!live) return;
      waitingNext?.destroy();
      waitingNext = null;
      current?.settle({
        ok: false,
        error: {
          errorType: 'Runtime.ExitError',
          errorMessage: `RequestId: ${current.id} Error: Runtime exited with error: ${status}`,
        },
      });
    });
  });
}

// --- the Runtime API ---

const json = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

/** The body, or `over` once it passed `limit` (read to its end all the same, so the answer arrives). */
const readBody = (req, limit) =>
  new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve({ body: Buffer.concat(chunks), size, over: size > limit }));
    req.on('error', () => resolve({ body: Buffer.alloc(0), size, over: false, broken: true }));
  });

const traceId = () =>
  `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${crypto.randomBytes(12).toString('hex')};Parent=${crypto.randomBytes(8).toString('hex')};Sampled=0`;

function dispatch() {
  if (!current || current.sent || !waitingNext) return;
  const res = waitingNext;
  waitingNext = null;
  current.sent = true;
  const body = current.event === undefined ? '{}' : JSON.stringify(current.event);
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Lambda-Runtime-Aws-Request-Id': current.id,
    'Lambda-Runtime-Deadline-Ms': String(current.context.deadline ?? Date.now() + 900_000),
    'Lambda-Runtime-Invoked-Function-Arn': current.context.invokedFunctionArn ?? '',
    'Lambda-Runtime-Trace-Id': traceId(),
  });
  res.end(body);
}

/** A posted error document: Lambda's {errorMessage, errorType, stackTrace}, the header's type as a fallback. */
function postedError(req, body, fallbackType) {
  const text = body.toString('utf8');
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const header = req.headers['lambda-runtime-function-error-type'];
  const error = {
    errorType: cut(String(doc?.errorType || header || fallbackType)),
    errorMessage: cut(
      typeof doc?.errorMessage === 'string' ? doc.errorMessage : doc === undefined ? text : '',
    ),
  };
  if (Array.isArray(doc?.stackTrace)) {
    let room = ERROR_CAP;
    error.stackTrace = [];
    for (const line of doc.stackTrace.map(String)) {
      if (line.length > room) break;
      error.stackTrace.push(line);
      room -= line.length;
    }
    error.stack = error.stackTrace.join('\n');
  }
  return error;
}

const invocationPath = new RegExp(`^${API}/invocation/([^/]+)/(response|error)$`);

async function route(req, res) {
  const url = req.url ?? '';
  if (req.method === 'GET' && url === `${API}/invocation/next`) {
    if (waitingNext) waitingNext.destroy();
    waitingNext = res;
    res.on('close', () => {
      if (waitingNext === res) waitingNext = null;
    });
    init?.();
    return dispatch();
  }
  if (req.method === 'POST' && url === `${API}/init/error`) {
    const { body } = await readBody(req, MAX_ERROR_BODY);
    if (!init)
      return json(res, 403, {
        errorType: 'InvalidStateTransition',
        errorMessage: 'The runtime is past its init.',
      });
    json(res, 202, { status: 'OK' });
    return init(postedError(req, body, 'Runtime.InitError'));
  }
  const match = req.method === 'POST' ? invocationPath.exec(url) : null;
  if (!match) {
    await readBody(req, 0);
    return json(res, 404, {
      errorType: 'NotFound',
      errorMessage: `No such Runtime API route: ${req.method} ${url}`,
    });
  }
  const [, id, kind] = match;
  const call = current?.sent && decodeURIComponent(id) === current.id ? current : undefined;
  const limit = kind === 'response' ? (call?.limit ?? MAX_RESULT_BYTES) : MAX_ERROR_BODY;
  const { body, size, over } = await readBody(req, limit);
  if (!call || current !== call)
    return json(res, 400, {
      errorType: 'InvalidRequestID',
      errorMessage: 'No call in progress has this request id.',
    });
  if (kind === 'error') {
    json(res, 202, { status: 'OK' });
    return call.settle({ ok: false, error: postedError(req, body, 'Runtime.Unknown') });
  }
  if (over) {
    json(res, 413, {
      errorType: 'RequestEntityTooLarge',
      errorMessage: `The response is ${size} bytes, over ${limit}.`,
    });
    return call.settle({ ok: false, error: tooLarge(size, limit) });
  }
  json(res, 202, { status: 'OK' });
  call.settle({ ok: true, result: parseResult(body) });
}

const tooLarge = (bytes, limit) => ({
  errorType: 'ResultTooLarge',
  errorMessage: `The result is ${bytes} bytes, over the ${limit}-byte limit for a function result; put large data in S3/MinIO and return its key instead.`,
});

/** Lambda passes a response's bytes on as they are; a Dockhand result is JSON, so other text is a string. */
function parseResult(body) {
  const text = body.toString('utf8');
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    if (!res.headersSent) json(res, 500, { errorType: 'Runtime.InternalError', errorMessage: String(err) });
  });
});
// A warm runtime waits on /next for as long as the container is idle.
server.requestTimeout = 0;
server.headersTimeout = 0;
server.keepAliveTimeout = 0;
const [apiHost, apiPort] = API_ADDRESS.split(':');
const listening = new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(apiPort), apiHost, resolve);
});

// --- the host's frames ---

function logStreamName(version) {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  return `${day}/[${version || '$LATEST'}]${crypto.randomBytes(16).toString('hex')}`;
}

async function load(message) {
  fs.mkdirSync(TASK_DIR, { recursive: true });
  for (const [file, content] of Object.entries(message.files)) {
    const target = path.join(TASK_DIR, file);
    if (!target.startsWith(`${TASK_DIR}/`))
      throw new Error(`Refusing file outside the task directory: ${file}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // A zip's mode bits do not survive into `files`: everything may run, as the bootstrap must.
    fs.writeFileSync(target, Buffer.from(content, 'base64'), { mode: 0o755 });
  }
  const env = message.env ?? {};
  runtimeEnv = {
    ...process.env,
    LD_LIBRARY_PATH: `/lib64:/usr/lib64:${TASK_DIR}:${TASK_DIR}/lib`,
    ...env,
    AWS_LAMBDA_LOG_STREAM_NAME:
      env.AWS_LAMBDA_LOG_STREAM_NAME ?? logStreamName(env.AWS_LAMBDA_FUNCTION_VERSION),
    LAMBDA_TASK_ROOT: env.LAMBDA_TASK_ROOT ?? TASK_DIR,
    _HANDLER: message.handler,
    // Not the function's to change: it is how its runtime finds us.
    AWS_LAMBDA_RUNTIME_API: API_ADDRESS,
  };
  await listening;
  return startRuntime();
}

async function invoke(message) {
  const budget = Number(message.liveLogChars) || 0;
  liveLeft = budget > 0 ? budget + 1 : 0;
  const context = message.context ?? {};
  const limit = Number(message.maxResultBytes) || MAX_RESULT_BYTES;
  // After a crash the runtime starts again, as Lambda resets an environment after Runtime.ExitError.
  const started = child ? { ok: true } : await startRuntime();
  const outcome = started.ok
    ? await new Promise((settle) => {
        current = {
          id: String(context.requestId ?? crypto.randomUUID()),
          context,
          event: message.event,
          limit,
          sent: false,
          settle: (o) => settle(o),
        };
        dispatch();
      })
    : started;
  current = null;
  // Output written before the runtime posted its answer is read by now, or in this turn.
  await new Promise((r) => setImmediate(r));
  let result = outcome.ok ? outcome.result : null;
  let error = outcome.ok ? undefined : outcome.error;
  if (outcome.ok) {
    const bytes = Buffer.byteLength(JSON.stringify(result ?? null));
    if (bytes > limit) {
      result = null;
      error = tooLarge(bytes, limit);
    }
  }
  reply({
    type: 'result',
    id: message.id,
    ok: error === undefined,
    ...(error === undefined ? { result } : { error }),
    ...takeLogs(),
    streamed: budget > 0,
  });
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      return reply({
        type: 'error',
        error: { errorType: 'ProtocolError', errorMessage: 'Invalid JSON frame.' },
      });
    }
    if (message.type === 'load') {
      try {
        const started = await load(message);
        if (started.ok) reply({ type: 'loaded', id: message.id, ok: true });
        else
          reply({ type: 'loaded', id: message.id, ok: false, error: started.error, logs: takeLogs().logs });
      } catch (err) {
        reply({ type: 'loaded', id: message.id, ok: false, error: describe(err), logs: takeLogs().logs });
      }
    } else if (message.type === 'invoke') {
      await invoke(message);
    } else if (message.type === 'ping') {
      reply({ type: 'pong', id: message.id });
    }
  });
  chain = chain.catch(() => process.exit(70));
});
lines.on('close', () =>
  chain.then(() => {
    child?.kill('SIGKILL');
    process.exit(0);
  }),
);
reply({ type: 'ready', runtime: 'provided', version: process.version });
