import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { LoggerOptions } from 'pino';
import t, { type Test } from 'tap';
import type { App } from '../../api/app.ts';
import { createNodeStore } from '../../api/nodes/node-store.ts';
import { REDIS_URL, startTestRole, testConfig, testPrefix, wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);
const run = promisify(execFile);

const API_KEY = 'nodes-test-api-key';
const REG = 'registration-token-0123456789';
// The MIaaS agent README's own examples, as it sends them.
const README_REGISTRATION = {
  name: 'worker-node-01',
  ip: '192.168.1.10',
  capabilities: { os: 'linux', cpu_count: 8, mem_mb: 16000, disk_mb: 500000, gpus: [] },
};
const README_HEARTBEAT = { cpu_usage: 25.5, mem_usage: 60.2, disk_free_mb: 450000, running_containers: [] };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** The header Python requests (and curl, and node:http) make of http://user:password@host. */
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

/** A clock the test moves: offline is three missed intervals, reached without waiting. */
function testClock() {
  const clock = {
    at: Date.parse('2030-01-01T00:00:00.000Z'),
    now: () => clock.at,
    advance: (seconds: number) => {
      clock.at += seconds * 1000;
    },
  };
  return clock;
}
type Clock = ReturnType<typeof testClock>;

/** Every log call the gateway makes, kept instead of printed. */
function captureLogs(lines: string[]): LoggerOptions {
  return {
    level: 'trace',
    hooks: {
      logMethod(args) {
        try {
          lines.push(JSON.stringify(args));
        } catch {
          lines.push(String(args));
        }
      },
    },
  };
}

const SECURED = { API_KEYS: API_KEY, NODE_REGISTRATION_TOKEN: REG };

async function gateway(
  t: Test,
  env: Record<string, string> = SECURED,
  options: { listen?: boolean; logs?: string[]; clock?: Clock; prefix?: string } = {},
) {
  const clock = options.clock ?? testClock();
  const config = testConfig(t, {
    PORT: '0',
    ...env,
    ...(options.prefix ? { QUEUE_PREFIX: options.prefix } : {}),
  });
  const running = await startTestRole(t, 'gateway', config, {
    now: clock.now,
    listen: options.listen ?? false,
    logger: options.logs ? captureLogs(options.logs) : undefined,
  });
  return { ...running, config, clock };
}

function register(app: App, headers: Record<string, string>, body: object = README_REGISTRATION) {
  return app.inject({ method: 'POST', url: '/api/v1/nodes/register', headers, payload: body });
}
async function registered(app: App, body: object = README_REGISTRATION) {
  const res = await register(app, bearer(REG), body);
  if (res.statusCode !== 200) throw new Error(`register: ${res.statusCode} ${res.body}`);
  return res.json() as { node_id: string; node_token: string; heartbeat_interval: number };
}
function heartbeat(app: App, id: string, headers: Record<string, string>, body: object = README_HEARTBEAT) {
  return app.inject({ method: 'POST', url: `/api/v1/nodes/${id}/heartbeat`, headers, payload: body });
}
function admin(app: App, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) {
  return app.inject({ method, url, headers: bearer(API_KEY), ...(payload ? { payload } : {}) });
}
async function statusOf(app: App, id: string): Promise<string> {
  return (await admin(app, 'GET', `/api/v1/nodes/${id}`)).json().status;
}

t.test('the MIaaS agent registers and heartbeats with its README payloads', async (t) => {
  const logs: string[] = [];
  const { app, clock, config } = await gateway(t, SECURED, { logs });
  const bodies: string[] = [];

  const reg = await register(app, bearer(REG));
  bodies.push(reg.body);
  t.equal(reg.statusCode, 200, 'always 200, as the MIaaS control plane answered');
  const { node_id, node_token, heartbeat_interval } = reg.json();
  t.match(node_id, UUID_V4);
  t.match(node_token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  t.equal(heartbeat_interval, 30);

  clock.advance(30);
  const beat = await heartbeat(app, node_id, bearer(node_token));
  bodies.push(beat.body);
  t.equal(beat.statusCode, 200);
  t.same(beat.json(), {
    status: 'ok',
    node_id,
    desired: { eligible: true, drain: false },
    heartbeat_interval: 30,
  });

  const list = await admin(app, 'GET', '/api/v1/nodes');
  bodies.push(list.body);
  t.equal(list.statusCode, 200);
  t.equal(list.json().nodes.length, 1);
  const [node] = list.json().nodes;
  t.strictSame(node, {
    node_id,
    name: 'worker-node-01',
    ip: '192.168.1.10',
    status: 'online',
    capabilities: README_REGISTRATION.capabilities,
    metrics: README_HEARTBEAT,
    desired: { eligible: true, drain: false },
    registered_at: '2030-01-01T00:00:00.000Z',
    last_seen: '2030-01-01T00:00:30.000Z',
    heartbeat_age_seconds: 0,
  });
  const one = await admin(app, 'GET', `/api/v1/nodes/${node_id}`);
  bodies.push(one.body);
  t.strictSame(one.json(), node);

  // The token is kept only as its digest, and neither reaches a response or a log line.
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.quit());
  const stored = await redis.hgetall(`${config.redis.prefix}:nodes:node:${node_id}`);
  t.equal(stored.token, sha256hex(node_token), 'the stored token is its SHA-256');
  t.notOk(JSON.stringify(stored).includes(node_token), 'the token itself is not stored');
  t.notOk(
    [...bodies, ...logs].join('\n').includes(sha256hex(node_token)),
    'the digest: in no response or log',
  );
  t.notOk(logs.join('\n').includes(node_token), 'the token: in no log line');
  t.notOk(logs.join('\n').includes(REG), 'the registration token: in no log line');
  t.ok(
    logs.some((l) => l.includes('node registered')),
    'the registration is logged',
  );
});

t.test('an agent with credentials in CONTROL_PLANE_URL registers and heartbeats (Basic auth)', async (t) => {
  const { url, app } = await gateway(t, SECURED, { listen: true });
  const port = new URL(url as string).port;
  const agentUrl = `http://agent:${REG}@127.0.0.1:${port}`;

  // node:http turns a URL's credentials into Basic auth as Python requests does.
  const viaUrl = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const payload = JSON.stringify({ ...README_REGISTRATION, name: 'url-node' });
    const req = http.request(
      new URL('/api/v1/nodes/register', agentUrl),
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  t.equal(viaUrl.status, 200, viaUrl.body);
  t.match(JSON.parse(viaUrl.body).node_id, UUID_V4);

  const curl = async (args: string[], body: object) => {
    const { stdout } = await run('curl', [
      '-sS',
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify(body),
      '-w',
      '\n%{http_code}',
      ...args,
    ]);
    const lines = stdout.trimEnd().split('\n');
    return { status: Number(lines.pop()), body: lines.join('\n') };
  };
  const curlUrl = await curl([`${agentUrl}/api/v1/nodes/register`], {
    ...README_REGISTRATION,
    name: 'curl-url',
  });
  t.equal(curlUrl.status, 200, `curl with the URL's credentials: ${curlUrl.body}`);
  const curlU = await curl(['-u', `agent:${REG}`, `http://127.0.0.1:${port}/api/v1/nodes/register`], {
    ...README_REGISTRATION,
    name: 'curl-u',
  });
  t.equal(curlU.status, 200, `curl -u: ${curlU.body}`);
  const { node_id, node_token } = JSON.parse(curlU.body);

  // Such an agent sends the URL's credentials on its heartbeats too: they are accepted.
  const beatWithUrlCreds = await curl([`${agentUrl}/api/v1/nodes/${node_id}/heartbeat`], README_HEARTBEAT);
  t.equal(beatWithUrlCreds.status, 200, beatWithUrlCreds.body);
  const beatWithToken = await curl(
    [
      '-H',
      `authorization: Bearer ${node_token}`,
      `http://127.0.0.1:${port}/api/v1/nodes/${node_id}/heartbeat`,
    ],
    README_HEARTBEAT,
  );
  t.equal(beatWithToken.status, 200, beatWithToken.body);

  const wrong = await curl(
    [`http://agent:wrong-registration-token@127.0.0.1:${port}/api/v1/nodes/register`],
    README_REGISTRATION,
  );
  t.equal(wrong.status, 401, 'a wrong password in the URL');
  const none = await curl([`http://127.0.0.1:${port}/api/v1/nodes/register`], README_REGISTRATION);
  t.equal(none.status, 401, 'no credentials');

  const names = (await admin(app, 'GET', '/api/v1/nodes')).json().nodes.map((n: { name: string }) => n.name);
  t.same(names, ['curl-u', 'curl-url', 'url-node']);
});

// Python with requests is not a Dockhand prerequisite: without it, node:http and curl above stand in.
const hasRequests = await run('python3', ['-c', 'import requests']).then(
  () => true,
  () => false,
);
t.test(
  'the real Python requests, as the MIaaS agent uses it, with credentials in the URL',
  { skip: hasRequests ? false : 'python3 with requests is not installed' },
  async (t) => {
    const { url, app } = await gateway(t, SECURED, { listen: true });
    const port = new URL(url as string).port;
    // The agent's loop in brief: register, then heartbeat with the node token as a bearer header
    // (requests replaces that header by the URL's credentials, which the gateway accepts).
    const script = `
import json, sys, requests
base = sys.argv[1]
reg = requests.post(base + '/api/v1/nodes/register', json=json.loads(sys.argv[2]), timeout=10)
body = reg.json()
beat = requests.post(base + '/api/v1/nodes/' + body['node_id'] + '/heartbeat',
  headers={'Authorization': 'Bearer ' + body['node_token']}, json=json.loads(sys.argv[3]), timeout=10)
print(json.dumps({'register': reg.status_code, 'heartbeat': beat.status_code, 'answer': beat.json()}))
`;
    const { stdout } = await run('python3', [
      '-c',
      script,
      `http://agent:${REG}@127.0.0.1:${port}`,
      JSON.stringify(README_REGISTRATION),
      JSON.stringify(README_HEARTBEAT),
    ]);
    const out = JSON.parse(stdout);
    t.equal(out.register, 200);
    t.equal(out.heartbeat, 200);
    t.same(out.answer.desired, { eligible: true, drain: false });
    const [node] = (await admin(app, 'GET', '/api/v1/nodes')).json().nodes;
    t.same(node.metrics, README_HEARTBEAT);
  },
);

t.test('registration needs an API key or the registration token', async (t) => {
  const { app } = await gateway(t, { ...SECURED, AUTH_FAILURES_PER_MINUTE: '0' });
  const none = await register(app, {});
  t.equal(none.statusCode, 401);
  t.equal(none.json().error, 'unauthorized');
  t.match(none.json().message, /NODE_REGISTRATION_TOKEN/);
  t.equal((await register(app, bearer('not-the-token'))).statusCode, 401);
  t.equal((await register(app, basic('agent', 'not-the-token'))).statusCode, 401);
  t.equal((await register(app, bearer(API_KEY))).statusCode, 200, 'an API key');
  t.equal((await register(app, basic('agent', REG))).statusCode, 200, 'the token as a Basic password');
  t.equal((await register(app, basic('', REG))).statusCode, 200, 'with any user name');

  // The registration token is for nodes only: it opens no other route.
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/nodes', headers: bearer(REG) })).statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: '/jobs/x', headers: bearer(REG) })).statusCode, 401);
});

t.test('wrong registration tokens count as failed authentications', async (t) => {
  const { app } = await gateway(t, { ...SECURED, AUTH_FAILURES_PER_MINUTE: '3' });
  const attacker = '203.0.113.20';
  const codes: number[] = [];
  for (let i = 0; i < 4; i++)
    codes.push(
      (
        await app.inject({
          method: 'POST',
          url: '/api/v1/nodes/register',
          headers: bearer(`guess-${i}`),
          payload: README_REGISTRATION,
          remoteAddress: attacker,
        })
      ).statusCode,
    );
  t.same(codes, [401, 401, 401, 429]);
  const right = await app.inject({
    method: 'POST',
    url: '/api/v1/nodes/register',
    headers: bearer(REG),
    payload: README_REGISTRATION,
    remoteAddress: attacker,
  });
  t.equal(right.statusCode, 429, 'past the limit, even the right token');
});

t.test('heartbeats: wrong, missing, foreign and replayed tokens are refused', async (t) => {
  const { app } = await gateway(t, { ...SECURED, AUTH_FAILURES_PER_MINUTE: '0' });
  const a = await registered(app, { ...README_REGISTRATION, name: 'node-a' });
  const b = await registered(app, { ...README_REGISTRATION, name: 'node-b', ip: '192.168.1.11' });

  const missing = await heartbeat(app, a.node_id, {});
  t.equal(missing.statusCode, 401, 'no token');
  t.match(missing.json().message, /Bearer <node_token>/);
  t.equal((await heartbeat(app, a.node_id, bearer('x'.repeat(43)))).statusCode, 401, 'a wrong token');
  t.equal((await heartbeat(app, a.node_id, { authorization: a.node_token })).statusCode, 401, 'no scheme');
  t.equal((await heartbeat(app, a.node_id, bearer(b.node_token))).statusCode, 401, "another node's token");
  t.equal((await heartbeat(app, a.node_id, bearer(a.node_token))).statusCode, 200, 'its own token');

  // Registering again (the agent restarted) rotates the token: the old one is dead.
  const again = await registered(app, { ...README_REGISTRATION, name: 'node-a' });
  t.equal(again.node_id, a.node_id, 'the same name keeps its node_id');
  t.not(again.node_token, a.node_token);
  const replayed = await heartbeat(app, a.node_id, bearer(a.node_token));
  t.equal(replayed.statusCode, 401, 'the old token, replayed');
  t.equal(replayed.json().error, 'unauthorized');
  t.equal((await heartbeat(app, a.node_id, bearer(again.node_token))).statusCode, 200, 'the new token');

  // Unknown nodes answer 404, which makes the MIaaS agent register again.
  const unknown = await heartbeat(app, randomUUID(), bearer(a.node_token));
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.json().error, 'not_found');
  t.equal((await heartbeat(app, 'not-a-uuid', bearer(a.node_token))).statusCode, 404);

  // Deleted: its token stops working and the heartbeat does not bring the node back.
  t.equal((await admin(app, 'DELETE', `/api/v1/nodes/${b.node_id}`)).statusCode, 204);
  t.equal((await heartbeat(app, b.node_id, bearer(b.node_token))).statusCode, 404);
  t.equal((await admin(app, 'GET', `/api/v1/nodes/${b.node_id}`)).statusCode, 404, 'not recreated');
  t.equal((await admin(app, 'DELETE', `/api/v1/nodes/${b.node_id}`)).statusCode, 404, 'deleted once');

  // The admin routes need an API key; a node token opens none of them.
  for (const [method, url] of [
    ['GET', '/api/v1/nodes'],
    ['GET', `/api/v1/nodes/${a.node_id}`],
    ['DELETE', `/api/v1/nodes/${a.node_id}`],
    ['POST', `/api/v1/nodes/${a.node_id}/drain`],
  ] as const) {
    const res = await app.inject({ method, url, headers: bearer(again.node_token) });
    t.equal(res.statusCode, 401, `${method} ${url} with a node token`);
  }
  t.equal(await statusOf(app, a.node_id), 'online', 'still there');
});

t.test('wrong node tokens count as failed authentications; unknown nodes do not', async (t) => {
  const { app } = await gateway(t, { ...SECURED, AUTH_FAILURES_PER_MINUTE: '3' });
  const a = await registered(app);
  const from = '203.0.113.30';
  const beat = (id: string, token: string) =>
    app.inject({
      method: 'POST',
      url: `/api/v1/nodes/${id}/heartbeat`,
      headers: bearer(token),
      payload: README_HEARTBEAT,
      remoteAddress: from,
    });
  // A deleted node's agent keeps calling with its old token: not a guess, never blocked.
  const gone = await Promise.all([1, 2, 3, 4, 5].map(() => beat(randomUUID(), a.node_token)));
  t.same(
    gone.map((r) => r.statusCode),
    [404, 404, 404, 404, 404],
  );
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) codes.push((await beat(a.node_id, `guess-${i}`)).statusCode);
  t.same(codes, [401, 401, 401, 429]);
  t.equal((await beat(a.node_id, a.node_token)).statusCode, 429, 'past the limit, even the right token');
});

t.test('offline after three missed intervals, online again with the next heartbeat', async (t) => {
  const { app, clock } = await gateway(t);
  const { node_id, node_token } = await registered(app);
  t.equal(await statusOf(app, node_id), 'online', 'a registration counts as being seen');
  clock.advance(90);
  t.equal(await statusOf(app, node_id), 'online', 'three intervals exactly');
  clock.advance(0.001);
  t.equal(await statusOf(app, node_id), 'offline', 'past three intervals');
  const node = (await admin(app, 'GET', `/api/v1/nodes/${node_id}`)).json();
  t.equal(node.heartbeat_age_seconds, 90.001);
  t.equal(node.last_seen, '2030-01-01T00:00:00.000Z');

  t.equal((await heartbeat(app, node_id, bearer(node_token))).statusCode, 200);
  t.equal(await statusOf(app, node_id), 'online');

  // Offline wins over what the operator asked.
  t.equal((await admin(app, 'POST', `/api/v1/nodes/${node_id}/drain`)).statusCode, 202);
  t.equal(await statusOf(app, node_id), 'draining');
  clock.advance(91);
  t.equal(await statusOf(app, node_id), 'offline');
});

t.test('drain: draining until the node reports drained; eligibility', async (t) => {
  const { app } = await gateway(t);
  const first = await registered(app);
  const { node_id } = first;
  let token = first.node_token;
  const beat = async (body: object) => (await heartbeat(app, node_id, bearer(token), body)).json();

  const drain = await admin(app, 'POST', `/api/v1/nodes/${node_id}/drain`);
  t.equal(drain.statusCode, 202);
  t.same(drain.json(), { node_id, desired: { eligible: false, drain: true } });
  t.equal(await statusOf(app, node_id), 'draining');

  // The node learns it from the heartbeat's answer, reports its work winding down, then none.
  const told = await beat({
    ...README_HEARTBEAT,
    state: 'draining',
    active_jobs: { functions: 2 },
    pool: { idle: 0, busy: 2 },
  });
  t.same(told.desired, { eligible: false, drain: true });
  t.equal(await statusOf(app, node_id), 'draining');
  await beat({
    ...README_HEARTBEAT,
    state: 'drained',
    active_jobs: { functions: 0 },
    pool: { idle: 2, busy: 0 },
  });
  const drained = (await admin(app, 'GET', `/api/v1/nodes/${node_id}`)).json();
  t.equal(drained.status, 'drained');
  t.equal(drained.reported_state, 'drained');
  t.same(drained.metrics.active_jobs, { functions: 0 });
  t.same(drained.metrics.pool, { idle: 2, busy: 0 });

  // The MIaaS agent reports no state: a drain of one shows as draining.
  await beat(README_HEARTBEAT);
  t.equal(await statusOf(app, node_id), 'draining');

  // A drain survives the node registering again.
  token = (await registered(app)).node_token;
  t.equal(await statusOf(app, node_id), 'draining');

  const back = await admin(app, 'POST', `/api/v1/nodes/${node_id}/eligibility`, { eligible: true });
  t.equal(back.statusCode, 200);
  t.same(back.json(), { node_id, desired: { eligible: true, drain: false } }, 'eligible ends the drain');
  t.same((await beat({ ...README_HEARTBEAT, state: 'active' })).desired, { eligible: true, drain: false });
  t.equal(await statusOf(app, node_id), 'online');

  const out = await admin(app, 'POST', `/api/v1/nodes/${node_id}/eligibility`, { eligible: false });
  t.same(out.json().desired, { eligible: false, drain: false });
  t.equal(await statusOf(app, node_id), 'ineligible');
  t.same((await beat(README_HEARTBEAT)).desired, { eligible: false, drain: false });

  // A node may rule itself out (a full disk, say) while the operator still wants it.
  await admin(app, 'POST', `/api/v1/nodes/${node_id}/eligibility`, { eligible: true });
  await beat({ ...README_HEARTBEAT, state: 'ineligible' });
  t.equal(await statusOf(app, node_id), 'ineligible');

  const bad = await admin(app, 'POST', `/api/v1/nodes/${node_id}/eligibility`, { eligible: 'perhaps' });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().field, 'body.eligible');
  const ghost = randomUUID();
  t.equal((await admin(app, 'POST', `/api/v1/nodes/${ghost}/drain`)).statusCode, 404);
  t.equal(
    (await admin(app, 'POST', `/api/v1/nodes/${ghost}/eligibility`, { eligible: true })).statusCode,
    404,
  );
  t.equal((await admin(app, 'GET', '/api/v1/nodes/not-a-uuid')).statusCode, 400);
});

t.test('another gateway on the same Redis (a replica, or a restart) knows every node', async (t) => {
  const clock = testClock();
  const prefix = testPrefix();
  t.teardown(() => wipePrefix(prefix));
  const first = await gateway(t, SECURED, { clock, prefix });
  const { node_id, node_token } = await registered(first.app);
  const second = await gateway(t, SECURED, { clock, prefix });

  t.equal(
    (await heartbeat(second.app, node_id, bearer(node_token))).statusCode,
    200,
    'its token works there',
  );
  t.equal((await admin(second.app, 'POST', `/api/v1/nodes/${node_id}/drain`)).statusCode, 202);
  const answer = (await heartbeat(first.app, node_id, bearer(node_token))).json();
  t.same(answer.desired, { eligible: false, drain: true }, 'a drain asked of one is told by the other');
  t.same(
    (await admin(second.app, 'GET', '/api/v1/nodes')).json(),
    (await admin(first.app, 'GET', '/api/v1/nodes')).json(),
  );

  await first.close();
  const restarted = await gateway(t, SECURED, { clock, prefix });
  const [node] = (await admin(restarted.app, 'GET', '/api/v1/nodes')).json().nodes;
  t.equal(node.node_id, node_id, 'nodes outlive a gateway restart');
  t.equal(node.status, 'draining');
  t.equal((await heartbeat(restarted.app, node_id, bearer(node_token))).statusCode, 200);
});

t.test('/metrics counts nodes per status and shows each node’s heartbeat age and use', async (t) => {
  const { app, clock } = await gateway(t);
  const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const empty = await metrics();
  for (const status of ['online', 'offline', 'draining', 'drained', 'ineligible'])
    t.match(empty, new RegExp(`dockhand_nodes\\{status="${status}"\\} 0\\n`), `${status} 0 with no nodes`);

  const a = await registered(app, { ...README_REGISTRATION, name: 'a' });
  const b = await registered(app, { ...README_REGISTRATION, name: 'b', ip: '10.0.0.2' });
  await registered(app, { ...README_REGISTRATION, name: 'c', ip: '10.0.0.3' });
  clock.advance(60);
  await heartbeat(app, a.node_id, bearer(a.node_token));
  await heartbeat(app, b.node_id, bearer(b.node_token), { ...README_HEARTBEAT, cpu_usage: 99 });
  await admin(app, 'POST', `/api/v1/nodes/${b.node_id}/drain`);
  clock.advance(45); // c: 105 s silent, offline

  const text = await metrics();
  t.match(text, /dockhand_nodes\{status="online"\} 1\n/);
  t.match(text, /dockhand_nodes\{status="draining"\} 1\n/);
  t.match(text, /dockhand_nodes\{status="offline"\} 1\n/);
  t.match(text, /dockhand_nodes\{status="drained"\} 0\n/);
  t.match(text, new RegExp(`dockhand_node_heartbeat_age_seconds\\{node="${a.node_id}"\\} 45\\n`));
  t.match(text, new RegExp(`dockhand_node_cpu_usage_percent\\{node="${a.node_id}"\\} 25.5\\n`));
  t.match(text, new RegExp(`dockhand_node_cpu_usage_percent\\{node="${b.node_id}"\\} 99\\n`));
  t.match(text, new RegExp(`dockhand_node_memory_usage_percent\\{node="${a.node_id}"\\} 60.2\\n`));
  t.notMatch(text, /node_token|[0-9a-f]{64}/, 'no token or digest');
});

t.test(
  'bad registrations and heartbeats are refused naming the field; extra fields are ignored',
  async (t) => {
    const { app } = await gateway(t);
    const cases: Array<[object, string]> = [
      [{ ...README_REGISTRATION, ip: 'not-an-ip' }, 'body.ip'],
      [{ ...README_REGISTRATION, ip: '1.2.3' }, 'body.ip'],
      [{ ...README_REGISTRATION, name: '../etc' }, 'body.name'],
      [{ name: 'n', ip: '10.0.0.1' }, 'body.capabilities'],
      [
        { ...README_REGISTRATION, capabilities: { os: 'linux', mem_mb: 1, disk_mb: 1 } },
        'body.capabilities.cpu_count',
      ],
      [
        { ...README_REGISTRATION, capabilities: { ...README_REGISTRATION.capabilities, gpus: ['none'] } },
        'body.capabilities.gpus.0',
      ],
    ];
    for (const [body, field] of cases) {
      const res = await register(app, bearer(REG), body);
      t.equal(res.statusCode, 400, JSON.stringify(body));
      t.equal(res.json().field, field);
    }
    const huge = await register(app, bearer(REG), {
      ...README_REGISTRATION,
      capabilities: { ...README_REGISTRATION.capabilities, blob: 'x'.repeat(70 * 1024) },
    });
    t.equal(huge.statusCode, 413, 'node bodies are capped at 64 KiB');

    // A newer agent's fields: accepted; extra capabilities kept, unknown top-level fields not.
    const newer = await register(app, bearer(REG), {
      ...README_REGISTRATION,
      agent_version: '2.0',
      capabilities: {
        ...README_REGISTRATION.capabilities,
        arch: 'arm64',
        gpus: [{ name: 'A100', memory_mb: 40960, uuid: 'GPU-1' }],
      },
    });
    t.equal(newer.statusCode, 200, newer.body);
    const { node_id, node_token } = newer.json();
    const node = (await admin(app, 'GET', `/api/v1/nodes/${node_id}`)).json();
    t.equal(node.capabilities.arch, 'arm64');
    t.same(node.capabilities.gpus, [{ name: 'A100', memory_mb: 40960, uuid: 'GPU-1' }]);
    t.notOk('agent_version' in node);

    for (const [body, field] of [
      [{ ...README_HEARTBEAT, cpu_usage: 150 }, 'body.cpu_usage'],
      [{ ...README_HEARTBEAT, disk_free_mb: -1 }, 'body.disk_free_mb'],
      [{ mem_usage: 1, disk_free_mb: 1 }, 'body.cpu_usage'],
      [{ ...README_HEARTBEAT, state: 'sleeping' }, 'body.state'],
      [{ ...README_HEARTBEAT, active_jobs: { functions: -1 } }, 'body.active_jobs.functions'],
    ] as Array<[object, string]>) {
      const res = await heartbeat(app, node_id, bearer(node_token), body);
      t.equal(res.statusCode, 400, JSON.stringify(body));
      t.equal(res.json().field, field);
    }
    const extended = await heartbeat(app, node_id, bearer(node_token), {
      cpu_usage: 1,
      mem_usage: 2,
      disk_free_mb: 3,
      load_average: [0.1, 0.2, 0.3],
    });
    t.equal(extended.statusCode, 200, 'running_containers may be left out; unknown fields are ignored');
    const metrics = (await admin(app, 'GET', `/api/v1/nodes/${node_id}`)).json().metrics;
    t.same(metrics, { cpu_usage: 1, mem_usage: 2, disk_free_mb: 3, running_containers: [] });
  },
);

t.test('one name, one node: a second machine cannot take an online node’s name', async (t) => {
  const { app, clock } = await gateway(t);
  const first = await registered(app, { ...README_REGISTRATION, ip: '10.0.0.1' });
  const clash = await register(app, bearer(REG), { ...README_REGISTRATION, ip: '10.0.0.2' });
  t.equal(clash.statusCode, 409);
  t.equal(clash.json().field, 'body.name');
  t.equal((await heartbeat(app, first.node_id, bearer(first.node_token))).statusCode, 200, 'untouched');
  clock.advance(91);
  const moved = await registered(app, { ...README_REGISTRATION, ip: '10.0.0.2' });
  t.equal(moved.node_id, first.node_id, 'once it is offline, the name moves (a new address)');
});

t.test('open registration on loopback only; heartbeats always need a token', async (t) => {
  const { app } = await gateway(t, {});
  const res = await register(app, {});
  t.equal(res.statusCode, 200, 'no keys, no token, loopback: open like every route');
  const { node_id, node_token } = res.json();
  t.equal((await heartbeat(app, node_id, {})).statusCode, 401, 'but a heartbeat needs the node token');
  t.equal((await heartbeat(app, node_id, bearer(node_token))).statusCode, 200);
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/nodes' })).statusCode, 200);

  const wide = await gateway(t, { HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'yes' });
  const closed = await register(wide.app, {});
  t.equal(closed.statusCode, 403);
  t.equal(closed.json().error, 'registration_closed');
  t.match(closed.json().message, /NODE_REGISTRATION_TOKEN/);

  const tokened = await gateway(t, {
    HOST: '0.0.0.0',
    ALLOW_UNAUTHENTICATED: 'yes',
    NODE_REGISTRATION_TOKEN: REG,
  });
  t.equal((await register(tokened.app, {})).statusCode, 401);
  t.equal((await register(tokened.app, basic('agent', REG))).statusCode, 200);

  const keysOnly = await gateway(t, { API_KEYS: API_KEY });
  t.equal((await register(keysOnly.app, {})).statusCode, 401, 'keys but no token: an API key is needed');
  t.equal((await register(keysOnly.app, basic('agent', API_KEY))).statusCode, 200);
});

t.test('the store: a node limit, long-offline nodes forgotten, Redis not trusted', async (t) => {
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.quit());
  const prefix = testPrefix();
  t.teardown(() => wipePrefix(prefix));
  const clock = testClock();
  const store = createNodeStore({ redis, prefix, heartbeatIntervalSeconds: 30, now: clock.now, maxNodes: 3 });
  const reg = (name: string) => store.register({ ...README_REGISTRATION, name });

  const kept = await reg('kept');
  const ruledOut = await reg('ruled-out');
  const plain = await reg('plain');
  await t.rejects(reg('fourth'), { code: 'node_limit', statusCode: 409 }, 'past the limit');
  t.equal((await reg('plain')).nodeId, plain.nodeId, 'a known name registers again at the limit');

  await store.setDesired(kept.nodeId, { drain: true });
  await store.setDesired(ruledOut.nodeId, { eligible: false });
  clock.advance(24 * 3600 + 1);
  const left = await store.list();
  t.same(
    left.map((n) => n.name),
    ['kept', 'ruled-out'],
    'a day silent: forgotten, unless drained or ineligible',
  );
  const reborn = await reg('plain');
  t.equal(reborn.created, true, 'a forgotten name registers as a new node (there is room again)');
  t.not(reborn.nodeId, plain.nodeId);

  // What Redis holds is checked: a broken record hides no other, and reads as nothing.
  const key = `${prefix}:nodes:node:${kept.nodeId}`;
  await redis.hset(key, 'capabilities', '{not json');
  t.notOk(
    (await store.list()).some((n) => n.id === kept.nodeId),
    'a record that fails its check is left out',
  );
  await t.rejects(store.get(kept.nodeId), { code: 'node_record_invalid' });
  await redis.hset(`${prefix}:nodes:node:${ruledOut.nodeId}`, 'eligible', 'maybe');
  t.same(
    (await store.get(ruledOut.nodeId))?.desired,
    { eligible: false, drain: true },
    'a desired state nobody wrote reads as a drain',
  );
  await redis.hset(`${prefix}:nodes:node:${ruledOut.nodeId}`, 'token', 'plaintext-token');
  t.equal(
    await store.verifyToken(ruledOut.nodeId, 'plaintext-token'),
    'unknown',
    'a stored plain token is no token',
  );
  await redis.hset(`${prefix}:nodes:names`, 'evil', 'not-an-id');
  await redis.hset(`${prefix}:nodes:node:not-an-id`, 'name', 'evil');
  await t.rejects(
    reg('evil'),
    { code: 'node_record_invalid' },
    'a stored id that is no node_id is not answered',
  );
});
