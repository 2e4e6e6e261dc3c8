import { createServer } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { buildServiceProxy } from '../../api/service-proxy/app.ts';
import { serveServiceProxy } from '../../api/service-proxy/server.ts';
import { loadConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { type Stub, startDataServiceStub, startOpenAiStub } from '../helpers/service-stubs.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

/*
 * The proxy over real HTTP on loopback, with a data abstractor and an OpenAI-compatible server
 * as local stubs (the only mocks: no network here, and no keys). Reachability from containers
 * is test/integration/service-network.test.ts.
 */
const OPENAI_KEY = 'sk-test-0123456789abcdefSECRET';
const GOOGLE_KEY = 'AIzaTest0123456789abcdefSECRET';

const openai = await startOpenAiStub();
const data = await startDataServiceStub();
t.teardown(() => Promise.all([openai.close(), data.close()]));

interface Proxy {
  url: string;
  registry: Registry;
  logs: string[];
}

/** A proxy on 127.0.0.1 with these variables, closed when `t` ends. Every log line is kept. */
async function startProxy(
  t: Test,
  env: Record<string, string>,
  allowFrom?: readonly string[],
): Promise<Proxy> {
  const config = loadConfig({ LOG_LEVEL: 'info', ...env });
  const registry = new Registry();
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
  const app = await buildServiceProxy({
    config,
    registry,
    logger,
    allowFrom,
    geminiBaseUrl: `${openai.url}/gemini/`,
  });
  const served = await serveServiceProxy(app, { host: '127.0.0.1', port: 0 });
  t.teardown(() => served.close());
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('not listening');
  return { url: `http://127.0.0.1:${address.port}`, registry, logs };
}

const ALL = {
  DATA_SERVICE_URL: data.url,
  OPENAI_API_KEY: OPENAI_KEY,
  OPENAI_BASE_URL: `${openai.url}/v1`,
  OPENAI_MODEL: 'gpt-test',
  GOOGLE_API_KEY: GOOGLE_KEY,
  GOOGLE_MODEL: 'gemini-test',
};

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const lastCall = (stub: Stub) => stub.calls.at(-1);

t.test('GET /health says which services are configured, and marks the proxy as Dockhand’s', async (t) => {
  const full = await startProxy(t, ALL);
  const response = await fetch(`${full.url}/health`);
  t.equal(response.status, 200);
  t.equal(response.headers.get('x-dockhand-service'), 'proxy');
  t.same(await response.json(), {
    status: 'ok',
    services: {
      data: { configured: true },
      ai: {
        configured: true,
        provider: 'openai',
        model: 'gpt-test',
        providers: { openai: true, gemini: true },
      },
    },
  });

  const bare = await startProxy(t, {});
  t.same(await (await fetch(`${bare.url}/health`)).json(), {
    status: 'ok',
    services: {
      data: { configured: false },
      ai: { configured: false, providers: { openai: false, gemini: false } },
    },
  });

  const gemini = await startProxy(t, { LLM_PROVIDER: 'gemini', GOOGLE_API_KEY: GOOGLE_KEY });
  t.match(await (await fetch(`${gemini.url}/health`)).json(), {
    services: { ai: { configured: true, provider: 'gemini', model: 'gemini-2.0-flash' } },
  });
});

t.test(
  'POST /data/query: the body goes to DATA_SERVICE_URL/query byte for byte, the answer comes back',
  async (t) => {
    const proxy = await startProxy(t, ALL);
    const text =
      '{ "operation": "traverse",\n  "query": {"cypher": "MATCH (n) RETURN n", "big": 12345678901234567890} }';
    const response = await fetch(`${proxy.url}/data/query`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer container-secret',
        cookie: 'a=b',
      },
      body: text,
    });
    t.equal(response.status, 200);
    t.match(response.headers.get('content-type'), /application\/json/);
    t.same(await response.json(), { path: '/query', body: JSON.parse(text) });
    const call = lastCall(data);
    t.equal(call?.body, text, 'forwarded as sent, not re-serialized');
    t.equal(call?.headers['content-type'], 'application/json');
    t.notOk(call?.headers.authorization, "the container's headers are not passed on");
    t.notOk(call?.headers.cookie);

    // The Exec Agent's README example: curl -d, which says application/x-www-form-urlencoded.
    const curl = await post(`${proxy.url}/data/query`, '{"operation":"count"}', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    t.same(curl, { status: 200, body: { path: '/query', body: { operation: 'count' } } });
  },
);

t.test(
  'POST /data/query: a DATA_SERVICE_URL with a path is used as is; its status passes through',
  async (t) => {
    const proxy = await startProxy(t, { DATA_SERVICE_URL: `${data.url}/status/404` });
    t.same(await post(`${proxy.url}/data/query`, { q: 1 }), {
      status: 404,
      body: { path: '/status/404', body: { q: 1 } },
    });
  },
);

t.test('POST /ai/query through OpenAI: key, model, messages; one answer shape', async (t) => {
  const proxy = await startProxy(t, ALL);
  const answer = await post(`${proxy.url}/ai/query`, {
    provider: 'openai',
    prompt: 'Hello world',
    system: 'Be brief.',
    max_tokens: 50,
    temperature: 0.2,
  });
  t.same(answer, {
    status: 200,
    body: {
      provider: 'openai',
      model: 'gpt-test-stub',
      content: 'echo: Hello world',
      format: 'text',
      finish_reason: 'stop',
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    },
  });
  const call = lastCall(openai);
  t.equal(call?.path, '/v1/chat/completions');
  t.equal(call?.headers.authorization, `Bearer ${OPENAI_KEY}`);
  t.same(JSON.parse(call?.body ?? '{}'), {
    model: 'gpt-test',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello world' },
    ],
    max_tokens: 50,
    temperature: 0.2,
  });
});

t.test('POST /ai/query with response_format json: JSON mode asked for, the answer parsed', async (t) => {
  const proxy = await startProxy(t, ALL);
  // The Exec Agent's example request, as its container sent it.
  const answer = await post(`${proxy.url}/ai/query`, {
    provider: 'openai',
    prompt: 'Analyze this graph data: {}',
    response_format: 'json',
  });
  t.equal(answer.status, 200);
  t.same(answer.body.content, { echo: 'Analyze this graph data: {}' });
  t.equal(answer.body.format, 'json');
  const sent = JSON.parse(lastCall(openai)?.body ?? '{}');
  t.same(sent.response_format, { type: 'json_object' });
  t.match(sent.messages[0], { role: 'system', content: /JSON/ }, 'OpenAI wants "JSON" said in a message');

  const schema = await post(`${proxy.url}/ai/query`, {
    prompt: 'json please',
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
  });
  t.same(schema.body.content, { echo: 'json please' });
  const sentSchema = JSON.parse(lastCall(openai)?.body ?? '{}');
  t.same(sentSchema.response_format, {
    type: 'json_schema',
    json_schema: { name: 'x', schema: { type: 'object' } },
  });
  t.equal(sentSchema.messages.length, 1, 'the prompt says json already: no system line added');
});

t.test('POST /ai/query through Gemini: by the request, or by LLM_PROVIDER', async (t) => {
  const proxy = await startProxy(t, ALL);
  const answer = await post(`${proxy.url}/ai/query`, { provider: 'gemini', prompt: 'Hi' });
  t.match(answer, {
    status: 200,
    body: { provider: 'gemini', model: 'gemini-test-stub', content: 'echo: Hi' },
  });
  t.equal(lastCall(openai)?.path, '/gemini/chat/completions');
  t.equal(lastCall(openai)?.headers.authorization, `Bearer ${GOOGLE_KEY}`);

  const byEnv = await startProxy(t, { LLM_PROVIDER: 'gemini', GOOGLE_API_KEY: GOOGLE_KEY });
  const viaEnv = await post(`${byEnv.url}/ai/query`, { prompt: 'Hi', model: 'gemini-pro-x' });
  t.match(viaEnv, { status: 200, body: { provider: 'gemini', model: 'gemini-pro-x-stub' } });
  t.equal(lastCall(openai)?.path, '/gemini/chat/completions');
});

t.test('a service that is not configured answers 503 naming it and what to set', async (t) => {
  const bare = await startProxy(t, {});
  t.same(await post(`${bare.url}/ai/query`, { prompt: 'Hi' }), {
    status: 503,
    body: {
      error: 'service_not_configured',
      message:
        'The AI service is not configured: set OPENAI_API_KEY, or LLM_PROVIDER=gemini with GOOGLE_API_KEY.',
    },
  });
  t.same(await post(`${bare.url}/data/query`, { q: 1 }), {
    status: 503,
    body: {
      error: 'service_not_configured',
      message: 'The data service is not configured: set DATA_SERVICE_URL.',
    },
  });
  const openaiOnly = await startProxy(t, { OPENAI_API_KEY: OPENAI_KEY });
  t.same(await post(`${openaiOnly.url}/ai/query`, { provider: 'gemini', prompt: 'Hi' }), {
    status: 503,
    body: {
      error: 'service_not_configured',
      message: 'The AI service is not configured for gemini: set GOOGLE_API_KEY.',
    },
  });
  const geminiWithoutKey = await startProxy(t, { LLM_PROVIDER: 'gemini' });
  t.match(await post(`${geminiWithoutKey.url}/ai/query`, { prompt: 'Hi' }), {
    status: 503,
    body: { message: /gemini: set GOOGLE_API_KEY/ },
  });
});

t.test('bad requests: 400 naming the field, invalid JSON, 413 over the body limit, 404', async (t) => {
  const proxy = await startProxy(t, { ...ALL, SERVICE_PROXY_BODY_LIMIT_BYTES: '2048' });
  t.match(await post(`${proxy.url}/ai/query`, { provider: 'openai' }), {
    status: 400,
    body: { error: 'validation_error', field: 'body.prompt' },
  });
  t.match(await post(`${proxy.url}/ai/query`, { prompt: 'x', provider: 'claude' }), {
    status: 400,
    body: { field: 'body.provider' },
  });
  t.match(await post(`${proxy.url}/ai/query`, { prompt: 'x', tools: [] }), {
    status: 400,
    body: { field: 'body.tools', message: /not a known field/ },
  });
  t.match(await post(`${proxy.url}/data/query`, '{"q": '), { status: 400, body: { error: 'invalid_json' } });
  t.match(await post(`${proxy.url}/data/query`, `${'['.repeat(100)}${']'.repeat(100)}`), {
    status: 400,
    body: { message: /nested deeper/ },
  });
  const big = { prompt: 'x'.repeat(4096) };
  t.match(await post(`${proxy.url}/ai/query`, big), { status: 413, body: { error: 'payload_too_large' } });
  t.match(await post(`${proxy.url}/data/query`, { q: 'x'.repeat(4096) }), { status: 413 });
  t.match(await post(`${proxy.url}/admin`, {}), { status: 404, body: { error: 'not_found' } });
  const calls = openai.calls.length + data.calls.length;
  await post(`${proxy.url}/ai/query`, big);
  t.equal(openai.calls.length + data.calls.length, calls, 'nothing refused reaches a service');
});

t.test('an upstream past SERVICE_PROXY_TIMEOUT_MS answers 504', async (t) => {
  const proxy = await startProxy(t, {
    ...ALL,
    DATA_SERVICE_URL: `${data.url}/hold`,
    SERVICE_PROXY_TIMEOUT_MS: '300',
  });
  t.teardown(() => {
    data.release();
    openai.release();
  });
  t.same(await post(`${proxy.url}/data/query`, { q: 1 }), {
    status: 504,
    body: { error: 'upstream_timeout', message: 'The data service did not answer within 300 ms.' },
  });
  t.same(await post(`${proxy.url}/ai/query`, { prompt: 'hold' }), {
    status: 504,
    body: { error: 'upstream_timeout', message: 'The AI service did not answer within 300 ms.' },
  });
});

t.test('upstream failures answer 502 in one sentence, with no key in it', async (t) => {
  // A port that was free a moment ago: nothing answers there.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as { port: number };
  await new Promise((resolve) => closed.close(resolve));

  const proxy = await startProxy(t, { ...ALL, DATA_SERVICE_URL: `http://user:pw@127.0.0.1:${port}` });
  t.same(await post(`${proxy.url}/data/query`, { q: 1 }), {
    status: 502,
    body: {
      error: 'upstream_error',
      message: `The data service at 127.0.0.1:${port} could not be reached (ECONNREFUSED).`,
    },
  });
  const rejected = await post(`${proxy.url}/ai/query`, { prompt: 'status:401' });
  t.equal(rejected.status, 502);
  t.equal(rejected.body.error, 'upstream_error');
  t.match(rejected.body.message, /^The openai service answered 401: Incorrect API key provided: \*\*\*\.$/);
  const gemini = await post(`${proxy.url}/ai/query`, { provider: 'gemini', prompt: 'status:429' });
  t.match(gemini.body.message, /^The gemini service answered 429: Incorrect API key provided: \*\*\*\.$/);

  const down = await startProxy(t, {
    OPENAI_API_KEY: OPENAI_KEY,
    OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
  });
  t.same(await post(`${down.url}/ai/query`, { prompt: 'Hi' }), {
    status: 502,
    body: { error: 'upstream_error', message: 'The openai service could not be reached.' },
  });
  const logs = [...proxy.logs, ...down.logs].join('');
  t.match(logs, /upstream_error|answered 401/, 'failures are logged');
  t.notMatch(logs, OPENAI_KEY);
  t.notMatch(logs, GOOGLE_KEY);
  t.notMatch(logs, 'pw@');
});

t.test(
  'every answer is counted per service and status, with its duration; no key is ever logged',
  async (t) => {
    const proxy = await startProxy(t, ALL);
    await fetch(`${proxy.url}/health`);
    await post(`${proxy.url}/data/query`, { q: 1 });
    await post(`${proxy.url}/data/query`, { q: 2 });
    await post(`${proxy.url}/ai/query`, { prompt: 'Hi' });
    await post(`${proxy.url}/ai/query`, {});
    await post(`${proxy.url}/nowhere`, {});
    const text = await proxy.registry.metrics();
    for (const line of [
      'dockhand_service_proxy_requests_total{service="health",status="200"} 1',
      'dockhand_service_proxy_requests_total{service="data",status="200"} 2',
      'dockhand_service_proxy_requests_total{service="ai",status="200"} 1',
      'dockhand_service_proxy_requests_total{service="ai",status="400"} 1',
      'dockhand_service_proxy_requests_total{service="none",status="404"} 1',
      'dockhand_service_proxy_request_duration_seconds_count{service="data",status="200"} 2',
    ]) {
      t.ok(text.split('\n').includes(line), line);
    }
    const logs = proxy.logs.join('');
    t.match(logs, /"service":"ai".*"statusCode":200/, 'one line per request');
    t.notMatch(logs, OPENAI_KEY);
    t.notMatch(logs, GOOGLE_KEY);
    t.notMatch(logs, 'Hi"', 'prompts are not logged');
  },
);

t.test('a client outside the allowed addresses gets 403, and nothing reaches a service', async (t) => {
  const proxy = await startProxy(t, ALL, ['10.0.0.0/8']);
  const calls = openai.calls.length;
  const health = await fetch(`${proxy.url}/health`);
  t.equal(health.status, 403);
  t.equal(health.headers.get('x-dockhand-service'), 'proxy', 'still says whose it is');
  t.same(await post(`${proxy.url}/ai/query`, { prompt: 'Hi' }), {
    status: 403,
    body: { error: 'forbidden', message: 'The service proxy serves exec containers only.' },
  });
  t.equal(openai.calls.length, calls);
});

t.test('the proxy listens on one address, never all of them', async (t) => {
  const config = loadConfig({});
  for (const host of ['0.0.0.0', '::', 'localhost']) {
    const app = await buildServiceProxy({
      config,
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
    });
    await t.rejects(serveServiceProxy(app, { host, port: 0 }), /listens on one IP address/);
    await app.close();
  }
});

t.test(
  'a port held by another program stops start-up; one held by a Dockhand proxy is shared, then taken over',
  async (t) => {
    // Some other HTTP server: it answers, but not as the proxy does.
    const other = createServer((s) => {
      s.on('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi'));
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as { port: number }).port;
    t.teardown(() => new Promise((resolve) => other.close(resolve)));
    const config = loadConfig({});
    const build = () =>
      buildServiceProxy({ config, registry: new Registry(), logger: pino({ level: 'silent' }) });

    const refused = await serveServiceProxy(await build(), { host: '127.0.0.1', port: otherPort }).catch(
      (e) => e,
    );
    t.type(refused, ConfigError);
    t.equal(refused.field, 'SERVICE_PROXY_PORT');
    t.match(refused.message, /another program holds that port/);

    const firstApp = await build();
    const first = await serveServiceProxy(firstApp, { host: '127.0.0.1', port: 0 });
    const port = (firstApp.server.address() as { port: number }).port;
    const second = await serveServiceProxy(await build(), { host: '127.0.0.1', port, retryMs: 20 });
    t.teardown(() => Promise.all([first.close(), second.close()]));
    t.equal(first.serving, true);
    t.equal(second.serving, false, 'stands by');
    await first.close();
    await waitFor(() => second.serving, { what: 'the second proxy to take the port over' });
    t.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
  },
);
