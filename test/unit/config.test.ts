import t from 'tap';
import { loadConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';

t.test('defaults match the contract', async (t) => {
  const c = loadConfig({});
  t.equal(c.server.port, 3000);
  t.equal(c.server.host, '127.0.0.1');
  t.equal(c.redis.url, 'redis://127.0.0.1:6379');
  t.equal(c.redis.prefix, 'dockhand');
  t.equal(c.scheduler.intervalSeconds, 600);
  t.equal(c.httpJobs.allowExternal, false);
  t.equal(c.exec.serviceProxyPort, 9000);
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
  [{ ALLOW_EXTERNAL_REQUESTS: 'maybe' }, 'ALLOW_EXTERNAL_REQUESTS', /must be yes or no/],
  [{ SCHEDULER_INTERVAL_SECONDS: '0' }, 'SCHEDULER_INTERVAL_SECONDS', /at least 1/],
  [{ HTTP_JOBS_ALLOWLIST: '10.0.0.0/99' }, 'HTTP_JOBS_ALLOWLIST', /bad entry "10.0.0.0\/99"/],
  [{ LLM_PROVIDER: 'claude' }, 'LLM_PROVIDER', /openai or gemini/],
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of fatal/],
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
