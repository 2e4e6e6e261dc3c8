// What the three benches share. The rule they follow (docs/benchmarks.md): measure what
// `npm start` gives a user first, beside its raw baseline in the same run; tuned variants
// after, labelled with what they change; BENCH_RUNS runs (default 3), min / median / max.
//
// Dockhand is a separate process here, started as `npm start` starts it (`node
// scripts/dockhand.js all`); the bench process is only its client.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Pool, request } from 'undici';
import { loadConfig } from '../core/config.ts';
import { coerceError, errorCode } from '../core/errors.ts';
import { OWNER_LABEL } from '../runtimes/docker-sandbox.ts';
import { wipePrefix } from '../test/helpers/env.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = path.resolve(import.meta.dirname, '..');

/** A whole number from the bench's own environment (BENCH_*), or the fallback. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a whole number ≥ 1 (got ${raw}).`);
  return value;
}

/** Runs per bench, each on a fresh server (BENCH_RUNS, default 3). */
export const RUNS = envInt('BENCH_RUNS', 3);
/** What a user gets with no environment at all. */
export const DEFAULTS = loadConfig({});
/** Every container a bench makes itself carries this label with this run's id, so cleanup finds exactly them. */
export const BENCH_LABEL = 'dockhand.bench';
export const RUN_ID = randomBytes(4).toString('hex');
/** Logs and data directories of this bench process; removed at the end (kept with BENCH_KEEP_LOGS=1). */
export const WORKDIR = mkdtempSync(path.join(tmpdir(), 'dockhand-bench-'));
export const docker = new Docker();

// --- teardown ----------------------------------------------------------------------------

const cleanups: Array<() => Promise<void>> = [];

/**
 * Registers teardown that runs at the end even when the bench fails, times out or is
 * interrupted. Returns a function that runs it now instead (once).
 */
export function defer(fn: () => Promise<unknown> | unknown): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = () => {
    done ??= (async () => {
      const at = cleanups.indexOf(run);
      if (at >= 0) cleanups.splice(at, 1);
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup failed: ${coerceError(err).message}`);
      }
    })();
    return done;
  };
  cleanups.push(run);
  return run;
}

async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) await cleanups[cleanups.length - 1]?.();
  await removeContainers(`${BENCH_LABEL}=${RUN_ID}`);
  if (process.env.BENCH_KEEP_LOGS) console.log(`logs kept in ${WORKDIR}`);
  else rmSync(WORKDIR, { recursive: true, force: true });
}

/**
 * The entry point of a bench: bounded in time (BENCH_DEADLINE_SECONDS, default 900 or the
 * bench's own), and whatever happens, every server, child, container, Redis prefix and temp
 * dir it made goes.
 */
export async function runBench(
  name: string,
  body: () => Promise<void>,
  { deadlineSeconds = 900 }: { deadlineSeconds?: number } = {},
): Promise<never> {
  const started = performance.now();
  const deadline = envInt('BENCH_DEADLINE_SECONDS', deadlineSeconds);
  let code = 0;
  const abort = async (why: string) => {
    console.error(`\n${name}: ${why}; cleaning up.`);
    await cleanupAll();
    process.exit(1);
  };
  const timer = setTimeout(() => void abort(`over its ${deadline} s deadline`), deadline * 1000);
  process.once('SIGINT', () => void abort('interrupted'));
  process.once('SIGTERM', () => void abort('terminated'));
  try {
    await body();
  } catch (err) {
    console.error(`\n${name} failed: ${coerceError(err).stack}`);
    code = 1;
  } finally {
    clearTimeout(timer);
    await cleanupAll();
  }
  console.log(`\n${name} took ${((performance.now() - started) / 1000).toFixed(0)} s.`);
  process.exit(code);
}

// The same prefix wipe the tests use: one piece of code for it.
export { wipePrefix };

/** A fresh queue prefix, wiped at the end. */
export function freshPrefix(kind: string): string {
  const prefix = `bench-${kind}-${randomBytes(4).toString('hex')}`;
  defer(() => wipePrefix(prefix));
  return prefix;
}

// --- the server process ------------------------------------------------------------------

/** A server configuration: npm start's defaults plus `env` (a value of undefined unsets the variable). */
export interface Variant {
  label: string;
  env: Record<string, string | undefined>;
}

/** npm start's defaults, with API_KEYS set as any deployment reachable by others has it. */
export const DEFAULT_VARIANT: Variant = { label: 'npm start defaults', env: {} };
/** What DEFAULT_VARIANT means, for the header of a bench's output. */
export const DEFAULTS_DESCRIPTION =
  `API_KEYS set (auth on, the client sends Authorization: Bearer), ` +
  `RATE_LIMIT_PER_MINUTE=${DEFAULTS.server.rateLimitPerMinute}, LOG_LEVEL=${DEFAULTS.server.logLevel}, ` +
  'every other setting at its default, a fresh QUEUE_PREFIX, PORT and DATA_DIR';
export const TUNED_VARIANT: Variant = {
  label: 'tuned: auth off, rate limit off, LOG_LEVEL=warn',
  env: { API_KEYS: undefined, RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' },
};

export interface Server {
  url: string;
  pid: number;
  prefix: string;
  dataDir: string;
  /** The Authorization header for the API; none when auth is off. */
  headers: Record<string, string>;
  readySeconds: number;
  /** SIGTERM, then SIGKILL after 30 s; then its containers, Redis keys and own data dir go. Close clients first. */
  stop(): Promise<LogSummary>;
}

export interface LogSummary {
  lines: number;
  byLevel: Record<string, number>;
  /** Distinct messages at warn or above, with counts. */
  notable: Record<string, number>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const pick = (...names: string[]) =>
  Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n] as string]] : [])));

export interface ServerOptions {
  /** Shared with other processes (then kept at the end); default a fresh one per server. */
  dataDir?: string;
  env?: Record<string, string>;
  /** The process role (`dockhand <role>`); default `all`, what npm start runs. */
  role?: 'all' | 'gateway' | 'worker';
  /** Another Redis than REDIS_URL (a private server the caller stops); its keys are left to it. */
  redisUrl?: string;
  /** A queue prefix shared with other processes (a gateway and its workers); default a fresh one. */
  prefix?: string;
  /** The API key; processes of one installation share it. Default a fresh one. */
  apiKey?: string;
}

/**
 * Starts `node scripts/dockhand.js all` (or another role) with a clean environment: only what
 * locates the machine's Redis, Docker and images, then this server's own prefix, port, data
 * dir and key, then the variant's changes. Nothing a developer exported for tuning leaks in.
 * A worker listens (ops routes) on WORKER_METRICS_PORT: it gets a free port, as two workers on
 * one host need.
 */
export async function startServer(variant: Variant, options: ServerOptions = {}): Promise<Server> {
  const role = options.role ?? 'all';
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const prefix =
    options.prefix ?? (options.redisUrl ? `bench-dh-${randomBytes(4).toString('hex')}` : freshPrefix('dh'));
  const port = await freePort();
  const dataDir = options.dataDir ?? mkdtempSync(path.join(WORKDIR, 'data-'));
  const apiKey = options.apiKey ?? `bench-${randomBytes(12).toString('hex')}`;
  const env: Record<string, string | undefined> = {
    ...pick(
      'PATH',
      'HOME',
      'DOCKER_HOST',
      'RUNTIME_IMAGE_NODE20',
      'RUNTIME_IMAGE_PYTHON3',
      'RUNTIME_IMAGE_PROVIDED',
    ),
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    PORT: String(port),
    ...(role === 'worker' ? { WORKER_METRICS_PORT: String(port) } : {}),
    DATA_DIR: dataDir,
    API_KEYS: apiKey,
    LOG_LEVEL: 'info',
    ...options.env,
    ...variant.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const logFile = path.join(WORKDIR, `${role}-${prefix}-${port}.log`);
  const log = openSync(logFile, 'a');
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/dockhand.js'), role], {
    cwd: ROOT,
    env,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(`exited with ${signal ?? code}`)),
  );
  const pid = child.pid as number;
  const stop = defer(async () => {
    await stopServer(child, exited, pid);
    if (options.prefix === undefined && options.redisUrl === undefined) await wipePrefix(prefix);
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, exited);
  } catch (err) {
    console.error(`--- ${logFile} (last lines) ---\n${tail(logFile, 30)}`);
    await stop();
    throw err;
  }
  return {
    url,
    pid,
    prefix,
    dataDir,
    headers: env.API_KEYS ? { authorization: `Bearer ${apiKey}` } : {},
    readySeconds: (performance.now() - t0) / 1000,
    stop: async () => {
      await stop();
      return summarizeLog(logFile);
    },
  };
}

/** Polls /ready with a backoff from 50 ms to 1 s, for at most 120 s or until the process exits. */
async function waitReady(url: string, exited: Promise<string>): Promise<void> {
  const until = performance.now() + 120_000;
  let delay = 50;
  let gone: string | undefined;
  void exited.then((why) => {
    gone = why;
  });
  while (performance.now() < until) {
    if (gone) throw new Error(`The server ${gone} before it was ready.`);
    try {
      const res = await request(`${url}/ready`, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // Not listening yet: the next attempt tells.
    }
    await Promise.race([new Promise((r) => setTimeout(r, delay)), exited]);
    delay = Math.min(1000, delay * 1.5);
  }
  throw new Error(`The server at ${url} was not ready within 120 s.`);
}

async function stopServer(child: ChildProcess, exited: Promise<string>, pid: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), 30_000);
      }),
    ]);
    clearTimeout(timer);
    if (late) {
      console.error(`server ${pid} did not stop within 30 s of SIGTERM: SIGKILL`);
      child.kill('SIGKILL');
      await exited;
    }
  }
  // Containers the server left (only after a SIGKILL): its own, by its host/pid owner label.
  await removeContainers(`${OWNER_LABEL}=${hostname()}/${pid}`);
}

/** Removes the containers carrying one label (`key=value`): only ones this bench made or started. */
async function removeContainers(label: string): Promise<void> {
  const found = await docker.listContainers({ all: true, filters: { label: [label] } });
  // Already gone (removed by its own server meanwhile): the goal is reached.
  await Promise.all(
    found.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}

function tail(file: string, n: number): string {
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

function summarizeLog(file: string): LogSummary {
  const summary: LogSummary = { lines: 0, byLevel: {}, notable: {} };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    summary.lines++;
    let level = 'unparsed';
    let msg = line.slice(0, 120);
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      level = LEVELS[entry.level ?? 0] ?? String(entry.level);
      msg = `${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(0, 160);
    } catch {
      // Not pino's JSON (a stack, a warning from Node): counted as it is.
    }
    summary.byLevel[level] = (summary.byLevel[level] ?? 0) + 1;
    if (!['trace', 'debug', 'info'].includes(level)) summary.notable[msg] = (summary.notable[msg] ?? 0) + 1;
  }
  return summary;
}

export function describeLog(s: LogSummary): string {
  const levels = Object.entries(s.byLevel)
    .map(([l, n]) => `${l} ${n}`)
    .join(', ');
  const notable = Object.entries(s.notable)
    .map(([m, n]) => `\n    ${n} × ${m}`)
    .join('');
  return `server log: ${s.lines} lines${levels ? ` (${levels})` : ''}${notable}`;
}

/** An HTTP client to the server: an undici Pool over loopback, keep-alive, bounded waits. */
export function apiClient(server: Server, connections: number) {
  const pool = new Pool(server.url, {
    connections,
    pipelining: 1,
    headersTimeout: 90_000,
    bodyTimeout: 90_000,
  });
  const close = defer(() => pool.close());
  return {
    async call(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) {
      const res = await pool.request({
        method,
        path,
        headers:
          body === undefined ? server.headers : { ...server.headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = { text };
      }
      return { status: res.statusCode, json };
    },
    close,
  };
}

// --- timing and figures ------------------------------------------------------------------

export interface Figures {
  calls: number;
  ok: number;
  p50: number;
  p99: number;
  /** Successful calls per second of wall time. */
  perSecond: number;
  /** Failed calls by cause: an HTTP status, `200 <status>` for a failed invocation, an errno. */
  failures: Record<string, number>;
}

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

export function figures(latencies: number[], seconds: number, calls: number, failures = {}): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    calls,
    ok: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    perSecond: seconds > 0 ? sorted.length / seconds : 0,
    failures,
  };
}

/**
 * `n` calls from `concurrency` loops, each awaiting its call. A call answers undefined when it
 * succeeded, else why it failed; only successes are timed, failures are counted by cause.
 */
export async function timed(
  n: number,
  concurrency: number,
  call: () => Promise<string | undefined>,
): Promise<Figures> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) {
        const s = performance.now();
        let failed: string | undefined;
        try {
          failed = await call();
        } catch (err) {
          failed = errorCode(err) ?? coerceError(err).name;
        }
        if (failed === undefined) latencies.push(performance.now() - s);
        else failures[failed] = (failures[failed] ?? 0) + 1;
      }
    }),
  );
  return figures(latencies, (performance.now() - t0) / 1000, n, failures);
}

export const failedCount = (f: Figures) => f.calls - f.ok;
const describeFailures = (f: Record<string, number>) =>
  Object.entries(f)
    .map(([cause, n]) => `${cause} ×${n}`)
    .join(', ');

const firstMessages = new Map<string, string>();

/**
 * Why a call failed, as a short cause for the counts (`503 invocation_failed`), keeping the
 * first full message of each cause for the report (failureMessages()).
 */
export function failure(cause: string, message?: unknown): string {
  if (!firstMessages.has(cause) && message !== undefined)
    firstMessages.set(cause, String(message).slice(0, 300));
  return cause;
}

/** The first message seen for each cause of failure, one line each. */
export function failureMessages(): string {
  return [...firstMessages].map(([cause, message]) => `- ${cause}: ${message}`).join('\n');
}

/** Every call should succeed: anything else is printed so that it cannot be missed. */
export function shoutFailures(label: string, f: Pick<Figures, 'calls' | 'failures'>): void {
  const failed = Object.values(f.failures).reduce((a, b) => a + b, 0);
  if (failed === 0) return;
  console.log(`\n!!! FAILED CALLS — ${label}: ${failed} of ${f.calls} (${describeFailures(f.failures)}) !!!`);
}

export function mergeFailures(all: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of all) for (const [k, n] of Object.entries(f)) out[k] = (out[k] ?? 0) + n;
  return out;
}

// --- tables ------------------------------------------------------------------------------

export const ms = (x: number) => x.toFixed(2);
export const int = (x: number) => x.toFixed(0);

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** `min / median / max` of one figure over the runs. */
export function spread(xs: number[], format: (x: number) => string = ms): string {
  if (xs.length === 0) return '–';
  return `${format(Math.min(...xs))} / ${format(median(xs))} / ${format(Math.max(...xs))}`;
}

/** A goal, printed with its figure and whether it was met: never asserted. */
export function goal(what: string, figure: string, met: boolean): void {
  console.log(`Goal: ${what}: ${figure} — ${met ? 'met' : 'MISSED'}`);
}

/** A markdown table with padded columns, ready to paste. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** One row per label: p50, p99 and per second as min / median / max over the runs, failed calls summed. */
export function summaryTable(runs: Array<Map<string, Figures>>, unit = 'per s'): string {
  const labels = [...new Set(runs.flatMap((r) => [...r.keys()]))];
  const rows = labels.map((label) => {
    const fs = runs.flatMap((r) => (r.has(label) ? [r.get(label) as Figures] : []));
    const failed = fs.reduce((a, f) => a + failedCount(f), 0);
    return [
      label,
      spread(fs.map((f) => f.p50)),
      spread(fs.map((f) => f.p99)),
      spread(
        fs.map((f) => f.perSecond),
        int,
      ),
      failed === 0 ? '0' : `**${failed}** (${describeFailures(mergeFailures(fs.map((f) => f.failures)))})`,
    ];
  });
  return table(['path', 'p50 ms', 'p99 ms', unit, 'failed'], rows);
}

/** One run's rows: p50, p99, per second and failed calls. */
export function runTable(run: Map<string, Figures>, unit = 'per s'): string {
  return table(
    ['path', 'p50 ms', 'p99 ms', unit, 'failed'],
    [...run].map(([label, f]) => [
      label,
      ms(f.p50),
      ms(f.p99),
      int(f.perSecond),
      failedCount(f) === 0 ? '0' : `**${failedCount(f)}** (${describeFailures(f.failures)})`,
    ]),
  );
}
