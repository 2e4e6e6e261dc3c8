import { Redis } from 'ioredis';
import t from 'tap';
import type { App } from '../../api/app.ts';
import { clientBucket, createAuthFailures } from '../../core/auth-failures.ts';
import { REDIS_URL, startTestRole, testConfig, wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

// inject() lets a test be any client address; without one it is 127.0.0.1.
function get(app: App, options: { key?: string; from?: string; xff?: string } = {}) {
  const headers: Record<string, string> = {};
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.xff) headers['x-forwarded-for'] = options.xff;
  return app.inject({ method: 'GET', url: '/jobs/none', headers, remoteAddress: options.from });
}
const codes = async (n: number, make: (i: number) => ReturnType<typeof get>) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await make(i)).statusCode);
  return out;
};
const times = (n: number, code: number) => Array<number>(n).fill(code);

t.test('25 wrong keys from one address: 429 with Retry-After, even for the right key', async (t) => {
  const config = testConfig(t, { API_KEYS: 'good-key' });
  const { app } = await startTestRole(t, 'gateway', config);
  const attacker = '203.0.113.7';
  const seen = await codes(25, (i) => get(app, { key: `guess-${i}`, from: attacker }));
  t.same(seen, [...times(20, 401), ...times(5, 429)], '20 failures a minute, then refused');

  const refused = await get(app, { key: `guess-x`, from: attacker });
  t.equal(refused.json().error, 'rate_limited');
  t.match(
    refused.json().message,
    /Too many failed authentications from this address; retry in \d+ seconds\./,
  );
  const retryAfter = Number(refused.headers['retry-after']);
  t.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${retryAfter}`);

  t.equal(
    (await get(app, { key: 'good-key', from: attacker })).statusCode,
    429,
    'a right key from there too',
  );
  t.equal((await get(app, { from: attacker })).statusCode, 429, 'and no key');
  t.equal(
    (await get(app, { key: 'good-key', from: '203.0.113.8' })).statusCode,
    404,
    'other addresses unaffected',
  );
  t.equal((await app.inject({ method: 'GET', url: '/health', remoteAddress: attacker })).statusCode, 200);

  // A missing key is not a guess: a browser's first visit has none.
  const visitor = '203.0.113.9';
  t.same(await codes(25, () => get(app, { from: visitor })), times(25, 401));
  t.equal((await get(app, { key: 'good-key', from: visitor })).statusCode, 404);
});

t.test('an IPv6 client is its /64: rotating addresses in it does not reset the count', async (t) => {
  const config = testConfig(t, { API_KEYS: 'good-key', AUTH_FAILURES_PER_MINUTE: '3' });
  const { app } = await startTestRole(t, 'gateway', config);
  const seen = await codes(5, (i) => get(app, { key: 'guess', from: `2001:db8:1:2::${i + 1}` }));
  t.same(seen, [401, 401, 401, 429, 429]);
  t.equal(
    (await get(app, { key: 'guess', from: '2001:db8:1:3::1' })).statusCode,
    401,
    'another /64 is another client',
  );
  t.equal(clientBucket('::ffff:192.0.2.1'), '192.0.2.1', 'IPv4-mapped is the IPv4 address');
});

t.test('the window ends: the address may try again', async (t) => {
  const prefix = `t${process.pid}aw`;
  const redis = new Redis(REDIS_URL);
  t.teardown(async () => {
    await wipePrefix(prefix);
    redis.disconnect();
  });
  const failures = createAuthFailures({ redis, prefix, perWindow: 2, windowMs: 300 });
  await failures.record('192.0.2.1');
  t.equal(await failures.blockedFor('192.0.2.1'), 0, 'under the limit');
  await failures.record('192.0.2.1');
  const blocked = await failures.blockedFor('192.0.2.1');
  t.ok(blocked > 0 && blocked <= 300, `blocked for ${blocked} ms, at most the window`);
  // The window is Redis's key expiry, which announces nothing: ask until it has passed.
  await waitFor(async () => (await failures.blockedFor('192.0.2.1')) === 0, {
    what: 'the 300 ms window to pass',
    timeoutMs: 5000,
  });
  t.pass('free again once the window passed');
  t.equal(await createAuthFailures({ redis, prefix, perWindow: 0 }).blockedFor('192.0.2.1'), 0, '0 = off');
});

t.test('X-Forwarded-For does not choose the bucket unless TRUST_PROXY names the sender', async (t) => {
  const spoofed = testConfig(t, { API_KEYS: 'good-key', AUTH_FAILURES_PER_MINUTE: '3' });
  const { app } = await startTestRole(t, 'gateway', spoofed);
  const seen = await codes(5, (i) => get(app, { key: 'guess', from: '203.0.113.7', xff: `198.51.100.${i}` }));
  t.same(seen, [401, 401, 401, 429, 429], 'a new X-Forwarded-For per guess is still one client');

  // The request rate limit (auth off here) keys on the same address.
  const open = await startTestRole(t, 'gateway', testConfig(t, { RATE_LIMIT_PER_MINUTE: '3' }));
  const limited = await codes(5, (i) => get(open.app, { xff: `198.51.100.${i}` }));
  t.same(limited, [404, 404, 404, 429, 429], 'X-Forwarded-For does not buy a fresh rate-limit bucket');

  const proxied = testConfig(t, {
    API_KEYS: 'good-key',
    AUTH_FAILURES_PER_MINUTE: '3',
    TRUST_PROXY: '127.0.0.1',
  });
  const behind = await startTestRole(t, 'gateway', proxied);
  const one = await codes(4, () => get(behind.app, { key: 'guess', xff: '198.51.100.1' }));
  t.same(one, [401, 401, 401, 429], 'behind the trusted proxy, the forwarded client is counted');
  t.equal(
    (await get(behind.app, { key: 'guess', xff: '198.51.100.2' })).statusCode,
    401,
    'another forwarded client has a bucket of its own',
  );
  const direct = await codes(4, () =>
    get(behind.app, { key: 'guess', from: '203.0.113.5', xff: '198.51.100.9' }),
  );
  t.same(direct, [401, 401, 401, 429], 'from a host not in TRUST_PROXY the header is ignored');
  t.equal(
    (await get(behind.app, { key: 'guess', xff: '198.51.100.9' })).statusCode,
    401,
    'so 198.51.100.9 itself was never counted',
  );
});

t.test("a valid key's rate-limit bucket is its own, never one a made-up key can pick", async (t) => {
  // Auth off: a presented key is unchecked, so it must not name a bucket (it did: one per made-up key).
  const open = await startTestRole(t, 'gateway', testConfig(t, { RATE_LIMIT_PER_MINUTE: '3' }));
  const rotating = await codes(5, (i) => get(open.app, { key: `made-up-${i}` }));
  t.same(rotating, [404, 404, 404, 429, 429], 'made-up keys share their address bucket');

  const config = testConfig(t, {
    API_KEYS: 'k1,k2',
    RATE_LIMIT_PER_MINUTE: '3',
    AUTH_FAILURES_PER_MINUTE: '100',
  });
  const { app } = await startTestRole(t, 'gateway', config);
  const from = '203.0.113.20';
  t.same(await codes(10, (i) => get(app, { key: `wrong-${i}`, from })), times(10, 401), 'wrong keys: 401');
  t.same(
    await codes(4, () => get(app, { key: 'k1', from })),
    [404, 404, 404, 429],
    "k1's bucket is whole: the wrong keys from its address did not use it",
  );
  t.equal((await get(app, { key: 'k2', from })).statusCode, 404, 'k2 has a bucket of its own');
  t.equal((await get(app, { from: '203.0.113.21' })).statusCode, 401, 'no key: 401 before any limit');
});
