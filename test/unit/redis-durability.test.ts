import t from 'tap';
import { loadConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { assessRedisDurability } from '../../core/redis-durability.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const info = (aof: string, policy: string) =>
  `# Memory\r\nused_memory:1024\r\nmaxmemory_policy:${policy}\r\n\r\n# Persistence\r\nloading:0\r\naof_enabled:${aof}\r\n`;

t.test('AOF on and noeviction: nothing to warn about', async (t) => {
  t.same(assessRedisDurability(info('1', 'noeviction')), {
    appendonly: 'yes',
    maxmemoryPolicy: 'noeviction',
    warnings: [],
  });
});

t.test('each setting that loses jobs is one sentence naming it, why, and the fix', async (t) => {
  const found = assessRedisDurability(info('0', 'allkeys-lru'));
  t.equal(found.appendonly, 'no');
  t.equal(found.maxmemoryPolicy, 'allkeys-lru');
  t.equal(found.warnings.length, 2);
  t.match(
    found.warnings[0],
    /^Redis runs with appendonly no: a restart loses .*\(set appendonly yes, appendfsync everysec\)\.$/,
  );
  t.match(
    found.warnings[1],
    /^Redis runs with maxmemory-policy allkeys-lru: .*queued jobs .*\(set maxmemory-policy noeviction\)\.$/,
  );
  t.same(assessRedisDurability(info('1', 'volatile-ttl')).warnings.length, 1, 'volatile-* evicts too');
});

t.test('a server whose INFO leaves them out is unknown, not condemned', async (t) => {
  t.same(assessRedisDurability('# Server\r\nredis_version:7.0.0\r\n'), {
    appendonly: 'unknown',
    maxmemoryPolicy: 'unknown',
    warnings: [],
  });
});

t.test('job lock, stall check and sweep settings: defaults and bounds', async (t) => {
  t.same(loadConfig({}).jobs, {
    lockSeconds: 12,
    stalledCheckSeconds: 5,
    maxStalledCount: 1,
    leftoverSweepSeconds: 10,
  });
  const { jobs } = loadConfig({
    JOB_LOCK_SECONDS: '30',
    STALLED_CHECK_SECONDS: '30',
    MAX_STALLED_COUNT: '0',
    LEFTOVER_SWEEP_SECONDS: '60',
  });
  t.same(jobs, { lockSeconds: 30, stalledCheckSeconds: 30, maxStalledCount: 0, leftoverSweepSeconds: 60 });
  for (const [name, value, message] of [
    ['JOB_LOCK_SECONDS', '1', /JOB_LOCK_SECONDS must be a whole number of seconds, at least 2 \(got "1"\)/],
    ['STALLED_CHECK_SECONDS', '0', /at least 1/],
    ['MAX_STALLED_COUNT', '-1', /from 0 to 100/],
    ['LEFTOVER_SWEEP_SECONDS', 'soon', /at least 1/],
  ] as const) {
    t.throws(() => loadConfig({ [name]: value }), { constructor: ConfigError, message });
  }
});
