import t from 'tap';
import { loadConfig, redactUrl } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { createDocker } from '../../roles/docker-client.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

t.test('defaults match the contract', async (t) => {
  const c = loadConfig({});
  t.equal(c.server.port, 3000);
  t.equal(c.server.host, '127.0.0.1');
  t.equal(c.redis.url, 'redis://127.0.0.1:6379');
  t.equal(c.redis.prefix, 'dockhand');
  t.equal(c.scheduler.intervalSeconds, 600);
  t.equal(c.httpJobs.allowExternal, false);
  t.equal(c.serviceProxy.port, 9000);
  t.equal(c.nodes.workerMetricsPort, 8001);
  t.equal(c.exec.user, '65534:65534');
  t.equal(c.nodes.heartbeatIntervalSeconds, 30);
  t.same(c.server.apiKeys, []);
  t.match(c.batches.dataDir, /data\/cloud_infra$/);
});

t.test('values are parsed and grouped', async (t) => {
  const c = loadConfig({
    PORT: '8080',
    API_KEYS: ' a , b,,',
    ALLOW_EXTERNAL_REQUESTS: 'yes',
    HTTP_JOBS_ALLOWLIST: '10.0.0.0/8, internal.example, 127.0.0.1',
    SCHEDULER_INTERVAL_SECONDS: '5',
    CLOUD_INFRA_DATA_DIR: '/tmp/ci',
    POOL_MIN_IDLE: '',
  });
  t.equal(c.server.port, 8080);
  t.same(c.server.apiKeys, ['a', 'b']);
  t.equal(c.httpJobs.allowExternal, true);
  t.same(c.httpJobs.allowlist, ['10.0.0.0/8', 'internal.example', '127.0.0.1']);
  t.equal(c.scheduler.intervalSeconds, 5);
  t.equal(c.batches.dataDir, '/tmp/ci');
  t.equal(c.docker.poolMinIdle, 2, 'an empty value means the default');
});

const bad: Array<[Record<string, string>, string, RegExp]> = [
  [{ PORT: 'abc' }, 'PORT', /PORT must be a port number from 0 \(any free port\) to 65535 \(got "abc"\)/],
  [{ PORT: '70000' }, 'PORT', /PORT must be/],
  [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL', /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
  [{ DOCKER_HOST: 'nonsense' }, 'DOCKER_HOST', /DOCKER_HOST must be one of unix:\/\/\/path, tcp:\/\/host/],
  [{ ALLOW_EXTERNAL_REQUESTS: 'maybe' }, 'ALLOW_EXTERNAL_REQUESTS', /must be yes or no/],
  [{ SCHEDULER_INTERVAL_SECONDS: '0' }, 'SCHEDULER_INTERVAL_SECONDS', /at least 1/],
  [{ HTTP_JOBS_ALLOWLIST: '10.0.0.0/99' }, 'HTTP_JOBS_ALLOWLIST', /bad entry "10.0.0.0\/99"/],
  [{ LLM_PROVIDER: 'claude' }, 'LLM_PROVIDER', /openai or gemini/],
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of fatal/],
  [
    { FUNCTIONS_CHANNEL: 'pipe' },
    'FUNCTIONS_CHANNEL',
    /^FUNCTIONS_CHANNEL must be auto, socket or attach \(got "pipe"\)/,
  ],
  [{ TRUST_PROXY: '10.0.0.1, proxy.example' }, 'TRUST_PROXY', /bad entry "proxy.example"/],
  [{ AUTH_FAILURES_PER_MINUTE: '-1' }, 'AUTH_FAILURES_PER_MINUTE', /failed authentications per minute/],
  [{ ALLOW_UNAUTHENTICATED: 'sure' }, 'ALLOW_UNAUTHENTICATED', /must be yes or no/],
  [
    { HOST: '0.0.0.0' },
    'API_KEYS',
    /^HOST 0\.0\.0\.0 is not a loopback address and API_KEYS is not set: .*ALLOW_UNAUTHENTICATED=yes/,
  ],
  [{ HOST: '::' }, 'API_KEYS', /HOST :: is not a loopback address/],
  [{ HOST: '10.1.2.3', API_KEYS: ' , ' }, 'API_KEYS', /API_KEYS is not set/],
  [{ HOST: 'dockhand.example' }, 'API_KEYS', /API_KEYS is not set/],
];
for (const [env, variable, message] of bad) {
  t.test(`a bad ${variable} stops start-up with one line naming it`, async (t) => {
    const err = t.throws(() => loadConfig(env)) as ConfigError;
    t.ok(err instanceof ConfigError);
    t.equal(err.field, variable);
    t.match(err.message, message);
    t.notMatch(err.message, /\n/, 'one line');
  });
}

const REDIS_ACCEPTS = 'a redis:// or rediss:// URL: redis[s]://[user:password@]host[:port][/db]';
const DOCKER_ACCEPTS =
  'one of unix:///path, tcp://host[:port], http(s)://host[:port] or npipe:////./pipe/name';
// What ioredis and createDocker() can use gets through; anything else stops start-up here,
// in one line, instead of later with a stack trace.
const connections: Array<[string, string, boolean]> = [
  ['REDIS_URL', 'redis://127.0.0.1:6379', true],
  ['REDIS_URL', 'redis://localhost', true],
  ['REDIS_URL', 'rediss://user:p%40ss@cache.example:6380/2', true],
  ['REDIS_URL', 'redis://:secret@[::1]:6379/0', true],
  ['REDIS_URL', 'redis://h:6379/', true],
  ['REDIS_URL', 'redis://h:6379?family=6', true],
  ['REDIS_URL', 'nonsense', false],
  ['REDIS_URL', 'localhost:6379', false],
  ['REDIS_URL', 'http://localhost:6379', false],
  ['REDIS_URL', 'redis://', false],
  ['REDIS_URL', 'redis:///0', false],
  ['REDIS_URL', 'redis://h:0', false],
  ['REDIS_URL', 'redis://h:65536', false],
  ['REDIS_URL', 'redis://h:port', false],
  ['REDIS_URL', 'redis://h:6379/db1', false],
  ['REDIS_URL', 'redis://h:6379/0/1', false],
  ['REDIS_URL', 'redis://a b:6379', false],
  ['DOCKER_HOST', 'unix:///var/run/docker.sock', true],
  ['DOCKER_HOST', 'unix:///tmp/my dir/docker.sock', true],
  ['DOCKER_HOST', 'tcp://127.0.0.1:2375', true],
  ['DOCKER_HOST', 'tcp://docker.internal', true],
  ['DOCKER_HOST', 'http://localhost:2375/', true],
  ['DOCKER_HOST', 'https://docker.example:2376', true],
  ['DOCKER_HOST', 'npipe:////./pipe/docker_engine', true],
  ['DOCKER_HOST', 'nonsense', false],
  ['DOCKER_HOST', '/var/run/docker.sock', false],
  ['DOCKER_HOST', 'unix://', false],
  ['DOCKER_HOST', 'unix:///', false],
  ['DOCKER_HOST', 'unix://var/run/docker.sock', false],
  ['DOCKER_HOST', 'npipe://', false],
  ['DOCKER_HOST', 'ssh://user@host', false],
  ['DOCKER_HOST', 'ftp://host:21', false],
  ['DOCKER_HOST', 'tcp://', false],
  ['DOCKER_HOST', 'tcp://host:0', false],
  ['DOCKER_HOST', 'tcp://host:99999', false],
  ['DOCKER_HOST', 'tcp://host:2375/v1.41', false],
];
t.test('REDIS_URL and DOCKER_HOST are checked at start-up', async (t) => {
  for (const [variable, value, good] of connections) {
    if (good) {
      const c = loadConfig({ [variable]: value });
      t.equal(
        variable === 'REDIS_URL' ? c.redis.url : c.docker.host,
        value,
        `${variable}=${value} is accepted`,
      );
      if (variable === 'DOCKER_HOST') t.ok(createDocker(value), `createDocker takes ${value}`);
    } else {
      const err = t.throws(() => loadConfig({ [variable]: value }), `${variable}=${value} is refused`);
      t.equal((err as ConfigError).field, variable);
      t.equal(
        (err as ConfigError).message,
        `${variable} must be ${variable === 'REDIS_URL' ? REDIS_ACCEPTS : DOCKER_ACCEPTS} (got ${JSON.stringify(redactUrl(value))}).`,
      );
    }
  }
});

t.test('socket and pipe paths reach dockerode as written', async (t) => {
  // DockerModem's typings leave out the connection fields it keeps.
  type Modem = { socketPath?: string; host?: string; port?: number; protocol?: string };
  const modem = (host: string) => createDocker(host).modem as unknown as Modem;
  t.equal(modem('unix:///tmp/my dir/docker.sock').socketPath, '/tmp/my dir/docker.sock');
  t.equal(modem('npipe:////./pipe/docker_engine').socketPath, '//./pipe/docker_engine');
  const tcp = modem('tcp://docker.internal');
  t.same([tcp.host, tcp.port, tcp.protocol], ['docker.internal', 2375, 'http']);
});

t.test('an open API listens only on loopback, unless asked for', async (t) => {
  for (const host of ['127.0.0.1', '127.0.0.53', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
    t.same(loadConfig({ HOST: host }).server.apiKeys, [], `${host} without keys is fine`);
  }
  for (const allow of ['yes', 'true']) {
    t.equal(loadConfig({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: allow }).server.host, '0.0.0.0');
  }
  t.same(loadConfig({ HOST: '0.0.0.0', API_KEYS: 'k' }).server.apiKeys, ['k']);
  t.same(loadConfig({ HOST: '0.0.0.0', ADMIN_API_KEYS: 'a' }).server.apiKeys, ['a'], 'an admin key is a key');
});

t.test('admin keys are API keys too; proxies and the failure limit are parsed', async (t) => {
  const c = loadConfig({
    API_KEYS: 'k1,k2',
    ADMIN_API_KEYS: 'adm, k2',
    TRUST_PROXY: '10.0.0.1, 192.168.0.0/16,::1',
    AUTH_FAILURES_PER_MINUTE: '5',
  });
  t.same(c.server.apiKeys, ['k1', 'k2', 'adm']);
  t.same(c.server.adminKeys, ['adm', 'k2']);
  t.same(c.server.trustProxy, ['10.0.0.1', '192.168.0.0/16', '::1']);
  t.equal(c.server.authFailuresPerMinute, 5);
  const d = loadConfig({});
  t.same(d.server.trustProxy, [], 'no proxy is trusted by default');
  t.same(d.server.adminKeys, []);
  t.equal(d.server.authFailuresPerMinute, 20);
});

t.test('a wrong URL is named without its password', async (t) => {
  const err = t.throws(() => loadConfig({ REDIS_URL: 'http://user:s3cret@127.0.0.1:6379' })) as Error;
  t.notMatch(err.message, /s3cret/);
  t.match(err.message, /\(got "http:\/\/\*\*\*@127\.0\.0\.1:6379"\)/);
});

t.test('a queue prefix may be a Redis Cluster hash tag, braces around the whole of it only', async (t) => {
  for (const prefix of ['dockhand', 'team_a-1', '{dockhand}', '{team_a-1}']) {
    t.equal(loadConfig({ QUEUE_PREFIX: prefix }).redis.prefix, prefix, `${prefix} is accepted`);
  }
  // A brace anywhere else would make a tag of part of a key (or none), so keys could land in
  // several slots: refused, as are characters that mean something to Redis patterns or BullMQ.
  const refused = ['{}', '{dockhand', 'dockhand}', 'a{b}', '{a}b', '{a}{b}', '{{a}}', '{a:b}', 'a:b', 'a*'];
  for (const prefix of refused) {
    const err = t.throws(() => loadConfig({ QUEUE_PREFIX: prefix }), `${prefix} is refused`) as ConfigError;
    t.equal(err.field, 'QUEUE_PREFIX');
    t.match(err.message, /optionally in braces as a Redis Cluster hash tag/);
  }
});
