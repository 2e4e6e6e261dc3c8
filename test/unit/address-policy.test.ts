import type { LookupAddress } from 'node:dns';
import t from 'tap';
import { AddressPolicy } from '../../core/address-policy.ts';
import { AddressRefusedError } from '../../core/errors.ts';
import { createSafeFetch } from '../../core/safe-fetch.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { startTargetServer } from '../helpers/target-server.ts';

leakCheck(t);

const closed = new AddressPolicy({ allowExternal: false, allowlist: [] });
const open = new AddressPolicy({ allowExternal: true, allowlist: [] });

const refusedEvenWhenExternalAllowed = [
  'http://127.0.0.1/',
  'http://127.1/',
  'http://2130706433/', // decimal
  'http://017700000001/', // octal
  'http://0x7f000001/', // hex
  'http://0x7f.0.0.1/', // mixed
  'http://[::1]/',
  'http://[::ffff:127.0.0.1]/', // IPv4-mapped IPv6
  'http://[::ffff:7f00:1]/',
  'http://[::ffff:8.8.8.8]/', // mapped, even to a public address
  'http://10.1.2.3/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://100.64.0.1/', // CGNAT
  'http://169.254.169.254/latest/meta-data/', // cloud metadata
  'http://[fd00:ec2::254]/', // AWS IPv6 metadata
  'http://[fe80::1]/', // link-local
  'http://[fc00::1]/', // ULA
  'http://0.0.0.0/',
  'http://0/',
  'http://224.0.0.1/', // multicast
  'http://255.255.255.255/',
  'http://[64:ff9b::7f00:1]/', // NAT64 of loopback
];

for (const url of refusedEvenWhenExternalAllowed) {
  t.test(`refuses ${url}`, async (t) => {
    t.throws(() => open.checkUrl(new URL(url)), AddressRefusedError);
  });
}

t.test('refuses schemes other than http(s)', async (t) => {
  for (const url of [
    'ftp://example.com/',
    'file:///etc/passwd',
    'gopher://example.com/',
    'data:text/plain,hi',
  ]) {
    t.throws(() => open.checkUrl(new URL(url)), /Only http and https/, url);
  }
});

t.test('public addresses need ALLOW_EXTERNAL_REQUESTS', async (t) => {
  t.throws(() => closed.checkUrl(new URL('http://93.184.216.34/')), /ALLOW_EXTERNAL_REQUESTS/);
  t.doesNotThrow(() => open.checkUrl(new URL('http://93.184.216.34/')));
  t.doesNotThrow(() => open.checkUrl(new URL('http://[2606:2800:220:1::1]/')));
});

t.test('the allowlist opens named private hosts and CIDRs, nothing more', async (t) => {
  const policy = new AddressPolicy({
    allowExternal: false,
    allowlist: ['10.0.0.0/8', '127.0.0.1', 'db.internal'],
  });
  t.doesNotThrow(() => policy.checkAddress('10.9.8.7', '10.9.8.7'));
  t.doesNotThrow(() => policy.checkAddress('127.0.0.1', '127.0.0.1'));
  t.throws(() => policy.checkAddress('127.0.0.2', '127.0.0.2'), /not in HTTP_JOBS_ALLOWLIST/);
  t.throws(() => policy.checkAddress('192.168.0.1', '192.168.0.1'));
  t.doesNotThrow(
    () => policy.checkAddress('192.168.0.1', 'DB.internal.'),
    'host names match case-insensitively',
  );
  t.throws(
    () => policy.checkAddress('0.0.0.0', 'db.internal'),
    /may never reach/,
    'unspecified stays refused',
  );
  t.throws(() => policy.checkAddress('8.8.8.8', '8.8.8.8'), /public address/);
});

// A resolver that answers from a table, as a hostile DNS server would.
function fakeLookup(table: Record<string, string>) {
  return ((hostname: string, _opts: unknown, cb: (e: Error | null, a: LookupAddress[]) => void) => {
    const address = table[hostname];
    if (!address)
      return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    cb(null, [{ address, family: address.includes(':') ? 6 : 4 }]);
  }) as never;
}

t.test('safe fetch checks the address it connects to, and every redirect hop', async (t) => {
  const target = await startTargetServer();
  t.teardown(() => target.close());
  const fetch = createSafeFetch({
    policy: new AddressPolicy({ allowExternal: false, allowlist: ['allowed.test'] }),
    lookup: fakeLookup({ 'allowed.test': '127.0.0.1', 'rebind.test': '127.0.0.1' }),
    maxBodyBytes: 1000,
  });
  t.teardown(() => fetch.close());
  const base = `http://allowed.test:${target.port}`;
  const get = (url: string, timeoutMs = 5000) => fetch({ url, method: 'GET', headers: {}, timeoutMs });

  const ok = await get(`${base}/ok`);
  t.equal(ok.statusCode, 200);
  t.equal(ok.body, 'ok');
  t.equal(ok.bodyBytes, 2);

  await t.rejects(
    get(`http://rebind.test:${target.port}/ok`),
    /rebind.test resolves to 127.0.0.1 \(loopback\)/,
  );
  await t.rejects(
    get(`http://127.0.0.1:${target.port}/ok`),
    AddressRefusedError,
    'IP literal checked before connect',
  );
  const toLoopback = `${base}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${target.port}/ok`)}`;
  await t.rejects(get(toLoopback), AddressRefusedError, 'a redirect to loopback is refused');
  const toRebind = `${base}/redirect?to=${encodeURIComponent(`http://rebind.test:${target.port}/ok`)}`;
  await t.rejects(
    get(toRebind),
    /rebind.test resolves to 127.0.0.1/,
    'a redirect to a name resolving to loopback',
  );

  const followed = await get(`${base}/redirect?to=/ok`);
  t.equal(followed.body, 'ok');
  t.equal(followed.redirects, 1);
  t.equal(followed.url, `${base}/ok`);

  const big = await get(`${base}/bytes?n=500000`);
  t.equal(big.bodyBytes, 1000);
  t.equal(big.truncated, true);
  t.equal(big.body.length, 1000);

  await t.rejects(get(`${base}/hold`, 200), /did not complete within 200 ms/);
  const status = await get(`${base}/status/503`);
  t.equal(status.statusCode, 503, 'an error status is a fetched page, not a failure');
});
