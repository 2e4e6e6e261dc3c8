// Runs inside a node20 function container as its only process. Protocol: one JSON message
// per line on stdin; replies are lines on stdout starting with the frame mark, so anything
// else that reaches stdout (a child process, a native module) is treated as log, never as a
// reply. What the handler prints through console/process.stdout is captured per invocation.
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
const capture = (chunk, encoding, callback) => {
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
  const cb = typeof encoding === 'function' ? encoding : callback;
  if (cb) cb();
  return true;
};
process.stdout.write = capture;
process.stderr.write = capture;

const cut = (text) =>
  typeof text === 'string' && text.length > ERROR_CAP ? `${text.slice(0, ERROR_CAP)} [cut]` : text;
const describe = (err) =>
  err instanceof Error
    ? { errorType: cut(err.name), errorMessage: cut(err.message), stack: cut(err.stack) }
    : { errorType: 'Error', errorMessage: cut(String(err)) };

process.on('uncaughtException', (err) => {
  reply({ type: 'fatal', error: describe(err) });
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  reply({ type: 'fatal', error: describe(err) });
  process.exit(1);
});

let handler;

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
  const ctx = message.context ?? {};
  const context = {
    ...ctx,
    awsRequestId: ctx.requestId,
    getRemainingTimeInMillis: () => Math.max(0, (ctx.deadline ?? 0) - Date.now()),
  };
  try {
    const result = await handler(message.event, context);
    const json = JSON.stringify(result === undefined ? null : result);
    // Measured here, before writing, so an oversized result never crosses the pipe.
    const bytes = typeof json === 'string' ? Buffer.byteLength(json) : 0;
    const limit = Number(message.maxResultBytes) || MAX_RESULT_BYTES;
    if (bytes > limit) {
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
      });
    }
    reply({
      type: 'result',
      id: message.id,
      ok: true,
      result: JSON.parse(json),
      logs: logs.join(''),
      logsTruncated,
    });
  } catch (err) {
    reply({
      type: 'result',
      id: message.id,
      ok: false,
      error: describe(err),
      logs: logs.join(''),
      logsTruncated,
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
