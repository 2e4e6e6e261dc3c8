import t from 'tap';
import { ApiError, createApi } from '../../console/src/api.ts';
import { ago, costPerMillion, ms } from '../../console/src/format.ts';
import { parseSse } from '../../console/src/sse.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch that records each call and answers from a queue of responses. */
function fakeFetch(...answers: Array<Response | (() => Response)>) {
  const calls: Call[] = [];
  const fetch = async (url: string | URL | Request, init: RequestInit = {}) => {
    calls.push({ url: String(url), init });
    const next = answers.shift();
    if (!next) throw new Error(`unexpected call ${url}`);
    return typeof next === 'function' ? next() : next;
  };
  return { calls, fetch: fetch as typeof globalThis.fetch };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });

const headersOf = (call: Call | undefined) => (call?.init.headers ?? {}) as Record<string, string>;

t.test('the key goes in the Authorization header, never in the URL', async (t) => {
  const { calls, fetch } = fakeFetch(json(200, { functions: [] }));
  const api = createApi({ fetch, getKey: () => 'secret-key' });
  await api.functions();
  t.equal(calls[0]?.url, '/functions');
  t.equal(headersOf(calls[0]).authorization, 'Bearer secret-key');
  t.notMatch(calls[0]?.url, /secret/);
  t.equal(calls[0]?.init.credentials, 'omit', 'no cookies either');
});

t.test('without a key no Authorization header is sent', async (t) => {
  const { calls, fetch } = fakeFetch(json(200, { nodes: [] }));
  await createApi({ fetch, getKey: () => undefined }).nodes();
  t.equal(headersOf(calls[0]).authorization, undefined);
  t.equal(calls[0]?.url, '/api/v1/nodes');
});

t.test('errors carry the contract fields, and a 401 asks for a key', async (t) => {
  const heard: ApiError[] = [];
  const { fetch } = fakeFetch(
    json(400, { error: 'validation_error', message: 'body.memoryMb must be >= 64.', field: 'body.memoryMb' }),
    json(401, { error: 'unauthorized', message: 'The API key is not valid.' }),
    new Response('upstream down', { status: 502, statusText: 'Bad Gateway' }),
  );
  const api = createApi({ fetch, onUnauthorized: (e) => heard.push(e) });
  const bad = await api
    .deploy('f', {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 1,
      timeoutMs: 1,
      code: { files: {} },
    })
    .catch((e) => e);
  t.ok(bad instanceof ApiError);
  t.equal(bad.status, 400);
  t.equal(bad.code, 'validation_error');
  t.equal(bad.field, 'body.memoryMb');
  t.equal(bad.message, 'body.memoryMb must be >= 64.');
  const refused = await api.queues().catch((e) => e);
  t.equal(refused.status, 401);
  t.equal(heard.length, 1, 'told of the 401');
  const other = await api.batches().catch((e) => e);
  t.equal(other.status, 502);
  t.equal(other.message, '502 Bad Gateway', 'a body that is not JSON still gives a sentence');
});

t.test('a missing route (an older server) is told apart from a missing thing', async (t) => {
  const { fetch } = fakeFetch(
    json(404, { error: 'not_found', message: 'No route DELETE /invocations/abc.' }),
    json(404, { error: 'not_found', message: 'No invocation abc; results are kept for 24 hours.' }),
  );
  const api = createApi({ fetch });
  const missing = await api.cancelInvocation('abc').catch((e) => e);
  t.equal(missing.missingRoute, true);
  const gone = await api.cancelInvocation('abc').catch((e) => e);
  t.equal(gone.missingRoute, false);
});

t.test('invoke: sync answers the result, async the request id; the event is the body', async (t) => {
  const result = { requestId: 'r1', status: 'SUCCESS', durationMs: 3 };
  const { calls, fetch } = fakeFetch(json(200, result), json(202, { requestId: 'r2' }));
  const api = createApi({ fetch, baseUrl: 'http://gw' });
  t.same(await api.invoke('hello world', { a: 1 }), { result });
  t.equal(calls[0]?.url, 'http://gw/functions/hello%20world/invoke', 'names are encoded');
  t.equal(calls[0]?.init.method, 'POST');
  t.equal(calls[0]?.init.body, '{"a":1}');
  t.equal(headersOf(calls[0])['content-type'], 'application/json');
  t.same(await api.invoke('f', {}, 'async'), { requestId: 'r2' });
  t.equal(headersOf(calls[1])['x-invocation-type'], 'Event');
});

t.test('invocation and execution states: 202 is pending, 200 is done', async (t) => {
  const { fetch } = fakeFetch(
    json(202, { requestId: 'r', status: 'RUNNING' }),
    json(200, { requestId: 'r', status: 'SUCCESS' }),
    json(202, { execution_id: 'e', correlation_id: 'c', status: 'queued', location: '/exec/e' }),
    json(200, { execution_id: 'e', success: true }),
  );
  const api = createApi({ fetch });
  t.same(await api.invocation('r'), { done: false, requestId: 'r', status: 'RUNNING' });
  t.match(await api.invocation('r'), { done: true, result: { status: 'SUCCESS' } });
  t.match(await api.execution('e'), { done: false, pending: { status: 'queued' } });
  t.match(await api.execution('e'), { done: true, response: { success: true } });
});

t.test('list filters become a query string; empty ones are left out', async (t) => {
  const { calls, fetch } = fakeFetch(json(200, { invocations: [] }), json(200, { invocations: [] }));
  const api = createApi({ fetch });
  await api.invocations({ function: 'f-1', status: 'FAILED', limit: 5 });
  await api.invocations();
  t.equal(calls[0]?.url, '/invocations?function=f-1&status=FAILED&limit=5');
  t.equal(calls[1]?.url, '/invocations');
});

t.test('node actions and configuration use the documented routes', async (t) => {
  const { calls, fetch } = fakeFetch(
    json(202, { node_id: 'n', desired: {} }),
    json(200, { node_id: 'n', desired: {} }),
    json(200, { name: 'f', memoryMb: 256 }),
    new Response(null, { status: 204 }),
  );
  const api = createApi({ fetch });
  await api.drain('n');
  await api.setEligible('n', false);
  await api.configure('f', { memoryMb: 256 });
  await api.deleteFunction('f');
  t.same(
    calls.map((c) => `${c.init.method} ${c.url} ${c.init.body ?? ''}`.trim()),
    [
      'POST /api/v1/nodes/n/drain',
      'POST /api/v1/nodes/n/eligibility {"eligible":false}',
      'PATCH /functions/f {"memoryMb":256}',
      'DELETE /functions/f',
    ],
  );
});

t.test('logs stream over fetch with the key, in chunks split anywhere', async (t) => {
  const sse =
    'id: 1-0\nevent: log\ndata: {"stream":"stdout","text":"hel","ts":1}\n\n: ping\n\n' +
    'id: 2-0\nevent: log\ndata: {"stream":"stderr","text":"lo\\n","ts":2}\n\n' +
    'event: end\ndata: {"status":"SUCCESS"}\n\n';
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      // Cut into 7-byte pieces: events, and characters, arrive split.
      for (let i = 0; i < sse.length; i += 7) controller.enqueue(encoder.encode(sse.slice(i, i + 7)));
      controller.close();
    },
  });
  const { calls, fetch } = fakeFetch(
    new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
  );
  const lines: string[] = [];
  const status = await createApi({ fetch, getKey: () => 'k' }).streamLogs('invocations', 'r1', {
    onLog: (l) => lines.push(`${l.stream}:${l.text}`),
  });
  t.equal(status, 'SUCCESS');
  t.same(lines, ['stdout:hel', 'stderr:lo\n']);
  t.equal(calls[0]?.url, '/invocations/r1/logs?follow=1');
  t.equal(headersOf(calls[0]).authorization, 'Bearer k');
  t.equal(headersOf(calls[0]).accept, 'text/event-stream');
});

t.test('a refused log stream is an ApiError', async (t) => {
  const { fetch } = fakeFetch(json(404, { error: 'not_found', message: 'No execution e.' }));
  const err = await createApi({ fetch })
    .streamLogs('exec', 'e', { onLog: () => {} })
    .catch((e) => e);
  t.equal(err.status, 404);
  t.equal(err.message, 'No execution e.');
});

t.test('parseSse keeps the unfinished rest and joins data lines', async (t) => {
  const { events, rest } = parseSse(
    'event: a\r\ndata: 1\r\ndata: 2\r\n\r\ndata: x\n\n: c\n\nevent: b\ndata: par',
  );
  t.same(events, [
    { event: 'a', data: '1\n2' },
    { event: 'message', data: 'x' },
  ]);
  t.equal(rest, 'event: b\ndata: par');
});

t.test('numbers read as people read them', async (t) => {
  t.equal(costPerMillion(0.0642), '$0.064 / 1M');
  t.equal(costPerMillion(0.00642), '$0.0064 / 1M');
  t.equal(costPerMillion(6.42), '$6.42 / 1M');
  t.equal(costPerMillion(Number.NaN), '—');
  t.notMatch(costPerMillion(6.42e-8 * 1e6), /e-/);
  t.equal(ms(1.53), '1.5 ms');
  t.equal(ms(250.4), '250 ms');
  t.equal(ms(12_345), '12.3 s');
  t.equal(ago('2024-01-01T00:00:10Z', Date.parse('2024-01-01T00:00:40Z')), '30 s ago');
});
