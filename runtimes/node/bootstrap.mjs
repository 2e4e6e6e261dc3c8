// Runs inside a node20 function container as its only process. Protocol: one JSON message
// per line on stdin; replies are lines on stdout starting with the frame mark, so anything
// else that reaches stdout (a child process, a native module) is treated as log, never as a
// reply. What the handler prints through console/process.stdout is captured per invocation.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

const MARK = '\x1eDH ';
const TASK_DIR = '/tmp/task';
const LOG_CAP = Number(process.env.DOCKHAND_LOG_CAP || 262144);
// The host sends its limit with each call (maxResultBytes); this is for a host that does not.
const MAX_RESULT_BYTES = 6 * 1024 * 1024;
// An error's text is cut here, so that a reply always fits the host's frame cap (result cap + 4 MiB).
const ERROR_CAP = 65536;

// stdout is a pipe Node may have made non-blocking: a large reply (256 KiB of logs) fills it
// and writeSync throws EAGAIN mid-frame. Write it all, pausing 1 ms while the host drains.
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

let logs = [];
let logBytes = 0;
let logsTruncated = false;

// Live logs: while a call runs, what it prints also goes to the host as it is written, in
// `log` frames, up to the host's budget for the call (`liveLogChars`; absent: not streamed).
// One character past the budget is sent so the host knows the output was cut and says so.
// Pieces are joined per event-loop turn (or every LIVE_FRAME_CHARS) so a chatty loop costs
// a frame per batch, not per line; a pending batch is sent before the call's reply.
const LIVE_FRAME_CHARS = 16384;
let liveLeft = 0;
let livePending = [];
let livePendingChars = 0;
let liveScheduled = false;
const liveFlush = () => {
  liveScheduled = false;
  if (livePending.length === 0) return;
  const pieces = livePending;
  livePending = [];
  livePendingChars = 0;
  let stream = pieces[0][0];
  let parts = [];
  let chars = 0;
  const send = () => {
    try {
      if (parts.length > 0) reply({ type: 'log', stream, text: parts.join('') });
    } catch {
      // Printing never throws into the handler; the call's reply will meet the same pipe.
      liveLeft = 0;
    }
    parts = [];
    chars = 0;
  };
  for (const [s, text] of pieces) {
    if (s !== stream) {
      send();
      stream = s;
    }
    for (let i = 0; i < text.length; i += LIVE_FRAME_CHARS) {
      const piece = text.slice(i, i + LIVE_FRAME_CHARS);
      parts.push(piece);
      chars += piece.length;
      if (chars >= LIVE_FRAME_CHARS) send();
    }
  }
  send();
};
const liveWrite = (stream, text) => {
  if (liveLeft <= 0 || text.length === 0) return;
  const piece = text.length > liveLeft ? text.slice(0, liveLeft) : text;
  liveLeft -= piece.length;
  livePending.push([stream, piece]);
  livePendingChars += piece.length;
  if (livePendingChars >= LIVE_FRAME_CHARS) liveFlush();
  else if (!liveScheduled) {
    liveScheduled = true;
    setImmediate(liveFlush);
  }
};

const captureFor = (stream) => (chunk, encoding, callback) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  if (logBytes + text.length > LOG_CAP) {
    logsTruncated = true;
    const room = LOG_CAP - logBytes;
    if (room > 0) logs.push(text.slice(0, room));
    logBytes = LOG_CAP;
  } else {
    logs.push(text);
    logBytes += text.length;
  }
  liveWrite(stream, text);
  const cb = typeof encoding === 'function' ? encoding : callback;
  if (cb) cb();
  return true;
};
process.stdout.write = captureFor('stdout');
process.stderr.write = captureFor('stderr');

/** Ends the call's live log: what is pending goes now, nothing after. */
const liveEnd = () => {
  liveFlush();
  liveLeft = 0;
};

const cut = (text) =>
  typeof text === 'string' && text.length > ERROR_CAP ? `${text.slice(0, ERROR_CAP)} [cut]` : text;
// `stackTrace` is Lambda's form of the stack (its lines); `stack` is Dockhand's (one string).
const describe = (err) => {
  if (!(err instanceof Error)) return { errorType: 'Error', errorMessage: cut(String(err)) };
  const stack = cut(err.stack);
  return {
    errorType: cut(err.name),
    errorMessage: cut(err.message),
    stack,
    ...(typeof stack === 'string' ? { stackTrace: stack.split('\n') } : {}),
  };
};

process.on('uncaughtException', (err) => {
  liveEnd();
  reply({ type: 'fatal', error: describe(err) });
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  liveEnd();
  reply({ type: 'fatal', error: describe(err) });
  process.exit(1);
});

let handler;

/** Lambda's name for one container's log stream: `2024/05/01/[$LATEST]` and 32 hex digits. */
const logStreamName = () => {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const version = process.env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST';
  return `${day}/[${version}]${crypto.randomBytes(16).toString('hex')}`;
};

// Lambda answers a callback-style handler once the event loop is empty (unless the handler
// sets callbackWaitsForEmptyEventLoop = false). This loop never empties (stdin is read), so
// "empty" is: no more timers, sockets or requests than before the call began (unref'd ones,
// such as an HTTP agent's idle keep-alive sockets, never count). Immediates are left out:
// they run within the turn anyway, and the live log uses them.
const activeCounts = () => {
  const counts = new Map();
  for (const kind of process.getActiveResourcesInfo())
    if (kind !== 'Immediate') counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
};
const whenLoopEmpty = (baseline) =>
  new Promise((resolve) => {
    const check = () => {
      for (const [kind, n] of activeCounts()) {
        // unref'd, so the poll itself is never among the timers it counts.
        if (n > (baseline.get(kind) ?? 0)) return setTimeout(check, 2).unref();
      }
      resolve();
    };
    setTimeout(check, 0).unref();
  });

/**
 * Lambda's Node context, with Dockhand's own fields (requestId, memoryLimitInMB as a number,
 * deadline) kept. `finish` ends the call; `succeed`, `fail` and `done` end it at once.
 */
function lambdaContext(ctx, finish, flags) {
  const env = process.env;
  const context = {
    ...ctx,
    awsRequestId: ctx.requestId,
    functionName: ctx.functionName ?? env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    invokedFunctionArn: ctx.invokedFunctionArn,
    memoryLimitInMB: ctx.memoryLimitInMB ?? env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: undefined,
    identity: undefined,
    getRemainingTimeInMillis: () => Math.max(0, (ctx.deadline ?? 0) - Date.now()),
    succeed: (result) => finish(null, result),
    fail: (err) => finish(err ?? 'handled'),
    done: (err, result) => finish(err, result),
  };
  Object.defineProperty(context, 'callbackWaitsForEmptyEventLoop', {
    enumerable: true,
    get: () => flags.waitForEmptyLoop,
    set: (value) => {
      flags.waitForEmptyLoop = Boolean(value);
    },
  });
  return context;
}

/**
 * Runs the handler as Lambda does: an async handler's promise, a callback, context.succeed/
 * fail/done, whichever comes first. A plain return value is the result too (Dockhand's
 * handlers may be synchronous); a handler that returns nothing and never calls back answers
 * null once the event loop is empty.
 */
function runHandler(event, ctx) {
  return new Promise((resolve) => {
    const flags = { waitForEmptyLoop: true };
    const baseline = activeCounts();
    let settled = false;
    let called;
    let watching = false;
    const finish = (err, result) => {
      if (settled) return;
      settled = true;
      resolve(err === null || err === undefined ? { ok: true, result } : { ok: false, error: err });
    };
    const watchLoop = () => {
      if (watching) return;
      watching = true;
      whenLoopEmpty(baseline).then(() => finish(called?.err, called ? called.result : null));
    };
    const callback = (err, result) => {
      if (settled || called) return;
      called = { err, result };
      if (flags.waitForEmptyLoop) watchLoop();
      else finish(err, result);
    };
    const context = lambdaContext(ctx, finish, flags);
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (err) {
      return finish(err ?? new Error('The handler threw a nullish value.'));
    }
    if (returned && typeof returned.then === 'function')
      returned.then(
        (result) => finish(null, result),
        (err) => finish(err ?? new Error('The handler rejected with a nullish value.')),
      );
    else if (returned !== undefined) finish(null, returned);
    else watchLoop();
  });
}

async function load(message) {
  fs.mkdirSync(TASK_DIR, { recursive: true });
  for (const [file, content] of Object.entries(message.files)) {
    const target = path.join(TASK_DIR, file);
    if (!target.startsWith(`${TASK_DIR}/`))
      throw new Error(`Refusing file outside the task directory: ${file}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, Buffer.from(content, 'base64'));
  }
  Object.assign(process.env, message.env ?? {});
  // What only this process knows, unless the function set it itself.
  process.env.AWS_EXECUTION_ENV ??= `AWS_Lambda_nodejs${process.versions.node.split('.')[0]}.x`;
  process.env.AWS_LAMBDA_LOG_STREAM_NAME ??= logStreamName();
  process.env.LAMBDA_TASK_ROOT ??= TASK_DIR;
  process.chdir(TASK_DIR);
  const dot = message.handler.lastIndexOf('.');
  const modulePath = message.handler.slice(0, dot);
  const exportName = message.handler.slice(dot + 1);
  const candidates = ['.mjs', '.js', '.cjs'].map((ext) => path.join(TASK_DIR, `${modulePath}${ext}`));
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) throw new Error(`Handler module ${modulePath} not found (tried .mjs, .js, .cjs).`);
  const mod = await import(pathToFileURL(file).href);
  const fn = mod[exportName] ?? mod.default?.[exportName];
  if (typeof fn !== 'function') throw new Error(`${file} does not export a function named ${exportName}.`);
  handler = fn;
}

async function invoke(message) {
  logs = [];
  logBytes = 0;
  logsTruncated = false;
  livePending = [];
  livePendingChars = 0;
  const liveBudget = Number(message.liveLogChars) || 0;
  liveLeft = liveBudget > 0 ? liveBudget + 1 : 0;
  // Tells the host its logs were streamed, so it does not send them again from the reply.
  const streamed = liveBudget > 0;
  try {
    const outcome = await runHandler(message.event, message.context ?? {});
    if (!outcome.ok) throw outcome.error;
    const result = outcome.result;
    const json = JSON.stringify(result === undefined ? null : result);
    // Measured here, before writing, so an oversized result never crosses the pipe.
    const bytes = typeof json === 'string' ? Buffer.byteLength(json) : 0;
    const limit = Number(message.maxResultBytes) || MAX_RESULT_BYTES;
    if (bytes > limit) {
      liveEnd();
      return reply({
        type: 'result',
        id: message.id,
        ok: false,
        error: {
          errorType: 'ResultTooLarge',
          errorMessage: `The result is ${bytes} bytes, over the ${limit}-byte limit for a function result; put large data in S3/MinIO and return its key instead.`,
        },
        logs: logs.join(''),
        logsTruncated,
        streamed,
      });
    }
    liveEnd();
    reply({
      type: 'result',
      id: message.id,
      ok: true,
      result: JSON.parse(json),
      logs: logs.join(''),
      logsTruncated,
      streamed,
    });
  } catch (err) {
    liveEnd();
    reply({
      type: 'result',
      id: message.id,
      ok: false,
      error: describe(err),
      logs: logs.join(''),
      logsTruncated,
      streamed,
    });
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
let chain = Promise.resolve();
lines.on('line', (line) => {
  // One message at a time, in order: a container runs one invocation at once.
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
        await load(message);
        reply({ type: 'loaded', id: message.id, ok: true });
      } catch (err) {
        reply({ type: 'loaded', id: message.id, ok: false, error: describe(err) });
      }
    } else if (message.type === 'invoke') {
      await invoke(message);
    } else if (message.type === 'ping') {
      reply({ type: 'pong', id: message.id });
    }
  });
  // A reply that cannot be written leaves the host waiting: better to end, so it sees why.
  chain = chain.catch(() => process.exit(70));
});
lines.on('close', () => chain.then(() => process.exit(0)));
reply({ type: 'ready', runtime: 'node20', version: process.version });
